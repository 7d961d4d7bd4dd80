import test from 'ava';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SOP_CLASS_UID, makeImageFile, writeImageFile } from '../helpers/dicom-factory.js';
import { echoscu, storescu } from '../helpers/dcmtk.js';
import { runCommand } from '../helpers/run-command.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-process.js';
import {
  EXPLICIT_VR_LITTLE_ENDIAN,
  PduReader,
  PduType,
  VERIFICATION_SOP_CLASS_UID,
  connectIdle,
  datasetBytesOfPart10,
  encodeAbort,
  encodeAssociateRq,
  encodeCStoreRq,
  encodeCommand,
  encodePDataTf,
  encodeReleaseRq,
  openAssociation,
  sendGarbage,
  type RawAssociation,
} from '../helpers/raw-scu.js';

// The attacks of issue 14 (items 1-3) against the real daemon, one after the other; after each, a real DCMTK
// storescu must still be served. The ARTIM timer is short here so that no test waits long for a close.
let gateway: GatewayUnderTest;
const DX = SOP_CLASS_UID['dx-presentation'];
const scratch = mkdtempSync(path.join(os.tmpdir(), 'upper-layer-'));
const dx = { abstractSyntax: DX, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] };
const verification = { abstractSyntax: VERIFICATION_SOP_CLASS_UID, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] };

test.before(async () => {
  gateway = await startGateway({ dicom: { associationRequestTimeoutSeconds: 0.5 } });
});
test.after.always(async () => {
  await gateway?.stop();
});

async function storescuStillWorks(): Promise<{ code: number | null; stderr: string }> {
  const file = await writeImageFile(mkdtempSync(path.join(scratch, 'ok-')), {});
  return storescu(gateway.port, [file.path]);
}

function storedDir(studyInstanceUid: string): string {
  return path.join(gateway.workDir, 'data', 'spool', 'studies', studyInstanceUid);
}

function pdusOf(bytes: Buffer) {
  return new PduReader().push(bytes);
}

test.serial(
  'a request that repeats presentation context ID 255 is rejected, and the daemon keeps serving',
  async (t) => {
    const answer = await openAssociation({
      host: '127.0.0.1',
      port: gateway.port,
      callingAe: 'ATTACKER',
      calledAe: 'CXR_GATEWAY',
      contexts: [
        { ...dx, id: 255 },
        { ...verification, id: 255 },
      ],
    });
    t.like(answer, { rejected: true, result: 1, source: 2 });
    const logged = await gateway.waitForLog(
      (l) => l.event === 'DIMSE-1003' && l.callingAe === 'ATTACKER',
      'the rejection',
    );
    t.regex(String(logged.why), /ID 255 is proposed twice/);
    const after = await storescuStillWorks();
    t.is(after.code, 0, after.stderr);
  },
);

test.serial(
  '200 presentation contexts (IDs wrapping past 255) are rejected, and the daemon keeps serving',
  async (t) => {
    const contexts = Array.from({ length: 200 }, (_, i) => ({
      ...(i % 2 === 0 ? dx : verification),
      id: ((i * 2) % 256) + 1,
    }));
    const answer = await openAssociation({
      host: '127.0.0.1',
      port: gateway.port,
      callingAe: 'ATTACKER2',
      calledAe: 'CXR_GATEWAY',
      contexts,
    });
    t.like(answer, { rejected: true, result: 1, source: 2 });
    const after = await storescuStillWorks();
    t.is(after.code, 0, after.stderr);
  },
);

test.serial('128 contexts with every odd ID up to 255 are answered with 128 valid contexts', async (t) => {
  const contexts = Array.from({ length: 128 }, (_, i) => ({ ...(i % 2 === 0 ? dx : verification), id: i * 2 + 1 }));
  const association = await openAssociation({
    host: '127.0.0.1',
    port: gateway.port,
    callingAe: 'MANY',
    calledAe: 'CXR_GATEWAY',
    contexts,
  });
  if (association.rejected) return t.fail('rejected');
  const ids = association.contexts.map((c) => c.id);
  t.deepEqual(
    ids,
    contexts.map((c) => c.id),
  );
  t.true(association.contexts.every((c) => c.result === 0));
  t.is(await association.echo(255), 0);
  await association.release();
});

