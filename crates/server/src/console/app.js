// Switchboard console. Plain JavaScript, no build step, no dependencies.
//
// Safety rule for everything below: text from customers, plugins and the API is only ever put
// into the page as text nodes (`h()` and `textContent`), never as markup, and never into an
// attribute that can navigate (href, src). The Content-Security-Policy forbids inline script
// besides, so a post containing `<img src=x onerror=…>` shows as those characters.
'use strict';

const state = { me: null, events: null, inbox: null, clocks: new Map(), filters: {} };

// ---- small DOM helpers --------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'href' && !String(v).startsWith('#')) throw new Error('only in-app links');
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const view = () => document.getElementById('view');

function show(...nodes) {
  view().replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false && n !== ''));
}

function banner(text, ok) {
  const b = document.getElementById('banner');
  b.textContent = text || '';
  b.className = ok ? 'ok' : '';
  b.hidden = !text;
}

function when(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

function duration(ms) {
  const neg = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  const parts = d ? `${d}d ${hh}h` : hh ? `${hh}h ${mm}m` : `${mm}m ${String(s).padStart(2, '0')}s`;
  return neg ? `${parts} overdue` : `${parts} left`;
}

// Byte offsets (as the server counts them, UTF-8) to pieces of a JS string.
function splitByBytes(text, ranges) {
  const bytes = new TextEncoder().encode(text);
  const dec = new TextDecoder();
  // Overlapping ranges (two labels pointing at the same words) merge into one mark.
  const sorted = [];
  for (const r of ranges.filter((x) => x && x.start < x.end && x.end <= bytes.length).sort((a, b) => a.start - b.start)) {
    const last = sorted[sorted.length - 1];
    if (last && r.start < last.end) {
      last.end = Math.max(last.end, r.end);
      last.note = `${last.note}; ${r.note}`;
      if (r.severity === 'block') last.severity = 'block';
    } else sorted.push({ ...r });
  }
  const out = [];
  let at = 0;
  for (const r of sorted) {
    if (r.start > at) out.push({ text: dec.decode(bytes.slice(at, r.start)) });
    out.push({ text: dec.decode(bytes.slice(r.start, r.end)), mark: r });
    at = r.end;
  }
  if (at < bytes.length) out.push({ text: dec.decode(bytes.slice(at)) });
  return out;
}

function marked(text, ranges, markClass) {
  return splitByBytes(text, ranges).map((p) =>
    p.mark ? h('mark', { class: markClass(p.mark), title: p.mark.note }, p.text) : p.text,
  );
}

// ---- the API ------------------------------------------------------------------------------

async function call(method, url, body) {
  const headers = {};
  if (state.me) headers['x-csrf-token'] = state.me.csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let r;
  try {
    r = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (e) {
    return { ok: false, status: 0, data: { error: 'the server cannot be reached; retry' } };
  }
  let data = null;
  const text = await r.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
  if (r.status === 401 && state.me) {
    state.me = null;
    banner('Your session has ended. Sign in again.');
    route();
  }
  return { ok: r.ok, status: r.status, data };
}

const api = (method, path, body) =>
  call(method, `/api/tenants/${encodeURIComponent(state.me.tenant)}${path}`, body);
const enc = encodeURIComponent;
const atLeast = (role) =>
  ['agent', 'supervisor', 'admin'].indexOf(state.me.role) >= ['agent', 'supervisor', 'admin'].indexOf(role);

// ---- sign-in ------------------------------------------------------------------------------

function signInView() {
  document.getElementById('top').hidden = true;
  const key = h('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card signin', id: 'sign-in' },
    h('h1', {}, 'Sign in to Switchboard'),
    h('label', { for: 'key' }, 'Your personal key'),
    key,
    h('p', { class: 'hint' }, 'Your admin gives each person their own key. It is sent once and never kept in the browser.'),
    h('button', { class: 'primary', type: 'submit' }, 'Sign in'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await call('POST', '/console/session', { key: key.value });
    key.value = '';
    if (!r.ok) { banner((r.data && r.data.error) || 'Sign-in failed'); key.focus(); return; }
    banner('');
    state.me = r.data;
    if (!location.hash || location.hash === '#/') location.hash = '#/inbox';
    else route();
  });
  show(form);
  key.focus();
}

async function signOut() {
  await call('POST', '/console/session/end');
  state.me = null;
  if (state.events) { state.events.close(); state.events = null; }
  location.hash = '#/';
  route();
}

// ---- chrome -------------------------------------------------------------------------------

function chrome(page) {
  document.getElementById('top').hidden = false;
  const links = [['inbox', 'Inbox', 'agent'], ['signoff', 'Sign-off', 'supervisor'], ['incidents', 'Incidents', 'agent'],
    ['reports', 'Reports', 'supervisor'], ['plugins', 'Plugins', 'admin'], ['audit', 'Audit log', 'supervisor']];
  document.getElementById('nav').replaceChildren(...links.filter(([, , r]) => atLeast(r)).map(([id, label]) =>
    h('a', { href: `#/${id}`, 'aria-current': id === page ? 'page' : null }, label)));
  document.getElementById('who').textContent = `${state.me.name} · ${state.me.role} · ${state.me.tenant}`;
  if (!state.events) listen();
}

// Live updates: the server says when the inbox changed; the page fetches what it shows again.
function listen() {
  const es = new EventSource('/console/events');
  state.events = es;
  es.addEventListener('inbox', () => {
    const page = (location.hash || '').split('/')[1];
    if (page === 'inbox' && document.activeElement?.tagName !== 'SELECT') inboxView(true);
  });
}

// ---- inbox --------------------------------------------------------------------------------

function clockChip(clock) {
  if (!clock) return h('span', { class: 'status' }, '—');
  const due = clock.due_in_ms;
  const label = clock.state === 'running' || clock.state === 'warning' || clock.state === 'internal-breached'
    ? `${clock.state.replace('-', ' ')} · ${due === null || due === undefined ? '' : duration(due)}`
    : clock.state;
  const ticking = due !== null && due !== undefined && label !== clock.state;
  return h('span', { class: `clock ${clock.state}`, 'data-state': clock.state,
    'data-due-at': ticking ? Date.now() + due : null, 'data-label': clock.state.replace('-', ' '),
    title: `internal target ${when(clock.internal_due_at)}, published ${when(clock.published_due_at)} (business hours)` }, label);
}

async function inboxView(quiet) {
  chrome('inbox');
  const [inbox, clocks] = await Promise.all([api('GET', '/inbox?limit=500'), api('GET', '/service-levels')]);
  if (!inbox.ok) { show(h('h1', {}, 'Inbox'), h('p', { class: 'empty' }, inbox.data.error)); return; }
  state.clocks = new Map();
  for (const c of (clocks.ok ? clocks.data.clocks : [])) {
    if (!state.clocks.has(c.conversation_id)) state.clocks.set(c.conversation_id, c);
  }
  const items = inbox.data.conversations;
  const f = state.filters;
  const options = (key, values) => {
    const sel = h('select', { id: `filter-${key}`, name: key },
      h('option', { value: '' }, 'all'),
      [...new Set(values.filter(Boolean))].sort().map((v) => h('option', { value: v, selected: f[key] === v }, v)));
    sel.addEventListener('change', () => { f[key] = sel.value; inboxView(); });
    return h('label', {}, key, sel);
  };
  const shown = items.filter((c) =>
    (!f.channel || c.channel === f.channel) && (!f.team || c.team === f.team) &&
    (!f.assignee || c.assignee === f.assignee) && (!f.label || c.labels.includes(f.label)));
  const rows = shown.map((c) => h('tr', { 'data-conversation': c.id },
    h('td', {}, c.priority > 0 ? h('span', { class: 'chip' }, `P${c.priority}`) : '', c.escalated ? h('span', { class: 'chip' }, 'escalated') : ''),
    h('td', {}, h('a', { href: `#/c/${enc(c.id)}` }, c.customer || c.conversation_key), h('div', { class: 'status' }, `${c.state} · ${c.conversation_key}`)),
    h('td', {}, c.channel),
    h('td', {}, c.labels.map((l) => h('span', { class: 'chip' }, l))),
    h('td', {}, c.team || '—'),
    h('td', {}, c.assignee || h('span', { class: 'status' }, 'unassigned')),
    h('td', { class: 'clock-cell' }, clockChip(state.clocks.get(c.id))),
    h('td', {}, c.proposed_drafts ? `${c.proposed_drafts} draft(s)` : ''),
  ));
  show(
    h('h1', {}, 'Inbox'),
    h('div', { class: 'filters' },
      options('channel', items.map((c) => c.channel)), options('label', items.flatMap((c) => c.labels)),
      options('team', items.map((c) => c.team)), options('assignee', items.map((c) => c.assignee)),
      h('span', { class: 'status', 'aria-live': 'polite' }, `${shown.length} of ${items.length} conversations · updates live`)),
    shown.length
      ? h('table', { class: 'inbox' },
        h('thead', {}, h('tr', {}, ['', 'Customer', 'Channel', 'Labels', 'Team', 'Holder', 'Service level', 'Drafts'].map((t) => h('th', {}, t)))),
        h('tbody', {}, rows))
      : h('p', { class: 'empty' }, items.length ? 'No conversation matches these filters.' : 'Nothing waiting. New messages appear here as they arrive.'),
  );
  if (!quiet) view().focus({ preventScroll: true });
}

// ---- conversation -------------------------------------------------------------------------

async function conversationView(id) {
  chrome('inbox');
  const r = await api('GET', `/conversations/${enc(id)}`);
  if (!r.ok) {
    show(h('h1', {}, 'Conversation'), h('p', { class: 'empty', id: 'not-found' },
      r.status === 404 ? 'No such conversation in your tenant.' : (r.data && r.data.error) || 'Could not load it.'));
    return;
  }
  const v = r.data;
  const conv = v.conversation;
  const clocks = (v.sla && v.sla.clocks) || [];
  const running = clocks.find((c) => !c.stopped_at) || clocks[0];
  const history = conv.customer_id ? await api('GET', `/customers/${enc(conv.customer_id)}`) : null;
  const actions = conversationActions(conv);
  const others = history && history.ok ? otherConversations(history.data, conv.id) : null;
  const earlier = history && history.ok ? await customerHistory(history.data, conv.id) : null;
  show(
    h('h1', {}, `Conversation ${conv.conversation_key}`),
    h('div', { class: 'row' },
      h('span', { class: 'chip' }, conv.channel), h('span', { class: 'chip', id: 'conv-state' }, conv.state),
      conv.team ? h('span', { class: 'chip' }, `team ${conv.team}`) : '',
      h('span', { class: 'chip', id: 'holder' }, conv.assignee ? `held by ${conv.assignee}` : 'unassigned'),
      conv.escalated ? h('span', { class: 'chip' }, 'escalated') : '',
      conv.incident ? h('span', { class: 'chip' }, `incident ${conv.incident}`) : '',
      clockChip(running)),
    conv.close_publicly ? h('p', { class: 'status' }, conv.close_publicly) : '',
    h('div', { class: 'cols' },
      h('section', { 'aria-label': 'Messages' }, earlier, v.messages.map((m) => messageCard(m, conv))),
      h('aside', {}, actions, others)),
  );
  view().focus({ preventScroll: true });
}

function otherConversations(customer, current) {
  const list = (customer.conversations || []).filter((c) => c.id !== current);
  const ids = (customer.identities || []).map((i) => `${i.channel}: ${i.display_name || i.handle || i.author_id}`);
  return h('div', { class: 'card' }, h('h2', {}, 'Customer'),
    ids.length ? h('p', {}, ids.join(' · ')) : '',
    list.length
      ? h('ul', {}, list.map((c) => h('li', {}, h('a', { href: `#/c/${enc(c.id)}` }, `${c.channel} ${c.conversation_key || ''}`), ` ${c.state || ''}`)))
      : h('p', { class: 'status' }, 'No other conversations with this customer.'));
}

/** The most recent other conversations a conversation view reads the customer's history from. */
const HISTORY_CONVERSATIONS = 5;

/** The customer's messages in their other conversations (any channel), oldest first, read
 * only: the context an agent needs before answering, each linked to its conversation. */
async function customerHistory(customer, current) {
  const others = (customer.conversations || []).filter((c) => c.id !== current).slice(0, HISTORY_CONVERSATIONS);
  if (!others.length) return null;
  const views = await Promise.all(others.map((c) => api('GET', `/conversations/${enc(c.id)}`)));
  const items = [];
  views.forEach((r, i) => {
    if (!r.ok) return;
    for (const m of r.data.messages || []) items.push({ conv: others[i], m });
  });
  items.sort((a, b) => a.m.message.received_at - b.m.message.received_at);
  return h('details', { class: 'card history', id: 'history', open: true },
    h('summary', {}, `Earlier with this customer (${items.length} message${items.length === 1 ? '' : 's'} in ${others.length} other conversation${others.length === 1 ? '' : 's'})`),
    items.map(({ conv, m }) => h('article', { class: 'msg past', 'data-message': m.id },
      h('div', { class: 'meta' }, `${m.message.channel} · ${when(m.message.received_at)} · `,
        h('a', { href: `#/c/${enc(conv.id)}` }, `conversation ${conv.conversation_key || conv.id}`)),
      h('p', { class: 'text' }, m.message.text || ''),
      h('div', { class: 'labels' }, (m.labels || []).filter((l) => l.score >= 0.5).map((l) => h('span', { class: 'chip' }, l.name))))));
}

function conversationActions(conv) {
  const done = async (r, okText) => {
    if (r.ok) { await conversationView(conv.id); banner(okText, true); } else banner(r.data.error);
  };
  const assignee = h('input', { id: 'assign-to', 'aria-label': 'Assign to', placeholder: 'agent name', size: 12 });
  const reason = h('input', { id: 'escalate-reason', 'aria-label': 'Why a supervisor is needed', placeholder: 'why a supervisor is needed' });
  const question = h('input', { id: 'ask-question', 'aria-label': 'Question for an expert', placeholder: 'question for an expert' });
  return h('div', { class: 'card', id: 'actions' }, h('h2', {}, 'Actions'),
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'take', onclick: async () => done(await api('POST', `/conversations/${enc(conv.id)}/assign`, { agent: state.me.name }), 'Assigned to you.') }, 'Take it'),
      assignee,
      h('button', { type: 'button', id: 'assign', onclick: async () => done(await api('POST', `/conversations/${enc(conv.id)}/assign`, { agent: assignee.value.trim() || null }), 'Assignment changed.') }, 'Assign')),
    h('div', { class: 'row' }, question,
      h('button', { type: 'button', id: 'ask', onclick: async () => done(await api('POST', `/conversations/${enc(conv.id)}/expert-requests`, { question: question.value }), 'Expert asked.') }, 'Ask an expert')),
    h('div', { class: 'row' }, reason,
      h('button', { type: 'button', id: 'escalate', disabled: conv.escalated, onclick: async () =>
        done(await api('POST', `/conversations/${enc(conv.id)}/escalate`, { reason: reason.value }), 'Escalated: its drafts now need a supervisor.') }, 'Escalate')),
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'take-private', disabled: conv.state !== 'open', onclick: async () =>
        done(await api('POST', `/conversations/${enc(conv.id)}/take-private`), 'Taken private: answer in a private message.') }, 'Take private'),
      h('button', { type: 'button', id: 'resolve', onclick: async () => {
        const r = await api('POST', `/conversations/${enc(conv.id)}/resolve`);
        done(r, r.ok && r.data.survey ? 'Resolved; the satisfaction survey is queued.' : 'Resolved.');
      } }, 'Resolve (send survey)')));
}

