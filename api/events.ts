/** Inbound events from adapters: stored once per source + externalId (state/intake.ts). */
import { Router } from 'express';
import { z } from 'zod';
import { recordInboundEvent } from '../state/intake';
import { parse, route } from './errors';
import type { AppDeps } from './types';

const inboundEventBody = z.strictObject({
  source: z.string().trim().min(1).max(100),
  type: z.string().trim().min(1).max(100),
  externalId: z.string().trim().min(1).max(500),
  payload: z.record(z.string(), z.unknown()).default({}),
});

export function eventRoutes(deps: AppDeps): Router {
  const r = Router();

  /** POST /v1/events — an adapter's event: 201 when stored, 200 with the same id when it was stored before. */
  r.post(
    '/events',
    route(async (req, res) => {
      const body = parse(inboundEventBody, req.body);
      const result = await recordInboundEvent(deps.prisma, deps.memory, body);
      res.status(result.duplicate ? 200 : 201).json(result);
    }),
  );

  return r;
}
