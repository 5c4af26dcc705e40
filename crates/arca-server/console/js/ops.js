// Operations: seal status and unsealing, health, and, for those whose roles allow it,
// the tenants (system operators) and principals (tenant-admins, system operators).

import * as api from './api.js';
import { h, page, say, act, badge, time, table, facts, field, values, confirmDialog } from './ui.js';
import { go } from './app.js';

const ROLES = ['tenant-admin', 'crypto-user', 'auditor', 'approver', 'system-operator'];

async function anonymous(path) {
  try {
    return await api.call('GET', path, undefined, { anonymous: true });
  } catch (e) {
    return { error: e.message, status: e.status };
  }
}

/** Seal status, unseal form, health; the seal button for system operators. */
export async function statusPage(session) {
  const [status, live, ready] = await Promise.all([anonymous('/v1/sys/status'), anonymous('/healthz'), anonymous('/readyz')]);
  const unseal = h('form', { class: 'grid', 'aria-label': 'Unseal', onsubmit: (ev) => {
    ev.preventDefault();
    act(unseal.querySelector('button[type=submit]'), async () => {
      const r = await api.call('POST', '/v1/sys/unseal', { share: values(unseal).share }, { anonymous: true });
      unseal.reset();
      say(r.sealed ? `Share accepted: ${r.progress} of ${r.threshold}.` : 'Unsealed: the root key is in memory.');
      go('#/ops');
    });
  } },
  field('Your root-key share', { name: 'share', type: 'password', autocomplete: 'off', required: true, wide: true },
    'arca-share-v1:… Sent once to the server over TLS; the console keeps nothing.'),
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Submit share')));
  const seal = session.me && session.can('Seal') && status.sealed === false
    ? h('button', { type: 'button', class: 'danger', 'data-action': 'seal', onclick: (ev) => act(ev.target, async () => {
      const ok = await confirmDialog({
        title: 'Seal the server?', danger: true,
        body: 'The root key leaves memory: every key operation on this node stops until custodians unseal it again with their shares.',
        confirmLabel: 'Seal', typed: 'seal',
      });
      if (!ok) return;
      await api.call('POST', '/v1/sys/seal', {});
      say('Sealed.');
      go('#/ops');
    }) }, 'Seal now')
    : null;
  page('Operations',
    h('div', { class: 'cards' },
      h('section', { class: 'card', 'aria-labelledby': 'seal-h' }, h('h2', { id: 'seal-h' }, 'Seal status'),
        status.error ? h('p', { class: 'msg error' }, status.error) : facts([
          ['Sealed', h('span', { 'data-testid': 'sealed' }, badge(status.sealed ? 'sealed' : 'unsealed'))],
          ['Custody', status.mode || '—'],
          status.threshold ? ['Shares needed', `${status.progress} of ${status.threshold} given`] : null,
          status.submitted_by && status.submitted_by.length ? ['Given by', status.submitted_by.join(', ')] : null,
        ])),
      h('section', { class: 'card', 'aria-labelledby': 'health-h' }, h('h2', { id: 'health-h' }, 'Health'),
        facts([
          ['Live', badge(live.status || 'error')],
          ['Ready', badge(ready.status === 'ready' ? 'ready' : 'not ready')],
          ready.store ? ['Store', ready.store] : null,
          ready.crypto ? ['Crypto', ready.crypto] : null,
          ready.error ? ['Problem', ready.error] : null,
        ]))),
    status.sealed ? [h('h2', {}, 'Unseal'), unseal] : null,
    seal ? [h('h2', {}, 'Seal'), h('p', {}, 'For an emergency: stop every key operation on this node at once.'), seal] : null,
    !session.me ? h('p', {}, h('a', { href: '#/signin' }, 'Sign in'), ' to manage keys, approvals and the audit trail.') : null);
}

/** The principals of the caller's tenant: list, create, issue a token, disable. */
export async function principalsPage(session) {
  const reload = () => principalsPage(session);
  const list = await api.call('GET', '/v1/principals');
  const roleBoxes = h('fieldset', { class: 'wide' }, h('legend', {}, 'Roles'),
    ROLES.map((r) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: `role:${r}` }), ` ${r}`)));
  const form = h('form', { class: 'grid', 'aria-label': 'Create a principal', onsubmit: (ev) => {
    ev.preventDefault();
    act(form.querySelector('button[type=submit]'), async () => {
      const v = values(form);
      const roles = ROLES.filter((r) => v[`role:${r}`]);
      const groups = v.groups ? v.groups.split(',').map((s) => s.trim()).filter(Boolean) : [];
      const p = await api.call('POST', '/v1/principals', { name: v.name, roles, groups });
      say(`Principal ${p.name} created.`);
      await reload();
    });
  } },
  field('Name', { name: 'name', required: true, autocomplete: 'off' }),
  field('Groups', { name: 'groups', placeholder: 'security, payments' }),
  roleBoxes,
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create principal')));
  const tokenOut = h('div', { 'aria-live': 'polite' });
  const rows = list.principals.map((p) => {
    const buttons = [];
    if (session.can('CreateApiToken')) {
      buttons.push(h('button', { type: 'button', class: 'secondary', 'data-action': 'token', onclick: (ev) => act(ev.target, async () => {
        const t = await api.call('POST', `/v1/principals/${api.seg(p.id)}/tokens`, { name: 'console' });
        tokenOut.replaceChildren(h('div', { class: 'msg warn' },
          h('p', {}, `API token for ${p.name}, shown once: copy it now.`),
          h('code', { 'data-testid': 'new-token' }, t.token)));
      }) }, 'Issue token'));
    }
    if (session.can('UpdatePrincipal') && p.id !== session.me.principal_id) {
      buttons.push(h('button', { type: 'button', class: 'secondary', 'data-action': p.disabled ? 'enable' : 'disable', onclick: (ev) => act(ev.target, async () => {
        await api.call('PATCH', `/v1/principals/${api.seg(p.id)}`, { disabled: !p.disabled });
        say(`${p.name} ${p.disabled ? 'enabled' : 'disabled'}.`);
        await reload();
      }) }, p.disabled ? 'Enable' : 'Disable'));
    }
    return [p.name, p.roles.join(', '), (p.groups || []).join(', ') || '—', p.kind, p.disabled ? badge('disabled') : badge('ok'), time(p.created_at), h('div', { class: 'actions' }, buttons)];
  });
  const tokens = session.can('ListApiTokens') ? await tokensSection(session, list.principals, reload) : null;
  page('Principals', tokenOut,
    table('Principals', ['Name', 'Roles', 'Groups', 'Kind', 'Status', 'Created', 'Actions'], rows),
    session.can('CreatePrincipal') ? [h('h2', {}, 'Create a principal'), form] : null,
    tokens);
}

