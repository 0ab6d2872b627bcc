/**
 * What Slack shows of approvals, as pure Block Kit: one approval or a group
 * of approvals of one kind (one tool) as a message, with Approve / Reject /
 * Edit buttons while it waits and who decided what once it does not; the
 * modals behind Edit and Reject; and the small JSON the buttons and modals
 * carry back (which approval, and the hash of what the operator was shown).
 *
 * Everything a goal proposes is text from a model or from outside: it is
 * escaped for mrkdwn (no mentions, links or formatting smuggled in) and cut
 * to Slack's limits, saying so.
 */
import { z } from 'zod';
import { toolSpec } from '../tools/registry';

/** Action ids of the buttons (Bolt routes clicks by them). */
export const ACTIONS = {
  approve: 'keel_approve',
  reject: 'keel_reject',
  edit: 'keel_edit',
  approveAll: 'keel_approve_all',
  trustAccept: 'keel_trust_accept',
  trustDismiss: 'keel_trust_dismiss',
} as const;

/** Callback ids of the modals. */
export const VIEWS = { edit: 'keel_edit_modal', reject: 'keel_reject_modal' } as const;

/** Block ids inside the modals. */
export const REASON_BLOCK = 'reason';
export const FIELD_BLOCK_PREFIX = 'field:';
/** The action id of every text input in the modals (block ids tell the fields apart). */
export const INPUT_ACTION = 'value';

/** Slack's limits (Block Kit reference): blocks per message, text per section, per plain_text_input. */
export const MAX_BLOCKS = 50;
const SECTION_TEXT_MAX = 3000;
const FIELD_TEXT_MAX = 2000;
const MAX_FIELDS = 10;
const INPUT_MAX = 3000;
/** A value up to this long without a line break is shown as a field beside the others (To, Subject). */
const SHORT_VALUE = 150;

/** An approval as the Slack parts read it: the row, its goal's title, and its step's tool. */
export interface SlackApproval {
  id: string;
  goalId: string;
  goalTitle: string;
  stepId: string;
  title: string;
  summary: string;
  rationale: string;
  proposed: unknown;
  status: string;
  decision: string | null;
  edits: unknown;
  comment: string | null;
  actor: string | null;
  expiresAt: Date;
  decidedAt: Date | null;
  /** The step's tool: what groups approvals, and what says which fields may be edited. */
  kind: string;
  /** The hash of what the operator is shown, when the approval has one. */
  shownHash?: string;
  /** The channel the decision came through (api, slack, inbox, cli), when recorded. */
  channel?: string;
}

/** A message: the notification text and the blocks. */
export interface SlackMessageContent {
  text: string;
  blocks: Block[];
}

/** A Block Kit block: plain JSON; a loose type keeps the builders readable. */
export interface Block {
  type: string;
  [field: string]: unknown;
}

/** What an Approve / Reject / Edit button carries: the approval, and the hash of what it showed. */
export const buttonValueSchema = z.object({ a: z.string().min(1).max(200), h: z.string().max(200).optional() });
export type ButtonValue = z.infer<typeof buttonValueSchema>;

/** What a modal carries: the button's value and the message it was opened from. */
export const modalMetaSchema = buttonValueSchema.extend({ c: z.string().max(100), t: z.string().max(100) });
export type ModalMeta = z.infer<typeof modalMetaSchema>;

export const buttonValue = (a: SlackApproval): string =>
  JSON.stringify(a.shownHash ? { a: a.id, h: a.shownHash } : { a: a.id });

/** A button's or modal's JSON, checked; undefined when it is not one of Keel's. */
export function parseJsonWith<T>(schema: z.ZodType<T>, text: unknown): T | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Text for mrkdwn: `&`, `<` and `>` escaped, so nothing in a draft becomes a mention, link or channel alert. */
export const esc = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** `text` cut to `max` characters, saying how much was left out. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const note = ` … (${text.length} characters; the rest is in the inbox)`;
  return text.slice(0, Math.max(0, max - note.length)) + note;
}

