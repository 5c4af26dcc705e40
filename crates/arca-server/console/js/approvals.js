// Approvals (M-of-N dual control): pending requests, their votes, and the moves each
// principal may make: approvers vote, the requester executes or withdraws.

import * as api from './api.js';
import { h, page, say, act, badge, time, table, facts, field, values, confirmDialog } from './ui.js';
import { go } from './app.js';

const STATUSES = ['pending', 'approved', 'denied', 'executed', 'cancelled', 'expired', 'any'];

function approvedCount(a) {
  return (a.votes || []).filter((v) => v.approve).length;
}

function votesText(a) {
  if (!a.votes || !a.votes.length) return 'no vote yet';
  return a.votes.map((v) => `${v.principal} ${v.approve ? 'approved' : 'denied'}`).join(', ');
}

/** The list of approval requests, pending first. */
export async function listPage() {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const status = params.has('status') ? params.get('status') : 'pending';
  const cursor = params.get('cursor');
  const list = await api.call('GET', api.withQuery('/v1/approvals', { status: status === 'any' ? null : status, cursor, limit: 50 }));
  const items = list.approvals;
  const filter = h('form', { class: 'grid', 'aria-label': 'Filter approval requests', onsubmit: (ev) => {
    ev.preventDefault();
    go(`#/approvals?status=${encodeURIComponent(values(filter).status)}`);
  } },
  field('Status', { tag: 'select', name: 'status', value: status, options: STATUSES }),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Show')));
  page('Approvals', filter,
    table('Approval requests', ['Request', 'Action', 'Key', 'Requester', 'Status', 'Votes', 'Expires'],
      items.map((a) => [h('a', { href: `#/approvals/${a.id}` }, a.id.slice(0, 8)), a.action,
        a.key_id ? h('a', { href: `#/keys/${a.key_id}` }, a.key_id.slice(0, 8)) : '—', a.requester,
        badge(a.status), `${approvedCount(a)} of ${a.required}: ${votesText(a)}`, time(a.expires_at)]),
      status === 'any' ? 'No approval request.' : `No ${status} approval request.`),
    h('div', { class: 'pager' },
      cursor ? h('a', { class: 'button secondary', href: api.withQuery('#/approvals', { status }) }, 'First page') : null,
      list.next_cursor ? h('a', { class: 'button secondary', href: api.withQuery('#/approvals', { status, cursor: list.next_cursor }) }, 'Next page') : null));
}

/** One request: what it would do, who voted, and the buttons this principal may use. */
export async function detailPage(session, id) {
  const a = await api.call('GET', `/v1/approvals/${api.seg(id)}`);
  const reload = () => detailPage(session, id);
  const me = session.me;
  const mine = a.requester_id === me.principal_id;
  const voted = (a.votes || []).some((v) => v.principal_id === me.principal_id);
  const buttons = [];
  const vote = (approve) => async (ev) => act(ev.target, async () => {
    const r = await confirmDialog({
      title: `${approve ? 'Approve' : 'Deny'} ${a.action}?`,
      body: approve
        ? `Your approval counts towards the ${a.required} needed. ${a.requester} will then be able to run it.`
        : 'One denial refuses the request for good.',
      confirmLabel: approve ? 'Approve' : 'Deny', danger: !approve,
      extra: field('Comment', { name: 'comment', autocomplete: 'off' }),
    });
    if (!r) return;
    await api.call('POST', `/v1/approvals/${api.seg(a.id)}/${approve ? 'approve' : 'deny'}`, r.comment ? { comment: r.comment } : {});
    say(approve ? 'Approved.' : 'Denied.');
    await reload();
  });
  if (a.status === 'pending' && !mine && !voted && session.can('Approve')) {
    buttons.push(h('button', { type: 'button', 'data-action': 'approve', onclick: vote(true) }, 'Approve'));
    buttons.push(h('button', { type: 'button', class: 'danger', 'data-action': 'deny', onclick: vote(false) }, 'Deny'));
  }
  if (a.status === 'approved' && mine) {
    buttons.push(h('button', { type: 'button', 'data-action': 'execute', onclick: (ev) => act(ev.target, async () => {
      const ok = await confirmDialog({
        title: `Run ${a.action} now?`, danger: a.action === 'ScheduleKeyDestruction',
        body: a.action === 'ScheduleKeyDestruction'
          ? [h('strong', {}, 'Warning: destruction is irreversible once its waiting period ends.'), ' The approved request runs exactly as it was asked.']
          : 'The approved request runs exactly as it was asked.',
        confirmLabel: 'Execute',
      });
      if (!ok) return;
      await api.call('POST', `/v1/approvals/${api.seg(a.id)}/execute`, {});
      say(`${a.action} executed.`);
      await reload();
    }) }, 'Execute'));
  }
  if (['pending', 'approved'].includes(a.status) && mine) {
    buttons.push(h('button', { type: 'button', class: 'secondary', 'data-action': 'cancel', onclick: (ev) => act(ev.target, async () => {
      await api.call('POST', `/v1/approvals/${api.seg(a.id)}/cancel`, {});
      say('Request withdrawn.');
      await reload();
    }) }, 'Withdraw'));
  }
  let note = null;
  if (a.status === 'pending' && mine) note = 'You asked for this; someone else must approve it.';
  else if (a.status === 'pending' && voted) note = 'You have voted on this request.';
  page(`Approval request ${a.id.slice(0, 8)}`,
    note ? h('p', { class: 'msg warn' }, note) : null,
    h('div', { class: 'actions' }, buttons),
    facts([
      ['Request', h('code', {}, a.id)], ['Action', a.action],
      ['Key', a.key_id ? h('a', { href: `#/keys/${a.key_id}` }, a.key_id) : '—'],
      ['Requester', a.requester], ['Status', badge(a.status)],
      ['Approvals', `${approvedCount(a)} of ${a.required}${a.group ? ` (group ${a.group})` : ''}`],
      ['Created', time(a.created_at)], ['Expires', time(a.expires_at)], ['Executed', time(a.executed_at)],
    ]),
    h('h2', {}, 'Votes'),
    table('Votes', ['Who', 'Vote', 'When', 'Comment'],
      (a.votes || []).map((v) => [v.principal, badge(v.approve ? 'approved' : 'denied'), time(v.at), v.comment || '—']), 'No vote yet.'),
    h('h2', {}, 'Operation as asked'),
    h('pre', { class: 'json' }, JSON.stringify(a.operation, null, 2)));
}
