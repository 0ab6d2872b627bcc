/**
 * The embedded test databases' templates: PGlite data folders (as tarballs) made once per set of migrations,
 * one empty and one migrated to head, so each test database loads in about a second instead of running
 * PGlite's initdb (several seconds) and every migration again.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startEmbeddedDatabase } from '../db/embedded';
import { migrate, readMigrations } from '../db/migrations';

/** Makes (unless already there) `<outDir>/pglite-<hash>/{empty,head}.tar.gz`; returns that folder. */
export async function pgliteTemplates(outDir: string): Promise<string> {
  // The package's exports hide package.json; its folder is found from the entry point.
  const pkg = path.join(path.dirname(require.resolve('@electric-sql/pglite')), '..', 'package.json');
  const { version } = JSON.parse(await readFile(pkg, 'utf8')) as { version: string };
  const hash = createHash('sha256')
    .update(version)
    .update(
      readMigrations()
        .map((m) => `${m.name}:${m.checksum}`)
        .join('\n'),
    )
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(outDir, `pglite-${hash}`);
  if (existsSync(path.join(dir, 'head.tar.gz'))) return dir;
  await mkdir(dir, { recursive: true });
  const db = await startEmbeddedDatabase({ dataDir: 'memory://' });
  try {
    await save(dir, 'empty.tar.gz', await db.db.dumpDataDir('gzip'));
    await migrate(db.url);
    await save(dir, 'head.tar.gz', await db.db.dumpDataDir('gzip'));
  } finally {
    await db.stop();
  }
  return dir;
}

/** Written under another name first: two test runs making the same template never read half a file. */
async function save(dir: string, name: string, blob: Blob): Promise<void> {
  const partial = path.join(dir, `${name}.${process.pid}.partial`);
  await writeFile(partial, Buffer.from(await blob.arrayBuffer()));
  await rename(partial, path.join(dir, name));
}