function messageCard(m, conv) {
  const msg = m.message;
  const author = msg.author || {};
  const spans = [];
  for (const l of m.labels) {
    if (l.score < 0.5) continue;
    for (const e of l.evidence || []) if (e.span) spans.push({ start: e.span.start, end: e.span.end, note: `${l.name}: ${e.note}` });
  }
  const fired = (m.decision && m.decision.fired) || [];
  return h('article', { class: 'msg', 'data-message': m.id },
    h('div', { class: 'meta' }, `${author.display_name || author.handle || author.id || 'customer'} `,
      author.handle && author.display_name ? `${author.handle} ` : '', `· ${msg.channel} · ${msg.visibility || ''} · ${when(msg.received_at)}`),
    h('p', { class: 'text' }, marked(msg.text || '', spans, () => 'evidence')),
    h('div', { class: 'labels' }, m.labels.filter((l) => l.score >= 0.5).map((l) =>
      h('span', { class: 'chip', title: (l.evidence || []).map((e) => e.note).join('; ') + ` (${l.plugin})` }, `${l.name} ${l.score.toFixed(2)}`))),
    fired.length
      ? fired.map((f) => h('div', { class: 'decision' },
        h('strong', {}, (f.actions || []).map((a) => a.action).join(', ') || 'no action'), ' — rule ', h('code', { class: 'rule' }, f.rule),
        f.why ? h('div', { class: 'why' }, f.why) : '',
        h('details', {}, h('summary', {}, 'condition and values read'), h('code', {}, f.when), h('pre', {}, JSON.stringify(f.read, null, 1)))))
      : m.decision ? h('div', { class: 'decision' }, 'No rule fired: the policy default applied.') : '',
    (m.drafts || []).map((d) => draftCard(d, conv)),
    (m.replies || []).map((r) => h('div', { class: 'status' }, `Reply ${r.status}${r.last_error ? ` (${r.last_error})` : ''}: `, h('span', {}, r.reply && r.reply.text ? r.reply.text : ''))),
  );
}

