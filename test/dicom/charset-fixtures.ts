// Test helper: Part 10 files whose text elements hold exact bytes in a character set dcmjs cannot write (ISO 2022
// escape sequences, Latin-1, KS X 1001). dcmjs writes every string as UTF-8, so these are spliced in raw.

import { walkDatasetBuffer } from '../../src/dicom/dataset-walker.js';
import { parsePart10Header } from '../../src/dicom/part10-header.js';
import { encodingOf } from '../../src/dicom/transfer-syntaxes.js';

export interface RawElement {
  tag: number;
  vr: string;
  bytes: Buffer;
}

/** Replaces (or inserts) top-level elements of a Little Endian Part 10 file with exactly these value bytes. */
export function withRawElements(file: Buffer, elements: readonly RawElement[]): Buffer {
  const header = parsePart10Header(file, 'fixture');
  const encoding = encodingOf(header.transferSyntaxUid);
  if (encoding === undefined || encoding.deflated)
    throw new Error('withRawElements needs an uncompressed-dataset transfer syntax');
  const dataset = file.subarray(header.datasetOffset);
  const spans: Array<{ tag: number; start: number }> = [];
  walkDatasetBuffer(dataset, header.transferSyntaxUid, {
    visit: (e) => {
      if (e.depth === 0) spans.push({ tag: e.tag, start: e.offset });
    },
  });
  // Elements of undefined length (sequences, encapsulated pixels) are not visited: each span ends where the next
  // visited element starts, which keeps them whole.
  const pieces: Array<{ tag: number; bytes: Buffer }> = spans.map((s, i) => ({
    tag: s.tag,
    bytes: dataset.subarray(s.start, spans[i + 1]?.start ?? dataset.length),
  }));
  const replaced = new Set(elements.map((e) => e.tag));
  const kept = pieces.filter((p) => !replaced.has(p.tag));
  const added = elements.map((e) => ({ tag: e.tag, bytes: encodeElement(e, encoding.explicitVr) }));
  const all = [...kept, ...added].sort((a, b) => a.tag - b.tag);
  const before = dataset.subarray(0, spans[0]?.start ?? 0);
  return Buffer.concat([file.subarray(0, header.datasetOffset), before, ...all.map((p) => p.bytes)]);
}

function encodeElement(e: RawElement, explicitVr: boolean): Buffer {
  // Text is padded with a space to an even length (PS3.5 6.2).
  const value = e.bytes.length % 2 === 1 ? Buffer.concat([e.bytes, Buffer.from(' ')]) : e.bytes;
  const tag = Buffer.alloc(4);
  tag.writeUInt16LE(e.tag >>> 16, 0);
  tag.writeUInt16LE(e.tag & 0xffff, 2);
  if (!explicitVr) {
    const length = Buffer.alloc(4);
    length.writeUInt32LE(value.length, 0);
    return Buffer.concat([tag, length, value]);
  }
  const long = ['OB', 'OW', 'SQ', 'UN', 'UT', 'UC', 'UR'].includes(e.vr);
  const vrAndLength = Buffer.alloc(long ? 8 : 4);
  vrAndLength.write(e.vr, 0, 'latin1');
  if (long) vrAndLength.writeUInt32LE(value.length, 4);
  else vrAndLength.writeUInt16LE(value.length, 2);
  return Buffer.concat([tag, vrAndLength, value]);
}

export const SPECIFIC_CHARACTER_SET = 0x00080005;
export const PATIENT_NAME = 0x00100010;

/** Bytes from a string of hex digits (spaces allowed). */
export function hex(digits: string): Buffer {
  return Buffer.from(digits.replace(/\s+/g, ''), 'hex');
}

/** The worked examples of PS3.5 Annexes H, I and K: Specific Character Set, PatientName bytes, and the Unicode. */
export const STANDARD_EXAMPLES = {
  // H.3.1: JIS X 0208 ideographic and phonetic groups, romaji alphabetic.
  japaneseIr87: {
    charset: 'ISO 2022 IR 13\\ISO 2022 IR 87',
    bytes: hex(
      '59616d6164615e5461726f753d 1b2442 3b334544 1b2842 5e 1b2442 42404f3a 1b2842 3d 1b2442 2464245e2440 1b2842 5e 1b2442 243f246d2426 1b2842',
    ),
    text: 'Yamada^Tarou=山田^太郎=やまだ^たろう',
  },
  // H.3.2: half-width katakana (ISO-IR 13 in G1) alphabetic group, and ESC ( J back to JIS X 0201 romaji.
  japaneseKatakana: {
    charset: 'ISO 2022 IR 13\\ISO 2022 IR 87',
    bytes: hex(
      'd4cfc0de5ec0dbb3 3d 1b2442 3b334544 1b284a 5e 1b2442 42404f3a 1b284a 3d 1b2442 2464245e2440 1b284a 5e 1b2442 243f246d2426 1b284a',
    ),
    text: 'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう',
  },
  // I.2: KS X 1001 in G1, designated again after every delimiter.
  korean: {
    charset: '\\ISO 2022 IR 149',
    bytes: hex('486f6e675e47696c646f6e673d 1b242943 fbf3 5e 1b242943 d1ced4d7 3d 1b242943 c8ab 5e 1b242943 b1e6b5bf'),
    text: 'Hong^Gildong=洪^吉洞=홍^길동',
  },
  // K.2: GB 2312 in G1 with code extensions.
  chineseIr58: {
    charset: '\\ISO 2022 IR 58',
    bytes: hex('5a68616e675e5869616f446f6e673d 1b242941 d5c5 5e 1b242941 d0a1b6ab 3d20'),
    text: 'Zhang^XiaoDong=张^小东=',
  },
  // K.1: GB18030 without code extensions.
  chineseGb18030: {
    charset: 'GB18030',
    bytes: hex('57616e675e5869616f446f6e673dcdf55ed0a1b6ab3d'),
    text: 'Wang^XiaoDong=王^小东=',
  },
} as const;
