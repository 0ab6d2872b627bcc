/**
 * Fault injection for tests and chaos runs.
 *
 * Connectors call `faults.hit('<point>')` at the moments where a crash or a
 * stall is most interesting (for example between writing a side-effect intent
 * and performing the external call). In production no spec is set and every
 * hit is a no-op, so the hooks can stay in the code permanently.
 *
 * The spec comes from KEEL_FAULTS and is a comma-separated list of
 * `<point>=<action>` entries:
 *
 *   email.send.beforeSmtp=pause:4000        stall 4 s every time the point is hit
 *   email.send.beforeSmtp=pause:4000:once   stall only the first time in this process
 *   email.send.beforeSmtp=crash             SIGKILL this process at the point
 *   email.send.beforeSmtp=crash:once        ... only the first time
 *
 * Each triggered fault first prints `KEEL_FAULT_HIT <point>` on its own line
 * to stdout, so a parent test process that spawned the worker can tell that
 * the worker really reached the point (and, for `pause`, act while it waits).
 */

/** The hook object connectors receive; `hit` resolves once the fault (if any) has played out. */
export interface FaultHooks {
  hit(point: string): Promise<void>;
}

/** One parsed entry of a fault spec. */
export type FaultAction = { kind: 'pause'; ms: number; once: boolean } | { kind: 'crash'; once: boolean };

/**
 * Side effects a fault performs. Overridable so unit tests can exercise
 * `crash` without killing the test runner; real runs use the defaults.
 */
export interface FaultIo {
  /** Writes one line (newline included) to the parent-visible stream. */
  write(line: string): Promise<void>;
  /** Ends the process the hard way, as a machine failure would. */
  kill(): void;
  sleep(ms: number): Promise<void>;
}

/** A FaultHooks that never does anything: the production default. */
export const noFaults: FaultHooks = Object.freeze({ hit: async () => undefined });

/** Marker line written to stdout whenever a fault triggers. */
export const FAULT_HIT_MARKER = 'KEEL_FAULT_HIT';

const defaultIo: FaultIo = {
  // Wait for the write callback so that, for `crash`, the marker has left the
  // process before SIGKILL (which would discard anything still buffered).
  write: (line) => new Promise<void>((resolve) => process.stdout.write(line, () => resolve())),
  kill: () => {
    process.kill(process.pid, 'SIGKILL');
  },
  sleep: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
};

// `once` means once per process, not once per FaultHooks instance: callers
// may build hooks more than once (e.g. per activity invocation) and a chaos
// run that asks for one crash must still get exactly one.
const firedOnce = new Set<string>();

const POINT_RE = /^[A-Za-z0-9_.\-]+$/;

/** Parses one `<action>` (the part after `=`); returns undefined when it is not understood. */
function parseAction(text: string): FaultAction | undefined {
  const parts = text.split(':').map((p) => p.trim());
  let once = false;
  if (parts.length > 1 && parts[parts.length - 1] === 'once') {
    once = true;
    parts.pop();
  }
  if (parts.length === 1 && parts[0] === 'crash') return { kind: 'crash', once };
  if (parts.length === 2 && parts[0] === 'pause' && /^\d+$/.test(parts[1])) {
    const ms = Number(parts[1]);
    if (Number.isSafeInteger(ms)) return { kind: 'pause', ms, once };
  }
  return undefined;
}

/**
 * Parses a fault spec (normally `process.env.KEEL_FAULTS`) into hooks.
 *
 * An empty or missing spec yields {@link noFaults}. Any entry that is not
 * `<point>=pause:<ms>[:once]` or `<point>=crash[:once]`, or a point listed
 * twice, throws an Error naming the offending entry, so a typo in a chaos
 * run fails loudly instead of silently injecting nothing.
 */
export function parseFaults(spec?: string, io: Partial<FaultIo> = {}): FaultHooks {
  if (spec === undefined || spec.trim() === '') return noFaults;
  const effects: FaultIo = { ...defaultIo, ...io };
  const actions = new Map<string, { action: FaultAction; entry: string }>();

  for (const raw of spec.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue; // tolerate trailing commas from shell-built specs
    const eq = entry.indexOf('=');
    const point = eq > 0 ? entry.slice(0, eq).trim() : '';
    const action = eq > 0 ? parseAction(entry.slice(eq + 1)) : undefined;
    if (!POINT_RE.test(point) || action === undefined) {
      throw new Error(
        `Invalid fault spec entry "${entry}" in KEEL_FAULTS: expected <point>=pause:<ms>[:once] or <point>=crash[:once]`,
      );
    }
    if (actions.has(point)) {
      throw new Error(`Invalid fault spec entry "${entry}" in KEEL_FAULTS: point "${point}" is listed more than once`);
    }
    actions.set(point, { action, entry });
  }
  if (actions.size === 0) return noFaults;

  return {
    async hit(point: string): Promise<void> {
      const configured = actions.get(point);
      if (!configured) return;
      const { action, entry } = configured;
      if (action.once) {
        const onceKey = `${point}=${entry}`;
        if (firedOnce.has(onceKey)) return;
        firedOnce.add(onceKey);
      }
      await effects.write(`${FAULT_HIT_MARKER} ${point}\n`);
      if (action.kind === 'crash') {
        effects.kill();
        // With the real kill this is never reached; with an injected kill the
        // caller must not carry on as if nothing happened, so hang forever
        // like a dead process would.
        await new Promise<never>(() => undefined);
      }
      if (action.kind === 'pause') await effects.sleep(action.ms);
    },
  };
}
