import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewayError } from '../../src/errors.js';
import { atnaMessage } from '../../src/reporting/atna-message.js';
import { formatSyslog, SyslogSender } from '../../src/export/syslog-sender.js';
import { checkAtna } from '../helpers/atna-check.js';
import { startTlsSyslogListener } from '../helpers/syslog-tls-listener.js';
import { issueCertificate, makeTestPki } from '../helpers/test-pki.js';
import { waitUntil } from '../helpers/wait-until.js';

// The shared test PKI (made with openssl at test time), plus a server pair signed by the other CA: a server our
// caFile does not vouch for.
async function makePki(dir: string) {
  const pki = await makeTestPki(dir);
  const untrusted = await issueCertificate(
    dir,
    { cert: pki.otherCaCert, key: path.join(dir, 'other-ca.key') },
    'untrusted-server',
    '/CN=127.0.0.1',
    'server',
  );
  return { ...pki, untrustedServerCert: untrusted.cert, untrustedServerKey: untrusted.key };
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
  t.like(listener.records()[0], { client: 'MODALITY1' });
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
