/**
 * Rebuilds the projections (goals, contacts, organizations, artifacts) from
 * the append-only event log alone, into a scratch schema, and reports every
 * difference from the live tables. A clean report is the proof that the log
 * is complete: state could be recovered from it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { KeelEvent } from './events';

type Row = Record<string, unknown>;

interface Projection {
  table: string;
  /** Columns compared with the live table, besides the id. */
  columns: { name: string; type: string; live?: string }[];
  rows: Map<string, Row>;
}

export interface RebuildDifference {
  table: string;
  id: string;
  kind: 'missing_in_rebuild' | 'missing_in_live' | 'different';
  column?: string;
  live?: unknown;
  rebuilt?: unknown;
}

export interface RebuildReport {
  schema: string;
  eventsRead: number;
  rows: Record<string, number>;
  differences: RebuildDifference[];
}

function projections(): Record<string, Projection> {
  return {
    goals: {
      table: 'goals',
      columns: [
        { name: 'request_id', type: 'text' },
        { name: 'workflow_id', type: 'text' },
        { name: 'title', type: 'text' },
        { name: 'kind', type: 'text' },
        { name: 'status', type: 'text' },
        { name: 'plan_version', type: 'integer' },
        { name: 'plan_churn', type: 'integer' },
        { name: 'cost_usd', type: 'double precision' },
        { name: 'budget_usd', type: 'double precision' },
        { name: 'error', type: 'text' },
      ],
      rows: new Map(),
    },
    organizations: {
      table: 'organizations',
      columns: [
        { name: 'name', type: 'text' },
        { name: 'domain', type: 'text' },
      ],
      rows: new Map(),
    },
    contacts: {
      table: 'contacts',
      columns: [
        { name: 'email', type: 'text' },
        { name: 'name', type: 'text' },
        { name: 'organization_id', type: 'text' },
        { name: 'attributes', type: 'jsonb' },
      ],
      rows: new Map(),
    },
    artifacts: {
      table: 'artifacts',
      columns: [
        { name: 'goal_id', type: 'text' },
        { name: 'kind', type: 'text' },
        { name: 'title', type: 'text' },
        { name: 'content_md5', type: 'text', live: 'md5(content)' },
        { name: 'version', type: 'integer' },
        { name: 'previous_id', type: 'text' },
        { name: 'lineage_id', type: 'text' },
        { name: 'human_edited', type: 'boolean' },
        { name: 'status', type: 'text' },
        { name: 'subject', type: 'text' },
      ],
      rows: new Map(),
    },
  };
}

/**
 * Applies one event to the projections: the only place that knows what each
 * event means for state. The switch is exhaustive over the catalogue
 * (state/events.ts): a new event type must be handled here, even if only to
 * say it changes no projection, or this does not compile.
 */
function apply(
  p: Record<string, Projection>,
  e: KeelEvent & { goal_id: string | null },
  md5: (s: string) => string,
): void {
  const goal = e.goal_id ? p.goals.rows.get(e.goal_id) : undefined;
  switch (e.type) {
    case 'goal.created': {
      const g = e.data.goal;
      p.goals.rows.set(g.id, {
        request_id: g.requestId ?? null,
        workflow_id: g.workflowId,
        title: g.title,
        kind: g.kind,
        status: 'planning',
        plan_version: 0,
        plan_churn: 0,
        cost_usd: 0,
        budget_usd: g.budgetUsd ?? null,
        error: null,
      });
      break;
    }
    case 'goal.budget_raised':
      if (goal) goal.budget_usd = e.data.budgetUsd;
      break;
    case 'plan.accepted':
      if (goal) goal.plan_version = e.data.planVersion;
      break;
    case 'plan.rejected':
    case 'plan.replanned':
      if (goal) goal.plan_churn = Number(goal.plan_churn) + 1;
      break;
    case 'goal.running':
      if (goal) goal.plan_churn = e.data.planChurn;
      break;
    case 'goal.completed':
    case 'goal.failed':
    case 'goal.cancelled':
      if (goal) {
        if (typeof e.data.planChurn === 'number') goal.plan_churn = e.data.planChurn;
        if (e.data.cost) goal.cost_usd = e.data.cost.usd;
        if (typeof e.data.error === 'string') goal.error = e.data.error;
      }
      break;
    case 'goal.reconciled':
      if (goal) goal.error = e.data.error;
      break;
    case 'organization.created': {
      const o = e.data.organization;
      p.organizations.rows.set(o.id, { name: o.name, domain: o.domain ?? null });
      break;
    }
    case 'contact.created': {
      const c = e.data.contact;
      p.contacts.rows.set(c.id, {
        email: c.email,
        name: c.name ?? null,
        organization_id: c.organizationId ?? null,
        attributes: c.attributes ?? {},
      });
      break;
    }
    case 'contact.updated': {
      const c = p.contacts.rows.get(e.data.contactId);
      const changes = e.data.changes;
      if (c) {
        if ('name' in changes) c.name = changes.name;
        if ('organizationId' in changes) c.organization_id = changes.organizationId;
        if ('attributes' in changes) c.attributes = changes.attributes;
      }
      break;
    }
    case 'artifact.created': {
      const a = e.data.artifact;
      p.artifacts.rows.set(a.id, {
        goal_id: a.goalId ?? null,
        kind: a.kind,
        title: a.title,
        content_md5: md5(String(a.content)),
        version: a.version,
        previous_id: a.previousId ?? null,
        lineage_id: a.lineageId ?? null,
        human_edited: a.humanEdited,
        status: 'active',
        subject: a.subject ?? null,
      });
      break;
    }
    case 'artifact.status_changed': {
      const a = p.artifacts.rows.get(e.data.artifactId);
      if (a) a.status = e.data.status;
      break;
    }
    // Events that change no rebuilt projection beyond the goal status handled below.
    case 'goal.resumed':
    case 'goal.cancel_requested':
    case 'trust.suggested':
    case 'trust.accepted':
    case 'trust.dismissed':
    case 'trust.revoked':
    case 'step.started':
    case 'step.completed':
    case 'step.failed':
    case 'step.cancelled':
    case 'step.skipped':
    case 'step.compensated':
    case 'approval.requested':
    case 'approval.approved':
    case 'approval.rejected':
    case 'approval.escalated':
    case 'approval.expired':
    case 'approval.cancelled':
    case 'memory.feedback':
    case 'memory.remembered':
    case 'inbound.received':
      break;
    default:
      return unhandled(e);
  }
  // Any event that says where its goal now stands moves it.
  const status = (e.data as { goalStatus?: unknown }).goalStatus;
  if (goal && typeof status === 'string') goal.status = status;
}

