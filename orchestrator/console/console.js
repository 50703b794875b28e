/* zsaga console: one page, no build step. Speaks the client protocol as
   JSON through POST /api with the console token `zsaga login` printed. */
'use strict';

const $ = (sel) => document.querySelector(sel);
const SVGNS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, ...kids) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

/* ---- the token: from the URL zsaga login printed, then the session ---- */
/* #token=T opens the saga list; #/saga/ID&token=T opens that saga. The
   token leaves the address bar at once (and never reaches the server in
   a URL: the part after # is not sent). */
(function takeToken() {
  const m = location.hash.match(/token=([0-9a-f]{64})/);
  if (m) {
    sessionStorage.setItem('zsaga-token', m[1]);
    const rest = location.hash.replace(/[#&]?token=[0-9a-f]{64}/, '');
    history.replaceState(null, '', location.pathname + (rest.startsWith('#/') ? rest : '#/'));
  }
})();

async function api(req) {
  const headers = { 'Content-Type': 'application/json' };
  const t = sessionStorage.getItem('zsaga-token');
  if (t) headers.Authorization = 'Bearer ' + t;
  const r = await fetch('/api', { method: 'POST', headers, body: JSON.stringify(req) });
  const j = await r.json();
  if (j.type === 'error' || j.type === 'rejected') throw new Error(j.code + ': ' + j.reason);
  return j;
}

function when(ms) {
  return ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', '') : '';
}
function stateTag(s) {
  return el('span', { class: 'state s-' + s, text: s });
}
function setStatus(text, error) {
  const f = $('#status');
  f.textContent = text;
  f.className = error ? 'error' : '';
}

/* ---- saga list ---- */
const listView = { state: '', q: '', cursors: [''] };

async function showList() {
  const main = $('#main');
  const stateSel = el('select', { id: 'state-filter', onchange: (e) => { listView.state = e.target.value; listView.cursors = ['']; route(); } },
    ...['', 'running', 'compensating', 'completed', 'compensated', 'parked', 'resolved'].map((s) => {
      const o = el('option', { value: s, text: s || 'all states' });
      if (s === listView.state) o.selected = true;
      return o;
    }));
  const search = el('input', { id: 'search', placeholder: 'saga id or name', value: listView.q });
  const go = el('button', { text: 'Search', onclick: () => {
    const q = search.value.trim();
    listView.q = q;
    if (q && /^[A-Za-z0-9._:-]+$/.test(q)) {
      api({ type: 'status', id: q }).then(() => { location.hash = '#/saga/' + encodeURIComponent(q); })
        .catch(() => route()); /* not an id: filter this page by name */
    } else route();
  } });
  const cursor = listView.cursors[listView.cursors.length - 1];
  const req = { type: 'list', limit: 50 };
  if (listView.state) req.state = listView.state;
  if (cursor) req.cursor = cursor;
  const r = await api(req);
  const rows = r.sagas.filter((s) => s && (!listView.q || s.name.includes(listView.q) || s.id.includes(listView.q)));
  const table = el('table', { id: 'sagas' },
    el('tr', {}, ...['id', 'name', 'state', 'steps', 'created', 'updated', 'reason'].map((h) => el('th', { text: h }))),
    ...rows.map((s) => el('tr', { 'data-id': s.id },
      el('td', {}, el('a', { href: '#/saga/' + encodeURIComponent(s.id), text: s.id })),
      el('td', { text: s.name }), el('td', {}, stateTag(s.state)), el('td', { text: s.steps }),
      el('td', { text: when(s.created_ms) }), el('td', { text: when(s.updated_ms) }),
      el('td', { text: s.reason || '' }))));
  const prev = el('button', { text: '← newer', onclick: () => { listView.cursors.pop(); route(); } });
  prev.disabled = listView.cursors.length < 2;
  const next = el('button', { text: 'older →', onclick: () => { listView.cursors.push(r.next); route(); } });
  next.disabled = !r.next;
  main.replaceChildren(el('h2', { text: 'Sagas' }), el('div', { class: 'controls' }, stateSel, search, go, prev, next), table);
}

/* ---- one saga: graph and timeline ---- */
function levels(steps) {
  const idx = Object.fromEntries(steps.map((s, i) => [s.id, i]));
  const lv = steps.map(() => -1);
  const depth = (i, seen) => {
    if (lv[i] >= 0) return lv[i];
    if (seen.has(i)) return 0;
    seen.add(i);
    lv[i] = Math.max(0, ...(steps[i].deps || []).map((d) => depth(idx[d], seen) + 1));
    return lv[i];
  };
  steps.forEach((_, i) => depth(i, new Set()));
  return lv;
}

function graph(saga) {
  const steps = saga.steps, lv = levels(steps), rowAt = {}, pos = [];
  const W = 240, H = 46, GX = 40, GY = 14;
  steps.forEach((s, i) => { const r = rowAt[lv[i]] = (rowAt[lv[i]] || 0) + 1; pos[i] = [lv[i] * (W + GX), (r - 1) * (H + GY)]; });
  const width = (Math.max(...lv) + 1) * (W + GX), height = Math.max(...Object.values(rowAt)) * (H + GY);
  const svg = el('svg:svg', { id: 'graph', width, height, viewBox: `0 0 ${width} ${height}` },
    el('svg:defs', {}, el('svg:marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto' },
      el('svg:path', { d: 'M0,0 L10,5 L0,10 z' }))));
  const idx = Object.fromEntries(steps.map((s, i) => [s.id, i]));
  steps.forEach((s, i) => (s.deps || []).forEach((d) => {
    const [x1, y1] = pos[idx[d]], [x2, y2] = pos[i];
    svg.append(el('svg:path', { class: 'graph-edge', d: `M${x1 + W},${y1 + H / 2} C${x1 + W + GX / 2},${y1 + H / 2} ${x2 - GX / 2},${y2 + H / 2} ${x2},${y2 + H / 2}` }));
  }));
  /* Text that would leave its box is cut; the whole of it is the tooltip. */
  const fit = (t) => (t.length > 31 ? t.slice(0, 30) + '…' : t);
  steps.forEach((s, i) => {
    const [x, y] = pos[i];
    svg.append(el('svg:g', { class: 'graph-node s-' + s.state, 'data-step': s.id, transform: `translate(${x},${y})` },
      el('svg:title', { text: `${s.id}: ${s.system}.${s.action}${s.compensation ? ' / ' + s.compensation : ''} (${s.state})` }),
      el('svg:rect', { width: W, height: H, rx: 4 }),
      el('svg:text', { x: 8, y: 18, text: fit(`${s.id} · ${s.state}`) }),
      el('svg:text', { x: 8, y: 36, text: fit(`${s.system}.${s.action}`) })));
  });
  return svg;
}

/* Bars from the history: a dispatch opens one, its result closes it. */
function bars(saga) {
  const open = {}, out = [];
  const close = (key, h, outcome) => {
    let b = open[key];
    if (!b) { /* nothing ran: e.g. no compensation declared */
      b = { step: h.step, phase: key.endsWith('/c') ? 'compensation' : 'action', start: h.ts_ms, attempt: h.attempt, worker: '', seq: h.seq };
      out.push(b);
    }
    b.end = h.ts_ms;
    b.outcome = outcome;
    b.note = h.reason || '';
    delete open[key];
  };
  for (const h of saga.history) {
    if (!h.step) continue;
    const what = h.what.split('.')[1];
    if (what === 'dispatched' || what === 'compensating') {
      const key = h.step + (what === 'dispatched' ? '/a' : '/c');
      const b = { step: h.step, phase: what === 'dispatched' ? 'action' : 'compensation', start: h.ts_ms, attempt: h.attempt, worker: h.reason || '', seq: h.seq };
      open[key] = b;
      out.push(b);
    } else if (['succeeded', 'failed', 'retrying', 'timed_out', 'reassigned'].includes(what)) close(h.step + '/a', h, what);
    else if (what.startsWith('compensat')) close(h.step + '/c', h, what);
  }
  const now = Date.now();
  for (const b of Object.values(open)) { b.end = now; b.outcome = 'running'; }
  out.sort((a, b) => a.start - b.start || a.seq - b.seq);
  return out;
}

function timeline(saga) {
  const bs = bars(saga);
  const t0 = saga.created_ms, t1 = Math.max(saga.updated_ms, ...bs.map((b) => b.end), t0 + 1);
  const LW = 330, W = 560, RH = 22, width = LW + W + 60, height = bs.length * RH + 30;
  const x = (t) => LW + ((t - t0) / (t1 - t0)) * W;
  const svg = el('svg:svg', { id: 'timeline', width, height, viewBox: `0 0 ${width} ${height}` });
  for (let k = 0; k <= 4; k++) {
    const t = t0 + ((t1 - t0) * k) / 4;
    svg.append(el('svg:text', { class: 'tl-axis', x: x(t), y: height - 6, text: `+${Math.round(t - t0)} ms` }));
  }
  bs.forEach((b, i) => {
    const y = i * RH + 4, w = Math.max(3, x(b.end) - x(b.start));
    const cls = (b.phase === 'action' ? 'bar-action' : 'bar-compensation') + (b.outcome === 'failed' ? ' failed' : '');
    const label = `${b.step} · ${b.phase} · try ${b.attempt}${b.worker ? ' · ' + b.worker : ''} · ${b.outcome}`;
    svg.append(el('svg:g', { class: 'tl-row', 'data-step': b.step, 'data-phase': b.phase, 'data-outcome': b.outcome },
      el('svg:text', { class: 'tl-label', x: 0, y: y + 14, text: label }),
      el('svg:rect', { class: cls, x: x(b.start), y, width: w, height: RH - 6, rx: 2 },
        el('svg:title', { text: `${label}\n${when(b.start)} → ${when(b.end)}${b.note ? '\n' + b.note : ''}` }))));
  });
  return svg;
}

async function act(type, id) {
  const req = { type, id };
  if (type === 'resolve') {
    const note = prompt('Resolve with a note (what was done by hand):');
    if (!note) return;
    req.reason = note;
  }
  if (type === 'cancel') req.reason = prompt('Reason to cancel:') || 'cancelled from the console';
  try {
    await api(req);
    setStatus(`${type} of ${id}: done`);
  } catch (e) {
    setStatus(`${type} of ${id}: ${e.message}`, true);
  }
  route();
}

async function showSaga(id) {
  const { saga } = await api({ type: 'status', id });
  const actions = el('div', { class: 'controls' });
  if (saga.state === 'running') actions.append(el('button', { id: 'act-cancel', text: 'Cancel', onclick: () => act('cancel', id) }));
  if (saga.state === 'parked') {
    actions.append(el('button', { id: 'act-retry', text: 'Retry compensations', onclick: () => act('retry', id) }));
    actions.append(el('button', { id: 'act-resolve', text: 'Resolve…', onclick: () => act('resolve', id) }));
  }
  const steps = el('table', { id: 'steps' },
    el('tr', {}, ...['step', 'system', 'action / compensation', 'state', 'tries', 'output', 'error'].map((h) => el('th', { text: h }))),
    ...saga.steps.map((s) => el('tr', { 'data-step': s.id },
      el('td', { text: s.id }), el('td', { text: s.system }),
      el('td', { text: `${s.action} / ${s.compensation || '—'}` }), el('td', {}, stateTag(s.state)),
      el('td', { text: `${s.attempts} / ${s.compensation_attempts}` }),
      el('td', {}, Object.keys(s.output || {}).length ? el('pre', { text: JSON.stringify(s.output, null, 1) }) : null),
      el('td', { text: s.code ? `${s.code}: ${s.error || ''}` : '' }))));
  $('#main').replaceChildren(
    el('h2', {}, `Saga ${saga.id} `, stateTag(saga.state)),
    el('p', { text: `${saga.name} · created ${when(saga.created_ms)} · updated ${when(saga.updated_ms)}${saga.reason ? ' · ' + saga.reason : ''}` }),
    actions, el('h3', { text: 'Graph' }), graph(saga),
    el('h3', { text: 'Timeline' }), timeline(saga), el('h3', { text: 'Steps' }), steps);
  document.body.dataset.loaded = 'saga';
  return !['completed', 'compensated', 'resolved', 'parked'].includes(saga.state);
}

/* ---- systems, workers, pools ---- */
function gauge(used, max) {
  const pct = max ? Math.round((100 * used) / max) : 0;
  const g = el('span', { class: 'gauge' + (pct >= 95 ? ' crit' : pct >= 80 ? ' warn' : ''), title: `${used} of ${max} (${pct} %)` }, el('span'));
  g.firstChild.style.width = pct + '%';
  return el('span', {}, g, ` ${used}/${max}`);
}

async function showSystems() {
  const [{ systems }, { stats }] = await Promise.all([api({ type: 'systems' }), api({ type: 'stats' })]);
  const wm = Object.fromEntries((stats.worker_metrics || []).map((w) => [w.instance, w]));
  const rows = [];
  for (const s of systems)
    for (const w of s.workers) {
      const m = (wm[w.instance] || {}).metrics || {};
      rows.push(el('tr', { 'data-instance': w.instance },
        el('td', { text: s.name }), el('td', { text: w.instance }), el('td', { text: w.key }),
        el('td', {}, gauge(w.inflight, w.capacity)), el('td', {}, gauge(m.pool_active || 0, m.pool_max || m.pool_total || 0)),
        el('td', { text: m.pool_waiting ?? '' }), el('td', { text: `${m.steps_ok ?? 0} ok · ${m.steps_failed ?? 0} failed · ${m.steps_retry ?? 0} retry` })));
    }
  $('#main').replaceChildren(el('h2', { text: 'Systems and workers' }),
    el('table', { id: 'workers' }, el('tr', {}, ...['system', 'instance', 'key', 'in flight', 'pool in use', 'waiting', 'steps'].map((h) => el('th', { text: h }))), ...rows),
    el('p', { text: `${systems.length} systems · ${stats.sagas_active} sagas active · ${stats.workers_lost} workers lost since start` }));
}

/* ---- alerts ---- */
async function showAlerts() {
  const { alerts } = await api({ type: 'alerts' });
  $('#main').replaceChildren(el('h2', { text: 'Alerts' }),
    el('table', { id: 'alerts' }, el('tr', {}, ...['rule', 'state', 'level', 'value', 'warning', 'critical', 'since', 'message'].map((h) => el('th', { text: h }))),
      ...alerts.map((a) => el('tr', { 'data-rule': a.rule },
        el('td', { text: a.rule }), el('td', { text: a.state }),
        el('td', { class: a.level ? 'alert-' + a.level : '', text: a.level || '' }),
        el('td', { text: a.value }), el('td', { text: a.warning }), el('td', { text: a.critical }),
        el('td', { text: when(a.since_ms) }), el('td', { text: a.message || '' })))));
}

async function countAlerts() {
  try {
    const { alerts } = await api({ type: 'alerts' });
    const n = alerts.filter((a) => a.state === 'firing').length;
    $('#alert-count').textContent = n ? `(${n})` : '';
  } catch (e) { /* shown by the page itself */ }
}

/* ---- the event stream, from the journal ---- */
async function showEvents() {
  const r = await api({ type: 'events', seq: 0, limit: 1 });
  const from = Math.max(0, r.head - 200);
  const page = await api({ type: 'events', seq: from, limit: 200 });
  $('#main').replaceChildren(el('h2', { text: `Events (newest 200 of ${r.head})` }),
    el('table', { id: 'events' }, el('tr', {}, ...['seq', 'time', 'saga', 'step', 'what', 'try', 'note'].map((h) => el('th', { text: h }))),
      ...page.events.reverse().map((e) => el('tr', {},
        el('td', { text: e.seq }), el('td', { text: when(e.ts_ms) }),
        el('td', {}, el('a', { href: '#/saga/' + encodeURIComponent(e.id), text: e.id })),
        el('td', { text: e.step || '' }), el('td', {}, stateTag(e.state)), el('td', { text: e.attempt || '' }), el('td', { text: e.reason || '' })))));
}

/* ---- routing, and refreshing what is live ---- */
let timer = null;
async function route() {
  clearTimeout(timer);
  const h = location.hash || '#/';
  let live = true;
  try {
    if (h.startsWith('#/saga/')) live = await showSaga(decodeURIComponent(h.slice(7)));
    else if (h === '#/systems') await showSystems();
    else if (h === '#/alerts') await showAlerts();
    else if (h === '#/events') await showEvents();
    else await showList();
    setStatus('updated ' + new Date().toLocaleTimeString());
    countAlerts();
  } catch (e) {
    setStatus(e.message, true);
    if (/unauthorized/.test(e.message))
      $('#main').replaceChildren(el('p', { class: 'error', text: 'Not signed in: run `zsaga login` and open the URL it prints.' }));
  }
  if (live) timer = setTimeout(route, 2000);
}
window.addEventListener('hashchange', route);
route();
