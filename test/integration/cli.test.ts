/**
 * `npx keel` against a running API: the CLI runs as a child process (node
 * bin/keel.js, as npx runs it) with KEEL_URL and KEEL_API_KEY pointing at a
 * real engine (Temporal dev server, PostgreSQL, a worker, the test SMTP
 * server). What a person sees is checked on stdout and stderr, what happened
 * through the API, the database and the SMTP server, and every failure by its
 * exit code.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEngine, type TestEngine } from '../helpers/engine';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'keel.js');

let engine: TestEngine;
let scratch: string;

beforeAll(async () => {
  engine = await startEngine();
  await engine.startWorker();
  // The CLI runs from here: nowhere near the repository's .keel/api-key.
  scratch = mkdtempSync(path.join(tmpdir(), 'keel-cli-test-'));
});
afterAll(async () => {
  await engine?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to the end, asynchronously: the API it talks to is served by this very process. */
function keel(
  args: string[],
  env: Record<string, string | undefined> = {},
  { timeoutMs = 90_000, cwd = scratch }: { timeoutMs?: number; cwd?: string } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/^(KEEL_|EDITOR|VISUAL)/.test(k)),
    );
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...inherited, KEEL_URL: engine.apiUrl, KEEL_API_KEY: engine.apiKey, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keel ${args.join(' ')} ran over ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The goal id `keel goal start` printed first. */
function startedGoalId(run: CliRun): string {
  const m = /^goal (\S+) started: /m.exec(run.stdout);
  if (!m) throw new Error(`no goal id in:\n${run.stdout}\n${run.stderr}`);
  return m[1];
}

async function pendingApprovalOf(goalId: string) {
  const goal = await engine.waitForGoal(goalId, (g) => g.status === 'awaiting_approval');
  const pending = goal.approvals.filter((a: any) => a.status === 'pending');
  expect(pending).toHaveLength(1);
  return pending[0];
}

/** A program for EDITOR: `node <script>`, the script given the file to change. */
function editorScript(name: string, source: string): string {
  const file = path.join(scratch, `${name}.js`);
  writeFileSync(file, source);
  return `'${process.execPath}' '${file}'`;
}

const sentTo = (to: string) => engine.smtp.messages.filter((m) => m.to.includes(to));
const uniq = () => randomBytes(3).toString('hex');