const mrkdwn = (text: string) => ({ type: 'mrkdwn', text: cut(text, SECTION_TEXT_MAX) });
const plain = (text: string, max = 75) => ({ type: 'plain_text', text: cut(text, max), emoji: true });
const section = (text: string): Block => ({ type: 'section', text: mrkdwn(text) });
const context = (...texts: string[]): Block => ({ type: 'context', elements: texts.map((t) => mrkdwn(t)) });

/** `inReplyTo` → `In reply to`. */
const label = (key: string) => {
  const words = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/[_-]+/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1).toLowerCase();
};

/** A date Slack shows in the reader's own time zone, with a plain fallback. */
const when = (d: Date) => `<!date^${Math.floor(d.getTime() / 1000)}^{date_short_pretty} at {time}|${d.toISOString()}>`;

/** Who decided, as Slack shows them: a Slack user as a mention, anyone else by name. */
export function whoDecided(actor: string | null): string {
  if (!actor) return 'someone';
  const slackUser = /^slack:([A-Z0-9]+)$/.exec(actor);
  return slackUser ? `<@${slackUser[1]}>` : `\`${esc(actor).replace(/`/g, "'")}\``;
}

const proposedOf = (a: SlackApproval): Record<string, unknown> =>
  typeof a.proposed === 'object' && a.proposed !== null && !Array.isArray(a.proposed)
    ? (a.proposed as Record<string, unknown>)
    : {};

/** Why the policy asks (proposed.why), as lines. */
const reasonsOf = (a: SlackApproval): string[] => {
  const why = proposedOf(a).why;
  return Array.isArray(why) ? why.filter((w): w is string => typeof w === 'string') : [];
};

/**
 * The draft: short values (To, Subject) side by side, long ones (the body)
 * quoted below, each labelled; ids and the policy's reasons are shown elsewhere.
 */
function draftBlocks(a: SlackApproval): Block[] {
  const fields: string[] = [];
  const long: Block[] = [];
  for (const [key, value] of Object.entries(proposedOf(a))) {
    if (key === 'why' || key === 'artifactId' || value === null || value === undefined) continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (text.length <= SHORT_VALUE && !text.includes('\n') && fields.length < MAX_FIELDS) {
      fields.push(`*${label(key)}*\n${esc(text)}`);
    } else {
      const quoted = cut(esc(text), SECTION_TEXT_MAX - key.length - 200)
        .split('\n')
        .map((line) => `>${line}`)
        .join('\n');
      long.push(section(`*${label(key)}*\n${quoted}`));
    }
  }
  const blocks: Block[] = [];
  if (fields.length)
    blocks.push({ type: 'section', fields: fields.map((f) => ({ type: 'mrkdwn', text: cut(f, FIELD_TEXT_MAX) })) });
  return [...blocks, ...long];
}

/** Why the step is there (the planner's rationale) and why it waits (the policy's reasons). */
function reasonBlock(a: SlackApproval): Block | undefined {
  const lines: string[] = [];
  if (a.rationale.trim()) lines.push(`*Why this step:* ${esc(a.rationale.trim())}`);
  const why = reasonsOf(a);
  if (why.length) lines.push(`*Why it waits for you:* ${why.map(esc).join('; ')}`);
  return lines.length ? section(lines.join('\n')) : undefined;
}

/** The approval itself: summary, where it comes from, the draft, the reasons. */
function approvalBody(a: SlackApproval, heading: string): Block[] {
  const reasons = reasonBlock(a);
  return [
    section(`${heading}*${esc(a.summary || a.title)}*`),
    context(
      `Goal: ${esc(a.goalTitle)} · step: ${esc(a.title)} · ${a.status === 'pending' ? `expires ${when(a.expiresAt)}` : `approval ${esc(a.id)}`}`,
    ),
    ...draftBlocks(a),
    ...(reasons ? [reasons] : []),
  ];
}

