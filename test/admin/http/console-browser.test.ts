// A real headless Chromium (Debian's, through playwright-core) against the console over the fakes: log in through
// the form, open every page without a console error or CSP violation, see the overlay load, release a parked
// delivery with the button (confirming the dialog) and see the flash. The end-to-end test with the real gateway
// is test/e2e (the lead's); this one checks the pages, the assets and the CSP in a browser.

import test from 'ava';
import { launchChromium } from '../../helpers/browser.js';
import { startConsole } from './console-harness.js';

// The test compiles without the DOM library: the little of it used in the page is declared here.
interface ImageLike {
  complete: boolean;
  naturalWidth: number;
}
interface WindowLike {
  getComputedStyle(element: unknown): { backgroundColor: string };
}

test('a browser logs in, opens every page cleanly, sees the overlay, and releases a parked delivery', async (t) => {
  const c = await startConsole(t);
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`${page.url()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`${page.url()}: ${error.message}`));
  page.on('dialog', (dialog) => void dialog.accept());

  await page.goto(`${c.base}/parked`);
  t.regex(page.url(), /\/login\?next=%2Fparked$/);
  await page.fill('#login-user', 'alice');
  await page.fill('#login-password', 'correct horse');
  await page.click('#login-submit');
  await page.waitForURL(`${c.base}/parked`);
  t.is(await page.textContent('#whoami'), 'alice (admin)');

  for (const path of ['/', '/studies', '/studies/1.2.3.2', '/destinations', '/rules', '/audit', '/config']) {
    const response = await page.goto(`${c.base}${path}`);
    t.is(response?.status(), 200, path);
    // The stylesheet applied (a CSP or path mistake would leave the navigation unstyled).
    const navColour = await page.$eval(
      'nav.top',
      (nav) => (globalThis as unknown as WindowLike).getComputedStyle(nav).backgroundColor,
    );
    t.is(navColour, 'rgb(31, 78, 121)', path);
  }
  await page.goto(`${c.base}/studies/1.2.3.2`);
  const overlay = await page.waitForSelector('img.overlay');
  await page.waitForFunction((img) => (img as unknown as ImageLike).complete, overlay);
  t.is(await overlay.evaluate((img) => (img as unknown as ImageLike).naturalWidth), 1);

  await page.goto(`${c.base}/parked`);
  const id = await page.getAttribute('#parked tbody tr', 'data-delivery');
  await page.click(`tr[data-delivery="${id}"] [data-action=release]`);
  await page.waitForSelector('#flash');
  t.regex((await page.textContent('#flash')) ?? '', /Released delivery \d+/);
  t.is(c.backend.deliveriesById.get(Number(id))?.state, 'pending');
  t.notRegex(page.url(), /flash=/, 'console.js drops the flash from the address');

  // The rules editor's dry run, through the form.
  await page.goto(`${c.base}/rules`);
  await page.fill('#rules-text', '- name: ignore-all\n  action: { ignore: true }\n');
  await page.click('#rules-dry-run');
  await page.waitForSelector('#dry-run');
  t.regex((await page.textContent('h2')) ?? '', /Dry run: 2 of 2 studies would change/);

  t.deepEqual(problems, []);
});
