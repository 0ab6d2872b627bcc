/**
 * The offline planner (planner/offline.ts): how it reads a goal, that every
 * plan it makes passes the policy, that its prompt hash tracks what it was
 * asked, and that it never passes itself off as a model.
 */
import type { PlanGoalInput } from '../../shared/activity-io';
import { OFFLINE_PLANNER, classifyGoal, planOffline } from '../../planner/offline';
import { requiresApproval, validatePlan } from '../../policy';

function goal(over: Partial<PlanGoalInput> = {}): PlanGoalInput {
  return {
    goalId: 'g-1',
    title: 'Summarize the week',
    kind: 'general',
    input: {},
    planVersion: 1,
    feedback: [],
    ...over,
  };
}

describe('classifyGoal', () => {
  test('kind "email" with input.to is an email to that address, whatever the title says', () => {
    expect(classifyGoal(goal({ kind: 'email', title: 'Thank the client', input: { to: 'ada@example.com' } }))).toEqual({
      kind: 'email',
      to: 'ada@example.com',
      purpose: 'Thank the client',
    });
  });

  test('input.to wins over an address in the title; input.purpose over the title', () => {
    const intent = classifyGoal(
      goal({
        kind: 'email',
        title: 'Email bob@example.com',
        input: { to: 'ada@example.com', purpose: 'the invoice is late' },
      }),
    );
    expect(intent).toEqual({ kind: 'email', to: 'ada@example.com', purpose: 'the invoice is late' });
  });

  test.each([
    ['Email ada@example.com a thank-you note', 'ada@example.com'],
    ['Reply to ken.ito@acme.co.jp about the quote', 'ken.ito@acme.co.jp'],
    ['Send bob+news@example.org the newsletter', 'bob+news@example.org'],
    ['Write to cy@example.com about lunch', 'cy@example.com'],
    ['e-mail dee@example.net the slides', 'dee@example.net'],
  ])('a general goal "%s" is an email to the address in its title', (title, to) => {
    expect(classifyGoal(goal({ title }))).toEqual({ kind: 'email', to, purpose: title });
  });

  test('the address and the email word may be in the description', () => {
    const intent = classifyGoal(goal({ title: 'Follow up', description: 'Please reply to ada@example.com today' }));
    expect(intent).toEqual({ kind: 'email', to: 'ada@example.com', purpose: 'Follow up' });
  });

  test('a blank input.to does not hide the address in the title', () => {
    expect(classifyGoal(goal({ title: 'Email ada@example.com a hello', input: { to: '' } }))).toMatchObject({
      kind: 'email',
      to: 'ada@example.com',
    });
  });

  test('an address without an email word is a note', () => {
    const intent = classifyGoal(goal({ title: 'Summarize what ada@example.com said last week' }));
    expect(intent.kind).toBe('note');
  });

  test('an email word inside another word does not count ("resend", "sending")', () => {
    expect(classifyGoal(goal({ title: 'Summarize resend stats for ops@example.com' })).kind).toBe('note');
    expect(classifyGoal(goal({ title: 'Notes on sending limits at ops@example.com' })).kind).toBe('note');
  });

  test('an email word without any address is a note (there is nobody to write to)', () => {
    expect(classifyGoal(goal({ title: 'Email the accountant about taxes' })).kind).toBe('note');
    expect(classifyGoal(goal({ kind: 'email', title: 'Email the accountant' })).kind).toBe('note');
  });

  test('kinds "note" and "summary" stay notes even when the title asks to email someone', () => {
    for (const kind of ['note', 'summary']) {
      expect(classifyGoal(goal({ kind, title: 'Email ada@example.com the notes' })).kind).toBe('note');
    }
  });

  test('a note summarizes input.text when given, else the title and description', () => {
    expect(classifyGoal(goal({ kind: 'note', input: { text: 'Acme paid.' } }))).toEqual({
      kind: 'note',
      source: 'Acme paid.',
    });
    expect(classifyGoal(goal({ title: 'Week 12', description: 'Invoices went out.' }))).toEqual({
      kind: 'note',
      source: 'Week 12\n\nInvoices went out.',
    });
    expect(classifyGoal(goal({ title: 'Week 12' }))).toEqual({ kind: 'note', source: 'Week 12' });
  });
});

