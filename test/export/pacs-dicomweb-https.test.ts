// STOW-RS over HTTPS against real servers (issue 19's gap: Orthanc 1.10's own SslEnabled resets every handshake on
// this machine). A hospital often puts its PACS's DICOMweb behind a TLS reverse proxy; here that is Debian's HAProxy
// terminating TLS (certificates made at test time) in front of Orthanc with its DICOMweb plugin.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { PacsDicomwebDestination } from '../../src/export/pacs-dicomweb-destination.js';
import { createLogger } from '../../src/logging/logger.js';
import type { AuditRecord } from '../../src/store/audit-trail.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import { freePort } from '../helpers/ports.js';
import { makeTestPki, type TestPki } from '../helpers/test-pki.js';
import { studyPair } from './secondary-capture-fixture.js';

const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p));
const PLUGINS = ['/usr/share/orthanc/plugins/libOrthancGdcm.so', '/usr/share/orthanc/plugins/libOrthancDicomWeb.so'];

let orthanc: OrthancUnderTest;
let pki: TestPki;
let dir: string;
let port = 0;
let stopProxy: (() => Promise<void>) | undefined;

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: p });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test.before(async () => {
  if (HAPROXY === undefined)
    throw new Error("Debian's haproxy is not installed (apt-get install haproxy; .ci/run installs it)");
  dir = mkdtempSync(path.join(os.tmpdir(), 'dicomweb-https-'));
  [orthanc, pki] = await Promise.all([startOrthanc({ extraConfig: { Plugins: PLUGINS } }), makeTestPki(dir)]);
  // HAProxy takes the certificate and its key in one PEM file.
  const pem = path.join(dir, 'server.pem');
  writeFileSync(pem, readFileSync(pki.serverCert, 'utf8') + readFileSync(pki.serverKey, 'utf8'));
  port = await freePort();
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '    maxconn 100',
      'defaults',
      '    mode http',
      '    timeout connect 5s',
      '    timeout client 30s',
      '    timeout server 30s',
      'frontend dicomweb_tls',
      `    bind 127.0.0.1:${port} ssl crt ${pem}`,
      '    default_backend orthanc',
      'backend orthanc',
      `    server orthanc 127.0.0.1:${orthanc.httpPort}`,
      '',
    ].join('\n'),
  );
  const proxy = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proxy.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise((resolve) => proxy.once('exit', resolve));
  stopProxy = async () => {
    if (proxy.exitCode === null) proxy.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (proxy.exitCode !== null) throw new Error(`haproxy exited: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`haproxy did not listen: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

test.after.always(async () => {
  await stopProxy?.();
  await orthanc?.dispose();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function destination(baseUrl: string, caFile: string | undefined, rows: AuditRecord[] = []): PacsDicomwebDestination {
  return new PacsDicomwebDestination({
    name: 'orthanc-https',
    baseUrl,
    auth: { type: 'none' },
    ...(caFile === undefined ? {} : { caFile }),
    timeoutMs: 10_000,
    logger: createLogger({
      level: 'error',
      format: 'json',
      stream: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
    }),
    audit: { record: (entry) => rows.push(entry) },
  });
}

test.serial(
  'a server whose certificate chains to tls.caFile: delivered over HTTPS and stored in Orthanc',
  async (t) => {
    const { dx, sc, items } = studyPair();
    const rows: AuditRecord[] = [];
    const outcome = await destination(`https://127.0.0.1:${port}/dicom-web`, pki.caCert, rows).deliver(items);
    t.deepEqual(outcome, { kind: 'delivered' });
    t.truthy(await orthanc.lookupInstance(dx.sopInstanceUid));
    t.truthy(await orthanc.lookupInstance(sc.sopInstanceUid));
    t.like(rows[0], { action: 'pacs.sent', outcome: 'success' });
    t.like(rows[0]?.after, { tls: true, url: `https://127.0.0.1:${port}/dicom-web/studies` });
  },
);

test.serial('the same server by its other name in the certificate (localhost): delivered', async (t) => {
  const outcome = await destination(`https://localhost:${port}/dicom-web`, pki.caCert).deliver(studyPair().items);
  t.deepEqual(outcome, { kind: 'delivered' });
});

test.serial(
  'a certificate from a CA we do not trust (another caFile, or the system store): retry as tls-untrusted-certificate, nothing stored',
  async (t) => {
    for (const caFile of [pki.otherCaCert, undefined]) {
      const { dx, items } = studyPair();
      const outcome = await destination(`https://127.0.0.1:${port}/dicom-web`, caFile).deliver(items);
      t.like(outcome, { kind: 'retry', cause: 'tls-untrusted-certificate' }, `caFile ${caFile ?? '(system)'}`);
      t.falsy(await orthanc.lookupInstance(dx.sopInstanceUid));
    }
  },
);

test.serial('a name the certificate does not carry (127.0.0.2): retry as tls-untrusted-certificate', async (t) => {
  // The same proxy reached as 127.0.0.2 (a plain TCP forwarder there): a name its certificate does not carry.
  const server = net.createServer((socket) => {
    const upstream = net.connect({ host: '127.0.0.1', port });
    socket.pipe(upstream).pipe(socket);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  const other = await freePort();
  await new Promise<void>((resolve) => server.listen(other, '127.0.0.2', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { dx, items } = studyPair();
  const outcome = await destination(`https://127.0.0.2:${other}/dicom-web`, pki.caCert).deliver(items);
  t.like(outcome, { kind: 'retry', cause: 'tls-untrusted-certificate' });
  t.regex(outcome.kind === 'retry' ? outcome.reason : '', /127\.0\.0\.2|altnames|hostname|IP/i);
  t.falsy(await orthanc.lookupInstance(dx.sopInstanceUid));
});
