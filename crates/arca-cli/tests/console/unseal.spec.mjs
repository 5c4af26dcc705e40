// Custodians unseal a Shamir-sealed server from the console, and an operator seals it
// again. Started by crates/arca-cli/tests/console.rs with the shares in ARCA_* variables.

import { env, open, URL } from './lib.mjs';

const SHARES = { alice: env('ARCA_SHARE_ALICE'), bob: env('ARCA_SHARE_BOB') };
const ADMIN = env('ARCA_ADMIN_TOKEN');
const OPERATOR = env('ARCA_OPERATOR_TOKEN');

const { page, log, shot, expectStatus, heading, signIn, signOut, checkLabels, checkContrast, run } = await open();
const sealedBadge = (text) => page.getByTestId('sealed').getByText(text, { exact: true });

await run('unseal', async () => {
  // Sealed: signing in is refused with the API's own answer; the console still loads.
  await page.goto(`${URL}/ui/`);
  await heading('Sign in');
  await page.getByLabel('API token').fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expectStatus(/503 sealed/);
  log('signing in while sealed gets 503 sealed');

  // Each custodian gives a share through the form; the progress shows who gave one.
  await page.getByRole('link', { name: 'Operations' }).click();
  await heading('Operations');
  await sealedBadge('sealed').waitFor();
  await checkLabels('unseal');
  await checkContrast('unseal');
  await page.getByLabel('Your root-key share').fill(SHARES.alice);
  await page.getByRole('button', { name: 'Submit share' }).click();
  await expectStatus(/1 of 2/);
  await page.getByText('alice', { exact: true }).waitFor();
  await shot('unseal');
  log('alice gave her share: 1 of 2');
  await page.getByLabel('Your root-key share').fill(SHARES.bob);
  await page.getByRole('button', { name: 'Submit share' }).click();
  await expectStatus(/Unsealed/);
  await sealedBadge('unsealed').waitFor();
  log('bob gave his: unsealed');

  // Now the admin gets in.
  await signIn(ADMIN);
  await heading('Keys');
  log('the admin signed in');

  // No approval rule here: a destruction is scheduled at once, and cancelled from the page.
  await page.goto(`${URL}/ui/#/keys/new`);
  await heading('Create a key');
  await page.getByLabel('Name', { exact: false }).first().fill('old-key');
  await page.getByLabel('Create pre-active').check();
  await page.getByRole('button', { name: 'Create key' }).click();
  await heading('Key old-key');
  await page.locator('dd .badge.PRE_ACTIVE').first().waitFor();
  await page.getByRole('button', { name: 'Schedule destruction' }).click();
  const destroy = page.locator('dialog[open]');
  await destroy.getByText('Warning: destruction is irreversible.').waitFor();
  await destroy.getByLabel('Type old-key to confirm').fill('old-key');
  await destroy.getByRole('button', { name: 'Schedule destruction' }).click();
  await expectStatus(/Destruction of old-key scheduled/);
  await page.getByTestId('destruction-pending').waitFor();
  await page.getByRole('button', { name: 'Cancel destruction' }).click();
  await expectStatus(/Cancel destruction: done/);
  await page.getByTestId('destruction-pending').waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Schedule destruction' }).waitFor();
  log('a destruction scheduled and cancelled from the key page');
  await signOut();

  // The operator seals it again, behind a typed confirmation.
  await signIn(OPERATOR);
  await page.getByRole('link', { name: 'Operations' }).click();
  await heading('Operations');
  await page.getByRole('button', { name: 'Seal now' }).click();
  const dlg = page.locator('dialog[open]');
  await dlg.getByLabel('Type seal to confirm').fill('seal');
  await dlg.getByRole('button', { name: 'Seal' }).click();
  await expectStatus(/^Sealed\.$/);
  await sealedBadge('sealed').waitFor();
  log('the operator sealed it from the console');
});
