/**
 * Canonical entities: contacts, organizations, projects. Every change is a
 * row change plus an event that carries the new values, so the projections
 * can be rebuilt from the log alone (scripts/state-rebuild.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Contact } from '../generated/prisma/client';
import { appendEvents, json, type DbTx } from './events';

/** Mail providers whose domain says nothing about the sender's organization. */
const SHARED_MAIL_DOMAINS = new Set([
  'gmail.com',
  'googlemail.com',
  'outlook.com',
  'hotmail.com',
  'live.com',
  'yahoo.com',
  'icloud.com',
  'me.com',
  'proton.me',
  'protonmail.com',
  'aol.com',
  'gmx.com',
  'fastmail.com',
]);

export interface ParsedAddress {
  email: string;
  name?: string;
}

/** Parses `Ada Lovelace <ada@example.com>` or a bare address; null when there is no address. */
export function parseAddress(value: unknown): ParsedAddress | null {
  if (typeof value !== 'string') return null;
  const angle = /^\s*"?([^"<]*?)"?\s*<([^<>\s@]+@[^<>\s@]+\.[^<>\s@]+)>\s*$/.exec(value);
  if (angle) return { email: angle[2].toLowerCase(), ...(angle[1].trim() ? { name: angle[1].trim() } : {}) };
  const bare = /^\s*([^<>\s@]+@[^<>\s@]+\.[^<>\s@]+)\s*$/.exec(value);
  return bare ? { email: bare[1].toLowerCase() } : null;
}

/** A readable organization name from a domain: `acme-corp.co.uk` → `Acme Corp`. */
function organizationName(domain: string): string {
  const label = domain.split('.')[0];
  return label
    .split(/[-_]/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join(' ');
}

async function ensureOrganization(tx: DbTx, domain: string, actor: string): Promise<string | null> {
  if (SHARED_MAIL_DOMAINS.has(domain)) return null;
  const existing = await tx.organization.findUnique({ where: { domain } });
  if (existing) return existing.id;
  const organization = { id: randomUUID(), name: organizationName(domain), domain };
  const created = await tx.organization.createMany({ data: [organization], skipDuplicates: true });
  if (created.count === 0) return (await tx.organization.findUniqueOrThrow({ where: { domain } })).id;
  await appendEvents(tx, [{ type: 'organization.created', actor, data: { organization } }]);
  return organization.id;
}

/**
 * The sender of an inbound message becomes a contact, or updates one: a name
 * learned later fills in a missing name and extra attributes are merged.
 * Returns the contact and whether anything changed.
 */
export async function upsertContact(
  tx: DbTx,
  address: ParsedAddress,
  opts: { actor: string; attributes?: Record<string, unknown> },
): Promise<{ contact: Contact; created: boolean; changed: boolean }> {
  const email = address.email.toLowerCase();
  const domain = email.split('@')[1];
  const organizationId = await ensureOrganization(tx, domain, opts.actor);
  const existing = await tx.contact.findUnique({ where: { email } });
  if (!existing) {
    const row = {
      id: randomUUID(),
      email,
      name: address.name ?? null,
      organizationId,
      attributes: opts.attributes ?? {},
    };
    const created = await tx.contact.createMany({
      data: [{ ...row, attributes: json(row.attributes) }],
      skipDuplicates: true,
    });
    if (created.count > 0) {
      await appendEvents(tx, [{ type: 'contact.created', actor: opts.actor, data: { contact: row } }]);
      return { contact: await tx.contact.findUniqueOrThrow({ where: { email } }), created: true, changed: true };
    }
    return upsertContact(tx, address, opts);
  }
  const changes: { name?: string; organizationId?: string; attributes?: Record<string, unknown> } = {};
  if (address.name && !existing.name) changes.name = address.name;
  if (organizationId && !existing.organizationId) changes.organizationId = organizationId;
  if (opts.attributes && Object.keys(opts.attributes).length > 0) {
    const merged = { ...(existing.attributes as Record<string, unknown>), ...opts.attributes };
    if (JSON.stringify(merged) !== JSON.stringify(existing.attributes)) changes.attributes = merged;
  }
  if (Object.keys(changes).length === 0) return { contact: existing, created: false, changed: false };
  const contact = await tx.contact.update({
    where: { id: existing.id },
    data: {
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.organizationId !== undefined ? { organizationId: changes.organizationId } : {}),
      ...(changes.attributes ? { attributes: json(changes.attributes) } : {}),
      updatedAt: new Date(),
    },
  });
  await appendEvents(tx, [{ type: 'contact.updated', actor: opts.actor, data: { contactId: existing.id, changes } }]);
  return { contact, created: false, changed: true };
}

/** The subject key memories and artifacts use for a contact. */
export const contactSubject = (email: string) => `contact:${email.toLowerCase()}`;

export interface InboundMemory {
  subject: string;
  text: string;
  occurredAt?: Date;
}

/** What an email-like inbound event is worth remembering, and about whom; null when nothing. */
export function inboundMemory(payload: Record<string, unknown>): InboundMemory | null {
  const sender = parseAddress(payload.from ?? payload.sender ?? payload.email);
  if (!sender) return null;
  const subjectLine = typeof payload.subject === 'string' ? payload.subject : '';
  const body = typeof payload.text === 'string' ? payload.text : typeof payload.body === 'string' ? payload.body : '';
  const text = [subjectLine && `${sender.name ?? sender.email} wrote: ${subjectLine}`, body].filter(Boolean).join('\n');
  if (!text) return null;
  const when =
    typeof payload.date === 'string' && !Number.isNaN(Date.parse(payload.date)) ? new Date(payload.date) : undefined;
  return { subject: contactSubject(sender.email), text, ...(when ? { occurredAt: when } : {}) };
}

/**
 * Maps an adapter's event into canonical records. Runs in the transaction
 * that stores the inbound event, so it happens exactly once per source +
 * externalId. Email-like events (a `from` address in the payload) make or
 * update the sender's contact.
 */
export async function mapInboundEvent(
  tx: DbTx,
  event: { source: string; type: string; payload: Record<string, unknown> },
): Promise<{ contactId?: string }> {
  const sender = parseAddress(event.payload.from ?? event.payload.sender ?? event.payload.email);
  if (!sender) return {};
  const { contact } = await upsertContact(tx, sender, { actor: `adapter:${event.source}` });
  return { contactId: contact.id };
}
