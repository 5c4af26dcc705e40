// Keys: the list with search and filters, creation, and a key's page (versions,
// timeline, policy, aliases, tags, rotation schedule, lifecycle actions).

import * as api from './api.js';
import { h, page, say, act, badge, time, when, table, facts, field, values, confirmDialog } from './ui.js';
import { go } from './app.js';

const STATES = ['', 'PRE_ACTIVE', 'ACTIVE', 'SUSPENDED', 'DEACTIVATED', 'COMPROMISED', 'DESTROYED', 'DESTROYED_COMPROMISED'];
const SPECS = ['AES_128', 'AES_192', 'AES_256', 'HMAC_256', 'HMAC_384', 'HMAC_512', 'RSA_2048', 'RSA_3072', 'RSA_4096',
  'ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ED25519', 'ML_DSA_44', 'ML_DSA_65', 'ML_DSA_87',
  'ML_KEM_768', 'ML_KEM_1024', 'SECRET_DATA',
  // Legacy specs: only in tenants with allow_legacy_algorithms (docs/kmip.md).
  'TRIPLE_DES', 'CHACHA20', 'CHACHA20_POLY1305', 'DSA_512', 'DSA_1024', 'DSA_2048', 'DSA_3072'];
const USAGES = ['', 'ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'GENERATE_VERIFY_MAC', 'WRAP_UNWRAP', 'DERIVE', 'KEY_ENCAPSULATION'];

function keyLink(k) {
  return h('a', { href: `#/keys/${api.seg(k.id)}` }, k.name || k.id);
}

function tagText(tags) {
  return Object.entries(tags || {}).map(([k, v]) => `${k}=${v}`).join(', ') || '—';
}

/** The key list: search by name, filter by state, spec, tag and alias; paged. */
export async function listPage(session) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const form = h('form', { class: 'grid', role: 'search', 'aria-label': 'Search keys', onsubmit: (ev) => {
    ev.preventDefault();
    const v = values(form);
    go(api.withQuery('#/keys', v));
  } },
  field('Name contains', { name: 'name', value: params.get('name') || '', type: 'search' }),
  field('State', { tag: 'select', name: 'state', value: params.get('state') || '', options: STATES.map((s) => [s, s || 'any']) }),
  field('Spec', { tag: 'select', name: 'spec', value: params.get('spec') || '', options: [['', 'any'], ...SPECS] }),
  field('Tag', { name: 'tag', value: params.get('tag') || '', placeholder: 'team=payments' }),
  field('Alias', { name: 'alias', value: params.get('alias') || '' }),
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search')));
  const q = Object.fromEntries(['name', 'state', 'spec', 'tag', 'alias', 'cursor'].map((k) => [k, params.get(k)]));
  const list = await api.call('GET', api.withQuery('/v1/keys', { ...q, limit: 50 }));
  const rows = list.keys.map((k) => [keyLink(k), badge(k.state), k.spec, `v${k.primary_version}`,
    (k.aliases || []).join(', ') || '—', tagText(k.tags), time(k.created_at)]);
  const next = list.next_cursor
    ? h('a', { class: 'button secondary', href: api.withQuery('#/keys', { ...q, cursor: list.next_cursor }) }, 'Next page')
    : null;
  page('Keys',
    session.can('CreateKey') ? h('div', { class: 'actions' }, h('a', { class: 'button', href: '#/keys/new' }, 'Create a key')) : null,
    form,
    h('h2', {}, `${list.keys.length} key${list.keys.length === 1 ? '' : 's'}${params.get('cursor') ? ' (this page)' : ''}`),
    table('Keys', ['Name', 'State', 'Spec', 'Primary', 'Aliases', 'Tags', 'Created'], rows, 'No key matches.'),
    h('div', { class: 'pager' }, params.get('cursor') ? h('a', { class: 'button secondary', href: '#/keys' }, 'First page') : null, next));
}

function parseTags(text, field) {
  const tags = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    if (i < 1) throw new api.ApiError(400, { error: { code: 'invalid_input', message: `tag ${JSON.stringify(part)} is not key=value`, field } });
    tags[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return tags;
}

/** Creating a key. Shown to anyone who opens it; the server decides (403 if not allowed). */
export function createPage(session) {
  const form = h('form', { class: 'grid', onsubmit: (ev) => {
    ev.preventDefault();
    act(form.querySelector('button[type=submit]'), async () => {
      const v = values(form);
      const body = { name: v.name, spec: v.spec };
      if (v.description) body.description = v.description;
      if (v.usage) body.usage = [v.usage];
      if (v.tags) body.tags = parseTags(v.tags, 'tags');
      if (v.rotation_period_days) body.rotation_period_days = Number(v.rotation_period_days);
      if (v.pre_active) body.pre_active = true;
      if (v.extractable) body.extractable = true;
      if (v.protection_level) body.protection_level = v.protection_level;
      const k = await api.call('POST', '/v1/keys', body);
      say(`Key ${k.name} created (${k.spec}, ${k.state}).`);
      go(`#/keys/${api.seg(k.id)}`);
    });
  } },
  field('Name', { name: 'name', required: true, autocomplete: 'off' }, 'Unique in your tenant; letters, digits, - _ / .'),
  field('Spec', { tag: 'select', name: 'spec', value: 'AES_256', options: SPECS }),
  field('Usage', { tag: 'select', name: 'usage', options: USAGES.map((u) => [u, u || 'the spec\'s default']) }),
  field('Description', { name: 'description' }),
  field('Tags', { name: 'tags', placeholder: 'team=payments, env=prod' }, 'Comma-separated key=value pairs'),
  field('Rotate every (days)', { name: 'rotation_period_days', type: 'number', min: 1, max: 3650 }, 'Leave empty for no automatic rotation'),
  field('Protection', { tag: 'select', name: 'protection_level', options: [['', 'SOFTWARE (default)'], ['HSM', 'HSM']] }),
  h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'pre_active' }), ' Create pre-active (activate later)'),
  h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'extractable' }), ' Extractable (may be exported; cannot be changed later)'),
  h('div', { class: 'actions wide' }, h('button', { type: 'submit' }, 'Create key'), h('a', { class: 'button secondary', href: '#/keys' }, 'Cancel')));
  page('Create a key',
    session.can('CreateKey') ? null : h('p', { class: 'msg warn' }, 'Your roles do not include creating keys; the server will refuse.'),
    form);
}