function findingList(findings) {
  if (!findings || !findings.length) return h('p', { class: 'status passes' }, 'Guards: nothing found.');
  return h('ul', { class: 'findings' }, findings.map((f) =>
    h('li', { class: f.severity === 'block' ? 'block' : 'warn' }, `${f.severity === 'block' ? 'Blocks sending' : 'Warning'} · ${f.guard}: ${f.reason}`)));
}

function draftPreview(text, findings) {
  const ranges = (findings || []).filter((f) => f.span).map((f) => ({ start: f.span[0], end: f.span[1], note: `${f.guard}: ${f.reason}`, severity: f.severity }));
  return h('div', { class: 'preview' }, marked(text, ranges, (r) => `finding ${r.severity === 'block' ? 'block' : 'warn'}`));
}

function counter(length, limit) {
  return h('span', { class: `counter${limit && length > limit ? ' over' : ''}` }, limit ? `${length} / ${limit}` : `${length}`);
}

function draftCard(d, conv, after = () => conversationView(conv.id)) {
  const editable = d.status === 'proposed' || d.status === 'approved';
  const blocked = (d.findings || []).some((f) => f.severity === 'block');
  const box = h('div', { class: 'draft', 'data-draft': d.id, 'data-status': d.status },
    h('div', { class: 'row' }, h('strong', {}, d.purpose), h('span', { class: 'status' }, ` by ${d.suggester} · ${d.visibility} · ${d.status}`),
      d.rationale ? h('span', { class: 'status' }, ` · ${d.rationale}`) : ''),
  );
  const preview = h('div', { class: 'preview-wrap' }, draftPreview(d.text, d.findings));
  const findings = h('div', { class: 'findings-wrap' }, findingList(d.findings));
  const count = h('span', { class: 'count-wrap' }, counter(d.length ?? d.text.length, d.length_limit));
  box.append(preview, findings, h('div', { class: 'status' }, 'Length ', count));
  if (!editable) return box;
  const area = h('textarea', { 'aria-label': 'Draft text', class: 'draft-text' }, d.text);
  const send = h('button', { type: 'button', class: 'primary send', disabled: blocked }, 'Send');
  const save = h('button', { type: 'button', class: 'save' }, 'Save edit');
  let timer = null;
  let seq = 0;
  // Guards re-run as the agent types (without saving), through the same check an edit runs.
  area.addEventListener('input', () => {
    clearTimeout(timer);
    send.disabled = true;
    timer = setTimeout(async () => {
      const mine = ++seq;
      const text = area.value;
      if (!text.trim()) return;
      const r = await api('POST', `/drafts/${enc(d.id)}/check`, { text });
      if (mine !== seq || !r.ok) return;
      preview.replaceChildren(draftPreview(text, r.data.findings));
      findings.replaceChildren(findingList(r.data.findings));
      count.replaceChildren(counter(r.data.length ?? text.length, d.length_limit));
      box.dataset.checked = r.data.blocked ? 'blocked' : 'passes';
    }, 300);
  });
  save.addEventListener('click', async () => {
    const r = await api('POST', `/drafts/${enc(d.id)}/edit`, { text: area.value });
    if (!r.ok) { banner(r.data.error); return; }
    await after();
    banner(r.data.blocked ? 'Saved; a guard still blocks this draft.' : 'Saved.', !r.data.blocked);
  });
  send.addEventListener('click', async () => {
    if (area.value !== d.text) { banner('Save the edit before sending.'); return; }
    const r = await api('POST', `/drafts/${enc(d.id)}/send`);
    if (!r.ok) { banner(r.data.error); return; }
    await after();
    banner('Queued for sending.', true);
  });
  const reason = h('input', { 'aria-label': 'Reason to reject', placeholder: 'reason', class: 'reject-reason', size: 14 });
  const reject = h('button', { type: 'button', class: 'reject' }, 'Reject');
  reject.addEventListener('click', async () => {
    const r = await api('POST', `/drafts/${enc(d.id)}/reject`, { reason: reason.value });
    if (!r.ok) { banner(r.data.error); return; }
    await after();
    banner('Rejected.', true);
  });
  const row = h('div', { class: 'row' }, save, send, reason, reject);
  if (atLeast('supervisor')) row.append(approveButton(d, after));
  box.append(area, row);
  return box;
}

