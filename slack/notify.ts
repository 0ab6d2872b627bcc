/**
 * Keeps the Slack channel in step with the approvals: posts each new pending
 * approval (several of one kind found together as one group message), and
 * updates a message with chat.update once its approval is decided — from
 * Slack, the API, the inbox or the CLI — or expires.
 *
 * Why a poller in the API process rather than a call from the workflow's
 * openApproval activity: everything it needs to know is in PostgreSQL (which
 * approvals wait, which message shows which approval and what it shows), so
 * a pass after a restart picks up exactly where the last one stopped, and
 * decisions from every channel are seen the same way without each channel
 * having to tell Slack. The activity would have had to repeat all of that for
 * the update side anyway, and a Slack outage would have held up the goal's
 * bookkeeping. The cost is a few seconds of delay and two indexed queries
 * per pass.
 *
 * Why it never double-posts: an approval is claimed (its slack_messages row
 * written) before its message is posted, so no other process and no later
 * pass posts it while the claim stands; the message carries its key in its
 * metadata, and a claim left without a ts (the poster died or timed out
 * between the post and writing the ts) is resolved by finding that message
 * in conversations.history before posting again. Updates are idempotent
 * (chat.update with the same content), so one repeated after a crash is harmless.
 */
import type { WebClient } from '@slack/web-api';
import type { Db } from '../db/prisma';
import { databaseUnavailable } from '../db/unavailable';
import { ruleText } from '../trust/rules';
import { chunkForMessages, messageFor, trustSuggestionMessage, type SlackApproval } from './blocks';
import { certainlyRefused, describeSlackError, platformError } from './client';
import {
  claim,
  loadMessage,
  markPosted,
  claimReminder,
  markShown,
  outdated,
  reclaim,
  release,
  releaseReminder,
  staleClaims,
  unposted,
  unreminded,
} from './store';

/** The metadata event type of Keel's approval messages; the payload's `key` is the message key. */
export const APPROVAL_MESSAGE_EVENT = 'keel_approval';

/** Slack's channel ids: C (public), G (private), D (direct message). */
const CHANNEL_ID = /^[CGD][A-Z0-9]{2,}$/;

/** Slack errors after which a message can never be updated: stop trying. */
const GONE = new Set([
  'message_not_found',
  'channel_not_found',
  'cant_update_message',
  'is_archived',
  'edit_window_closed',
]);

/** How far before a claim the history look-up starts, for clock skew between this host and Slack. */
const LOOKBACK_SKEW_S = 300;
const MAX_HISTORY_PAGES = 10;

export interface SlackNotifierOptions {
  prisma: Db;
  web: WebClient;
  /** SLACK_CHANNEL: where approvals are posted (an id such as C0123 is best; a name works). */
  channel: string;
  /** Time between passes (default 3 s). */
  intervalMs?: number;
  /**
   * How old a claim without a ts must be before another pass treats its
   * poster as dead (default 60 s); longer than a Slack request's deadline.
   */
  claimStaleMs?: number;
  /** Most approvals in one group message (default 7; Slack's 50-block limit caps it too). */
  maxPerMessage?: number;
  /** Most approvals or messages handled per pass and step (default 50). */
  batch?: number;
  /** Where problems are reported (default console.warn). */
  log?: (message: string) => void;
}

/** What one pass did. */
export interface SyncReport {
  posted: number;
  recovered: number;
  updated: number;
  /** Reminders sent for escalated approvals. */
  reminded: number;
  /** Suggested trust rules posted. */
  suggested: number;
}

export interface SlackNotifier {
  /** One pass: post new approvals, resolve stale claims, update messages whose approvals were decided. */
  sync(): Promise<SyncReport>;
  /** Passes every intervalMs until stop(). */
  start(): void;
  /** A pass as soon as possible (after a decision from Slack, so its message changes at once). */
  wake(): void;
  stop(): Promise<void>;
}