/** The lifecycle actions a key's state allows, as the API names them. */
function lifecycleButtons(session, k, reload) {
  const b = [];
  const destroyed = k.state === 'DESTROYED' || k.state === 'DESTROYED_COMPROMISED';
  const post = (action, body) => api.call('POST', `/v1/keys/${api.seg(k.id)}/${action}`, body);
  const simple = (label, action, permission, ask) => {
    if (!session.can(permission)) return;
    b.push(h('button', { type: 'button', class: 'secondary', 'data-action': action, onclick: (ev) => act(ev.target, async () => {
      const reason = ask ? await confirmDialog(ask) : {};
      if (reason === false) return;
      const body = typeof reason === 'object' && reason.reason ? { reason: reason.reason } : undefined;
      await post(action, body);
      say(`${label}: done.`);
      await reload();
    }) }, label));
  };
  if (destroyed) return b;
  if (session.can('RotateKey') && !k.pending_import && k.state === 'ACTIVE') {
    b.push(h('button', { type: 'button', 'data-action': 'rotate', onclick: (ev) => act(ev.target, async () => {
      const r = await api.call('POST', `/v1/keys/${api.seg(k.id)}/rotate`, {});
      say(`Rotated: version ${r.primary_version} is now primary. Older versions still decrypt and verify.`);
      await reload();
    }) }, 'Rotate now'));
  }
  if (k.state === 'PRE_ACTIVE' && !k.destroy_after) simple('Activate', 'activate', 'ActivateKey');
  const reasonField = field('Reason', { name: 'reason', autocomplete: 'off' });
  if (k.state === 'ACTIVE') {
    simple('Suspend', 'suspend', 'SuspendKey', { title: `Suspend ${k.name}?`, body: 'A suspended key protects nothing new but still decrypts and verifies. You can resume it.', confirmLabel: 'Suspend', extra: reasonField });
  }
  if (k.state === 'SUSPENDED' && !k.destroy_after) simple('Resume', 'resume', 'ResumeKey');
  if (['ACTIVE', 'SUSPENDED'].includes(k.state) && session.can('DeactivateKey')) {
    b.push(h('button', { type: 'button', class: 'secondary', 'data-action': 'deactivate', onclick: (ev) => act(ev.target, async () => {
      const ok = await confirmDialog({
        title: `Deactivate ${k.name}?`, danger: true,
        body: ['A deactivated key never protects data again: it can only decrypt and verify what it protected. This cannot be reversed.'],
        confirmLabel: 'Deactivate', typed: k.name,
      });
      if (!ok) return;
      await post('deactivate', { reason: 'REVOKED' });
      say(`${k.name} deactivated.`);
      await reload();
    }) }, 'Deactivate'));
  }
  if (session.can('ScheduleKeyDestruction') && !k.destroy_after && ['PRE_ACTIVE', 'SUSPENDED', 'DEACTIVATED', 'COMPROMISED'].includes(k.state)) {
    b.push(h('button', { type: 'button', class: 'danger', 'data-action': 'schedule-destruction', onclick: (ev) => act(ev.target, async () => {
      const days = field('Waiting period (days)', { name: 'pending_window_days', type: 'number', min: 1, max: 365, value: '30', required: true },
        'Destruction can be cancelled until the period ends.');
      const r = await confirmDialog({
        title: `Destroy ${k.name}?`, danger: true,
        body: [h('strong', {}, 'Warning: destruction is irreversible.'),
          ` When the waiting period ends, the key material of every version is erased. Anything still encrypted under ${k.name} can never be decrypted again, and signatures can no longer be made or checked with it. The metadata and history are kept.`],
        confirmLabel: 'Schedule destruction', typed: k.name, extra: days,
      });
      if (!r) return;
      await post('schedule-destruction', { pending_window_days: Number(r.pending_window_days || 30) });
      say(`Destruction of ${k.name} scheduled.`);
      await reload();
    }) }, 'Schedule destruction'));
  }
  if (k.destroy_after && session.can('CancelKeyDestruction')) simple('Cancel destruction', 'cancel-destruction', 'CancelKeyDestruction');
  return b;
}

