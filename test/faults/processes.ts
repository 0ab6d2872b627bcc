/**
 * Supervised child processes for the fault suite: the API and the workers run
 * as real `npm run api` / `npm run worker` processes (their entry files, over
 * ts-node), each logging to its own file. A supervisor restarts a process that
 * exits without being asked to, as systemd or Kubernetes would, and counts it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { FAULT_HIT_MARKER } from '../../lib/faults';

const ROOT = path.resolve(__dirname, '..', '..');

/** Every live child of every supervisor, for {@link killAll}. */
const live = new Set<ChildProcess>();

/** SIGKILLs every supervised child at once (synchronous: safe in a process `exit` handler). */
export function killAll(): void {
  for (const c of live) c.kill('SIGKILL');
}

export interface Supervised {
  name: string;
  /** The live child, if one runs. */
  readonly child: ChildProcess | undefined;
  /** Exits nobody asked for, each followed by a restart. */
  readonly unplannedExits: number;
  /**
   * The unplanned exits that are not part of the plan: a life that was serving (printed `ready`) and ended
   * without reaching a planted crash (lib/faults.ts prints its marker first). A process that cannot start
   * while Temporal is down exits before `ready`, which is expected and not counted here. Each entry ends
   * with the last lines that life printed.
   */
  readonly crashes: readonly string[];
  /** Starts (or restarts) the process and resolves once it printed `ready`. */
  start(): Promise<void>;
  /** Sends `signal` and waits for the exit; the supervisor does not restart it. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Everything the process ever printed (all its lives), as the log file holds it. */
  output(): string;
}

export interface SuperviseOptions {
  name: string;
  /** Entry file relative to the repository, e.g. `workers/main.ts`. */
  entry: string;
  env: Record<string, string>;
  /** Text the process prints once it serves. */
  ready: string;
  logFile: string;
  /** Wait before restarting after an unplanned exit (default 1000 ms). */
  restartDelayMs?: number;
  onLine?: (line: string) => void;
}

export function supervise(opts: SuperviseOptions): Supervised {
  let child: ChildProcess | undefined;
  let wanted = false;
  let unplanned = 0;
  const crashes: string[] = [];
  let all = '';
  const log: WriteStream = createWriteStream(opts.logFile, { flags: 'a' });

  const launch = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const c = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', opts.entry], {
        cwd: ROOT,
        env: { ...process.env, ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = c;
      live.add(c);
      let seen = '';
      let ready = false;
      // Where this life's output starts in `all`: a crash is told by what it printed before it went.
      const lifeStart = all.length;
      const onData = (chunk: Buffer) => {
        const text = chunk.toString();
        all += text;
        log.write(text);
        if (opts.onLine) for (const line of text.split('\n')) if (line) opts.onLine(line);
        if (!ready) {
          seen += text;
          if (seen.includes(opts.ready)) {
            ready = true;
            resolve();
          }
        }
      };
      c.stdout!.on('data', onData);
      c.stderr!.on('data', onData);
      c.once('exit', (code, signal) => {
        live.delete(c);
        const life = all.slice(lifeStart);
        const line = `\n[supervisor] ${opts.name} exited (${code ?? signal})\n`;
        all += line;
        log.write(line);
        if (child === c) child = undefined;
        if (!ready) reject(new Error(`${opts.name} exited (${code ?? signal}) before it was ready`));
        if (wanted) {
          unplanned++;
          if (ready && !(signal === 'SIGKILL' && life.includes(FAULT_HIT_MARKER))) {
            const tail = life.trimEnd().split('\n').slice(-25).join('\n');
            crashes.push(`${opts.name} exited (${code ?? signal}) after:\n${tail}`);
          }
          setTimeout(() => void relaunch(), opts.restartDelayMs ?? 1000).unref();
        }
      });
    });

  /** Relaunches until one life reaches ready (a worker started while Temporal is down exits at once). */
  async function relaunch(): Promise<void> {
    while (wanted && !child) {
      try {
        await launch();
        return;
      } catch {
        // The exit handler above already scheduled the next try when the process was wanted.
        return;
      }
    }
  }

  return {
    name: opts.name,
    get child() {
      return child;
    },
    get unplannedExits() {
      return unplanned;
    },
    get crashes() {
      return crashes;
    },
    async start() {
      wanted = true;
      if (child) return;
      await launch();
    },
    async stop(signal = 'SIGTERM') {
      wanted = false;
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill(signal);
      await exited;
    },
    output: () => all,
  };
}
