/**
 * `npm run bench:load [-- --seconds 60 --rate 2]`
 *
 * The default rate is below Keel's saturation on the 2-core development
 * machine (shared): offered 5 goals/s, Keel completed 3.0/s with workflow
 * tasks waiting over 5 s on the worker's workflow thread, while the bare
 * side kept up.
 *
 * Sustained goal starts at an open-loop (Poisson) arrival rate against one dev
 * server, for Keel (HTTP API → goalWorkflow → activities → PostgreSQL) and, in
 * the same run at the same rate, for bare workflows calling the same
 * activities, in alternating phases (`--rounds`) so drift on a shared machine
 * lands on both sides. The mix is `--approvals` emails (an approval before the
 * send) and the rest notes (no approval). An approval sampler decides every
 * email as soon as the workflow's query shows it waiting — Keel's through
 * `POST /v1/approvals/:id/decision`, the bare ones with a bare update — then
 * polls the query until the decided state is visible.
 *
 * The worker is a child process (bench/load-worker.ts, the production worker)
 * so its RSS and CPU are its own; the API and this driver share this process.
 * Afterwards `--park` emails per side are left waiting at once to measure the
 * worker's memory per cached goal, then decided in one batch.
 *
 * Where the time goes: per side and goal shape, the p50 of each part of a
 * goal's life read off its history (start, workflow tasks queued and running,
 * the first and the last, activities queued and running, waiting for a
 * person, the result reaching the driver), and the SDK core's own metrics of
 * the worker (workflow task processing, local activities, activities).
 *
 * A third side (unless `--no-records`): bare code that calls every activity
 * a Keel goal calls, the same way (the planner, the plan's record, the steps,
 * the approval's opening and the decision's record, the end's record with the
 * episodic memory), on a goal stored as the API stores it, decided by the
 * bare update. What separates it from Keel is Keel's workflow code (and its
 * HTTP API); what separates it from the bare side is the records Keel keeps.
 *
 * Prints one `name: value` line per figure, ending with `ratio p50 keel/bare`
 * (all goals of the mix, against the records side: bare workflows calling the
 * same activities; the ratios to the steps-only side are printed before it)
 * and `approval round trip p95`: from the decision's
 * 2xx to the next state (approval approved, goal running, the held step
 * moving on) in the workflow's query; the line before it times the same from
 * the moment the POST is sent. Exits 1 when a goal is stuck or fails.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client as PgClient } from 'pg';
import type { temporal } from '@temporalio/proto';
import { prng } from '../lib/prng';
import { isFinished } from '../shared/goal';
import type { TestEngine } from '../test/helpers/engine';
import { freePort } from '../test/helpers/pg-cluster';
import { stateQuery } from '../workflows/messages';
import type { GoalState } from '../workflows/types';
import {
  ROOT,
  bareGoalDone,
  bundleWorkflows,
  keelGoalDone,
  latencies,
  ms,
  startBareGoal,
  startBareRecordedGoal,
  startBenchEngine,
  startKeelGoal,
  type GoalShape,
  type Latencies,
} from './harness';
import type { WorkerCommand, WorkerStatus } from './load-worker';
import { countStatements } from './sql-count';
import { bareDecideUpdate, bareStateQuery } from './workflows/bare';

/**
 * bare: the steps' activities alone; records: bare code calling every activity a Keel goal calls (planner, plan
 * record, steps, approval opening and decision record, end record with episodic memory: bench/workflows/bare.ts),
 * so what it leaves to Keel is its workflow code.
 */
type Side = 'keel' | 'bare' | 'records';
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
/** The bare baselines' task queue: a worker of their own bundle, beside Keel's in the same process. */
const bareQueue = (engine: TestEngine) => `${engine.taskQueue}-bare`;
const recordsQueue = (engine: TestEngine) => `${engine.taskQueue}-records`;
const sideQueue = (engine: TestEngine, side: Side) =>
  side === 'keel' ? engine.taskQueue : side === 'bare' ? bareQueue(engine) : recordsQueue(engine);

const sleep = (msecs: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, msecs)));
const now = () => performance.now();

