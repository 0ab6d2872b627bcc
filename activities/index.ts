/**
 * Keel's activities: thin Temporal adapters over the domain modules, built
 * once per worker from their dependencies so tests can pass their own (a
 * scratch database, a local SMTP server). The tool activities come from
 * tools/, one folder per tool; the bookkeeping ones from state/.
 */
import type { FaultHooks } from '../lib/faults';
import type { EmailConnector } from '../connectors/email';
import type { SlackConnector } from '../connectors/slack';
import type { WebhookConnector } from '../connectors/webhook';
import type { Db } from '../db/prisma';
import { createCompactionActivities } from '../memory/compaction';
import { rememberGoal } from '../memory/episodes';
import type { MemoryService } from '../memory/service';
import { withCache, type ModelCacheOptions } from '../models/cache';
import type { ModelGateway } from '../models/gateway';
import { createModelPlanner } from '../planner/model';
import { stepRecipients } from '../policy';
import { planOffline } from '../planner/offline';
import type { GoalTransitionInput, PlanGoalInput, ProposedPlan } from '../shared/activity-io';
import { createApprovalActivities } from '../state/approvals';
import { createGoalStateActivities } from '../state/goals';
import { createToolActivities } from '../tools/activities';
import type { ToolDeps } from '../tools/runtime';

export interface ActivityDeps {
  prisma: Db;
  email: EmailConnector;
  memory: MemoryService;
  /** slack.post's connector; without it the tool fails naming SLACK_BOT_TOKEN. */
  slack?: SlackConnector;
  /** webhook.call's connector; without it the tool fails naming KEEL_WEBHOOK_SECRET. */
  webhook?: WebhookConnector;
  /** Who signs drafts (KEEL_OPERATOR_NAME). */
  operatorName: string;
  /** Token budget of a step's working set (KEEL_WORKING_SET_TOKENS). */
  workingSetTokens: number;
  /** The model gateway, when a model endpoint is configured; without it Keel plans and drafts offline. */
  models?: ModelGateway;
  /** Proposes plans; by default the model planner when `models` is set, else the offline planner. */
  planner?: (input: PlanGoalInput) => Promise<ProposedPlan>;
  /** KEEL_TRUST_SUGGEST_AFTER: unedited approvals before a trust rule is suggested. */
  trustSuggestAfter?: number;
  /** Connector rate limits (KEEL_POLICY `rateLimits`), counted in PostgreSQL across workers. */
  rateLimits?: ToolDeps['rateLimits'];
  /** The model output cache's options (KEEL_MODEL_CACHE_FRESH), or false when KEEL_MODEL_CACHE=off; on by default. */
  modelCache?: ModelCacheOptions | false;
  /** KEEL_FAULTS' hooks for the bookkeeping activities (tests only; a no-op otherwise). */
  faults?: FaultHooks;
  /** The worker's Temporal identity, recorded on step.started events. */
  workerIdentity?: string;
}

export function createActivities(given: ActivityDeps) {
  // Model calls that ask for it are answered from the output cache when the same request was answered before.
  const deps: ActivityDeps =
    given.models && given.modelCache !== false
      ? { ...given, models: withCache(given.models, given.prisma, given.modelCache ?? {}) }
      : given;
  const planner =
    deps.planner ??
    (deps.models
      ? createModelPlanner({
          gateway: deps.models,
          prisma: deps.prisma,
          memory: deps.memory,
          workingSetTokens: deps.workingSetTokens,
        })
      : async (input: PlanGoalInput) => planOffline(input));
  const goalState = createGoalStateActivities(deps.prisma);
  return {
    /** Proposes a plan for a goal: the model planner with a model configured, else the offline planner. */
    async planGoal(input: PlanGoalInput): Promise<ProposedPlan> {
      const plan = await planner(input);
      // Which of the people the plan names are already contacts: the policy asks before a first contact,
      // and a model's plan may name no one else the goal does not name.
      return { ...plan, knownRecipients: await knownRecipients(deps.prisma, plan.steps) };
    },
    ...goalState,
    ...createApprovalActivities(deps.prisma, deps.memory, {
      trustSuggestAfter: deps.trustSuggestAfter,
      faults: deps.faults,
    }),
    ...createToolActivities(deps),
    ...createCompactionActivities({ prisma: deps.prisma, memory: deps.memory }),
    /** After a goal ends: the episodic memory of what happened. */
    rememberGoal: (input: { goalId: string }) => rememberGoal(deps, input),
    /**
     * A goal's end in one activity (one local activity instead of two for the workflow): its record (status,
     * cost, outcome and event, as transitionGoal), then its episodic memory (as rememberGoal). The memory is worth
     * having, not worth failing the end over, nor worth writing the end again for: its failure is answered, not
     * thrown, and the workflow asks again with rememberGoal, retried on its own.
     */
    async finishGoal(input: GoalTransitionInput): Promise<{ memoryError?: string }> {
      await goalState.transitionGoal(input);
      try {
        await rememberGoal(deps, { goalId: input.goalId });
        return {};
      } catch (err) {
        return { memoryError: err instanceof Error ? err.message : String(err) };
      }
    },
  };
}

/** The recipients a plan's steps name (their specs' recipient inputs) that are already the operator's contacts. */
async function knownRecipients(prisma: Db, steps: ProposedPlan['steps']): Promise<string[]> {
  const named = [...new Set(steps.flatMap(stepRecipients))];
  if (named.length === 0) return [];
  const contacts = await prisma.contact.findMany({ where: { email: { in: named } }, select: { email: true } });
  return contacts.map((c) => c.email);
}

export type KeelActivities = ReturnType<typeof createActivities>;
