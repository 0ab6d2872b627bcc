/**
 * Keel's activities, built once per worker from their dependencies so tests
 * can pass their own (a scratch database, a local SMTP server).
 */
import type { Db } from '../lib/prisma';
import type { EmailConnector } from './connectors/email';
import { planOffline } from './planner/offline';
import { createApprovalActivities } from './state/approvals';
import { createGoalStateActivities } from './state/goals';
import { createStepActivities } from './steps';
import type { PlanGoalInput, ProposedPlan } from './types';

export interface ActivityDeps {
  prisma: Db;
  email: EmailConnector;
  operatorName?: string;
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
    ...createApprovalActivities(deps.prisma),
    ...createStepActivities({
      prisma: deps.prisma,
      email: deps.email,
      operatorName: deps.operatorName ?? 'The Keel operator',
    }),
  };
}

export type KeelActivities = ReturnType<typeof createActivities>;
