// The admin port over HTTPS (admin.tls): /healthz and /metrics, the console's login with a Secure cookie, the
// certificate re-read by reloadTls (SIGHUP) for new connections, and files that cannot be used refused at start.

import test from 'ava';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { AdminServer } from '../../src/admin/admin-server.js';
import { GatewayError } from '../../src/errors.js';
import { createLogger } from '../../src/logging/logger.js';
import type { AuditRecord } from '../../src/store/audit-trail.js';
import { JobStore } from '../../src/store/job-store.js';
import { StoreMetrics } from '../../src/store/store-metrics.js';
import { makeTestPki, type TestPki } from '../helpers/test-pki.js';
import { runCli, startGateway } from '../helpers/gateway-process.js';
import { waitUntil } from '../helpers/wait-until.js';
import { FakeAuth, FakeConsole } from './http/fake-backends.js';

let dir: string;
let pki: TestPki;

test.before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'admin-https-'));
  pki = await makeTestPki(dir);
});

function start(t: import('ava').ExecutionContext, certFile: string, keyFile: string, withConsole = false) {
  const store = JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'admin-https-db-')), 'db.sqlite'));
  t.teardown(() => store.close());
  const lines: Array<Record<string, unknown>> = [];
  const audit: AuditRecord[] = [];
  const admin = new AdminServer({
    host: '127.0.0.1',
    port: 0,
    metrics: new StoreMetrics(store.connection),
    logger: createLogger({
      level: 'info',
      format: 'json',
      stream: new Writable({
        write: (chunk: Buffer, _e, cb) => {
          for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as never);
          cb();
        },
      }),
    }),
    health: {
      storeOk: () => true,
      freeDiskBytes: () => 10 * 1048576,
      minFreeDiskBytes: 1048576,
      models: () => [],
      dicomListening: () => true,
    },
    settings: { tls: { certFile, keyFile } },
    audit: { record: (entry: AuditRecord) => audit.push(entry) },
    ...(withConsole
      ? { console: new FakeConsole(), auth: new FakeAuth().addUser('alice', 'correct horse', 'admin') }
      : {}),
  });
  t.teardown(() => admin.stop());
  return { admin, lines, audit };
}

/** One request with the test CA as the only trust anchor (the real verification, host name included). */
function request(
  port: number,
  urlPath: string,
  options: { method?: string; body?: string; ca?: string } = {},
): Promise<{
  status: number;
  headers: import('node:http').IncomingHttpHeaders;
  body: string;
  cert: tls.PeerCertificate;
}> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method: options.method ?? 'GET',
        ca: readFileSync(options.ca ?? pki.caCert),
        agent: false,
        headers: options.body !== undefined ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        const cert = (res.socket as tls.TLSSocket).getPeerCertificate();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, cert }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

test('/healthz and /metrics over HTTPS, verified against the test CA; plain HTTP gets no answer', async (t) => {
  const { admin, audit } = start(t, pki.serverCert, pki.serverKey);
  t.true(admin.secure);
  const { port } = await admin.start();
  const health = await request(port, '/healthz');
  t.is(health.status, 200);
  t.like(JSON.parse(health.body), { status: 'ok' });
  t.is(health.cert.subject.CN, '127.0.0.1');
  const metrics = await request(port, '/metrics');
  t.is(metrics.status, 200);
  t.regex(metrics.headers['content-type'] ?? '', /text\/plain/);
  // A client that trusts another CA refuses the port's certificate.
  await t.throwsAsync(request(port, '/healthz', { ca: pki.otherCaCert }), {
    message: /self[- ]signed|unable to (verify|get)/i,
  });
  // Plain http to the HTTPS port: not served.
  await t.throwsAsync(fetch(`http://127.0.0.1:${port}/healthz`));
  // Both failed handshakes are security events (the plain request's is seen once the server has read it).
  await waitUntil(() => audit.length >= 2, 'two tls.failed audit events', 10_000);
  t.true(audit.every((a) => a.category === 'security' && a.action === 'tls.failed' && a.outcome === 'failure'));
  t.deepEqual(audit[0]?.after, { listener: 'admin', address: '127.0.0.1' });
});

/** A handshake with the given client settings: undefined when it succeeds, else the error's code. */
function handshake(port: number, options: tls.ConnectionOptions): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(pki.caCert), ...options });
    socket.once('secureConnect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

test('BCP 195: TLS 1.1 and a CBC suite are refused by the server; TLS 1.2 with ECDHE and AES-GCM is accepted', async (t) => {
  const { admin } = start(t, pki.serverCert, pki.serverKey);
  const { port } = await admin.start();
  // SECLEVEL=0 lets our own client offer TLS 1.1, so the refusal seen is the server's (its protocol_version alert).
  t.regex(
    (await handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })) ??
      'accepted',
    /PROTOCOL_VERSION/,
  );
  t.regex(
    (await handshake(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA' })) ??
      'accepted',
    /HANDSHAKE_FAILURE|NO_SHARED_CIPHER/,
  );
  t.is(await handshake(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }), undefined);
  t.is(await handshake(port, {}), undefined);
});

