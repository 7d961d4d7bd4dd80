// The operations console end to end, as a hospital admin meets it: the real daemon (child process) delivering to a
// real Orthanc (PACS) and a python3-hl7 listener (RIS) that first answers AR, a real headless Chromium (Debian's,
// through playwright-core) logging in with users made by the real CLI. The admin finds the parked study, switches
// the RIS to AA, releases it, and sees it delivered; runs a rules dry run; a viewer and a request without a CSRF
// token are refused and change nothing. The dashboard and study page screenshots in README.md come from here.

import test from 'ava';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { storescu } from '../helpers/dcmtk.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { addConsoleUser, startGateway, writeGatewayConfig, type GatewayUnderTest } from '../helpers/gateway-process.js';
import { startHl7Listener, type Hl7Listener } from '../helpers/hl7-listener.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import { freePort } from '../helpers/ports.js';
import { RIS_NAME, deliveriesOfJob, inputDir, isLog, jobsOfStudy, peerConfig } from '../helpers/pipeline-peers.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** Where the screenshots go: a temp folder, and docs/screenshots when UPDATE_SCREENSHOTS=1 (README shows those). */
const SHOTS = mkdtempSync(path.join(os.tmpdir(), 'console-shots-'));

const ADMIN = { user: 'alice', password: 'correct horse battery staple' };
const VIEWER = { user: 'victor', password: 'viewer password 2026' };

interface World {
  orthanc: OrthancUnderTest;
  risPort: number;
  listener: Hl7Listener;
  gateway: GatewayUnderTest;
  base: string;
  browser: Browser;
  studyInstanceUid: string;
  accession: string;
}

const cleanups: Array<() => Promise<unknown>> = [];
test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

let world: World | undefined;
async function setUp(): Promise<World> {
  if (world) return world;
  const orthanc = await startOrthanc();
  cleanups.push(() => orthanc.dispose());
  const risPort = await freePort();
  const listener = await startHl7Listener({ responses: ['ar'], port: risPort });
  cleanups.push(() => listener.stop());
  const setup = await writeGatewayConfig(peerConfig({ pacsPort: orthanc.dicomPort, risPort }));
  if ((await addConsoleUser(setup.configPath, ADMIN.user, 'admin', ADMIN.password)) !== 0)
    throw new Error('add-user admin');
  if ((await addConsoleUser(setup.configPath, VIEWER.user, 'viewer', VIEWER.password)) !== 0)
    throw new Error('add-user viewer');
  const gateway = await startGateway({}, setup);
  cleanups.push(() => gateway.stop());
  const ready = await gateway.waitForLog((l) => l.event === 'GATEWAY-7010', 'the admin port');
  const base = new URL(String(ready.url)).origin;
  const browser = await launchChromium();
  cleanups.push(() => browser.close());

  const studyInstanceUid = newUid();
  const accession = 'ACC-CONSOLE-1';
  const file = await writeImageFile(inputDir(), { studyInstanceUid, accessionNumber: accession, seed: 71 });
  const sent = await storescu(gateway.port, [file.path]);
  if (sent.code !== 0) throw new Error(`storescu: ${sent.stderr}`);
  await gateway.waitForLog(
    isLog('EXPORT-6004', { studyInstanceUid, destination: RIS_NAME }),
    'the RIS delivery parked after AR',
    90_000,
  );
  world = { orthanc, risPort, listener, gateway, base, browser, studyInstanceUid, accession };
  return world;
}

