/** Where the API's bearer key comes from; shared by `npm run api` and `npm start` (which derives the Web UI's codec endpoint from it). */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index';

/** Without KEEL_API_KEY, a key is made once and kept in `<dir>/.keel/api-key` so restarts keep it. */
export function apiKeyFromConfig(
  config: Pick<Config, 'KEEL_API_KEY'>,
  dir = process.cwd(),
): { key: string; from: string } {
  if (config.KEEL_API_KEY) return { key: config.KEEL_API_KEY, from: 'KEEL_API_KEY' };
  const file = path.resolve(dir, '.keel', 'api-key');
  if (existsSync(file)) return { key: readFileSync(file, 'utf8').trim(), from: file };
  mkdirSync(path.dirname(file), { recursive: true });
  const key = randomBytes(24).toString('base64url');
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return { key, from: `${file} (generated)` };
}
