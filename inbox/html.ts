/**
 * The inbox's pages, rendered on the server. Every value from the engine goes
 * through `esc` (text and attribute values alike), so a draft holding
 * `<script>` or SQL shows literally; the one script is inline with a
 * per-response nonce that the Content-Security-Policy requires.
 */
import { randomUUID } from 'node:crypto';
import { editableFields } from '../slack/blocks';
import { CLIENT_SCRIPT } from './client';

/** HTML-escapes text for element content and quoted attribute values. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(
    /[&<>"'`]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' })[c]!,
  );
}

export const usd = (n: unknown) => `$${(typeof n === 'number' && Number.isFinite(n) ? n : 0).toFixed(4)}`;
const when = (d: unknown) => {
  const date = d instanceof Date ? d : new Date(String(d));
  if (Number.isNaN(date.getTime())) return '';
  const iso = date.toISOString();
  return `<time datetime="${esc(iso)}">${esc(iso.slice(0, 19).replace('T', ' '))} UTC</time>`;
};
export { when as timeOf };
const shortHash = (h: unknown) => (typeof h === 'string' ? `${h.slice(0, 12)}…` : '');
/** An id usable in HTML id attributes (approval ids are uuids; kinds are `email.send`). */
const domId = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '-');

const STYLE = `
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f6f4}
header,main{max-width:60rem;margin:0 auto;padding:0 1rem}
header{display:flex;gap:1rem;align-items:center;justify-content:space-between;padding-top:1rem}
h1{font-size:1.4rem;margin:.5rem 0}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}h3{font-size:1rem;margin:0 0 .25rem}
.card{background:#fff;border:1px solid #ccc;border-radius:6px;padding:1rem;margin:.75rem 0}
.meta{color:#555;font-size:.9rem;margin:.25rem 0}
label{display:block;font-weight:600;margin-top:.5rem}
label.inline{display:inline;font-weight:normal}
textarea,input[type=text],input[type=password]{width:100%;box-sizing:border-box;font:inherit;padding:.4rem;border:1px solid #888;border-radius:4px}
button{font:inherit;padding:.4rem .9rem;margin:.5rem .5rem 0 0;border-radius:4px;border:1px solid #333;background:#fff;cursor:pointer}
button.primary{background:#134e8e;color:#fff;border-color:#134e8e}button.danger{border-color:#a11}
:focus-visible{outline:3px solid #f5a623;outline-offset:2px}
.notice{background:#e8f4e8;border:1px solid #6a6;padding:.5rem 1rem;border-radius:4px}
.error{background:#fbeaea;border:1px solid #c66;padding:.5rem 1rem;border-radius:4px}
.badge{display:inline-block;font-size:.8rem;padding:0 .4rem;border-radius:3px;background:#fde7b0}
pre{white-space:pre-wrap;word-break:break-word;background:#f3f3f3;padding:.5rem;margin:0}
ol.timeline li{margin:.3rem 0}
.group-actions{border-top:1px dashed #bbb;padding-top:.25rem}
`;

export interface PageParts {
  title: string;
  nonce: string;
  body: string;
  /** Whether the signed-in header (with sign-out) is shown. */
  csrf?: string;
}

export function page({ title, nonce, body, csrf }: PageParts): string {
  const signOut = csrf
    ? `<form method="post" action="/inbox/logout"><input type="hidden" name="csrf" value="${esc(csrf)}"><button type="submit">Sign out</button></form>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · Keel</title><style nonce="${esc(nonce)}">${STYLE}</style></head>
<body><header><a href="/inbox">Keel · approval inbox</a>${signOut}</header>
<main id="main">${body}</main>
${csrf ? `<script nonce="${esc(nonce)}">${CLIENT_SCRIPT}</script>` : ''}
</body></html>`;
}

export function loginPage(nonce: string, problem?: string): string {
  return page({
    title: 'Sign in',
    nonce,
    body: `<h1>Sign in to the approval inbox</h1>
${problem ? `<p class="error" role="alert">${esc(problem)}</p>` : ''}
<form method="post" action="/inbox/login">
<label for="apiKey">API key</label>
<input type="password" id="apiKey" name="apiKey" autocomplete="current-password" required autofocus>
<p class="meta">The key is in <code>.keel/api-key</code> (or <code>KEEL_API_KEY</code>).</p>
<button type="submit" class="primary">Sign in</button>
</form>`,
  });
}

/** An approval as approvalView shows it, pending. */
export interface PendingApproval {
  approvalId: string;
  goalId: string;
  title: string;
  summary: string;
  rationale: string;
  proposed: unknown;
  escalated: boolean;
  createdAt: Date;
  expiresAt: Date;
  shownHash?: string;
  shown?: unknown;
}