/** Whether the operator may change anything of this kind's proposal (its tool spec has `approval.edits`). */
export const isEditable = (kind: string): boolean => Boolean(toolSpec(kind)?.approval?.edits);

/** Approve / Reject (and Edit, when the tool allows edits) for one approval. */
function buttons(a: SlackApproval): Block {
  const value = buttonValue(a);
  return {
    type: 'actions',
    block_id: `keel:${a.id}`,
    elements: [
      { type: 'button', action_id: ACTIONS.approve, text: plain('Approve'), style: 'primary', value },
      { type: 'button', action_id: ACTIONS.reject, text: plain('Reject'), style: 'danger', value },
      ...(isEditable(a.kind) ? [{ type: 'button', action_id: ACTIONS.edit, text: plain('Edit'), value }] : []),
    ],
  };
}

/** What happened to an approval that no longer waits: who decided what, and when. */
export function outcomeLine(a: SlackApproval): string {
  const at = a.decidedAt ? ` · ${when(a.decidedAt)}` : '';
  const via = a.channel && a.channel !== 'slack' ? ` (via ${esc(a.channel)})` : '';
  switch (a.status) {
    case 'approved': {
      const edited =
        typeof a.edits === 'object' && a.edits !== null && Object.keys(a.edits).length
          ? ` with edits (${Object.keys(a.edits).map(esc).join(', ')})`
          : '';
      return `:white_check_mark: *Approved*${edited} by ${whoDecided(a.actor)}${via}${at}`;
    }
    case 'rejected': {
      const reason = a.comment?.trim() ? `: “${cut(esc(a.comment.trim()), 1500)}”` : '';
      return `:x: *Rejected* by ${whoDecided(a.actor)}${via}${reason}${at}`;
    }
    case 'expired':
      return `:hourglass: *Expired*: nobody decided in time, so nothing was done${at}`;
    case 'cancelled':
      return `:no_entry_sign: *Cancelled*: the goal stopped waiting for this${at}`;
    default:
      return `*${esc(a.status)}*`;
  }
}

/** One approval as one message: buttons while it waits, the outcome instead once it does not. */
export function approvalMessage(a: SlackApproval): SlackMessageContent {
  const pending = a.status === 'pending';
  return {
    text: pending ? `Approval needed: ${a.summary}` : `${label(a.status)}: ${a.summary}`,
    blocks: [...approvalBody(a, pending ? ':raised_hand: ' : ''), pending ? buttons(a) : section(outcomeLine(a))],
  };
}

/** The blocks of one item in a group message. */
function groupItem(a: SlackApproval): Block[] {
  return [{ type: 'divider' }, ...approvalBody(a, ''), a.status === 'pending' ? buttons(a) : section(outcomeLine(a))];
}

/** Blocks a group message of these approvals needs. */
export const groupBlockCount = (items: SlackApproval[]): number =>
  2 + items.reduce((n, a) => n + groupItem(a).length, 0);

/**
 * Approvals of one kind as one message: a heading with "Approve all" while
 * two or more wait, then each approval with its own buttons or outcome.
 */
export function groupMessage(kind: string, items: SlackApproval[]): SlackMessageContent {
  const waiting = items.filter((a) => a.status === 'pending');
  const heading =
    waiting.length > 0
      ? `:raised_hand: *${waiting.length} of ${items.length} approvals of \`${esc(kind)}\` wait for you*`
      : `*${items.length} approvals of \`${esc(kind)}\`: all decided*`;
  const blocks: Block[] = [section(heading)];
  if (waiting.length >= 2) {
    blocks.push({
      type: 'actions',
      block_id: 'keel:all',
      elements: [
        {
          type: 'button',
          action_id: ACTIONS.approveAll,
          text: plain(`Approve all ${waiting.length}`),
          style: 'primary',
          value: kind.slice(0, 200),
          confirm: {
            title: plain('Approve all?'),
            text: plain(`Approve the ${waiting.length} waiting ${kind} approvals in this message as shown?`, 300),
            confirm: plain('Approve all'),
            deny: plain('Cancel'),
          },
        },
      ],
    });
  }
  for (const a of items) blocks.push(...groupItem(a));
  return {
    text: waiting.length
      ? `${waiting.length} approvals of ${kind} wait for you`
      : `${items.length} approvals of ${kind}, all decided`,
    blocks,
  };
}

