import test from 'ava';
import { resultControlId } from '../../src/reporting/hl7-control-id.js';
import { storescu } from '../helpers/dcmtk.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-process.js';
import { startHl7Listener, type Hl7Listener } from '../helpers/hl7-listener.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import {
  PACS_NAME,
  RIS_NAME,
  deliveriesOfJob,
  inputDir,
  isLog,
  jobsOfStudy,
  logIndex,
  orthancStudyInstances,
  peerConfig,
  processAction,
} from '../helpers/pipeline-peers.js';
import { freePort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait-until.js';

// Storage commitment in the running daemon, with real peers: Orthanc (PACS, storage commitment SCP) and the
// python3-hl7 listener (RIS). Orthanc knows the daemon as CXR_GATEWAY at the daemon's own DICOM port, and sends
// its N-EVENT-REPORT there on an association of its own; only then is the PACS delivery delivered, and only then
// may the study's ORU go out (the store's due query holds a RIS report behind its study's PACS deliveries).
// A second PACS destination calls Orthanc as CXR_NOWHERE, which Orthanc knows at a port where nothing listens:
// its reports never arrive, and that study's ORU must never be sent.

const LOST = 'orthanc-lost';

let orthanc: OrthancUnderTest;
let listener: Hl7Listener;
let gateway: GatewayUnderTest;

test.before(async () => {
  const gatewayPort = await freePort();
  const deadPort = await freePort();
  [orthanc, listener] = await Promise.all([
    startOrthanc({
      modalities: {
        gateway: ['CXR_GATEWAY', '127.0.0.1', gatewayPort],
        nowhere: ['CXR_NOWHERE', '127.0.0.1', deadPort],
      },
    }),
    startHl7Listener({ responses: ['aa'] }),
  ]);
  const config = peerConfig({
    pacsPort: orthanc.dicomPort,
    risPort: listener.port,
    rules: [
      {
        name: 'lost',
        match: { callingAe: 'DX_LOST' },
        action: { ...processAction(['sc']), pacs: [LOST] },
      },
      { name: 'chest', match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } }, action: processAction(['sc']) },
    ],
  });
  const destinations = config.destinations as { pacs: Array<Record<string, unknown>> };
  const [pacs] = destinations.pacs;
  if (pacs === undefined) throw new Error('peerConfig has no PACS destination');
  pacs.storageCommitment = { enabled: true, timeoutSeconds: 20 };
  destinations.pacs.push({
    ...pacs,
    name: LOST,
    callingAeTitle: 'CXR_NOWHERE',
    storageCommitment: { enabled: true, timeoutSeconds: 2 },
  });
  gateway = await startGateway({ ...config, dicom: { port: gatewayPort } });
});

test.after.always(async () => {
  await gateway?.stop();
  await Promise.all([orthanc?.dispose(), listener?.stop()]);
});

test.serial(
  'Orthanc commits the results, and the ORU goes out only after the N-EVENT-REPORT was received',
  async (t) => {
    const image = await writeImageFile(inputDir(), {
      studyInstanceUid: newUid(),
      accessionNumber: 'ACC-SC-1',
      seed: 31,
    });
    const sent = await storescu(gateway.port, [image.path], { callingAe: 'DX_ROOM1' });
    t.is(sent.code, 0, sent.stderr);
    await gateway.waitForLog(
      isLog('EXPORT-6002', { studyInstanceUid: image.studyInstanceUid }),
      'the ORU acknowledged by the RIS',
      90_000,
    );
    const logs = gateway.logs;
    const requested = logIndex(logs, isLog('DIMSE-1201'));
    // Orthanc's own association to our SCP, carrying the report.
    const reportAssociation = logIndex(logs, (l) => l.event === 'DIMSE-1001' && l.callingAe === orthanc.aeTitle);
    const committed = logIndex(logs, isLog('DIMSE-1202', { destination: PACS_NAME, via: 'new-association' }));
    const pacsDelivered = logIndex(logs, isLog('EXPORT-6001', { studyInstanceUid: image.studyInstanceUid }));
    const oruAcknowledged = logIndex(logs, isLog('EXPORT-6002', { studyInstanceUid: image.studyInstanceUid }));
    t.true(requested >= 0, 'N-ACTION sent');
    // Orthanc may report before its N-ACTION response is even read (its job runs apart): the wait was registered first.
    t.true(reportAssociation >= 0, 'the report came on an association Orthanc opened to our SCP');
    t.true(reportAssociation < committed, 'the report was received before the delivery counted as committed');
    t.true(committed < pacsDelivered, 'the PACS delivery was delivered only once committed');
    t.true(pacsDelivered < oruAcknowledged, 'the ORU after the PACS delivery');
    t.is(listener.countByControlId(resultControlId(image.studyInstanceUid, 0, RIS_NAME)), 1);
    const stored = await orthancStudyInstances(orthanc, image.studyInstanceUid);
    t.is(stored.length, 1, 'the heatmap SC is in Orthanc');
  },
);

test.serial(
  'no report within the timeout: the PACS delivery retries with a reason naming it, and the ORU is never sent',
  async (t) => {
    const image = await writeImageFile(inputDir(), {
      studyInstanceUid: newUid(),
      accessionNumber: 'ACC-SC-2',
      seed: 32,
    });
    const sent = await storescu(gateway.port, [image.path], { callingAe: 'DX_LOST' });
    t.is(sent.code, 0, sent.stderr);
    const retried = (n: number) => () =>
      gateway.logs.filter(
        isLog('EXPORT-6003', { studyInstanceUid: image.studyInstanceUid, cause: 'commitment-timeout' }),
      ).length >= n;
    await waitUntil(retried(2), 'two attempts without a storage commitment report', 60_000);
    const failure = gateway.logs.find(isLog('EXPORT-6003', { studyInstanceUid: image.studyInstanceUid }));
    t.is(failure?.destination, LOST);
    t.regex(String(failure?.why), /sent no storage commitment report for transaction 2\.25\.\d+ within 2 s/);
    // The objects are in Orthanc; the delivery still waits for their commitment, and the report behind it with it.
    const [job] = jobsOfStudy(gateway.workDir, image.studyInstanceUid);
    const deliveries = deliveriesOfJob(gateway.workDir, job?.id ?? -1);
    const pacs = deliveries.find((d) => d.kind === 'pacs');
    const ris = deliveries.find((d) => d.kind === 'ris');
    t.like(pacs, { state: 'pending', destination: LOST });
    t.true((pacs?.attempts ?? 0) >= 2);
    t.regex(pacs?.last_error ?? '', /^commitment-timeout: /);
    t.like(ris, { state: 'pending', attempts: 0 });
    t.is(listener.countByControlId(resultControlId(image.studyInstanceUid, 0, RIS_NAME)), 0);
    t.is((await orthancStudyInstances(orthanc, image.studyInstanceUid)).length, 1);
  },
);
