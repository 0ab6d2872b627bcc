'use strict';
// Finds (or builds) the Temporal CLI whose `server start-dev` runs Keel's local Temporal server.
// Plain CommonJS with Node built-ins only: scripts/setup.js loads it before node_modules exist.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** The module `go install` builds; later tags carry `replace` directives and cannot be go-installed. */
const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

/** Where scripts/setup.js records the resolved CLI for the other scripts (empty when the SDK must download it). */
const TEMPORAL_PATH_FILE = path.join(__dirname, '..', '.keel', 'temporal-path');

const EXE = process.platform === 'win32' ? '.exe' : '';

/**
 * @typedef {object} TemporalCliResolution
 * @property {string | null} path absolute path of a working `temporal` binary, or null when none is available
 * @property {'TEMPORAL_CLI' | 'PATH' | 'GOPATH' | 'go install' | 'sdk-download'} source where it came from;
 *   'sdk-download' means the caller must let the Temporal SDK download the CLI (needs internet)
 */

/**
 * Resolves the Temporal CLI in this order: env TEMPORAL_CLI, `temporal` on PATH, the Go bin folder
 * ($GOBIN or $(go env GOPATH)/bin), then — when `install` is true and Go is present — builds it with
 * `go install` (minutes; Go's output is streamed to stderr). Every candidate must answer `--version`.
 *
 * @param {{ install?: boolean, log?: (line: string) => void }} [options]
 * @returns {Promise<TemporalCliResolution>}
 * @throws when TEMPORAL_CLI names a file that is not a working CLI, or when `go install` fails
 */
async function resolveTemporalCli(options = {}) {
  const install = options.install ?? false;
  const log = options.log ?? ((line) => process.stderr.write(`${line}\n`));

  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    // An explicit choice that does not work is an error, not something to silently route around.
    const resolved = path.resolve(fromEnv);
    if (!verify(resolved)) {
      throw new Error(`TEMPORAL_CLI=${fromEnv} is not a working Temporal CLI (running it with --version failed)`);
    }
    return { path: resolved, source: 'TEMPORAL_CLI' };
  }

  const onPath = findOnPath(`temporal${EXE}`);
  if (onPath && verify(onPath)) return { path: onPath, source: 'PATH' };

  const go = findOnPath(`go${EXE}`) ?? existingFile(path.join('/usr/local/go/bin', `go${EXE}`));
  const binDir = goBinDir(go);
  const inGoBin = path.join(binDir, `temporal${EXE}`);
  if (verify(inGoBin)) return { path: inGoBin, source: 'GOPATH' };

  if (!go || !install) return { path: null, source: 'sdk-download' };

  await goInstall(go, log);
  if (!verify(inGoBin)) {
    throw new Error(`go install reported success but ${inGoBin} does not answer --version`);
  }
  return { path: inGoBin, source: 'go install' };
}

/**
 * Reads the path scripts/setup.js recorded; null when none was recorded (the SDK must download the CLI)
 * or the recorded file has since disappeared.
 *
 * @returns {string | null}
 */
function readTemporalPathFile() {
  let recorded;
  try {
    recorded = fs.readFileSync(TEMPORAL_PATH_FILE, 'utf8').trim();
  } catch {
    return null;
  }
  return recorded && existingFile(recorded) ? recorded : null;
}

/** @param {string} candidate */
function verify(candidate) {
  if (!existingFile(candidate)) return false;
  const result = spawnSync(candidate, ['--version'], { encoding: 'utf8', timeout: 15_000 });
  return result.status === 0 && /temporal/i.test(result.stdout);
}

/** @param {string} file */
function existingFile(file) {
  try {
    return fs.statSync(file).isFile() ? file : null;
  } catch {
    return null;
  }
}

/** @param {string} name */
function findOnPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return null;
}

/**
 * Where `go install` puts binaries. Without Go we still look in Go's default GOPATH, so a CLI built
 * earlier is found even when Go is not on PATH.
 *
 * @param {string | null} go
 */
function goBinDir(go) {
  if (go) {
    const result = spawnSync(go, ['env', 'GOBIN', 'GOPATH'], { encoding: 'utf8', timeout: 30_000 });
    if (result.status === 0) {
      const [gobin, gopath] = result.stdout.split(/\r?\n/);
      if (gobin) return gobin;
      // GOPATH may list several folders; go install uses the first.
      const first = (gopath ?? '').split(path.delimiter)[0];
      if (first) return path.join(first, 'bin');
    }
  }
  return path.join(process.env.GOPATH?.split(path.delimiter)[0] || path.join(os.homedir(), 'go'), 'bin');
}

/**
 * @param {string} go
 * @param {(line: string) => void} log
 * @returns {Promise<void>}
 */
function goInstall(go, log) {
  log(`Building the Temporal CLI: go install ${TEMPORAL_CLI_MODULE} (takes several minutes the first time)`);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(go, ['install', TEMPORAL_CLI_MODULE], { stdio: ['ignore', 'inherit', 'inherit'] });
    // go install is silent while it compiles; without a heartbeat a multi-minute build looks like a hang.
    const ticker = setInterval(() => {
      log(`  ... still building the Temporal CLI (${Math.round((Date.now() - started) / 1000)} s)`);
    }, 30_000);
    child.on('error', (err) => {
      clearInterval(ticker);
      reject(new Error(`could not run ${go}: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      clearInterval(ticker);
      if (code === 0) {
        log(`Built the Temporal CLI in ${Math.round((Date.now() - started) / 1000)} s`);
        resolve();
      } else {
        reject(
          new Error(
            `go install ${TEMPORAL_CLI_MODULE} failed (${signal ?? `exit code ${code}`}); ` +
              'set TEMPORAL_CLI to an existing temporal binary, or check that the Go module proxy is reachable',
          ),
        );
      }
    });
  });
}

module.exports = { resolveTemporalCli, readTemporalPathFile, TEMPORAL_CLI_MODULE, TEMPORAL_PATH_FILE };
