/**
 * Which environment variables the code reads and which the documentation names, for
 * test/unit/configuration-docs.test.ts: the schema's keys (config/index.ts), Temporal's (config/temporal.ts)
 * and every `process.env.X` / `env.X` / `env['X']` (and config/temporal.ts's `vars.X`) in the source files Git tracks outside test/.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { configSchema } from '../../config/index';
import { TEMPORAL_ENV_VARIABLES, TEMPORAL_GRPC_META_PREFIX } from '../../config/temporal';

export const ROOT = path.resolve(__dirname, '..', '..');

/** How the gRPC-header family (`TEMPORAL_GRPC_META_X_TENANT`, …) is written in the documentation. */
export const GRPC_META_FAMILY = `${TEMPORAL_GRPC_META_PREFIX}<NAME>`;

/**
 * Variables of the platform and of other programs that some code reads, which are not Keel's settings and
 * are not in the configuration table: each with why.
 */
export const PLATFORM_VARIABLES: Record<string, string> = {
  PATH: 'where scripts/temporal-cli.js and docker-compose.js look for programs',
  HOME: "the user's home, for Temporal's default profile file (~/.config/temporalio/temporal.toml)",
  XDG_CONFIG_HOME: "the user's config folder, for Temporal's default profile file",
  APPDATA: "Windows' config folder, for Temporal's default profile file",
  GOPATH: "Go's own setting: where a built Temporal CLI is looked for",
  NODE_ENV: "npm's own switch (`production` omits dev dependencies), read by setup's staleness check",
  npm_config_omit: "npm's own `--omit`, read by setup's staleness check",
  VISUAL: 'the editor `keel approvals edit` opens (README, Command line)',
  EDITOR: 'the editor `keel approvals edit` opens when VISUAL is unset (README, Command line)',
};

/** Source files outside test/ (the test suite's own variables, KEEL_TEST_*, are documented under Tests). */
export function sourceFiles(): string[] {
  const tracked = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  return tracked.filter(
    (f) =>
      /\.(ts|js|cjs|mjs)$/.test(f) &&
      !f.endsWith('.d.ts') &&
      !/^(test|node_modules|generated)\//.test(f) &&
      !f.includes('/node_modules/'),
  );
}

const READS = [
  /\bprocess\.env\.([A-Za-z_][A-Za-z0-9_]*)/g,
  /\bprocess\.env\[\s*['"`]([A-Za-z_][A-Za-z0-9_]*)['"`]\s*\]/g,
  // `env` parameters (cli/client.ts), and config/temporal.ts's filtered copy `vars`.
  /\b(?:[eE]nv|envProvider|vars)\.([A-Z][A-Z0-9_]*)\b/g,
  /\b(?:[eE]nv|envProvider|vars)\[\s*['"`]([A-Za-z_][A-Za-z0-9_]*)['"`]\s*\]/g,
];

/** Every variable some source file reads, with the files that read it. */
export function variablesReadBySource(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of sourceFiles()) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    for (const pattern of READS) {
      for (const m of text.matchAll(pattern)) {
        const files = found.get(m[1]) ?? [];
        if (!files.includes(file)) files.push(file);
        found.set(m[1], files);
      }
    }
  }
  return found;
}

/** Every Keel setting the code reads: the schema's, Temporal's, and the ones source files read, less the platform's. */
export function variablesReadByCode(): Set<string> {
  const all = new Set<string>([...Object.keys(configSchema.shape), ...TEMPORAL_ENV_VARIABLES, GRPC_META_FAMILY]);
  for (const name of variablesReadBySource().keys()) all.add(name);
  for (const name of Object.keys(PLATFORM_VARIABLES)) all.delete(name);
  return all;
}

/** The variables .env.example shows (`NAME=…` or `# NAME=…` at the start of a line). */
export function variablesInEnvExample(): Set<string> {
  const text = readFileSync(path.join(ROOT, '.env.example'), 'utf8');
  return new Set([...text.matchAll(/^#?[ \t]*([A-Z][A-Z0-9_]*(?:<NAME>)?)=/gm)].map((m) => m[1]));
}

/** The variables named in the first column of the tables of README's Configuration section. */
export function variablesInReadmeTable(): Set<string> {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Configuration\n');
  if (start < 0) throw new Error('README.md has no "## Configuration" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('|') || /^\|\s*-/.test(line)) continue;
    const first = line.split('|')[1] ?? '';
    for (const m of first.matchAll(/`([A-Z][A-Z0-9_]*(?:<NAME>)?)`/g)) names.add(m[1]);
  }
  return names;
}

/** The variables the Keel services of docker-compose.yml set (the keys of its shared `x-keel-env` block). */
export function variablesInComposeKeelEnv(): Set<string> {
  const text = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
  const start = text.indexOf('\nx-keel-env:');
  if (start < 0) throw new Error('docker-compose.yml has no x-keel-env block');
  const names = new Set<string>();
  for (const line of text
    .slice(start + 1)
    .split('\n')
    .slice(1)) {
    if (/^\S/.test(line)) break;
    const m = /^ {2}([A-Za-z_][A-Za-z0-9_]*):/.exec(line);
    if (m) names.add(m[1]);
  }
  return names;
}