test.serial(
  'a C-STORE sent right after a rejected request is never read: the connection closes and nothing is stored',
  async (t) => {
    const image = makeImageFile({});
    const dataset = datasetBytesOfPart10(image.bytes).dataset;
    const rq = encodeAssociateRq({ callingAe: 'INTRUDER', calledAe: 'NOT_OURS', contexts: [dx] });
    const command = encodeCStoreRq({ sopClassUid: DX, sopInstanceUid: image.sopInstanceUid, messageId: 1 });
    // Pipelined behind the request, so that it is already in our receive buffer when we reject.
    const store = Buffer.concat([
      encodePDataTf([{ contextId: 1, isCommand: true, isLast: true, data: command }]),
      encodePDataTf([{ contextId: 1, isCommand: false, isLast: true, data: dataset.subarray(0, 16000) }]),
    ]);
    const started = Date.now();
    const result = await sendGarbage('127.0.0.1', gateway.port, Buffer.concat([rq, store]), 10_000);
    t.true(result.closedByPeer);
    t.true(Date.now() - started < 2000, `closed after ${Date.now() - started} ms`);
    const pdus = pdusOf(result.received);
    t.deepEqual(
      pdus.map((p) => p.type),
      [PduType.AssociateRj],
    );
    t.false(existsSync(storedDir(image.studyInstanceUid)));
    t.false(gateway.logs.some((l) => l.sopInstanceUid === image.sopInstanceUid));
  },
);

test.serial(
  'an A-ABORT from the peer closes the connection at once (we do not wait for the peer to close)',
  async (t) => {
    const association = (await openAssociation({
      host: '127.0.0.1',
      port: gateway.port,
      callingAe: 'ABORTER',
      calledAe: 'CXR_GATEWAY',
      contexts: [verification],
    })) as RawAssociation;
    const started = Date.now();
    association.sendRaw(encodeAbort(0, 0));
    await association.waitForClose(5000);
    const elapsed = Date.now() - started;
    t.true(association.closedByPeer());
    t.true(elapsed < 2000, `closed after ${elapsed} ms`);
  },
);

test.serial('after A-RELEASE-RP we close the connection ourselves', async (t) => {
  const association = (await openAssociation({
    host: '127.0.0.1',
    port: gateway.port,
    callingAe: 'RELEASER',
    calledAe: 'CXR_GATEWAY',
    contexts: [verification],
  })) as RawAssociation;
  const started = Date.now();
  // The raw request, not release(): this peer does nothing after the A-RELEASE-RP.
  association.sendRaw(encodeReleaseRq());
  await association.waitForClose(5000);
  const elapsed = Date.now() - started;
  t.true(association.closedByPeer());
  t.is(association.pdusReceived.at(-1)?.type, PduType.ReleaseRp);
  t.true(elapsed < 2000, `closed after ${elapsed} ms`);
});

test.serial(
  'a second A-ASSOCIATE-RQ on an open association is answered with A-ABORT (unexpected PDU) and the close',
  async (t) => {
    const association = (await openAssociation({
      host: '127.0.0.1',
      port: gateway.port,
      callingAe: 'TWICE',
      calledAe: 'CXR_GATEWAY',
      contexts: [verification],
    })) as RawAssociation;
    association.sendRaw(encodeAssociateRq({ callingAe: 'TWICE', calledAe: 'CXR_GATEWAY', contexts: [verification] }));
    await association.waitForClose(5000);
    t.deepEqual(association.abortReceived, { source: 2, reason: 2 });
    t.false(association.pdusReceived.slice(1).some((p) => p.type === PduType.AssociateAc));
  },
);

