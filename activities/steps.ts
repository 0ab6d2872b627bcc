/**
 * The step activities: one per tool in shared/tools.ts. Each records its own
 * start and finish (step row + event) so a step costs one round trip, and
 * derives every id it writes from workflow id + step id so a retry finds its
 * own earlier work instead of duplicating it.
 */
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../lib/prisma';
import type { StepOutput, StepResult } from '../shared/plan';
import type { EmailConnector } from './connectors/email';
import { loadArtifact, preview, saveArtifact, setArtifactStatus } from './state/artifacts';
import { appendEvents, json } from './state/events';
import type { CompensationInput, StepActivityInput } from './types';

export const OFFLINE_LABEL = 'offline (no model was used)';

export interface StepDeps {
  prisma: Db;
  email: EmailConnector;
  /** Who signs drafts. */
  operatorName: string;
}

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
    /** memory.recall: gathers past outcomes and inbound events that mention the subject or the query's words. */
    recallContext: recorded(async (input) => {
      const query = requireString(input, 'query');
      const subject = typeof input.inputs.subject === 'string' ? input.inputs.subject : undefined;
      const terms = [
        subject,
        ...query
          .split(/\W+/)
          .filter((w) => w.length > 4)
          .sort((a, b) => b.length - a.length)
          .slice(0, 3),
      ].filter((t): t is string => Boolean(t));
      const found: { id: string; text: string }[] = [];
      for (const term of terms) {
        const artifacts = await prisma.artifact.findMany({
          where: {
            kind: 'outcome',
            status: 'active',
            content: { contains: term, mode: 'insensitive' },
            NOT: { goalId: input.goalId },
          },
          orderBy: { createdAt: 'desc' },
          take: 3,
        });
        for (const a of artifacts) found.push({ id: `artifact:${a.id}`, text: a.content });
        const inbound = await prisma.$queryRaw<{ id: string; source: string; type: string; payload: unknown }[]>`
          SELECT id, source, type, payload FROM inbound_events WHERE payload::text ILIKE ${`%${term}%`} ORDER BY received_at DESC LIMIT 3`;
        for (const e of inbound)
          found.push({ id: `inbound:${e.id}`, text: `${e.source} ${e.type}: ${JSON.stringify(e.payload)}` });
      }
      const unique = found.filter((f, i) => found.findIndex((g) => g.id === f.id) === i).slice(0, 8);
      const content = unique.length
        ? unique.map((f) => `- ${preview(f.text, 400)}`).join('\n')
        : `Nothing on record about: ${subject ?? query}`;
      const ref = await saveArtifact(
        prisma,
        {
          goalId: input.goalId,
          stepId: input.stepId,
          kind: 'context',
          title: `Context for ${subject ?? query}`,
          content,
          metadata: { memoryIds: unique.map((u) => u.id) },
        },
        stableId('ctx', input.workflowId, input.planVersion, input.stepId),
      );
      return {
        output: { ref, preview: preview(content), items: unique.length },
        memoryIds: unique.map((u) => u.id),
        model: 'none',
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
      const ref = await saveArtifact(
        prisma,
        {
          goalId: input.goalId,
          stepId: input.stepId,
          kind: 'outcome',
          title: preview(text, 80),
          content: text,
          metadata: { from: summary },
        },
        stableId('out', input.workflowId, input.planVersion, input.stepId),
      );
      return { output: { ref, preview: preview(text) } };
    }),

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
