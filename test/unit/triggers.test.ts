/**
 * Triggers without a database: the definition schema (what POST /v1/triggers
 * accepts and how it names what is wrong), matching, templates, and the goal
 * a trigger makes of an event (its derived id, title, description, input).
 */
import { triggerDefinitionSchema, type Trigger } from '../../triggers/definition';
import { goalFromTrigger, triggerGoalId, triggerRequestId } from '../../triggers/goals';
import { isForEvent, matchingTriggers, meetsConditions, type MatchableEvent } from '../../triggers/match';
import { fillTemplate, templateProblems, type TemplateContext } from '../../triggers/templates';

const CTX: TemplateContext = {
  event: { id: 'in-1', source: 'gmail', type: 'email.received', externalId: 'msg-42' },
  payload: {
    from: 'Ada Lovelace <ada@acme.example>',
    subject: 'Invoice INV-7 was charged twice',
    amount: 120.5,
    urgent: true,
    customer: { email: 'billing@acme.example', tags: ['vip', 'eu'] },
    items: [{ name: 'Widget' }],
    empty: '',
    nothing: null,
    sneaky: 'see {{payload.secret}} and {{event.source}}',
    secret: 'do-not-leak',
  },
  classification: { kind: 'invoice_question', confidence: 0.8, reason: 'keywords "invoice"' },
  trigger: { id: 'tr-1', name: 'invoices' },
};

describe('templates', () => {
  test('placeholders read the payload (nested, arrays), the event, the classification and the trigger', () => {
    const { text, missing } = fillTemplate(
      '{{payload.from}} | {{ payload.customer.email }} | {{payload.items.0.name}} | {{payload.amount}} | ' +
        '{{payload.urgent}} | {{event.source}}/{{event.type}}/{{event.externalId}}/{{event.id}} | ' +
        '{{classification.kind}} {{classification.confidence}} | {{trigger.name}}',
      CTX,
    );
    expect(text).toBe(
      'Ada Lovelace <ada@acme.example> | billing@acme.example | Widget | 120.5 | true | ' +
        'gmail/email.received/msg-42/in-1 | invoice_question 0.8 | invoices',
    );
    expect(missing).toEqual([]);
  });

  test('objects and arrays are written as JSON', () => {
    expect(fillTemplate('{{payload.customer.tags}}', CTX).text).toBe('["vip","eu"]');
  });

  test('a filled value is data: placeholders inside it are not filled again', () => {
    expect(fillTemplate('Note: {{payload.sneaky}}', CTX).text).toBe(
      'Note: see {{payload.secret}} and {{event.source}}',
    );
  });

  test('what the event does not have fills an empty string and is reported once', () => {
    const { text, missing } = fillTemplate(
      '[{{payload.phone}}] [{{payload.empty}}] [{{payload.nothing}}] [{{payload.customer.name}}] [{{payload.phone}}]',
      CTX,
    );
    expect(text).toBe('[] [] [] [] []');
    expect(missing).toEqual(['payload.phone', 'payload.empty', 'payload.nothing', 'payload.customer.name']);
  });

  test('inherited properties are not payload fields', () => {
    const { text, missing } = fillTemplate('{{payload.constructor}}{{payload.__proto__}}{{payload.from.length}}', CTX);
    expect(text).toBe('');
    expect(missing).toHaveLength(3);
  });

  test('problems: unknown roots and fields, malformed paths, unmatched braces; none for a good template', () => {
    expect(templateProblems('Reply to {{payload.from}} about {{classification.kind}}')).toEqual([]);
    expect(templateProblems('no placeholders at all')).toEqual([]);
    expect(templateProblems('{{secrets.key}}')).toEqual([expect.stringMatching(/names no known part/)]);
    expect(templateProblems('{{event.payload}}')).toEqual([
      expect.stringMatching(/event has id, source, type, externalId/),
    ]);
    expect(templateProblems('{{payload}}')).toEqual([expect.stringMatching(/is not a placeholder/)]);
    expect(templateProblems('{{payload.a b}}')).toEqual([expect.stringMatching(/is not a placeholder/)]);
    expect(templateProblems('Hi {{payload.from}')).toEqual([expect.stringMatching(/unmatched/)]);
    expect(templateProblems('Hi payload.from}}')).toEqual([expect.stringMatching(/unmatched/)]);
  });
});

