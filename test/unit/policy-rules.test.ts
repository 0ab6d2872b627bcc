/**
 * policy/: the operator's approval rules, tool allow-lists and rate-limit
 * settings, pure. The default policy keeps what every goal before policies
 * had: irreversible and external steps wait, nothing else does.
 */
import { loadConfig } from '../../config';
import {
  approvalReasons,
  emailAddresses,
  expiryDecision,
  requiresApproval,
  stepRecipients,
  toolAllowed,
} from '../../policy/approvals';
import { DEFAULT_POLICY, policySchema, type Policy } from '../../policy/settings';
import type { PlanStep } from '../../shared/plan';
import { TOOLS } from '../../tools/registry';

const step = (tool: string, inputs: PlanStep['inputs'] = {}) => ({ tool, inputs });
const policy = (p: unknown): Policy => policySchema.parse(p);

describe('approval rules', () => {
  test('the default policy: every irreversible or external tool waits, no other does', () => {
    for (const spec of Object.values(TOOLS)) {
      expect(requiresApproval(step(spec.name), { policy: DEFAULT_POLICY })).toBe(
        spec.irreversible || spec.risk === 'external',
      );
    }
    expect(approvalReasons(step('email.send', { to: 'ada@example.com' }), { policy: DEFAULT_POLICY })).toEqual([
      'email.send cannot be undone',
    ]);
  });

  test('irreversible steps wait even when the policy would let everything through', () => {
    const lax = policy({ approve: { minRisk: 'external', firstContact: false, untrusted: false } });
    expect(requiresApproval(step('email.send'), { policy: lax })).toBe(true);
    expect(requiresApproval(step('crm.export'), { policy: lax })).toBe(true);
    expect(approvalReasons(step('crm.export'), { policy: lax })).toEqual(['crm.export is not a known tool']);
  });

  test('by tool and by risk', () => {
    const p = policy({ approve: { tools: ['text.summarize'], minRisk: 'internal' } });
    expect(approvalReasons(step('text.summarize'), { policy: p })).toEqual([
      'the policy asks before every text.summarize',
      'text.summarize is internal and the policy asks from internal up',
    ]);
    expect(approvalReasons(step('email.draft'), { policy: p })).toEqual([
      'email.draft is internal and the policy asks from internal up',
    ]);
    expect(requiresApproval(step('memory.recall'), { policy: p })).toBe(false);
    expect(requiresApproval(step('email.draft'), { policy: DEFAULT_POLICY })).toBe(false);
  });

  test('first contact: a recipient who is not a contact is named; contacts and unknown contact lists are not', () => {
    const send = step('email.send', { to: 'Ada <ADA@example.com>, bo@example.com', draft: { fromStep: 'd' } });
    expect(stepRecipients(send)).toEqual(['ada@example.com', 'bo@example.com']);
    expect(approvalReasons(send, { policy: DEFAULT_POLICY, contacts: ['ada@example.com'] })).toContain(
      'first contact with bo@example.com',
    );
    expect(
      approvalReasons(send, { policy: DEFAULT_POLICY, contacts: ['ada@example.com', 'bo@example.com'] }),
    ).not.toEqual(expect.arrayContaining([expect.stringContaining('first contact')]));
    const off = policy({ approve: { firstContact: false } });
    expect(approvalReasons(send, { policy: off, contacts: [] })).toEqual(['email.send cannot be undone']);
    // A reference names nobody yet.
    expect(stepRecipients(step('email.send', { to: { fromStep: 'x' } }))).toEqual([]);
  });

  test('audience and amount thresholds', () => {
    const p = policy({ approve: { audienceOver: 1, amountOverUsd: 500 } });
    const many = step('email.send', { to: 'a@x.test, b@x.test' });
    expect(approvalReasons(many, { policy: p })).toContain("reaches 2 people, over the policy's 1");
    expect(approvalReasons(step('email.send', { to: 'a@x.test' }), { policy: p })).not.toEqual(
      expect.arrayContaining([expect.stringContaining('reaches')]),
    );
    expect(approvalReasons(step('text.summarize', { source: 'x', amount: '$1,200' }), { policy: p })).toEqual([
      "moves $1200, over the policy's $500",
    ]);
    expect(requiresApproval(step('text.summarize', { source: 'x', amountUsd: 499 }), { policy: p })).toBe(false);
    expect(requiresApproval(step('text.summarize', { source: 'x', amount: 'n/a' }), { policy: p })).toBe(false);
  });

  test('a goal started from outside content: steps that write memory or reach outside wait, reads and drafts do not', () => {
    const ctx = { policy: DEFAULT_POLICY, untrusted: true };
    expect(approvalReasons(step('outcome.record'), ctx)).toEqual(['the goal was started from outside content']);
    expect(approvalReasons(step('email.send'), ctx)).toEqual([
      'email.send cannot be undone',
      'the goal was started from outside content',
    ]);
    expect(requiresApproval(step('email.draft'), ctx)).toBe(false);
    expect(requiresApproval(step('text.summarize'), ctx)).toBe(false);
    expect(requiresApproval(step('memory.recall'), ctx)).toBe(false);
    expect(requiresApproval(step('outcome.record'), { policy: DEFAULT_POLICY })).toBe(false);
    expect(
      requiresApproval(step('outcome.record'), { ...ctx, policy: policy({ approve: { untrusted: false } }) }),
    ).toBe(false);
  });
});

