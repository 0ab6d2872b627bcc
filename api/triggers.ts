/** Triggers: rules that turn matching adapter events into goals (triggers/; fired by POST /v1/events). */
import { Router } from 'express';
import type { Trigger } from '../triggers/definition';
import { triggerDefinitionSchema } from '../triggers/definition';
import { createTrigger, deleteTrigger, listTriggers } from '../triggers/store';
import { HttpError, notFound, parse, route } from './errors';
import type { AppDeps } from './types';

/** A trigger as the API answers it. */
function triggerView(t: Trigger) {
  return {
    id: t.id,
    name: t.name,
    eventType: t.eventType,
    source: t.source ?? null,
    match: t.match,
    goal: t.goal,
    createdAt: t.createdAt.toISOString(),
  };
}

export function triggerRoutes(deps: AppDeps): Router {
  const r = Router();

  /** POST /v1/triggers — 201 with the stored trigger; 400 naming what is wrong; 409 when the name is taken. */
  r.post(
    '/triggers',
    route(async (req, res) => {
      const def = parse(triggerDefinitionSchema, req.body);
      const result = await createTrigger(deps.prisma, def);
      if ('taken' in result) {
        throw new HttpError(409, 'conflict', `a trigger named "${def.name}" already exists (${result.taken.id})`, {
          id: result.taken.id,
        });
      }
      res.status(201).json(triggerView(result.trigger));
    }),
  );

  /** GET /v1/triggers — every trigger, oldest first. */
  r.get(
    '/triggers',
    route(async (_req, res) => {
      res.json({ triggers: (await listTriggers(deps.prisma)).map(triggerView) });
    }),
  );

  /** DELETE /v1/triggers/:id — 200 `{id, deleted: true}`; goals it already started keep running. */
  r.delete(
    '/triggers/:id',
    route(async (req, res) => {
      const id = String(req.params.id);
      if (!(await deleteTrigger(deps.prisma, id))) throw notFound(`trigger ${id}`);
      res.json({ id, deleted: true });
    }),
  );

  return r;
}
