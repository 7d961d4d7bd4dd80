import test from 'ava';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { SOP_CLASS_UID, makeImageFile } from '../helpers/dicom-factory.js';
import { echoscu } from '../helpers/dcmtk.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-process.js';
import {
  EXPLICIT_VR_LITTLE_ENDIAN,
  datasetBytesOfPart10,
  encodeCEchoRq,
  encodeCStoreRq,
  encodePDataTf,
  openAssociation,
  type Pdv,
  type RawAssociation,
  VERIFICATION_SOP_CLASS_UID,
} from '../helpers/raw-scu.js';

// The C-STORE data set bypass against the real dcmjs-dimse, with PDU layouts storescu never produces.
let gateway: GatewayUnderTest;
const DX = SOP_CLASS_UID['dx-presentation'];

test.before(async () => {
  gateway = await startGateway();
});
test.after.always(async () => {
  await gateway?.stop();
});

async function associate(): Promise<RawAssociation> {
  const association = await openAssociation({
    host: '127.0.0.1',
    port: gateway.port,
    callingAe: 'PACKER',
    calledAe: 'CXR_GATEWAY',
    maxPduLength: 65536,
    contexts: [
      { abstractSyntax: DX, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] },
      { abstractSyntax: VERIFICATION_SOP_CLASS_UID, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] },
    ],
  });
  if (association.rejected) throw new Error('association rejected');
  return association;
}

function storedPath(studyInstanceUid: string, sopInstanceUid: string): string {
  return path.join(gateway.workDir, 'data', 'spool', 'studies', studyInstanceUid, `${sopInstanceUid}.dcm`);
}

/** Splits `bytes` into data PDVs of the given sizes, cycling through them; only the last has the last flag. */
function dataPdvs(contextId: number, bytes: Buffer, sizes: number[]): Pdv[] {
  const out: Pdv[] = [];
  for (let offset = 0, i = 0; offset < bytes.length; i += 1) {
    const size = sizes[i % sizes.length] ?? 1000;
    const data = bytes.subarray(offset, offset + size);
    offset += data.length;
    out.push({ contextId, isCommand: false, isLast: offset >= bytes.length, data });
  }
  return out;
}

test.serial(
  'command and data PDVs packed into shared PDUs, odd fragment sizes and empty PDVs: stored byte for byte',
  async (t) => {
    const image = makeImageFile({});
    const dataset = datasetBytesOfPart10(image.bytes).dataset;
    const association = await associate();
    const pc = association.acceptedContextFor(DX);
    const command = encodeCStoreRq({ sopClassUid: DX, sopInstanceUid: image.sopInstanceUid, messageId: 1 });
    const data = dataPdvs(pc, dataset, [1001, 0, 7, 20_000, 3]);
    // PDU 1: a command fragment. PDU 2: the command's last fragment and the first two data PDVs. Then the
    // data PDVs three to a PDU, all written to the socket at once.
    const pdus = [
      encodePDataTf([{ contextId: pc, isCommand: true, isLast: false, data: command.subarray(0, 10) }]),
      encodePDataTf([
        { contextId: pc, isCommand: true, isLast: true, data: command.subarray(10) },
        ...data.slice(0, 2),
      ]),
    ];
    for (let i = 2; i < data.length; i += 3) pdus.push(encodePDataTf(data.slice(i, i + 3)));
    association.sendRaw(Buffer.concat(pdus));
    const response = await association.receiveMessage('C-STORE-RSP');
    t.is(response.status, 0);
    const stored = readFileSync(storedPath(image.studyInstanceUid, image.sopInstanceUid));
    t.true(datasetBytesOfPart10(stored).dataset.equals(dataset));
    // The association goes on as normal.
    t.is(await association.echo(), 0);
    await association.release();
  },
);

test.serial('a command in the middle of a data set drops the connection and keeps nothing', async (t) => {
  const image = makeImageFile({});
  const dataset = datasetBytesOfPart10(image.bytes).dataset;
  const association = await associate();
  const pc = association.acceptedContextFor(DX);
  const command = encodeCStoreRq({ sopClassUid: DX, sopInstanceUid: image.sopInstanceUid, messageId: 1 });
  const data = dataPdvs(pc, dataset, [30_000]);
  association.sendRaw(
    Buffer.concat([
      encodePDataTf([{ contextId: pc, isCommand: true, isLast: true, data: command }, ...data.slice(0, 2)]),
      encodePDataTf([{ contextId: pc, isCommand: true, isLast: true, data: encodeCEchoRq(2) }]),
    ]),
  );
  await association.closed;
  // The standard answer to a protocol error: A-ABORT from the service provider (source 2), then the close.
  t.like(association.abortReceived, { source: 2 });
  await gateway.waitForLog((l) => l.event === 'DIMSE-1024', 'the abandoned transfer');
  t.false(existsSync(path.dirname(storedPath(image.studyInstanceUid, image.sopInstanceUid))));
  t.deepEqual(readdirSync(path.join(gateway.workDir, 'data', 'spool', 'incoming')), []);
  t.is((await echoscu(gateway.port)).code, 0);
});