describe('tool allow-lists per goal kind', () => {
  test('a kind with a list may use only those tools; `*` covers kinds without their own; no list allows all', () => {
    const p = policy({ tools: { email: ['memory.recall', 'email.draft', 'email.send'], '*': ['memory.recall'] } });
    expect(toolAllowed(p, 'email', 'email.send')).toBe(true);
    expect(toolAllowed(p, 'email', 'webhook.call')).toBe(false);
    expect(toolAllowed(p, 'note', 'memory.recall')).toBe(true);
    expect(toolAllowed(p, 'note', 'email.send')).toBe(false);
    expect(toolAllowed(DEFAULT_POLICY, 'anything', 'webhook.call')).toBe(true);
  });
});

describe('KEEL_POLICY', () => {
  test('parsed once with the config; a bad policy names the problem', () => {
    expect(loadConfig({}).KEEL_POLICY).toEqual(DEFAULT_POLICY);
    const c = loadConfig({
      KEEL_POLICY: '{"approve":{"tools":["webhook.call"]},"rateLimits":{"email":{"perHour":20}}}',
    });
    expect(c.KEEL_POLICY.approve.tools).toEqual(['webhook.call']);
    expect(c.KEEL_POLICY.approve.minRisk).toBe('external');
    expect(c.KEEL_POLICY.rateLimits.email).toEqual({ perHour: 20 });
    expect(() => loadConfig({ KEEL_POLICY: '{"approve":{"minRisk":"sometimes"}}' })).toThrow(
      /KEEL_POLICY\.approve\.minRisk/,
    );
    expect(() => loadConfig({ KEEL_POLICY: '{"rateLimits":{"email":{}}}' })).toThrow(/perMinute, perHour or perDay/);
    expect(() => loadConfig({ KEEL_POLICY: '{"aprove":{}}' })).toThrow(/KEEL_POLICY/);
    expect(() => loadConfig({ KEEL_POLICY: 'not json' })).toThrow(/KEEL_POLICY: not valid JSON/);
  });
});

describe('finding addresses in hostile text', () => {
  test('a long run of letters without an @ is read in linear time (an unbounded pattern backtracks for ever)', () => {
    // Quadratic backtracking on a million characters would run for hours; this returns at once.
    expect(emailAddresses('y'.repeat(1_000_000))).toEqual([]);
    expect(emailAddresses(`${'a'.repeat(500_000)}@${'b'.repeat(500_000)}`)).toEqual([]);
    expect(emailAddresses(`${'x '.repeat(100_000)}Ada <Ada.L@Example.com>, bo@mail.example.co.uk`)).toEqual([
      'ada.l@example.com',
      'bo@mail.example.co.uk',
    ]);
  });

  test('addresses keep RFC 5321 limits and are not cut out of longer runs', () => {
    expect(emailAddresses(`${'a'.repeat(65)}@example.com`)).toEqual([]);
    expect(emailAddresses(`${'a'.repeat(64)}@example.com`)).toEqual([`${'a'.repeat(64)}@example.com`]);
  });
});

describe('what an approval becomes on expiry', () => {
  test('reject by default; approve where the policy says so for a reversible tool; never for an irreversible one', () => {
    const p = policy({ approve: { onExpiry: { 'outcome.record': 'approve', 'email.send': 'approve' } } });
    expect(expiryDecision(DEFAULT_POLICY, 'outcome.record')).toBe('reject');
    expect(expiryDecision(p, 'outcome.record')).toBe('approve');
    expect(expiryDecision(p, 'email.send')).toBe('reject');
    expect(expiryDecision(p, 'budget.raise')).toBe('reject');
    expect(() => policy({ approve: { onExpiry: { 'email.send': 'maybe' } } })).toThrow();
  });
});
