// Drives the Arca web console in headless Chromium against a real `arca serve`.
// Started by crates/arca-cli/tests/console.rs, which sets up the server and passes the
// URL and the principals' tokens in ARCA_* variables. Exits non-zero on the first failure.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import path from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const URL = env('ARCA_URL');
const SHOTS = env('ARCA_SCREENSHOTS');
const TOKENS = {
  admin: env('ARCA_ADMIN_TOKEN'), operator: env('ARCA_OPERATOR_TOKEN'), alice: env('ARCA_ALICE_TOKEN'),
  bob: env('ARCA_BOB_TOKEN'), carol: env('ARCA_CAROL_TOKEN'), sysaudit: env('ARCA_SYSAUDIT_TOKEN'),
};
const KEY = 'payments-2026';

const browser = await chromium.launch({
  executablePath: env('ARCA_CHROMIUM'),
  headless: true,
  // Chromium's own background traffic is refused on a closed network; turn it off.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
// Every request the console makes, to check none carries a credential in its URL.
const requests = [];
page.on('request', (r) => requests.push(r.url()));

let step = 0;
function log(msg) { step += 1; console.log(`${String(step).padStart(2, '0')} ${msg}`); }
async function shot(name) { await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true }); }
const status = () => page.locator('#status .msg');
async function expectStatus(re) {
  await status().filter({ hasText: re }).first().waitFor({ timeout: 10000 });
}
async function heading(text) {
  await page.getByRole('heading', { level: 1, name: text }).waitFor({ timeout: 10000 });
}

/** Signs in by keyboard only: tab to the field, type, Enter. */
async function signIn(who) {
  await page.goto(`${URL}/ui/#/signin`);
  await heading('Sign in');
  const field = page.getByLabel('API token');
  await field.focus();
  await page.keyboard.type(TOKENS[who]);
  await page.keyboard.press('Enter');
  await page.getByTestId('whoami').waitFor();
  await field.waitFor({ state: 'detached' });
}
async function signOut() {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await heading('Sign in');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'sign-out forgets the session');
}

/** Every form control on the page has an accessible name (a label). */
async function checkLabels(where) {
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('main input, main select, main textarea, dialog input')]
    .filter((el) => el.type !== 'hidden' && !el.closest('label') && !el.getAttribute('aria-label') && !(el.id && document.querySelector(`label[for="${el.id}"]`)))
    .map((el) => el.outerHTML));
  assert.deepEqual(unlabelled, [], `${where}: controls without a label`);
}

/** Text contrast of visible text against its nearest opaque background: at least 4.5:1 (WCAG AA). */
async function checkContrast(where) {
  const bad = await page.evaluate(() => {
    const parse = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const bg = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!n.textContent.trim() || !el || !el.getClientRects().length) continue;
      const s = getComputedStyle(el);
      if (s.visibility === 'hidden' || s.display === 'none' || el.closest('button:disabled') || el.closest('.sr-only, .skip')) continue;
      const a = lum(parse(s.color).slice(0, 3)); const b = lum(bg(el));
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < 4.5) out.push(`${n.textContent.trim().slice(0, 40)} (${ratio.toFixed(2)})`);
    }
    return out;
  });
  assert.deepEqual(bad, [], `${where}: text under 4.5:1 contrast`);
}

/** Nothing wider than the window (no sideways scrolling of the page itself). */
async function checkFits(where) {
  const [w, sw] = await page.evaluate(() => [window.innerWidth, document.documentElement.scrollWidth]);
  assert.ok(sw <= w + 1, `${where}: the page is ${sw}px wide in a ${w}px window`);
}

try {
  // 1. Sign in as the tenant admin (keyboard only).
  await page.goto(`${URL}/`);
  await heading('Sign in');
  assert.match(page.url(), /\/ui\/$/, 'the root leads to the console');
  await checkLabels('sign-in');
  await checkContrast('sign-in');
  await shot('signin');
  await signIn('admin');
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
    await signIn(who);
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
    log(`${who} approved`);
    await signOut();
  }

  // 6. The requester executes it; the key page shows the pending destruction.
  await signIn('admin');
  await page.goto(`${URL}/ui/#/approvals/${requestId}`);
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
  await signIn('carol');
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
  await signIn('admin');
  await page.goto(`${URL}/ui/#/audit?principal=carol&outcome=not_permitted`);
  await heading('Audit');
  const refused = await page.locator('tbody tr td:nth-child(4)').allTextContents();
  assert.ok(refused.includes('CreateKey') && refused.includes('RotateKey'), `refusals not audited: ${refused}`);
  log('both refusals are in the audit trail');
  await signOut();

  // 10. A system auditor verifies the chain.
  await signIn('sysaudit');
  await heading('Audit');
  await page.getByRole('button', { name: 'Verify the chain now' }).click();
  await page.locator('[data-verified="ok"]').waitFor({ timeout: 30000 });
  await shot('audit-verify');
  log('a system auditor verified the chain');
  await signOut();

  // 11. The operator: seal status, health, tenants and principals.
  await signIn('operator');
  await heading('Tenants');
  await page.getByRole('cell', { name: 'default', exact: true }).waitFor();
  await checkContrast('tenants');
  await shot('tenants');
  await page.getByRole('link', { name: 'Principals' }).click();
  await heading('Principals');
  await page.getByRole('cell', { name: 'chain-auditor', exact: true }).waitFor();
  await shot('principals');
  await page.getByRole('link', { name: 'Operations' }).click();
  await heading('Operations');
  await page.getByTestId('sealed').getByText('unsealed').waitFor();
  await checkContrast('operations');
  await shot('operations');
  assert.equal(await page.getByRole('link', { name: 'Keys' }).count(), 0, 'operators see no keys');
  log('the operator sees tenants, principals, seal status and health, and no keys');

  assert.deepEqual(requests.filter((u) => /[?&](token|access_token|refresh_token)=/.test(u)), [], 'a credential in a URL');
  const unexpected = consoleErrors.filter((e) => !/status of 4\d\d|status of 202/.test(e));
  assert.deepEqual(unexpected, [], 'errors in the browser console');
  console.log('console test passed');
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(`FAILED after step ${step}: ${e.stack || e}`);
  console.error(`page: ${page.url()}`);
  console.error((await page.locator('#status').textContent().catch(() => '')) || '');
  console.error('browser console:', consoleErrors.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
