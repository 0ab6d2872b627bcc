/** `keel memory search`: what Keel remembers, ranked as the planner would see it. */
import type { Command } from 'commander';
import { positiveInt, type Context } from './context';
import { indent, print, printJson, when } from './format';
import type { MemoryHit, MemorySearch } from './types';

export function registerMemoryCommands(program: Command, ctx: Context): void {
  const memory = program.command('memory').description('what Keel remembers');

  memory
    .command('search')
    .description('memories closest to a query, best first, with their score')
    .argument('<query>', 'what to look for, in words')
    .option('--k <n>', 'how many results', positiveInt, 10)
    .option('--subject <subject>', 'only memories about this subject, e.g. contact:ada@example.com')
    .option('--json', 'the API’s answer as JSON')
    .action(async (query: string, o: { k: number; subject?: string; json?: boolean }) => {
      const found = await ctx.client().get<MemorySearch>('/v1/memory/search', { q: query, k: o.k, subject: o.subject });
      if (o.json) return printJson(found);
      if (found.results.length === 0) print('Nothing found.');
      found.results.forEach((m, i) => print(hitText(m, `${i + 1}.`)));
      if (found.buried?.length) {
        print();
        print(`Below the cut (${found.buried.length}):`);
        for (const m of found.buried) print(hitText(m, '-') + (m.reason ? `\n   (${m.reason})` : ''));
      }
      if (found.note) {
        print();
        print(`Note: ${found.note}`);
      }
    });
}

function hitText(m: MemoryHit, bullet: string): string {
  const about = [m.kind, m.subject, m.source, m.occurredAt ? when(m.occurredAt) : undefined].filter(Boolean);
  const scores =
    m.similarity !== undefined && m.recency !== undefined
      ? `score ${m.score.toFixed(3)} (similarity ${m.similarity.toFixed(3)}, recency ${m.recency.toFixed(3)})`
      : `score ${m.score.toFixed(3)}`;
  return `${bullet} ${scores} · ${about.join(' · ')} · ${m.id}\n${indent(m.text, '   ')}`;
}