test.serial(
  'C-FIND, C-GET, C-MOVE, N-ACTION and an unknown command get 0x0211 on their own context; the association goes on',
  async (t) => {
    const association = (await openAssociation({
      host: '127.0.0.1',
      port: gateway.port,
      callingAe: 'QUERIER',
      calledAe: 'CXR_GATEWAY',
      contexts: [verification, dx],
    })) as RawAssociation;
    const identifier = Buffer.from([
      0x08, 0x00, 0x52, 0x00, 0x06, 0x00, 0x00, 0x00, 0x53, 0x54, 0x55, 0x44, 0x59, 0x20,
    ]);
    const commands: Array<[number, boolean]> = [
      [0x0020, true], // C-FIND-RQ with its identifier
      [0x0010, true], // C-GET-RQ
      [0x0021, true], // C-MOVE-RQ
      [0x0130, false], // N-ACTION-RQ
      [0x0555, false], // no such command
    ];
    let messageId = 10;
    for (const [field, withDataset] of commands) {
      messageId += 1;
      const pc = field === 0x0555 ? 1 : 3;
      const command = encodeCommand([
        { element: 0x0002, vr: 'UI', value: pc === 1 ? VERIFICATION_SOP_CLASS_UID : DX },
        { element: 0x0100, vr: 'US', value: field },
        { element: 0x0110, vr: 'US', value: messageId },
        { element: 0x0800, vr: 'US', value: withDataset ? 0x0000 : 0x0101 },
      ]);
      association.sendMessage(pc, command, withDataset ? identifier : undefined);
      const response = await association.receiveMessage(`the answer to 0x${field.toString(16)}`);
      t.is(response.status, 0x0211, `command 0x${field.toString(16)}`);
      t.is(response.contextId, pc);
      t.is(response.messageIdBeingRespondedTo, messageId);
      t.is(response.commandField, field | 0x8000);
    }
    t.is(await association.echo(), 0);
    await association.release();
  },
);

test.serial('a socket that sends no A-ASSOCIATE-RQ is closed when ARTIM expires', async (t) => {
  const socket = await connectIdle('127.0.0.1', gateway.port);
  const started = Date.now();
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const elapsed = Date.now() - started;
  // associationRequestTimeoutSeconds is 0.5 here: closed by the timer, not by a minute-long idle timeout.
  t.true(elapsed < 3000, `closed after ${elapsed} ms`);
});

test.serial(
  'storescu that aborts (its CT has no accepted context) is not kept waiting: we close on its A-ABORT',
  async (t) => {
    const file = await writeImageFile(mkdtempSync(path.join(scratch, 'ct-')), {});
    const edited = await runCommand('dcmodify', ['-nb', '-m', '(0008,0016)=1.2.840.10008.5.1.4.1.1.2', file.path]);
    t.is(edited.code, 0, edited.stderr);
    const started = Date.now();
    const result = await storescu(gateway.port, [file.path], { callingAe: 'CT_SENDER' });
    const elapsed = Date.now() - started;
    t.not(result.code, 0);
    // DCMTK waited 20-30 s for our close before; a bound on our reaction, not a race.
    t.true(elapsed < 2000, `storescu took ${elapsed} ms`);
    const closed = await gateway.waitForLog(
      (l) => l.event === 'DIMSE-1004' && l.callingAe === 'CT_SENDER',
      'the abort',
    );
    t.truthy(closed);
  },
);

test.serial(
  'an A-RELEASE-RQ right behind a C-STORE: the C-STORE-RSP goes out first, then the A-RELEASE-RP, then the close',
  async (t) => {
    const image = makeImageFile({});
    const association = (await openAssociation({
      host: '127.0.0.1',
      port: gateway.port,
      callingAe: 'HASTY',
      calledAe: 'CXR_GATEWAY',
      contexts: [dx],
    })) as RawAssociation;
    const command = encodeCStoreRq({ sopClassUid: DX, sopInstanceUid: image.sopInstanceUid, messageId: 1 });
    association.sendMessage(association.acceptedContextFor(DX), command, datasetBytesOfPart10(image.bytes).dataset);
    association.sendRaw(encodeReleaseRq());
    const response = await association.receiveMessage('the C-STORE-RSP');
    t.is(response.status, 0);
    await association.waitForClose(5000);
    t.deepEqual(
      association.pdusReceived.map((p) => p.type),
      [PduType.AssociateAc, PduType.PDataTf, PduType.ReleaseRp],
    );
    t.true(existsSync(path.join(storedDir(image.studyInstanceUid), `${image.sopInstanceUid}.dcm`)));
  },
);

test.serial('echoscu --abort: its A-ABORT is acted on at once, and the association slot is free again', async (t) => {
  const started = Date.now();
  const result = await echoscu(gateway.port, { callingAe: 'ECHO_ABORT', extraArgs: ['--abort'] });
  const elapsed = Date.now() - started;
  t.is(result.code, 0, result.stderr);
  t.true(elapsed < 2000, `echoscu took ${elapsed} ms`);
  await gateway.waitForLog((l) => l.event === 'DIMSE-1004' && l.callingAe === 'ECHO_ABORT', 'the abort');
  await gateway.waitForLog((l) => l.event === 'DIMSE-1002' && l.callingAe === 'ECHO_ABORT', 'the slot freed');
  t.pass();
});
