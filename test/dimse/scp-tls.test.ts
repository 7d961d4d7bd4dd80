import test from 'ava';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import tls from 'node:tls';
import { dicomSchema } from '../../src/config/schema.js';
import { CommandElement, CommandField, NO_DATA_SET, encodeCommand } from '../../src/dimse/dimse-messages.js';
import { echo } from '../../src/dimse/echo-scu.js';
import { ScuAssociation } from '../../src/dimse/scu-association.js';
import { StorageScp } from '../../src/dimse/storage-scp.js';
import { createLogger } from '../../src/logging/logger.js';
import type { AuditRecord, AuditRecorder } from '../../src/store/audit-trail.js';
import type { IngestOutcome, InstanceSink } from '../../src/store/instance-sink.js';
import { echoscu, storescu } from '../helpers/dcmtk.js';
import { writeImageFile } from '../helpers/dicom-factory.js';
import { freePort } from '../helpers/ports.js';
import { issueCertificate, makeTestPki, type TestPki } from '../helpers/test-pki.js';
import { waitUntil } from '../helpers/wait-until.js';

// The SCP's TLS listener against DCMTK's echoscu/storescu +tls (real OpenSSL peers), with mutual TLS and the
// certificate subject bound to a calling AE; a plain listener beside it; reloadTls; the audit rows of each event.

const dir = mkdtempSync(path.join(os.tmpdir(), 'scp-tls-'));
let pki: TestPki;
let scp: StorageScp;
let plainPort: number;
let tlsPort: number;
const rows: AuditRecord[] = [];
const audit: AuditRecorder = { record: (entry) => rows.push(entry) };
const STUDY = '1.2.826.0.1.3680043.10.543.17';

/** A sink that takes the bytes and says every instance is durable, in one study. */
const sink: InstanceSink = {
  begin: () => ({
    kind: 'transfer',
    transfer: {
      writable: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
      complete: async (): Promise<IngestOutcome> => ({ kind: 'stored', studyInstanceUid: STUDY, path: '/dev/null' }),
      abandon: async () => undefined,
    },
  }),
};

test.before(async () => {
  pki = await makeTestPki(dir);
  // The server serves copies, so the reload test can replace them without touching the PKI.
  copyFileSync(pki.serverCert, path.join(dir, 'served.crt'));
  copyFileSync(pki.serverKey, path.join(dir, 'served.key'));
  const base = dicomSchema.parse({
    host: '127.0.0.1',
    port: await freePort(),
    tls: {
      port: await freePort(),
      certFile: path.join(dir, 'served.crt'),
      keyFile: path.join(dir, 'served.key'),
      caFile: pki.caCert,
      requireClientCertificate: true,
      allowedSubjects: [{ subject: 'CN=MODALITY1', aeTitle: 'MODALITY1' }],
    },
  });
  const logger = createLogger({ level: 'error', format: 'json', stream: new PassThrough() });
  scp = new StorageScp({ config: base, sink, logger, audit });
  const address = await scp.start();
  plainPort = address.port;
  tlsPort = address.tlsPort ?? 0;
});
test.after.always(async () => {
  await scp?.stop(0);
});

const tlsArgs = (key: string, cert: string) => ['+tls', key, cert, '-pw', '+cf', pki.caCert];
const since = (n: number) => rows.slice(n);

test.serial(
  'echoscu +tls with a client certificate from our CA, as the AE bound to it: accepted and audited',
  async (t) => {
    const before = rows.length;
    const result = await echoscu(tlsPort, {
      callingAe: 'MODALITY1',
      extraArgs: tlsArgs(pki.clientKey, pki.clientCert),
    });
    t.is(result.code, 0, result.stderr);
    const accepted = since(before).find((r) => r.action === 'association.accepted');
    t.like(accepted, { category: 'dicom', user: 'MODALITY1', address: '127.0.0.1', target: 'called CXR_GATEWAY' });
    t.deepEqual(accepted?.after, {
      callingAe: 'MODALITY1',
      calledAe: 'CXR_GATEWAY',
      address: '127.0.0.1',
      tls: true,
      peerCertificateSubject: 'CN=MODALITY1',
    });
  },
);

test.serial('storescu +tls stores two images; one study.received row for the association when it ends', async (t) => {
  const before = rows.length;
  const files = [
    await writeImageFile(dir, { studyInstanceUid: STUDY, instanceNumber: 1, seed: 1 }),
    await writeImageFile(dir, { studyInstanceUid: STUDY, instanceNumber: 2, seed: 2 }),
  ];
  const result = await storescu(
    tlsPort,
    files.map((f) => f.path),
    { callingAe: 'MODALITY1', extraArgs: tlsArgs(pki.clientKey, pki.clientCert) },
  );
  t.is(result.code, 0, result.stderr);
  await waitUntil(() => since(before).some((r) => r.action === 'study.received'), 'the study.received row');
  const received = since(before).filter((r) => r.action === 'study.received');
  t.is(received.length, 1);
  t.like(received[0], { category: 'dicom', target: `study ${STUDY}`, outcome: 'success', user: 'MODALITY1' });
  t.like(received[0]?.after, {
    studyInstanceUid: STUDY,
    sopClassUids: [files[0]?.sopClassUid],
    instances: 2,
    callingAe: 'MODALITY1',
    calledAe: 'CXR_GATEWAY',
    address: '127.0.0.1',
  });
});