interface Shown {
  tool?: string;
  risk?: string;
  costSoFarUsd?: number;
  proposed?: Record<string, unknown>;
  provenance?: {
    memories?: { id: string; text?: string }[];
    steps?: { stepId: string; tool: string; model?: string; promptHash?: string }[];
  };
}

export const kindOf = (a: PendingApproval) => (a.shown as Shown | undefined)?.tool ?? 'other';

function provenance(shown: Shown): string {
  const memories = shown.provenance?.memories ?? [];
  const steps = shown.provenance?.steps ?? [];
  const mem = memories.length
    ? `<ul>${memories.map((m) => `<li>${m.text !== undefined ? `${esc(m.text)} ` : ''}<span class="meta">(${esc(m.id)})</span></li>`).join('')}</ul>`
    : '<p class="meta">No memories were used.</p>';
  const st = steps.length
    ? `<ul>${steps
        .map(
          (s) =>
            `<li>Step <code>${esc(s.stepId)}</code> (${esc(s.tool)}): ${s.model ? `model ${esc(s.model)}` : 'no model'}${s.promptHash ? `, prompt hash <code title="${esc(s.promptHash)}">${esc(shortHash(s.promptHash))}</code>` : ''}</li>`,
        )
        .join('')}</ul>`
    : '<p class="meta">No earlier steps.</p>';
  return `<details><summary>Provenance: ${memories.length} memor${memories.length === 1 ? 'y' : 'ies'}, ${steps.length} earlier step${steps.length === 1 ? '' : 's'}</summary>
<h4>Memories used</h4>${mem}<h4>Earlier steps</h4>${st}</details>`;
}

