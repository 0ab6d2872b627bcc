/**
 * The policy module (workflows/policy.ts): every problem code with a plan that
 * triggers it and one that does not, several problems at once, and which steps
 * wait for a person, all read from the tool specs.
 */
import type { PlanStep } from '../../shared/plan';
import { TOOLS, toolSpec } from '../../tools/registry';
import { estimatePlanCost, requiresApproval, validatePlan, type PlanProblem } from '../../policy';

const BUDGET = { budgetUsd: 5, spentUsd: 0 };

function step(id: string, tool: string, inputs: PlanStep['inputs'], dependsOn: string[] = []): PlanStep {
  return { id, tool, title: `${tool} ${id}`, rationale: 'test', inputs, dependsOn };
}

/** The plan the offline planner makes for an email goal: valid by construction. */
function emailPlan(): PlanStep[] {
  return [
    step('recall', 'memory.recall', { query: 'invoice', subject: 'ada@example.com' }),
    step('draft', 'email.draft', { to: 'ada@example.com', purpose: 'invoice', context: { fromStep: 'recall' } }, [
      'recall',
    ]),
    step('send', 'email.send', { to: 'ada@example.com', draft: { fromStep: 'draft' } }, ['draft']),
    step('record', 'outcome.record', { summary: { fromStep: 'send' } }, ['send']),
  ];
}

/** A plan with one step changed. */
function withStep(plan: PlanStep[], id: string, change: Partial<PlanStep>): PlanStep[] {
  return plan.map((s) => (s.id === id ? { ...s, ...change } : s));
}

const codes = (problems: PlanProblem[]) => problems.map((p) => p.code).sort();

