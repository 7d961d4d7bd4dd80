import { GatewayError } from '../errors.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from './implementation.js';

export interface FileMetaFields {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  sourceAeTitle: string;
}

/**
 * The preamble, `DICM` and File Meta Information group (PS3.10 7.1) that turn a dataset received over
 * the network into a Part 10 file. The dataset itself is then appended byte for byte as received.
 */
export function buildPart10Header(fields: FileMetaFields): Buffer {
  const elements = [
    element(0x0001, 'OB', Buffer.from([0x00, 0x01])),
    element(0x0002, 'UI', padded(fields.sopClassUid, 0x00)),
    element(0x0003, 'UI', padded(fields.sopInstanceUid, 0x00)),
    element(0x0010, 'UI', padded(fields.transferSyntaxUid, 0x00)),
    element(0x0012, 'UI', padded(IMPLEMENTATION_CLASS_UID, 0x00)),
    element(0x0013, 'SH', padded(IMPLEMENTATION_VERSION_NAME, 0x20)),
    element(0x0016, 'AE', padded(fields.sourceAeTitle.trim(), 0x20)),
  ];
  const body = Buffer.concat(elements);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length);
  const preamble = Buffer.alloc(128);
  return Buffer.concat([preamble, Buffer.from('DICM', 'ascii'), element(0x0000, 'UL', groupLength), body]);
}

function padded(value: string, pad: number): Buffer {
  const bytes = Buffer.from(value, 'ascii');
  return bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.from([pad])]);
}

function element(elementNumber: number, vr: 'OB' | 'UI' | 'SH' | 'AE' | 'UL', value: Buffer): Buffer {
  const longForm = vr === 'OB';
  const header = Buffer.alloc(longForm ? 12 : 8);
  header.writeUInt16LE(0x0002, 0);
  header.writeUInt16LE(elementNumber, 2);
  header.write(vr, 4, 'ascii');
  if (longForm) header.writeUInt32LE(value.length, 8);
  else header.writeUInt16LE(value.length, 6);
  return Buffer.concat([header, value]);
}

/** Where the dataset of a Part 10 file starts, and in which transfer syntax it is encoded. */
export function parsePart10Header(file: Buffer, source = 'file'): { transferSyntaxUid: string; datasetOffset: number } {
  if (file.length < 144 || file.toString('latin1', 128, 132) !== 'DICM') {
    throw new GatewayError('NOT_PART10', `${source} is not a DICOM Part 10 file (no DICM prefix)`);
  }
  // (0002,0000) UL group length comes first (PS3.10 7.1), explicit VR little endian.
  if (file.readUInt16LE(132) !== 0x0002 || file.readUInt16LE(134) !== 0x0000) {
    throw new GatewayError('NOT_PART10', `${source}: file meta information does not start with its group length`);
  }
  const datasetOffset = 144 + file.readUInt32LE(140);
  let pos = 144;
  let transferSyntaxUid: string | undefined;
  while (pos + 8 <= datasetOffset && pos + 8 <= file.length) {
    const element = file.readUInt16LE(pos + 2);
    const vr = file.toString('latin1', pos + 4, pos + 6);
    const long = vr === 'OB' || vr === 'UN' || vr === 'OW' || vr === 'SQ' || vr === 'UT';
    const length = long ? file.readUInt32LE(pos + 8) : file.readUInt16LE(pos + 6);
    const valueStart = pos + (long ? 12 : 8);
    if (element === 0x0010)
      transferSyntaxUid = file.toString('latin1', valueStart, valueStart + length).replace(/[\0 ]+$/, '');
    pos = valueStart + length;
  }
  if (transferSyntaxUid === undefined)
    throw new GatewayError('NOT_PART10', `${source}: file meta information has no Transfer Syntax UID`);
  return { transferSyntaxUid, datasetOffset };
}