describe('a goal from start to finish', () => {
  const to = `ada-${uniq()}@example.com`;
  let goalId: string;
  let approvalId: string;

  test('goal start follows the goal until it waits for approval, then says how to decide', async () => {
    const run = await keel(['goal', 'start', `Email ${to} a thank-you note for the referral`, '--interval', '200']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    goalId = startedGoalId(run);
    const approval = await pendingApprovalOf(goalId);
    approvalId = approval.approvalId;

    const out = run.stdout;
    expect(out).toMatch(/plan v1: \d+ steps/);
    // Each poll prints what changed; a step that starts and finishes between two polls shows only `completed`.
    expect(out).toMatch(/step .+: completed/);
    expect(out).toMatch(/step .+: awaiting_approval/);
    expect(out).toContain('→ awaiting_approval');
    expect(out).toContain(`approval ${approvalId} requested: ${approval.summary}`);
    expect(out).toContain('Waiting for your decision:');
    expect(out).toContain(`keel approvals approve ${approvalId}`);
    expect(out).toContain(`keel approvals edit ${approvalId}`);
    expect(out).toContain(`keel approvals reject ${approvalId} --reason`);
    // Lines in the order they happened: the plan before the approval, the approval before the help.
    expect(out.indexOf('plan v1')).toBeLessThan(out.indexOf('requested:'));
    expect(out.indexOf('requested:')).toBeLessThan(out.indexOf('Waiting for your decision'));
  });

  test('approvals list shows it, as text, JSON and grouped by kind', async () => {
    const text = await keel(['approvals', 'list']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(approvalId);
    expect(text.stdout).toContain(`Send an email to ${to}`);
    expect(text.stdout).toContain(`goal ${goalId}`);
    expect(text.stdout).toMatch(/expires in \d+/);
    expect(text.stdout).toMatch(/risk external · cost so far \$/);

    const json = await keel(['approvals', 'list', '--json']);
    expect(json.code).toBe(0);
    const ids = JSON.parse(json.stdout).approvals.map((a: any) => a.approvalId);
    expect(ids).toContain(approvalId);

    const grouped = await keel(['approvals', 'list', '--group-by', 'kind']);
    expect(grouped.code).toBe(0);
    expect(grouped.stdout).toMatch(/^email\.send \(\d+\)$/m);
    expect(grouped.stdout).toContain(approvalId);
  });

  test('approvals approve: the goal completes and exactly one email goes out', async () => {
    const run = await keel(['approvals', 'approve', approvalId, '--comment', 'looks good']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`approval ${approvalId} approved`);
    const goal = await engine.waitForGoal(goalId, (g) => g.status === 'completed');
    expect(goal.approvals[0]).toMatchObject({ status: 'approved', comment: 'looks good' });
    await engine.smtp.waitFor(1);
    expect(sentTo(to)).toHaveLength(1);
  });

  test('deciding it again is the API’s 409, its message on stderr, exit code 1', async () => {
    const run = await keel(['approvals', 'reject', approvalId, '--reason', 'too late']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^keel: approval \S+ is already approved/);
    expect(run.stdout).toBe('');
    expect(sentTo(to)).toHaveLength(1);
  });

  test('goal explain reads as sentences; --json is the API’s answer', async () => {
    const run = await keel(['goal', 'explain', goalId]);
    expect(run.code).toBe(0);
    const text = run.stdout;
    expect(text.trimStart().startsWith('{')).toBe(false);
    expect(text).toContain(`Email ${to} a thank-you note for the referral`);
    expect(text).toContain(`Goal ${goalId} is completed; it cost`);
    expect(text).toMatch(/^1\. .+ — completed$/m);
    expect(text).toMatch(/^ {3}Why: .+/m);
    expect(text).toMatch(/^ {3}With: .*to=/m);
    expect(text).toMatch(/Approval: approved by operator:test at .*, saying "looks good"/);
    expect(text).toMatch(/^Plan v1 accepted \(by .+\) at .+: /m);
    expect(text).toMatch(/Side effect: email\.send committed \(key \S+; .*messageId=</);
    expect(text).toContain('draft=(from step draft)');

    const json = await keel(['goal', 'explain', goalId, '--json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout);
    expect(parsed).toMatchObject({ goalId, status: 'completed' });
    expect(parsed.actions.length).toBeGreaterThan(0);
  });

  test('goal show, list and plans', async () => {
    const show = await keel(['goal', 'show', goalId]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^ {2}status {3}completed$/m);
    expect(show.stdout).toContain('Plan v1:');
    expect(show.stdout).toMatch(new RegExp(`${approvalId} {2}approved by operator:test`));

    const list = await keel(['goal', 'list', '--status', 'completed']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^GOAL +STATUS +COST +CREATED +TITLE$/m);
    expect(list.stdout).toContain(goalId);

    const plans = await keel(['goal', 'plans', goalId]);
    expect(plans.code).toBe(0);
    expect(plans.stdout).toMatch(/^Plan v1 — accepted/m);
  });
});

describe('rejecting', () => {
  test('approvals reject needs a reason; with one, the decision keeps it and nothing is sent', async () => {
    const to = `bob-${uniq()}@example.com`;
    const start = await keel(['goal', 'start', `Email ${to} a thank-you note for the referral`, '--no-follow']);
    expect(start.code).toBe(0);
    expect(start.stdout).toContain('Follow it with: keel goal follow');
    const goalId = startedGoalId(start);
    const approval = await pendingApprovalOf(goalId);

    const noReason = await keel(['approvals', 'reject', approval.approvalId]);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain("required option '--reason <text>' not specified");

    const run = await keel(['approvals', 'reject', approval.approvalId, '--reason', 'Not this week']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`approval ${approval.approvalId} rejected: Not this week`);
    const { body } = await engine.http('GET', `/v1/approvals?goalId=${goalId}`);
    expect(body.approvals.find((a: any) => a.approvalId === approval.approvalId)).toMatchObject({
      status: 'rejected',
      comment: 'Not this week',
    });
    expect(sentTo(to)).toHaveLength(0);

    // A reason replans (policy replan.onRejection); cancel what the new plan waits for.
    const cancel = await keel(['goal', 'cancel', goalId, '--reason', 'test over']);
    expect(cancel.code).toBe(0);
    await engine.waitForGoal(goalId, (g) => g.status === 'cancelled');
    expect(sentTo(to)).toHaveLength(0);
  });
});

describe('editing in $EDITOR', () => {
  const to = `cy-${uniq()}@example.com`;
  let goalId: string;
  let approvalId: string;

  beforeAll(async () => {
    // Something to recall, so the explanation has a memory to name.
    const saved = await engine.http('POST', '/v1/memory', {
      text: 'Cy prefers short notes, signed with a first name',
      subject: `contact:${to}`,
    });
    expect(saved.status).toBe(201);
    const start = await keel(['goal', 'start', `Email ${to} a thank-you note for the referral`, '--no-follow']);
    goalId = startedGoalId(start);
    approvalId = (await pendingApprovalOf(goalId)).approvalId;
  });

  test('an unchanged or emptied file aborts, nothing decided', async () => {
    const unchanged = await keel(['approvals', 'edit', approvalId], { EDITOR: 'true' });
    expect(unchanged.code).toBe(1);
    expect(unchanged.stderr).toContain('keel: aborted: the file is unchanged; nothing was decided');

    const emptied = await keel(['approvals', 'edit', approvalId], {
      EDITOR: editorScript('empty', "require('node:fs').writeFileSync(process.argv[2], '');"),
    });
    expect(emptied.code).toBe(1);
    expect(emptied.stderr).toContain('keel: aborted: the file is empty; nothing was decided');

    const failing = await keel(['approvals', 'edit', approvalId], { EDITOR: 'false' });
    expect(failing.code).toBe(1);
    expect(failing.stderr).toContain('exited with code 1; nothing was decided');

    const goal = await engine.waitForGoal(goalId, () => true);
    expect(goal.status).toBe('awaiting_approval');
    expect(goal.approvals[0].status).toBe('pending');
    expect(sentTo(to)).toHaveLength(0);
  });

  test('the editor sees subject and body; the email sent is the edited one', async () => {
    const seen = path.join(scratch, 'seen.txt');
    const editor = editorScript(
      'rewrite',
      `const fs = require('node:fs');
       const file = process.argv[2];
       const text = fs.readFileSync(file, 'utf8');
       fs.writeFileSync(${JSON.stringify(seen)}, text);
       fs.writeFileSync(file, text
         .replace(/(--- subject ---\\n)[^\\n]*/, '$1Thank you, from the CLI')
         .replace(/(--- body ---\\n)[\\s\\S]*$/, '$1Hi there,\\n\\nThis body was edited in the CLI test.\\n'));`,
    );
    const run = await keel(['approvals', 'edit', approvalId, '--follow', '--interval', '200'], { EDITOR: editor });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`approval ${approvalId} approved with your changes to subject and body`);
    expect(run.stdout).toMatch(/goal completed/);

    const shown = readFileSync(seen, 'utf8');
    expect(shown).toContain(`# keel approvals edit ${approvalId}`);
    expect(shown).toContain(`#   to: ${to}  (not editable)`);
    expect(shown).toMatch(/^--- subject ---\n.+\n--- body ---\n/m);

    const goal = await engine.waitForGoal(goalId, (g) => g.status === 'completed');
    // The decision names the version the editor showed.
    expect(goal.approvals[0].decidedHash).toBe(goal.approvals[0].shownHash);
    expect(goal.approvals[0].shownHash).toMatch(/^[0-9a-f]{64}$/);
    // And says it came from the command line.
    expect(goal.approvals[0].channel).toBe('cli');
    const sent = sentTo(to);
    expect(sent).toHaveLength(1);
    expect(sent[0].subject).toBe('Thank you, from the CLI');
    expect(sent[0].raw).toContain('This body was edited in the CLI test.');

    const explained = await keel(['goal', 'explain', goalId]);
    expect(explained.code).toBe(0);
    expect(explained.stdout).toMatch(
      /Memory used \(\d+\):\n {5}- "Cy prefers short notes, signed with a first name" \(/,
    );
    expect(explained.stdout).toMatch(
      /Approval: approved by operator:test at .* through cli, with edits to (subject and body|body and subject);/,
    );
  });

  test('an approval already decided cannot be edited', async () => {
    const run = await keel(['approvals', 'edit', approvalId], { EDITOR: 'true' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`keel: approval ${approvalId} is not waiting for a decision`);
  });
});

describe('memory search', () => {
  test('finds what was remembered, with scores; --json is the API’s answer', async () => {
    const subject = `contact:dana-${uniq()}@example.com`;
    const saved = await engine.http('POST', '/v1/memory', {
      text: 'Dana prefers phone calls on Tuesday mornings',
      subject,
    });
    expect(saved.status).toBe(201);
    const run = await keel(['memory', 'search', 'Tuesday phone calls', '--k', '3', '--subject', subject]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^1\. score \d\.\d{3} .*semantic · contact:dana-/m);
    expect(run.stdout).toContain('   Dana prefers phone calls on Tuesday mornings');

    const json = await keel(['memory', 'search', 'Tuesday phone calls', '--subject', subject, '--json']);
    expect(JSON.parse(json.stdout).results[0]).toMatchObject({ id: saved.body.id, subject });
  });
});

describe('errors', () => {
  test('an unreachable API: what, where, and what to do; exit code 3', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const { port } = s.address() as AddressInfo;
    await new Promise((r) => s.close(r));
    const run = await keel(['goal', 'list'], { KEEL_URL: `http://127.0.0.1:${port}` });
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim()).toMatch(
      new RegExp(
        `^keel: cannot reach the Keel API at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*; is \`npm start\` running\\?$`,
      ),
    );
  });

  test('a wrong key or none: the API refused the key; exit code 4', async () => {
    const wrong = await keel(['approvals', 'list'], { KEEL_API_KEY: 'not-the-key' });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr.trim()).toBe('keel: the API refused the key (KEEL_API_KEY)');

    const none = await keel(['approvals', 'list'], { KEEL_API_KEY: undefined });
    expect(none.code).toBe(4);
    expect(none.stderr).toContain('KEEL_API_KEY is not set');
  });

  test('without KEEL_API_KEY, an API on this machine gets the key npm start keeps in .keel/api-key', async () => {
    const checkout = mkdtempSync(path.join(scratch, 'checkout-'));
    mkdirSync(path.join(checkout, '.keel'));
    writeFileSync(path.join(checkout, '.keel', 'api-key'), `${engine.apiKey}\n`);
    const run = await keel(['goal', 'list', '--json'], { KEEL_API_KEY: undefined }, { cwd: checkout });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(Array.isArray(JSON.parse(run.stdout).goals)).toBe(true);
  });

  test('404 and 400 carry the API’s own message; exit code 1', async () => {
    const missing = await keel(['goal', 'show', 'no-such-goal']);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('keel: goal no-such-goal does not exist');

    const bad = await keel(['goal', 'start', '   ', '--no-follow']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('keel: title: title is required');

    const approval = await keel(['approvals', 'approve', 'no-such-approval']);
    expect(approval.code).toBe(1);
    expect(approval.stderr.trim()).toBe('keel: approval no-such-approval does not exist');
  });

  test('bad usage is exit code 2, before any request', async () => {
    for (const args of [
      ['goal', 'start'],
      ['goal', 'start', 'x', '--input', '[1]'],
      ['goal', 'start', 'x', '--budget', 'lots'],
      ['goal', 'list', '--status', 'sleeping'],
      ['nonsense'],
    ]) {
      const run = await keel(args, { KEEL_URL: 'http://127.0.0.1:9' });
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toMatch(/error: /);
    }
  });
});
