// Proves test/helpers/raw-scu.ts against a real peer: DCMTK's storescp, started per test on a free port.

import test from 'ava';
import type { ExecutionContext } from 'ava';
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import dcmjs from 'dcmjs';
import { freePort } from './ports.js';
import {
  CommandTag,
  EXPLICIT_VR_LITTLE_ENDIAN,
  IMPLICIT_VR_LITTLE_ENDIAN,
  PduReader,
  PduType,
  RawAssociation,
  VERIFICATION_SOP_CLASS_UID,
  commandString,
  connectIdle,
  commandUS,
  datasetBytesOfPart10,
  decodeCommand,
  encodeAbort,
  encodeCEchoRq,
  encodePDataTf,
  encodeReleaseRq,
  openAssociation,
  sendGarbage,
  type AssociationRejected,
  type OpenAssociationOptions,
} from './raw-scu.js';

const execFileAsync = promisify(execFile);

const SECONDARY_CAPTURE = '1.2.840.10008.5.1.4.1.1.7';
const HOST = '127.0.0.1';

// ---------------------------------------------------------------------------------------------------
// Fixtures

interface Storescp {
  port: number;
  dir: string;
  stderr: () => string;
}

/** Starts storescp on a free port, waits until it accepts TCP connections, stops it by PID in teardown. */
async function startStorescp(t: ExecutionContext, extraArgs: string[] = []): Promise<Storescp> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'raw-scu-test-'));
  const port = await freePort();
  const child = spawn('storescp', ['--output-directory', dir, '-aet', 'STORESCP', ...extraArgs, String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  child.once('error', () => (exited = true));
  t.teardown(async () => {
    if (!exited && child.pid !== undefined) {
      process.kill(child.pid);
      await Promise.race([exit, new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    await rm(dir, { recursive: true, force: true });
  });

  // Readiness: retry a plain TCP connect (bounded), failing early if storescp died.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) throw new Error(`storescp exited before listening: ${output}`);
    if (await canConnect(port)) break;
    if (Date.now() > deadline) throw new Error(`storescp did not listen on ${port} within 10 s: ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, dir, stderr: () => output };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function makeSecondaryCapture(rows = 64, columns = 64): { sopInstanceUid: string; part10: Buffer } {
  const { DicomDict, DicomMetaDictionary } = dcmjs.data;
  const sopInstanceUid = DicomMetaDictionary.uid();
  const dict = new DicomDict(
    DicomMetaDictionary.denaturalizeDataset({
      FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
      MediaStorageSOPClassUID: SECONDARY_CAPTURE,
      MediaStorageSOPInstanceUID: sopInstanceUid,
      TransferSyntaxUID: EXPLICIT_VR_LITTLE_ENDIAN,
      ImplementationClassUID: '2.25.1',
    }),
  );
  const pixels = new Uint8Array(rows * columns).map((_, i) => i & 0xff);
  dict.dict = DicomMetaDictionary.denaturalizeDataset({
    SOPClassUID: SECONDARY_CAPTURE,
    SOPInstanceUID: sopInstanceUid,
    Modality: 'OT',
    ConversionType: 'WSD',
    PatientName: 'Raw^Scu',
    PatientID: 'RAWSCU1',
    StudyInstanceUID: DicomMetaDictionary.uid(),
    SeriesInstanceUID: DicomMetaDictionary.uid(),
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: rows,
    Columns: columns,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    PixelData: [pixels.buffer],
    _vrMap: { PixelData: 'OB' },
  });
  return { sopInstanceUid, part10: Buffer.from(dict.write()) };
}

const CONTEXTS = [
  { abstractSyntax: VERIFICATION_SOP_CLASS_UID, transferSyntaxes: [IMPLICIT_VR_LITTLE_ENDIAN] },
  { abstractSyntax: SECONDARY_CAPTURE, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN] },
];

function options(port: number, extra: Partial<OpenAssociationOptions> = {}): OpenAssociationOptions {
  return { host: HOST, port, callingAe: 'RAWSCU', calledAe: 'STORESCP', contexts: CONTEXTS, ...extra };
}

async function associate(
  t: ExecutionContext,
  port: number,
  extra: Partial<OpenAssociationOptions> = {},
): Promise<RawAssociation> {
  const assoc = await openAssociation(options(port, extra));
  if (assoc.rejected) throw new Error(`association rejected: ${JSON.stringify(assoc)}`);
  t.teardown(() => assoc.destroy());
  return assoc;
}

async function sopInstanceUidOf(file: string): Promise<string> {
  const { stdout } = await execFileAsync('dcmdump', ['+P', '0008,0018', file]);
  const match = /\(0008,0018\) UI \[([^\]]*)\]/.exec(stdout);
  if (match === null || match[1] === undefined) throw new Error(`no SOP Instance UID in dcmdump output: ${stdout}`);
  return match[1];
}

// ---------------------------------------------------------------------------------------------------
// Offline checks of the codec

test('PduReader reassembles a PDU split across chunks and several PDUs in one chunk', (t) => {
  const a = encodeReleaseRq();
  const b = encodePDataTf([{ contextId: 1, isCommand: true, isLast: true, data: encodeCEchoRq(7) }]);
  const c = encodeAbort(2, 6);
  const stream = Buffer.concat([a, b, c]);
  const reader = new PduReader();
  const got = [
    ...reader.push(stream.subarray(0, 3)), // not even a whole header
    ...reader.push(stream.subarray(3, a.length + 10)), // a, and the start of b
    ...reader.push(stream.subarray(a.length + 10)), // the rest of b, and all of c
  ];
  t.deepEqual(
    got.map((p) => p.type),
    [PduType.ReleaseRq, PduType.PDataTf, PduType.Abort],
  );
  t.deepEqual(got[1]?.body, b.subarray(6));
  t.deepEqual(got[2]?.body, Buffer.from([0, 0, 2, 6]));
  t.is(reader.pendingBytes, 0);
});

test('encodeCEchoRq is implicit VR LE with group length, even-padded UID and no data set', (t) => {
  const bytes = encodeCEchoRq(42);
  const command = decodeCommand(bytes);
  t.is(command.get(CommandTag.GroupLength)?.readUInt32LE(0), bytes.length - 12);
  t.is(command.get(CommandTag.AffectedSopClassUid)?.length, 18); // "1.2.840.10008.1.1" (17) + NUL
  t.is(command.get(CommandTag.AffectedSopClassUid)?.at(-1), 0);
  t.is(commandString(command, CommandTag.AffectedSopClassUid), VERIFICATION_SOP_CLASS_UID);
  t.is(commandUS(command, CommandTag.CommandField), 0x0030);
  t.is(commandUS(command, CommandTag.MessageId), 42);
  t.is(commandUS(command, CommandTag.CommandDataSetType), 0x0101);
});

test('datasetBytesOfPart10 skips preamble and meta, and rejects non-Part-10 input', (t) => {
  const { part10 } = makeSecondaryCapture(2, 2);
  const { transferSyntaxUid, dataset } = datasetBytesOfPart10(part10);
  t.is(transferSyntaxUid, EXPLICIT_VR_LITTLE_ENDIAN);
  // The dataset starts with (0008,0016) UI in explicit VR little endian.
  t.deepEqual(dataset.subarray(0, 6), Buffer.from([0x08, 0x00, 0x16, 0x00, 0x55, 0x49]));
  t.throws(() => datasetBytesOfPart10(Buffer.alloc(200)), { message: /not a DICOM Part 10 file/ });
  t.throws(() => datasetBytesOfPart10(Buffer.from('DICM')), { message: /not a DICOM Part 10 file/ });
});

// ---------------------------------------------------------------------------------------------------
// Against storescp

test('association: one context per abstract syntax, answered results and transfer syntaxes', async (t) => {
  const scp = await startStorescp(t, ['-pdu', '4096']);
  const assoc = await associate(t, scp.port, {
    contexts: [...CONTEXTS, { abstractSyntax: '1.2.3.4.5.6.7', transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
  });
  t.false(assoc.rejected);
  t.deepEqual(
    assoc.contexts.map(({ id, abstractSyntax, result }) => ({ id, abstractSyntax, result })),
    [
      { id: 1, abstractSyntax: VERIFICATION_SOP_CLASS_UID, result: 0 },
      { id: 3, abstractSyntax: SECONDARY_CAPTURE, result: 0 },
      { id: 5, abstractSyntax: '1.2.3.4.5.6.7', result: 3 }, // abstract syntax not supported
    ],
  );
  t.is(assoc.contexts[0]?.transferSyntax, IMPLICIT_VR_LITTLE_ENDIAN);
  t.is(assoc.contexts[1]?.transferSyntax, EXPLICIT_VR_LITTLE_ENDIAN);
  t.is(assoc.maxPduLengthOfPeer, 4096);
  await assoc.release();
});

test('C-ECHO returns status 0', async (t) => {
  const scp = await startStorescp(t);
  const assoc = await associate(t, scp.port);
  t.is(await assoc.echo(), 0);
  t.is(await assoc.echo(1), 0);
  await assoc.release();
});

test('C-STORE: status 0, fragments within the peer max PDU, storescp writes the same instance', async (t) => {
  // -pdu 4096 makes the ~4.4 KB dataset span several P-DATA-TF PDUs; +B writes the bytes as received.
  const scp = await startStorescp(t, ['-pdu', '4096', '+B']);
  const first = makeSecondaryCapture();
  const second = makeSecondaryCapture();
  const dataset1 = datasetBytesOfPart10(first.part10).dataset;
  const dataset2 = datasetBytesOfPart10(second.part10).dataset;
  t.true(dataset1.length > 4096);

  const assoc = await associate(t, scp.port);
  t.deepEqual(
    await assoc.store({ sopClassUid: SECONDARY_CAPTURE, sopInstanceUid: first.sopInstanceUid, dataset: dataset1 }),
    {
      status: 0,
    },
  );
  t.deepEqual(
    await assoc.store({
      sopClassUid: SECONDARY_CAPTURE,
      sopInstanceUid: second.sopInstanceUid,
      dataset: dataset2,
      pdvSize: 500,
      messageId: 900,
    }),
    { status: 0 },
  );
  await assoc.release();

  // Every P-DATA-TF PDU storescp received respected its 4096 limit, so it accepted them; now check the files.
  const files = (await readdir(scp.dir)).sort();
  t.is(files.length, 2, scp.stderr());
  const byUid = new Map<string, Buffer>();
  for (const name of files) {
    const file = path.join(scp.dir, name);
    byUid.set(await sopInstanceUidOf(file), await readFile(file));
  }
  t.deepEqual([...byUid.keys()].sort(), [first.sopInstanceUid, second.sopInstanceUid].sort());
  t.deepEqual(datasetBytesOfPart10(byUid.get(first.sopInstanceUid) ?? Buffer.alloc(0)).dataset, dataset1);
  t.deepEqual(datasetBytesOfPart10(byUid.get(second.sopInstanceUid) ?? Buffer.alloc(0)).dataset, dataset2);
});

test('C-STORE whose command SOP Instance UID differs from the dataset gets a failure status', async (t) => {
  const scp = await startStorescp(t);
  const { part10 } = makeSecondaryCapture(4, 4);
  const assoc = await associate(t, scp.port);
  const rsp = await assoc.store({
    sopClassUid: SECONDARY_CAPTURE,
    sopInstanceUid: '1.2.3.999',
    dataset: datasetBytesOfPart10(part10).dataset,
  });
  t.not(rsp.status, 0);
  t.is(await assoc.echo(), 0); // the association survives
  await assoc.release();
});

test('a refused association comes back as { rejected: true, ... }', async (t) => {
  const scp = await startStorescp(t, ['--refuse']);
  const answer = await openAssociation(options(scp.port));
  if (!answer.rejected) {
    answer.destroy();
    return t.fail('association was accepted');
  }
  const expected: AssociationRejected = { rejected: true, result: 1, source: 1, reason: 1 }; // permanent, service user, no reason
  t.deepEqual(answer, expected);
});

test('release completes: A-RELEASE-RP received and the connection closed by us', async (t) => {
  const scp = await startStorescp(t);
  const assoc = await associate(t, scp.port);
  await assoc.release();
  await assoc.closed;
  t.is(assoc.pdusReceived.at(-1)?.type, PduType.ReleaseRp);
  t.false(assoc.closedByPeer());
  t.is(assoc.abortReceived, undefined);
});

test('sendGarbage: the peer closes the connection', async (t) => {
  const scp = await startStorescp(t);
  const http = await sendGarbage(HOST, scp.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  t.true(http.closedByPeer);
  const junk = await sendGarbage(HOST, scp.port, Buffer.alloc(64, 0xff));
  t.true(junk.closedByPeer);
  // storescp survived both and still serves.
  const assoc = await associate(t, scp.port);
  t.is(await assoc.echo(), 0);
  await assoc.release();
});

test('an A-ABORT from the peer is recorded and fails the pending wait', async (t) => {
  const scp = await startStorescp(t, ['--abort-after']);
  const { sopInstanceUid, part10 } = makeSecondaryCapture(4, 4);
  const assoc = await associate(t, scp.port);
  const error = await t.throwsAsync(
    assoc.store({ sopClassUid: SECONDARY_CAPTURE, sopInstanceUid, dataset: datasetBytesOfPart10(part10).dataset }),
  );
  t.regex(error?.message ?? '', /A-ABORT .* while waiting for C-STORE-RSP/);
  t.deepEqual(assoc.abortReceived, { source: 0, reason: 0 }); // DCMTK aborts as service user
  await assoc.closed; // we close the transport on A-ABORT (PS3.8 AA-3); storescp waits for that
  t.is(assoc.pdusReceived.at(-1)?.type, PduType.Abort);
});

test('abort(), destroy() and a partial dataset close our side; storescp keeps serving', async (t) => {
  const scp = await startStorescp(t);
  const { sopInstanceUid, part10 } = makeSecondaryCapture();
  const dataset = datasetBytesOfPart10(part10).dataset;

  const vanishing = await associate(t, scp.port);
  vanishing.destroy();
  await vanishing.closed;
  t.false(vanishing.closedByPeer());

  const partial = await associate(t, scp.port);
  await partial.sendCommandAndPartialDataset({
    sopClassUid: SECONDARY_CAPTURE,
    sopInstanceUid,
    dataset,
    bytesToSend: 1000,
  });
  partial.abort();
  await partial.closed;
  t.false(partial.closedByPeer());

  const good = await associate(t, scp.port);
  t.deepEqual(await good.store({ sopClassUid: SECONDARY_CAPTURE, sopInstanceUid, dataset }), { status: 0 });
  await good.release();
  const files = await readdir(scp.dir);
  t.deepEqual(files, [`SC.${sopInstanceUid}`]);
});

test('waits time out with an Error naming what was awaited', async (t) => {
  // A listener that accepts TCP but never answers A-ASSOCIATE-RQ.
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const address = server.address();
  if (address === null || typeof address === 'string') return t.fail('no address');
  await t.throwsAsync(openAssociation(options(address.port, { timeoutMs: 200 })), {
    message: /timed out after 200 ms waiting for A-ASSOCIATE-AC\/RJ/,
  });
});

test('explicit context IDs are proposed as given and answers map back to them, also from a second loopback address', async (t) => {
  const scp = await startStorescp(t);
  const assoc = await associate(t, scp.port, {
    localAddress: '127.0.0.2',
    contexts: [
      { abstractSyntax: SECONDARY_CAPTURE, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN], id: 201 },
      { abstractSyntax: VERIFICATION_SOP_CLASS_UID, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN], id: 7 },
    ],
  });
  t.deepEqual(
    assoc.contexts.map(({ id, abstractSyntax }) => ({ id, abstractSyntax })),
    [
      { id: 201, abstractSyntax: SECONDARY_CAPTURE },
      { id: 7, abstractSyntax: VERIFICATION_SOP_CLASS_UID },
    ],
  );
  t.is(await assoc.echo(), 0);
  await assoc.release();
});

test('connectIdle opens a socket that sends nothing, from the given address', async (t) => {
  const seen: string[] = [];
  const server = net.createServer((socket) => {
    seen.push(socket.remoteAddress ?? '');
    socket.on('data', () => t.fail('the idle socket sent data'));
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => server.close());
  const socket = await connectIdle('127.0.0.1', (server.address() as net.AddressInfo).port, {
    localAddress: '127.0.0.2',
  });
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await new Promise((resolve) => setTimeout(resolve, 50));
  socket.destroy();
  await closed;
  t.deepEqual(
    seen.map((a) => a.replace(/^::ffff:/, '')),
    ['127.0.0.2'],
  );
});