/** The tenant's API tokens (never their secrets), with revocation for a leaked one. */
async function tokensSection(session, principals, reload) {
  const names = new Map(principals.map((p) => [p.id, p.name]));
  const list = await api.call('GET', '/v1/tokens');
  const rows = list.tokens.map((t) => {
    const who = names.get(t.principal_id) || t.principal_id;
    const revoke = !t.revoked_at && session.can('RevokeApiToken')
      ? h('button', { type: 'button', class: 'secondary', 'data-action': 'revoke', onclick: (ev) => act(ev.target, async () => {
        const ok = await confirmDialog({
          title: `Revoke token ${t.id}?`, danger: true,
          body: `Whoever holds it (${who}${t.name ? `, "${t.name}"` : ''}) is refused from the next request on, and sessions started with it end within 5 minutes (at their next refresh).`,
          confirmLabel: 'Revoke',
        });
        if (!ok) return;
        await api.call('DELETE', `/v1/tokens/${api.seg(t.id)}`);
        say(`Token ${t.id} revoked.`);
        await reload();
      }) }, 'Revoke')
      : null;
    return [h('code', {}, t.id), who, t.name || '—', time(t.created_at), time(t.expires_at), time(t.last_used_at),
      t.revoked_at ? [badge('revoked'), ' ', time(t.revoked_at)] : badge('ok'), revoke];
  });
  return [h('h2', {}, 'API tokens'),
    table('API tokens', ['Id', 'Principal', 'Label', 'Created', 'Expires', 'Last used', 'Status', 'Actions'], rows, 'No token.')];
}

/** Tenants, for system operators: list, create, disable and enable. */
export async function tenantsPage(session) {
  const reload = () => tenantsPage(session);
  const list = await api.call('GET', '/v1/tenants');
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'grid', 'aria-label': 'Create a tenant', onsubmit: (ev) => {
    ev.preventDefault();
    act(form.querySelector('button[type=submit]'), async () => {
      const v = values(form);
      const t = await api.call('POST', '/v1/tenants', { name: v.name, admin_name: v.admin_name || undefined });
      say(`Tenant ${t.tenant.name} created.`);
      await reload();
      if (t.admin_token) {
        document.querySelector('main [data-testid=tenant-token]')?.remove();
        document.getElementById('main').prepend(h('div', { class: 'msg warn', 'data-testid': 'tenant-token' },
          h('p', {}, `Token of ${t.admin.name}, the first tenant-admin of ${t.tenant.name}: shown once, valid until ${t.admin_token_expires_at}. Hand it over and have them replace it.`),
          h('code', {}, t.admin_token)));
      }
    });
  } },
  field('Name', { name: 'name', required: true, autocomplete: 'off' }),
  field('First admin', { name: 'admin_name', placeholder: 'admin' }),
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create tenant')));
  const rows = list.tenants.map((t) => {
    const b = [];
    if (!t.system && !t.deleted) {
      const action = t.disabled ? 'enable' : 'disable';
      if (session.can(t.disabled ? 'EnableTenant' : 'DisableTenant')) {
        b.push(h('button', { type: 'button', class: 'secondary', 'data-action': action, onclick: (ev) => act(ev.target, async () => {
          if (!t.disabled) {
            const ok = await confirmDialog({ title: `Disable tenant ${t.name}?`, body: 'Its principals can no longer sign in; its keys are untouched.', confirmLabel: 'Disable', danger: true });
            if (!ok) return;
          }
          await api.call('POST', `/v1/tenants/${api.seg(t.id)}/${action}`, {});
          say(`Tenant ${t.name} ${action}d.`);
          await reload();
        }) }, t.disabled ? 'Enable' : 'Disable'));
      }
    }
    return [t.name, t.system ? 'system' : 'tenant', t.deleted ? badge('deleted') : (t.disabled ? badge('disabled') : badge('ok')),
      String((t.settings.approval_rules || []).length), time(t.created_at), h('div', { class: 'actions' }, b)];
  });
  page('Tenants', out,
    table('Tenants', ['Name', 'Kind', 'Status', 'Approval rules', 'Created', 'Actions'], rows),
    session.can('CreateTenant') ? [h('h2', {}, 'Create a tenant'), form] : null);
}
