/**
 * The Express API. `createApp` takes its dependencies so tests build it over a
 * scratch database and a test Temporal server; api/main.ts builds it from config.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import express, { Router, type RequestHandler } from 'express';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { inboundMemory, mapInboundEvent } from '../state/entities';
import { memoryId } from '../memory/service';
import { appendEvents } from '../state/events';
import type { Db } from '../db/prisma';
import type { GoalSettings } from '../workflows/types';
import type { MemoryService } from '../memory/service';
import { approvalRoutes } from './approvals';
import { memoryRoutes } from './memory';
import { HttpError, errorHandler, parse, route } from './errors';
import { GOAL_STATUSES, goalRoutes } from './goals';

interface ContextRow {
  avg_chars: number | null;
  max_chars: number | null;
  avg_tokens: number | null;
  max_tokens: number | null;
  steps: bigint;
}

export interface AppDeps {
  client: Client;
  prisma: Db;
  memory: MemoryService;
  apiKey: string;
  taskQueue: string;
  goalSettings: GoalSettings;
  defaultBudgetUsd: number;
  bodyLimit?: string;
  /** Who decisions made through this API are recorded as. */
  actor: string;
}

const inboundEventBody = z.strictObject({
  source: z.string().trim().min(1).max(100),
  type: z.string().trim().min(1).max(100),
  externalId: z.string().trim().min(1).max(500),
  payload: z.record(z.string(), z.unknown()).default({}),
});

function bearerAuth(apiKey: string): RequestHandler {
  const expected = Buffer.from(apiKey);
  return (req, _res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = Buffer.from(match?.[1] ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      next(
        new HttpError(
          401,
          'unauthorized',
          match ? 'the API key is not valid' : 'send Authorization: Bearer <KEEL_API_KEY>',
        ),
      );
      return;
    }
    next();
  };
}

const HEALTH_TIMEOUT_MS = 3000;

