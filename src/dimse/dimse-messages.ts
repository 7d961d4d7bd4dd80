/**
 * DIMSE command sets (PS3.7 9.3, 10.3, E.1: group 0000, always Implicit VR Little Endian) as our SCP and SCU read
 * and write them, and their framing into P-DATA-TF PDUs (PS3.8 9.3.5) within the peer's maximum PDU length.
 */

export const CommandField = {
  CStoreRq: 0x0001,
  CStoreRsp: 0x8001,
  CGetRq: 0x0010,
  CFindRq: 0x0020,
  CMoveRq: 0x0021,
  CEchoRq: 0x0030,
  CEchoRsp: 0x8030,
  /** Storage commitment (PS3.4 J): the report of the result, sent by the commitment SCP. */
  NEventReportRq: 0x0100,
  NEventReportRsp: 0x8100,
  /** Storage commitment (PS3.4 J): the request, sent by us as its SCU. */
  NActionRq: 0x0130,
  NActionRsp: 0x8130,
  CCancelRq: 0x0fff,
} as const;

export const CommandElement = {
  AffectedSopClassUid: 0x0002,
  RequestedSopClassUid: 0x0003,
  CommandField: 0x0100,
  MessageId: 0x0110,
  MessageIdBeingRespondedTo: 0x0120,
  Priority: 0x0700,
  CommandDataSetType: 0x0800,
  Status: 0x0900,
  ErrorComment: 0x0902,
  AffectedSopInstanceUid: 0x1000,
  RequestedSopInstanceUid: 0x1001,
  EventTypeId: 0x1002,
  ActionTypeId: 0x1008,
} as const;

/** (0000,0800) value meaning "no data set follows" (PS3.7 E.1). */
export const NO_DATA_SET = 0x0101;

/** DIMSE statuses we send that are not C-STORE specific (PS3.7 C). */
export const DimseStatus = {
  Success: 0x0000,
  /** Refused: SOP Class not supported. */
  SopClassNotSupported: 0x0122,
  /** No such event type: an N-EVENT-REPORT whose Event Type ID storage commitment does not define. */
  NoSuchEventType: 0x0113,
  /** Unrecognized operation: a command this SCP does not perform. */
  UnrecognizedOperation: 0x0211,
  CannotUnderstand: 0xc000,
} as const;

export interface Command {
  elements: Map<number, Buffer>;
  commandField: number | undefined;
  messageId: number | undefined;
  messageIdBeingRespondedTo: number | undefined;
  status: number | undefined;
  /** Anything but 0x0101 (a missing element included) announces a data set. */
  hasDataset: boolean;
  affectedSopClassUid: string | undefined;
  affectedSopInstanceUid: string | undefined;
  errorComment: string | undefined;
  /** N-EVENT-REPORT's Event Type ID and N-ACTION's Action Type ID (PS3.7 10.1.1, 10.1.4). */
  eventTypeId: number | undefined;
  actionTypeId: number | undefined;
}

/** Reads a whole command set; undefined when it is not a well-formed run of group 0000 elements. */
export function parseCommand(bytes: Buffer): Command | undefined {
  const elements = new Map<number, Buffer>();
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 8 > bytes.length) return undefined;
    const group = bytes.readUInt16LE(offset);
    const element = bytes.readUInt16LE(offset + 2);
    const length = bytes.readUInt32LE(offset + 4);
    const value = offset + 8;
    if (group !== 0x0000 || length > bytes.length - value) return undefined;
    elements.set(element, bytes.subarray(value, value + length));
    offset = value + length;
  }
  const us = (element: number): number | undefined => {
    const v = elements.get(element);
    return v !== undefined && v.length === 2 ? v.readUInt16LE(0) : undefined;
  };
  const str = (element: number): string | undefined => {
    const v = elements.get(element);
    return v === undefined ? undefined : v.toString('latin1').replace(/[\0 ]+$/, '');
  };
  if (elements.has(CommandElement.CommandField) && us(CommandElement.CommandField) === undefined) return undefined;
  return {
    elements,
    commandField: us(CommandElement.CommandField),
    messageId: us(CommandElement.MessageId),
    messageIdBeingRespondedTo: us(CommandElement.MessageIdBeingRespondedTo),
    status: us(CommandElement.Status),
    hasDataset: us(CommandElement.CommandDataSetType) !== NO_DATA_SET,
    affectedSopClassUid: str(CommandElement.AffectedSopClassUid) ?? str(CommandElement.RequestedSopClassUid),
    affectedSopInstanceUid: str(CommandElement.AffectedSopInstanceUid) ?? str(CommandElement.RequestedSopInstanceUid),
    errorComment: str(CommandElement.ErrorComment),
    eventTypeId: us(CommandElement.EventTypeId),
    actionTypeId: us(CommandElement.ActionTypeId),
  };
}

