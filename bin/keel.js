#!/usr/bin/env node
'use strict';
// `npx keel`: runs the TypeScript of cli/ straight from the checkout, compiled file by file with SWC as it is
// required (the compiler ts-node is configured to use here), so there is no build step and never a stale build.
// Not ts-node/register itself: it loads the whole TypeScript compiler to read tsconfig.json, about a second on
// every invocation; SWC alone starts in a tenth of that.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');

function resolvable(name) {
  try {
    require.resolve(name, { paths: [ROOT] });
    return true;
  } catch {
    return false;
  }
}

if (!resolvable('@swc/core') || !resolvable('commander')) {
  // A fresh clone: install what package-lock.json names, once, as every npm script's setup does.
  process.stderr.write('[keel] node_modules is missing or incomplete: running npm ci\n');
  const npm = spawnSync('npm', ['ci'], {
    cwd: ROOT,
    stdio: ['ignore', process.stderr, 'inherit'],
    shell: process.platform === 'win32',
  });
  if (npm.status !== 0) {
    process.stderr.write(`[keel] npm ci failed; run it in ${ROOT}, then try again\n`);
    process.exit(1);
  }
}

const swc = require(require.resolve('@swc/core', { paths: [ROOT] }));
// The same output as jest.config.js asks of SWC; tsconfig.json's isolatedModules keeps per-file compiling safe.
const options = {
  jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};
const NODE_MODULES = `${path.sep}node_modules${path.sep}`;
require.extensions['.ts'] = function compileTypeScript(module, filename) {
  if (!filename.startsWith(ROOT + path.sep) || filename.includes(NODE_MODULES)) {
    throw new Error(`keel: will not compile TypeScript outside the project: ${filename}`);
  }
  const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), { ...options, filename });
  module._compile(code, filename);
};
process.setSourceMapsEnabled(true);
require(path.join(ROOT, 'cli', 'main.ts'));