function approveButton(d, after) {
  const b = h('button', { type: 'button', class: 'approve' }, 'Approve');
  b.addEventListener('click', async () => {
    const r = await api('POST', `/drafts/${enc(d.id)}/approve`);
    if (!r.ok) { banner(r.data.error); return; }
    await after();
    banner(r.data.status === 'approved' ? 'Approved: it can be sent.' : 'Approved this tier; the next tier signs off next.', true);
  });
  return b;
}

// ---- sign-off queue -------------------------------------------------------------------------

async function signoffView() {
  chrome('signoff');
  const queue = await api('GET', '/signoff-queue');
  if (!queue.ok) { show(h('h1', {}, 'Sign-off'), h('p', { class: 'empty' }, queue.data.error)); return; }
  const byConversation = new Map();
  for (const q of queue.data.drafts) {
    if (!byConversation.has(q.conversation)) byConversation.set(q.conversation, new Map());
    byConversation.get(q.conversation).set(q.draft, q.signoff);
  }
  const cards = [];
  for (const [cid, drafts] of byConversation) {
    const r = await api('GET', `/conversations/${enc(cid)}`);
    if (!r.ok) continue;
    const conv = r.data.conversation;
    for (const m of r.data.messages) {
      for (const d of m.drafts || []) {
        const so = drafts.get(d.id);
        if (!so) continue;
        cards.push(h('div', { class: 'card', 'data-signoff': d.id },
          h('div', { class: 'row' }, h('a', { href: `#/c/${enc(cid)}` }, `Conversation ${conv.conversation_key}`),
            h('span', { class: 'status' }, ` ${d.purpose} by ${d.suggester} · needs ${so.required.join(', then ')} · ${so.approved} of ${so.required.length} approved`)),
          h('p', { class: 'status' }, 'Customer: ', h('span', {}, m.message.text)),
          draftCard(d, { id: cid }, signoffView)));
      }
    }
  }
  show(h('h1', {}, 'Sign-off'),
    h('p', { class: 'status' }, 'Drafts that need a sign-off before they go out (escalated conversations, expert answers, incident statements, new agents). Editing one restarts its sign-off; the author of a text never approves it.'),
    cards.length ? cards : h('p', { class: 'empty' }, 'Nothing waits for sign-off.'));
}