describe('validatePlan', () => {
  test('a well-formed plan within budget has no problems', () => {
    expect(validatePlan(emailPlan(), BUDGET)).toEqual([]);
    const note = [
      step('recall', 'memory.recall', { query: 'week' }),
      step('summarize', 'text.summarize', { source: 'Invoices went out.', context: { fromStep: 'recall' } }, [
        'recall',
      ]),
      step('record', 'outcome.record', { summary: { fromStep: 'summarize' } }, ['summarize']),
    ];
    expect(validatePlan(note, BUDGET)).toEqual([]);
  });

  describe('empty_plan', () => {
    test('a plan with no steps is reported, and only that', () => {
      const problems = validatePlan([], BUDGET);
      expect(problems).toEqual([{ code: 'empty_plan', message: expect.any(String) }]);
    });
    test('one valid step is not an empty plan', () => {
      expect(validatePlan([step('only', 'memory.recall', { query: 'x' })], BUDGET)).toEqual([]);
    });
  });

  describe('unknown_tool', () => {
    test('a tool the registry does not know is named in the problem', () => {
      const problems = validatePlan(withStep(emailPlan(), 'send', { tool: 'email.fax' }), BUDGET);
      expect(problems).toEqual([
        { stepId: 'send', code: 'unknown_tool', message: expect.stringContaining('"email.fax"') },
      ]);
    });
    test('names inherited from Object.prototype are not tools', () => {
      for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
        const problems = validatePlan([step('s', name, {})], BUDGET);
        expect(codes(problems)).toEqual(['unknown_tool']);
      }
    });
    test('every registered tool is known', () => {
      for (const name of Object.keys(TOOLS)) {
        const problems = validatePlan([step('s', name, {})], BUDGET);
        expect(codes(problems)).not.toContain('unknown_tool');
      }
    });
  });

  describe('missing_input', () => {
    test.each([
      ['absent', undefined],
      ['null', null],
      ['empty', ''],
    ])('a required input that is %s is missing', (_label, value) => {
      const inputs: PlanStep['inputs'] = { to: 'ada@example.com', context: { fromStep: 'recall' } };
      if (value !== undefined) inputs.purpose = value;
      const problems = validatePlan(withStep(emailPlan(), 'draft', { inputs }), BUDGET);
      expect(problems).toEqual([
        { stepId: 'draft', code: 'missing_input', message: expect.stringContaining('"purpose"') },
      ]);
    });
    test('an optional input may be left out (recall without subject or tokenBudget, draft without context)', () => {
      const plan = [
        step('recall', 'memory.recall', { query: 'x' }),
        step('draft', 'email.draft', { to: 'ada@example.com', purpose: 'hello' }),
      ];
      expect(validatePlan(plan, BUDGET)).toEqual([]);
    });
    test('a required reference input that is left out is missing, not a bad reference', () => {
      const problems = validatePlan(withStep(emailPlan(), 'send', { inputs: { to: 'ada@example.com' } }), BUDGET);
      expect(problems).toEqual([
        { stepId: 'send', code: 'missing_input', message: expect.stringContaining('"draft"') },
      ]);
    });
  });

  describe('invalid_input: literals are checked against the spec schema', () => {
    test.each<[string, string, PlanStep['inputs'], string]>([
      ['a negative token budget', 'memory.recall', { query: 'x', tokenBudget: -5 }, 'tokenBudget'],
      ['a fractional token budget', 'memory.recall', { query: 'x', tokenBudget: 1.5 }, 'tokenBudget'],
      ['a token budget given as text', 'memory.recall', { query: 'x', tokenBudget: 'lots' }, 'tokenBudget'],
      ['a number as the query', 'memory.recall', { query: 42 }, 'query'],
      ['a boolean as the recipient', 'email.draft', { to: true, purpose: 'hi' }, 'to'],
      ['a number as the summary', 'outcome.record', { summary: 7 }, 'summary'],
      ['a boolean as the source', 'text.summarize', { source: false }, 'source'],
    ])('%s is invalid_input naming the field', (_label, tool, inputs, field) => {
      const problems = validatePlan([step('s', tool, inputs)], BUDGET);
      expect(problems).toEqual([{ stepId: 's', code: 'invalid_input', message: expect.stringContaining(field) }]);
    });
    test.each<[string, string, PlanStep['inputs']]>([
      ['a positive whole token budget', 'memory.recall', { query: 'x', tokenBudget: 500 }],
      ['a text summary', 'outcome.record', { summary: 'done' }],
      ['a text source', 'text.summarize', { source: 'a long text' }],
    ])('%s is valid', (_label, tool, inputs) => {
      expect(validatePlan([step('s', tool, inputs)], BUDGET)).toEqual([]);
    });
  });

  describe('bad_reference', () => {
    test('an input the spec says must reference an earlier step, given a literal', () => {
      const plan = withStep(emailPlan(), 'send', { inputs: { to: 'ada@example.com', draft: 'Dear Ada' } });
      expect(validatePlan(plan, BUDGET)).toEqual([
        { stepId: 'send', code: 'bad_reference', message: expect.stringContaining('"draft"') },
      ]);
    });
    test('a reference to a step that is not in the plan', () => {
      const plan = withStep(emailPlan(), 'record', { inputs: { summary: { fromStep: 'ghost' } }, dependsOn: ['send'] });
      expect(validatePlan(plan, BUDGET)).toEqual([
        { stepId: 'record', code: 'bad_reference', message: expect.stringContaining('"ghost"') },
      ]);
    });
    test('a reference to a step it does not depend on', () => {
      const plan = withStep(emailPlan(), 'record', { dependsOn: ['draft'] });
      expect(validatePlan(plan, BUDGET)).toEqual([
        { stepId: 'record', code: 'bad_reference', message: expect.stringMatching(/reads "send" but does not depend/) },
      ]);
    });
    test('a dependency on a step that is not in the plan', () => {
      const plan = withStep(emailPlan(), 'recall', { dependsOn: ['nowhere'] });
      expect(validatePlan(plan, BUDGET)).toEqual([
        { stepId: 'recall', code: 'bad_reference', message: expect.stringContaining('"nowhere"') },
      ]);
    });
    test('a reference that resolves and is depended on is fine, for ref-only and free inputs alike', () => {
      const plan = [
        step('a', 'text.summarize', { source: 'first text' }),
        step('b', 'text.summarize', { source: { fromStep: 'a' } }, ['a']),
        step('c', 'outcome.record', { summary: { fromStep: 'b' } }, ['b']),
      ];
      expect(validatePlan(plan, BUDGET)).toEqual([]);
    });
  });

  describe('duplicate_step', () => {
    test('two steps with one id', () => {
      const plan = [step('a', 'memory.recall', { query: 'x' }), step('a', 'memory.recall', { query: 'y' })];
      expect(validatePlan(plan, BUDGET)).toEqual([
        { stepId: 'a', code: 'duplicate_step', message: expect.stringContaining('"a"') },
      ]);
    });
    test('distinct ids are not duplicates', () => {
      const plan = [step('a', 'memory.recall', { query: 'x' }), step('b', 'memory.recall', { query: 'y' })];
      expect(validatePlan(plan, BUDGET)).toEqual([]);
    });
  });

  describe('cycle', () => {
    test('two steps that depend on each other', () => {
      const plan = [
        step('a', 'text.summarize', { source: { fromStep: 'b' } }, ['b']),
        step('b', 'text.summarize', { source: { fromStep: 'a' } }, ['a']),
      ];
      const problems = validatePlan(plan, BUDGET);
      expect(codes(problems)).toEqual(['cycle']);
      expect(problems[0].message).toMatch(/a -> b -> a|b -> a -> b/);
    });
    test('a step that depends on itself', () => {
      const problems = validatePlan([step('a', 'memory.recall', { query: 'x' }, ['a'])], BUDGET);
      expect(codes(problems)).toEqual(['cycle']);
      expect(problems[0].message).toContain('a -> a');
    });
    test('a diamond is not a cycle', () => {
      const plan = [
        step('root', 'memory.recall', { query: 'x' }),
        step('left', 'text.summarize', { source: { fromStep: 'root' } }, ['root']),
        step('right', 'text.summarize', { source: { fromStep: 'root' } }, ['root']),
        step('join', 'outcome.record', { summary: { fromStep: 'left' } }, ['left', 'right']),
      ];
      expect(validatePlan(plan, BUDGET)).toEqual([]);
    });
  });

  describe('over_budget', () => {
    // The email plan's estimate is the sum of its tools' specs.
    const estimate = estimatePlanCost(emailPlan());
    test('the estimate is the sum of the specs', () => {
      const sum = emailPlan().reduce((s, p) => s + toolSpec(p.tool)!.estimatedCostUsd, 0);
      expect(estimate).toBeCloseTo(sum, 10);
      expect(estimate).toBeGreaterThan(0);
    });
    test('a plan whose estimate exceeds the budget', () => {
      const problems = validatePlan(emailPlan(), { budgetUsd: estimate / 2, spentUsd: 0 });
      expect(problems).toEqual([{ code: 'over_budget', message: expect.stringContaining('budget') }]);
    });
    test('money already spent counts against the budget', () => {
      expect(validatePlan(emailPlan(), { budgetUsd: 1, spentUsd: 0 })).toEqual([]);
      expect(codes(validatePlan(emailPlan(), { budgetUsd: 1, spentUsd: 1 - estimate / 2 }))).toEqual(['over_budget']);
    });
    test('a plan that costs exactly the remaining budget fits', () => {
      expect(validatePlan(emailPlan(), { budgetUsd: estimate, spentUsd: 0 })).toEqual([]);
    });
  });

  test('a wait that is not a duration is a problem naming the pattern, not a crash of the validation', () => {
    // zod ran the range check after the failed pattern, and the range check threw on the text.
    for (const after of ['soon', 'x', '3 days']) {
      const problems = validatePlan([step('wait', 'followup.wait', { after })], BUDGET);
      expect(problems.map((p) => p.message).join('; ')).toContain('a duration like 90s, 30m, 12h or 3d');
      expect(problems.map((p) => p.message).join('; ')).not.toContain('between 1s and 30d');
    }
    expect(validatePlan([step('wait', 'followup.wait', { after: '31d' })], BUDGET)[0].message).toContain(
      'between 1s and 30d',
    );
    expect(validatePlan([step('wait', 'followup.wait', { after: '3d' })], BUDGET)).toEqual([]);
  });

  test('every problem is reported at once, so a replan hears all of them', () => {
    const plan = [
      step('recall', 'memory.recall', { query: 'x', tokenBudget: -1 }),
      step('recall', 'memory.recall', { query: 'y' }),
      step('draft', 'email.draft', { to: 'ada@example.com' }, ['recall']),
      step('fax', 'fax.send', {}),
      step('send', 'email.send', { to: 'ada@example.com', draft: 'literal' }, ['loop']),
      step('loop', 'outcome.record', { summary: { fromStep: 'send' } }, ['send']),
    ];
    const problems = validatePlan(plan, { budgetUsd: 0, spentUsd: 0 });
    expect(new Set(codes(problems))).toEqual(
      new Set([
        'duplicate_step',
        'invalid_input',
        'missing_input',
        'unknown_tool',
        'bad_reference',
        'cycle',
        'over_budget',
      ]),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ stepId: 'recall', code: 'duplicate_step' }),
        expect.objectContaining({ stepId: 'recall', code: 'invalid_input' }),
        expect.objectContaining({ stepId: 'draft', code: 'missing_input' }),
        expect.objectContaining({ stepId: 'fax', code: 'unknown_tool' }),
        expect.objectContaining({ stepId: 'send', code: 'bad_reference' }),
      ]),
    );
  });
});

describe('requiresApproval', () => {
  test('email.send waits for a person; the other registered tools do not', () => {
    expect(requiresApproval({ tool: 'email.send' })).toBe(true);
    for (const tool of ['memory.recall', 'email.draft', 'text.summarize', 'outcome.record']) {
      expect(requiresApproval({ tool })).toBe(false);
    }
  });

  test('follows each spec: held exactly when the effect is irreversible or external', () => {
    const held = Object.values(TOOLS).filter((spec) => requiresApproval({ tool: spec.name }));
    for (const spec of Object.values(TOOLS)) {
      expect(requiresApproval({ tool: spec.name })).toBe(spec.irreversible || spec.risk === 'external');
    }
    expect(held.map((s) => s.name)).toEqual(['email.send', 'slack.post', 'webhook.call']);
  });

  test('a tool the registry does not know is held, including prototype names', () => {
    for (const tool of ['email.fax', 'constructor', '__proto__', '']) {
      expect(requiresApproval({ tool })).toBe(true);
    }
  });
});
