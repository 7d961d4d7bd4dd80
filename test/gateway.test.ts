import test from 'ava';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeImageFile, newUid, writeImageFile } from './helpers/dicom-factory.js';
import { storescu } from './helpers/dcmtk.js';
import { listJobs, startGateway, writeGatewayConfig } from './helpers/gateway-process.js';
import {
  EXPLICIT_VR_LITTLE_ENDIAN,
  datasetBytesOfPart10,
  fragmentMessage,
  openAssociation,
  type RawAssociation,
} from './helpers/raw-scu.js';

const scratch = () => mkdtempSync(path.join(os.tmpdir(), 'lifecycle-'));

test('kill -9 right after storescu reports success: after restart the instance and its study are there and complete', async (t) => {
  const setup = await writeGatewayConfig({ assembly: { quietPeriodSeconds: 2 } });
  const first = await startGateway({}, setup);
  const studyInstanceUid = newUid();
  const dir = scratch();
  const files = [
    await writeImageFile(dir, { studyInstanceUid, seed: 1 }),
    await writeImageFile(dir, { studyInstanceUid, seed: 2 }),
  ];
  const sent = await storescu(
    first.port,
    files.map((f) => f.path),
  );
  t.is(sent.code, 0, sent.stderr);
  await first.kill9();
  t.false(
    first.logs.some((l) => l.event === 'ASSEMBLY-3001'),
    'the crash came before assembly',
  );

  const second = await startGateway({}, setup);
  t.teardown(() => second.stop());
  await second.waitForLog(
    (l) => l.event === 'ASSEMBLY-3001' && l.studyInstanceUid === studyInstanceUid,
    'assembly after restart',
  );
  const listing = await listJobs(setup.configPath);
  t.like(
    listing.studies.find((s) => s.studyInstanceUid === studyInstanceUid),
    { state: 'ready', instanceCount: 2 },
  );
  t.is(listing.jobs.filter((j) => j.studyInstanceUid === studyInstanceUid).length, 1);
  const studyDir = path.join(setup.workDir, 'data', 'spool', 'studies', studyInstanceUid);
  t.deepEqual(readdirSync(studyDir).sort(), files.map((f) => `${f.sopInstanceUid}.dcm`).sort());
});

test('a study that went quiet while the daemon was down becomes ready as soon as it starts', async (t) => {
  const setup = await writeGatewayConfig({ assembly: { quietPeriodSeconds: 1 } });
  const first = await startGateway({}, setup);
  const file = await writeImageFile(scratch(), {});
  t.is((await storescu(first.port, [file.path])).code, 0);
  await first.kill9();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const second = await startGateway({}, setup);
  t.teardown(() => second.stop());
  const opened = second.logs.find((l) => l.event === 'STORE-2001');
  t.like(opened, { studiesReceiving: 1, engine: 'sqlite' });
  await second.waitForLog(
    (l) => l.event === 'ASSEMBLY-3001' && l.studyInstanceUid === file.studyInstanceUid,
    'assembly',
  );
});

test('SIGTERM lets a C-STORE in progress finish with Success, then exits 0', async (t) => {
  const gateway = await startGateway();
  const image = makeImageFile({ rows: 512, columns: 512 });
  const dataset = datasetBytesOfPart10(image.bytes).dataset;
  const association = (await openAssociation({
    host: '127.0.0.1',
    port: gateway.port,
    callingAe: 'MODALITY',
    calledAe: 'CXR_GATEWAY',
    contexts: [{ abstractSyntax: image.sopClassUid, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
  })) as RawAssociation;
  const half = Math.floor(dataset.length / 2);
  await association.sendCommandAndPartialDataset({
    sopClassUid: image.sopClassUid,
    sopInstanceUid: image.sopInstanceUid,
    dataset,
    bytesToSend: half,
  });
  await gateway.waitForLog((l) => l.event === 'DIMSE-1001', 'the association');
  process.kill(gateway.pid, 'SIGTERM');
  await gateway.waitForLog((l) => l.event === 'GATEWAY-7002', 'the stop to begin');
  // The rest of the dataset: the daemon is stopping but must still finish what it started.
  const contextId = association.acceptedContextFor(image.sopClassUid);
  for (const pdu of fragmentMessage(contextId, false, dataset.subarray(half), association.fragmentSize(), true)) {
    association.sendRaw(pdu);
  }
  const response = await association.receiveMessage('C-STORE-RSP');
  t.is(response.status, 0);
  t.is((await gateway.exited).code, 0);
  const stored = path.join(
    gateway.workDir,
    'data',
    'spool',
    'studies',
    image.studyInstanceUid,
    `${image.sopInstanceUid}.dcm`,
  );
  t.true(existsSync(stored));
});

test('SIGTERM on an idle daemon exits 0 after saying so', async (t) => {
  const gateway = await startGateway();
  t.is(await gateway.stop(), 0);
  t.true(gateway.logs.some((l) => l.event === 'GATEWAY-7003'));
});

test('partial transfers a crash left behind are removed at start, never registered', async (t) => {
  const setup = await writeGatewayConfig();
  const first = await startGateway({}, setup);
  const image = makeImageFile({});
  const dataset = datasetBytesOfPart10(image.bytes).dataset;
  const association = (await openAssociation({
    host: '127.0.0.1',
    port: first.port,
    callingAe: 'MODALITY',
    calledAe: 'CXR_GATEWAY',
    contexts: [{ abstractSyntax: image.sopClassUid, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
  })) as RawAssociation;
  await association.sendCommandAndPartialDataset({
    sopClassUid: image.sopClassUid,
    sopInstanceUid: image.sopInstanceUid,
    dataset,
    bytesToSend: 5000,
  });
  const incoming = path.join(setup.workDir, 'data', 'spool', 'incoming');
  for (let i = 0; i < 100 && readdirSync(incoming).length === 0; i += 1) await new Promise((r) => setTimeout(r, 20));
  t.is(readdirSync(incoming).length, 1, 'the partial file exists while the transfer is cut');
  await first.kill9();
  association.destroy();
  const second = await startGateway({}, setup);
  t.teardown(() => second.stop());
  t.like(
    second.logs.find((l) => l.event === 'STORE-2002'),
    { count: 1 },
  );
  t.deepEqual(readdirSync(incoming), []);
  t.false(existsSync(path.join(setup.workDir, 'data', 'spool', 'studies', image.studyInstanceUid)));
});