/** One pending approval: what it is, why, provenance, the editable draft, approve / reject, and its group checkbox. */
export function card(a: PendingApproval, csrf: string): string {
  const shown = (a.shown ?? {}) as Shown;
  const proposed = (shown.proposed ?? (a.proposed as Record<string, unknown> | null) ?? {}) as Record<string, unknown>;
  const kind = kindOf(a);
  const id = domId(a.approvalId);
  const why = Array.isArray(proposed.why) ? (proposed.why as unknown[]) : [];
  const fields = editableFields(kind).filter((f) => typeof proposed[f.name] === 'string');
  const hidden = `<input type="hidden" name="csrf" value="${esc(csrf)}">
<input type="hidden" name="submission" value="${esc(randomUUID())}">
<input type="hidden" name="shownHash" value="${esc(a.shownHash ?? '')}">`;
  const shownArgs = Object.entries(proposed)
    .filter(([k, v]) => k !== 'why' && k !== 'artifactId' && !fields.some((f) => f.name === k) && v !== undefined)
    .map(([k, v]) => `<li>${esc(k)}: ${esc(typeof v === 'string' ? v : JSON.stringify(v))}</li>`)
    .join('');
  const editors = fields
    .map((f) => {
      const value = String(proposed[f.name]);
      const rows = f.name === 'body' ? Math.min(14, Math.max(4, value.split('\n').length + 1)) : 2;
      return `<label for="${id}-${esc(f.name)}">${esc(f.name[0].toUpperCase() + f.name.slice(1))}</label>
<textarea id="${id}-${esc(f.name)}" name="field.${esc(f.name)}" rows="${rows}"${f.maxLength ? ` maxlength="${f.maxLength}"` : ''}>${esc(value)}</textarea>
<input type="hidden" name="original.${esc(f.name)}" value="${esc(value)}">`;
    })
    .join('');
  return `<article class="card" id="a-${id}" data-approval-id="${esc(a.approvalId)}" data-shown-hash="${esc(a.shownHash ?? '')}" aria-labelledby="t-${id}">
<h3 id="t-${id}">${esc(a.summary)}${a.escalated ? ' <span class="badge">reminder sent</span>' : ''}</h3>
<p class="meta">Risk: ${esc(shown.risk ?? 'unknown')} · cost so far ${esc(usd(shown.costSoFarUsd))} · step “${esc(a.title)}” · <a href="/inbox/goals/${esc(encodeURIComponent(a.goalId))}">the goal’s timeline and explanation</a> · expires ${when(a.expiresAt)}</p>
<p><strong>Rationale:</strong> ${esc(a.rationale)}</p>
${why.length ? `<p><strong>Why it needs you:</strong></p><ul>${why.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : ''}
${shownArgs ? `<ul class="meta">${shownArgs}</ul>` : ''}
${provenance(shown)}
<form method="post" action="/inbox/approvals/${esc(encodeURIComponent(a.approvalId))}/decision" aria-label="Approve: ${esc(a.summary)}">
${hidden}${editors}
<button type="submit" name="action" value="approve" class="primary">Approve as shown</button>
${fields.length ? '<button type="submit" name="action" value="approve_edits">Approve with my edits</button>' : ''}
</form>
<form method="post" action="/inbox/approvals/${esc(encodeURIComponent(a.approvalId))}/decision" aria-label="Reject: ${esc(a.summary)}">
${hidden}
<label for="${id}-reason">Reason for rejecting</label>
<input type="text" id="${id}-reason" name="reason" required maxlength="5000">
<button type="submit" name="action" value="reject" class="danger">Reject</button>
</form>
<p><input type="checkbox" id="${id}-select" form="g-${domId(kind)}" name="ids" value="${esc(a.approvalId)}">
<label class="inline" for="${id}-select">Select for “Approve selected” in this group</label>
<input type="hidden" form="g-${domId(kind)}" name="hash.${esc(a.approvalId)}" value="${esc(a.shownHash ?? '')}"></p>
</article>`;
}

/** The pending approvals grouped by kind (the tool each is for), each group with its batch form. */
export function groups(approvals: PendingApproval[], csrf: string): string {
  const byKind = new Map<string, PendingApproval[]>();
  for (const a of approvals) byKind.set(kindOf(a), [...(byKind.get(kindOf(a)) ?? []), a]);
  const sections = [...byKind.entries()]
    .map(([kind, items]) => {
      const gid = domId(kind);
      return `<section class="group" id="group-${gid}" data-kind="${esc(kind)}" aria-labelledby="h-${gid}">
<h2 id="h-${gid}"><code>${esc(kind)}</code> · <span class="count">${items.length}</span> pending</h2>
<div class="cards">${items.map((a) => card(a, csrf)).join('\n')}</div>
<form class="group-actions" id="g-${gid}" method="post" action="/inbox/groups/decision" aria-label="Approve selected ${esc(kind)}">
<input type="hidden" name="csrf" value="${esc(csrf)}"><input type="hidden" name="submission" value="${esc(randomUUID())}">
<input type="hidden" name="kind" value="${esc(kind)}">
<button type="submit" class="primary">Approve selected in ${esc(kind)}</button>
</form></section>`;
    })
    .join('\n');
  return `<div id="groups">${sections}</div>
<p id="empty"${approvals.length ? ' hidden' : ''}>Nothing is waiting for you.</p>`;
}

const NOTICES: Record<string, (n: number) => string> = {
  approved: () => 'Approved.',
  edited: () => 'Approved with your edits.',
  rejected: () => 'Rejected.',
  batch: (n) => `Approved ${n} in one go.`,
  accepted: () => 'Rule accepted: such steps are approved for you from now on.',
  dismissed: () => 'Suggestion dismissed.',
};

/** Rules the operator's own unedited approvals suggest (trust/), each with Accept and Dismiss. */
export function suggestions(rules: { id: string; text: string; evidence: number }[], csrf: string): string {
  if (rules.length === 0) return '';
  const items = rules
    .map(
      (r) => `<li><form method="post" action="/inbox/trust/${encodeURIComponent(r.id)}">
<input type="hidden" name="csrf" value="${esc(csrf)}">
<p><strong>${esc(r.text)}</strong> — you approved ${esc(r.evidence)} like it without changes.</p>
<button type="submit" name="action" value="accept">Accept rule</button>
<button type="submit" name="action" value="dismiss">Dismiss</button>
</form></li>`,
    )
    .join('');
  return `<section aria-labelledby="suggested"><h2 id="suggested">Suggested rules</h2>
<p>An accepted rule approves such steps for you; every action it approves says so, and you can revoke it.</p><ul>${items}</ul></section>`;
}

export function inboxPage(opts: {
  nonce: string;
  csrf: string;
  approvals: PendingApproval[];
  /** Suggested trust rules (shown above the approvals). */
  suggested?: { id: string; text: string; evidence: number }[];
  notice?: string;
  n?: number;
  problems?: string[];
  pollMs: number;
}): string {
  // The notice comes from the query string: only the table's own keys (`?notice=__proto__` is not one).
  const notice = opts.notice && Object.hasOwn(NOTICES, opts.notice) ? NOTICES[opts.notice](opts.n ?? 0) : '';
  return page({
    title: 'Approval inbox',
    nonce: opts.nonce,
    csrf: opts.csrf,
    body: `<h1>Approvals waiting for you</h1>
<div id="live" role="status" aria-live="polite">${notice ? `<p class="notice">${esc(notice)}</p>` : ''}</div>
${opts.problems?.length ? `<div class="error" role="alert"><p>Not done:</p><ul>${opts.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul></div>` : ''}
${suggestions(opts.suggested ?? [], opts.csrf)}
<div id="inbox" data-poll-ms="${opts.pollMs}">${groups(opts.approvals, opts.csrf)}</div>`,
  });
}

export function messagePage(nonce: string, title: string, message: string, csrf?: string): string {
  return page({
    title,
    nonce,
    csrf,
    body: `<h1>${esc(title)}</h1><p class="error" role="alert">${esc(message)}</p><p><a href="/inbox">Back to the inbox</a></p>`,
  });
}
