/** What Slack shows of approvals (slack/blocks.ts): pure Block Kit, checked against Slack's limits and hostile text. */
import {
  ACTIONS,
  MAX_BLOCKS,
  approvalMessage,
  approveValuesIn,
  chunkForMessages,
  editModal,
  editableFields,
  editsFromModal,
  groupMessage,
  outcomeLine,
  rejectModal,
  type SlackApproval,
} from '../../slack/blocks';
import { parseApprovers } from '../../slack/app';

const approval = (over: Partial<SlackApproval> = {}): SlackApproval => ({
  id: 'appr-1',
  goalId: 'goal-1',
  goalTitle: 'Thank Ada',
  stepId: 'send',
  title: 'Send the email',
  summary: 'Send an email to ada@example.com: "Thanks"',
  rationale: 'Ada referred a customer',
  proposed: {
    to: 'ada@example.com',
    subject: 'Thanks',
    body: 'Hi Ada,\n\nThank you!',
    artifactId: 'art-1',
    why: ['email.send cannot be undone'],
  },
  status: 'pending',
  decision: null,
  edits: null,
  comment: null,
  actor: null,
  expiresAt: new Date('2030-01-01T00:00:00Z'),
  decidedAt: null,
  kind: 'email.send',
  ...over,
});

/** Every mrkdwn/plain text of a block list, recursively. */
const textsOf = (value: unknown): string[] => {
  if (Array.isArray(value)) return value.flatMap(textsOf);
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const own = typeof o.text === 'string' && (o.type === 'mrkdwn' || o.type === 'plain_text') ? [o.text] : [];
    return [...own, ...Object.values(o).flatMap(textsOf)];
  }
  return [];
};

test('a pending approval: summary, draft fields, quoted body, reasons and the three buttons; ids stay out of the draft', () => {
  const { text, blocks } = approvalMessage(approval({ shownHash: 'abc123' }));
  expect(text).toBe('Approval needed: Send an email to ada@example.com: "Thanks"');
  const texts = textsOf(blocks);
  expect(texts).toContain('*To*\nada@example.com');
  expect(texts).toContain('*Subject*\nThanks');
  expect(texts).toContain('*Body*\n>Hi Ada,\n>\n>Thank you!');
  expect(texts.join('\n')).not.toContain('art-1');
  expect(texts).toContain(
    '*Why this step:* Ada referred a customer\n*Why it waits for you:* email.send cannot be undone',
  );
  const actions = blocks.filter((b) => b.type === 'actions');
  expect(actions).toHaveLength(1);
  const elements = actions[0].elements as { action_id: string; value: string }[];
  expect(elements.map((e) => e.action_id)).toEqual([ACTIONS.approve, ACTIONS.reject, ACTIONS.edit]);
  expect(elements.map((e) => JSON.parse(e.value))).toEqual(Array(3).fill({ a: 'appr-1', h: 'abc123' }));
});

test('a tool without edits gets no Edit button', () => {
  const { blocks } = approvalMessage(approval({ kind: 'webhook.call' }));
  const actions = blocks.find((b) => b.type === 'actions')!;
  expect((actions.elements as { action_id: string }[]).map((e) => e.action_id)).toEqual([
    ACTIONS.approve,
    ACTIONS.reject,
  ]);
});

test('draft text cannot mention, link or format its way out: <, > and & are escaped', () => {
  const hostile = approval({
    summary: 'Send <!channel> <https://evil.example|click> & more',
    proposed: { to: 'x@example.com', subject: '<!here>', body: '<@U0BOSS> please <!everyone>' },
  });
  const all = textsOf(approvalMessage(hostile).blocks).join('\n');
  // Only Keel's own date formatting uses Slack's <!…> syntax.
  expect(all).not.toMatch(/<!(?!date\^)|<@|<https/);
  expect(all).toContain('&lt;!channel&gt;');
  expect(all).toContain('&amp; more');
  expect(all).toContain('&lt;@U0BOSS&gt;');
});

test("long drafts are cut to Slack's section limit, saying so", () => {
  const { blocks } = approvalMessage(approval({ proposed: { to: 'a@b.c', body: 'x'.repeat(10_000) } }));
  for (const t of textsOf(blocks)) expect(t.length).toBeLessThanOrEqual(3000);
  expect(textsOf(blocks).join('\n')).toContain('(10000 characters; the rest is in the inbox)');
});