function versionsTable(k) {
  return table('Versions', ['Version', 'State', 'Primary', 'Created', 'Destroy after', 'Destroyed', 'Digest'],
    (k.versions || []).slice().reverse().map((v) => [`v${v.version}`, [badge(v.state), v.archived ? ' archived' : ''],
      v.primary ? 'yes' : '', time(v.created_at), time(v.destroy_after), time(v.destroyed_at), h('code', {}, (v.digest || '').slice(0, 16))]));
}

function timeline(events) {
  if (!events.length) return h('p', { class: 'hint' }, 'No transitions yet.');
  return h('ol', { class: 'timeline', 'aria-label': 'Key history' }, events.slice().reverse().map((e) => h('li', {},
    h('strong', {}, e.action), e.version ? ` (v${e.version})` : '',
    e.from_state || e.to_state ? [' ', e.from_state ? badge(e.from_state) : '', e.from_state ? ' → ' : '', e.to_state ? badge(e.to_state) : ''] : '',
    h('div', { class: 'hint' }, time(e.at), ' by ', e.actor, e.reason ? ` — ${e.reason}` : ''))));
}

/** A key's page. */
export async function keyPage(session, ref) {
  const reload = () => keyPage(session, ref);
  const k = await api.call('GET', `/v1/keys/${api.seg(ref)}`);
  const [history, policy] = await Promise.all([
    api.call('GET', `/v1/keys/${api.seg(k.id)}/history`).then((r) => r.events).catch((e) => e),
    session.can('GetKeyPolicy') ? api.call('GET', `/v1/keys/${api.seg(k.id)}/policy`).catch((e) => e) : null,
  ]);
  const rotation = k.rotation_period_days
    ? `every ${k.rotation_period_days} days; next ${when(k.next_rotation_at)}`
    : 'manual only';
  const aliasNames = (k.aliases || []).map((a) => (typeof a === 'string' ? a : a.alias));
  const destruction = k.destroy_after
    ? h('p', { class: 'msg warn', 'data-testid': 'destruction-pending' }, `Destruction scheduled: the key material will be erased after ${when(k.destroy_after)} unless cancelled.`)
    : null;
  const sections = [
    destruction,
    h('div', { class: 'actions', 'aria-label': 'Key actions' }, lifecycleButtons(session, k, reload)),
    facts([
      ['ID', h('code', {}, k.id)],
      ['State', [badge(k.state), k.archived ? ' (archived)' : '', k.deactivation_reason ? ` reason ${k.deactivation_reason}` : '']],
      ['Spec', k.spec], ['Usage', (k.usage || []).join(', ')], ['Origin', k.origin], ['Protection', k.protection_level],
      ['Description', k.description || '—'],
      ['Primary version', `v${k.primary_version}`],
      ['Rotation', rotation], ['Last rotated', time(k.last_rotated_at)],
      ['Aliases', aliasNames.join(', ') || '—'], ['Tags', tagText(k.tags)],
      ['Created', time(k.created_at)], ['Activation', time(k.activation_date)],
      ['Deactivation date', time(k.deactivation_date)], ['Extractable', k.extractable ? 'yes' : 'no'],
    ]),
  ];
  if (session.can('UpdateKey')) sections.push(editForm(k, reload));
  if (session.can('CreateAlias')) sections.push(aliasForm(k, reload));
  sections.push(h('h2', {}, 'Versions'), versionsTable(k));
  sections.push(h('h2', {}, 'History'), history instanceof Error ? h('p', { class: 'msg error' }, history.message) : timeline(history));
  if (policy) {
    sections.push(h('h2', {}, 'Policy'), policy instanceof Error
      ? h('p', { class: 'msg error' }, policy.message)
      : [h('p', { class: 'hint' }, `Version ${policy.version}, by ${policy.updated_by} at ${when(policy.updated_at)}`),
        table('Policy statements', ['Sid', 'Effect', 'Principals', 'Actions', 'Conditions'],
          policy.statements.map((s) => [s.sid || '—', badge(s.effect), (s.principals || []).join(', '), (s.actions || []).join(', '),
            s.conditions ? h('code', {}, JSON.stringify(s.conditions)) : '—']), 'No statement: tenant-admins manage, nobody uses.'),
        session.can('PutKeyPolicy') ? policyForm(k, policy, reload) : null]);
  }
  if (session.can('ListAudit')) {
    sections.push(h('p', {}, h('a', { href: `#/audit?key=${api.seg(k.id)}` }, 'This key in the audit trail and its usage over time')));
  }
  page(`Key ${k.name}`, sections);
}