async function logIn(w: World, who: { user: string; password: string }): Promise<Page> {
  const context = await w.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${w.base}/`);
  await page.fill('#login-user', who.user);
  await page.fill('#login-password', who.password);
  await page.click('#login-submit');
  await page.waitForSelector('#whoami');
  return page;
}

async function shoot(page: Page, name: string): Promise<void> {
  const file = path.join(SHOTS, name);
  await page.screenshot({ path: file, fullPage: false });
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(path.join(REPO, 'docs', 'screenshots'), { recursive: true });
    copyFileSync(file, path.join(REPO, 'docs', 'screenshots', name));
  }
}

/** A POST from inside the page (same origin, the session cookie goes along), with or without the CSRF token. */
async function postFromPage(
  page: Page,
  url: string,
  csrf: string | undefined,
): Promise<{ status: number; body: string }> {
  return page.evaluate(
    async ({ url, csrf }) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (csrf !== undefined) headers['x-csrf-token'] = csrf;
      const response = await fetch(url, { method: 'POST', headers, body: '{}' });
      return { status: response.status, body: await response.text() };
    },
    { url, csrf },
  );
}

async function csrfOf(page: Page): Promise<string> {
  return page.evaluate(async () => {
    const response = await fetch('/api/v1/session');
    return ((await response.json()) as { csrfToken: string }).csrfToken;
  });
}

test.serial(
  'an admin finds the study a RIS answering AR parked, releases it once the RIS answers AA, and sees it delivered',
  async (t) => {
    const w = await setUp();
    const health = await fetch(`${w.base}/healthz`);
    t.is(health.status, 503, 'a parked delivery makes the daemon degraded');
    t.regex(await health.text(), /parked/);

    const page = await logIn(w, ADMIN);
    t.is(await page.textContent('#parked-count'), '1');
    await shoot(page, 'dashboard.png');

    await page.click('#parked-count');
    await page.waitForSelector('#parked');
    const row = page.locator('#parked tbody tr', { hasText: w.accession });
    t.is(await row.count(), 1, 'the parked study is listed with its accession');
    t.regex((await row.textContent()) ?? '', new RegExp(w.studyInstanceUid.replace(/\./g, '\\.')));
    t.regex((await row.textContent()) ?? '', /ris/);

    // The RIS is fixed: the AR listener goes, an AA one takes its port.
    await w.listener.stop();
    const fixed = await startHl7Listener({ responses: ['aa'], port: w.risPort });
    cleanups.push(() => fixed.stop());
    page.on('dialog', (dialog) => void dialog.accept());
    await row.locator('[data-action=release]').click();
    await page.waitForSelector('#flash');
    t.regex((await page.textContent('#flash')) ?? '', /Released/);
    await w.gateway.waitForLog(
      isLog('EXPORT-6002', { studyInstanceUid: w.studyInstanceUid, destination: RIS_NAME }),
      'the released result reported to the RIS',
      60_000,
    );
    t.is(fixed.received.length, 1, 'the RIS got the result once');
    const [job] = jobsOfStudy(w.gateway.workDir, w.studyInstanceUid);
    t.is(job?.state, 'done');
    t.deepEqual(
      deliveriesOfJob(w.gateway.workDir, job?.id ?? -1).map((d) => [d.kind, d.state]),
      [
        ['pacs', 'delivered'],
        ['ris', 'delivered'],
      ],
    );

    await page.goto(`${w.base}/studies/${w.studyInstanceUid}`);
    const overlay = await page.waitForSelector('img.overlay');
    await page.waitForFunction((img) => (img as unknown as { complete: boolean }).complete, overlay);
    t.true((await overlay.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)) > 100);
    t.regex((await page.content()) ?? '', /delivered/);
    await shoot(page, 'study.png');
    t.is((await fetch(`${w.base}/healthz`)).status, 200, 'healthy again once nothing is parked');

    // The audit trail has the release, by whom.
    await page.goto(`${w.base}/audit`);
    t.true((await page.locator('#audit tr[data-action="delivery.release"]', { hasText: ADMIN.user }).count()) >= 1);
  },
);

test.serial('an admin dry-runs a rule set in the browser: the stored study would be ignored', async (t) => {
  const w = await setUp();
  const page = await logIn(w, ADMIN);
  await page.goto(`${w.base}/rules`);
  await page.fill('#rules-text', '- name: ignore-all\n  match: {}\n  action: { ignore: true }\n');
  await page.click('#rules-dry-run');
  const table = await page.waitForSelector('#dry-run');
  const text = (await table.textContent()) ?? '';
  t.regex(text, new RegExp(w.accession));
  t.regex(text, /ignore-all/);
  t.regex(text, /chest/, 'side by side with what happened');
});

test.serial(
  'a viewer is refused an action, and so is an admin request without a CSRF token: nothing changes',
  async (t) => {
    const w = await setUp();
    const [job] = jobsOfStudy(w.gateway.workDir, w.studyInstanceUid);
    const before = deliveriesOfJob(w.gateway.workDir, job?.id ?? -1);
    const ris = before.find((d) => d.kind === 'ris');
    if (ris === undefined) return t.fail('no RIS delivery');

    const viewer = await logIn(w, VIEWER);
    t.is(await viewer.getAttribute('#whoami', 'data-role'), 'viewer');
    const asViewer = await postFromPage(
      viewer,
      `/api/v1/studies/${w.studyInstanceUid}/reprocess`,
      await csrfOf(viewer),
    );
    t.is(asViewer.status, 403);
    t.regex(asViewer.body, /ROLE_FORBIDDEN/);

    const admin = await logIn(w, ADMIN);
    const noToken = await postFromPage(admin, `/api/v1/studies/${w.studyInstanceUid}/reprocess`, undefined);
    t.is(noToken.status, 403);
    t.regex(noToken.body, /CSRF/);
    const wrongToken = await postFromPage(admin, `/api/v1/studies/${w.studyInstanceUid}/reprocess`, 'forged');
    t.is(wrongToken.status, 403);

    t.deepEqual(jobsOfStudy(w.gateway.workDir, w.studyInstanceUid).length, 1, 'no new revision');
    t.deepEqual(deliveriesOfJob(w.gateway.workDir, job?.id ?? -1), before);
  },
);
