'use strict';
// Makes `docker compose` answer where the Docker client is installed without its compose plugin (these
// machines: a Docker client, no engine, no plugin), so the tests can validate docker-compose.yml with
// `docker compose config`, which needs no engine. The plugin is built from source through the Go module
// proxy (the only way to have it here) into Go's bin folder and linked into ~/.docker/cli-plugins.
// Plain CommonJS with Node built-ins only, like temporal-cli.js: scripts/setup.js loads it.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/**
 * Compose's module and tag. `go install …@version` refuses it (its go.mod has exclude directives), so it is
 * built from a scratch module that requires it.
 */
const COMPOSE_MODULE = 'github.com/docker/compose/v5';
const COMPOSE_VERSION = 'v5.6.0';
const BUILD_DIR = path.join(__dirname, '..', '.keel', 'tools', 'docker-compose');
const PLUGIN_DIR = path.join(os.homedir(), '.docker', 'cli-plugins');

/**
 * @typedef {object} ComposeResolution
 * @property {boolean} ok whether `docker compose` now answers
 * @property {string} detail what was found or done, or why it cannot answer
 */

/**
 * `docker compose` as it is, else a compose binary in Go's bin folder linked in as the plugin, else (with
 * `install` and Go) one built from source first (minutes the first time; Go's module cache keeps it quick after).
 *
 * @param {{ install?: boolean, log?: (line: string) => void }} [options]
 * @returns {Promise<ComposeResolution>}
 */
async function resolveDockerCompose(options = {}) {
  const log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
  if (!answers('docker', ['--version'], /Docker version/)) {
    return { ok: false, detail: 'no Docker client (`docker --version` failed): install docker-ce-cli' };
  }
  if (composeAnswers()) return { ok: true, detail: 'docker compose (plugin present)' };

  const go = findGo();
  const built = path.join(goBinDir(go), 'docker-compose');
  if (!answers(built, ['version'], /Docker Compose version/)) {
    if (!go) return { ok: false, detail: 'no compose plugin for the Docker client, and no Go to build one' };
    if (!options.install) return { ok: false, detail: 'no compose plugin for the Docker client' };
    await build(go, built, log);
  }
  fs.mkdirSync(PLUGIN_DIR, { recursive: true });
  const plugin = path.join(PLUGIN_DIR, 'docker-compose');
  fs.rmSync(plugin, { force: true });
  fs.symlinkSync(built, plugin);
  if (!composeAnswers()) return { ok: false, detail: `linked ${built} into ${PLUGIN_DIR}, but docker compose fails` };
  return { ok: true, detail: `docker compose (${built}, linked into ${PLUGIN_DIR})` };
}

function composeAnswers() {
  return answers('docker', ['compose', 'version'], /Docker Compose version/);
}

/**
 * @param {string} command
 * @param {string[]} args
 * @param {RegExp} expected
 */
function answers(command, args, expected) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000 });
  return result.status === 0 && expected.test(result.stdout);
}

function findGo() {
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/go/bin']) {
    if (dir && answers(path.join(dir, 'go'), ['version'], /^go version/)) return path.join(dir, 'go');
  }
  return null;
}

/** @param {string | null} go */
function goBinDir(go) {
  if (go) {
    const result = spawnSync(go, ['env', 'GOPATH'], { encoding: 'utf8', timeout: 30_000 });
    const first = result.status === 0 ? result.stdout.trim().split(path.delimiter)[0] : '';
    if (first) return path.join(first, 'bin');
  }
  return path.join(os.homedir(), 'go', 'bin');
}

/**
 * @param {string} go
 * @param {string} output
 * @param {(line: string) => void} log
 */
async function build(go, output, log) {
  log(
    `Building docker compose ${COMPOSE_VERSION} from source for the Docker client (takes several minutes the first time)`,
  );
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  fs.writeFileSync(path.join(BUILD_DIR, 'go.mod'), 'module keel.local/docker-compose\n\ngo 1.26\n');
  const started = Date.now();
  await run(go, ['get', `${COMPOSE_MODULE}/cmd@${COMPOSE_VERSION}`], log);
  await run(go, ['build', '-o', output, `${COMPOSE_MODULE}/cmd`], log);
  log(`Built docker compose in ${Math.round((Date.now() - started) / 1000)} s: ${output}`);
}

/**
 * @param {string} go
 * @param {string[]} args
 * @param {(line: string) => void} log
 */
function run(go, args, log) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(go, args, { cwd: BUILD_DIR, stdio: ['ignore', 'inherit', 'inherit'] });
    // go build is silent while it compiles; without a heartbeat a multi-minute build looks like a hang.
    const ticker = setInterval(
      () => log(`  ... still building docker compose (${Math.round((Date.now() - started) / 1000)} s)`),
      30_000,
    );
    child.on('error', (err) => {
      clearInterval(ticker);
      reject(new Error(`could not run ${go}: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      clearInterval(ticker);
      if (code === 0) resolve(undefined);
      else reject(new Error(`go ${args.join(' ')} failed (${signal ?? `exit code ${code}`}) in ${BUILD_DIR}`));
    });
  });
}

module.exports = { resolveDockerCompose, COMPOSE_MODULE, COMPOSE_VERSION };
