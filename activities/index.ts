/**
 * Keel's activities, built once per worker from their dependencies so tests
 * can pass their own (a scratch database, a local SMTP server).
 */
import type { Db } from '../db/prisma';
import type { EmailConnector } from '../connectors/email';
import { createCompactionActivities } from '../memory/compaction';
import type { MemoryService } from '../memory/service';
import { planOffline } from '../planner/offline';
import { createApprovalActivities } from '../state/approvals';
import { createGoalStateActivities } from '../state/goals';
import { createStepActivities } from './steps';
import type { PlanGoalInput, ProposedPlan } from '../shared/activity-io';

export interface ActivityDeps {
  prisma: Db;
  email: EmailConnector;
  memory: MemoryService;
  operatorName?: string;
  /** Token budget of a step's working set (KEEL_WORKING_SET_TOKENS). */
  workingSetTokens?: number;
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
    ...createStepActivities({
      prisma: deps.prisma,
      email: deps.email,
      memory: deps.memory,
      operatorName: deps.operatorName ?? 'The Keel operator',
      workingSetTokens: deps.workingSetTokens ?? 1500,
    }),
    ...createCompactionActivities({ prisma: deps.prisma, memory: deps.memory }),
  };
}

export type KeelActivities = ReturnType<typeof createActivities>;
