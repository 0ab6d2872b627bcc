/**
 * Keel's activities: thin Temporal adapters over the domain modules, built
 * once per worker from their dependencies so tests can pass their own (a
 * scratch database, a local SMTP server). The tool activities come from
 * tools/, one folder per tool; the bookkeeping ones from state/.
 */
import type { EmailConnector } from '../connectors/email';
import type { Db } from '../db/prisma';
import { createCompactionActivities } from '../memory/compaction';
import { rememberGoal } from '../memory/episodes';
import type { MemoryService } from '../memory/service';
import { planOffline } from '../planner/offline';
import type { PlanGoalInput, ProposedPlan } from '../shared/activity-io';
import { createApprovalActivities } from '../state/approvals';
import { createGoalStateActivities } from '../state/goals';
import { createToolActivities } from '../tools/activities';

export interface ActivityDeps {
  prisma: Db;
  email: EmailConnector;
  memory: MemoryService;
  /** Who signs drafts (KEEL_OPERATOR_NAME). */
  operatorName: string;
  /** Token budget of a step's working set (KEEL_WORKING_SET_TOKENS). */
  workingSetTokens: number;
  /** Proposes plans; the offline planner unless another is given (a model planner, a test's). */
  planner?: (input: PlanGoalInput) => Promise<ProposedPlan>;
}

export function createActivities(deps: ActivityDeps) {
  return {
    /** Proposes a plan for a goal. Until the model gateway lands, the offline planner answers. */
    async planGoal(input: PlanGoalInput): Promise<ProposedPlan> {
      return deps.planner ? deps.planner(input) : planOffline(input);
    },
    ...createGoalStateActivities(deps.prisma),
    ...createApprovalActivities(deps.prisma, deps.memory),
    ...createToolActivities(deps),
    ...createCompactionActivities({ prisma: deps.prisma, memory: deps.memory }),
    /** After a goal ends: the episodic memory of what happened. */
    rememberGoal: (input: { goalId: string }) => rememberGoal(deps, input),
  };
}

export type KeelActivities = ReturnType<typeof createActivities>;