/** One goal of a phase, as the driver saw it (times from performance.now()). */
interface GoalRecord {
  side: Side;
  shape: GoalShape;
  workflowId?: string;
  start: number;
  /** Wall-clock time of `start` (Date.now()), to place it among the history's event times. */
  startWall: number;
  end?: number;
  error?: string;
  /** Emails: decision sent, answered (2xx), and the decided state seen in the query. */
  decision?: { sent: number; answered: number; visible: number };
}

/**
 * Where a goal's time went, from its history's event times (ms): `start`, from the driver's start (the POST
 * for Keel, the client's start call for bare) to the workflow's start event; workflow tasks and activities
 * (regular ones), each queued (scheduled → started) and running (started → completed; a workflow task's
 * local activities run inside it); `waiting`, the goal waiting with no task in flight (for a person's
 * decision); `result`, from the last event to the driver seeing the result.
 */
type TimeSpent =
  | 'start'
  | 'workflowTaskQueued'
  | 'workflowTaskRunning'
  | 'firstWorkflowTask'
  | 'lastWorkflowTask'
  | 'activityQueued'
  | 'activityRunning'
  | 'waiting'
  | 'result';

function timeSpent(events: HistoryEvent[], startWall: number, endWall: number): Record<TimeSpent, number> {
  const at = (e: HistoryEvent) =>
    Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
  const out: Record<TimeSpent, number> = {
    start: events.length ? at(events[0]) - startWall : 0,
    workflowTaskQueued: 0,
    workflowTaskRunning: 0,
    firstWorkflowTask: 0,
    lastWorkflowTask: 0,
    activityQueued: 0,
    activityRunning: 0,
    waiting: 0,
    result: events.length ? endWall - at(events[events.length - 1]) : 0,
  };
  const byId = new Map(events.map((e) => [Number(e.eventId), e]));
  for (const e of events) {
    const wftStarted = e.workflowTaskStartedEventAttributes;
    const wftCompleted = e.workflowTaskCompletedEventAttributes;
    const actStarted = e.activityTaskStartedEventAttributes;
    const actCompleted = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (wftStarted) out.workflowTaskQueued += at(e) - at(byId.get(Number(wftStarted.scheduledEventId))!);
    if (wftCompleted) {
      const running = at(e) - at(byId.get(Number(wftCompleted.startedEventId))!);
      if (out.workflowTaskRunning === 0 && out.firstWorkflowTask === 0) out.firstWorkflowTask = running;
      out.lastWorkflowTask = running;
      out.workflowTaskRunning += running;
    }
    if (actStarted) out.activityQueued += at(e) - at(byId.get(Number(actStarted.scheduledEventId))!);
    if (actCompleted) out.activityRunning += at(e) - at(byId.get(Number(actCompleted.startedEventId))!);
  }
  const busy = out.workflowTaskQueued + out.workflowTaskRunning + out.activityQueued + out.activityRunning;
  const span = events.length ? at(events[events.length - 1]) - at(events[0]) : 0;
  out.waiting = Math.max(0, span - busy);
  return out;
}

/** CPU time (ms) of a process by pid, from /proc (Linux); undefined once it is gone. */
async function procCpuMs(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/** The pids of this process's children named `comm` (the dev server the test environment spawned). */
async function childPids(comm: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && name === comm) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** The benchmark's worker process and its latest report. */
interface BenchWorker {
  child: ChildProcess;
  latest(): WorkerStatus;
  /** A report taken after a garbage collection. */
  afterGc(): Promise<WorkerStatus>;
  /** The SDK core's metrics: each histogram's sum and count (ms), by name and task queue. */
  coreMetrics(): Promise<CoreMetrics>;
  stop(): Promise<void>;
}

/** Histogram sums and counts of the SDK core's metrics, keyed `name task_queue`. */
type CoreMetrics = Map<string, { sum: number; count: number }>;

/** Reads the sums and counts out of a Prometheus text exposition. */
function parseCoreMetrics(text: string): CoreMetrics {
  const out: CoreMetrics = new Map();
  for (const line of text.split('\n')) {
    const m = /^temporal_(\w+)_(sum|count)\{([^}]*)\} ([\d.e+-]+)$/.exec(line);
    if (!m) continue;
    const queue = /task_queue="([^"]*)"/.exec(m[3])?.[1] ?? '';
    const key = `${m[1]} ${queue}`;
    const entry = out.get(key) ?? { sum: 0, count: 0 };
    entry[m[2] as 'sum' | 'count'] += Number(m[4]);
    out.set(key, entry);
  }
  return out;
}

