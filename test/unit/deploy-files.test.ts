/**
 * docker-compose.yml and the Dockerfile, checked as far as a machine without a Docker engine allows (issue 11).
 *
 * - docker-compose.yml: `docker compose config` (the Docker client's compose plugin parses, validates against
 *   the Compose specification and interpolates without an engine), with every profile the file defines, and
 *   the resolved model read back as JSON: workers can be scaled, the Temporal settings reach the worker and
 *   the API. A machine without the Docker client or its compose plugin fails here, saying so
 *   (`node scripts/setup.js --for test` builds the plugin: scripts/docker-compose.js).
 * - Dockerfile: `docker build --check` needs an engine (BuildKit), so a small parser checks what can go wrong
 *   without one: known instructions, FROM first, every COPY source exists in the build context and is not
 *   dropped by .dockerignore, and the files the CMD and compose's commands run are in the image.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const HINT =
  'docker-compose.yml is validated with `docker compose config`, which needs the Docker client and its compose ' +
  'plugin but no engine: `node scripts/setup.js --for test` builds the plugin (scripts/docker-compose.js)';

let envDir: string;
let emptyEnvFile: string;

beforeAll(() => {
  envDir = mkdtempSync(path.join(os.tmpdir(), 'keel-compose-'));
  emptyEnvFile = path.join(envDir, 'empty.env');
  writeFileSync(emptyEnvFile, '');
});
afterAll(() => rmSync(envDir, { recursive: true, force: true }));

/**
 * `docker compose …` on docker-compose.yml with only `env` as the settings: the developer's Keel and Temporal
 * variables and the checkout's .env (compose reads it by default) are left out, so the result is the file's own.
 */
