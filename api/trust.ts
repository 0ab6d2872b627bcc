/** Trust rules: what the operator's unedited approvals suggest, and accepting, dismissing or revoking them (trust/). */
import { Router } from 'express';
import { z } from 'zod';
import { TRUST_RULE_STATUSES } from '../trust/rules';
import { changeRule, listRules, type TrustRuleAction } from '../trust/store';
import { HttpError, notFound, parse, route } from './errors';
import type { AppDeps } from './types';

const listQuery = z.object({ status: z.enum(TRUST_RULE_STATUSES).optional() });

export function trustRoutes(deps: AppDeps): Router {
  const r = Router();

  /** GET /v1/trust-rules?status=suggested — suggested, accepted, dismissed and revoked rules, oldest first. */
  r.get(
    '/trust-rules',
    route(async (req, res) => {
      const q = parse(listQuery, req.query, 'query');
      res.json({ rules: await listRules(deps.prisma, q.status) });
    }),
  );

  /** POST /v1/trust-rules/:id/accept|dismiss|revoke — 200 with the rule; 404 unknown; 409 from the wrong status. */
  for (const action of ['accept', 'dismiss', 'revoke'] as const satisfies readonly TrustRuleAction[]) {
    r.post(
      `/trust-rules/:ruleId/${action}`,
      route(async (req, res) => {
        const changed = await changeRule(deps.prisma, String(req.params.ruleId), action, deps.actor);
        if (!changed.ok) {
          if (changed.reason === 'not_found') throw notFound(`trust rule ${String(req.params.ruleId)}`);
          throw new HttpError(409, 'conflict', changed.message);
        }
        res.json({ rule: changed.rule });
      }),
    );
  }

  return r;
}