describe('planOffline', () => {
  const goals: [string, PlanGoalInput][] = [
    ['an email goal from its title', goal({ title: 'Email ada@example.com a thank-you note for the referral' })],
    ['an email goal from kind and input', goal({ kind: 'email', title: 'Chase', input: { to: 'ken@example.com' } })],
    ['a note goal with text', goal({ kind: 'note', title: 'Summarize', input: { text: 'Invoices went out.' } })],
    ['a note goal from its title', goal({ title: 'Summarize the week', description: 'Acme paid. Bob left.' })],
    ['an emoji-heavy title', goal({ title: `Email ada@example.com ${'🎉'.repeat(45)}` })],
    ['a long description', goal({ title: 'Digest', description: 'word '.repeat(5_000) })],
  ];

  test.each(goals)('%s: the plan passes the policy with no problems', (_label, g) => {
    const plan = planOffline(g);
    expect(plan.steps.length).toBeGreaterThan(0);
    expect(validatePlan(plan.steps, { budgetUsd: 5, spentUsd: 0 })).toEqual([]);
  });

  // The API accepts any JSON object as `input`, so blank strings reach the planner.
  test.each<[string, PlanGoalInput]>([
    ['a note goal with a blank input.text', goal({ kind: 'note', title: 'Summarize the week', input: { text: '' } })],
    ['an email goal with a blank input.purpose', goal({ title: 'Email ada@example.com hi', input: { purpose: '' } })],
  ])('%s falls back to the goal text, so the plan still passes the policy', (_label, g) => {
    expect(validatePlan(planOffline(g).steps, { budgetUsd: 5, spentUsd: 0 })).toEqual([]);
  });

  test('an email plan recalls, drafts, sends (held for a person) and records, all to the one recipient', () => {
    const plan = planOffline(goal({ title: 'Reply to ada@example.com about the invoice' }));
    expect(plan.steps.map((s) => s.tool)).toEqual(['memory.recall', 'email.draft', 'email.send', 'outcome.record']);
    const [recall, draft, send] = plan.steps;
    expect(recall.inputs.subject).toBe('ada@example.com');
    expect(draft.inputs.to).toBe('ada@example.com');
    expect(send.inputs.to).toBe('ada@example.com');
    expect(send.inputs.draft).toEqual({ fromStep: draft.id });
    expect(plan.steps.filter((s) => requiresApproval(s)).map((s) => s.tool)).toEqual(['email.send']);
  });

  test('a note plan recalls, summarizes the source and records; nothing waits for a person', () => {
    const plan = planOffline(goal({ kind: 'note', input: { text: 'Acme paid.' } }));
    expect(plan.steps.map((s) => s.tool)).toEqual(['memory.recall', 'text.summarize', 'outcome.record']);
    expect(plan.steps[1].inputs.source).toBe('Acme paid.');
    expect(plan.steps.some((s) => requiresApproval(s))).toBe(false);
  });

  test('labels itself offline: no model, no cost', () => {
    for (const [, g] of goals) {
      const plan = planOffline(g);
      expect(plan.generatedBy).toBe(OFFLINE_PLANNER);
      expect(plan.generatedBy).toBe('offline-planner');
      expect(plan.model).toBe('offline');
      expect(plan.rationale).toMatch(/offline/i);
      expect(plan).toMatchObject({ costUsd: 0, inputTokens: 0, outputTokens: 0 });
    }
  });

  describe('promptHash', () => {
    const base = goal({ title: 'Email ada@example.com about the invoice' });
    const hash = (g: PlanGoalInput) => planOffline(g).promptHash;

    test('is a sha-256 hex digest and the same for the same request', () => {
      expect(hash(base)).toMatch(/^[0-9a-f]{64}$/);
      expect(hash({ ...base })).toBe(hash(base));
    });

    test('changes with every part of the goal', () => {
      const variants = [
        { ...base, title: 'Email ada@example.com about the receipt' },
        { ...base, description: 'she asked twice' },
        { ...base, kind: 'email' },
        { ...base, input: { purpose: 'late payment' } },
      ];
      const hashes = new Set([hash(base), ...variants.map(hash)]);
      expect(hashes.size).toBe(variants.length + 1);
    });

    test('changes with the feedback of a replan', () => {
      const first = hash(base);
      const replan = hash({ ...base, feedback: ['step "send" is missing input "draft"'] });
      const other = hash({ ...base, feedback: ['plan is over budget'] });
      expect(replan).not.toBe(first);
      expect(other).not.toBe(replan);
    });
  });
});
