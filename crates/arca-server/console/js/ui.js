// Small DOM helpers. Every value from the server is put in the page as text (never as
// HTML), so a key name or an audit detail cannot inject markup or script.

import { ApiError, NeedsApproval } from './api.js';

/**
 * Makes an element: h('button', {class: 'x', onclick: f}, 'text', child, ...).
 * Attributes starting with "on" are listeners; `null`/`false` attributes are left out.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the page content and moves focus to its heading, for screen readers. */
export function page(title, ...children) {
  const main = document.getElementById('main');
  const h1 = h('h1', { tabindex: '-1' }, title);
  main.replaceChildren(h1, ...children.flat(Infinity).filter(Boolean));
  document.title = `${title} · Arca console`;
  h1.focus();
}

/** Shows a message in the live region (announced by screen readers). */
export function say(text, kind = 'ok') {
  const s = document.getElementById('status');
  s.replaceChildren(h('div', { class: `msg ${kind}`, 'data-kind': kind }, text));
}

export function clearSay() {
  document.getElementById('status').replaceChildren();
}

/** Shows an error of the API the way the API says it: code, message, field. */
export function sayError(e) {
  if (e instanceof NeedsApproval) {
    const link = h('a', { href: `#/approvals/${e.requestId}` }, 'approval request');
    const s = document.getElementById('status');
    s.replaceChildren(h('div', { class: 'msg warn', 'data-kind': 'needs-approval' },
      'This operation needs approval before it runs: ', link, ` ${e.requestId}. `, e.message));
    return;
  }
  if (e instanceof ApiError) {
    const field = e.field ? ` (field: ${e.field})` : '';
    say(`${e.status} ${e.code}: ${e.message}${field}`, 'error');
    return;
  }
  say(String(e && e.message ? e.message : e), 'error');
}

/** Runs an async action from a button, disabling it meanwhile and reporting errors. */
export async function act(button, fn) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (e) {
    sayError(e);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function badge(text) {
  const cls = String(text).replace(/[^A-Za-z_]/g, '');
  return h('span', { class: `badge ${cls}` }, text);
}

export function when(t) {
  if (!t) return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function time(t) {
  return t ? h('time', { datetime: t }, when(t)) : '—';
}

/** A table; rows are arrays of cells. On narrow screens each row stacks into a card. */
export function table(caption, headers, rows, empty = 'Nothing to show.') {
  if (!rows.length) return h('p', { class: 'hint' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'stack' },
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => h('td', { 'data-label': headers[i] }, c)))))));
}

export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** A labelled input. */
export function field(label, spec = {}, hint = null) {
  const { tag, options, wide, value, ...attrs } = spec;
  let input;
  if (tag === 'select') {
    input = h('select', attrs, (options || []).map((o) => {
      const [v, text] = Array.isArray(o) ? o : [o, o];
      return h('option', { value: v, selected: value === v }, text);
    }));
  } else if (tag === 'textarea') {
    input = h('textarea', attrs, value || '');
  } else {
    input = h('input', { type: 'text', value, ...attrs });
  }
  return h('label', { class: wide ? 'wide' : null }, label, input,
    hint ? h('span', { class: 'hint' }, hint) : null);
}

/** Reads a form's named fields into an object of strings. */
export function values(form) {
  const out = {};
  for (const el of form.elements) if (el.name) out[el.name] = el.type === 'checkbox' ? el.checked : el.value.trim();
  return out;
}

/**
 * Asks for confirmation in a modal dialog. With `typed`, the user must type that text
 * (used before irreversible steps). Resolves true or false; focus returns where it was.
 */
export function confirmDialog({ title, body, confirmLabel, danger = false, typed = null, extra = null }) {
  return new Promise((resolve) => {
    const before = document.activeElement;
    const input = typed ? h('input', { name: 'typed', autocomplete: 'off', 'aria-describedby': 'confirm-typed-hint' }) : null;
    const ok = h('button', { type: 'submit', class: danger ? 'danger' : null, disabled: !!typed }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'confirm-title' }, title),
      ...(Array.isArray(body) ? body : [body]).map((b) => (typeof b === 'string' ? h('p', {}, b) : b)),
      extra,
      typed ? h('label', {}, `Type ${typed} to confirm`, input,
        h('span', { class: 'hint', id: 'confirm-typed-hint' }, 'This cannot be undone.')) : null,
      h('div', { class: 'actions' }, ok, cancel));
    const dlg = h('dialog', { 'aria-labelledby': 'confirm-title', role: danger ? 'alertdialog' : 'dialog' }, form);
    if (input) input.addEventListener('input', () => { ok.disabled = input.value !== typed; });
    let result = false;
    form.addEventListener('submit', () => { result = true; });
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (before && before.focus) before.focus();
      resolve(result ? (extra ? values(form) : true) : false);
    });
    document.body.append(dlg);
    dlg.showModal();
    (input || cancel).focus();
  });
}
