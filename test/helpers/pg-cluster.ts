/**
 * A private PostgreSQL cluster (initdb + pg_ctl on a free port, data in a
 * temporary folder) for tests that must stop and start the database under a
 * running engine. The machine's shared server on 5432 is never touched.
 *
 * When the test runs as root (CI machines here), the server runs as the
 * `postgres` user through runuser, since PostgreSQL refuses to run as root.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface PgCluster {
  port: number;
  /** The maintenance database's URL (`postgres`), for createTestDatabase's `serverUrl`. */
  serverUrl: string;
  dataDir: string;
  /** Starts the server (waits until it accepts connections). */
  start(): void;
  /** Stops it: `fast` disconnects clients and shuts down cleanly, `immediate` is a crash (recovery on start). */
  stop(mode?: 'fast' | 'immediate'): void;
  readonly running: boolean;
  /** Stops the server if it runs and deletes its folder. */
  close(): void;
}

/** The newest installed PostgreSQL's bin folder (Debian layout), or where pg_config says. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions.length) return path.join(root, versions[0], 'bin');
  }
  return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function startPgCluster(): Promise<PgCluster> {
  const bin = binDir();
  const asRoot = process.getuid?.() === 0;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keel-pg-'));
  const logFile = path.join(dataDir, 'server.log');
  const pgdata = path.join(dataDir, 'data');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dataDir, uid, gid);
  }
  const run = (tool: string, args: string[]) => {
    const cmd = asRoot ? 'runuser' : path.join(bin, tool);
    const argv = asRoot ? ['-u', 'postgres', '--', path.join(bin, tool), ...args] : args;
    const r = spawnSync(cmd, argv, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  run('initdb', ['-D', pgdata, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const port = await freePort();
  let running = false;
  const cluster: PgCluster = {
    port,
    serverUrl: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    get running() {
      return running;
    },
    start() {
      // fsync off: a crash of the test machine is not what this cluster is for; `immediate` stops still recover.
      const opts = `-p ${port} -k ${dataDir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
      run('pg_ctl', ['-D', pgdata, '-o', opts, '-l', logFile, '-w', '-t', '60', 'start']);
      running = true;
    },
    stop(mode = 'fast') {
      run('pg_ctl', ['-D', pgdata, '-m', mode, '-w', '-t', '60', 'stop']);
      running = false;
    },
    close() {
      if (running) {
        try {
          cluster.stop('immediate');
        } catch {
          // Already gone: the folder goes anyway.
        }
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  cluster.start();
  return cluster;
}
