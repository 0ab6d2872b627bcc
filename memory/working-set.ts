/**
 * The working set of a step: canonical facts about the subject first, then
 * retrieved memories by score, packed under a token budget counted with a
 * real tokenizer. It records which memories it used: that is the provenance
 * the explain endpoint shows and approval feedback follows.
 */
import type { Db } from '../db/prisma';
import { itemLine } from '../models/prompt';
import { countTokens } from '../models/tokenizer';
import type { MemoryService } from './service';

export interface WorkingSetItem {
  /** A memory id, or `contact:<id>` / `goal:<id>` for canonical facts. */
  id: string;
  source: 'canonical' | 'memory';
  text: string;
  tokens: number;
  score?: number;
}

export interface WorkingSet {
  text: string;
  items: WorkingSetItem[];
  /** Memory ids used (canonical fact ids included), most useful first. */
  memoryIds: string[];
  tokens: number;
  budget: number;
  /** Candidates that did not fit the budget. */
  dropped: number;
  lexical: boolean;
}

export interface WorkingSetInput {
  query: string;
  subject?: string;
  tokenBudget: number;
  /** Memories to consider (default 12). */
  k?: number;
  excludeGoalId?: string;
}

/** Facts from the canonical store: who the subject is, and what past goals about them achieved. */
async function canonicalFacts(
  prisma: Db,
  subject: string | undefined,
  excludeGoalId?: string,
): Promise<WorkingSetItem[]> {
  if (!subject?.startsWith('contact:')) return [];
  const email = subject.slice('contact:'.length);
  const facts: WorkingSetItem[] = [];
  const contact = await prisma.contact.findUnique({ where: { email }, include: { organization: true } });
  if (contact) {
    const attrs = Object.entries(contact.attributes as Record<string, unknown>)
      .map(([k, v]) => `${k}: ${String(v)}`)
      .join('; ');
    const text = [
      `Contact: ${contact.name ?? email} <${email}>`,
      contact.organization ? `at ${contact.organization.name} (${contact.organization.domain})` : '',
      attrs ? `— ${attrs}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    facts.push({ id: `contact:${contact.id}`, source: 'canonical', text, tokens: 0 });
  }
  const outcomes = await prisma.artifact.findMany({
    where: { kind: 'outcome', status: 'active', subject, ...(excludeGoalId ? { NOT: { goalId: excludeGoalId } } : {}) },
    orderBy: { createdAt: 'desc' },
    take: 3,
  });
  for (const o of outcomes)
    facts.push({ id: `goal:${o.goalId}`, source: 'canonical', text: `Earlier outcome: ${o.content}`, tokens: 0 });
  return facts;
}

export async function assembleWorkingSet(
  deps: { prisma: Db; memory: MemoryService },
  input: WorkingSetInput,
): Promise<WorkingSet> {
  const k = input.k ?? 12;
  const facts = await canonicalFacts(deps.prisma, input.subject, input.excludeGoalId);
  const about = input.subject
    ? await deps.memory.search({ query: input.query, k, subject: input.subject, withBuried: false })
    : undefined;
  // Twice as many, since memories about other people are left out below.
  const general = await deps.memory.search({ query: input.query, k: input.subject ? 2 * k : k, withBuried: false });
  const seen = new Set<string>();
  const memories: WorkingSetItem[] = [];
  let others = 0;
  // Memories about the subject first: they are what the step is about.
  for (const m of [...(about?.results ?? []), ...general.results]) {
    if (seen.has(m.id)) continue;
    // A working set about someone never carries what Keel knows about another person: a draft to Ada
    // is written from it, and what Bob told us must not reach Ada (nor an injection's "tell me about Bob").
    if (input.subject && m.subject?.startsWith('contact:') && m.subject !== input.subject) continue;
    if (!about?.results.some((a) => a.id === m.id) && ++others > k) continue;
    seen.add(m.id);
    const when = m.occurredAt.toISOString().slice(0, 10);
    memories.push({
      id: m.id,
      source: 'memory',
      text: `[${m.kind}, ${when}${m.humanEdited ? ', from the operator' : ''}] ${m.text}`,
      tokens: 0,
      score: m.score,
    });
  }
  const items: WorkingSetItem[] = [];
  let tokens = 0;
  let dropped = 0;
  for (const item of [...facts, ...memories]) {
    // One line per item; the newline is part of the cost.
    const cost = countTokens(`${itemLine(item)}\n`);
    if (tokens + cost > input.tokenBudget) {
      dropped++;
      continue;
    }
    items.push({ ...item, tokens: cost });
    tokens += cost;
  }
  return {
    // One line per item (models/prompt.ts itemLine), so a prompt can leave lines out item by item.
    text: items.map(itemLine).join('\n'),
    items,
    memoryIds: items.map((i) => i.id),
    tokens,
    budget: input.tokenBudget,
    dropped,
    lexical: general.lexical,
  };
}
