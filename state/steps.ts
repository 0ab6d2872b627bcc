/** Step records: each change of a step row is written with its event in one transaction. */
import type { Db } from '../db/prisma';
import type { CompensationInput } from '../shared/activity-io';
import type { StepResult } from '../shared/plan';
import { setArtifactStatus } from './artifacts';
import { appendEvents, eventRow, json } from './events';

export interface StepRef {
  goalId: string;
  planVersion: number;
  stepId: string;
  tool: string;
}

const whereStep = (s: StepRef | CompensationInput) => ({
  goalId: s.goalId,
  planVersion: s.planVersion,
  stepId: s.stepId,
});

/** Which worker runs a step's attempt: its Temporal identity and the task queue the activity came from. */
export interface StepRunner {
  worker: string;
  taskQueue: string;
}

/** The step is running (again, on a retry: `attempt` says which; `runner` says where, when known). */
export async function recordStepStarted(
  prisma: Db,
  step: StepRef,
  attempt: number,
  runner?: StepRunner,
): Promise<void> {
  await prisma.$transaction([
    prisma.step.updateMany({ where: whereStep(step), data: { status: 'running', startedAt: new Date(), error: null } }),
    prisma.event.create({
      data: eventRow({
        goalId: step.goalId,
        type: 'step.started',
        actor: 'keel',
        data: { stepId: step.stepId, tool: step.tool, attempt, ...runner },
      }),
    }),
  ]);
}

/** The step finished: its output, cost, model, prompt hash and the memories it used. */
export async function recordStepCompleted(
  prisma: Db,
  step: StepRef,
  result: StepResult,
  attempt: number,
): Promise<void> {
  await prisma.$transaction([
    prisma.step.updateMany({
      where: whereStep(step),
      data: {
        status: 'completed',
        output: json(result.output),
        costUsd: result.costUsd,
        model: result.model,
        promptHash: result.promptHash,
        memoryIds: result.memoryIds ?? [],
        finishedAt: new Date(),
      },
    }),
    prisma.event.create({
      data: eventRow({
        goalId: step.goalId,
        type: 'step.completed',
        actor: 'keel',
        data: {
          stepId: step.stepId,
          tool: step.tool,
          attempt,
          output: result.output,
          costUsd: result.costUsd,
          model: result.model,
          ...(result.prompt ? { prompt: result.prompt } : {}),
        },
      }),
    }),
  ]);
}

/** Compensation of a step that produced an artifact: the artifact is kept but marked, the step is compensated. */
export async function compensateArtifactStep(
  prisma: Db,
  input: CompensationInput,
  status: 'discarded' | 'voided',
): Promise<void> {
  await prisma.$transaction(async (tx) => {
    if (input.output.ref) await setArtifactStatus(tx, input.output.ref, status, input.reason);
    const changed = await tx.step.updateMany({
      where: { ...whereStep(input), NOT: { status: 'compensated' } },
      data: { status: 'compensated' },
    });
    // A retried compensation finds the step already compensated and logs nothing twice.
    if (changed.count === 0) return;
    await appendEvents(tx, [
      {
        goalId: input.goalId,
        type: 'step.compensated',
        actor: 'keel',
        data: { stepId: input.stepId, ref: input.output.ref, artifactStatus: status, reason: input.reason },
      },
    ]);
  });
}