// ---- incidents, reports, plugins, audit ----------------------------------------------------

function barChart(pairs, title) {
  const max = Math.max(1, ...pairs.map(([, v]) => v));
  const w = 560; const row = 22;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'chart'); svg.setAttribute('viewBox', `0 0 ${w} ${row * pairs.length + 4}`);
  svg.setAttribute('width', w); svg.setAttribute('height', row * pairs.length + 4);
  svg.setAttribute('role', 'img'); svg.setAttribute('aria-label', title);
  pairs.forEach(([k, v], i) => {
    const t = document.createElementNS(svg.namespaceURI, 'text');
    t.setAttribute('x', 0); t.setAttribute('y', i * row + 15); t.textContent = k;
    const r = document.createElementNS(svg.namespaceURI, 'rect');
    r.setAttribute('x', 180); r.setAttribute('y', i * row + 4); r.setAttribute('height', 14);
    r.setAttribute('width', Math.max(1, (v / max) * (w - 240)));
    const n = document.createElementNS(svg.namespaceURI, 'text');
    n.setAttribute('x', 186 + (v / max) * (w - 240)); n.setAttribute('y', i * row + 15); n.textContent = String(v);
    svg.append(t, r, n);
  });
  return h('figure', { class: 'card' }, h('figcaption', {}, h('strong', {}, title)), svg,
    h('details', {}, h('summary', {}, 'numbers'), h('table', {}, pairs.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, String(v)))))));
}