function compose(args: string[], env: Record<string, string> = {}) {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(KEEL_|TEMPORAL_|POSTGRES_|QDRANT_|OPENAI_|SLACK_|SMTP_|DATABASE_URL$|PORT$)/.test(k),
    ),
  );
  return spawnSync('docker', ['compose', '--env-file', emptyEnvFile, '-f', 'docker-compose.yml', ...args], {
    cwd: ROOT,
    env: { ...base, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

function resolved(env: Record<string, string> = {}): any {
  const out = compose(['config', '--format', 'json'], { KEEL_API_KEY: 'k', ...env });
  if (out.status !== 0) throw new Error(`docker compose config failed: ${out.stderr}`);
  return JSON.parse(out.stdout);
}

describe('docker-compose.yml', () => {
  it('has the Docker client and its compose plugin to check it with (no engine needed)', () => {
    const client = spawnSync('docker', ['--version'], { encoding: 'utf8' });
    if (client.error || client.status !== 0) {
      throw new Error(
        `the Docker client is missing (docker --version: ${client.error?.message ?? client.stderr}). ${HINT}`,
      );
    }
    const plugin = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
    if (plugin.status !== 0) {
      throw new Error(
        `the Docker client has no compose plugin (docker compose version: ${plugin.stderr.trim()}). ${HINT}`,
      );
    }
  });

  it('is valid: `docker compose config -q` exits 0, for every profile it defines', () => {
    const plain = compose(['config', '-q'], { KEEL_API_KEY: 'k' });
    expect({ status: plain.status, stderr: plain.stderr }).toEqual({ status: 0, stderr: '' });
    const profiles = compose(['config', '--profiles'], { KEEL_API_KEY: 'k' });
    expect(profiles.status).toBe(0);
    for (const profile of profiles.stdout.split('\n').filter(Boolean)) {
      const out = compose(['--profile', profile, 'config', '-q'], { KEEL_API_KEY: 'k' });
      expect({ profile, status: out.status, stderr: out.stderr }).toEqual({ profile, status: 0, stderr: '' });
    }
  });

  it('refuses to start without KEEL_API_KEY, naming it', () => {
    const out = compose(['config', '-q']);
    expect(out.status).not.toBe(0);
    expect(out.stderr).toMatch(/KEEL_API_KEY/);
  });

  it('lets workers scale (`docker compose up --scale keel-worker=3`): no fixed container name or host port', () => {
    const { services } = resolved();
    const worker = services['keel-worker'];
    expect(worker).toBeDefined();
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports ?? []).toEqual([]);
  });

  it("hands the worker and the API the stack's Temporal by default, and the envconfig variables when set", () => {
    const byDefault = resolved().services;
    for (const name of ['keel-worker', 'keel-api']) {
      expect(byDefault[name].environment).toMatchObject({
        TEMPORAL_ADDRESS: 'temporal:7233',
        TEMPORAL_NAMESPACE: 'default',
      });
      // Unset in the shell: not passed (null), so Keel's own defaults apply rather than an empty value.
      expect(byDefault[name].environment.TEMPORAL_API_KEY ?? null).toBeNull();
      expect(byDefault[name].volumes).toEqual([
        expect.objectContaining({
          source: path.join(ROOT, 'deploy', 'temporal', 'client'),
          target: '/etc/keel/temporal',
        }),
      ]);
    }
    const viaProfile = resolved({
      TEMPORAL_CONFIG_FILE: '/etc/keel/temporal/temporal.toml',
      TEMPORAL_PROFILE: 'prod',
      TEMPORAL_ADDRESS: '',
      TEMPORAL_NAMESPACE: '',
      TEMPORAL_API_KEY: 'key',
      TEMPORAL_TLS_CLIENT_CERT_PATH: '/etc/keel/temporal/client.pem',
    }).services;
    for (const name of ['keel-worker', 'keel-api']) {
      expect(viaProfile[name].environment).toMatchObject({
        TEMPORAL_CONFIG_FILE: '/etc/keel/temporal/temporal.toml',
        TEMPORAL_PROFILE: 'prod',
        // Empty, so the profile's address and namespace count (config/temporal.ts reads empty as unset).
        TEMPORAL_ADDRESS: '',
        TEMPORAL_NAMESPACE: '',
        TEMPORAL_API_KEY: 'key',
        TEMPORAL_TLS_CLIENT_CERT_PATH: '/etc/keel/temporal/client.pem',
      });
    }
  });

  it('runs commands whose files and npm scripts exist', () => {
    const { services } = resolved();
    const scripts = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts;
    for (const name of ['keel-migrate', 'keel-worker', 'keel-api']) {
      const command: string[] = services[name].command;
      if (command[0] === 'npm') expect(scripts[command[2]]).toBeDefined();
      else expect(existsSync(path.join(ROOT, command[command.length - 1]))).toBe(true);
    }
  });
});

/** The Dockerfile's instructions, continuation lines joined, comments and blank lines left out. */
function dockerfileInstructions(): { keyword: string; args: string }[] {
  const joined = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\r?\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [keyword, ...rest] = l.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

/** Whether .dockerignore leaves `file` out of the build context (its patterns as this repository writes them). */
function dockerignored(file: string): boolean {
  const patterns = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  let ignored = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const glob = negated ? pattern.slice(1) : pattern;
    const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
    if (re.test(file)) ignored = !negated;
  }
  return ignored;
}

describe('Dockerfile', () => {
  const KNOWN = new Set(
    'FROM RUN CMD LABEL EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD STOPSIGNAL HEALTHCHECK SHELL'.split(
      ' ',
    ),
  );
  const instructions = dockerfileInstructions();

  it('uses only known instructions and starts FROM a base image', () => {
    expect(instructions.filter((i) => !KNOWN.has(i.keyword))).toEqual([]);
    expect(instructions.find((i) => i.keyword !== 'ARG')?.keyword).toBe('FROM');
  });

  it('copies only sources that exist in the build context and that .dockerignore keeps', () => {
    const copies = instructions.filter((i) => (i.keyword === 'COPY' || i.keyword === 'ADD') && !/--from=/.test(i.args));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const words = copy.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      for (const source of words.slice(0, -1)) {
        expect({ source, exists: existsSync(path.join(ROOT, source)) }).toEqual({ source, exists: true });
        if (source !== '.') expect({ source, ignored: dockerignored(source) }).toEqual({ source, ignored: false });
      }
    }
  });

  it('runs an entry file that is in the image, with ts-node a production dependency (npm ci --omit=dev)', () => {
    const cmd = instructions.filter((i) => i.keyword === 'CMD').pop();
    expect(cmd).toBeDefined();
    const argv: string[] = JSON.parse(cmd!.args);
    const entry = argv[argv.length - 1];
    expect(existsSync(path.join(ROOT, entry))).toBe(true);
    expect(dockerignored(entry)).toBe(false);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.dependencies['ts-node']).toBeDefined();
    // The setup the image runs at build time is in the context too.
    expect(dockerignored('scripts/setup.js')).toBe(false);
  });

  it('never bakes Temporal client keys into the image', () => {
    expect(dockerignored('deploy/temporal/client/client.key')).toBe(true);
    expect(dockerignored('.env')).toBe(true);
  });
});
