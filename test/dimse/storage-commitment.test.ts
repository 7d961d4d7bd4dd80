import test from 'ava';
import dcmjs from 'dcmjs';
import { TransferSyntax } from '../../src/dicom/transfer-syntaxes.js';
import {
  decodeCommitmentDataset,
  describeFailureReason,
  encodeCommitmentDataset,
  newTransactionUid,
  type CommitmentDataset,
} from '../../src/dimse/storage-commitment.js';
import { CommandElement, CommandField, encodeCommand, parseCommand } from '../../src/dimse/dimse-messages.js';

const EXPLICIT = TransferSyntax.ExplicitVRLittleEndian;
const IMPLICIT = TransferSyntax.ImplicitVRLittleEndian;

const request: CommitmentDataset = {
  transactionUid: '2.25.123456789',
  referenced: [
    { sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1', sopInstanceUid: '1.2.3.4.5' },
    { sopClassUid: '1.2.840.10008.5.1.4.1.1.7', sopInstanceUid: '1.2.3.4.66' },
  ],
  failed: [],
};
const report: CommitmentDataset = {
  transactionUid: '2.25.987',
  referenced: [{ sopClassUid: '1.2.840.10008.5.1.4.1.1.7', sopInstanceUid: '1.2.3.4.66' }],
  failed: [{ sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1', sopInstanceUid: '1.2.3.4.5', failureReason: 0x0112 }],
};

for (const syntax of [EXPLICIT, IMPLICIT]) {
  test(`a request and a report with failures survive encode and decode (${syntax})`, (t) => {
    t.deepEqual(decodeCommitmentDataset(encodeCommitmentDataset(request, syntax), syntax), request);
    t.deepEqual(decodeCommitmentDataset(encodeCommitmentDataset(report, syntax), syntax), report);
  });
}

test('the explicit encoding is what dcmjs reads: Transaction UID, both sequences, the failure reason', (t) => {
  // dcmjs parses a data set behind a Part 10 header; give it one (explicit VR little endian).
  const bytes = encodeCommitmentDataset(report, EXPLICIT);
  const { DicomMessage, DicomMetaDictionary } = dcmjs.data;
  const file = withPart10Header(bytes);
  const parsed = DicomMessage.readFile(new Uint8Array(file).buffer);
  const dataset = DicomMetaDictionary.naturalizeDataset(parsed.dict) as Record<string, unknown>;
  t.is(dataset.TransactionUID, '2.25.987');
  const failed = dataset.FailedSOPSequence as Array<Record<string, unknown>> | Record<string, unknown>;
  const first = Array.isArray(failed) ? failed[0] : failed;
  t.is(first?.ReferencedSOPInstanceUID, '1.2.3.4.5');
  t.is(first?.FailureReason, 0x0112);
  const referenced = dataset.ReferencedSOPSequence as Array<Record<string, unknown>> | Record<string, unknown>;
  t.is((Array.isArray(referenced) ? referenced[0] : referenced)?.ReferencedSOPInstanceUID, '1.2.3.4.66');
});

test('sequences and items of undefined length (as DCMTK may send them) are read', (t) => {
  const ui = (group: number, element: number, value: string): Buffer => {
    const v = Buffer.from(value.length % 2 === 0 ? value : `${value}\0`, 'latin1');
    const h = Buffer.alloc(8);
    h.writeUInt16LE(group, 0);
    h.writeUInt16LE(element, 2);
    h.write('UI', 4, 'latin1');
    h.writeUInt16LE(v.length, 6);
    return Buffer.concat([h, v]);
  };
  const delimiter = (element: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeUInt16LE(0xfffe, 0);
    b.writeUInt16LE(element, 2);
    return b;
  };
  const itemStart = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]);
  const sqHead = Buffer.alloc(12);
  sqHead.writeUInt16LE(0x0008, 0);
  sqHead.writeUInt16LE(0x1199, 2);
  sqHead.write('SQ', 4, 'latin1');
  sqHead.writeUInt32LE(0xffffffff, 8);
  const bytes = Buffer.concat([
    ui(0x0008, 0x1195, '2.25.42'),
    sqHead,
    itemStart,
    ui(0x0008, 0x1150, '1.2.840.10008.5.1.4.1.1.7'),
    ui(0x0008, 0x1155, '9.8.7'),
    delimiter(0xe00d),
    delimiter(0xe0dd),
  ]);
  t.deepEqual(decodeCommitmentDataset(bytes, EXPLICIT), {
    transactionUid: '2.25.42',
    referenced: [{ sopClassUid: '1.2.840.10008.5.1.4.1.1.7', sopInstanceUid: '9.8.7' }],
    failed: [],
  });
});

test('what cannot be a storage commitment data set is named, never thrown', (t) => {
  const good = encodeCommitmentDataset(request, EXPLICIT);
  t.regex(String(decodeCommitmentDataset(good.subarray(0, good.length - 5), EXPLICIT)), /cannot be read/);
  t.regex(
    String(decodeCommitmentDataset(encodeCommitmentDataset({ ...request, transactionUid: '' }, EXPLICIT), EXPLICIT)),
    /no Transaction UID/,
  );
  t.regex(String(decodeCommitmentDataset(good, '1.2.840.10008.1.2.2')), /Little Endian only/);
  const withoutInstance = encodeCommitmentDataset(
    { ...request, referenced: [{ sopClassUid: '1.2.3', sopInstanceUid: '' }] },
    IMPLICIT,
  );
  t.regex(String(decodeCommitmentDataset(withoutInstance, IMPLICIT)), /lacks its Referenced SOP Class or Instance UID/);
});

test('transaction UIDs are fresh 2.25 UIDs of at most 64 characters', (t) => {
  const a = newTransactionUid();
  const b = newTransactionUid();
  t.regex(a, /^2\.25\.[1-9]\d*$/);
  t.true(a.length <= 64);
  t.not(a, b);
});

test('failure reasons are named for the admin', (t) => {
  t.is(describeFailureReason(0x0112), '0x0112 no such object instance');
  t.is(describeFailureReason(0x0119), '0x0119 class / instance conflict');
  t.is(describeFailureReason(0xa123), '0xA123 failure');
});

test('N-ACTION and N-EVENT-REPORT command fields and their type IDs are read back', (t) => {
  const parsed = parseCommand(
    encodeCommand([
      [CommandElement.CommandField, { us: CommandField.NEventReportRq }],
      [CommandElement.MessageId, { us: 7 }],
      [CommandElement.EventTypeId, { us: 2 }],
      [CommandElement.ActionTypeId, { us: 1 }],
    ]),
  );
  t.like(parsed, { commandField: 0x0100, messageId: 7, eventTypeId: 2, actionTypeId: 1 });
  t.is(CommandField.NActionRq, 0x0130);
  t.is(CommandField.NActionRsp, 0x8130);
  t.is(CommandField.NEventReportRsp, 0x8100);
});

function withPart10Header(dataset: Buffer): Buffer {
  const element = (element: number, vr: string, value: Buffer): Buffer => {
    const h = Buffer.alloc(vr === 'OB' ? 12 : 8);
    h.writeUInt16LE(0x0002, 0);
    h.writeUInt16LE(element, 2);
    h.write(vr, 4, 'latin1');
    if (vr === 'OB') h.writeUInt32LE(value.length, 8);
    else h.writeUInt16LE(value.length, 6);
    return Buffer.concat([h, value]);
  };
  const uid = (value: string) => Buffer.from(value.length % 2 === 0 ? value : `${value}\0`, 'latin1');
  const body = Buffer.concat([
    element(0x0001, 'OB', Buffer.from([0, 1])),
    element(0x0002, 'UI', uid('1.2.840.10008.1.20.1')),
    element(0x0003, 'UI', uid('1.2.3')),
    element(0x0010, 'UI', uid(EXPLICIT)),
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.length, 0);
  const groupLength = element(0x0000, 'UL', length);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), groupLength, body, dataset]);
}
