import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { PacsDicomDestination } from '../../src/export/pacs-dicom-destination.js';
import type { DicomClientTlsConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/logging/logger.js';
import type { AuditRecord } from '../../src/store/audit-trail.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { freePort } from '../helpers/ports.js';
import { makeTestPki, type TestPki } from '../helpers/test-pki.js';

// Our SCU over TLS to DCMTK's storescp +tls (OpenSSL, requiring our client certificate): a delivery is stored
// and audited as pacs.sent; a PACS whose certificate our caFile does not trust is refused with a clear cause.
// storescp has no bind-address option; we only ever connect to it through 127.0.0.1.

const scratch = mkdtempSync(path.join(os.tmpdir(), 'pacs-tls-'));
let pki: TestPki;
let port: number;
let received: string;
let stopPeer: () => Promise<void> = async () => undefined;
let peerLog = '';

test.before(async () => {
  pki = await makeTestPki(scratch);
  port = await freePort();
  received = mkdtempSync(path.join(scratch, 'received-'));
  const child = spawn(
    'storescp',
    [
      '-aet',
      'STORESCP',
      '-od',
      received,
      '+tls',
      pki.serverKey,
      pki.serverCert,
      '-pw',
      '+cf',
      pki.caCert,
      String(port),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.on('data', (d: Buffer) => (peerLog += d.toString()));
  child.stderr.on('data', (d: Buffer) => (peerLog += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  stopPeer = async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    process.kill(child.pid, 'SIGTERM');
    await exited;
  };
  for (let i = 0; ; i += 1) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    if (i > 200) throw new Error(`storescp did not start: ${peerLog}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
});
test.after.always(async () => {
  await stopPeer();
});

function destination(tls: DicomClientTlsConfig, rows: AuditRecord[]): PacsDicomDestination {
  return new PacsDicomDestination({
    name: 'pacs-tls',
    peer: {
      host: '127.0.0.1',
      port,
      calledAeTitle: 'STORESCP',
      callingAeTitle: 'CXR_GATEWAY',
      connectTimeoutMs: 10_000,
      responseTimeoutMs: 10_000,
      tls,
    },
    logger: createLogger({ level: 'error', format: 'json', stream: new PassThrough() }),
    audit: { record: (entry) => rows.push(entry) },
  });
}

test.serial(
  'a delivery over TLS with a verified server certificate is stored by storescp +tls and audited as pacs.sent',
  async (t) => {
    const studyInstanceUid = newUid();
    const files = [
      await writeImageFile(scratch, { studyInstanceUid, instanceNumber: 1, seed: 1 }),
      await writeImageFile(scratch, { studyInstanceUid, instanceNumber: 2, seed: 2 }),
    ];
    const rows: AuditRecord[] = [];
    const pacs = destination(
      { caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey, verifyServer: true },
      rows,
    );
    const outcome = await pacs.deliver(files.map((f) => ({ path: f.path })));
    t.deepEqual(outcome, { kind: 'delivered' }, peerLog);
    t.is(readdirSync(received).length, 2);
    t.is(rows.length, 1);
    t.like(rows[0], {
      category: 'dicom',
      action: 'pacs.sent',
      user: 'CXR_GATEWAY',
      address: `127.0.0.1:${port}`,
      target: `study ${studyInstanceUid}`,
      outcome: 'success',
      detail: null,
    });
    t.deepEqual(rows[0]?.after, {
      studyInstanceUid,
      destination: 'pacs-tls',
      sopInstanceUids: files.map((f) => f.sopInstanceUid),
      peerAe: 'STORESCP',
      tls: true,
    });
  },
);

test.serial(
  'a PACS certificate not signed by our caFile: nothing is sent, a retry whose reason names the TLS handshake and the certificate; pacs.sent failure',
  async (t) => {
    const studyInstanceUid = newUid();
    const file = await writeImageFile(scratch, { studyInstanceUid, seed: 3 });
    const before = readdirSync(received).length;
    const rows: AuditRecord[] = [];
    const pacs = destination(
      { caFile: pki.otherCaCert, certFile: pki.clientCert, keyFile: pki.clientKey, verifyServer: true },
      rows,
    );
    const outcome = await pacs.deliver([{ path: file.path }]);
    t.is(outcome.kind, 'retry');
    if (outcome.kind !== 'retry') return;
    t.is(outcome.cause, 'connect-failed');
    t.regex(outcome.reason, /^TLS handshake with STORESCP@127\.0\.0\.1:\d+ failed: .*certificate/);
    t.is(readdirSync(received).length, before);
    t.like(rows[0], { action: 'pacs.sent', outcome: 'failure', target: `study ${studyInstanceUid}` });
    t.regex(rows[0]?.detail ?? '', /TLS handshake/);
  },
);

test.serial('a CA file that cannot be read: a retry naming the file, no connection attempted', async (t) => {
  const file = await writeImageFile(scratch, { seed: 4 });
  const rows: AuditRecord[] = [];
  const missing = path.join(scratch, 'no-such-ca.crt');
  const outcome = await destination({ caFile: missing, verifyServer: true }, rows).deliver([{ path: file.path }]);
  t.is(outcome.kind, 'retry');
  t.regex(outcome.kind === 'retry' ? outcome.reason : '', /no-such-ca\.crt/);
});
