/**
 * `keel approvals edit`: the editable fields of a proposal in a text file for
 * $EDITOR, and what the operator changed in it. Which fields may change is the
 * tool's spec's to say (its approval `edits` schema), as it is for the API.
 */
import { spawnSync } from 'node:child_process';
import { CliError } from './client';

/** The fields an operator may edit in an approval of `tool`, in the spec's order; empty when none. */
export async function editableFields(tool: string | undefined): Promise<string[]> {
  if (!tool) return [];
  // Loaded here, not at start: the specs cost most of a second to compile, and only this command reads them.
  const [{ toolSpec }, { z }] = await Promise.all([import('../tools/registry'), import('zod')]);
  const schema = toolSpec(tool)?.approval?.edits;
  if (!schema) return [];
  // The input side: what an operator sends, before the spec's refinements and transforms.
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: object };
  return Object.keys(json.properties ?? {});
}

const marker = (name: string) => `--- ${name} ---`;

/** The file the editor opens: a commented header, then each field under its marker line. */
export function renderEditFile(opts: {
  approvalId: string;
  summary: string;
  proposed: Record<string, unknown>;
  editable: string[];
}): string {
  const fixed = Object.entries(opts.proposed).filter(
    ([k, v]) => !opts.editable.includes(k) && v !== null && v !== undefined && typeof v !== 'object',
  );
  const header = [
    `# keel approvals edit ${opts.approvalId}`,
    `# ${opts.summary}`,
    ...fixed.map(([k, v]) => `#   ${k}: ${String(v).replace(/\s+/g, ' ')}  (not editable)`),
    '#',
    `# Change the text under each "${marker('field')}" line, then save and quit:`,
    '# Keel approves with your changes. Leave the file unchanged, or empty it, to',
    '# abort without deciding. Lines starting with "#" up here are ignored.',
  ];
  const body = opts.editable.map((name) => `${marker(name)}\n${valueText(opts.proposed[name])}\n`);
  return `${header.join('\n')}\n${body.join('')}`;
}

const valueText = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

/** An editor adds or keeps a final newline; trailing whitespace is never a change. */
const norm = (s: string) => s.replace(/\s+$/, '');

export type EditResult =
  | { kind: 'empty' }
  | { kind: 'unchanged' }
  | { kind: 'edited'; edits: Record<string, string> }
  | { kind: 'invalid'; problem: string };

/** What the operator changed, compared with the proposal. */
export function readEdits(text: string, proposed: Record<string, unknown>, editable: string[]): EditResult {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const first = lines.findIndex((l) => editable.some((n) => l.trimEnd() === marker(n)));
  const before = (first === -1 ? lines : lines.slice(0, first)).filter((l) => !l.startsWith('#'));
  if (first === -1) {
    return before.join('').trim() === ''
      ? { kind: 'empty' }
      : { kind: 'invalid', problem: `no "${marker(editable[0])}" line left in the file` };
  }
  const values: Record<string, string> = {};
  let current: string | undefined;
  for (const line of lines.slice(first)) {
    const name = editable.find((n) => line.trimEnd() === marker(n));
    if (name) {
      current = name;
      values[name] = '';
    } else if (current) {
      values[current] += `${line}\n`;
    }
  }
  if (Object.values(values).every((v) => v.trim() === '') && before.join('').trim() === '') return { kind: 'empty' };
  const edits: Record<string, string> = {};
  for (const [name, value] of Object.entries(values)) {
    if (norm(value) === norm(valueText(proposed[name]))) continue;
    if (norm(value).trim() === '') return { kind: 'invalid', problem: `${name} is empty` };
    edits[name] = norm(value);
  }
  return Object.keys(edits).length ? { kind: 'edited', edits } : { kind: 'unchanged' };
}

/** Opens `file` in $VISUAL or $EDITOR (default vi) and waits for it to close. */
export function openEditor(file: string, env: NodeJS.ProcessEnv): void {
  const editor = env.VISUAL || env.EDITOR || 'vi';
  // Through the shell, so EDITOR="code --wait" works as it does for git.
  const result = spawnSync(`${editor} ${shellQuote(file)}`, { shell: true, stdio: 'inherit' });
  if (result.error) throw new CliError(`could not run the editor (${editor}): ${result.error.message}`);
  if (result.status !== 0) {
    throw new CliError(
      `the editor (${editor}) exited with ${result.signal ?? `code ${result.status}`}; nothing was decided`,
    );
  }
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