async function forkWorker(
  engine: TestEngine,
  bundles: { keel: string; bare: string },
  profileDir?: string,
): Promise<BenchWorker> {
  const metricsPort = await freePort();
  const child = fork(path.join(__dirname, 'load-worker.ts'), [], {
    cwd: ROOT,
    execArgv: [
      '-r',
      'ts-node/register/transpile-only',
      '--expose-gc',
      ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    ],
    env: {
      ...process.env,
      DATABASE_URL: engine.db.url,
      TEMPORAL_ADDRESS: engine.temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      KEEL_TASK_QUEUE: engine.taskQueue,
      SMTP_URL: engine.smtp.url,
      KEEL_WORKFLOW_BUNDLE: bundles.keel,
      BENCH_BARE_BUNDLE: bundles.bare,
      BENCH_BARE_TASK_QUEUE: bareQueue(engine),
      BENCH_RECORDS_TASK_QUEUE: recordsQueue(engine),
      BENCH_CORE_METRICS_PORT: String(metricsPort),
      KEEL_OPERATOR_NAME: 'Bench Operator',
      KEEL_OUTBOX_DIR: path.join(ROOT, '.keel', 'bench', 'outbox'),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let latest: WorkerStatus | undefined;
  let gcWaiter: ((s: WorkerStatus) => void) | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m: WorkerStatus | { type: 'ready' }) => {
      if (m.type === 'ready') resolve();
      else {
        latest = m;
        gcWaiter?.(m);
        gcWaiter = undefined;
      }
    });
    child.once('exit', (code) => reject(new Error(`the benchmark's worker exited (${code}) before it was ready`)));
  });
  const send = (c: WorkerCommand) => child.send(c);
  return {
    child,
    latest: () => {
      if (!latest) throw new Error('the worker has not reported yet');
      return latest;
    },
    afterGc() {
      return new Promise((resolve) => {
        gcWaiter = resolve;
        send({ type: 'gc' });
      });
    },
    async coreMetrics() {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      return parseCoreMetrics(await res.text());
    },
    async stop() {
      if (child.exitCode === null) send({ type: 'stop' });
      await Promise.race([exited, sleep(30_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Once-a-second samples of everything a phase reports besides its goals. */
interface Sample {
  at: number;
  worker: WorkerStatus;
  apiCpuMs: number;
  temporalCpuMs: number;
  pgCpuMs: number;
  pgConnections: number;
  pgActive: number;
  apiStatements: number;
}

async function run() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      rate: { type: 'string', default: '2' },
      approvals: { type: 'string', default: '0.2' },
      rounds: { type: 'string', default: '4' },
      warmup: { type: 'string', default: '5' },
      drain: { type: 'string', default: '60' },
      park: { type: 'string', default: '100' },
      seed: { type: 'string', default: '1' },
      'poll-ms': { type: 'string', default: '20' },
      profile: { type: 'boolean', default: false },
      /** Leave out the baseline that calls every activity Keel's note goals call (bench/workflows/bare.ts). */
      'no-records': { type: 'boolean', default: false },
    },
  });
  const SIDES: Side[] = values['no-records'] ? ['bare', 'keel'] : ['bare', 'records', 'keel'];
  const seconds = Number(values.seconds);
  const rate = Number(values.rate);
  const approvalShare = Number(values.approvals);
  const rounds = Math.max(1, Number(values.rounds));
  const warmupSeconds = Number(values.warmup);
  const drainMs = Number(values.drain) * 1000;
  const park = Number(values.park);
  const pollMs = Number(values['poll-ms']);
  if (!(seconds > 0 && rate > 0 && approvalShare >= 0 && approvalShare <= 1 && park >= 0))
    throw new Error('--seconds and --rate must be positive, --approvals within 0..1, --park at least 0');
  const random = prng(Number(values.seed));

  // Production's pool size for the API (createPrisma's default); the worker child uses its own default.
  // Keel's worker runs Keel's workflows only (the production entry); the baselines have a bundle of their own,
  // so neither pays for the other's module code when a workflow starts.
  const { engine, cli, bundlePath } = await startBenchEngine({
    poolMax: 10,
    workflowsPath: path.join(ROOT, 'workflows'),
  });
  const bareBundle = await bundleWorkflows(path.join(__dirname, 'workflows', 'bare.ts'), 'bundle-bare', { bare: true });
  const client = engine.temporal.client;
  const apiStatements = countStatements((db) => db === engine.db.name);
  const profileDir = values.profile ? path.join(ROOT, '.keel', 'bench', 'profiles') : undefined;
  if (profileDir) await mkdir(profileDir, { recursive: true });
  const admin = new PgClient({ connectionString: engine.db.url.replace(`/${engine.db.name}`, '/postgres') });
  let worker: BenchWorker | undefined;
  let failed = false;
  try {
    await admin.connect();
    worker = await forkWorker(engine, { keel: bundlePath, bare: bareBundle }, profileDir);
    const w = worker;
    const [temporalPid] = await childPids('temporal');
    const pgCpu = new Map<number, number>();

    const sample = async (): Promise<Sample> => {
      const { rows } = await admin.query<{ pid: number; state: string | null }>(
        'select pid, state from pg_stat_activity where datname = $1',
        [engine.db.name],
      );
      let pgCpuMs = 0;
      for (const r of rows) {
        const cpu = await procCpuMs(r.pid);
        if (cpu !== undefined) pgCpu.set(r.pid, cpu);
      }
      // Backends that closed keep what they used while we saw them.
      for (const cpu of pgCpu.values()) pgCpuMs += cpu;
      const cpu = process.cpuUsage();
      return {
        at: now(),
        worker: w.latest(),
        apiCpuMs: (cpu.user + cpu.system) / 1000,
        temporalCpuMs: temporalPid ? ((await procCpuMs(temporalPid)) ?? 0) : 0,
        pgCpuMs,
        pgConnections: rows.length,
        pgActive: rows.filter((r) => r.state !== null && r.state !== 'idle').length,
        apiStatements: apiStatements(),
      };
    };

    let seq = 0;
    /** Waits until the query of `workflowId` satisfies `until`; the state it saw. */
    async function pollQuery<T>(q: () => Promise<T>, until: (s: T) => boolean, everyMs: number): Promise<T> {
      for (;;) {
        const s = await q();
        if (until(s)) return s;
        await sleep(everyMs);
      }
    }

    /** The approval sampler: decides a waiting email as soon as the query shows it, and times the decision. */
    async function decide(side: Side, workflowId: string, rec: GoalRecord): Promise<void> {
      const handle = client.workflow.getHandle(workflowId);
      if (side === 'keel') {
        const asking = await pollQuery(
          () => handle.query(stateQuery),
          (s: GoalState) => isFinished(s.status) || s.approvals.some((a) => a.status === 'pending' && a.opened),
          pollMs,
        );
        const approval = asking.approvals.find((a) => a.status === 'pending' && a.opened);
        if (!approval) throw new Error(`goal ${workflowId} ended ${asking.status} without asking`);
        const sent = now();
        const res = await engine.http('POST', `/v1/approvals/${approval.approvalId}/decision`, { decision: 'approve' });
        if (res.status !== 200) throw new Error(`decision answered ${res.status}: ${JSON.stringify(res.body)}`);
        const answered = now();
        await pollQuery(
          () => handle.query(stateQuery),
          // The next state: the approval approved, the goal no longer waiting, and the held step moving on.
          (s: GoalState) =>
            s.status !== 'awaiting_approval' &&
            s.approvals.some((a) => a.approvalId === approval.approvalId && a.status === 'approved') &&
            s.plan.steps.some(
              (st) => st.id === approval.stepId && !['pending', 'awaiting_approval'].includes(st.status),
            ),
          0,
        );
        rec.decision = { sent, answered, visible: now() };
      } else {
        await pollQuery(
          () => handle.query(bareStateQuery),
          (s) => s.status === 'awaiting_approval',
          pollMs,
        );
        const sent = now();
        await handle.executeUpdate(bareDecideUpdate, { args: [{ decision: 'approve' }] });
        const answered = now();
        await pollQuery(
          () => handle.query(bareStateQuery),
          (s) => s.decision === 'approve',
          0,
        );
        rec.decision = { sent, answered, visible: now() };
      }
    }

    async function runGoal(side: Side, shape: GoalShape, into: GoalRecord[]): Promise<void> {
      const i = seq++;
      const rec: GoalRecord = { side, shape, start: now(), startWall: Date.now() };
      into.push(rec);
      try {
        rec.workflowId =
          side === 'keel'
            ? await startKeelGoal(engine, shape, i)
            : side === 'records'
              ? await startBareRecordedGoal(engine, recordsQueue(engine), shape, i)
              : await startBareGoal(client, bareQueue(engine), shape, i);
        const done = side === 'keel' ? keelGoalDone(client, rec.workflowId) : bareGoalDone(client, rec.workflowId);
        done.catch(() => undefined); // awaited below, after the decision
        if (shape === 'email') await decide(side, rec.workflowId, rec);
        await done;
        rec.end = now();
      } catch (err) {
        rec.error = err instanceof Error ? err.message : String(err);
      }
    }

    /** Open-loop arrivals for `secs` at `rate`; then waits (at most the drain time) for every goal to end. */
    async function phase(side: Side, secs: number) {
      const goals: GoalRecord[] = [];
      const jobs: Promise<void>[] = [];
      const samples: Sample[] = [await sample()];
      const sampler = setInterval(() => {
        sample().then(
          (s) => samples.push(s),
          () => undefined,
        );
      }, 1000);
      const t0 = now();
      let next = t0;
      let lateMs = 0;
      for (;;) {
        next += (-Math.log(1 - random()) / rate) * 1000;
        if (next - t0 >= secs * 1000) break;
        await sleep(next - now());
        lateMs = Math.max(lateMs, now() - next);
        jobs.push(runGoal(side, random() < approvalShare ? 'email' : 'note', goals));
      }
      const offeredEnd = now();
      const drained = await Promise.race([Promise.all(jobs).then(() => true), sleep(drainMs).then(() => false)]);
      clearInterval(sampler);
      samples.push(await sample());
      return { side, goals, samples, t0, offeredEnd, drained, lateMs };
    }
    type Phase = Awaited<ReturnType<typeof phase>>;

    console.log(
      `bench:load  seconds=${seconds} rate=${rate}/s approvals=${approvalShare} rounds=${rounds} warmup=${warmupSeconds}s park=${park}  (Temporal CLI: ${cli.source}; worker pid ${w.child.pid}, dev server pid ${temporalPid ?? 'not found'})`,
    );
    for (const side of SIDES) if (warmupSeconds > 0) await phase(side, warmupSeconds);

    const phases: Phase[] = [];
    const coreBefore = await w.coreMetrics();
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? SIDES : [...SIDES].reverse();
      for (const side of order) {
        const p = await phase(side, seconds / rounds);
        const done = p.goals.filter((g) => g.end !== undefined).length;
        console.log(
          `# round ${r + 1} ${side}: ${p.goals.length} started, ${done} completed, ${p.goals.filter((g) => g.error).length} failed, arrivals at most ${p.lateMs.toFixed(0)} ms late`,
        );
        phases.push(p);
      }
    }

    const coreAfter = await w.coreMetrics();

    // --- figures, per side over its phases -----------------------------------
    const figures: Partial<
      Record<Side, { all: Latencies; notes: Latencies; roundTrip: Latencies; sentToVisible: Latencies }>
    > = {};
    const lines: string[] = [];
    const out = (name: string, value: string) => lines.push(`${name}: ${value}`);
    let stuckTotal = 0;
    let failedTotal = 0;
    for (const side of SIDES) {
      const mine = phases.filter((p) => p.side === side);
      const goals = mine.flatMap((p) => p.goals);
      const done = goals.filter((g) => g.end !== undefined);
      const failures = goals.filter((g) => g.error !== undefined);
      const stuck = goals.filter((g) => g.end === undefined && g.error === undefined);
      stuckTotal += stuck.length;
      failedTotal += failures.length;
      const wall = mine.reduce((sum, p) => sum + (Math.max(...p.goals.map((g) => g.end ?? 0), p.offeredEnd) - p.t0), 0);
      const span = (pick: (s: Sample) => number) =>
        mine.reduce((sum, p) => sum + pick(p.samples[p.samples.length - 1]) - pick(p.samples[0]), 0);
      const sampledMs = mine.reduce((sum, p) => sum + p.samples[p.samples.length - 1].at - p.samples[0].at, 0);
      const all = latencies(done.map((g) => g.end! - g.start));
      const notes = latencies(done.filter((g) => g.shape === 'note').map((g) => g.end! - g.start));
      const emails = latencies(done.filter((g) => g.shape === 'email').map((g) => g.end! - g.start));
      const decided = done.filter((g) => g.decision);
      const post = latencies(decided.map((g) => g.decision!.answered - g.decision!.sent));
      const visible = latencies(decided.map((g) => g.decision!.visible - g.decision!.answered));
      const roundTrip = latencies(decided.map((g) => g.decision!.visible - g.decision!.sent));
      figures[side] = { all, notes, roundTrip: visible, sentToVisible: roundTrip };
      const allSamples = mine.flatMap((p) => p.samples);
      const cpuShare = (pick: (s: Sample) => number) => `${((span(pick) / sampledMs) * 100).toFixed(0)}%`;
      const perGoal = (pick: (s: Sample) => number) => (span(pick) / Math.max(1, done.length)).toFixed(1);
      out(`${side} goals started`, `${goals.length} (${goals.filter((g) => g.shape === 'email').length} emails)`);
      out(`${side} goals completed`, String(done.length));
      out(`${side} goals failed`, String(failures.length));
      out(`${side} goals stuck`, String(stuck.length));
      out(`${side} goals/s completed`, ((done.length / wall) * 1000).toFixed(2));
      out(`${side} start-to-complete p50/p95/p99 ms`, `${ms(all.p50)} / ${ms(all.p95)} / ${ms(all.p99)}`);
      out(`${side} notes p50/p95/p99 ms`, `${ms(notes.p50)} / ${ms(notes.p95)} / ${ms(notes.p99)} (n ${notes.n})`);
      out(`${side} emails p50/p95/p99 ms`, `${ms(emails.p50)} / ${ms(emails.p95)} / ${ms(emails.p99)} (n ${emails.n})`);
      out(`${side} decision sent → answered (2xx) p50/p95 ms`, `${ms(post.p50)} / ${ms(post.p95)}`);
      out(
        `${side} approval round trip (2xx → next state in the query) p50/p95 ms`,
        `${ms(visible.p50)} / ${ms(visible.p95)}`,
      );
      out(`${side} decision sent → next state in the query p50/p95 ms`, `${ms(roundTrip.p50)} / ${ms(roundTrip.p95)}`);
      out(
        `${side} worker CPU`,
        `${cpuShare((s) => s.worker.cpuMs)} of a core, ${perGoal((s) => s.worker.cpuMs)} ms per goal`,
      );
      out(`${side} API+driver CPU`, `${cpuShare((s) => s.apiCpuMs)}, ${perGoal((s) => s.apiCpuMs)} ms per goal`);
      out(
        `${side} dev server CPU`,
        `${cpuShare((s) => s.temporalCpuMs)}, ${perGoal((s) => s.temporalCpuMs)} ms per goal`,
      );
      out(`${side} PostgreSQL CPU`, `${cpuShare((s) => s.pgCpuMs)}, ${perGoal((s) => s.pgCpuMs)} ms per goal`);
      out(
        `${side} SQL statements per goal`,
        `worker ${perGoal((s) => s.worker.statements)}, API ${perGoal((s) => s.apiStatements)}`,
      );
      out(
        `${side} worker RSS max MB / cached goals max`,
        `${(Math.max(...allSamples.map((s) => s.worker.rss)) / 2 ** 20).toFixed(0)} / ${Math.max(...allSamples.map((s) => s.worker.cachedWorkflows))}`,
      );
      out(
        `${side} PostgreSQL connections max / busy max / busy mean`,
        `${Math.max(...allSamples.map((s) => s.pgConnections))} / ${Math.max(...allSamples.map((s) => s.pgActive))} / ${(allSamples.reduce((a, s) => a + s.pgActive, 0) / allSamples.length).toFixed(1)}`,
      );
      // The SDK core's view of the same goals (its task queue is the side's own): per goal, the workflow
      // tasks' processing (local activities inside it), the local activities, the activities.
      const queue = sideQueue(engine, side);
      const core = (name: string) => {
        const a = coreAfter.get(`${name} ${queue}`) ?? { sum: 0, count: 0 };
        const b = coreBefore.get(`${name} ${queue}`) ?? { sum: 0, count: 0 };
        const n = Math.max(1, done.length);
        return `${((a.sum - b.sum) / n).toFixed(1)} ms in ${((a.count - b.count) / n).toFixed(1)}`;
      };
      out(
        `${side} worker per goal (SDK core metrics)`,
        `workflow tasks ${core('workflow_task_execution_latency')}, local activities ${core('local_activity_execution_latency')} (scheduled → done ${core('local_activity_succeed_endtoend_latency')}), activities ${core('activity_execution_latency')} (queued ${core('activity_schedule_to_start_latency')})`,
      );
      for (const f of failures.slice(0, 3)) console.log(`# ${side} failure: ${f.error}`);
      for (const s of stuck.slice(0, 3)) console.log(`# ${side} stuck: ${s.workflowId ?? '(not started)'}`);
    }

    // --- Temporal round trips per goal: the events in a few completed goals' histories ---------------
    for (const side of SIDES) {
      for (const shape of ['note', 'email'] as GoalShape[]) {
        const goals = phases
          .filter((p) => p.side === side)
          .flatMap((p) => p.goals)
          .filter((g) => g.shape === shape && g.end !== undefined)
          .slice(0, 30);
        if (goals.length === 0) continue;
        const ids = goals.slice(0, 5).map((g) => g.workflowId!);
        const counts: Record<string, number> = {};
        const spent: Record<TimeSpent, number[]> = {
          start: [],
          workflowTaskQueued: [],
          workflowTaskRunning: [],
          firstWorkflowTask: [],
          lastWorkflowTask: [],
          activityQueued: [],
          activityRunning: [],
          waiting: [],
          result: [],
        };
        for (const g of goals) {
          const history = await client.workflow.getHandle(g.workflowId!).fetchHistory();
          const t = timeSpent(history.events ?? [], g.startWall, g.startWall + (g.end! - g.start));
          for (const k of Object.keys(spent) as TimeSpent[]) spent[k].push(t[k]);
          if (!ids.includes(g.workflowId!)) continue;
          for (const e of history.events ?? []) {
            const kind = Object.keys(e).find((k) => k.endsWith('EventAttributes') && (e as never)[k]);
            const name = (kind ?? 'other').replace(/EventAttributes$/, '');
            counts[name] = (counts[name] ?? 0) + 1;
          }
        }
        const per = (k: string) => ((counts[k] ?? 0) / ids.length).toFixed(1);
        const total = Object.values(counts).reduce((a, b) => a + b, 0) / ids.length;
        out(
          `${side} ${shape} history per goal`,
          `${total.toFixed(1)} events, ${per('workflowTaskCompleted')} workflow tasks, ${per('activityTaskScheduled')} activities, ${per('markerRecorded')} markers (local activities, patches), ${per('upsertWorkflowSearchAttributes')} search-attribute upserts, ${per('workflowExecutionUpdateAccepted')} updates`,
        );
        const p50 = (k: TimeSpent) => ms(latencies(spent[k]).p50);
        out(
          `${side} ${shape} time per goal p50 ms (${goals.length} goals)`,
          `start ${p50('start')}, workflow tasks queued ${p50('workflowTaskQueued')} / running ${p50('workflowTaskRunning')} (first ${p50('firstWorkflowTask')}, last ${p50('lastWorkflowTask')}), activities queued ${p50('activityQueued')} / running ${p50('activityRunning')}, waiting for a person ${p50('waiting')}, result ${p50('result')}`,
        );
      }
    }

    // --- memory per cached goal: `park` emails per side left waiting at once ----------------------
    for (const side of SIDES) {
      if (park === 0) break;
      if (side === 'records') continue; // notes only: nothing waits
      const before = await w.afterGc();
      const ids: string[] = [];
      for (let i = 0; i < park; i++) {
        ids.push(
          side === 'keel'
            ? await startKeelGoal(engine, 'email', seq++)
            : await startBareGoal(client, bareQueue(engine), 'email', seq++),
        );
      }
      const waiting = async () => {
        let n = 0;
        for (const id of ids) {
          const handle = client.workflow.getHandle(id);
          const asking =
            side === 'keel'
              ? (await handle.query(stateQuery)).approvals.some((a) => a.status === 'pending' && a.opened)
              : (await handle.query(bareStateQuery)).status === 'awaiting_approval';
          if (asking) n++;
        }
        return n;
      };
      const parkDeadline = now() + 120_000;
      while ((await waiting()) < park && now() < parkDeadline) await sleep(500);
      const parked = await w.afterGc();
      const cached = parked.cachedWorkflows - before.cachedWorkflows;
      out(
        `${side} worker RSS per cached goal KB`,
        `${((parked.rss - before.rss) / Math.max(1, cached) / 1024).toFixed(0)} (main-thread heap ${((parked.heapUsed - before.heapUsed) / Math.max(1, cached) / 1024).toFixed(0)}, workflows live in a worker thread; ${cached} goals cached, RSS ${(before.rss / 2 ** 20).toFixed(0)} → ${(parked.rss / 2 ** 20).toFixed(0)} MB)`,
      );
      // Decided all at once: Keel's through the batch route, the bare ones by update.
      if (side === 'keel') {
        const { body } = await engine.http('GET', `/v1/approvals?status=pending&limit=500`);
        const pending = (body as { approvals: { approvalId: string }[] }).approvals;
        for (let i = 0; i < pending.length; i += 200) {
          const res = await engine.http('POST', '/v1/approvals/decisions', {
            decisions: pending.slice(i, i + 200).map((a) => ({ approvalId: a.approvalId, decision: 'approve' })),
          });
          if (res.status !== 200) throw new Error(`batch decision answered ${res.status}`);
        }
      } else {
        await Promise.all(
          ids.map((id) =>
            client.workflow.getHandle(id).executeUpdate(bareDecideUpdate, { args: [{ decision: 'approve' }] }),
          ),
        );
      }
      const finished = await Promise.race([
        Promise.allSettled(
          ids.map((id) => (side === 'keel' ? keelGoalDone(client, id) : bareGoalDone(client, id))),
        ).then((r) => r.filter((x) => x.status === 'fulfilled').length),
        sleep(drainMs).then(() => -1),
      ]);
      const parkedStuck = finished < 0 ? park : park - finished;
      stuckTotal += parkedStuck;
      out(
        `${side} parked goals finished after one batch of decisions`,
        `${finished < 0 ? 'timed out' : finished} of ${park}`,
      );
    }

    // Keel's own view: every goal it was given ended in PostgreSQL too.
    const unfinished = await engine.db.prisma.goal.count({
      where: { status: { notIn: ['completed', 'failed', 'cancelled'] } },
    });
    out('keel goals not finished in PostgreSQL', String(unfinished));
    stuckTotal += unfinished;

    for (const l of lines) console.log(l);
    console.log(`stuck goals: ${stuckTotal}`);
    console.log(`failed goals: ${failedTotal}`);
    const keel = figures.keel!;
    const bare = figures.bare!;
    // The baseline of the last line is the issue's: bare workflows calling the same activities as Keel (the
    // records side); the bare side, calling only the steps' activities, is printed before it.
    const records = figures.records;
    const ratio = (a: Latencies, b: Latencies) => (a.p50 / b.p50).toFixed(2);
    console.log(`ratio p50 keel/bare steps only, notes: ${ratio(keel.notes, bare.notes)}`);
    console.log(`ratio p50 keel/bare steps only: ${ratio(keel.all, bare.all)}`);
    if (records) console.log(`ratio p50 keel/bare, notes: ${ratio(keel.notes, records.notes)}`);
    console.log(`ratio p50 keel/bare: ${ratio(keel.all, (records ?? bare).all)}${records ? '' : ' (steps only)'}`);
    console.log(`decision sent to next state visible p95: ${ms(keel.sentToVisible.p95)}`);
    console.log(`approval round trip p95: ${ms(keel.roundTrip.p95)}`);
    failed = stuckTotal > 0 || failedTotal > 0;
  } finally {
    await worker?.stop();
    await admin.end().catch(() => undefined);
    await engine.close();
  }
  if (profileDir) console.log(`# CPU profiles of the worker in ${profileDir}`);
  if (failed) process.exit(1);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
