/**
 * The inbox's one client script (no build step): short polling of
 * /inbox/pending.json; when the pending set changes, the server-rendered
 * cards are fetched and merged in, so a new approval appears and one decided
 * elsewhere disappears without a reload, and a draft being edited is kept.
 */
export const CLIENT_SCRIPT = `(() => {
  const inbox = document.getElementById('inbox');
  if (!inbox) return;
  const live = document.getElementById('live');
  const every = Number(inbox.dataset.pollMs) || 3000;
  const key = (el) => el.dataset.approvalId + ':' + el.dataset.shownHash;
  const current = () => [...inbox.querySelectorAll('article[data-approval-id]')].map(key).sort().join(',');
  const say = (text) => { const p = document.createElement('p'); p.className = 'notice'; p.textContent = text; live.replaceChildren(p); };
  async function merge() {
    const res = await fetch('/inbox/cards', { credentials: 'same-origin', headers: { accept: 'text/html' } });
    if (res.redirected || !res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    const fresh = new Map([...doc.querySelectorAll('article[data-approval-id]')].map((el) => [key(el), el]));
    let added = 0, removed = 0;
    for (const el of [...inbox.querySelectorAll('article[data-approval-id]')]) {
      if (!fresh.has(key(el))) { el.remove(); removed++; } else fresh.delete(key(el));
    }
    for (const el of fresh.values()) {
      const kind = el.closest('section').dataset.kind;
      let section = [...inbox.querySelectorAll('section.group')].find((s) => s.dataset.kind === kind);
      if (!section) {
        section = document.importNode(el.closest('section'), true);
        section.querySelector('.cards').replaceChildren();
        document.getElementById('groups').append(section);
      }
      section.querySelector('.cards').append(document.importNode(el, true));
      added++;
    }
    for (const s of [...inbox.querySelectorAll('section.group')]) {
      const n = s.querySelectorAll('article').length;
      if (n === 0) s.remove(); else s.querySelector('.count').textContent = String(n);
    }
    document.getElementById('empty').hidden = inbox.querySelectorAll('article').length > 0;
    const parts = [];
    if (added) parts.push(added + ' new approval' + (added === 1 ? '' : 's'));
    if (removed) parts.push(removed + ' decided or changed elsewhere');
    if (parts.length) say(parts.join('; ') + '.');
  }
  async function poll() {
    try {
      const res = await fetch('/inbox/pending.json', { credentials: 'same-origin' });
      if (res.status === 401) { say('Your session ended: sign in again.'); return; }
      const body = await res.json();
      const seen = body.pending.map((p) => p.approvalId + ':' + (p.shownHash || '')).sort().join(',');
      if (seen !== current()) await merge();
    } catch (e) { /* the next poll tries again */ }
    setTimeout(poll, every);
  }
  setTimeout(poll, every);
})();`;
