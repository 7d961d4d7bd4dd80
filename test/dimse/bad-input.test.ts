import test from 'ava';
import dcmjs from 'dcmjs';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SOP_CLASS_UID, makeImageFile, newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { echoscu, storescu } from '../helpers/dcmtk.js';
import { listJobs, startGateway, type GatewayUnderTest } from '../helpers/gateway-process.js';
import {
  EXPLICIT_VR_LITTLE_ENDIAN,
  datasetBytesOfPart10,
  openAssociation,
  sendGarbage,
  type RawAssociation,
} from '../helpers/raw-scu.js';

// Everything here runs against one daemon, one after the other, and the last test checks that the
// instance acknowledged first is still stored and recorded: bad input never costs good data.
let gateway: GatewayUnderTest;
const first = { studyInstanceUid: newUid(), sopInstanceUid: '' };
const DX = SOP_CLASS_UID['dx-presentation'];

test.before(async () => {
  gateway = await startGateway();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bad-input-'));
  const file = await writeImageFile(dir, { studyInstanceUid: first.studyInstanceUid });
  first.sopInstanceUid = file.sopInstanceUid;
  const result = await storescu(gateway.port, [file.path]);
  if (result.code !== 0) throw new Error(`could not store the first instance: ${result.stderr}`);
});
test.after.always(async () => {
  await gateway?.stop();
});