describe('the trigger definition (POST /v1/triggers)', () => {
  const good = {
    name: 'invoice questions',
    eventType: 'email.received',
    match: { kind: ['invoice_question'], contains: [{ field: 'payload.subject', text: 'invoice' }] },
    goal: { kind: 'note', title: 'Invoice question from {{payload.from}}', input: { text: '{{payload.text}}' } },
  };

  test('a good definition parses; match defaults to every event of the type', () => {
    expect(triggerDefinitionSchema.parse(good)).toEqual(good);
    const bare = triggerDefinitionSchema.parse({ name: 'all', eventType: '*', goal: { title: 'New {{event.type}}' } });
    expect(bare.match).toEqual({});
  });

  /** The parse problems as `path: message`, as the API's 400 names them. */
  function problems(body: unknown): string[] {
    const r = triggerDefinitionSchema.safeParse(body);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  }

  test.each<[string, unknown, RegExp]>([
    ['no name', { ...good, name: '' }, /^name: name is required/],
    ['no eventType', { ...good, eventType: undefined }, /^eventType: /],
    ['an unknown kind', { ...good, match: { kind: ['urgent'] } }, /^match\.kind\.0: .*invoice_question/],
    ['an empty kind list', { ...good, match: { kind: [] } }, /^match\.kind: /],
    [
      'a field outside the payload',
      { ...good, match: { contains: [{ field: 'subject', text: 'x' }] } },
      /^match\.contains\.0\.field: a field is a path into the payload/,
    ],
    ['a confidence above 1', { ...good, match: { minConfidence: 2 } }, /^match\.minConfidence: /],
    ['an unknown condition', { ...good, match: { regex: '.*' } }, /^match: .*regex/],
    ['no goal', { ...good, goal: undefined }, /^goal: /],
    ['a blank title', { ...good, goal: { title: '   ' } }, /^goal\.title: title is required/],
    [
      'a title with a bad placeholder',
      { ...good, goal: { title: 'From {{sender}}' } },
      /^goal\.title: "\{\{sender\}\}" is not a placeholder/,
    ],
    [
      'a description naming an unknown field',
      { ...good, goal: { title: 't', description: '{{classification.score}}' } },
      /^goal\.description: .*classification has kind, confidence, reason/,
    ],
    [
      'an input template with an unmatched brace',
      { ...good, goal: { title: 't', input: { text: '{{payload.text}' } } },
      /^goal\.input\.text: .*unmatched/,
    ],
    [
      'an input name that is not one',
      { ...good, goal: { title: 't', input: { 'a b': 'x' } } },
      /^goal\.input\.a b: an input name/,
    ],
    [
      'a kind that is not a word',
      { ...good, goal: { title: 't', kind: 'Big Goal' } },
      /^goal\.kind: kind is a lowercase word/,
    ],
    ['an extra key', { ...good, priority: 1 }, /priority/],
  ])('%s is refused, naming the field', (_label, body, pattern) => {
    const found = problems(body);
    expect(found).toContainEqual(expect.stringMatching(pattern));
  });
});

describe('matching', () => {
  const event: MatchableEvent = {
    source: 'gmail',
    type: 'email.received',
    payload: { subject: 'Question about INVOICE 7', from: 'ada@acme.example', n: 42 },
    classification: { kind: 'invoice_question', confidence: 0.7 },
  };

  test('event type (or *) and source (or any)', () => {
    expect(isForEvent({ eventType: 'email.received' }, event)).toBe(true);
    expect(isForEvent({ eventType: '*' }, event)).toBe(true);
    expect(isForEvent({ eventType: 'email.sent' }, event)).toBe(false);
    expect(isForEvent({ eventType: '*', source: 'gmail' }, event)).toBe(true);
    expect(isForEvent({ eventType: '*', source: 'slack' }, event)).toBe(false);
  });

  test('each condition, and all of them together', () => {
    expect(meetsConditions({}, event)).toBe(true);
    expect(meetsConditions({ kind: ['spam', 'invoice_question'] }, event)).toBe(true);
    expect(meetsConditions({ kind: ['spam'] }, event)).toBe(false);
    expect(meetsConditions({ minConfidence: 0.7 }, event)).toBe(true);
    expect(meetsConditions({ minConfidence: 0.71 }, event)).toBe(false);
    expect(meetsConditions({ contains: [{ field: 'payload.subject', text: 'invoice' }] }, event)).toBe(true);
    expect(meetsConditions({ contains: [{ field: 'payload.n', text: '4' }] }, event)).toBe(true);
    expect(meetsConditions({ contains: [{ field: 'payload.body', text: 'invoice' }] }, event)).toBe(false);
    expect(
      meetsConditions(
        {
          kind: ['invoice_question'],
          contains: [
            { field: 'payload.subject', text: 'invoice' },
            { field: 'payload.from', text: '@other.example' },
          ],
        },
        event,
      ),
    ).toBe(false);
  });

  test('matchingTriggers keeps the order given and drops the rest', () => {
    const t = (id: string, over: Partial<Trigger>) => ({ id, eventType: '*', match: {}, ...over });
    const found = matchingTriggers(
      [
        t('a', { match: { kind: ['invoice_question'] } }),
        t('b', { eventType: 'ping' }),
        t('c', { source: 'gmail' }),
        t('d', { match: { kind: ['spam'] } }),
      ],
      event,
    );
    expect(found.map((x) => x.id)).toEqual(['a', 'c']);
  });
});

