// Drives the Arca web console in headless Chromium against a real `arca serve`.
// Started by crates/arca-cli/tests/console.rs, which sets up the server and passes the
// URL and the principals' tokens in ARCA_* variables. Exits non-zero on the first failure.

import assert from 'node:assert/strict';
import { env, open, URL } from './lib.mjs';

const TOKENS = {
  admin: env('ARCA_ADMIN_TOKEN'), operator: env('ARCA_OPERATOR_TOKEN'), alice: env('ARCA_ALICE_TOKEN'),
  bob: env('ARCA_BOB_TOKEN'), carol: env('ARCA_CAROL_TOKEN'), sysaudit: env('ARCA_SYSAUDIT_TOKEN'),
};
const KEY = 'payments-2026';

const {
  page, log, shot, status, expectStatus, heading, signIn, signOut, checkLabels, checkContrast, checkFits, run,
} = await open();

await run('console', async () => {
  // 1. Sign in as the tenant admin (keyboard only).
  await page.goto(`${URL}/`);
  await heading('Sign in');
  assert.match(page.url(), /\/ui\/$/, 'the root leads to the console');
  // This server has no tls.client_ca: no certificate can sign in, so none is offered.
  assert.equal(await page.getByRole('button', { name: 'Sign in with my client certificate' }).count(), 0,
    'a certificate sign-in offered by a server that asks for no certificate');
  await checkLabels('sign-in');
  await checkContrast('sign-in');
  await shot('signin');
  await signIn(TOKENS.admin);
  await heading('Keys');
  log('signed in as admin with the keyboard');

  // 2. Create a key.
  await page.getByRole('link', { name: 'Create a key' }).click();
  await heading('Create a key');
  await checkLabels('create key');
  await page.getByLabel('Name', { exact: false }).first().fill(KEY);
  await page.getByLabel('Tags').fill('team=payments, env=prod');
  await page.getByLabel('Rotate every (days)').fill('90');
  await shot('create-key');
  await page.getByRole('button', { name: 'Create key' }).click();
  await heading(`Key ${KEY}`);
  await expectStatus(/created/);
  log('created the key');

  // 3. Rotate it.
  await page.getByRole('button', { name: 'Rotate now' }).click();
  await expectStatus(/version 2 is now primary/);
  await page.getByRole('cell', { name: 'v2', exact: true }).waitFor();
  const timeline = page.getByRole('list', { name: 'Key history' });
  await timeline.getByText('rotate').first().waitFor();
  // Its tags and rotation schedule as created; an alias added from the page.
  const fact = (name) => page.locator(`dt:text-is("${name}") + dd`);
  assert.equal(await fact('Tags').textContent(), 'env=prod, team=payments');
  assert.match(await fact('Rotation').textContent(), /^every 90 days; next \d{4}-/);
  await page.getByLabel('New alias').fill('alias/payments');
  await page.getByRole('button', { name: 'Add alias' }).click();
  await expectStatus(/Alias alias\/payments now points to/);
  await fact('Aliases').getByText('payments').waitFor();
  await checkLabels('key page');
  await checkContrast('key page');
  await shot('key');
  log('rotated it: v2 is primary and the timeline shows the rotation');

  // 4. Suspend it (destruction needs a key that no longer protects), then ask for its
  //    destruction: a warning first, and a confirmation that must be typed.
  await page.getByRole('button', { name: 'Suspend' }).click();
  await page.locator('dialog[open]').getByLabel('Reason').fill('retiring it');
  await page.locator('dialog[open]').getByRole('button', { name: 'Suspend' }).click();
  await expectStatus(/Suspend: done/);
  await page.locator('dd .badge.SUSPENDED').first().waitFor();
  await page.getByRole('button', { name: 'Schedule destruction' }).click();
  const dlg = page.getByRole('alertdialog');
  await dlg.getByText('Warning: destruction is irreversible.').waitFor();
  const confirm = dlg.getByRole('button', { name: 'Schedule destruction' });
  assert.equal(await confirm.isDisabled(), true, 'destruction needs the typed name first');
  await dlg.getByLabel(`Type ${KEY} to confirm`).fill(KEY);
  await dlg.getByLabel('Waiting period (days)').fill('7');
  await checkLabels('destroy dialog');
  await shot('destroy-warning');
  assert.equal(await confirm.isDisabled(), false);
  await confirm.click();
  await expectStatus(/needs approval/);
  const requestId = (await status().locator('a').getAttribute('href')).split('/').pop();
  assert.match(requestId, /^[0-9a-f-]{36}$/);
  log(`asked for the destruction behind a warning: approval request ${requestId}`);
  await signOut();

  // 5. Two other users approve it.
  for (const who of ['alice', 'bob']) {
    await signIn(TOKENS[who]);
    await heading('Approvals');
    const row = page.getByRole('row').filter({ hasText: requestId.slice(0, 8) });
    await row.waitFor();
    if (who === 'alice') {
      await row.getByText('0 of 2').waitFor();
      await checkContrast('approvals');
      await shot('approvals');
    } else {
      await row.getByText('1 of 2: alice approved').waitFor();
    }
    await row.getByRole('link').first().click();
    await heading(`Approval request ${requestId.slice(0, 8)}`);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.locator('dialog[open]').getByLabel('Comment').fill(`ok from ${who}`);
    await page.locator('dialog[open]').getByRole('button', { name: 'Approve' }).click();
    await expectStatus(/Approved/);
    await page.getByRole('cell', { name: `ok from ${who}`, exact: true }).waitFor();
    if (who === 'bob') {
      await page.getByRole('cell', { name: 'alice', exact: true }).waitFor();
      await page.getByRole('cell', { name: 'bob', exact: true }).waitFor();
      await page.locator('dd .badge.approved').waitFor();
      await shot('approval');
    }
    assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0, 'nobody votes twice');
    if (who === 'bob') {
      // Every request, whatever its status, on the list.
      await page.goto(`${URL}/ui/#/approvals?status=any`);
      await page.getByRole('row').filter({ hasText: requestId.slice(0, 8) }).getByText('approved', { exact: true }).waitFor();
    }
    log(`${who} approved`);
    await signOut();
  }

  // 6. The requester executes it; the key page shows the pending destruction.
  // A deep link without a session: sign in, then land on the page asked for.
  await signIn(TOKENS.admin, `#/approvals/${requestId}`);
  await heading(`Approval request ${requestId.slice(0, 8)}`);
  await page.getByRole('button', { name: 'Execute' }).click();
  await page.locator('dialog[open]').getByRole('button', { name: 'Execute' }).click();
  await expectStatus(/executed/);
  await page.goto(`${URL}/ui/#/keys/${KEY}`);
  await page.getByTestId('destruction-pending').waitFor();
  log('the requester executed it: destruction is scheduled');

  // The list: search and filters.
  await page.getByRole('link', { name: 'Keys', exact: true }).click();
  await heading('Keys');
  await page.getByLabel('Name contains').fill('payments');
  await page.getByLabel('State').selectOption('SUSPENDED');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: KEY }).waitFor();
  assert.match(page.url(), /name=payments/);
  await checkLabels('keys');
  await checkContrast('keys');
  await shot('keys');
  await page.getByLabel('State').selectOption('ACTIVE');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('No key matches.').waitFor();
  log('the key list finds it by name and state, and not as ACTIVE');

  // Another key through suspend, resume and deactivation (a typed confirmation).
  await page.goto(`${URL}/ui/#/keys/new`);
  await heading('Create a key');
  await page.getByLabel('Name', { exact: false }).first().fill('scratch-2026');
  await page.getByRole('button', { name: 'Create key' }).click();
  await heading('Key scratch-2026');
  // Its policy, edited as JSON: bad JSON is refused with the field named; a good edit is a new version.
  await page.getByText('Edit the policy').click();
  const statements = page.getByLabel('Statements (JSON)');
  await statements.fill('[{"effect": ');
  await page.getByRole('button', { name: 'Save policy' }).click();
  await expectStatus(/400 invalid_input: not JSON.*field: statements/);
  await statements.fill(JSON.stringify([{ sid: 'ops-read', effect: 'allow', principals: ['principal:carol'], actions: ['DescribeKey'] }]));
  await page.getByRole('button', { name: 'Save policy' }).click();
  await expectStatus(/Policy saved as version 2/);
  await page.getByRole('cell', { name: 'ops-read', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Suspend' }).click();
  await page.locator('dialog[open]').getByRole('button', { name: 'Suspend' }).click();
  await page.locator('dd .badge.SUSPENDED').first().waitFor();
  await page.getByRole('button', { name: 'Resume' }).click();
  await expectStatus(/Resume: done/);
  await page.locator('dd .badge.ACTIVE').first().waitFor();
  await page.getByRole('button', { name: 'Deactivate' }).click();
  const deact = page.locator('dialog[open]');
  await deact.getByLabel('Type scratch-2026 to confirm').fill('scratch-2026');
  await deact.getByRole('button', { name: 'Deactivate' }).click();
  await page.locator('dd .badge.DEACTIVATED').first().waitFor();
  assert.equal(await page.getByRole('button', { name: 'Rotate now' }).count(), 0, 'a deactivated key offers no rotation');
  log('another key: suspended, resumed, deactivated');
  await page.goto(`${URL}/ui/#/keys/${KEY}`);
  await heading(`Key ${KEY}`);

  // 7. Every step is in the audit view, with the key's usage chart.
  await page.getByRole('link', { name: /audit trail and its usage/ }).click();
  await heading('Audit');
  const ops = await page.locator('tbody tr td:nth-child(4)').allTextContents();
  for (const op of ['CreateKey', 'RotateKey', 'SuspendKey', 'ScheduleKeyDestruction', 'ExecuteApproval', 'CreateSession']) {
    if (op === 'CreateSession') continue; // sessions carry no key id
    assert.ok(ops.includes(op), `audit view lacks ${op}: ${ops.join(', ')}`);
  }
  await page.getByTestId('usage-chart').waitFor();
  // The votes are about the request, found by principal.
  for (const who of ['alice', 'bob']) {
    await page.goto(`${URL}/ui/#/audit?principal=${who}&operation=Approve`);
    await heading('Audit');
    await page.locator('tbody tr').filter({ hasText: 'Approve' }).first().waitFor();
  }
  await page.goto(`${URL}/ui/#/audit?key=${KEY}`);
  await page.getByTestId('usage-chart').waitFor();
  await checkContrast('audit');
  await checkLabels('audit');
  await shot('audit');
  log('the audit view shows create, rotate, suspend, the destruction request and its execution, and both votes');

  // 8. The phone width: nothing overflows, tables become cards.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${URL}/ui/#/keys`);
  await heading('Keys');
  await checkFits('keys at 390 px');
  await shot('keys-phone');
  await page.goto(`${URL}/ui/#/keys/${KEY}`);
  await heading(`Key ${KEY}`);
  await checkFits('key at 390 px');
  await shot('key-phone');
  await page.setViewportSize({ width: 1280, height: 860 });
  log('usable at 390 px');
  await signOut();

  // 9. A principal whose role forbids an action tries it through the console: the console
  //    offers no button, and the API refuses the request when it is made anyway.
  await signIn(TOKENS.carol);
  await heading('Keys');
  assert.equal(await page.getByRole('link', { name: 'Create a key' }).count(), 0, 'no create button for an auditor');
  await page.goto(`${URL}/ui/#/keys/${KEY}`);
  await heading(`Key ${KEY}`);
  assert.equal(await page.getByRole('button', { name: 'Rotate now' }).count(), 0);
  await page.goto(`${URL}/ui/#/keys/new`);
  await heading('Create a key');
  await page.getByLabel('Name', { exact: false }).first().fill('carol-was-here');
  await page.getByRole('button', { name: 'Create key' }).click();
  await expectStatus(/403 not_permitted/);
  await shot('refused');
  // Even the console's own API client, used directly, gets the same answer.
  const direct = await page.evaluate(async () => {
    const api = await import('/ui/js/api.js');
    try { await api.call('POST', '/v1/keys/payments-2026/rotate', {}); return 'allowed'; } catch (e) { return `${e.status} ${e.code}`; }
  });
  assert.equal(direct, '403 not_permitted');
  log('an auditor trying to create and rotate through the console is refused by the API');
  await signOut();
  await signIn(TOKENS.admin);
  await page.goto(`${URL}/ui/#/audit?principal=carol&outcome=not_permitted`);
  await heading('Audit');
  const refused = await page.locator('tbody tr td:nth-child(4)').allTextContents();
  assert.ok(refused.includes('CreateKey') && refused.includes('RotateKey'), `refusals not audited: ${refused}`);
  log('both refusals are in the audit trail');
  await signOut();

  // 10. A system auditor verifies the chain.
  await signIn(TOKENS.sysaudit);
  await heading('Audit');
  await page.getByRole('button', { name: 'Verify the chain now' }).click();
  await page.locator('[data-verified="ok"]').waitFor({ timeout: 30000 });
  await shot('audit-verify');
  log('a system auditor verified the chain');
  await signOut();

  // 11. The operator: seal status, health, tenants and principals.
  await signIn(TOKENS.operator);
  await heading('Tenants');
  await page.getByRole('cell', { name: 'default', exact: true }).waitFor();
  await checkContrast('tenants');
  await shot('tenants');
  await page.getByRole('link', { name: 'Principals' }).click();
  await heading('Principals');
  await page.getByRole('cell', { name: 'chain-auditor', exact: true }).first().waitFor();
  // The operator's own token is listed (never its secret) and could be revoked.
  await page.getByRole('heading', { name: 'API tokens' }).waitFor();
  const tokenRows = page.locator('tbody tr').filter({ hasText: 'operator' });
  assert.ok(await tokenRows.count() >= 1, 'the operator\'s token is listed');
  assert.equal(await page.getByText(TOKENS.operator).count(), 0, 'no token secret on the page');
  await shot('principals');
  await page.getByRole('link', { name: 'Operations' }).click();
  await heading('Operations');
  await page.getByTestId('sealed').getByText('unsealed').waitFor();
  await page.locator('dd .badge.ready').waitFor();
  await page.locator('dd .badge.ok').first().waitFor();
  await checkContrast('operations');
  await shot('operations');
  assert.equal(await page.getByRole('link', { name: 'Keys' }).count(), 0, 'operators see no keys');
  log('the operator sees tenants, principals, seal status and health, and no keys');

});