async function associate(): Promise<RawAssociation> {
  const association = await openAssociation({
    host: '127.0.0.1',
    port: gateway.port,
    callingAe: 'BADPEER',
    calledAe: 'CXR_GATEWAY',
    contexts: [{ abstractSyntax: DX, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
  });
  if (association.rejected) throw new Error('association rejected');
  return association;
}

function dataset(options: Parameters<typeof makeImageFile>[0] = {}) {
  const file = makeImageFile(options);
  return { ...file, dataset: datasetBytesOfPart10(file.bytes).dataset };
}

/** The dataset of a fresh image with some attributes removed or replaced, re-encoded by dcmjs. */
function editedDataset(edit: (dict: Record<string, unknown>) => void) {
  const file = makeImageFile({});
  const copy = new Uint8Array(file.bytes).buffer;
  const message = dcmjs.data.DicomMessage.readFile(copy);
  edit(message.dict as Record<string, unknown>);
  const written = Buffer.from(message.write());
  return { ...file, dataset: datasetBytesOfPart10(written).dataset };
}

function spoolFilesOf(studyInstanceUid: string): string[] {
  const dir = path.join(gateway.workDir, 'data', 'spool', 'studies', studyInstanceUid);
  return existsSync(dir) ? readdirSync(dir) : [];
}

function incomingFiles(): string[] {
  return readdirSync(path.join(gateway.workDir, 'data', 'spool', 'incoming'));
}

test.serial('a dataset truncated inside its pixel data gets 0xC000 and nothing is kept', async (t) => {
  const image = dataset();
  const association = await associate();
  const response = await association.store({
    sopClassUid: DX,
    sopInstanceUid: image.sopInstanceUid,
    dataset: image.dataset.subarray(0, Math.floor(image.dataset.length * 0.6)),
  });
  t.is(response.status, 0xc000);
  t.regex(response.errorComment ?? '', /truncated/);
  t.deepEqual(spoolFilesOf(image.studyInstanceUid), []);
  t.deepEqual(incomingFiles(), []);
  // The association itself is still usable.
  const good = dataset();
  t.is(
    (await association.store({ sopClassUid: DX, sopInstanceUid: good.sopInstanceUid, dataset: good.dataset })).status,
    0,
  );
  await association.release();
});

test.serial('a dataset cut off in the middle of an element header gets 0xC000', async (t) => {
  const image = dataset();
  const association = await associate();
  const response = await association.store({
    sopClassUid: DX,
    sopInstanceUid: image.sopInstanceUid,
    dataset: image.dataset.subarray(0, 301),
  });
  t.is(response.status, 0xc000);
  await association.release();
});

test.serial('garbled bytes in place of a dataset get 0xC000', async (t) => {
  const association = await associate();
  const noise = Buffer.alloc(4096);
  for (let i = 0; i < noise.length; i += 1) noise[i] = (i * 7919) % 251;
  const response = await association.store({ sopClassUid: DX, sopInstanceUid: newUid(), dataset: noise });
  t.is(response.status, 0xc000);
  await association.release();
});

test.serial('a dataset without SOP Instance UID gets 0xA900 naming the attribute', async (t) => {
  const image = editedDataset((dict) => delete dict['00080018']);
  const association = await associate();
  const response = await association.store({
    sopClassUid: DX,
    sopInstanceUid: image.sopInstanceUid,
    dataset: image.dataset,
  });
  t.is(response.status, 0xa900);
  t.regex(response.errorComment ?? '', /SOP Instance UID/);
  t.deepEqual(spoolFilesOf(image.studyInstanceUid), []);
  await association.release();
});

test.serial('a dataset whose SOP Instance UID differs from the command gets 0xA900', async (t) => {
  const image = dataset();
  const association = await associate();
  const response = await association.store({ sopClassUid: DX, sopInstanceUid: newUid(), dataset: image.dataset });
  t.is(response.status, 0xa900);
  t.regex(response.errorComment ?? '', /differs/);
  await association.release();
});

test.serial('a dataset without Study Instance UID gets 0xA900', async (t) => {
  const image = editedDataset((dict) => delete dict['0020000D']);
  const association = await associate();
  const response = await association.store({
    sopClassUid: DX,
    sopInstanceUid: image.sopInstanceUid,
    dataset: image.dataset,
  });
  t.is(response.status, 0xa900);
  t.regex(response.errorComment ?? '', /Study Instance UID/);
  await association.release();
});

test.serial('a UID that is really a path is never used as one', async (t) => {
  const evil = '../../../../tmp/evil';
  const image = editedDataset((dict) => {
    (dict['0020000D'] as { Value: string[] }).Value = [evil];
  });
  const association = await associate();
  const response = await association.store({
    sopClassUid: DX,
    sopInstanceUid: image.sopInstanceUid,
    dataset: image.dataset,
  });
  t.is(response.status, 0xa900);
  t.false(existsSync('/tmp/evil'));
  await association.release();
});

test.serial('garbage on the port: the connection is dropped and the daemon keeps serving', async (t) => {
  const result = await sendGarbage('127.0.0.1', gateway.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  t.true(result.closedByPeer);
  const binary = Buffer.alloc(64, 0xff);
  t.true((await sendGarbage('127.0.0.1', gateway.port, binary)).closedByPeer);
  t.is((await echoscu(gateway.port)).code, 0);
});

test.serial('a PDU larger than the negotiated maximum drops the connection', async (t) => {
  const association = await associate();
  const header = Buffer.from([0x04, 0x00, 0x7f, 0xff, 0xff, 0xff]);
  association.sendRaw(header);
  await association.closed;
  // The standard answer to a protocol error: A-ABORT from the service provider (source 2), then the close.
  t.like(association.abortReceived, { source: 2 });
  t.is((await echoscu(gateway.port)).code, 0);
});

test.serial('a peer that vanishes mid-transfer leaves no partial file and no record', async (t) => {
  const image = dataset();
  const association = await associate();
  await association.sendCommandAndPartialDataset({
    sopClassUid: DX,
    sopInstanceUid: image.sopInstanceUid,
    dataset: image.dataset,
    bytesToSend: Math.floor(image.dataset.length / 2),
  });
  association.destroy();
  await gateway.waitForLog((l) => l.event === 'DIMSE-1024', 'the abandoned transfer');
  t.deepEqual(incomingFiles(), []);
  t.deepEqual(spoolFilesOf(image.studyInstanceUid), []);
  const listing = await listJobs(gateway.configPath);
  t.false(listing.studies.some((s) => s.studyInstanceUid === image.studyInstanceUid));
});

test.serial('after all of that, the instance acknowledged first is still stored and recorded', async (t) => {
  t.deepEqual(spoolFilesOf(first.studyInstanceUid), [`${first.sopInstanceUid}.dcm`]);
  const stored = readFileSync(
    path.join(gateway.workDir, 'data', 'spool', 'studies', first.studyInstanceUid, `${first.sopInstanceUid}.dcm`),
  );
  t.is(datasetBytesOfPart10(stored).transferSyntaxUid, EXPLICIT_VR_LITTLE_ENDIAN);
  const listing = await listJobs(gateway.configPath);
  t.like(
    listing.studies.find((s) => s.studyInstanceUid === first.studyInstanceUid),
    { instanceCount: 1 },
  );
  t.is((await echoscu(gateway.port)).code, 0);
});