async function incidentsView(id) {
  chrome('incidents');
  if (id) return incidentView(id);
  const r = await api('GET', '/incidents');
  if (!r.ok) { show(h('h1', {}, 'Incidents'), h('p', { class: 'empty' }, r.data.error)); return; }
  const list = (r.data.incidents || []).filter((i) => i.status !== 'merged');
  show(h('h1', {}, 'Incidents'), list.length
    ? h('table', {}, h('thead', {}, h('tr', {}, ['Incident', 'Status', 'Reports', 'Opened', 'By'].map((t) => h('th', {}, t)))),
      h('tbody', {}, list.map((i) => h('tr', { 'data-incident': i.id },
        h('td', {}, h('a', { href: `#/incidents/${enc(i.id)}` }, i.title || i.group_key || i.id)),
        h('td', {}, i.status), h('td', {}, String(i.conversations)), h('td', {}, when(i.opened_at)), h('td', {}, i.opened_by)))))
    : h('p', { class: 'empty' }, 'No incidents. Bursts of reports about one problem open one here.'));
}

// Reports attached per hour: how the incident grew.
function overTime(times) {
  const buckets = new Map();
  for (const t of times.filter(Boolean).sort((a, b) => a - b)) {
    const hour = new Date(t); hour.setMinutes(0, 0, 0);
    const k = hour.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
    buckets.set(k, (buckets.get(k) || 0) + 1);
  }
  return [...buckets.entries()];
}

async function incidentView(id) {
  const r = await api('GET', `/incidents/${enc(id)}`);
  if (!r.ok) { show(h('h1', {}, 'Incident'), h('p', { class: 'empty', id: 'not-found' }, r.data.error)); return; }
  const { incident, conversations, statement } = r.data;
  const again = () => incidentView(id);
  const done = async (res, text) => { if (res.ok) { await again(); banner(text, true); } else banner(res.data.error); };
  const attach = h('input', { 'aria-label': 'Conversations to attach', placeholder: 'conversation ids or keys, comma-separated', size: 30 });
  const into = h('input', { 'aria-label': 'Merge into incident', placeholder: 'incident id', size: 30 });
  show(
    h('h1', {}, incident.title || incident.id),
    h('p', { class: 'status' }, `${incident.status} · opened ${when(incident.opened_at)} by ${incident.opened_by}`,
      incident.closed_at ? ` · closed ${when(incident.closed_at)} by ${incident.closed_by}` : ''),
    barChart(overTime((conversations || []).map((c) => c.attached_at)), 'Reports over time (per hour)'),
    h('div', { class: 'card' }, h('h2', {}, 'Statement'),
      statement && statement.id && typeof statement.text === 'string' ? draftCard(statement, { id: conversations[0] && conversations[0].conversation_id }, again)
        : h('p', { class: 'status' }, 'No statement drafted yet.')),
    h('div', { class: 'card' }, h('h2', {}, `Affected conversations (${(conversations || []).length})`),
      h('ul', {}, (conversations || []).map((c) => h('li', {}, h('a', { href: `#/c/${enc(c.conversation_id)}` }, `${c.channel} ${c.conversation_key}`), ` · ${c.state} · attached ${when(c.attached_at)}`)))),
    incident.status === 'open' ? h('div', { class: 'card' }, h('h2', {}, 'Change'),
      h('div', { class: 'row' }, attach, h('button', { type: 'button', onclick: async () =>
        done(await api('POST', `/incidents/${enc(id)}/attach`, { conversations: attach.value.split(',').map((x) => x.trim()).filter(Boolean) }), 'Attached.') }, 'Attach')),
      h('div', { class: 'row' }, into, h('button', { type: 'button', onclick: async () =>
        done(await api('POST', `/incidents/${enc(id)}/merge`, { into: into.value.trim() }), 'Merged.') }, 'Merge into')),
      h('div', { class: 'row' }, h('button', { type: 'button', class: 'primary', onclick: async () =>
        done(await api('POST', `/incidents/${enc(id)}/close`, {}), 'Closed: the follow-up goes to every affected customer.') }, 'Close and send the follow-up'))) : '',
  );
}

const entries = (o, f = (v) => v) => Object.entries(o || {}).map(([k, v]) => [k, f(v)]).filter(([, v]) => Number.isFinite(v));

