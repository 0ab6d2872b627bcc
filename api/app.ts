/**
 * The Express API. `createApp` takes its dependencies so tests build it over a
 * scratch database and a test Temporal server; api/main.ts builds it from config.
 * Routes keep only HTTP (parse, authorize, call, answer): use cases live in
 * commands/, canonical writes in state/.
 */
import { defaultConfig } from '../config';
import express, { Router } from 'express';
import { approvalRoutes } from './approvals';
import { HttpError, errorHandler, route } from './errors';
import { eventRoutes } from './events';
import { goalRoutes } from './goals';
import { memoryRoutes } from './memory';
import { metricsRoutes, prometheusRoute } from './metrics';
import { triggerRoutes } from './triggers';
import { trustRoutes } from './trust';
import { bearerAuth, jsonBody, rejectHostileInput } from './middleware';
import { commandDeps, type AppDeps } from './types';
import { INTERACTIONS_PATH, slackInteractions, type SlackInteractionOptions } from '../slack/app';
import { inboxRoutes, type InboxOptions } from '../inbox/routes';
import { codecRoutes, type CodecEndpointOptions } from './codec';

export type { AppDeps } from './types';

/** The API's dependencies, and Slack's interactivity when Slack approvals are on. */
export type AppOptions = AppDeps & {
  slack?: SlackInteractionOptions;
  inbox?: InboxOptions;
  /** The codec endpoint's codec and allowed Web UI origins, when KEEL_CODEC_KEY is set. */
  codec?: CodecEndpointOptions;
};

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

/**
 * The API over its dependencies: `/healthz` without a key, `/slack/interactions`
 * signed by Slack, `/inbox` (pages) behind its session cookie, `/codec` (the
 * payload codec for the Temporal Web UI, api/codec.ts), everything else under
 * `/v1` with the key.
 */
export function createApp(deps: AppOptions): express.Express {
  if (!deps.apiKey) throw new Error('createApp needs an apiKey');
  const { prisma } = deps;
  const app = express();
  app.disable('x-powered-by');

  // First, before any body parser: Bolt verifies Slack's signature over the raw body, which a parser
  // running earlier would have consumed. No app-wide parser exists (the JSON one is /v1's own).
  if (deps.slack) {
    app.use(slackInteractions(deps.slack, commandDeps(deps)));
  } else {
    app.post(INTERACTIONS_PATH, (_req, _res, next) =>
      next(
        new HttpError(
          404,
          'not_found',
          'Slack approvals are off: set SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_CHANNEL',
        ),
      ),
    );
  }

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

  /** GET /metrics — Prometheus text exposition of /v1/metrics, behind the same key (a scraper's bearer token). */
  app.get('/metrics', bearerAuth(deps.apiKey), prometheusRoute(deps));

  const v1 = Router();
  // Order matters: the key before the body is read (D8), the hostile-input check before any route (D2, D3).
  v1.use(bearerAuth(deps.apiKey));
  v1.use(jsonBody(deps.bodyLimit ?? defaultConfig().KEEL_BODY_LIMIT));
  v1.use(rejectHostileInput);
  v1.use(goalRoutes(deps));
  v1.use(approvalRoutes(deps));
  v1.use(memoryRoutes(deps));
  v1.use(eventRoutes(deps));
  v1.use(triggerRoutes(deps));
  v1.use(metricsRoutes(deps));
  v1.use(trustRoutes(deps));

  app.use('/v1', v1);
  // Temporal's remote codec protocol for the Web UI and CLI: its own CORS, key check and body limit.
  app.use('/codec', codecRoutes(deps.apiKey, deps.codec));
  // The approval inbox's pages: its own form parser, and its session cookie instead of the bearer key.
  app.use('/inbox', inboxRoutes(deps, deps.inbox));
  app.use((req, _res, next) => next(new HttpError(404, 'not_found', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler);
  return app;
}
