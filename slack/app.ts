/**
 * Slack's interactivity endpoint, POST /slack/interactions: clicks on the
 * approval messages' buttons and the Edit and Reject modals' submissions,
 * served by @slack/bolt's App on an ExpressReceiver whose router the API
 * mounts before any body parser (Bolt verifies the signature over the raw
 * body, so nothing may read the body before it).
 *
 * What counts: a request whose X-Slack-Request-Timestamp is within five
 * minutes of now, either way (checked here first: Bolt only refuses old
 * ones), and whose X-Slack-Signature is v0=HMAC-SHA256(signing secret,
 * `v0:<timestamp>:<raw body>`) (checked by Bolt); anything else is a 401.
 * Who counts: only the Slack users in SLACK_APPROVERS; anyone else changes
 * nothing and is told so in an ephemeral message.
 *
 * Decisions go through commands/decisions.ts like every other channel's,
 * named `slack:<user id>` and keyed by Slack's id of the click (the action's
 * action_ts, or the modal's view id), so a click Slack delivers again (a
 * retry, X-Slack-Retry-Num) is the same decision and is applied once.
 * Slack wants an answer within three seconds: each request is acknowledged
 * first and decided after; the message then changes through the notifier.
 */
import { App, ExpressReceiver, LogLevel } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { databaseUnavailable } from '../db/unavailable';
import express, { type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import { decide, decideMany, type DecisionRequest } from '../commands/decisions';
import { CommandError, ConflictError } from '../commands/errors';
import type { CommandDeps } from '../commands/types';
import { checkEdits } from '../state/approvals';
import { changeRule } from '../trust/store';
import {
  ACTIONS,
  FIELD_BLOCK_PREFIX,
  REASON_BLOCK,
  VIEWS,
  approveValuesIn,
  buttonValueSchema,
  editModal,
  editsFromModal,
  modalMetaSchema,
  parseJsonWith,
  rejectModal,
  submittedValues,
  trustDecidedMessage,
  type SlackApproval,
} from './blocks';
import { describeSlackError } from './client';
import { loadApproval } from './store';

/** Where Slack sends interactions (the app's Interactivity Request URL ends with it). */
export const INTERACTIONS_PATH = '/slack/interactions';

/** Slack's window for X-Slack-Request-Timestamp, in seconds, each way. */
export const SIGNATURE_WINDOW_S = 5 * 60;

export interface SlackInteractionOptions {
  /** SLACK_SIGNING_SECRET. */
  signingSecret: string;
  /** SLACK_APPROVERS: the Slack user ids that may decide. */
  approvers: readonly string[];
  /** The Web API client (views.open, chat.postEphemeral). */
  web: WebClient;
  /** Told after every decision from Slack, so the message changes at once rather than on the next pass. */
  notifier?: { wake(): void };
  /** Bolt's log level (default WARN: refused signatures are logged). */
  logLevel?: LogLevel;
}

/** SLACK_APPROVERS as a list: comma-separated user ids, blanks ignored. */
export const parseApprovers = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * 401 unless X-Slack-Request-Timestamp is a number of seconds within
 * SIGNATURE_WINDOW_S of now, in the past or in the future. Bolt refuses only
 * timestamps too far in the past; a signed request stamped ahead of time
 * would otherwise stay replayable for longer than Slack's window.
 */
export const slackTimestampWindow: RequestHandler = (req, res, next) => {
  const header = req.get('x-slack-request-timestamp') ?? '';
  const ts = /^\d{1,12}$/.test(header) ? Number(header) : NaN;
  const skew = Math.abs(Math.floor(Date.now() / 1000) - ts);
  if (!Number.isFinite(skew) || skew > SIGNATURE_WINDOW_S) {
    res.status(401).json({
      error: {
        code: 'unauthorized',
        message: `X-Slack-Request-Timestamp must be within ${SIGNATURE_WINDOW_S} seconds of now`,
      },
    });
    return;
  }
  next();
};

// What Keel reads of Slack's payloads; anything else in them is ignored.
const blockActionBody = z.looseObject({
  user: z.looseObject({ id: z.string().min(1) }),
  trigger_id: z.string().optional(),
  channel: z.looseObject({ id: z.string() }).optional(),
  container: z.looseObject({ channel_id: z.string().optional(), message_ts: z.string().optional() }).optional(),
  message: z.looseObject({ ts: z.string().optional(), blocks: z.array(z.unknown()).optional() }).optional(),
  actions: z
    .array(z.looseObject({ action_id: z.string(), value: z.string().optional(), action_ts: z.string().optional() }))
    .min(1),
});
type BlockActionBody = z.infer<typeof blockActionBody>;

const viewSubmissionBody = z.looseObject({
  user: z.looseObject({ id: z.string().min(1) }),
  view: z.looseObject({ id: z.string().min(1), private_metadata: z.string().optional(), state: z.unknown() }),
});

/** The API's router for POST /slack/interactions: the timestamp window, then Bolt. */
export function slackInteractions(opts: SlackInteractionOptions, commands: CommandDeps): Router {
  const approvers = new Set(opts.approvers);
  const router = express.Router();
  // Registered before the receiver's own route on the same router, so it runs first.
  router.post(INTERACTIONS_PATH, slackTimestampWindow);
  const receiver = new ExpressReceiver({
    signingSecret: opts.signingSecret,
    endpoints: INTERACTIONS_PATH,
    router,
    // Acknowledge first, then decide: a decision waits for the goal's workflow, and Slack waits 3 s at most.
    processBeforeResponse: false,
    logLevel: opts.logLevel ?? LogLevel.WARN,
  });
  const bolt = new App({
    receiver,
    // One workspace, one bot token, used through `opts.web`: Bolt needs no token of its own.
    authorize: async () => ({}),
    ignoreSelf: false,
    convoStore: false,
    logLevel: opts.logLevel ?? LogLevel.WARN,
  });
  const { web } = opts;
  const warn = (message: string) => bolt.logger.warn(`[slack] ${message}`);

  const ephemeral = async (channel: string | undefined, user: string, text: string) => {
    if (!channel) return;
    try {
      await web.chat.postEphemeral({ channel, user, text });
    } catch (err) {
      warn(`could not tell ${user} in ${channel} "${text}": ${describeSlackError(err)}`);
    }
  };

  const notAllowed = (channel: string | undefined, user: string) =>
    ephemeral(
      channel,
      user,
      'You are not allowed to decide Keel approvals: only the Slack users listed in SLACK_APPROVERS are. Nothing was changed.',
    );

  /** The commands' deps with the Slack user as the actor. */
  const as = (user: string): CommandDeps => ({ ...commands, actor: `slack:${user}` });

  /** One decision, from a click or a modal; failures are told to the one who clicked. */
  async function decideFromSlack(
    user: string,
    where: { channel?: string; retry: boolean },
    request: Omit<DecisionRequest, 'actor' | 'channel'>,
  ): Promise<void> {
    try {
      await decide(as(user), { ...request, actor: `slack:${user}`, channel: 'slack' });
    } catch (err) {
      // Slack was answered before deciding (it waits 3 s at most), so whatever went wrong is told to the person
      // who clicked: a failure nobody hears of would be a lost decision (issue 10's fault suite found one when
      // PostgreSQL was down: the error went to the log only and the click looked accepted).
      if (!(err instanceof CommandError)) {
        const down = databaseUnavailable(err);
        if (!down) warn(`decision on ${request.approvalId} by ${user} failed: ${describeSlackError(err)}`);
        await ephemeral(
          where.channel,
          user,
          `Your decision was not recorded: ${down ? `PostgreSQL is unavailable (${down})` : 'an unexpected error'}. Nothing was changed; click again in a moment.`,
        );
        return;
      }
      // A delivery Slack repeats after the first one was decided finds it decided: that is the first one's answer.
      if (!(where.retry && err instanceof ConflictError)) {
        await ephemeral(where.channel, user, `Your decision was not recorded: ${err.message}`);
      }
    } finally {
      opts.notifier?.wake();
    }
  }

  const clickOf = (body: unknown) => {
    const parsed = blockActionBody.safeParse(body);
    if (!parsed.success) return undefined;
    const b: BlockActionBody = parsed.data;
    const action = b.actions[0];
    return {
      body: b,
      user: b.user.id,
      channel: b.channel?.id ?? b.container?.channel_id,
      ts: b.message?.ts ?? b.container?.message_ts,
      value: parseJsonWith(buttonValueSchema, action.value),
      // Slack's id of this click: the same again only when Slack delivers the same click again.
      key: `slack:${b.user.id}:${action.action_ts ?? b.trigger_id ?? ''}`,
    };
  };

  /** The approval a modal button is for, if it still waits; otherwise the clicker is told why not. */
  async function stillPending(
    click: NonNullable<ReturnType<typeof clickOf>>,
    retry: boolean,
  ): Promise<SlackApproval | undefined> {
    if (!click.value) return undefined;
    const approval = await loadApproval(commands.prisma, click.value.a);
    if (!approval) {
      await ephemeral(click.channel, click.user, `Approval ${click.value.a} does not exist.`);
      return undefined;
    }
    if (approval.status !== 'pending') {
      if (!retry) await ephemeral(click.channel, click.user, `This approval is already ${approval.status}.`);
      opts.notifier?.wake();
      return undefined;
    }
    return approval;
  }

  bolt.action(ACTIONS.approve, async ({ ack, body, context }) => {
    await ack();
    const click = clickOf(body);
    if (!click?.value) return;
    if (!approvers.has(click.user)) return notAllowed(click.channel, click.user);
    await decideFromSlack(
      click.user,
      { channel: click.channel, retry: Boolean(context.retryNum) },
      { approvalId: click.value.a, decision: 'approve', idempotencyKey: click.key, shownHash: click.value.h },
    );
  });

  bolt.action(ACTIONS.reject, async ({ ack, body, context }) => {
    await ack();
    const click = clickOf(body);
    if (!click?.value || !click.body.trigger_id) return;
    if (!approvers.has(click.user)) return notAllowed(click.channel, click.user);
    const approval = await stillPending(click, Boolean(context.retryNum));
    if (!approval) return;
    await openModal(click, rejectModal(approval, { channel: click.channel ?? '', ts: click.ts ?? '' }));
  });

  bolt.action(ACTIONS.edit, async ({ ack, body, context }) => {
    await ack();
    const click = clickOf(body);
    if (!click?.value || !click.body.trigger_id) return;
    if (!approvers.has(click.user)) return notAllowed(click.channel, click.user);
    const approval = await stillPending(click, Boolean(context.retryNum));
    if (!approval) return;
    await openModal(click, editModal(approval, { channel: click.channel ?? '', ts: click.ts ?? '' }));
  });

  async function openModal(click: NonNullable<ReturnType<typeof clickOf>>, view: Record<string, unknown>) {
    try {
      await web.views.open({ trigger_id: click.body.trigger_id!, view: view as never });
    } catch (err) {
      // A trigger id lives three seconds and works once: a late or repeated delivery cannot open the modal.
      warn(`views.open for ${click.user} failed: ${describeSlackError(err)}`);
    }
  }

  // A suggested trust rule, accepted or dismissed from its message (trust/): only approvers may.
  for (const [actionId, action] of [
    [ACTIONS.trustAccept, 'accept'],
    [ACTIONS.trustDismiss, 'dismiss'],
  ] as const) {
    bolt.action(actionId, async ({ ack, body, context }) => {
      await ack();
      const parsed = blockActionBody.safeParse(body);
      if (!parsed.success) return;
      const b = parsed.data;
      const user = b.user.id;
      const channel = b.channel?.id ?? b.container?.channel_id;
      const ts = b.message?.ts ?? b.container?.message_ts;
      const ruleId = b.actions[0].value;
      if (!ruleId) return;
      if (!approvers.has(user)) return notAllowed(channel, user);
      const changed = await changeRule(commands.prisma, ruleId, action, `slack:${user}`);
      if (!changed.ok) {
        // A retried delivery of the same click finds the rule already changed: nothing to say twice.
        if (!context.retryNum) await ephemeral(channel, user, changed.message);
        return;
      }
      if (channel && ts) {
        const content = trustDecidedMessage(changed.rule, action === 'accept' ? 'accepted' : 'dismissed', user);
        try {
          await web.chat.update({ channel, ts, text: content.text, blocks: content.blocks as never });
        } catch (err) {
          warn(`updating the trust rule message failed: ${describeSlackError(err)}`);
        }
      }
    });
  }

  bolt.action(ACTIONS.approveAll, async ({ ack, body, context }) => {
    await ack();
    const click = clickOf(body);
    if (!click) return;
    if (!approvers.has(click.user)) return notAllowed(click.channel, click.user);
    // The approvals the message showed when it was clicked, with the hash each showed.
    const shown = approveValuesIn(click.body.message?.blocks);
    if (shown.length === 0) return;
    const outcomes = await decideMany(
      as(click.user),
      shown.map((v) => ({
        approvalId: v.a,
        decision: 'approve' as const,
        actor: `slack:${click.user}`,
        channel: 'slack' as const,
        idempotencyKey: click.key,
        shownHash: v.h,
      })),
    );
    opts.notifier?.wake();
    const failed = outcomes.flatMap((o) =>
      o.ok || (context.retryNum && o.error instanceof ConflictError) ? [] : [`• ${o.approvalId}: ${o.error.message}`],
    );
    if (failed.length) {
      await ephemeral(
        click.channel,
        click.user,
        `${outcomes.length - failed.length} of ${outcomes.length} approved; not approved:\n${failed.join('\n')}`,
      );
    }
  });

  bolt.view(VIEWS.edit, async ({ ack, body, context }) => {
    const parsed = viewSubmissionBody.safeParse(body);
    const meta = parsed.success ? parseJsonWith(modalMetaSchema, parsed.data.view.private_metadata) : undefined;
    if (!parsed.success || !meta) return void (await ack());
    const user = parsed.data.user.id;
    if (!approvers.has(user)) {
      await ack();
      return notAllowed(meta.c, user);
    }
    const approval = await loadApproval(commands.prisma, meta.a);
    if (!approval) return void (await ack());
    const edits = editsFromModal(approval, parsed.data.view.state);
    if (Object.keys(edits).length > 0) {
      // Refused edits keep the modal open, the problem shown under the field.
      const checked = checkEdits(approval.kind, edits);
      if (!checked.ok) {
        await ack({ response_action: 'errors', errors: fieldErrors(edits, checked.problem) });
        return;
      }
    }
    await ack();
    await decideFromSlack(
      user,
      { channel: meta.c, retry: Boolean(context.retryNum) },
      {
        approvalId: meta.a,
        decision: 'approve',
        ...(Object.keys(edits).length ? { edits } : {}),
        idempotencyKey: `slack:${user}:${parsed.data.view.id}`,
        shownHash: meta.h,
      },
    );
  });

  bolt.view(VIEWS.reject, async ({ ack, body, context }) => {
    await ack();
    const parsed = viewSubmissionBody.safeParse(body);
    const meta = parsed.success ? parseJsonWith(modalMetaSchema, parsed.data.view.private_metadata) : undefined;
    if (!parsed.success || !meta) return;
    const user = parsed.data.user.id;
    if (!approvers.has(user)) return notAllowed(meta.c, user);
    const reason = submittedValues(parsed.data.view.state)[REASON_BLOCK]?.trim();
    await decideFromSlack(
      user,
      { channel: meta.c, retry: Boolean(context.retryNum) },
      {
        approvalId: meta.a,
        decision: 'reject',
        ...(reason ? { comment: reason } : {}),
        idempotencyKey: `slack:${user}:${parsed.data.view.id}`,
        shownHash: meta.h,
      },
    );
  });

  bolt.error(async (err) => {
    warn(`interaction failed: ${err instanceof Error ? err.message : String(err)}`);
  });

  return router;
}

/** A refused edit as Slack's view errors: under each edited field the problem names, else under the first edited one. */
function fieldErrors(edits: Record<string, string>, problem: string): Record<string, string> {
  const named = Object.keys(edits).filter((name) => problem.includes(`edits.${name}`));
  const targets = named.length ? named : Object.keys(edits).slice(0, 1);
  return Object.fromEntries(targets.map((name) => [`${FIELD_BLOCK_PREFIX}${name}`, problem.slice(0, 150)]));
}