function unhandled(e: never): never {
  throw new Error(`the rebuild does not know the event type ${(e as { type: string }).type}`);
}

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

/**
 * Replays every event into `keel_rebuild_<random>` and compares it with the
 * live tables. The scratch schema is dropped unless `keep` is set.
 */
export async function rebuildAndCompare(
  databaseUrl: string,
  opts: { keep?: boolean; pageSize?: number } = {},
): Promise<RebuildReport> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  const schema = `keel_rebuild_${randomBytes(4).toString('hex')}`;
  const p = projections();
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');
  try {
    let last = 0n;
    let eventsRead = 0;
    const pageSize = opts.pageSize ?? 5000;
    for (;;) {
      const page = await client.query<KeelEvent & { seq: string; goal_id: string | null }>(
        'SELECT seq, goal_id, type, data FROM events WHERE seq > $1 ORDER BY seq LIMIT $2',
        [last.toString(), pageSize],
      );
      for (const e of page.rows) apply(p, e, md5);
      eventsRead += page.rows.length;
      if (page.rows.length < pageSize) break;
      last = BigInt(page.rows[page.rows.length - 1].seq);
    }

    await client.query(`CREATE SCHEMA ${ident(schema)}`);
    const differences: RebuildDifference[] = [];
    const rows: Record<string, number> = {};
    for (const proj of Object.values(p)) {
      const cols = proj.columns;
      await client.query(
        `CREATE TABLE ${ident(schema)}.${ident(proj.table)} (id text PRIMARY KEY, ${cols.map((c) => `${ident(c.name)} ${c.type}`).join(', ')})`,
      );
      const entries = [...proj.rows.entries()];
      rows[proj.table] = entries.length;
      for (let i = 0; i < entries.length; i += 500) {
        const chunk = entries.slice(i, i + 500);
        const values: unknown[] = [];
        const tuples = chunk.map(([id, row]) => {
          const start = values.length;
          values.push(
            id,
            ...cols.map((c) => (c.type === 'jsonb' ? JSON.stringify(row[c.name] ?? null) : (row[c.name] ?? null))),
          );
          return `(${[id, ...cols].map((_, j) => `$${start + j + 1}`).join(', ')})`;
        });
        await client.query(
          `INSERT INTO ${ident(schema)}.${ident(proj.table)} (id, ${cols.map((c) => ident(c.name)).join(', ')}) VALUES ${tuples.join(', ')}`,
          values,
        );
      }
      const liveSelect = `SELECT id, ${cols.map((c) => `${c.live ?? ident(c.name)} AS ${ident(c.name)}`).join(', ')} FROM public.${ident(proj.table)}`;
      const diff = await client.query<Row>(
        `SELECT coalesce(l.id, r.id) AS id, l.id IS NULL AS missing_live, r.id IS NULL AS missing_rebuilt,
                ${cols.map((c) => `l.${ident(c.name)} AS ${ident(`l_${c.name}`)}, r.${ident(c.name)} AS ${ident(`r_${c.name}`)}`).join(', ')}
           FROM (${liveSelect}) l FULL OUTER JOIN ${ident(schema)}.${ident(proj.table)} r ON l.id = r.id
          WHERE l.id IS NULL OR r.id IS NULL OR ${cols.map((c) => `l.${ident(c.name)} IS DISTINCT FROM r.${ident(c.name)}`).join(' OR ')}
          ORDER BY 1`,
      );
      for (const d of diff.rows) {
        const id = String(d.id);
        if (d.missing_live) differences.push({ table: proj.table, id, kind: 'missing_in_live' });
        else if (d.missing_rebuilt) differences.push({ table: proj.table, id, kind: 'missing_in_rebuild' });
        else
          for (const c of cols) {
            const live = d[`l_${c.name}`];
            const rebuilt = d[`r_${c.name}`];
            if (JSON.stringify(live) !== JSON.stringify(rebuilt))
              differences.push({ table: proj.table, id, kind: 'different', column: c.name, live, rebuilt });
          }
      }
    }
    return { schema, eventsRead, rows, differences };
  } finally {
    if (!opts.keep) await client.query(`DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`).catch(() => undefined);
    await client.end();
  }
}