test.serial('a client certificate signed by another CA is refused at the handshake: tls.failed audited', async (t) => {
  const before = rows.length;
  const result = await echoscu(tlsPort, {
    callingAe: 'MODALITY1',
    extraArgs: tlsArgs(pki.untrustedClientKey, pki.untrustedClientCert),
  });
  t.not(result.code, 0);
  await waitUntil(() => since(before).some((r) => r.action === 'tls.failed'), 'the tls.failed row');
  const failed = since(before).find((r) => r.action === 'tls.failed');
  t.like(failed, { category: 'security', outcome: 'failure', address: '127.0.0.1' });
  t.regex(failed?.detail ?? '', /the client certificate was refused: UNABLE_TO_(GET_ISSUER_CERT|VERIFY)/);
  t.deepEqual(failed?.after, { listener: 'dicom-tls', address: '127.0.0.1' });
  t.false(since(before).some((r) => r.action === 'association.accepted'));
});

test.serial('without a client certificate (anonymous TLS) mutual TLS refuses the handshake', async (t) => {
  const before = rows.length;
  const result = await echoscu(tlsPort, { callingAe: 'MODALITY1', extraArgs: ['+tla', '+cf', pki.caCert] });
  t.not(result.code, 0);
  await waitUntil(() => since(before).some((r) => r.action === 'tls.failed'), 'the tls.failed row');
  t.regex(since(before).find((r) => r.action === 'tls.failed')?.detail ?? '', /no client certificate was presented/);
  t.false(since(before).some((r) => r.action === 'association.accepted'));
});

test.serial(
  'a good certificate with a calling AE not bound to its subject: A-ASSOCIATE-RJ, rejected and caller.rejected audited',
  async (t) => {
    const before = rows.length;
    const result = await echoscu(tlsPort, { callingAe: 'OTHER_AE', extraArgs: tlsArgs(pki.clientKey, pki.clientCert) });
    t.not(result.code, 0);
    t.regex(result.stderr + result.stdout, /Calling AE Title Not Recognized/i);
    const rejected = since(before).find((r) => r.action === 'association.rejected');
    t.like(rejected, { category: 'dicom', user: 'OTHER_AE', outcome: 'failure' });
    t.regex(rejected?.detail ?? '', /not the AE bound to the client certificate 'CN=MODALITY1'/);
    t.like(rejected?.after, { tls: true, peerCertificateSubject: 'CN=MODALITY1', callingAe: 'OTHER_AE' });
    const caller = since(before).find((r) => r.action === 'caller.rejected');
    t.like(caller, { category: 'security', user: 'OTHER_AE', address: '127.0.0.1' });
  },
);

test.serial(
  'the plain listener runs beside the TLS one: plain echo on its port, audited with tls false; plain DICOM on the TLS port fails',
  async (t) => {
    const before = rows.length;
    const plain = await echoscu(plainPort, { callingAe: 'MODALITY1' });
    t.is(plain.code, 0, plain.stderr);
    t.like(
      since(before).find((r) => r.action === 'association.accepted'),
      { after: { tls: false, callingAe: 'MODALITY1' } },
    );
    const wrong = await echoscu(tlsPort, { callingAe: 'MODALITY1' });
    t.not(wrong.code, 0);
    await waitUntil(() => since(before).some((r) => r.action === 'tls.failed'), 'the tls.failed row');
  },
);

function servedCertificate(): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: tlsPort,
      ca: [readPem(pki.caCert)],
      cert: readPem(pki.clientCert),
      key: readPem(pki.clientKey),
    });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate());
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

const ECHO_CONTEXT = { id: 1, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: ['1.2.840.10008.1.2'] };
const ECHO_RQ = encodeCommand([
  [CommandElement.AffectedSopClassUid, { ui: '1.2.840.10008.1.1' }],
  [CommandElement.CommandField, { us: CommandField.CEchoRq }],
  [CommandElement.MessageId, { us: 7 }],
  [CommandElement.CommandDataSetType, { us: NO_DATA_SET }],
]);