async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function createApp(deps: AppDeps): express.Express {
  if (!deps.apiKey) throw new Error('createApp needs an apiKey');
  const { prisma } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: deps.bodyLimit ?? '256kb' }));

  /** GET /healthz — 200 when Postgres and Temporal answer, 503 naming what is down. */
  app.get(
    '/healthz',
    route(async (_req, res) => {
      const check = async (fn: () => Promise<unknown>) =>
        within(HEALTH_TIMEOUT_MS, fn()).then(
          () => 'up',
          (err: Error) => `down: ${err.message}`,
        );
      const [postgres, temporal] = await Promise.all([
        check(() => prisma.$queryRaw`SELECT 1`),
        // The deadline ends the gRPC call itself: without it the client's retry interceptor keeps
        // retrying an unreachable server for ~20 s after `within` has already answered 503.
        check(() =>
          deps.client.connection.withDeadline(Date.now() + HEALTH_TIMEOUT_MS, () =>
            deps.client.workflowService.getSystemInfo({}),
          ),
        ),
      ]);
      const ok = postgres === 'up' && temporal === 'up';
      res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', postgres, temporal });
    }),
  );

  const v1 = Router();
  v1.use(bearerAuth(deps.apiKey));
  v1.use(goalRoutes(deps));
  v1.use(approvalRoutes(deps));
  v1.use(memoryRoutes(deps));

  /** POST /v1/events — an adapter's event, stored once per source + externalId. */
  v1.post(
    '/events',
    route(async (req, res) => {
      const body = parse(inboundEventBody, req.body);
      const result = await prisma.$transaction(async (tx) => {
        const existing = await tx.inboundEvent.findUnique({
          where: { source_externalId: { source: body.source, externalId: body.externalId } },
        });
        if (existing) return { id: existing.id, duplicate: true };
        const id = randomUUID();
        const inserted = await tx.$executeRaw`
          INSERT INTO inbound_events (id, source, external_id, type, payload)
          VALUES (${id}, ${body.source}, ${body.externalId}, ${body.type}, ${JSON.stringify(body.payload)}::jsonb)
          ON CONFLICT (source, external_id) DO NOTHING`;
        if (inserted === 0) {
          const winner = await tx.inboundEvent.findUniqueOrThrow({
            where: { source_externalId: { source: body.source, externalId: body.externalId } },
          });
          return { id: winner.id, duplicate: true };
        }
        await appendEvents(tx, [
          {
            type: 'inbound.received',
            actor: `adapter:${body.source}`,
            data: { inboundId: id, source: body.source, type: body.type, externalId: body.externalId },
          },
        ]);
        const mapped = await mapInboundEvent(tx, body);
        return { id, duplicate: false, ...(mapped.contactId ? { contactId: mapped.contactId } : {}) };
      });
      // After the commit, and on duplicates too: a retry after a failed memory write completes it (same id, stored once).
      const stored = await prisma.inboundEvent.findUniqueOrThrow({ where: { id: result.id } });
      const remembered = inboundMemory(stored.payload as Record<string, unknown>);
      if (remembered) {
        await deps.memory.remember({
          id: memoryId('episodic', remembered.subject, `inbound:${stored.id}`, ''),
          text: remembered.text,
          kind: 'episodic',
          subject: remembered.subject,
          source: 'adapter',
          occurredAt: remembered.occurredAt ?? stored.receivedAt,
          metadata: { inboundId: stored.id, source: stored.source, type: stored.type },
        });
      }
      res.status(result.duplicate ? 200 : 201).json({
        id: result.id,
        duplicate: result.duplicate,
        ...('contactId' in result ? { contactId: result.contactId } : {}),
      });
    }),
  );

  /** GET /v1/metrics — plan churn, human-intervention ratio, cost per committed outcome, context size, goals by status. */
  v1.get(
    '/metrics',
    route(async (_req, res) => {
      const [byStatus, totals, decided, stepsRun, [context], memoryStats] = await Promise.all([
        prisma.goal.groupBy({ by: ['status'], _count: { _all: true } }),
        prisma.goal.aggregate({ _sum: { planChurn: true, costUsd: true }, _count: { _all: true } }),
        prisma.approval.count({ where: { status: { in: ['approved', 'rejected'] } } }),
        prisma.step.count({ where: { status: { in: ['completed', 'compensated'] } } }),
        // One scan of the context artifacts for both sizes; aggregates skip rows without a token count.
        prisma.$queryRaw<ContextRow[]>`
          SELECT avg(length(content))::float8 AS avg_chars, max(length(content))::float8 AS max_chars,
                 avg((metadata->>'tokens')::float8) AS avg_tokens, max((metadata->>'tokens')::float8) AS max_tokens,
                 count(metadata->'tokens') AS steps
            FROM artifacts WHERE kind = 'context'`,
        deps.memory.stats(),
      ]);
      const goalsByStatus = Object.fromEntries(GOAL_STATUSES.map((s) => [s, 0]));
      for (const row of byStatus) goalsByStatus[row.status] = row._count._all;
      const goals = totals._count._all;
      const completed = goalsByStatus.completed ?? 0;
      res.json({
        goals,
        goalsByStatus,
        planChurn: { replans: totals._sum.planChurn ?? 0, perGoal: goals ? (totals._sum.planChurn ?? 0) / goals : 0 },
        humanInterventionRatio: { decisions: decided, actions: stepsRun, ratio: stepsRun ? decided / stepsRun : 0 },
        costPerCommittedOutcome: {
          usd: totals._sum.costUsd ?? 0,
          committedOutcomes: completed,
          perOutcome: completed ? (totals._sum.costUsd ?? 0) / completed : 0,
        },
        contextSize: {
          avgChars: context?.avg_chars ?? 0,
          maxChars: context?.max_chars ?? 0,
          workingSetTokens: {
            avg: context?.avg_tokens ?? 0,
            max: context?.max_tokens ?? 0,
            steps: Number(context?.steps ?? 0),
          },
          memory: memoryStats,
        },
      });
    }),
  );

  app.use('/v1', v1);
  app.use((req, _res, next) => next(new HttpError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler);
  return app;
}
