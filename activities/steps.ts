/**
 * The step activities: one per tool in shared/tools.ts. Each records its own
 * start and finish (step row + event) so a step costs one round trip, and
 * derives every id it writes from workflow id + step id so a retry finds its
 * own earlier work instead of duplicating it.
 */
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/prisma';
import type { StepOutput, StepResult } from '../shared/plan';
import type { EmailConnector } from '../connectors/email';
import { memoryId, type MemoryService } from '../memory/service';
import { assembleWorkingSet } from '../memory/working-set';
import { contactSubject, parseAddress, upsertContact } from '../state/entities';
import { loadArtifact, preview, saveArtifact, setArtifactStatus } from '../state/artifacts';
import { appendEvents, json } from '../state/events';
import type { CompensationInput, StepActivityInput } from '../shared/activity-io';

export const OFFLINE_LABEL = 'offline (no model was used)';

export interface StepDeps {
  prisma: Db;
  email: EmailConnector;
  memory: MemoryService;
  workingSetTokens: number;
  /** Who signs drafts. */
  operatorName: string;
}

interface EpisodeRow {
  id: string;
  title: string;
  status: string;
  error: string | null;
  outcome: StepOutput | null;
  finishedAt: Date | null;
  steps: { stepId: string; status: string }[];
  approvals: { decision: string | null; actor: string | null; comment: string | null }[];
  draft: {
    id: string;
    title: string;
    content: string;
    subject: string | null;
    humanEdited: boolean;
    version: number;
  } | null;
}

const memoryIdFor = (goalId: string, status: string) => memoryId('episodic', `goal:${goalId}`, status, 'goal-outcome');

const stableId = (prefix: string, ...parts: (string | number)[]) =>
  `${prefix}-${createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32)}`;

function attempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

function requireString(input: StepActivityInput, name: string): string {
  const v = input.inputs[name];
  if (typeof v !== 'string' || v.trim() === '') {
    throw ApplicationFailure.nonRetryable(
      `step "${input.stepId}" (${input.tool}) needs a text input "${name}"`,
      'InvalidInput',
    );
  }
  return v;
}

/** Text of an input that is either literal text or an earlier step's output. */
async function textOf(prisma: Db, value: unknown): Promise<string> {
  if (typeof value === 'string') return value;
  const out = value as StepOutput | undefined;
  if (out?.ref) return (await loadArtifact(prisma, out.ref)).content;
  if (out?.preview) return out.preview;
  return '';
}

