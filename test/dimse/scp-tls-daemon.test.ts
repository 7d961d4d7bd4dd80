import test from 'ava';
import Database from 'better-sqlite3';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { echoscu } from '../helpers/dcmtk.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-process.js';
import { freePort } from '../helpers/ports.js';
import { issueCertificate, makeTestPki, type TestPki } from '../helpers/test-pki.js';

// The daemon with dicom.tls (mutual TLS, subjects bound to AEs) beside its plain listener: DCMTK over TLS is
// accepted and audited in the job store; SIGHUP re-reads the certificate; a broken key file refuses the reload
// and the old certificate stays.

const dir = mkdtempSync(path.join(os.tmpdir(), 'scp-tls-daemon-'));
let pki: TestPki;
let gateway: GatewayUnderTest;
let tlsPort: number;
const served = { cert: path.join(dir, 'served.crt'), key: path.join(dir, 'served.key') };

test.before(async () => {
  pki = await makeTestPki(dir);
  copyFileSync(pki.serverCert, served.cert);
  copyFileSync(pki.serverKey, served.key);
  // Readable by others: the start-up log must say so.
  chmodSync(served.key, 0o644);
  tlsPort = await freePort();
  gateway = await startGateway({
    dicom: {
      tls: {
        port: tlsPort,
        certFile: served.cert,
        keyFile: served.key,
        caFile: pki.caCert,
        requireClientCertificate: true,
        allowedSubjects: [{ subject: 'CN=MODALITY1', aeTitle: 'MODALITY1' }],
      },
    },
  });
});
test.after.always(async () => {
  await gateway?.stop();
});

function auditRows(): Array<{ category: string; action: string; user: string | null; after: string | null }> {
  const db = new Database(path.join(gateway.workDir, 'data', 'db', 'cxr-gateway.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT category, action, user, after FROM audit_events ORDER BY id').all() as never;
  } finally {
    db.close();
  }
}

function servedCommonName(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: tlsPort,
      ca: [readFileSync(pki.caCert)],
      cert: readFileSync(pki.clientCert),
      key: readFileSync(pki.clientKey),
    });
    socket.once('secureConnect', () => {
      resolve(String(socket.getPeerCertificate().subject.CN));
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

test.serial(
  'the daemon listens on both ports; echoscu +tls is accepted and its association is in the audit trail',
  async (t) => {
    const ready = await gateway.waitForLog((l) => l.event === 'DIMSE-1000', 'the listener');
    t.is(ready.tlsPort, tlsPort);
    const unsafe = gateway.logs.filter((l) => l.event === 'CONFIG-9005').map((l) => String(l.why));
    t.is(unsafe.length, 1, unsafe.join('; '));
    t.regex(unsafe[0] ?? '', /served\.key is readable by its group and others \(mode 644\)/);
    const overTls = await echoscu(tlsPort, {
      callingAe: 'MODALITY1',
      extraArgs: ['+tls', pki.clientKey, pki.clientCert, '-pw', '+cf', pki.caCert],
    });
    t.is(overTls.code, 0, overTls.stderr);
    const plain = await echoscu(gateway.port, { callingAe: 'MODALITY1' });
    t.is(plain.code, 0, plain.stderr);
    const accepted = auditRows().filter((r) => r.category === 'dicom' && r.action === 'association.accepted');
    t.deepEqual(
      accepted.map((r) => JSON.parse(r.after ?? '{}') as { tls: boolean }).map((a) => a.tls),
      [true, false],
    );
  },
);

test.serial(
  'SIGHUP re-reads the certificate; a key file that cannot be used refuses the reload and keeps the old one',
  async (t) => {
    t.is(await servedCommonName(), '127.0.0.1');
    const renewed = await issueCertificate(
      dir,
      { cert: pki.caCert, key: path.join(dir, 'test-ca.key') },
      'renewed',
      '/CN=renewed-gateway',
      'server',
    );
    copyFileSync(renewed.cert, served.cert);
    copyFileSync(renewed.key, served.key);
    const reloaded = gateway.logs.length;
    process.kill(gateway.pid, 'SIGHUP');
    await gateway.waitForLog((l) => l.event === 'DIMSE-1402' && gateway.logs.indexOf(l) >= reloaded, 'the TLS reload');
    t.is(await servedCommonName(), 'renewed-gateway');

    writeFileSync(served.key, 'not a key\n');
    const refused = gateway.logs.length;
    process.kill(gateway.pid, 'SIGHUP');
    const line = await gateway.waitForLog(
      (l) => l.event === 'DIMSE-1403' && gateway.logs.indexOf(l) >= refused,
      'the refused TLS reload',
    );
    t.regex(String(line.error), /served\.key/);
    t.is(await servedCommonName(), 'renewed-gateway');
  },
);
