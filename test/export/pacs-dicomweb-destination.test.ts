import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { AuditRecord } from '../../src/store/audit-trail.js';
import {
  PacsDicomwebDestination,
  failedInstances,
  type DicomwebAuth,
} from '../../src/export/pacs-dicomweb-destination.js';
import { pacsDestinationSchema } from '../../src/config/schema.js';
import { probeDestination } from '../../src/export/destination-probe.js';
import { createLogger, type Logger } from '../../src/logging/logger.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import { freePort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait-until.js';
import { studyPair } from './secondary-capture-fixture.js';

// STOW-RS against a real Orthanc with Debian's orthanc-dicomweb plugin (its root is /dicom-web): one Orthanc
// open to anyone on loopback, one that asks for HTTP basic authentication.

const PLUGINS = ['/usr/share/orthanc/plugins/libOrthancGdcm.so', '/usr/share/orthanc/plugins/libOrthancDicomWeb.so'];
const PASSWORD = 'stow-secret';
const TOKEN = 'stow-token-1';

// Orthanc has no bearer tokens of its own: its HTTP filter (Lua) stands in for a server that checks one, on the
// DICOMweb root only (the helper's REST calls pass). A refused request gets Orthanc's 403.
const BEARER_FILTER = `function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
  if string.sub(uri, 1, 10) == '/dicom-web' then
    return httpHeaders['authorization'] == 'Bearer ${TOKEN}'
  end
  return true
end
`;

let open: OrthancUnderTest;
let guarded: OrthancUnderTest;
let bearer: OrthancUnderTest;
let dir: string;

