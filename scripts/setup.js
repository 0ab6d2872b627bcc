#!/usr/bin/env node
'use strict';
// `node scripts/setup.js --for start|test|run|db`: every npm script calls this first, so it must stay
// plain CommonJS with Node built-ins only (it runs before node_modules exist) and be quick when there is
// nothing to do — each check compares content stamps, never rebuilds on a guess.

const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { resolveTemporalCli, TEMPORAL_PATH_FILE } = require('./temporal-cli');
const { resolveDockerCompose } = require('./docker-compose');

const ROOT = path.resolve(__dirname, '..');
const KEEL_DIR = path.join(ROOT, '.keel');
const PURPOSES = ['start', 'test', 'run', 'db'];
const GENERATED_DIR = path.join(ROOT, 'generated', 'prisma');
// Lives inside the generated folder so deleting the folder also forgets the stamp.
const PRISMA_STAMP = path.join(GENERATED_DIR, '.keel-stamp');

function say(line) {
  process.stdout.write(`[setup] ${line}\n`);
}

class SetupError extends Error {}

function parsePurpose(argv) {
  const i = argv.findIndex((a) => a === '--for' || a.startsWith('--for='));
  const value = i === -1 ? undefined : argv[i].startsWith('--for=') ? argv[i].slice('--for='.length) : argv[i + 1];
  if (!value || !PURPOSES.includes(value)) {
    throw new SetupError(`usage: node scripts/setup.js --for ${PURPOSES.join('|')}`);
  }
  return value;
}

function checkNodeVersion() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  // Prisma 7 and package.json's engines field both need 20.19+ (require() of ES modules).
  if (major < 20 || (major === 20 && minor < 19)) {
    throw new SetupError(`Node ${process.versions.node} is too old: Keel needs Node 20.19 or newer`);
  }
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function omitsDev() {
  // The same switches npm ci itself honours, so an image built with --omit=dev is not judged stale.
  const omit = process.env.npm_config_omit ?? '';
  return process.env.NODE_ENV === 'production' || omit.split(/[\s,]+/).includes('dev');
}

/**
 * Why node_modules does not match package-lock.json, or null when it does. npm writes
 * node_modules/.package-lock.json after every install; comparing its versions with the lock is exact
 * and costs a few milliseconds, where mtimes lie after a git checkout.
 */
function nodeModulesProblem() {
  const lock = readJson(path.join(ROOT, 'package-lock.json'));
  if (!lock?.packages) throw new SetupError('package-lock.json is missing or unreadable; run npm install once');
  if (!fs.existsSync(path.join(ROOT, 'node_modules'))) return 'node_modules is missing';
  const installed = readJson(path.join(ROOT, 'node_modules', '.package-lock.json'));
  if (!installed?.packages) return 'node_modules was not installed by npm 7+ (no .package-lock.json)';

  for (const [key, entry] of Object.entries(installed.packages)) {
    if (lock.packages[key]?.version !== entry.version) return `${key} does not match package-lock.json`;
  }
  const skipDev = omitsDev();
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '' || entry.link || installed.packages[key]) continue;
    // Optional packages for other platforms are never installed; dev ones are absent under --omit=dev.
    if (entry.optional || (skipDev && (entry.dev || entry.devOptional))) continue;
    return `${key} is not installed`;
  }
  return null;
}