/** Edits the policy's statements as JSON; the server checks them and refuses a stale edit. */
function policyForm(k, policy, reload) {
  const form = h('form', { class: 'grid', 'aria-label': 'Edit policy', onsubmit: (ev) => {
    ev.preventDefault();
    act(form.querySelector('button[type=submit]'), async () => {
      let statements;
      try {
        statements = JSON.parse(values(form).statements);
      } catch (e) {
        throw new api.ApiError(400, { error: { code: 'invalid_input', message: `not JSON: ${e.message}`, field: 'statements' } });
      }
      const r = await api.call('PUT', `/v1/keys/${api.seg(k.id)}/policy`, { statements, expected_version: policy.version });
      say(`Policy saved as version ${r.version}.`);
      await reload();
    });
  } },
  field('Statements (JSON)', { tag: 'textarea', name: 'statements', wide: true, rows: 8, spellcheck: 'false', value: JSON.stringify(policy.statements, null, 2) },
    'See docs/access.md for subjects, actions and conditions. A change based on an old version is refused.'),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Save policy')));
  return h('details', {}, h('summary', {}, 'Edit the policy'), form);
}

function editForm(k, reload) {
  const form = h('form', { class: 'grid', 'aria-label': 'Edit key', onsubmit: (ev) => {
    ev.preventDefault();
    act(form.querySelector('button[type=submit]'), async () => {
      const v = values(form);
      const body = { description: v.description, tags: parseTags(v.tags, 'tags') };
      if (v.rotation_period_days) body.rotation_period_days = Number(v.rotation_period_days);
      await api.call('PATCH', `/v1/keys/${api.seg(k.id)}`, body);
      say('Key updated.');
      await reload();
    });
  } },
  field('Description', { name: 'description', value: k.description || '' }),
  field('Tags', { name: 'tags', value: Object.entries(k.tags || {}).map(([a, b]) => `${a}=${b}`).join(', ') }),
  field('Rotate every (days)', { name: 'rotation_period_days', type: 'number', min: 1, max: 3650, value: k.rotation_period_days ? String(k.rotation_period_days) : '' }),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Save')));
  return [h('h2', {}, 'Details'), form];
}

function aliasForm(k, reload) {
  const form = h('form', { class: 'grid', 'aria-label': 'Add alias', onsubmit: (ev) => {
    ev.preventDefault();
    act(form.querySelector('button[type=submit]'), async () => {
      const v = values(form);
      await api.call('POST', '/v1/aliases', { alias: v.alias, key: k.id });
      say(`Alias ${v.alias} now points to ${k.name}.`);
      await reload();
    });
  } },
  field('New alias', { name: 'alias', required: true, placeholder: 'alias/payments' }),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Add alias')));
  return [h('h2', {}, 'Aliases'), form];
}