test.each([
  [{ status: 'approved', actor: 'slack:U0ADA', edits: { body: 'x' } }, /Approved\* with edits \(body\) by <@U0ADA>/],
  [{ status: 'approved', actor: 'operator:api', channel: 'api' }, /Approved\* by `operator:api` \(via api\)/],
  [
    { status: 'rejected', actor: 'slack:U0ADA', comment: 'Too <b>formal</b>' },
    /Rejected\* by <@U0ADA>: “Too &lt;b&gt;formal&lt;\/b&gt;”/,
  ],
  [{ status: 'expired' }, /Expired/],
  [{ status: 'cancelled' }, /Cancelled/],
])('a decided approval shows who decided what, without buttons (%o)', (over, line) => {
  const a = approval({ ...over, decidedAt: new Date('2030-01-01T00:00:00Z') } as Partial<SlackApproval>);
  expect(outcomeLine(a)).toMatch(line);
  const { blocks } = approvalMessage(a);
  expect(blocks.filter((b) => b.type === 'actions')).toHaveLength(0);
  expect(textsOf(blocks)).toContain(outcomeLine(a));
});

test('a group: Approve all while two or more wait, per-item buttons, outcomes for decided items', () => {
  const items = [
    approval({ id: 'a1' }),
    approval({ id: 'a2' }),
    approval({ id: 'a3', status: 'approved', actor: 'slack:U1' }),
  ];
  const { blocks } = groupMessage('email.send', items);
  const all = blocks.find((b) => b.block_id === 'keel:all')!;
  expect((all.elements as { text: { text: string } }[])[0].text.text).toBe('Approve all 2');
  expect(approveValuesIn(blocks)).toEqual([{ a: 'a1' }, { a: 'a2' }]);
  // Block ids are unique within the message, as Slack requires.
  const ids = blocks.map((b) => b.block_id).filter(Boolean);
  expect(new Set(ids).size).toBe(ids.length);
  const oneLeft = groupMessage('email.send', [items[0], { ...items[1], status: 'rejected' }]);
  expect(oneLeft.blocks.find((b) => b.block_id === 'keel:all')).toBeUndefined();
});

test("groups are split to stay within Slack's 50 blocks and the size asked for", () => {
  const many = Array.from({ length: 20 }, (_, i) => approval({ id: `a${i}` }));
  const chunks = chunkForMessages(many, 7);
  expect(chunks.flat().map((a) => a.id)).toEqual(many.map((a) => a.id));
  for (const chunk of chunks) {
    expect(chunk.length).toBeLessThanOrEqual(7);
    expect(groupMessage('email.send', chunk).blocks.length).toBeLessThanOrEqual(MAX_BLOCKS);
  }
  expect(chunkForMessages(many, 100).every((c) => groupMessage('email.send', c).blocks.length <= MAX_BLOCKS)).toBe(
    true,
  );
});

test("the Edit modal has the fields the tool's spec lets an operator edit, filled with the draft", () => {
  expect(editableFields('email.send')).toEqual([
    { name: 'subject', maxLength: 998 },
    { name: 'body', maxLength: 100_000 },
  ]);
  expect(editableFields('slack.post')).toEqual([{ name: 'text', maxLength: 40_000 }]);
  expect(editableFields('webhook.call')).toEqual([]);
  const modal = editModal(approval({ shownHash: 'h1' }), { channel: 'C1', ts: '1.2' }) as any;
  expect(JSON.parse(modal.private_metadata)).toEqual({ a: 'appr-1', h: 'h1', c: 'C1', t: '1.2' });
  const inputs = modal.blocks.filter((b: any) => b.type === 'input');
  expect(inputs.map((b: any) => [b.block_id, b.element.initial_value, b.element.max_length])).toEqual([
    ['field:subject', 'Thanks', 998],
    ['field:body', 'Hi Ada,\n\nThank you!', 3000],
  ]);
  // A body longer than a Slack text input holds is left out, saying where to edit it.
  const long = editModal(approval({ proposed: { subject: 'S', body: 'y'.repeat(4000) } }), { channel: 'C1', ts: '1' });
  expect((long as any).blocks.map((b: any) => b.block_id).filter(Boolean)).toEqual(['field:subject']);
  expect(textsOf(long).join('\n')).toMatch(/Body: longer than Slack lets a text field hold/);
  expect(
    ((rejectModal(approval(), { channel: 'C1', ts: '1' }) as any).title.text as string).length,
  ).toBeLessThanOrEqual(24);
});

test('an Edit submission edits only what changed', () => {
  const state = (subject: string, body: string) => ({
    values: { 'field:subject': { value: { value: subject } }, 'field:body': { value: { value: body } } },
  });
  expect(editsFromModal(approval(), state('Thanks', 'Hi Ada,\n\nThank you!'))).toEqual({});
  expect(editsFromModal(approval(), state('Thanks', 'New body'))).toEqual({ body: 'New body' });
  expect(editsFromModal(approval(), state('New', 'New body'))).toEqual({ subject: 'New', body: 'New body' });
});

test('SLACK_APPROVERS is a comma-separated list of user ids', () => {
  expect(parseApprovers(' U1, U2 ,,U3 ')).toEqual(['U1', 'U2', 'U3']);
  expect(parseApprovers(undefined)).toEqual([]);
});