/** The message for the approvals one Slack message shows: a single approval, or a group. */
export const messageFor = (items: SlackApproval[]): SlackMessageContent =>
  items.length === 1 ? approvalMessage(items[0]) : groupMessage(items[0].kind, items);

/**
 * Approvals of one kind split into messages that each fit Slack's block
 * limit, at most `maxPerMessage` per message, in the order given.
 */
export function chunkForMessages(items: SlackApproval[], maxPerMessage: number): SlackApproval[][] {
  const chunks: SlackApproval[][] = [];
  let current: SlackApproval[] = [];
  for (const a of items) {
    const next = [...current, a];
    if (current.length > 0 && (next.length > maxPerMessage || groupBlockCount(next) > MAX_BLOCKS)) {
      chunks.push(current);
      current = [a];
    } else {
      current = next;
    }
  }
  if (current.length) chunks.push(current);
  return chunks;
}

/** Approve-button values in a message's blocks, as Slack sends the message back with a click. */
export function approveValuesIn(blocks: unknown): ButtonValue[] {
  if (!Array.isArray(blocks)) return [];
  const values: ButtonValue[] = [];
  for (const block of blocks as { type?: unknown; elements?: unknown }[]) {
    if (block?.type !== 'actions' || !Array.isArray(block.elements)) continue;
    for (const el of block.elements as { action_id?: unknown; value?: unknown }[]) {
      if (el?.action_id !== ACTIONS.approve) continue;
      const v = parseJsonWith(buttonValueSchema, el.value);
      if (v) values.push(v);
    }
  }
  return values;
}

/** A field an operator may edit, from the tool's edit schema. */
export interface EditableField {
  name: string;
  maxLength?: number;
}

/**
 * The fields a tool lets an operator edit, read from its spec's edit schema
 * (as JSON Schema of the input side, so refinements and transforms do not hide them).
 */
export function editableFields(kind: string): EditableField[] {
  const schema = toolSpec(kind)?.approval?.edits;
  if (!schema) return [];
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, { type?: unknown; maxLength?: unknown }>;
  };
  return Object.entries(json.properties ?? {})
    .filter(([, p]) => p.type === 'string')
    .map(([name, p]) => ({ name, ...(typeof p.maxLength === 'number' ? { maxLength: p.maxLength } : {}) }));
}

const modalMeta = (a: SlackApproval, message: { channel: string; ts: string }): string =>
  JSON.stringify({ a: a.id, ...(a.shownHash ? { h: a.shownHash } : {}), c: message.channel, t: message.ts });

/**
 * The Edit modal: every field the tool lets the operator change, filled with
 * the proposal; submitting approves with the changes. A value longer than a
 * Slack text input holds (3000 characters) is left out, saying where to edit it.
 */
export function editModal(a: SlackApproval, message: { channel: string; ts: string }): Record<string, unknown> {
  const proposed = proposedOf(a);
  const blocks: Block[] = [section(`*${esc(a.summary || a.title)}*`)];
  const tooLong: string[] = [];
  for (const field of editableFields(a.kind)) {
    const current = typeof proposed[field.name] === 'string' ? (proposed[field.name] as string) : '';
    const max = Math.min(field.maxLength ?? INPUT_MAX, INPUT_MAX);
    if (current.length > max) {
      tooLong.push(label(field.name));
      continue;
    }
    blocks.push({
      type: 'input',
      block_id: `${FIELD_BLOCK_PREFIX}${field.name}`,
      label: plain(label(field.name), 2000),
      optional: false,
      element: {
        type: 'plain_text_input',
        action_id: INPUT_ACTION,
        multiline: current.includes('\n') || max > 1000,
        max_length: max,
        ...(current ? { initial_value: current } : {}),
      },
    });
  }
  if (tooLong.length) {
    blocks.push(
      context(
        `${tooLong.join(', ')}: longer than Slack lets a text field hold; edit ${tooLong.length > 1 ? 'them' : 'it'} in the inbox or with the API.`,
      ),
    );
  }
  return {
    type: 'modal',
    callback_id: VIEWS.edit,
    private_metadata: modalMeta(a, message),
    title: plain('Edit and approve', 24),
    submit: plain('Approve', 24),
    close: plain('Cancel', 24),
    blocks,
  };
}