test.serial(
  'reloadTls: an association open across the reload completes; new handshakes get the new certificate; a bad key keeps it',
  async (t) => {
    t.is((await servedCertificate()).subject.CN, '127.0.0.1');
    const clientTls = { caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey, verifyServer: true };
    const open = await ScuAssociation.open({
      host: '127.0.0.1',
      port: tlsPort,
      callingAeTitle: 'MODALITY1',
      calledAeTitle: 'CXR_GATEWAY',
      contexts: [ECHO_CONTEXT],
      connectTimeoutMs: 10_000,
      responseTimeoutMs: 10_000,
      tls: clientTls,
    });
    if (!(open instanceof ScuAssociation)) return t.fail(`association not opened: ${JSON.stringify(open)}`);

    const renewed = await issueCertificate(
      dir,
      { cert: pki.caCert, key: path.join(dir, 'test-ca.key') },
      'renewed',
      '/CN=renewed-gateway',
      'server',
    );
    copyFileSync(renewed.cert, path.join(dir, 'served.crt'));
    copyFileSync(renewed.key, path.join(dir, 'served.key'));
    scp.reloadTls();
    t.is((await servedCertificate()).subject.CN, 'renewed-gateway');

    const response = await open.request(1, 7, ECHO_RQ, undefined);
    t.true('elements' in response && response.status === 0, 'the C-ECHO on the old association is answered');
    await open.release();
    t.is(open.failed, undefined);

    writeFileSync(path.join(dir, 'served.key'), 'not a key\n');
    const error = t.throws(() => scp.reloadTls());
    t.regex(error?.message ?? '', /served\.key/);
    t.is((await servedCertificate()).subject.CN, 'renewed-gateway', 'the old context stays');
    copyFileSync(renewed.key, path.join(dir, 'served.key'));
  },
);

test.serial(
  'our echo SCU over TLS against our own TLS listener; a server certificate from another CA is refused with a clear cause',
  async (t) => {
    const peer = {
      host: '127.0.0.1',
      port: tlsPort,
      callingAeTitle: 'MODALITY1',
      calledAeTitle: 'CXR_GATEWAY',
      timeoutMs: 10_000,
    };
    const ok = await echo({
      ...peer,
      tls: { caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey, verifyServer: true },
    });
    t.deepEqual(ok, { ok: true, status: 0 });
    const untrusted = await echo({
      ...peer,
      tls: { caFile: pki.otherCaCert, certFile: pki.clientCert, keyFile: pki.clientKey, verifyServer: true },
    });
    t.false(untrusted.ok);
    t.regex(untrusted.ok ? '' : untrusted.reason, /certificate/i);
  },
);

function readPem(file: string): Buffer {
  return readFileSync(file);
}

function handshake(options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: tlsPort,
      ca: [readPem(pki.caCert)],
      cert: readPem(pki.clientCert),
      key: readPem(pki.clientKey),
      ...options,
    });
    socket.once('secureConnect', () => {
      resolve(`connected ${socket.getProtocol() ?? ''} ${socket.getCipher().name}`);
      socket.destroy();
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(`refused ${error.code ?? error.message}`));
  });
}

test.serial(
  'BCP 195: TLS 1.1 and a CBC suite under TLS 1.2 are refused; ECDHE with AES-GCM under TLS 1.2 is accepted',
  async (t) => {
    t.regex(await handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }), /^refused /);
    t.regex(await handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' }), /^refused /);
    t.is(
      await handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }),
      'connected TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256',
    );
  },
);

test('a peer failing the handshake again and again is one tls.failed row per minute and reason, with the count left out', async (t) => {
  let clock = Date.parse('2026-12-06T10:00:00Z');
  const own: AuditRecord[] = [];
  const config = dicomSchema.parse({
    host: '127.0.0.1',
    port: await freePort(),
    tls: {
      port: await freePort(),
      certFile: pki.serverCert,
      keyFile: pki.serverKey,
      caFile: pki.caCert,
      requireClientCertificate: true,
    },
  });
  const logger = createLogger({ level: 'error', format: 'json', stream: new PassThrough() });
  const server = new StorageScp({ config, sink, logger, audit: { record: (e) => own.push(e) }, now: () => clock });
  const { tlsPort: port = 0 } = await server.start();
  t.teardown(() => server.stop(0));
  // A client whose certificate the server refuses; each attempt ends when the server closes it.
  const attempt = () =>
    new Promise<void>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.untrustedClientCert),
        key: readFileSync(pki.untrustedClientKey),
      });
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
  for (let i = 0; i < 4; i += 1) await attempt();
  await waitUntil(() => own.length >= 1, 'the first tls.failed row');
  clock += 61_000;
  await attempt();
  await waitUntil(() => own.length >= 2, 'the row of the next minute');
  t.is(own.length, 2);
  t.deepEqual(
    own.map((r) => r.after),
    [
      { listener: 'dicom-tls', address: '127.0.0.1' },
      { listener: 'dicom-tls', address: '127.0.0.1', leftOutBefore: 3 },
    ],
  );
  t.regex(own[1]?.detail ?? '', /3 more alike from this address in the minute before/);
});
