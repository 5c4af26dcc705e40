// Audit: search the trail, a key's usage over time as a chart, and the verification of
// the hash chain and its signed checkpoints.

import * as api from './api.js';
import { h, page, act, badge, time, when, table, facts, field, values } from './ui.js';
import { go } from './app.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function localToIso(v) {
  if (!v) return '';
  const d = new Date(v.endsWith('Z') ? v : `${v}Z`);
  return Number.isNaN(d.getTime()) ? v : d.toISOString();
}

function isoToLocal(v) {
  return v ? v.replace(/\.\d+Z$/, '').replace(/Z$/, '').slice(0, 16) : '';
}

/** An SVG bar chart of usage buckets, with the same numbers as a table for screen readers. */
function usageChart(series) {
  const buckets = series.buckets || [];
  const max = Math.max(1, ...buckets.map((b) => b.total));
  const W = 720; const H = 220; const left = 40; const bottom = 30; const top = 10;
  const bw = (W - left - 10) / Math.max(1, buckets.length);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  const total = buckets.reduce((a, b) => a + b.total, 0);
  svg.setAttribute('aria-label', `Successful operations on the key per ${series.interval}: ${total} in all, at most ${max} in one ${series.interval}`);
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  el('line', { x1: left, y1: H - bottom, x2: W - 5, y2: H - bottom, class: 'axis' });
  el('line', { x1: left, y1: top, x2: left, y2: H - bottom, class: 'axis' });
  el('text', { x: left - 6, y: top + 8, 'text-anchor': 'end' }, String(max));
  el('text', { x: left - 6, y: H - bottom, 'text-anchor': 'end' }, '0');
  buckets.forEach((b, i) => {
    const hgt = ((H - bottom - top) * b.total) / max;
    const r = el('rect', { x: left + i * bw + 1, y: H - bottom - hgt, width: Math.max(1, bw - 2), height: hgt, class: 'bar' });
    const t = document.createElementNS(ns, 'title');
    t.textContent = `${when(b.start)}: ${b.total}`;
    r.append(t);
  });
  const labels = Math.min(6, buckets.length);
  for (let j = 0; j < labels; j++) {
    const i = Math.round((j * (buckets.length - 1)) / Math.max(1, labels - 1));
    const s = when(buckets[i].start);
    el('text', { x: left + i * bw + bw / 2, y: H - 10, 'text-anchor': 'middle' }, series.interval === 'day' ? s.slice(5, 10) : s.slice(11, 16));
  }
  const used = buckets.filter((b) => b.total > 0);
  return h('div', { class: 'chart', 'data-testid': 'usage-chart' }, svg,
    h('details', {}, h('summary', {}, 'The numbers'),
      table('Operations per period', ['Period from', 'Operations', 'By operation'],
        used.map((b) => [when(b.start), String(b.total), Object.entries(b.by_operation || {}).map(([k, v]) => `${k} ${v}`).join(', ')]),
        'No use in this period.')));
}

