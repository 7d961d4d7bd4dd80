// Issue 17 end to end: every link of one study protected, with real peers and the real daemon. A modality
// (DCMTK storescu +tls, with a client certificate bound to its AE title) sends over DICOM TLS; the result goes to a
// PACS over DICOM TLS (DCMTK storescp +tls, which requires our client certificate) and to a RIS over MLLP TLS
// (python3-hl7 wrapped in Python's ssl); the audit trail (`cxr-gateway audit --json`) has the association, the study
// received and both results sent, each saying TLS, and no patient data. Certificates are made at test time.

import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { storescu } from '../helpers/dcmtk.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { runCli, startGateway } from '../helpers/gateway-process.js';
import { startHl7Listener } from '../helpers/hl7-listener.js';
import { isLog, processAction } from '../helpers/pipeline-peers.js';
import { freePort } from '../helpers/ports.js';
import { makeTestPki } from '../helpers/test-pki.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

interface AuditItem {
  category: string;
  action: string;
  user: string | null;
  address: string | null;
  target: string | null;
  outcome: string;
  after: Record<string, unknown> | null;
  detail: string | null;
}

const cleanups: Array<() => Promise<unknown>> = [];
test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** DCMTK's storescp +tls on 127.0.0.1 as the PACS: it requires a client certificate from our test CA. */
async function startTlsPacs(
  dir: string,
  pki: { serverKey: string; serverCert: string; caCert: string },
): Promise<{ port: number; received: string }> {
  const port = await freePort();
  const received = mkdtempSync(path.join(dir, 'pacs-'));
  const child = spawn(
    'storescp',
    ['-aet', 'PACS', '-od', received, '+tls', pki.serverKey, pki.serverCert, '-pw', '+cf', pki.caCert, String(port)],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid);
    await exited;
  });
  for (let i = 0; ; i += 1) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    if (i > 250) throw new Error('storescp +tls did not start');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { port, received };
}

test('a study over DICOM TLS, its results to a PACS over DICOM TLS and a RIS over MLLP TLS, every hop audited', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'transport-e2e-'));
  const pki = await makeTestPki(dir);
  // The daemon's own key, private to its user (a key others can read is warned about, not refused).
  const gatewayKey = path.join(dir, 'gateway.key');
  copyFileSync(pki.serverKey, gatewayKey);
  chmodSync(gatewayKey, 0o600);
  const pacs = await startTlsPacs(dir, pki);
  const risPort = await freePort();
  const ris = await startHl7Listener({
    responses: ['aa'],
    port: risPort,
    tls: { certFile: pki.serverCert, keyFile: pki.serverKey },
  });
  cleanups.push(() => ris.stop());
  const tlsPort = await freePort();
  const gateway = await startGateway({
    models: { tiny: tinyModelDir() },
    inference: { defaultModel: 'tiny', workers: 1, backend: 'wasm' },
    dicom: {
      tls: {
        port: tlsPort,
        certFile: pki.serverCert,
        keyFile: gatewayKey,
        caFile: pki.caCert,
        requireClientCertificate: true,
        allowedSubjects: [{ subject: 'CN=MODALITY1', aeTitle: 'MODALITY1' }],
      },
    },
    destinations: {
      pacs: [
        {
          type: 'dicom',
          name: 'pacs',
          host: '127.0.0.1',
          port: pacs.port,
          aeTitle: 'PACS',
          tls: { caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey },
        },
      ],
      ris: [
        {
          type: 'mllp',
          name: 'ris',
          host: '127.0.0.1',
          port: risPort,
          receivingApplication: 'RIS',
          tls: { caFile: pki.caCert },
        },
      ],
    },
    rules: [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
        action: { ...processAction(), pacs: ['pacs'], ris: ['ris'] },
      },
    ] as unknown as Record<string, unknown>,
  });
  cleanups.push(() => gateway.stop());

  const studyInstanceUid = newUid();
  const image = await writeImageFile(dir, {
    studyInstanceUid,
    accessionNumber: 'ACC-TLS-1',
    patientName: 'DOE^JANE',
    patientId: 'MRN-4711',
    seed: 91,
  });
  const sent = await storescu(tlsPort, [image.path], {
    callingAe: 'MODALITY1',
    extraArgs: ['+tls', pki.clientKey, pki.clientCert, '-pw', '+cf', pki.caCert],
  });
  t.is(sent.code, 0, sent.stderr);
  await gateway.waitForLog(isLog('EXPORT-6002', { studyInstanceUid, destination: 'ris' }), 'the RIS result', 90_000);

  t.true(readdirSync(pacs.received).length >= 1, 'the PACS stored the overlay over TLS');
  t.is(ris.received.length, 1, 'the RIS got the result over TLS once');
  t.is(ris.received[0]?.peerSubject ?? null, null, 'over TLS, without a client certificate (none configured)');

  const listed = await runCli(['audit', '--json', '--limit', '100', '--config', gateway.configPath]);
  t.is(listed.code, 0, listed.stderr);
  const items = (JSON.parse(listed.stdout) as { items: AuditItem[] }).items;
  const one = (action: string) => items.find((i) => i.action === action);
  t.like(one('association.accepted'), {
    category: 'dicom',
    user: 'MODALITY1',
    outcome: 'success',
    after: { tls: true, peerCertificateSubject: 'CN=MODALITY1' },
  });
  t.like(one('study.received'), {
    category: 'dicom',
    target: `study ${studyInstanceUid}`,
    after: { studyInstanceUid, instances: 1 },
  });
  t.like(one('pacs.sent'), { category: 'dicom', outcome: 'success', after: { destination: 'pacs', tls: true } });
  t.like(one('ris.sent'), { category: 'hl7', outcome: 'success', after: { destination: 'ris', tls: true } });
  // No patient data in the trail: the factory's patient name and ID appear nowhere in it.
  t.notRegex(listed.stdout, /DOE|JANE|MRN-4711/);
});
