// What the console's browser tests share: Chromium under Playwright, screenshots, and
// checks of accessibility (labels, contrast, fit) that every scenario applies.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import path from 'node:path';

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
export const URL = env('ARCA_URL');
const SHOTS = env('ARCA_SCREENSHOTS');

/** Opens Chromium on a fresh profile and returns the page and the checks bound to it. */
export async function open() {
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

  /** Signs in by keyboard only (focus the field, type, Enter), from the page `at`. */
  async function signIn(token, at = '#/signin') {
    await page.goto(`${URL}/ui/${at}`);
    await heading('Sign in');
    const field = page.getByLabel('API token');
    await field.focus();
    await page.keyboard.type(token);
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

  /** Runs a scenario; on failure saves a screenshot and says where it stopped. */
  async function run(name, fn) {
    try {
      await fn();
      assert.deepEqual(requests.filter((u) => /[?&](token|access_token|refresh_token|share)=/.test(u)), [], 'a credential in a URL');
      const unexpected = consoleErrors.filter((e) => !/status of (4\d\d|202|503)/.test(e));
      assert.deepEqual(unexpected, [], 'errors in the browser console');
      console.log(`${name} passed`);
    } catch (e) {
      await shot(`failure-${name}`).catch(() => {});
      console.error(`FAILED after step ${step}: ${e.stack || e}`);
      console.error(`page: ${page.url()}`);
      console.error((await page.locator('#status').textContent().catch(() => '')) || '');
      console.error('browser console:', consoleErrors.join('\n'));
      process.exitCode = 1;
    } finally {
      await browser.close();
    }
  }
  return { page, log, shot, status, expectStatus, heading, signIn, signOut, checkLabels, checkContrast, checkFits, run };
}