/** The Reject modal, asking for a reason (which, by the default policy, has Keel plan again with the operator's words). */
export function rejectModal(a: SlackApproval, message: { channel: string; ts: string }): Record<string, unknown> {
  return {
    type: 'modal',
    callback_id: VIEWS.reject,
    private_metadata: modalMeta(a, message),
    title: plain('Reject', 24),
    submit: plain('Reject', 24),
    close: plain('Cancel', 24),
    blocks: [
      section(`*${esc(a.summary || a.title)}*`),
      {
        type: 'input',
        block_id: REASON_BLOCK,
        label: plain('Reason', 2000),
        optional: true,
        element: { type: 'plain_text_input', action_id: INPUT_ACTION, multiline: true, max_length: INPUT_MAX },
        hint: plain(
          'Kept with the decision. By default a reason has Keel plan again with your words; without one the goal stops and its committed work is undone.',
          2000,
        ),
      },
    ],
  };
}

/** The values of a submitted modal, by block id (`view.state.values[block][INPUT_ACTION].value`). */
export function submittedValues(state: unknown): Record<string, string | undefined> {
  const values = (state as { values?: Record<string, Record<string, { value?: unknown }>> } | undefined)?.values;
  const out: Record<string, string | undefined> = {};
  for (const [block, actions] of Object.entries(values ?? {})) {
    const v = actions?.[INPUT_ACTION]?.value;
    out[block] = typeof v === 'string' ? v : undefined;
  }
  return out;
}

/**
 * The edits an Edit modal submits: the fields whose text differs from the
 * proposal (an unchanged submission is a plain approval).
 */
export function editsFromModal(a: SlackApproval, state: unknown): Record<string, string> {
  const values = submittedValues(state);
  const proposed = proposedOf(a);
  const edits: Record<string, string> = {};
  for (const field of editableFields(a.kind)) {
    const value = values[`${FIELD_BLOCK_PREFIX}${field.name}`];
    if (value === undefined) continue;
    if (value !== (typeof proposed[field.name] === 'string' ? proposed[field.name] : '')) edits[field.name] = value;
  }
  return edits;
}

/** A suggested trust rule as a message: what it would approve, why it is suggested, Accept and Dismiss. */
export function trustSuggestionMessage(rule: { id: string; text: string; evidence: number }) {
  const text = `Keel suggests a rule: ${rule.text}`;
  return {
    text,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `*Suggested rule:* ${esc(rule.text)}\nYou approved ${rule.evidence} like it without changes. Accepted, it approves such steps for you (each one says so); you can revoke it.`,
        },
      },
      {
        type: 'actions',
        elements: [
          {
            type: 'button',
            action_id: ACTIONS.trustAccept,
            text: plain('Accept rule'),
            style: 'primary',
            value: rule.id,
          },
          { type: 'button', action_id: ACTIONS.trustDismiss, text: plain('Dismiss'), value: rule.id },
        ],
      },
    ],
  };
}

/** The suggestion's message once decided: what happened and who did it, no buttons. */
export function trustDecidedMessage(rule: { text: string }, outcome: string, user: string) {
  const mention = /^[A-Z0-9]+$/.test(user) ? `<@${user}>` : esc(user);
  return {
    text: `Rule ${outcome} by ${user}: ${rule.text}`,
    blocks: [section(`Rule ${esc(outcome)} by ${mention}: ${esc(rule.text)}`)],
  };
}