test('login over HTTPS sets the session cookie with Secure', async (t) => {
  const { admin } = start(t, pki.serverCert, pki.serverKey, true);
  const { port } = await admin.start();
  const login = await request(port, '/login', {
    method: 'POST',
    body: JSON.stringify({ user: 'alice', password: 'correct horse' }),
  });
  t.is(login.status, 200, login.body);
  const cookies = ([] as string[]).concat(login.headers['set-cookie'] ?? []);
  const session = cookies.find((c) => c.startsWith('cxr_session='));
  t.truthy(session);
  t.regex(session ?? '', /;\s*Secure/i);
  t.regex(session ?? '', /HttpOnly/i);
});

test('reloadTls: new connections get the renewed certificate; an unreadable file keeps the running one', async (t) => {
  const certFile = path.join(dir, 'admin-cert.pem');
  const keyFile = path.join(dir, 'admin-key.pem');
  copyFileSync(pki.serverCert, certFile);
  copyFileSync(pki.serverKey, keyFile);
  const { admin, lines } = start(t, certFile, keyFile);
  const { port } = await admin.start();
  const before = (await request(port, '/healthz')).cert.fingerprint256;
  // Renewed: another pair (the client pair of the same CA will do: what matters is which one is served).
  copyFileSync(pki.clientCert, certFile);
  copyFileSync(pki.clientKey, keyFile);
  t.true(admin.reloadTls());
  const served = await new Promise<tls.PeerCertificate>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate());
      socket.destroy();
    });
    socket.once('error', reject);
  });
  t.not(served.fingerprint256, before);
  t.is(served.subject.CN, 'MODALITY1');
  t.true(lines.some((l) => l.event === 'EXPORT-6420'));
  // A broken renewal (a key that is not PEM) is refused, logged, and the served certificate stays.
  writeFileSync(keyFile, 'not a key\n');
  t.false(admin.reloadTls());
  t.true(lines.some((l) => l.event === 'EXPORT-6421' && l.level === 'error'));
  const still = await new Promise<tls.PeerCertificate>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate());
      socket.destroy();
    });
    socket.once('error', reject);
  });
  t.is(still.fingerprint256, served.fingerprint256);
});

test('a missing file, or a key that is not the certificate’s, stops the start with ADMIN_TLS_FILE_UNREADABLE', async (t) => {
  for (const [cert, key] of [
    [pki.serverCert, path.join(dir, 'missing.key')],
    [pki.serverCert, pki.clientKey],
  ] as const) {
    const { admin } = start(t, cert, key);
    const error = await t.throwsAsync(admin.start());
    t.true(error instanceof GatewayError && error.code === 'ADMIN_TLS_FILE_UNREADABLE', String(error));
  }
});

test('the daemon: start-up security warnings (CONFIG-9005), the admin URL in https, /healthz over HTTPS, SIGHUP re-reads the certificate', async (t) => {
  const keyFile = path.join(dir, 'daemon-admin.key');
  copyFileSync(pki.serverKey, keyFile);
  chmodSync(keyFile, 0o644);
  const gateway = await startGateway({
    admin: { tls: { certFile: pki.serverCert, keyFile } },
    destinations: {
      pacs: [{ type: 'folder', name: 'pacs-folder', path: 'out/dicom' }],
      ris: [
        { type: 'folder', name: 'ris-folder', path: 'out/hl7' },
        // TEST-NET-1: never contacted (no rule routes to it); only its missing TLS is warned about.
        { type: 'mllp', name: 'remote-ris', host: '192.0.2.10', port: 2575 },
      ],
    },
  });
  t.teardown(() => gateway.stop());
  const ready = await gateway.waitForLog((l) => l.event === 'GATEWAY-7010', 'the admin port');
  const url = new URL(String(ready.url));
  t.is(url.protocol, 'https:');
  const warnings = gateway.logs.filter((l) => l.event === 'CONFIG-9005');
  t.deepEqual(warnings.map((w) => `${String(w.code)} ${String(w.key)}`).sort(), [
    'key-file-readable admin.tls.keyFile',
    'tls-off destinations.ris.1.tls',
  ]);
  t.true(warnings.every((w) => w.level === 'warn'));
  t.is((await request(Number(url.port), '/healthz')).status, 200);
  // Plain HTTP to the HTTPS port: refused, and a security event in the daemon's audit trail.
  await t.throwsAsync(fetch(`http://127.0.0.1:${url.port}/healthz`));
  type Row = { category: string; action: string; address: string | null; after: unknown };
  const securityRows = async (): Promise<Row[]> => {
    const result = await runCli(['audit', '--category', 'security', '--json', '--config', gateway.configPath]);
    return (JSON.parse(result.stdout) as { items: Row[] }).items;
  };
  // The server writes the row once it has read the plain request: poll the store until it is there.
  let rows = await securityRows();
  for (let i = 0; i < 40 && !rows.some((r) => r.action === 'tls.failed'); i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    rows = await securityRows();
  }
  t.like(
    rows.find((r) => r.action === 'tls.failed'),
    { category: 'security', address: '127.0.0.1', after: { listener: 'admin', address: '127.0.0.1' } },
  );
  process.kill(gateway.pid, 'SIGHUP');
  await gateway.waitForLog((l) => l.event === 'EXPORT-6420', 'the admin certificate reloaded', 20_000);
  t.pass();
});
