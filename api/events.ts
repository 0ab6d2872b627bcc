/** Inbound events from adapters: stored once per source + externalId, classified, and matched against the triggers (commands/events.ts). */
import { Router } from 'express';
import { z } from 'zod';
import { receiveEvent } from '../commands/events';
import { parse, route } from './errors';
import { commandDeps, type AppDeps } from './types';

const inboundEventBody = z.strictObject({
  source: z.string().trim().min(1).max(100),
  type: z.string().trim().min(1).max(100),
  externalId: z.string().trim().min(1).max(500),
  payload: z.record(z.string(), z.unknown()).default({}),
});

export function eventRoutes(deps: AppDeps): Router {
  const commands = {
    ...commandDeps(deps),
    memory: deps.memory,
    models: deps.models,
    classifyTimeoutMs: deps.classifyTimeoutMs,
  };
  const r = Router();

  /**
   * POST /v1/events — an adapter's event: 201 when stored, 200 with the same id when it was stored before;
   * either way with its classification and the goals its triggers started (the same goals for a repeat).
   * 503 when Temporal does not take a start: the event is kept, and sending it again starts what is missing.
   */
  r.post(
    '/events',
    route(async (req, res) => {
      const body = parse(inboundEventBody, req.body);
      const result = await receiveEvent(commands, body);
      res.status(result.duplicate ? 200 : 201).json(result);
    }),
  );

  return r;
}