export function createStepActivities(deps: StepDeps) {
  const { prisma } = deps;

  /** Wraps a tool so its step row and events are written around it. */
  function recorded(
    fn: (
      input: StepActivityInput,
    ) => Promise<Omit<StepResult, 'costUsd' | 'inputTokens' | 'outputTokens'> & Partial<StepResult>>,
  ) {
    return async (input: StepActivityInput): Promise<StepResult> => {
      const where = { goalId: input.goalId, planVersion: input.planVersion, stepId: input.stepId };
      const startedAt = new Date();
      await prisma.$transaction([
        prisma.step.updateMany({ where, data: { status: 'running', startedAt, error: null } }),
        prisma.event.create({
          data: {
            goalId: input.goalId,
            type: 'step.started',
            actor: 'keel',
            data: json({ stepId: input.stepId, tool: input.tool, attempt: attempt() }),
          },
        }),
      ]);
      const r = await fn(input);
      const result: StepResult = { costUsd: 0, inputTokens: 0, outputTokens: 0, ...r };
      await prisma.$transaction([
        prisma.step.updateMany({
          where,
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
          data: {
            goalId: input.goalId,
            type: 'step.completed',
            actor: 'keel',
            data: json({
              stepId: input.stepId,
              tool: input.tool,
              output: result.output,
              costUsd: result.costUsd,
              model: result.model,
            }),
          },
        }),
      ]);
      return result;
    };
  }

  return {
    /**
     * memory.recall: the step's working set — canonical facts about the subject
     * and ranked memories — under the token budget, stored as a context artifact.
     */
    recallContext: recorded(async (input) => {
      const query = requireString(input, 'query');
      const rawSubject = typeof input.inputs.subject === 'string' ? input.inputs.subject : undefined;
      const address = parseAddress(rawSubject);
      const subject = address ? contactSubject(address.email) : rawSubject;
      const budget = typeof input.inputs.tokenBudget === 'number' ? input.inputs.tokenBudget : deps.workingSetTokens;
      const ws = await assembleWorkingSet(
        { prisma, memory: deps.memory },
        { query, subject, tokenBudget: budget, excludeGoalId: input.goalId },
      );
      const content = ws.items.length ? ws.text : `Nothing on record about: ${subject ?? query}`;
      const ref = await saveArtifact(
        prisma,
        {
          goalId: input.goalId,
          stepId: input.stepId,
          kind: 'context',
          title: `Context for ${subject ?? query}`,
          content,
          subject,
          metadata: {
            memoryIds: ws.memoryIds,
            tokens: ws.tokens,
            budget: ws.budget,
            dropped: ws.dropped,
            lexical: ws.lexical,
          },
        },
        stableId('ctx', input.workflowId, input.planVersion, input.stepId),
      );
      return {
        output: { ref, preview: preview(content), items: ws.items.length, tokens: ws.tokens, subject },
        memoryIds: ws.memoryIds,
        model: ws.lexical ? 'offline-hash (lexical retrieval)' : deps.memory.embedder.model,
      };
    }),

    /** email.draft: writes the draft as an artifact. Offline, it fills a plain template and says so. */
    draftEmail: recorded(async (input) => {
      const to = requireString(input, 'to');
      const purpose = requireString(input, 'purpose');
      const context = await textOf(prisma, input.inputs.context);
      const name = to.split('@')[0].split(/[._-]/)[0];
      const greeting = name ? name[0].toUpperCase() + name.slice(1) : 'there';
      const subject =
        purpose
          .replace(/^(e-?mail|write to|reply to|send)\s+\S+@\S+\s*/i, '')
          .replace(/^(an?|the)\s+/i, '')
          .trim() || purpose;
      const body = [
        `Hi ${greeting},`,
        '',
        `${subject[0].toUpperCase()}${subject.slice(1)}${/[.!?]$/.test(subject) ? '' : '.'}`,
        '',
        context && !context.startsWith('Nothing on record')
          ? `For reference, what we have on record:\n${context}\n`
          : '',
        'Best regards,',
        deps.operatorName,
        '',
        `-- drafted by Keel, ${OFFLINE_LABEL}`,
      ]
        .filter((line, i, all) => !(line === '' && all[i - 1] === ''))
        .join('\n');
      const subjectLine = subject.length > 78 ? `${subject.slice(0, 77)}…` : subject;
      const ref = await saveArtifact(
        prisma,
        {
          goalId: input.goalId,
          stepId: input.stepId,
          kind: 'draft',
          title: subjectLine,
          content: body,
          subject: contactSubject(parseAddress(to)?.email ?? to),
          metadata: { to, subject: subjectLine, generatedBy: 'offline-drafter' },
        },
        stableId('draft', input.workflowId, input.planVersion, input.stepId),
      );
      return {
        output: { ref, preview: preview(body), to, subject: subjectLine },
        model: 'offline',
        promptHash: createHash('sha256').update(`${to}\n${purpose}\n${context}`).digest('hex'),
      };
    }),

    /** email.send: the irreversible step; exactly-once intent through the side-effect table. */
    sendEmail: recorded(async (input) => {
      const to = requireString(input, 'to');
      const draft = input.inputs.draft as StepOutput | undefined;
      if (!draft?.ref)
        throw ApplicationFailure.nonRetryable(`step "${input.stepId}" needs a draft to send`, 'InvalidInput');
      const artifact = await loadArtifact(prisma, draft.ref);
      const subject = String((artifact.metadata as { subject?: string }).subject ?? artifact.title);
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat(), 1000);
      try {
        ctx.heartbeat();
        const sent = await deps.email.send({
          idempotencyKey: `${input.workflowId}:${input.stepId}`,
          goalId: input.goalId,
          stepId: input.stepId,
          to,
          subject,
          body: artifact.content,
          onProgress: () => ctx.heartbeat(),
          signal: ctx.cancellationSignal,
        });
        // Whoever Keel writes to is someone the operator deals with.
        const recipient = parseAddress(to);
        if (recipient) await prisma.$transaction((tx) => upsertContact(tx, recipient, { actor: 'keel' }));
        return {
          output: {
            preview: `Sent "${subject}" to ${to}`,
            to,
            subject,
            messageId: sent.messageId,
            transport: sent.transport,
            artifactId: artifact.id,
            humanEdited: artifact.humanEdited,
            delivery: sent.status,
          },
        };
      } finally {
        clearInterval(beat);
      }
    }),

    /** text.summarize: offline, the first sentences of the source plus a count of related items. */
    summarizeText: recorded(async (input) => {
      const source = await textOf(prisma, input.inputs.source);
      const context = await textOf(prisma, input.inputs.context);
      const sentences = source.replace(/\s+/g, ' ').match(/[^.!?]+[.!?]?/g) ?? [source];
      const gist = sentences.slice(0, 3).join(' ').trim() || '(empty source)';
      const related = context && !context.startsWith('Nothing on record') ? context.split('\n').length : 0;
      const content = `${gist}\n\nRelated items on record: ${related}.\n-- summarized by Keel, ${OFFLINE_LABEL}`;
      const ref = await saveArtifact(
        prisma,
        {
          goalId: input.goalId,
          stepId: input.stepId,
          kind: 'summary',
          title: preview(gist, 80),
          content,
          metadata: { generatedBy: 'offline-summarizer' },
        },
        stableId('sum', input.workflowId, input.planVersion, input.stepId),
      );
      return { output: { ref, preview: preview(gist) }, model: 'offline' };
    }),

    /** outcome.record: what the goal achieved, kept in the canonical store. */
    recordOutcome: recorded(async (input) => {
      const summary = input.inputs.summary as StepOutput | string | undefined;
      const text = typeof summary === 'string' ? summary : (summary?.preview ?? (await textOf(prisma, summary)));
      const to = typeof summary === 'object' && typeof summary?.to === 'string' ? parseAddress(summary.to) : null;
      const ref = await saveArtifact(
        prisma,
        {
          goalId: input.goalId,
          stepId: input.stepId,
          kind: 'outcome',
          title: preview(text, 80),
          content: text,
          subject: to ? contactSubject(to.email) : `goal:${input.goalId}`,
          metadata: { from: summary },
        },
        stableId('out', input.workflowId, input.planVersion, input.stepId),
      );
      return { output: { ref, preview: preview(text) } };
    }),

    /**
     * After a goal ends: an episodic memory of what happened, about the person
     * it concerned (or the goal itself). Its id derives from the goal and its
     * final status, so a retry does not remember it twice.
     */
    async rememberGoal(input: { goalId: string }): Promise<{ memoryId: string }> {
      // Everything the episode says, in one query.
      const [goal] = await prisma.$queryRaw<EpisodeRow[]>`
        SELECT g.id, g.title, g.status, g.error, g.outcome, g.finished_at AS "finishedAt",
          (SELECT coalesce(json_agg(json_build_object('stepId', s.step_id, 'status', s.status) ORDER BY s.position), '[]')
             FROM steps s WHERE s.goal_id = g.id AND s.plan_version = g.plan_version) AS steps,
          (SELECT coalesce(json_agg(json_build_object('decision', a.decision, 'actor', a.actor, 'comment', a.comment)
                                    ORDER BY a.created_at), '[]')
             FROM approvals a WHERE a.goal_id = g.id) AS approvals,
          (SELECT json_build_object('id', d.id, 'title', d.title, 'content', d.content, 'subject', d.subject,
                                    'humanEdited', d.human_edited, 'version', d.version)
             FROM artifacts d WHERE d.goal_id = g.id AND d.kind = 'draft' ORDER BY d.version DESC LIMIT 1) AS draft
        FROM goals g WHERE g.id = ${input.goalId}`;
      if (!goal) throw ApplicationFailure.nonRetryable(`goal ${input.goalId} does not exist`, 'NotFound');
      const { steps, approvals, draft } = goal;
      const outcome = goal.outcome as StepOutput | null;
      const decided = approvals
        .filter((a) => a.decision)
        .map(
          (a) =>
            `${a.decision === 'approve' ? 'approved' : 'rejected'} by ${a.actor}${a.comment ? ` ("${a.comment}")` : ''}`,
        );
      const text = [
        `Goal "${goal.title}" ended ${goal.status}.`,
        outcome?.preview ? `Outcome: ${outcome.preview}` : goal.error ? `Reason: ${goal.error}` : '',
        decided.length ? `The operator ${decided.join('; ')}.` : '',
        draft?.humanEdited ? `The operator edited the draft before it was sent: "${preview(draft.content, 300)}"` : '',
        `Steps: ${steps.map((s) => `${s.stepId} ${s.status}`).join(', ')}.`,
      ]
        .filter(Boolean)
        .join(' ');
      const subject = draft?.subject ?? `goal:${goal.id}`;
      const { id } = await deps.memory.remember({
        id: memoryIdFor(goal.id, goal.status),
        text,
        kind: 'episodic',
        subject,
        source: 'agent',
        importance: goal.status === 'completed' ? 0.6 : 0.4,
        humanEdited: Boolean(draft?.humanEdited),
        goalId: goal.id,
        occurredAt: goal.finishedAt ?? new Date(),
        metadata: { goalStatus: goal.status },
      });
      const remembered = [{ memoryId: id, kind: 'episodic', subject }];
      // What the operator wrote in place of the draft is the best evidence of how they want it done.
      if (draft?.humanEdited && goal.status === 'completed') {
        const edited = await deps.memory.remember({
          text: `Sent as edited by the operator ("${draft.title}"): ${draft.content}`,
          kind: 'artifact',
          subject,
          source: 'human',
          humanEdited: true,
          importance: 0.8,
          goalId: goal.id,
          occurredAt: goal.finishedAt ?? new Date(),
          metadata: { artifactId: draft.id, version: draft.version },
        });
        remembered.push({ memoryId: edited.id, kind: 'artifact', subject });
      }
      await appendEvents(
        prisma,
        remembered.map((r) => ({ goalId: goal.id, type: 'memory.remembered', actor: 'keel', data: r })),
      );
      return { memoryId: id };
    },

    /** Compensation for drafts and summaries: the artifact is kept but marked discarded. */
    async discardArtifact(input: CompensationInput): Promise<void> {
      await compensateArtifact(prisma, input, 'discarded');
    },

    /** Compensation for outcome.record: the outcome no longer counts. */
    async voidOutcome(input: CompensationInput): Promise<void> {
      await compensateArtifact(prisma, input, 'voided');
    },
  };
}

async function compensateArtifact(prisma: Db, input: CompensationInput, status: 'discarded' | 'voided'): Promise<void> {
  await prisma.$transaction(async (tx) => {
    if (input.output.ref) await setArtifactStatus(tx, input.output.ref, status, input.reason);
    await tx.step.updateMany({
      where: { goalId: input.goalId, planVersion: input.planVersion, stepId: input.stepId },
      data: { status: 'compensated' },
    });
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
