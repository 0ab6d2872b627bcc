/**
 * The tool registry, built from the specs: every tool a plan may name. Pure,
 * so the workflow (planner and policy), the approval activities and the API
 * all read the same specs.
 */
import { emailDraft } from './email-draft/spec';
import { emailSend } from './email-send/spec';
import { eventClassify } from './event-classify/spec';
import { followupWait } from './followup-wait/spec';
import { memoryRecall } from './memory-recall/spec';
import { outcomeRecord } from './outcome-record/spec';
import { slackPost } from './slack-post/spec';
import { textExtract } from './text-extract/spec';
import { textSummarize } from './text-summarize/spec';
import { webhookCall } from './webhook-call/spec';

const SPECS = [
  memoryRecall,
  emailDraft,
  emailSend,
  textSummarize,
  outcomeRecord,
  eventClassify,
  textExtract,
  slackPost,
  webhookCall,
  followupWait,
] as const;

export type KeelToolSpec = (typeof SPECS)[number];
export type ToolName = KeelToolSpec['name'];
export type StepActivityName = KeelToolSpec['activity'];

export const TOOLS: Readonly<Record<string, KeelToolSpec>> = Object.fromEntries(SPECS.map((s) => [s.name, s]));

/** The spec of a tool a plan names, or undefined for a name the registry does not know. */
export function toolSpec(tool: string): KeelToolSpec | undefined {
  return Object.prototype.hasOwnProperty.call(TOOLS, tool) ? TOOLS[tool] : undefined;
}

/** Failure types of every tool that retrying cannot fix (the activity presets add them to their own). */
export const TOOL_ERRORS: readonly string[] = [...new Set(SPECS.flatMap((s) => s.errors))];

export {
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
};
