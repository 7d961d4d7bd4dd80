// Storage commitment in a cluster (issue 20), with real peers: node a receives and analyses, node c delivers. Orthanc
// knows the gateway's AE title at node a's port (as it would know the load balancer in front of the receive nodes),
// so its N-EVENT-REPORT reaches node a, while the PACS delivery waiting for it runs on node c. Node a keeps the
// report in the shared PostgreSQL store, node c takes it there: the delivery is committed and the ORU goes out.
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resultControlId } from '../../src/reporting/hl7-control-id.js';
import { storescu } from '../helpers/dcmtk.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { startGateway, writeGatewayConfig, type GatewayUnderTest } from '../helpers/gateway-process.js';
import { startHl7Listener, type Hl7Listener } from '../helpers/hl7-listener.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import {
  PACS_NAME,
  RIS_NAME,
  SECONDARY_CAPTURE,
  inputDir,
  isLog,
  logIndex,
  orthancStudyInstances,
  peerConfig,
} from '../helpers/pipeline-peers.js';
import { freePort } from '../helpers/ports.js';
import { startPostgres, type PostgresUnderTest } from '../helpers/postgres.js';

let cluster: PostgresUnderTest | undefined;
let orthanc: OrthancUnderTest | undefined;
let ris: Hl7Listener | undefined;
const nodes: GatewayUnderTest[] = [];
let receivePort = 0;

test.before(async () => {
  receivePort = await freePort();
  [cluster, orthanc, ris] = await Promise.all([
    startPostgres(),
    startOrthanc({ modalities: { gateway: ['CXR_GATEWAY', '127.0.0.1', receivePort] } }),
    startHl7Listener({ responses: ['aa'] }),
  ]);
});

test.after.always(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await Promise.all([orthanc?.dispose(), ris?.stop()]);
  await cluster?.stop();
});

test('the report reaches the receive node, the delivery waits on the deliver node: it meets its report through the store, then the ORU goes out', async (t) => {
  const pacs = orthanc as OrthancUnderTest;
  const listener = ris as Hl7Listener;
  const database = await (cluster as PostgresUnderTest).createDatabase();
  const spool = mkdtempSync(path.join(os.tmpdir(), 'commitment-cluster-spool-'));
  const base = peerConfig({ pacsPort: pacs.dicomPort, risPort: listener.port });
  const destinations = base.destinations as { pacs: Array<Record<string, unknown>> };
  const [pacsDestination] = destinations.pacs;
  if (pacsDestination === undefined) throw new Error('peerConfig has no PACS destination');
  pacsDestination.storageCommitment = { enabled: true, timeoutSeconds: 60 };
  const nodeConfig = (nodeName: string, roles: string[], port?: number) =>
    writeGatewayConfig({
      ...base,
      ...(port === undefined ? {} : { dicom: { port } }),
      storage: { dataDir: spool, database, postgres: { statementTimeoutSeconds: 30, connectTimeoutSeconds: 5 } },
      cluster: { nodeName, roles, leaseSeconds: 30, heartbeatSeconds: 2 },
    });
  const a = await startGateway({}, await nodeConfig('node-a', ['receive', 'analyze'], receivePort));
  nodes.push(a);
  const c = await startGateway({}, await nodeConfig('node-c', ['deliver']), 'GATEWAY-7010');
  nodes.push(c);

  const image = await writeImageFile(inputDir(), { studyInstanceUid: newUid(), accessionNumber: 'ACC-CC-1', seed: 41 });
  const sent = await storescu(a.port, [image.path], { callingAe: 'DX_ROOM1' });
  t.is(sent.code, 0, sent.stderr);
  await c.waitForLog(
    isLog('EXPORT-6002', { studyInstanceUid: image.studyInstanceUid }),
    'the ORU acknowledged by the RIS, sent by node c',
    120_000,
  );

  const requested = c.logs.find(isLog('DIMSE-1201'));
  t.truthy(requested, 'node c sent the N-ACTION');
  const transactionUid = String(requested?.transactionUid);
  const kept = a.logs.find(isLog('DIMSE-1208', { transactionUid }));
  t.like(kept, { callingAe: pacs.aeTitle, via: 'new-association' }, 'node a received the report and kept it');
  const committed = logIndex(c.logs, isLog('DIMSE-1202', { destination: PACS_NAME, transactionUid }));
  const pacsDelivered = logIndex(c.logs, isLog('EXPORT-6001', { studyInstanceUid: image.studyInstanceUid }));
  const oru = logIndex(c.logs, isLog('EXPORT-6002', { studyInstanceUid: image.studyInstanceUid }));
  t.true(committed >= 0, 'node c counted its objects committed, from the report node a kept');
  t.true(committed < pacsDelivered && pacsDelivered < oru, 'committed, then delivered, then the ORU');
  t.is(c.logs.filter(isLog('DIMSE-1207')).length, 0, 'no commitment timeout on the way');
  t.is(listener.countByControlId(resultControlId(image.studyInstanceUid, 0, RIS_NAME)), 1);
  const stored = await orthancStudyInstances(pacs, image.studyInstanceUid);
  t.deepEqual(
    stored.map((s) => s.sopClassUid),
    [SECONDARY_CAPTURE],
    'the heatmap SC is in Orthanc',
  );
});
