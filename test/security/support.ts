/**
 * What the security suite's files share: the routes an Express app serves
 * (read from its own router stack, so a route added later is covered
 * without editing a list), a snapshot of everything a request could change
 * (the canonical tables and Temporal's workflow list), and HTTP with exactly
 * the headers a test gives.
 */
import type { Client } from '@temporalio/client';
import type express from 'express';
import { createApp, type AppOptions } from '../../api/app';
import { defaultConfig } from '../../config';
import type { Db } from '../../db/prisma';
import { SESSION_COOKIE, sessionKeys } from '../../inbox/session';
import { randomBytes } from 'node:crypto';
import { serveApp, startEngine, type ServedApi, type TestEngine } from '../helpers/engine';

/** One route: method and full path, e.g. `POST /v1/approvals/:approvalId/decision`. */
export interface AppRoute {
  method: string;
  path: string;
}

export const routeName = (r: AppRoute) => `${r.method} ${r.path}`;

interface Layer {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/**
 * Every route of an Express 5 app, by walking its router stack (the `router`
 * package keeps each layer's `rawPath`). Middleware layers without a route
 * are skipped; mounted routers are walked with their mount path.
 */
export function appRoutes(app: express.Express): AppRoute[] {
  const found = new Map<string, AppRoute>();
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      const raw = layer.route ? layer.route.path : layer.rawPath;
      const paths = (Array.isArray(raw) ? raw : [raw]).filter((p): p is string => typeof p === 'string');
      if (layer.route) {
        for (const p of paths) {
          for (const [method, on] of Object.entries(layer.route.methods)) {
            if (!on || method === '_all') continue;
            const path = `${prefix}${p}`.replace(/\/+$/, '') || '/';
            const r = { method: method.toUpperCase(), path };
            found.set(routeName(r), r);
          }
        }
      } else if (layer.handle?.stack) {
        const mount = paths[0] && paths[0] !== '/' ? paths[0] : '';
        walk(layer.handle.stack, `${prefix}${mount}`);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return [...found.values()].sort((a, b) => routeName(a).localeCompare(routeName(b)));
}

/** The tables a request could change (prisma/schema.prisma), each as a row count and a hash of its rows. */
export const CANONICAL_TABLES = [
  'goals',
  'steps',
  'approvals',
  'side_effects',
  'artifacts',
  'events',
  'inbound_events',
  'contacts',
  'organizations',
  'projects',
  'memory_items',
  'triggers',
  'trust_rules',
  'slack_messages',
  'rate_limit_windows',
] as const;

export interface Snapshot {
  tables: Record<string, { rows: number; hash: string | null }>;
  /** `workflowId runId status`, sorted. */
  workflows: string[];
}

/** Every row of every canonical table, hashed in a stable order, in one statement. */
export async function tableSnapshot(prisma: Db): Promise<Snapshot['tables']> {
  const sql = CANONICAL_TABLES.map(
    (t) =>
      `SELECT '${t}' AS t, count(*)::int AS rows, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS hash FROM ${t} x`,
  ).join(' UNION ALL ');
  const rows = await prisma.$queryRawUnsafe<{ t: string; rows: number; hash: string }[]>(sql);
  return Object.fromEntries(rows.map((r) => [r.t, { rows: r.rows, hash: r.rows ? r.hash : null }]));
}

/** Temporal's workflow list (visibility), sorted. */
export async function workflowList(client: Client): Promise<string[]> {
  const out: string[] = [];
  for await (const wf of client.workflow.list()) out.push(`${wf.workflowId} ${wf.runId} ${wf.status.name}`);
  return out.sort();
}

export async function snapshot(prisma: Db, client: Client): Promise<Snapshot> {
  const [tables, workflows] = await Promise.all([tableSnapshot(prisma), workflowList(client)]);
  return { tables, workflows };
}

/** An HTTP answer with its body parsed when it is JSON. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

/** HTTP with exactly the headers given, no redirects followed. */
export async function raw(
  baseUrl: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: opts.headers,
    body: opts.body,
    redirect: 'manual',
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, text, body };
}

/**
 * encodeURIComponent that also sends what it refuses: a lone UTF-16 surrogate
 * is written as its three WTF-8 bytes (`%ED%A0%80`), as a hostile client would.
 */
export function encodePart(s: string): string {
  return s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]|[\s\S]/g, (ch) => {
    const c = ch.charCodeAt(0);
    if (ch.length === 1 && c >= 0xd800 && c <= 0xdfff) {
      return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('');
    }
    return encodeURIComponent(ch);
  });
}

/** A path with its `:params` filled from `params` (or `fallback` for the rest). */
export function fillPath(path: string, params: Record<string, string>, fallback = 'no-such-id'): string {
  return path.replace(/:([A-Za-z]+)/g, (_m, name: string) => encodePart(params[name] ?? fallback));
}

/** Polls until `fn` gives something other than undefined or false. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The API over a test engine's dependencies (as `startEngine` builds it), with some replaced or added. */
export function engineApp(engine: TestEngine, over: Partial<AppOptions> = {}): express.Express {
  return createApp({
    client: engine.temporal.client,
    prisma: engine.db.prisma,
    memory: engine.memory,
    apiKey: engine.apiKey,
    taskQueue: engine.taskQueue,
    goalSettings: engine.settings,
    defaultBudgetUsd: defaultConfig().KEEL_DEFAULT_BUDGET_USD,
    actor: 'operator:test',
    ...over,
  });
}

/** Goal settings under which nothing moves by itself while a test watches the tables (no deadline fires). */
export const STILL_SETTINGS = { approvalTimeoutMs: 3_600_000, escalationTimeoutMs: 3_600_000 };

/**
 * The engine the route suites attack: one email goal (to `<tag>-<random>@example.com`) waiting for its
 * approval, then no worker, so nothing changes the tables but the requests under test; the app built with
 * `over` served over HTTP, and the routes it serves.
 */
export async function startStillEngine(
  tag: string,
  over: Partial<AppOptions> = {},
): Promise<{
  engine: TestEngine;
  api: ServedApi;
  routes: AppRoute[];
  goalId: string;
  approval: { approvalId: string; shownHash: string };
}> {
  const engine = await startEngine({ settings: STILL_SETTINGS });
  const worker = await engine.startWorker();
  const to = `${tag}-${randomBytes(4).toString('hex')}@example.com`;
  const { body } = await engine.http('POST', '/v1/goals', { title: `Email ${to} a hello` });
  const goal = await engine.waitForGoal(body.goalId, (g) => g.status === 'awaiting_approval');
  await worker.stop();
  const app = engineApp(engine, over);
  return { engine, api: await serveApp(app), routes: appRoutes(app), goalId: body.goalId, approval: goal.approvals[0] };
}

/** A session cookie for the inbox and its CSRF token, signed as the API would sign them. */
export function inboxSession(apiKey: string, now = Date.now()): { cookie: string; csrf: string } {
  const keys = sessionKeys(apiKey);
  const { token, session } = keys.issue(now);
  return { cookie: `${SESSION_COOKIE}=${token}`, csrf: keys.csrfOf(session) };
}
