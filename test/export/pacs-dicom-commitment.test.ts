import test from 'ava';
import { PassThrough, Writable } from 'node:stream';
import { dicomSchema } from '../../src/config/schema.js';
import { CommitmentRegistry } from '../../src/dimse/commitment-registry.js';
import { StorageScp } from '../../src/dimse/storage-scp.js';
import { PacsDicomDestination } from '../../src/export/pacs-dicom-destination.js';
import { createLogger, type Logger } from '../../src/logging/logger.js';
import type { IngestOutcome, InstanceSink } from '../../src/store/instance-sink.js';
import { makeImageFile, newUid } from '../helpers/dicom-factory.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import { freePort } from '../helpers/ports.js';
import { makeSecondaryCapture } from './secondary-capture-fixture.js';

// Storage commitment against a real Orthanc (1.10, Debian): the destination sends the objects, asks Orthanc to
// commit them (N-ACTION), and Orthanc, from a job of its own, opens a NEW association to the AE registered in its
// DicomModalities for our calling AE (CXR_GATEWAY at our SCP's port), proposing the Push Model with itself as SCP
// (role selection). Our SCP answers the N-EVENT-REPORT and hands it to the registry the delivery waits on.

const sink: InstanceSink = {
  begin: () => ({
    kind: 'transfer',
    transfer: {
      writable: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
      complete: async (): Promise<IngestOutcome> => ({ kind: 'stored', studyInstanceUid: '1.2.3', path: '/dev/null' }),
      abandon: async () => undefined,
    },
  }),
};

interface LogLine {
  event?: string;
  [key: string]: unknown;
}

function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as LogLine);
  });
  return { logger: createLogger({ level: 'info', format: 'json', stream, captureLibraryOutput: false }), lines };
}

let orthanc: OrthancUnderTest;
let scp: StorageScp;
/** Our SCP's port: the one Orthanc's DicomModalities lists for CXR_GATEWAY. */
let scpPort: number;
/** A port registered in Orthanc for another AE, where nothing listens: its reports go nowhere. */
let deadPort: number;
const registry = (() => {
  const { logger, lines } = capturingLogger();
  return { instance: new CommitmentRegistry({ logger }), lines };
})();
const scpLog = capturingLogger();

test.before(async () => {
  scpPort = await freePort();
  deadPort = await freePort();
  orthanc = await startOrthanc({
    // The advanced form of a modality: AllowStorageCommitment (N-ACTION and N-EVENT-REPORT) is on by default.
    extraConfig: {
      DicomModalities: {
        gateway: ['CXR_GATEWAY', '127.0.0.1', scpPort],
        unreachable: ['CXR_NOWHERE', '127.0.0.1', deadPort],
        nocommit: { AET: 'CXR_NOCOMMIT', Host: '127.0.0.1', Port: scpPort, AllowStorageCommitment: false },
      },
    },
  });
  scp = new StorageScp({
    config: { ...dicomSchema.parse({ host: '127.0.0.1' }), port: scpPort },
    sink,
    logger: scpLog.logger,
    commitments: registry.instance,
  });
  await scp.start();
});
test.after.always(async () => {
  await scp?.stop(0);
  await orthanc?.dispose();
});

function destination(options: { callingAeTitle?: string; timeoutMs?: number; logger?: Logger } = {}) {
  return new PacsDicomDestination({
    name: 'orthanc',
    peer: {
      host: '127.0.0.1',
      port: orthanc.dicomPort,
      calledAeTitle: orthanc.aeTitle,
      callingAeTitle: options.callingAeTitle ?? 'CXR_GATEWAY',
      connectTimeoutMs: 2000,
      responseTimeoutMs: 5000,
    },
    logger: options.logger ?? capturingLogger().logger,
    commitment: { registry: registry.instance, timeoutMs: options.timeoutMs ?? 20_000 },
  });
}

function studyItems() {
  const patientId = `PID-${newUid().slice(-8)}`;
  const dx = makeImageFile({ patientId });
  const sc = makeSecondaryCapture({ studyInstanceUid: dx.studyInstanceUid, patientId });
  return {
    uids: [dx.sopInstanceUid, sc.sopInstanceUid],
    items: [
      { bytes: dx.bytes, label: 'dx' },
      { bytes: sc.bytes, label: 'heatmap' },
    ],
  };
}

test.serial(
  'Orthanc commits a delivered study: the report comes on a new association and the delivery is delivered',
  async (t) => {
    const { logger, lines } = capturingLogger();
    const { uids, items } = studyItems();
    t.deepEqual(await destination({ logger }).deliver(items), { kind: 'delivered' });
    for (const uid of uids) t.not(await orthanc.lookupInstance(uid), undefined);
    const requested = lines.find((l) => l.event === 'DIMSE-1201');
    const committed = lines.find((l) => l.event === 'DIMSE-1202');
    t.truthy(requested, JSON.stringify(lines));
    t.like(committed, { via: 'new-association', instances: 2, transactionUid: requested?.transactionUid });
    t.regex(String(requested?.transactionUid), /^2\.25\.\d+$/);
    // Orthanc proposed the Push Model with itself as SCP; the SCP accepted it (the association log names the context).
    const association = scpLog.lines.find((l) => l.event === 'DIMSE-1001' && l.callingAe === orthanc.aeTitle);
    t.truthy(association, JSON.stringify(scpLog.lines));
    t.true((association?.accepted as string[]).some((c) => c.startsWith('1.2.840.10008.1.20.1@')));
    t.is(registry.instance.waiting, 0);
  },
);

test.serial(
  'no report within the timeout (Orthanc reports to an AE where nothing listens): a retry naming the transaction and the cause',
  async (t) => {
    const { logger, lines } = capturingLogger();
    const { uids, items } = studyItems();
    // Orthanc stores from CXR_NOWHERE (registered) and sends its report to that AE's port, where nobody listens.
    const outcome = await destination({ callingAeTitle: 'CXR_NOWHERE', timeoutMs: 3000, logger }).deliver(items);
    t.like(outcome, { kind: 'retry', cause: 'commitment-timeout' });
    if (outcome.kind !== 'retry') return;
    t.regex(outcome.reason, /sent no storage commitment report for transaction 2\.25\.\d+ within 3 s/);
    for (const uid of uids) t.not(await orthanc.lookupInstance(uid), undefined, 'the objects themselves were stored');
    t.truthy(lines.find((l) => l.event === 'DIMSE-1201'));
    t.truthy(lines.find((l) => l.event === 'DIMSE-1207'));
    t.falsy(lines.find((l) => l.event === 'DIMSE-1202'));
    t.is(registry.instance.waiting, 0);
  },
);

test.serial('a PACS that refuses storage commitment to our AE: the request fails, a retry that says so', async (t) => {
  const { logger, lines } = capturingLogger();
  const { uids, items } = studyItems();
  const outcome = await destination({ callingAeTitle: 'CXR_NOCOMMIT', timeoutMs: 3000, logger }).deliver(items);
  t.like(outcome, { kind: 'retry', cause: 'commitment-request-failed' });
  for (const uid of uids) t.not(await orthanc.lookupInstance(uid), undefined, 'the objects themselves were stored');
  t.truthy(
    lines.find((l) => l.event === 'DIMSE-1206'),
    JSON.stringify(lines),
  );
  t.falsy(lines.find((l) => l.event === 'DIMSE-1201'));
  t.is(registry.instance.waiting, 0);
  t.log(outcome.kind === 'retry' ? outcome.reason : '');
});