async function usageSection(keyId, interval) {
  const form = h('form', { class: 'grid', 'aria-label': 'Usage period', onsubmit: (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams(location.hash.split('?')[1] || '');
    p.set('interval', values(form).interval);
    go(`#/audit?${p}`);
  } },
  field('Per', { tag: 'select', name: 'interval', value: interval, options: [['hour', 'hour (last 24 hours)'], ['day', 'day (last 30 days)']] }),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Show')));
  try {
    const series = await api.call('GET', api.withQuery('/v1/audit/usage/series', { key: keyId, interval }));
    return [h('h2', {}, 'Usage over time'),
      h('p', { class: 'hint' }, 'Every successful operation that names the key (uses, reads and changes), per UTC hour or day.'),
      form, usageChart(series)];
  } catch (e) {
    return [h('h2', {}, 'Usage over time'), h('p', { class: 'msg error' }, e.message)];
  }
}

function verifySection(session) {
  const out = h('div', { 'data-testid': 'verify-result', 'aria-live': 'polite' });
  const btn = h('button', { type: 'button', 'data-action': 'verify', onclick: (ev) => act(ev.target, async () => {
    out.replaceChildren(h('p', {}, 'Verifying every link and checkpoint…'));
    const r = await api.call('GET', '/v1/audit/verify');
    const rows = Object.entries(r).filter(([k, v]) => k !== 'ok' && k !== 'break' && (v === null || typeof v !== 'object'))
      .map(([k, v]) => [k.replace(/_/g, ' '), v === null ? '—' : String(v)]);
    out.replaceChildren(
      r.ok
        ? h('p', { class: 'msg ok', 'data-verified': 'ok' }, 'The chain verifies: every link and every checkpoint signature is intact.')
        : h('p', { class: 'msg error', 'data-verified': 'broken' }, `The chain is broken at record ${r.break && r.break.seq}: ${r.break && r.break.problem}`),
      facts(rows));
  }) }, 'Verify the chain now');
  const system = session.me.tenant === 'system';
  return [h('h2', {}, 'Chain verification'),
    h('p', {}, system
      ? 'Checks every record\'s hash link and every signed checkpoint with the server\'s audit key. Compare the key fingerprint with the one you pinned; `arca audit verify` does the same offline.'
      : 'One chain covers every tenant, so only auditors of the system tenant verify it (or anyone offline with `arca audit verify`).'),
    system ? btn : null, out];
}

/** The audit page: search, usage of one key, and chain verification. */
export async function auditPage(session) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  let key = params.get('key') || '';
  let keyId = key;
  let keyNote = null;
  if (key && !UUID.test(key)) {
    try {
      keyId = (await api.call('GET', `/v1/keys/${api.seg(key)}`)).id;
    } catch (e) {
      keyNote = h('p', { class: 'msg error' }, `key ${key}: ${e.message}`);
      keyId = '';
    }
  }
  const form = h('form', { class: 'grid', role: 'search', 'aria-label': 'Search the audit trail', onsubmit: (ev) => {
    ev.preventDefault();
    const v = values(form);
    v.from = localToIso(v.from);
    v.to = localToIso(v.to);
    go(api.withQuery('#/audit', v));
  } },
  field('Key (id, name or alias)', { name: 'key', value: key }),
  field('Principal', { name: 'principal', value: params.get('principal') || '' }),
  field('Operation', { name: 'operation', value: params.get('operation') || '', placeholder: 'RotateKey' }),
  field('Outcome', { tag: 'select', name: 'outcome', value: params.get('outcome') || '', options: [['', 'any'], ['ok', 'ok'], ['refused', 'refused or failed'], ['not_permitted', 'not_permitted'], ['wrong_state', 'wrong_state']] }),
  field('From (UTC)', { name: 'from', type: 'datetime-local', value: isoToLocal(params.get('from')) }),
  field('To (UTC)', { name: 'to', type: 'datetime-local', value: isoToLocal(params.get('to')) }),
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search')));
  const q = {
    key: keyId, principal: params.get('principal'), operation: params.get('operation'), outcome: params.get('outcome'),
    from: params.get('from'), to: params.get('to'), before: params.get('before'), limit: 50,
  };
  const res = await api.call('GET', api.withQuery('/v1/audit', q));
  const rows = res.events.map((e) => [String(e.seq), time(e.at), e.principal, e.operation,
    e.key_id ? h('a', { href: `#/keys/${e.key_id}` }, e.key_id.slice(0, 8)) : '—',
    badge(e.outcome), e.door, e.source || '—',
    h('details', {}, h('summary', {}, 'record'), h('pre', { class: 'json' }, JSON.stringify(e, null, 2)))]);
  const nextHash = res.next ? api.withQuery('#/audit', { ...Object.fromEntries(params), before: res.next }) : null;
  const sections = [keyNote, form, h('h2', {}, 'Events'),
    table('Audit events, newest first', ['Seq', 'At', 'Principal', 'Operation', 'Key', 'Outcome', 'Door', 'Source', 'Detail'], rows, 'No event matches.'),
    h('div', { class: 'pager' }, params.get('before') ? h('a', { class: 'button secondary', href: api.withQuery('#/audit', { ...Object.fromEntries(params), before: null }) }, 'Newest') : null,
      nextHash ? h('a', { class: 'button secondary', href: nextHash }, 'Older') : null)];
  if (keyId) sections.push(...await usageSection(keyId, params.get('interval') || 'hour'));
  sections.push(...verifySection(session));
  page('Audit', sections);
}