function run(command, args, env) {
  const result = spawnSync(command, args, {
    cwd: ROOT,
    stdio: 'inherit',
    env: env ?? process.env,
    shell: process.platform === 'win32',
  });
  if (result.error) throw new SetupError(`could not run ${command}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new SetupError(`${command} ${args.join(' ')} failed (${result.signal ?? `exit code ${result.status}`})`);
  }
}

function ensureNodeModules(done) {
  const problem = nodeModulesProblem();
  if (!problem) return;
  say(`${problem}: running npm ci`);
  run('npm', ['ci']);
  const after = nodeModulesProblem();
  if (after) throw new SetupError(`npm ci finished but node_modules still looks wrong: ${after}`);
  done.push('installed node_modules (npm ci)');
}

function prismaStamp() {
  const schemaFile = path.join(ROOT, 'prisma', 'schema.prisma');
  if (!fs.existsSync(schemaFile)) throw new SetupError(`${schemaFile} is missing`);
  const schema = fs.readFileSync(schemaFile);
  const prisma = readJson(path.join(ROOT, 'node_modules', 'prisma', 'package.json'));
  // The generated client belongs to one schema and one Prisma version; either changing means regenerate.
  return JSON.stringify({
    schema: crypto.createHash('sha256').update(schema).digest('hex'),
    prisma: prisma?.version ?? 'unknown',
  });
}

function schemaEngineBinary() {
  const configured = process.env.PRISMA_SCHEMA_ENGINE_BINARY;
  if (configured && fs.existsSync(configured)) return configured;
  // Any existing file stops Prisma's CLI from downloading a schema engine that `generate` never uses.
  const placeholder = path.join(KEEL_DIR, 'schema-engine-placeholder');
  if (!fs.existsSync(placeholder)) {
    fs.mkdirSync(KEEL_DIR, { recursive: true });
    fs.writeFileSync(placeholder, '');
  }
  if (configured) say(`PRISMA_SCHEMA_ENGINE_BINARY=${configured} does not exist; using ${placeholder}`);
  return placeholder;
}

function ensurePrismaClient(done) {
  const wanted = prismaStamp();
  const clientExists = fs.existsSync(path.join(GENERATED_DIR, 'client.ts'));
  let recorded = null;
  try {
    recorded = fs.readFileSync(PRISMA_STAMP, 'utf8');
  } catch {
    // no stamp yet: generate once to be sure the client matches the schema
  }
  if (clientExists && recorded === wanted) return;

  say(
    clientExists ? 'prisma/schema.prisma or Prisma changed: regenerating the client' : 'generating the Prisma client',
  );
  const prismaBin = path.join(ROOT, 'node_modules', '.bin', process.platform === 'win32' ? 'prisma.cmd' : 'prisma');
  if (!fs.existsSync(prismaBin)) throw new SetupError(`${prismaBin} is missing; is prisma in package.json?`);
  run(prismaBin, ['generate'], {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: schemaEngineBinary(),
    // No telemetry or update checks: they reach for the internet and can stall offline.
    CHECKPOINT_DISABLE: '1',
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
  });
  fs.writeFileSync(PRISMA_STAMP, wanted);
  done.push('generated the Prisma client');
}

async function ensureTemporalCli(done) {
  const { path: cliPath, source } = await resolveTemporalCli({ install: true, log: say });
  fs.mkdirSync(KEEL_DIR, { recursive: true });
  // Rewritten every time (it is tiny) so a stale path never outlives a change of TEMPORAL_CLI or PATH.
  fs.writeFileSync(TEMPORAL_PATH_FILE, cliPath ? `${cliPath}\n` : '');
  if (cliPath) {
    done.push(`Temporal CLI ${cliPath} (${source})`);
  } else {
    done.push(
      'no Temporal CLI and no Go: the Temporal SDK will download the CLI when a server starts (needs internet)',
    );
  }
}

/**
 * `docker compose`, for the test that validates docker-compose.yml (`docker compose config`, no engine needed):
 * built from source when the Docker client has no compose plugin (scripts/docker-compose.js). A failure here
 * does not stop setup: that test then fails, naming what is missing.
 */
async function ensureDockerCompose(done) {
  try {
    const { ok, detail } = await resolveDockerCompose({ install: true, log: say });
    done.push(ok ? detail : `no docker compose (${detail}): test/unit/deploy-files.test.ts will fail`);
  } catch (err) {
    done.push(`no docker compose (${err.message}): test/unit/deploy-files.test.ts will fail`);
  }
}

const CHROMIUM = '/usr/bin/chromium';

/**
 * The browser the inbox's end-to-end test drives (playwright-core never downloads one here): Debian's
 * chromium, installed with apt-get only when /usr/bin/chromium is absent.
 */
function ensureChromium(done) {
  if (fs.existsSync(CHROMIUM)) return;
  if (process.platform !== 'linux' || !fs.existsSync('/usr/bin/apt-get')) {
    throw new SetupError(`${CHROMIUM} is missing and there is no apt-get here: install Chromium at that path`);
  }
  // As root (CI, these machines) apt-get itself; otherwise through sudo.
  const aptGet = typeof process.getuid === 'function' && process.getuid() !== 0 ? ['sudo', 'apt-get'] : ['apt-get'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  say(`${CHROMIUM} is missing: running ${aptGet.join(' ')} update`);
  run(aptGet[0], [...aptGet.slice(1), 'update'], env);
  say(`installing Debian's chromium: ${aptGet.join(' ')} install -y chromium`);
  run(aptGet[0], [...aptGet.slice(1), 'install', '-y', 'chromium'], env);
  if (!fs.existsSync(CHROMIUM)) throw new SetupError(`apt-get installed chromium but ${CHROMIUM} is still missing`);
  done.push(`installed Debian's chromium (${CHROMIUM})`);
}

/**
 * Whether the environment or a Temporal profile file names a Temporal server, read as config/temporal.ts reads
 * it (through @temporalio/envconfig, which exists once ensureNodeModules has run). A profile that cannot be
 * read counts as naming one: `npm start` then stops on it with the reason, so building a CLI would be wasted.
 */
function temporalAddressConfigured() {
  if (process.env.TEMPORAL_ADDRESS) return true;
  try {
    const { loadClientConfigProfile } = require('@temporalio/envconfig');
    const env = Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined && v !== ''));
    return Boolean(loadClientConfigProfile({ overrideEnvVars: env }).address);
  } catch {
    return true;
  }
}

async function main() {
  const started = Date.now();
  const purpose = parsePurpose(process.argv.slice(2));
  checkNodeVersion();
  const done = [];
  ensureNodeModules(done);
  ensurePrismaClient(done);
  // `npm start` against a Temporal server elsewhere (TEMPORAL_ADDRESS, or a Temporal profile's address) never
  // runs the CLI.
  if (purpose === 'test' || (purpose === 'start' && !temporalAddressConfigured())) {
    await ensureTemporalCli(done);
  }
  if (purpose === 'test') {
    ensureChromium(done);
    await ensureDockerCompose(done);
  }
  const summary = done.length ? done.join('; ') : 'nothing to do';
  say(`${summary} (${Date.now() - started} ms)`);
}

main().catch((err) => {
  process.stderr.write(`[setup] failed: ${err instanceof SetupError ? err.message : (err?.stack ?? err)}\n`);
  process.exit(1);
});