test.before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'dicomweb-'));
  writeFileSync(path.join(dir, 'right'), `${PASSWORD}\n`);
  writeFileSync(path.join(dir, 'wrong'), 'not-it\n');
  open = await startOrthanc({ extraConfig: { Plugins: PLUGINS } });
  writeFileSync(path.join(dir, 'bearer.lua'), BEARER_FILTER);
  bearer = await startOrthanc({ extraConfig: { Plugins: PLUGINS, LuaScripts: [path.join(dir, 'bearer.lua')] } });
  guarded = await startOrthanc({
    extraConfig: { Plugins: PLUGINS },
    basicAuth: { username: 'gateway', password: PASSWORD },
  });
});
test.after.always(async () => {
  await open?.dispose();
  await guarded?.dispose();
  await bearer?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function quietLogger(): Logger {
  return createLogger({
    level: 'error',
    format: 'json',
    stream: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
  });
}

function destination(
  baseUrl: string,
  auth: DicomwebAuth = { type: 'none' },
  rows: AuditRecord[] = [],
): PacsDicomwebDestination {
  return new PacsDicomwebDestination({
    name: 'orthanc-web',
    baseUrl,
    auth,
    timeoutMs: 10_000,
    logger: quietLogger(),
    audit: { record: (entry) => rows.push(entry) },
  });
}

const root = (o: OrthancUnderTest): string => `http://127.0.0.1:${o.httpPort}/dicom-web`;

async function guardedHas(sopInstanceUid: string): Promise<boolean> {
  return (await guarded.lookupInstance(sopInstanceUid)) !== undefined;
}

test('STOW-RS stores an image and its heatmap SC in Orthanc; one pacs.sent success for the study', async (t) => {
  const { dx, sc, items } = studyPair();
  const rows: AuditRecord[] = [];
  t.deepEqual(await destination(root(open), { type: 'none' }, rows).deliver(items), { kind: 'delivered' });
  t.truthy(await open.lookupInstance(dx.sopInstanceUid));
  const scId = await open.lookupInstance(sc.sopInstanceUid);
  t.truthy(scId);
  const tags = await open.instanceTags(scId ?? '');
  t.is(tags['StudyInstanceUID'], dx.studyInstanceUid);
  t.is(rows.length, 1);
  t.like(rows[0], { action: 'pacs.sent', outcome: 'success', target: `study ${dx.studyInstanceUid}` });
  t.deepEqual((rows[0]?.after as { sopInstanceUids: string[] }).sopInstanceUids, [
    dx.sopInstanceUid,
    sc.sopInstanceUid,
  ]);
});

test('delivering the same batch again is delivered (the server keeps one copy per SOP Instance UID)', async (t) => {
  const { dx, items } = studyPair();
  const d = destination(root(open));
  t.deepEqual(await d.deliver(items), { kind: 'delivered' });
  t.deepEqual(await d.deliver(items), { kind: 'delivered' });
  const id = await open.lookupInstance(dx.sopInstanceUid);
  const study = await open.getJson<{ ID: string; Series: string[] }>(`/instances/${id ?? ''}/study`);
  t.is(study.Series.length, 2);
  t.is((await open.getJson<unknown[]>(`/studies/${study.ID}/instances`)).length, 2);
});

test('nothing listening: retry with connection-refused, nothing parked; pacs.sent failure', async (t) => {
  const port = await freePort();
  const rows: AuditRecord[] = [];
  const outcome = await destination(`http://127.0.0.1:${port}/dicom-web`, { type: 'none' }, rows).deliver(
    studyPair().items,
  );
  t.like(outcome, { kind: 'retry', cause: 'connection-refused' });
  t.like(rows[0], { action: 'pacs.sent', outcome: 'failure' });
});

test('a wrong path (404): parked as dicomweb-not-found, the reason names the status and baseUrl', async (t) => {
  const outcome = await destination(`http://127.0.0.1:${open.httpPort}/no-such-root`).deliver(studyPair().items);
  t.like(outcome, { kind: 'parked', cause: 'dicomweb-not-found' });
  t.regex(outcome.kind === 'parked' ? outcome.reason : '', /HTTP 404.*baseUrl/);
});

test('basic auth with a wrong password: parked as dicomweb-not-authorized, nothing stored', async (t) => {
  const { dx, items } = studyPair();
  const outcome = await destination(root(guarded), {
    type: 'basic',
    username: 'gateway',
    passwordFile: path.join(dir, 'wrong'),
  }).deliver(items);
  t.like(outcome, { kind: 'parked', cause: 'dicomweb-not-authorized' });
  t.regex(outcome.kind === 'parked' ? outcome.reason : '', /HTTP 401/);
  t.false(await guardedHas(dx.sopInstanceUid));
});

test('no credentials for a server that asks for them: parked as dicomweb-not-authorized', async (t) => {
  const outcome = await destination(root(guarded)).deliver(studyPair().items);
  t.like(outcome, { kind: 'parked', cause: 'dicomweb-not-authorized' });
});

test('basic auth with the right password (read from its file): delivered and stored', async (t) => {
  const { dx, sc, items } = studyPair();
  const outcome = await destination(root(guarded), {
    type: 'basic',
    username: 'gateway',
    passwordFile: path.join(dir, 'right'),
  }).deliver(items);
  t.deepEqual(outcome, { kind: 'delivered' });
  t.true(await guardedHas(dx.sopInstanceUid));
  t.true(await guardedHas(sc.sopInstanceUid));
});

test('a password file that cannot be read: retry (an admin puts it in place), nothing sent', async (t) => {
  const { dx, items } = studyPair();
  const outcome = await destination(root(guarded), {
    type: 'basic',
    username: 'gateway',
    passwordFile: path.join(dir, 'missing'),
  }).deliver(items);
  t.like(outcome, { kind: 'retry', cause: 'dicomweb-credentials-unreadable' });
  t.false(await guardedHas(dx.sopInstanceUid));
});

test('bearer auth: the token read from its file is sent (delivered); a wrong token gets 403: parked; no file: retry', async (t) => {
  writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
  writeFileSync(path.join(dir, 'bad-token'), 'other-token\n');
  const { dx, items } = studyPair();
  t.deepEqual(await destination(root(bearer), { type: 'bearer', tokenFile: path.join(dir, 'token') }).deliver(items), {
    kind: 'delivered',
  });
  t.truthy(await bearer.lookupInstance(dx.sopInstanceUid));
  const wrong = await destination(root(bearer), { type: 'bearer', tokenFile: path.join(dir, 'bad-token') }).deliver(
    studyPair().items,
  );
  t.like(wrong, { kind: 'parked', cause: 'dicomweb-not-authorized' });
  t.regex(wrong.kind === 'parked' ? wrong.reason : '', /HTTP 403/);
  const missing = await destination(root(bearer), { type: 'bearer', tokenFile: path.join(dir, 'no-token') }).deliver(
    studyPair().items,
  );
  t.like(missing, { kind: 'retry', cause: 'dicomweb-credentials-unreadable' });
});

test('an unreadable object is parked as invalid-object; the readable ones are still stored', async (t) => {
  const { dx } = studyPair();
  const outcome = await destination(root(open)).deliver([
    { bytes: dx.bytes, label: 'dx' },
    { bytes: Buffer.from('not DICOM at all'), label: 'broken' },
  ]);
  t.like(outcome, { kind: 'parked', cause: 'invalid-object' });
  t.regex(outcome.kind === 'parked' ? outcome.reason : '', /1 of 2 objects.*broken/);
  t.truthy(await open.lookupInstance(dx.sopInstanceUid));
});

test('a stopped destination answers retry without sending', async (t) => {
  const { dx, items } = studyPair();
  const d = destination(root(open));
  await d.stop();
  t.like(await d.deliver(items), { kind: 'retry', cause: 'stopped' });
  t.is(await open.lookupInstance(dx.sopInstanceUid), undefined);
});

/** A server that accepts connections and never answers (a hung PACS web tier); closed by the test. */
async function silentServer(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('a server that never answers: retry with response-timeout after timeoutMs; stop() ends a delivery in flight with retry', async (t) => {
  const silent = await silentServer();
  t.teardown(silent.close);
  const slow = new PacsDicomwebDestination({
    name: 'silent',
    baseUrl: `http://127.0.0.1:${silent.port}/dicom-web`,
    auth: { type: 'none' },
    timeoutMs: 300,
    logger: quietLogger(),
  });
  t.like(await slow.deliver(studyPair().items), { kind: 'retry', cause: 'response-timeout' });
  const held = new PacsDicomwebDestination({
    name: 'silent',
    baseUrl: `http://127.0.0.1:${silent.port}/dicom-web`,
    auth: { type: 'none' },
    timeoutMs: 60_000,
    logger: quietLogger(),
  });
  const before = silent.connections();
  const pending = held.deliver(studyPair().items);
  await waitUntil(() => silent.connections() > before, 'the request connected');
  await held.stop();
  t.like(await pending, { kind: 'retry', cause: 'stopped' });
});

test('probe: ok against the DICOMweb root, not ok (with the status) on a wrong path or wrong password', async (t) => {
  t.like(await destination(root(open)).probe(), { ok: true });
  const wrongPath = await destination(`http://127.0.0.1:${open.httpPort}/nowhere`).probe();
  t.false(wrongPath.ok);
  t.regex(wrongPath.detail, /404/);
  const wrongPassword = await destination(root(guarded), {
    type: 'basic',
    username: 'gateway',
    passwordFile: path.join(dir, 'wrong'),
  }).probe();
  t.false(wrongPassword.ok);
  t.regex(wrongPassword.detail, /401/);
});

test("the console's echo of a dicomweb destination: GET with its credentials; ok, or not ok with the status", async (t) => {
  const config = (auth: unknown) => ({
    kind: 'pacs' as const,
    ...pacsDestinationSchema.parse({ type: 'dicomweb', name: 'web', baseUrl: root(guarded), auth }),
  });
  const good = await probeDestination(
    config({ type: 'basic', username: 'gateway', passwordFile: path.join(dir, 'right') }),
    'CXR_GATEWAY',
  );
  t.like(good, { destination: 'web', ok: true });
  const bad = await probeDestination(config({ type: 'none' }), 'CXR_GATEWAY');
  t.false(bad.ok);
  t.regex(bad.detail, /HTTP 401/);
});

test('failedInstances reads the Failed SOP Sequence of a DICOM JSON STOW-RS response', (t) => {
  const body = JSON.stringify({
    '00081198': {
      vr: 'SQ',
      Value: [
        { '00081155': { vr: 'UI', Value: ['1.2.3'] }, '00081197': { vr: 'US', Value: [0xa700] } },
        { '00081155': { vr: 'UI', Value: ['1.2.4'] } },
      ],
    },
  });
  t.deepEqual(failedInstances(body), [
    { sopInstanceUid: '1.2.3', reason: 0xa700 },
    { sopInstanceUid: '1.2.4', reason: 0x0110 },
  ]);
  t.deepEqual(failedInstances(''), []);
  t.is(failedInstances('<not json'), undefined);
});
