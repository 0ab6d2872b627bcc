/**
 * What every tool activity shares (Node side): its dependencies, input and
 * output parsing against the tool's spec, the step's own start and finish
 * records, and ids derived from workflow id + step id so a retry finds its
 * own earlier work instead of duplicating it.
 */
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import type { EmailConnector } from '../connectors/email';
import type { SlackConnector } from '../connectors/slack';
import type { WebhookConnector } from '../connectors/webhook';
import type { Db } from '../db/prisma';
import type { MemoryService } from '../memory/service';
import type { ModelGateway } from '../models/gateway';
import type { StepActivityInput } from '../shared/activity-io';
import type { StepOutput, StepResult } from '../shared/plan';
import { loadArtifact } from '../state/artifacts';
import type { RateLimit } from '../policy/settings';
import { takeRateLimit } from '../state/rate-limits';
import { recordStepCompleted, recordStepStarted } from '../state/steps';
import { describeIssues, type ToolSpec } from './spec';

/** Labels every output made without a model, so nobody mistakes a template for a model's work. */
export const OFFLINE_LABEL = 'offline (no model was used)';

export interface ToolDeps {
  prisma: Db;
  email: EmailConnector;
  memory: MemoryService;
  /** Token budget of a step's working set (KEEL_WORKING_SET_TOKENS). */
  workingSetTokens: number;
  /** Who signs drafts (KEEL_OPERATOR_NAME). */
  operatorName: string;
  /** The model gateway, when a model endpoint is configured; tools fall back to their offline way without it. */
  models?: ModelGateway;
  /** Slack (SLACK_BOT_TOKEN, SLACK_CHANNEL, SLACK_API_URL); without it slack.post fails naming SLACK_BOT_TOKEN. */
  slack?: SlackConnector;
  /** Signed webhooks (KEEL_WEBHOOK_SECRET); without it webhook.call fails naming KEEL_WEBHOOK_SECRET. */
  webhook?: WebhookConnector;
  /** Connector → its limits (KEEL_POLICY `rateLimits`); a tool whose spec names a connector takes a slot per run. */
  rateLimits?: Readonly<Record<string, RateLimit>>;
  /** The worker's Temporal identity, recorded on every step.started so operators can see which worker ran what. */
  workerIdentity?: string;
}

/** What a tool's implementation returns; the runtime adds zero cost when it says nothing about cost. */
export type ToolResult<O> = { output: O } & Partial<Omit<StepResult, 'output'>>;

/** One tool's implementation: its spec, and a function of its parsed inputs. */
export interface ToolImplementation<
  I extends z.ZodObject = z.ZodObject,
  O extends z.ZodType<StepOutput> = z.ZodType<StepOutput>,
> {
  spec: ToolSpec<string, string, I, O>;
  run(inputs: z.output<I>, step: StepActivityInput, deps: ToolDeps): Promise<ToolResult<z.output<O>>>;
  /** The Temporal activity for this tool over a worker's dependencies. */
  activity(deps: ToolDeps): (step: StepActivityInput) => Promise<StepResult>;
}

export function implementTool<I extends z.ZodObject, O extends z.ZodType<StepOutput>>(
  spec: ToolSpec<string, string, I, O>,
  run: ToolImplementation<I, O>['run'],
): ToolImplementation<I, O> {
  const impl: ToolImplementation<I, O> = { spec, run, activity: (deps) => toolActivity(impl, deps) };
  return impl;
}

export const stableId = (prefix: string, ...parts: (string | number)[]) =>
  `${prefix}-${createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32)}`;

/**
 * The idempotency key of a step's external side effect: workflow id + plan
 * version + step id, the same on every retry of the step and different for
 * the same step id in a later plan or another run.
 */
export const sideEffectKey = (step: Pick<StepActivityInput, 'workflowId' | 'planVersion' | 'stepId'>) =>
  `${step.workflowId}:v${step.planVersion}:${step.stepId}`;

/**
 * Runs `work` while heartbeating every second, passing it the activity's
 * cancellation signal: connector activities have a heartbeat timeout, so a
 * dead worker's call is retried quickly while a slow one is left alone.
 */
export async function heartbeating<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  const beat = setInterval(() => ctx.heartbeat(), 1000);
  try {
    ctx.heartbeat();
    return await work(ctx.cancellationSignal);
  } finally {
    clearInterval(beat);
  }
}

/** The attempt number of the running activity (1 outside an activity, e.g. in a script). */
function attempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

/** The task queue the running activity came from (undefined outside an activity). */
function activityTaskQueue(): string | undefined {
  try {
    return Context.current().info.taskQueue;
  } catch {
    return undefined;
  }
}

/** The full text of an earlier step's output (its artifact), or the text itself. */
export async function textOf(
  prisma: Db,
  value: string | { ref?: string; preview?: string } | undefined,
): Promise<string> {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  if (value.ref) return (await loadArtifact(prisma, value.ref)).content;
  return value.preview ?? '';
}

/**
 * The activity for a tool: parses the resolved inputs with the spec (a
 * mismatch is `InvalidInput`, which retrying cannot fix), records the step's
 * start, runs the tool, checks its output against the spec, and records the finish.
 */
export function toolActivity<I extends z.ZodObject, O extends z.ZodType<StepOutput>>(
  impl: ToolImplementation<I, O>,
  deps: ToolDeps,
) {
  const { spec } = impl;
  return async (step: StepActivityInput): Promise<StepResult> => {
    const parsed = spec.input.safeParse(step.inputs);
    if (!parsed.success) {
      throw ApplicationFailure.nonRetryable(
        `step "${step.stepId}" (${spec.name}) has invalid inputs: ${describeIssues(parsed.error)}`,
        'InvalidInput',
      );
    }
    const ref = { goalId: step.goalId, planVersion: step.planVersion, stepId: step.stepId, tool: step.tool };
    const limits = spec.rateLimit ? deps.rateLimits?.[spec.rateLimit] : undefined;
    if (spec.rateLimit && limits) {
      const taken = await takeRateLimit(deps.prisma, spec.rateLimit, limits);
      if (!taken.ok) {
        // Retried when the window opens (nextRetryDelay overrides the backoff); nothing was started.
        throw ApplicationFailure.create({
          type: 'RateLimited',
          message: `the ${spec.rateLimit} connector took its ${taken.limit} actions this ${taken.window}; ${spec.name} runs again in ${Math.ceil(taken.retryAfterMs / 1000)} s`,
          nextRetryDelay: taken.retryAfterMs,
        });
      }
    }
    const tried = attempt();
    const taskQueue = activityTaskQueue();
    await recordStepStarted(
      deps.prisma,
      ref,
      tried,
      deps.workerIdentity && taskQueue ? { worker: deps.workerIdentity, taskQueue } : undefined,
    );
    const r = await impl.run(parsed.data, step, deps);
    const output = spec.output.safeParse(r.output);
    if (!output.success) {
      // A tool that breaks its own contract is a bug; retrying it would only repeat it.
      throw ApplicationFailure.nonRetryable(
        `tool ${spec.name} produced an output that does not match its spec: ${describeIssues(output.error)}`,
        'InvalidOutput',
      );
    }
    const result: StepResult = { costUsd: 0, inputTokens: 0, outputTokens: 0, ...r, output: output.data };
    await recordStepCompleted(deps.prisma, ref, result, tried);
    return result;
  };
}
