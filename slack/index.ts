/**
 * Slack approvals for the API process, from the configuration: with
 * SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_CHANNEL set, the notifier
 * posts approvals and updates their messages, and POST /slack/interactions
 * takes the clicks; with any of them missing, Slack approvals are off (and
 * the setup line says which setting is missing).
 */
import type { Config } from '../config';
import type { Db } from '../db/prisma';
import { parseApprovers, type SlackInteractionOptions } from './app';
import { createSlackWebClient } from './client';
import { createSlackNotifier, type SlackNotifier } from './notify';

export { INTERACTIONS_PATH, parseApprovers, slackInteractions, type SlackInteractionOptions } from './app';
export { createSlackNotifier, type SlackNotifier } from './notify';

export type SlackSetup =
  | { on: true; interactions: SlackInteractionOptions; notifier: SlackNotifier; approvers: string[] }
  | { on: false; missing: string[] };

const REQUIRED = ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_CHANNEL'] as const;

/** The Slack parts the configuration asks for; the notifier is built, not started. */
export function slackFromConfig(config: Config, prisma: Db): SlackSetup {
  const missing = REQUIRED.filter((name) => !config[name]?.trim());
  if (missing.length) return { on: false, missing };
  const web = createSlackWebClient({
    token: config.SLACK_BOT_TOKEN!.trim(),
    apiUrl: config.SLACK_API_URL,
    timeoutMs: config.SLACK_TIMEOUT_MS,
  });
  const notifier = createSlackNotifier({
    prisma,
    web,
    channel: config.SLACK_CHANNEL!.trim(),
    intervalMs: config.SLACK_POLL_INTERVAL_MS,
    // A claim is only taken for abandoned once its post has certainly ended (its request deadline passed).
    claimStaleMs: Math.max(60_000, 3 * config.SLACK_TIMEOUT_MS),
  });
  const approvers = parseApprovers(config.SLACK_APPROVERS);
  return {
    on: true,
    approvers,
    notifier,
    interactions: { signingSecret: config.SLACK_SIGNING_SECRET!.trim(), approvers, web, notifier },
  };
}