async function reportsView() {
  chrome('reports');
  const r = await api('GET', '/report');
  if (!r.ok) { show(h('h1', {}, 'Reports'), h('p', { class: 'empty' }, r.data.error)); return; }
  const rep = r.data;
  const sl = rep.service_levels || {};
  const avg = (v) => (v && typeof v === 'object' ? Number(v.average) : Number(v));
  const charts = [
    ['Messages per channel', entries(rep.volumes)],
    ['Decisions', entries(rep.decisions)],
    ['Service level (first and next responses)', [['met internal target', sl.met_internal], ['met published target', sl.met_published],
      ['internal target breached', sl.internal_breaches], ['published target breached', sl.published_breaches], ['still waiting', sl.pending]]
      .filter(([, v]) => Number.isFinite(v))],
    ['Top topics', (rep.top_topics || []).map(([k, v]) => [k, v])],
    ['Rising keywords (this period)', (rep.rising_keywords || []).map((k) => [`${k.word} (was ${k.previous})`, k.count])],
    ['Satisfaction per agent (average, 1-5)', entries(rep.satisfaction && rep.satisfaction.by_agent, avg)],
    ['Satisfaction per team (average, 1-5)', entries(rep.satisfaction && rep.satisfaction.by_team, avg)],
    ['Satisfaction per channel (average, 1-5)', entries(rep.satisfaction && rep.satisfaction.by_channel, avg)],
  ];
  show(h('h1', {}, `Reports: ${when(rep.since)} – ${when(rep.until)}`),
    charts.map(([title, pairs]) => pairs.length ? barChart(pairs, title) : h('div', { class: 'card' }, h('strong', {}, title), h('p', { class: 'status' }, 'Nothing in this period.'))),
    h('details', {}, h('summary', {}, 'all numbers (JSON)'), h('pre', {}, JSON.stringify(rep, null, 1))));
}

async function pluginsView() {
  chrome('plugins');
  const [r, people, shadow] = await Promise.all([api('GET', '/plugins'), api('GET', '/tokens'), api('GET', '/shadow-report')]);
  if (!r.ok) { show(h('h1', {}, 'Plugins'), h('p', { class: 'empty' }, r.data.error)); return; }
  const list = r.data.instances || [];
  show(h('h1', {}, 'Plugins'),
    h('p', { class: 'status' }, `Configuration generation ${r.data.generation}.`),
    list.length
      ? h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, ['Instance', 'Role', 'Plugin', 'Version', 'Digest', 'Swap (pin a stored version)'].map((t) => h('th', {}, t)))),
        h('tbody', {}, list.map((p) => h('tr', { 'data-instance': p.instance }, h('td', {}, p.instance), h('td', {}, p.role), h('td', {}, p.plugin),
          h('td', {}, p.version), h('td', {}, h('code', { title: p.digest }, (p.digest || '').slice(0, 16))), h('td', {}, swapForm(p)))))))
      : h('p', { class: 'empty' }, 'No plugins.'),
    shadowCard(shadow),
    peopleCard(people));
}

// Shadow classifiers against the live ones they would replace: read before promoting one.
function shadowCard(r) {
  if (!r.ok) return '';
  const list = r.data.shadows || [];
  return h('div', { class: 'card', id: 'shadow-report' }, h('h2', {}, 'Shadow report'),
    list.length ? list.map((c) => h('div', { 'data-shadow': c.shadow },
      h('h3', {}, `${c.shadow} in place of ${c.live}`),
      h('p', {}, `Agreement ${(c.agreement * 100).toFixed(1)}% on ${c.messages} messages; ${c.decisions_changed} decision(s) would change.`),
      h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, ['Label', 'both', `${c.live} only`, `${c.shadow} only`].map((t) => h('th', {}, t)))),
        h('tbody', {}, Object.entries(c.confusion || {}).map(([label, [both, live, sh]]) => h('tr', {}, h('td', {}, label), h('td', {}, String(both)), h('td', {}, String(live)), h('td', {}, String(sh))))))),
      Object.keys(c.decision_changes || {}).length
        ? h('ul', {}, Object.entries(c.decision_changes).map(([change, n]) => h('li', {}, `${change}: ${n}`)))
        : h('p', { class: 'status' }, 'No decision would change.')))
      : h('p', { class: 'status' }, 'No shadow classifier runs. Add one under [[shadow_classifiers]] with replaces = "<live classifier>" to compare it on real traffic before swapping.'));
}

// Pin an instance to a stored plugin version by digest (same route as the API's pin).
function swapForm(p) {
  const plugin = h('input', { 'aria-label': `Plugin for ${p.instance}`, placeholder: p.plugin, size: 14 });
  const digest = h('input', { 'aria-label': `Digest for ${p.instance}`, placeholder: 'sha256 digest', size: 18 });
  const body = () => {
    const b = { digest: digest.value.trim() || null };
    if (plugin.value.trim()) b.plugin = plugin.value.trim();
    return b;
  };
  const pin = h('button', { type: 'button' }, 'Pin');
  pin.addEventListener('click', async () => {
    const r = await api('PUT', `/plugins/${enc(p.instance)}`, body());
    if (!r.ok) { banner(r.data.error); return; }
    await pluginsView();
    banner(`${p.instance} now runs ${r.data.plugin} (generation ${r.data.generation}).`, true);
  });
  // What the swap would change on recent traffic, before anyone promotes it.
  const result = h('div', { class: 'replay' });
  const replay = h('button', { type: 'button', class: 'replay-swap' }, 'Replay first');
  replay.addEventListener('click', async () => {
    replay.disabled = true;
    result.replaceChildren(h('p', { class: 'status' }, 'Replaying recent traffic…'));
    const r = await api('POST', `/plugins/${enc(p.instance)}/replay`, body());
    replay.disabled = false;
    result.replaceChildren(r.ok ? replayReport(r.data.replay) : h('p', { class: 'error' }, r.data.error));
  });
  return h('div', {}, h('div', { class: 'row' }, plugin, digest, replay, pin), result);
}

