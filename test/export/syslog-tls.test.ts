import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayError } from '../../src/errors.js';
import { atnaMessage } from '../../src/reporting/atna-message.js';
import { formatSyslog, SyslogSender } from '../../src/export/syslog-sender.js';
import { checkAtna } from '../helpers/atna-check.js';
import { runCommand } from '../helpers/run-command.js';
import { startTlsSyslogListener } from '../helpers/syslog-tls-listener.js';
import { waitUntil } from '../helpers/wait-until.js';

// A minimal test PKI made with openssl at test time (the shared test/helpers/test-pki.ts comes with the "dicom-tls"
// part; this keeps its interface's spirit: a CA, a server pair for 127.0.0.1/localhost, a client pair, and a pair
// signed by another CA).
interface Pki {
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCaCert: string;
  untrustedServerCert: string;
  untrustedServerKey: string;
  untrustedClientCert: string;
  untrustedClientKey: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const r = await runCommand('openssl', args, { cwd: dir, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

async function makePki(dir: string): Promise<Pki> {
  const p = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    await openssl(dir, [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      p(`${ca}.key`),
      '-out',
      p(`${ca}.crt`),
      '-days',
      '2',
      '-subj',
      `/CN=${ca}`,
    ]);
  }
  writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(p('client.ext'), 'extendedKeyUsage=clientAuth\n');
  const leaf = async (name: string, cn: string, ca: string, ext: string) => {
    await openssl(dir, ['req', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${cn}`]);
    await openssl(dir, [
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p(`${ca}.crt`),
      '-CAkey',
      p(`${ca}.key`),
      '-CAcreateserial',
      '-out',
      p(`${name}.crt`),
      '-days',
      '2',
      '-extfile',
      p(ext),
    ]);
  };
  await leaf('server', 'localhost', 'ca', 'server.ext');
  await leaf('client', 'CXR_GATEWAY', 'ca', 'client.ext');
  await leaf('untrusted', 'localhost', 'other-ca', 'server.ext');
  await leaf('untrusted-client', 'CXR_GATEWAY', 'other-ca', 'client.ext');
  return {
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    otherCaCert: p('other-ca.crt'),
    untrustedServerCert: p('untrusted.crt'),
    untrustedServerKey: p('untrusted.key'),
    untrustedClientCert: p('untrusted-client.crt'),
    untrustedClientKey: p('untrusted-client.key'),
  };
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-syslog-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function message(id: number): Buffer {
  const xml = atnaMessage(
    {
      id,
      at: Date.UTC(2026, 11, 6, 14, 0, id),
      category: 'security',
      action: 'tls.failed',
      user: null,
      role: null,
      address: '10.0.0.9',
      target: null,
      outcome: 'failure',
      after: JSON.stringify({ listener: 'dicom-tls', address: '10.0.0.9' }),
      detail: 'certificate verify failed',
    },
    { sourceId: 'CXR_GATEWAY', aeTitle: 'CXR_GATEWAY' },
  );
  return formatSyslog(
    { at: Date.now(), severity: 4, msgId: 'IHE+RFC-3881', sequenceId: id, body: xml },
    { facility: 10, appName: 'cxr-gateway' },
  );
}

test('TLS (RFC 5425): the receiver verified against caFile gets octet-counted frames over TLS 1.2+, each a valid audit message', async (t) => {
  const dir = tempDir(t);
  const pki = await makePki(dir);
  const listener = await startTlsSyslogListener(dir, { cert: pki.serverCert, key: pki.serverKey });
  t.teardown(() => listener.stop());
  const sender = new SyslogSender({ transport: 'tls', host: '127.0.0.1', port: listener.port, caFile: pki.caCert });
  t.teardown(() => sender.close());
  for (const id of [1, 2, 3]) await sender.send(message(id));
  await waitUntil(() => listener.records().length >= 3, 'the TLS listener to get 3 frames', 15_000);
  const records = listener.records();
  t.deepEqual(
    records.map((r) => r.frame?.match(/\[meta sequenceId="(\d+)"\]/)?.[1]),
    ['1', '2', '3'],
  );
  for (const r of records) {
    t.true(r.version === 'TLSv1.2' || r.version === 'TLSv1.3', r.version);
    t.true(r.frame?.startsWith('<84>1 '), r.frame?.slice(0, 10));
  }
  const checks = checkAtna(records.map((r) => (r.frame ?? '').slice((r.frame ?? '').indexOf('\uFEFF') + 1)));
  for (const c of checks) t.deepEqual(c.errors, []);
});

test('mutual TLS: the gateway presents its client certificate to a receiver that requires one', async (t) => {
  const dir = tempDir(t);
  const pki = await makePki(dir);
  const listener = await startTlsSyslogListener(dir, {
    cert: pki.serverCert,
    key: pki.serverKey,
    clientCa: pki.caCert,
  });
  t.teardown(() => listener.stop());
  const sender = new SyslogSender({
    transport: 'tls',
    host: 'localhost',
    port: listener.port,
    caFile: pki.caCert,
    certFile: pki.clientCert,
    keyFile: pki.clientKey,
  });
  t.teardown(() => sender.close());
  await sender.send(message(7));
  await waitUntil(() => listener.records().length >= 1, 'the TLS listener to get the frame', 15_000);
  t.like(listener.records()[0], { client: 'CXR_GATEWAY' });
});

test('TLS: a receiver whose certificate does not chain to caFile is refused (AUDIT_SYSLOG_TLS) before anything is sent', async (t) => {
  const dir = tempDir(t);
  const pki = await makePki(dir);
  const listener = await startTlsSyslogListener(dir, { cert: pki.untrustedServerCert, key: pki.untrustedServerKey });
  t.teardown(() => listener.stop());
  const sender = new SyslogSender({ transport: 'tls', host: '127.0.0.1', port: listener.port, caFile: pki.caCert });
  t.teardown(() => sender.close());
  const error = await t.throwsAsync(sender.send(message(1)));
  t.is((error as GatewayError).code, 'AUDIT_SYSLOG_TLS');
  // The listener logs the handshake it saw fail: proof the refusal happened there, with no frame before it.
  await waitUntil(() => listener.records().length >= 1, 'the listener to log the failed handshake', 15_000);
  t.true(listener.records().every((r) => r.frame === undefined));
});

test('TLS: an unreadable caFile is AUDIT_SYSLOG_FILES, naming the file', async (t) => {
  const sender = new SyslogSender({ transport: 'tls', host: '127.0.0.1', port: 1, caFile: '/nonexistent/ca.crt' });
  const error = await t.throwsAsync(sender.send(message(1)));
  t.is((error as GatewayError).code, 'AUDIT_SYSLOG_FILES');
  t.regex(error?.message ?? '', /\/nonexistent\/ca\.crt/);
});

for (const [what, client] of [
  ['a client certificate the receiver does not trust', 'untrusted'],
  ['no client certificate', 'none'],
] as const) {
  test(`mutual TLS: with ${what}, the send fails (AUDIT_SYSLOG_TLS) rather than counting a frame the receiver drops`, async (t) => {
    const dir = tempDir(t);
    const pki = await makePki(dir);
    const listener = await startTlsSyslogListener(dir, {
      cert: pki.serverCert,
      key: pki.serverKey,
      clientCa: pki.caCert,
    });
    t.teardown(() => listener.stop());
    const sender = new SyslogSender({
      transport: 'tls',
      host: '127.0.0.1',
      port: listener.port,
      caFile: pki.caCert,
      ...(client === 'untrusted' ? { certFile: pki.untrustedClientCert, keyFile: pki.untrustedClientKey } : {}),
    });
    t.teardown(() => sender.close());
    const error = await t.throwsAsync(sender.send(message(1)));
    t.is((error as GatewayError).code, 'AUDIT_SYSLOG_TLS', error?.message);
    await waitUntil(() => listener.records().length >= 1, 'the listener to log the refused handshake', 15_000);
    t.true(listener.records().every((r) => r.frame === undefined));
  });
}
