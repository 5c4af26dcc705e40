// The console's shell: sign-in, navigation by role, and the router. Pages live in their
// own modules; what a role may do comes from the server (GET /v1/whoami `actions`), and
// the server checks every request again whatever the console shows.

import * as api from './api.js';
import { h, page, say, clearSay, sayError, act, field, values } from './ui.js';
import * as keys from './keys.js';
import * as approvals from './approvals.js';
import * as audit from './audit.js';
import * as ops from './ops.js';

/** The signed-in principal: whoami, with `can(action)`. */
export const session = { me: null, can: () => false };

const NAV = [
  // The system tenant holds no keys.
  { href: '#/keys', label: 'Keys', show: (c, me) => c('ListKeys') && me.tenant !== 'system' },
  { href: '#/approvals', label: 'Approvals', show: (c) => c('ListApprovals') },
  { href: '#/audit', label: 'Audit', show: (c) => c('ListAudit') },
  { href: '#/principals', label: 'Principals', show: (c) => c('ListPrincipals') },
  { href: '#/tenants', label: 'Tenants', show: (c) => c('ListTenants') },
  { href: '#/ops', label: 'Operations', show: () => true },
];

async function loadMe() {
  const me = await api.call('GET', '/v1/whoami?include=actions');
  const allowed = new Set(me.actions || []);
  session.me = me;
  session.can = (a) => allowed.has(a);
}

function renderChrome() {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  const here = location.hash.split('?')[0].split('/').slice(0, 2).join('/');
  if (!session.me) {
    nav.replaceChildren(h('a', { href: '#/ops', 'aria-current': here === '#/ops' ? 'page' : null }, 'Operations'));
    who.replaceChildren(h('a', { href: '#/signin' }, 'Sign in'));
    return;
  }
  nav.replaceChildren(...NAV.filter((n) => n.show(session.can, session.me)).map((n) =>
    h('a', { href: n.href, 'aria-current': here === n.href ? 'page' : null }, n.label)));
  const out = h('button', { type: 'button', class: 'secondary', onclick: async () => {
    await api.signOut();
    session.me = null;
    location.hash = '#/signin';
    say('Signed out.');
  } }, 'Sign out');
  who.replaceChildren(
    h('span', { 'data-testid': 'whoami' }, `${session.me.principal} @ ${session.me.tenant} (${session.me.roles.join(', ')})`),
    out);
}

/** True when the server asks for client certificates (it marks the page it serves). */
function acceptsCertificates() {
  return document.body.dataset.clientCertificates === 'true';
}

function signInPage(next) {
  const tokenInput = field('API token', { name: 'token', type: 'password', autocomplete: 'off', required: true },
    'An Arca API token (arca_…). The console exchanges it for a session and does not keep it.');
  const form = h('form', { class: 'grid', onsubmit: (ev) => {
    ev.preventDefault();
    const btn = form.querySelector('button[type=submit]');
    act(btn, async () => {
      await api.signIn(values(form).token);
      await loadMe();
      clearSay();
      // Back to the page that asked for a sign-in (a deep link), even if the address
      // has not changed.
      go(next && next !== '#/signin' ? next : '#/');
    });
  } },
  h('div', { class: 'wide' }, tokenInput),
  h('div', { class: 'actions wide' },
    h('button', { type: 'submit' }, 'Sign in'),
    // Only where the server asks for client certificates (tls.client_ca): elsewhere the
    // browser has none to present and the button could only fail.
    acceptsCertificates() ? h('button', { type: 'button', class: 'secondary', onclick: (ev) => act(ev.target, async () => {
      await api.signIn('');
      await loadMe();
      clearSay();
      go(next && next !== '#/signin' ? next : '#/');
    }) }, 'Sign in with my client certificate') : null));
  page('Sign in', h('p', {}, 'Sign in with the same credentials as the API and the CLI. What you can see and do here is exactly what your roles and the key policies allow.'), form);
}

function home() {
  const c = session.can;
  if (c('ListKeys') && session.me.tenant !== 'system') return '#/keys';
  if (c('ListAudit')) return '#/audit';
  if (c('ListApprovals')) return '#/approvals';
  if (c('ListTenants')) return '#/tenants';
  return '#/ops';
}

async function route() {
  const hash = location.hash || '#/';
  // `#/audit?key=…`: the page is before the `?`; pages read their own parameters.
  const parts = hash.slice(2).split('?')[0].split('/').map(decodeURIComponent);
  const [top, ...rest] = parts;
  if (top === 'ops') {
    renderChrome();
    return ops.statusPage(session);
  }
  if (!session.me) {
    if (!api.hasSession()) {
      renderChrome();
      return signInPage(hash);
    }
    try {
      await loadMe();
    } catch (e) {
      renderChrome();
      if (e instanceof api.ApiError && e.code === 'sealed') {
        location.hash = '#/ops';
        return undefined;
      }
      signInPage(hash);
      return sayError(e);
    }
  }
  if (top === 'signin') {
    renderChrome();
    return signInPage('#/');
  }
  renderChrome();
  switch (top) {
    case '':
      location.replace(home());
      return undefined;
    case 'keys':
      if (rest[0] === 'new') return keys.createPage(session);
      if (rest.length) return keys.keyPage(session, rest.join('/'));
      return keys.listPage(session);
    case 'approvals':
      return rest.length ? approvals.detailPage(session, rest[0]) : approvals.listPage(session);
    case 'audit':
      return audit.auditPage(session);
    case 'principals':
      return ops.principalsPage(session);
    case 'tenants':
      return ops.tenantsPage(session);
    default:
      return page('Not found', h('p', {}, 'There is no such page. '), h('a', { href: '#/' }, 'Home'));
  }
}

async function router() {
  clearSayOnNavigate();
  try {
    await route();
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 401) {
      session.me = null;
      renderChrome();
      signInPage(location.hash);
    }
    sayError(e);
  }
}

let lastHash = null;
function clearSayOnNavigate() {
  // Keep the message of an action that navigated (e.g. "key created") for one page.
  if (lastHash !== null && !document.getElementById('status').dataset.keep) clearSay();
  delete document.getElementById('status').dataset.keep;
  lastHash = location.hash;
}

/** Navigates and keeps the current status message on the next page. */
export function go(hash) {
  document.getElementById('status').dataset.keep = '1';
  if (location.hash === hash) router();
  else location.hash = hash;
}

window.addEventListener('hashchange', router);
router();