describe('the goal a trigger makes of an event', () => {
  const trigger = {
    id: 'tr-1',
    name: 'invoices',
    goal: {
      kind: 'note',
      title: 'Invoice question\nfrom {{payload.from}}',
      description: 'Answer {{payload.from}} about {{payload.subject}}. Phone: {{payload.phone}}.',
      input: { text: '{{payload.subject}}', to: '{{payload.customer.email}}' },
    },
  };
  const event = { ...CTX.event, payload: CTX.payload };

  test('its id derives from trigger + source + externalId: the same event, the same goal', () => {
    const id = triggerGoalId('tr-1', 'gmail', 'msg-42');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(triggerGoalId('tr-1', 'gmail', 'msg-42')).toBe(id);
    expect(
      new Set([
        id,
        triggerGoalId('tr-2', 'gmail', 'msg-42'),
        triggerGoalId('tr-1', 'slack', 'msg-42'),
        triggerGoalId('tr-1', 'gmail', 'msg-43'),
      ]).size,
    ).toBe(4);
    // No separator games: ("a:b", "c") and ("a", "b:c") are different events.
    expect(triggerGoalId('t', 'a:b', 'c')).not.toBe(triggerGoalId('t', 'a', 'b:c'));
    const goal = goalFromTrigger(trigger, event, CTX.classification);
    expect(goal.goalId).toBe(id);
    expect(goal.requestId).toBe(triggerRequestId('tr-1', 'in-1'));
  });

  test('title (one line), input and description are filled; missing fields are said in the description', () => {
    const goal = goalFromTrigger(trigger, event, CTX.classification);
    expect(goal.title).toBe('Invoice question from Ada Lovelace <ada@acme.example>');
    expect(goal.kind).toBe('note');
    expect(goal.input).toEqual({ text: 'Invoice INV-7 was charged twice', to: 'billing@acme.example' });
    expect(goal.missing).toEqual(['payload.phone']);
    const [body, note, origin] = goal.description.split('\n\n');
    expect(body).toBe('Answer Ada Lovelace <ada@acme.example> about Invoice INV-7 was charged twice. Phone: .');
    expect(note).toBe("Note: the event had no value for payload.phone; the trigger's template left it empty.");
    expect(origin).toBe(
      'Started by trigger "invoices" for the email.received event msg-42 from gmail (classified invoice_question, confidence 0.80).',
    );
  });

  test('a title that fills to nothing becomes the trigger and the event', () => {
    const goal = goalFromTrigger({ ...trigger, goal: { title: '{{payload.phone}}' } }, event, CTX.classification);
    expect(goal.title).toBe('invoices: email.received from gmail');
    expect(goal.kind).toBeUndefined();
    expect(goal.input).toEqual({});
    expect(goal.description).toMatch(/^Note: the event had no value for payload\.phone/);
  });

  test('limits: the title is cut to 500 characters, the description keeps its notes when the body is cut', () => {
    const long = { ...event, payload: { ...event.payload, text: 'x'.repeat(30_000) } };
    const goal = goalFromTrigger(
      { ...trigger, goal: { title: '{{payload.text}}', description: '{{payload.text}} {{payload.phone}}' } },
      long,
      CTX.classification,
    );
    expect([...goal.title].length).toBe(500);
    expect(goal.description.length).toBeLessThanOrEqual(20_000);
    expect(goal.description).toMatch(/Started by trigger "invoices"/);
    expect(goal.description).toMatch(/no value for payload\.phone/);
  });
});
