import test from 'ava';
import dimse from 'dcmjs-dimse';
import { encodeResponse } from '../../src/dimse/dimse-messages.js';
import { CommandField, CommandTag, PduType, decodeCommand, decodePDataTf } from '../helpers/raw-scu.js';

const { Dataset, requests, responses } = dimse;

const DX = '1.2.840.10008.5.1.4.1.1.1.1';
const SOP = '1.2.826.0.1.3680043.8.498.12345678901234567890123456789';

/** The command set dcmjs-dimse would send for the same response, as element -> value bytes. */
function libraryEncoding(status: number, comment?: string): Map<number, Buffer> {
  const request = new requests.CStoreRequest(new Dataset({ SOPClassUID: DX, SOPInstanceUID: SOP }));
  request.setMessageId(4242);
  const response = responses.CStoreResponse.fromRequest(request);
  response.setStatus(status);
  if (comment !== undefined) response.setErrorComment(comment);
  // The library's own encoder: what its _sendPDataTF puts in the command PDV.
  return decodeCommand(response.getCommandDataset().getDenaturalizedCommandDataset());
}

function ours(status: number, comment?: string): { pdu: Buffer; command: Map<number, Buffer> } {
  const pdus = encodeResponse(
    {
      contextId: 5,
      requestCommandField: CommandField.CStoreRq,
      affectedSopClassUid: DX,
      affectedSopInstanceUid: SOP,
      messageIdBeingRespondedTo: 4242,
      status,
      ...(comment === undefined ? {} : { errorComment: comment }),
    },
    16384,
  );
  t0(pdus.length === 1, 'one PDU');
  const pdu = pdus[0] as Buffer;
  t0(pdu.readUInt8(0) === PduType.PDataTf && pdu.readUInt32BE(2) === pdu.length - 6, 'a whole P-DATA-TF');
  const pdvs = decodePDataTf(pdu.subarray(6));
  t0(pdvs.length === 1, 'one PDV');
  const [pdv] = pdvs;
  if (pdv === undefined) throw new Error('no PDV');
  t0(pdv.contextId === 5 && pdv.isCommand && pdv.isLast, 'a last command fragment on context 5');
  return { pdu, command: decodeCommand(pdv.data) };
}

function t0(condition: boolean, what: string): void {
  if (!condition) throw new Error(`not ${what}`);
}

test('the C-STORE-RSP we encode carries the same elements, byte for byte, as dcmjs-dimse would send', (t) => {
  for (const [status, comment] of [
    [0x0000, undefined],
    [0xa900, 'SOP Instance UID differs from the command'],
    [0xc000, 'odd'],
  ] as const) {
    const mine = ours(status, comment).command;
    const theirs = libraryEncoding(status, comment);
    t.deepEqual([...mine.keys()], [...theirs.keys()], `elements for status ${status}`);
    for (const [element, value] of theirs)
      t.true(mine.get(element)?.equals(value), `element ${element.toString(16)} for status ${status}`);
  }
});

test('the response names the request it answers and says whether it worked', (t) => {
  const { command } = ours(0xa700, 'only 3 MB free');
  t.is(command.get(CommandTag.CommandField)?.readUInt16LE(0), CommandField.CStoreRsp);
  t.is(command.get(CommandTag.MessageIdBeingRespondedTo)?.readUInt16LE(0), 4242);
  t.is(command.get(CommandTag.Status)?.readUInt16LE(0), 0xa700);
  t.is(command.get(CommandTag.CommandDataSetType)?.readUInt16LE(0), 0x0101);
  t.is(command.get(CommandTag.ErrorComment)?.toString('latin1'), 'only 3 MB free');
  t.is(command.get(CommandTag.AffectedSopInstanceUid)?.toString('latin1').replace(/\0$/, ''), SOP);
});

test('an error comment is cut to 64 characters of printable ASCII', (t) => {
  const { command } = ours(0xc000, `bad \u00e9\n${'x'.repeat(100)}`);
  const comment = command.get(CommandTag.ErrorComment)?.toString('latin1') ?? '';
  t.is(comment.length, 64);
  t.true(comment.startsWith('bad ??xxx'));
});