export type CommandValue = { us: number } | { ui: string } | { lo: string };

/** Encodes a command set: elements in ascending order, (0000,0000) group length first. */
export function encodeCommand(values: ReadonlyArray<readonly [number, CommandValue]>): Buffer {
  const sorted = [...values].sort((a, b) => a[0] - b[0]);
  const parts = sorted.map(([number, value]) => element(number, encodeValue(value)));
  const bodyLength = parts.reduce((sum, p) => sum + p.length, 0);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(bodyLength, 0);
  return Buffer.concat([element(0x0000, groupLength), ...parts]);
}

function encodeValue(value: CommandValue): Buffer {
  if ('us' in value) {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(value.us & 0xffff, 0);
    return b;
  }
  if ('ui' in value) return padded(Buffer.from(value.ui, 'latin1'), 0x00);
  // LO: at most 64 characters of printable ASCII (peer text never reaches here unfiltered).
  return padded(Buffer.from(value.lo.replace(/[^\x20-\x7e]/g, '?').slice(0, 64), 'latin1'), 0x20);
}

function padded(raw: Buffer, pad: number): Buffer {
  return raw.length % 2 === 0 ? raw : Buffer.concat([raw, Buffer.from([pad])]);
}

function element(number: number, value: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0x0000, 0);
  head.writeUInt16LE(number, 2);
  head.writeUInt32LE(value.length, 4);
  return Buffer.concat([head, value]);
}

/** PDU header (6) plus one PDV item header (6). */
const FRAMING = 12;

/**
 * Frames a command or data set as P-DATA-TF PDUs of one PDV each, none longer than `maxPduLength` (the peer's;
 * 0 means no limit). Fragments are kept even (PS3.5 7.5; DCMTK aborts on odd ones). Returns views into
 * `bytes` behind fresh headers, so a large data set is not copied.
 */
export function framePdvs(contextId: number, isCommand: boolean, bytes: Buffer, maxPduLength: number): Buffer[][] {
  const limit = maxPduLength === 0 ? 1024 * 1024 : Math.max(2, (maxPduLength - 6 - 6) & ~1);
  const pdus: Buffer[][] = [];
  let offset = 0;
  do {
    const take = Math.min(limit, bytes.length - offset);
    const last = offset + take >= bytes.length;
    const head = Buffer.alloc(FRAMING);
    head.writeUInt8(0x04, 0);
    head.writeUInt32BE(6 + take, 2);
    head.writeUInt32BE(2 + take, 6);
    head.writeUInt8(contextId, 10);
    head.writeUInt8((isCommand ? 0x01 : 0x00) | (last ? 0x02 : 0x00), 11);
    pdus.push([head, bytes.subarray(offset, offset + take)]);
    offset += take;
  } while (offset < bytes.length);
  return pdus;
}

export interface ResponseFields {
  contextId: number;
  /** The request's command field; the response's is this with bit 15 set. */
  requestCommandField: number;
  messageIdBeingRespondedTo: number;
  status: number;
  affectedSopClassUid?: string;
  affectedSopInstanceUid?: string;
  errorComment?: string;
  /** Further elements a response of this kind carries (an N-EVENT-REPORT-RSP's Event Type ID). */
  extra?: ReadonlyArray<readonly [number, CommandValue]>;
}

/** A response without a data set, as whole P-DATA-TF PDUs. */
export function encodeResponse(fields: ResponseFields, maxPduLength: number): Buffer[] {
  const values: Array<[number, CommandValue]> = [
    [CommandElement.CommandField, { us: (fields.requestCommandField | 0x8000) & 0xffff }],
    [CommandElement.MessageIdBeingRespondedTo, { us: fields.messageIdBeingRespondedTo }],
    [CommandElement.CommandDataSetType, { us: NO_DATA_SET }],
    [CommandElement.Status, { us: fields.status }],
  ];
  if (fields.affectedSopClassUid !== undefined)
    values.push([CommandElement.AffectedSopClassUid, { ui: fields.affectedSopClassUid }]);
  if (fields.affectedSopInstanceUid !== undefined)
    values.push([CommandElement.AffectedSopInstanceUid, { ui: fields.affectedSopInstanceUid }]);
  if (fields.errorComment !== undefined && fields.errorComment !== '')
    values.push([CommandElement.ErrorComment, { lo: fields.errorComment }]);
  for (const [number, value] of fields.extra ?? []) values.push([number, value]);
  return framePdvs(fields.contextId, true, encodeCommand(values), maxPduLength).map((parts) => Buffer.concat(parts));
}