export function createSlackNotifier(opts: SlackNotifierOptions): SlackNotifier {
  const { prisma, web } = opts;
  const intervalMs = opts.intervalMs ?? 3000;
  const claimStaleMs = opts.claimStaleMs ?? 60_000;
  const maxPerMessage = opts.maxPerMessage ?? 7;
  const batch = opts.batch ?? 50;
  const log = opts.log ?? ((message: string) => console.warn(`[slack] ${message}`));
  /** Channel names to ids, as Slack's answers tell them. */
  const channelIds = new Map<string, string>();

  /** A message's key: from its first approval, so a re-post after a crash carries the same key. */
  const keyOf = (first: SlackApproval) => `keel-approval:${first.id}`;

  async function post(key: string, channel: string, approvals: SlackApproval[]): Promise<boolean> {
    const content = messageFor(approvals);
    let answer;
    try {
      answer = await web.chat.postMessage({
        channel,
        text: content.text,
        blocks: content.blocks,
        metadata: { event_type: APPROVAL_MESSAGE_EVENT, event_payload: { key } },
        unfurl_links: false,
        unfurl_media: false,
      });
    } catch (err) {
      // Refused: nothing was posted, so the next pass may try again. Otherwise the claim stays for recovery.
      if (certainlyRefused(err)) await release(prisma, key);
      log(`posting approval message ${key} to ${channel} failed: ${describeSlackError(err)}`);
      return false;
    }
    const posted = { channel: answer.channel ?? channel, ts: String(answer.ts) };
    channelIds.set(channel, posted.channel);
    await markPosted(prisma, key, posted);
    return true;
  }

  async function postNew(): Promise<number> {
    const fresh = await unposted(prisma, batch);
    const byKind = new Map<string, SlackApproval[]>();
    for (const a of fresh) byKind.set(a.kind, [...(byKind.get(a.kind) ?? []), a]);
    let posted = 0;
    for (const [kind, approvals] of byKind) {
      for (const chunk of chunkForMessages(approvals, maxPerMessage)) {
        const key = keyOf(chunk[0]);
        const owned = new Set(
          await claim(
            prisma,
            { key, kind, channel: opts.channel },
            chunk.map((a) => a.id),
          ),
        );
        const mine = chunk.filter((a) => owned.has(a.id));
        if (mine.length && (await post(key, opts.channel, mine))) posted++;
      }
    }
    return posted;
  }

  /** The channel's id for conversations.history, which takes ids only; undefined when it cannot be learned. */
  async function channelIdOf(channel: string): Promise<string | undefined> {
    if (CHANNEL_ID.test(channel)) return channel;
    const known = channelIds.get(channel);
    if (known) return known;
    const name = channel.replace(/^#/, '');
    let cursor: string | undefined;
    do {
      const page = await web.conversations.list({ types: 'public_channel,private_channel', limit: 1000, cursor });
      const found = page.channels?.find((c) => c.name === name);
      if (found?.id) {
        channelIds.set(channel, found.id);
        return found.id;
      }
      cursor = page.response_metadata?.next_cursor || undefined;
    } while (cursor);
    return undefined;
  }

  /** The message an earlier pass posted under `key`, if it reached the channel. */
  async function findPosted(
    channel: string,
    key: string,
    since: Date,
  ): Promise<{ channel: string; ts: string } | undefined> {
    const id = await channelIdOf(channel);
    if (!id) return undefined;
    const oldest = String(Math.floor(since.getTime() / 1000) - LOOKBACK_SKEW_S);
    let cursor: string | undefined;
    for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
      const res = await web.conversations.history({
        channel: id,
        oldest,
        include_all_metadata: true,
        limit: 200,
        cursor,
      });
      for (const m of res.messages ?? []) {
        const meta = m.metadata as { event_type?: string; event_payload?: { key?: unknown } } | undefined;
        if (meta?.event_type === APPROVAL_MESSAGE_EVENT && meta.event_payload?.key === key && m.ts) {
          return { channel: id, ts: m.ts };
        }
      }
      cursor = res.response_metadata?.next_cursor || undefined;
      if (!res.has_more || !cursor) return undefined;
    }
    return undefined;
  }

  /**
   * Claims whose poster never wrote the ts: the message is found in the
   * channel's history and recorded, or posted again if it is not there.
   * When the history cannot be read (a token without channels:history), it
   * is posted again: a second copy of a message is a nuisance, while an
   * approval never shown in Slack would wait unseen (the buttons of both
   * copies decide the same approval, once).
   */
  async function recover(): Promise<number> {
    let recovered = 0;
    for (const stale of await staleClaims(prisma, new Date(Date.now() - claimStaleMs), batch)) {
      if (!(await reclaim(prisma, stale.key, stale.claimedAt))) continue;
      let found: { channel: string; ts: string } | undefined;
      try {
        found = await findPosted(stale.channel, stale.key, stale.claimedAt);
      } catch (err) {
        log(
          `could not look for approval message ${stale.key} in ${stale.channel} (${describeSlackError(err)}); posting it again`,
        );
      }
      if (found) {
        await markPosted(prisma, stale.key, found);
        recovered++;
        continue;
      }
      const message = await loadMessage(prisma, stale.key);
      if (!message) continue;
      if (!message.approvals.some((a) => a.status === 'pending')) {
        await release(prisma, stale.key);
        continue;
      }
      if (await post(stale.key, stale.channel, message.approvals)) recovered++;
    }
    return recovered;
  }

  /** Messages that show a decided approval as waiting: updated to show the outcome, buttons removed. */
  async function updateDecided(): Promise<number> {
    let updated = 0;
    for (const key of await outdated(prisma, batch)) {
      const message = await loadMessage(prisma, key);
      if (!message?.ts) continue;
      const content = messageFor(message.approvals);
      try {
        await web.chat.update({ channel: message.channel, ts: message.ts, text: content.text, blocks: content.blocks });
        updated++;
      } catch (err) {
        const code = platformError(err);
        log(`updating approval message ${key} failed: ${describeSlackError(err)}`);
        // A message that is gone cannot be updated later either; anything else is tried again next pass.
        if (!code || !GONE.has(code)) continue;
      }
      await markShown(
        prisma,
        message.approvals
          .filter((a) => message.shown.get(a.id) !== a.status)
          .map((a) => ({ approvalId: a.id, status: a.status })),
      );
    }
    return updated;
  }

  /**
   * Approvals still waiting after their first deadline (the workflow flags them escalated): one reminder,
   * a reply in the message's thread that is also shown in the channel, so the buttons above are found again.
   */
  async function remindEscalated(): Promise<number> {
    let reminded = 0;
    for (const key of await unreminded(prisma, batch)) {
      const message = await loadMessage(prisma, key);
      if (!message?.ts) continue;
      const waiting = message.approvals.filter((a) => a.status === 'pending');
      if (waiting.length === 0) continue;
      const text =
        waiting.length === 1
          ? `Reminder: still waiting for a decision on "${waiting[0].summary}"`
          : `Reminder: ${waiting.length} approvals here are still waiting for a decision`;
      // Claimed first, so two API processes never both remind; given back if Slack did not take it.
      if (!(await claimReminder(prisma, key))) continue;
      try {
        await web.chat.postMessage({ channel: message.channel, thread_ts: message.ts, reply_broadcast: true, text });
      } catch (err) {
        log(`reminding of approval message ${key} failed: ${describeSlackError(err)}`);
        await releaseReminder(prisma, key);
        continue;
      }
      reminded++;
    }
    return reminded;
  }

  /** Trust rules the operator's approvals suggest (trust/): one message each, claimed first, with Accept and Dismiss. */
  async function postSuggestions(): Promise<number> {
    let posted = 0;
    const rules = await prisma.trustRule.findMany({
      where: { status: 'suggested', slackClaimedAt: null },
      orderBy: { createdAt: 'asc' },
      take: batch,
    });
    for (const rule of rules) {
      const claimed = await prisma.trustRule.updateMany({
        where: { id: rule.id, slackClaimedAt: null },
        data: { slackClaimedAt: new Date() },
      });
      if (claimed.count === 0) continue;
      const content = trustSuggestionMessage({ id: rule.id, text: ruleText(rule), evidence: rule.evidence });
      try {
        const answer = await web.chat.postMessage({
          channel: opts.channel,
          text: content.text,
          blocks: content.blocks,
        });
        await prisma.trustRule.update({
          where: { id: rule.id },
          data: { slackChannel: answer.channel ?? opts.channel, slackTs: String(answer.ts) },
        });
        posted++;
      } catch (err) {
        log(`posting trust rule ${rule.id} failed: ${describeSlackError(err)}`);
        await prisma.trustRule.update({ where: { id: rule.id }, data: { slackClaimedAt: null } });
      }
    }
    return posted;
  }

  async function sync(): Promise<SyncReport> {
    const posted = await postNew();
    const recovered = await recover();
    const updated = await updateDecided();
    const reminded = await remindEscalated();
    const suggested = await postSuggestions();
    return { posted, recovered, updated, reminded, suggested };
  }

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = true;

  const schedule = (ms: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void pass(), ms);
    timer.unref();
  };
  let databaseDown = false;
  async function pass(): Promise<void> {
    if (running) {
      again = true;
      return;
    }
    running = sync().then(
      () => {
        if (databaseDown) log('PostgreSQL answers again: passes resume');
        databaseDown = false;
      },
      (err: unknown) => {
        // An outage is said once, in one line, not as a multi-line Prisma error every interval.
        const down = databaseUnavailable(err);
        if (down && databaseDown) return;
        databaseDown = down !== undefined;
        log(
          down
            ? `PostgreSQL is unavailable (${down}): passes wait for it`
            : `pass failed: ${err instanceof Error ? err.message : String(err)}`,
        );
      },
    );
    await running;
    running = undefined;
    schedule(again ? 0 : intervalMs);
    again = false;
  }

  return {
    sync,
    start() {
      if (!stopped) return;
      stopped = false;
      schedule(0);
    },
    wake() {
      if (running) again = true;
      else schedule(0);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
