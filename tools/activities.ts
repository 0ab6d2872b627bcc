/**
 * The tool activities for a worker, one per tool, keyed by the activity name
 * in each tool's spec, plus the compensations the specs name.
 */
import type { CompensationInput, StepActivityInput } from '../shared/activity-io';
import type { StepResult } from '../shared/plan';
import { compensateArtifactStep } from '../state/steps';
import { sendEmail } from './email-send/activity';
import { draftEmail } from './email-draft/activity';
import { classifyEvent } from './event-classify/activity';
import { checkFollowUp } from './followup-wait/activity';
import { recallContext } from './memory-recall/activity';
import { recordOutcome } from './outcome-record/activity';
import { deleteSlackMessage, postSlackMessage } from './slack-post/activity';
import {
  emailDraft,
  emailSend,
  eventClassify,
  followupWait,
  memoryRecall,
  outcomeRecord,
  slackPost,
  textExtract,
  textSummarize,
  webhookCall,
  type StepActivityName,
  type ToolName,
} from './registry';
import type { ToolDeps } from './runtime';
import type { CompensationActivityName } from './spec';
import { extractFields } from './text-extract/activity';
import { summarizeText } from './text-summarize/activity';
import { callWebhook } from './webhook-call/activity';

/** Every tool in the registry has its implementation here, or this does not compile. */
const IMPLEMENTATIONS = {
  [memoryRecall.name]: recallContext,
  [emailDraft.name]: draftEmail,
  [emailSend.name]: sendEmail,
  [textSummarize.name]: summarizeText,
  [outcomeRecord.name]: recordOutcome,
  [eventClassify.name]: classifyEvent,
  [textExtract.name]: extractFields,
  [slackPost.name]: postSlackMessage,
  [webhookCall.name]: callWebhook,
  [followupWait.name]: checkFollowUp,
} satisfies Record<ToolName, unknown>;

export type StepActivity = (input: StepActivityInput) => Promise<StepResult>;

export function createToolActivities(
  deps: ToolDeps,
): Record<StepActivityName, StepActivity> &
  Record<CompensationActivityName, (input: CompensationInput) => Promise<void>> {
  const steps = {} as Record<StepActivityName, StepActivity>;
  for (const impl of Object.values(IMPLEMENTATIONS)) {
    steps[impl.spec.activity as StepActivityName] = impl.activity(deps);
  }
  return {
    ...steps,
    /** Compensation for drafts and summaries: the artifact is kept but marked discarded. */
    discardArtifact: (input: CompensationInput) => compensateArtifactStep(deps.prisma, input, 'discarded'),
    /** Compensation for outcome.record: the outcome no longer counts. */
    voidOutcome: (input: CompensationInput) => compensateArtifactStep(deps.prisma, input, 'voided'),
    /** Compensation for slack.post: the message is deleted. */
    deleteSlackMessage: (input: CompensationInput) => deleteSlackMessage(deps, input),
  };
}

export type { ToolDeps };