/** A replay's totals, then each message that would change, current against candidate. */
function replayReport(rep) {
  const side = (s) => `${s.decision || 'no decision'} · ${Object.entries(s.labels || {}).filter(([, v]) => v >= 0.5).map(([k]) => k).join(', ') || 'no labels'}`;
  return h('div', { class: 'card', id: 'replay-report' },
    h('p', {}, `${rep.messages} recent message(s) replayed: labels change on ${rep.labels_changed}, decisions on ${rep.decisions_changed}, drafts on ${rep.drafts_changed}.`),
    Object.keys(rep.decision_changes || {}).length
      ? h('ul', {}, Object.entries(rep.decision_changes).map(([k, n]) => h('li', {}, `${k}: ${n}`)))
      : '',
    rep.diffs.length
      ? h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, ['Message', 'Now', 'With the swap'].map((t) => h('th', {}, t)))),
        h('tbody', {}, rep.diffs.map((d) => h('tr', { class: 'replay-diff' },
          h('td', {}, d.text), h('td', {}, side(d.current)),
          h('td', {}, side(d.candidate), d.candidate_errors.length ? h('div', { class: 'error' }, d.candidate_errors.join('; ')) : ''))))))
      : h('p', { class: 'status' }, 'Nothing would change.'));
}

// Personal keys: an admin makes one per person; it is shown once, here, to hand over.
function peopleCard(r) {
  if (!r.ok) return '';
  const name = h('input', { 'aria-label': 'Name', placeholder: 'name', size: 12 });
  const role = h('select', { 'aria-label': 'Role' }, ['agent', 'supervisor', 'admin'].map((x) => h('option', { value: x }, x)));
  const out = h('p', { class: 'status', id: 'new-key', 'aria-live': 'polite' });
  const create = h('button', { type: 'button' }, 'Create a personal key');
  create.addEventListener('click', async () => {
    const res = await api('POST', '/tokens', { role: role.value, name: name.value.trim() });
    if (!res.ok) { banner(res.data.error); return; }
    out.replaceChildren(`Key for ${res.data.name} (${res.data.role}), shown only now: `, h('code', {}, res.data.token));
  });
  return h('div', { class: 'card' }, h('h2', {}, 'People'),
    h('table', {}, h('tbody', {}, (r.data.tokens || []).map((t) => h('tr', {}, h('td', {}, t.name), h('td', {}, t.role), h('td', {}, when(t.created_at)))))),
    h('div', { class: 'row' }, name, role, create), out);
}

async function auditView() {
  chrome('audit');
  const r = await api('GET', '/audit?limit=200');
  if (!r.ok) { show(h('h1', {}, 'Audit log'), h('p', { class: 'empty' }, r.data.error)); return; }
  const rows = r.data.audit || [];
  show(h('h1', {}, 'Audit log'), rows.length
    ? h('table', {}, h('thead', {}, h('tr', {}, ['When', 'Who', 'What', 'Subject'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows.map((a) => h('tr', {}, h('td', {}, when(a.at)), h('td', {}, a.actor), h('td', {}, a.action), h('td', {}, h('code', {}, a.subject || ''))))))
    : h('p', { class: 'empty' }, 'Nothing recorded yet.'));
}

// ---- routing ------------------------------------------------------------------------------

async function route() {
  if (!state.me) {
    const r = await call('GET', '/console/session');
    if (r.ok) state.me = r.data;
  }
  if (!state.me) { signInView(); return; }
  const [, page, arg] = (location.hash || '').split('/');
  switch (page) {
    case 'c': return conversationView(decodeURIComponent(arg || ''));
    case 'signoff': return signoffView();
    case 'incidents': return incidentsView(arg ? decodeURIComponent(arg) : null);
    case 'reports': return reportsView();
    case 'plugins': return pluginsView();
    case 'audit': return auditView();
    default: return inboxView();
  }
}

// Clock states change with time alone (warning, breached): look again every half minute.
setInterval(() => {
  if (state.me && (location.hash || '').split('/')[1] === 'inbox' && document.activeElement?.tagName !== 'SELECT') inboxView(true);
}, 30000);

// Running clocks count down every second between the server's updates (which set the state).
setInterval(() => {
  for (const c of document.querySelectorAll('.clock[data-due-at]')) {
    c.textContent = `${c.dataset.label} · ${duration(Number(c.dataset.dueAt) - Date.now())}`;
  }
}, 1000);

window.addEventListener('hashchange', () => { banner(''); route(); });
document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('sign-out').addEventListener('click', signOut);
  route();
});
