// Attribute values of a received dataset as text, decoded with its Specific Character Set (character-sets.ts), and
// a copy of a Part 10 file that dcmjs can parse whatever character set it declares.

import dcmjs from 'dcmjs';
import { readFileSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { GatewayError, describeError } from '../errors.js';
import {
  DEFAULT_CHARACTER_SET,
  TEXT_VRS,
  characterSetFromBytes,
  decodeText,
  type CharacterSet,
} from './character-sets.js';
import { walkDatasetBuffer, type VisitedElement } from './dataset-walker.js';
import { parsePart10Header } from './part10-header.js';
import { encodingOf } from './transfer-syntaxes.js';

const SPECIFIC_CHARACTER_SET = 0x00080005;
const PIXEL_DATA = 0x7fe00010;
/** Larger values (overlays, private blobs) are not read as attributes: rules and derived objects never need them. */
const MAX_VALUE = 64 * 1024;

export interface DatasetText {
  /** The values of a top-level attribute by tag (GGGGEEEE, upper-case hex); undefined when absent. */
  values(tag: string): readonly string[] | undefined;
  /** The VR the attribute was read with (explicit, or from the dictionary for implicit VR). */
  vr(tag: string): string | undefined;
  /** The Specific Character Set terms (empty when the dataset has none). */
  characterSet: readonly string[];
  /** Text that could not be decoded exactly (unknown terms, escape sequences). Never contains the text itself. */
  warnings: readonly string[];
}

/** Reads every top-level attribute of a Part 10 file (up to Pixel Data) as text. */
export function readDatasetTextFile(path: string): DatasetText {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new GatewayError('DATASET_UNREADABLE', `cannot read ${path}: ${describeError(error)}`);
  }
  return readDatasetText(bytes, path);
}

/** Reads every top-level attribute of Part 10 bytes (up to Pixel Data) as text. Throws DATASET_UNREADABLE. */
export function readDatasetText(part10: Uint8Array, what = 'the instance'): DatasetText {
  const file = Buffer.from(part10.buffer, part10.byteOffset, part10.byteLength);
  const elements = new Map<number, { vr: string; bytes: Buffer }>();
  try {
    const header = parsePart10Header(file, what);
    walkDatasetBuffer(file.subarray(header.datasetOffset), header.transferSyntaxUid, {
      visit: (e: VisitedElement) => {
        if (e.depth !== 0 || e.tag === PIXEL_DATA || e.length > MAX_VALUE) return;
        elements.set(e.tag, { vr: e.vr ?? dictionaryVr(e.tag), bytes: e.value() });
      },
    });
  } catch (error) {
    throw new GatewayError('DATASET_UNREADABLE', `cannot read the attributes of ${what}: ${describeError(error)}`);
  }
  const charsetElement = elements.get(SPECIFIC_CHARACTER_SET);
  const charset: CharacterSet = charsetElement ? characterSetFromBytes(charsetElement.bytes) : DEFAULT_CHARACTER_SET;
  const warnings = [...charset.warnings];
  const cache = new Map<number, string[]>();
  const valuesOf = (tag: number): string[] | undefined => {
    const element = elements.get(tag);
    if (element === undefined) return undefined;
    let values = cache.get(tag);
    if (values === undefined) {
      const decoded = elementValues(element.vr, element.bytes, charset);
      values = decoded.values;
      for (const w of decoded.warnings) if (!warnings.includes(w)) warnings.push(w);
      cache.set(tag, values);
    }
    return values;
  };
  return {
    values: (tag) => valuesOf(parseInt(tag, 16)),
    vr: (tag) => elements.get(parseInt(tag, 16))?.vr,
    characterSet: charset.terms,
    get warnings() {
      return warnings;
    },
  };
}

/** A Person Name value split into its component groups (PS3.5 6.2.1.1), as dcmjs's natural datasets hold it. */
export interface PersonNameGroups {
  Alphabetic?: string;
  Ideographic?: string;
  Phonetic?: string;
}

export function personNameGroups(value: string): PersonNameGroups {
  const [alphabetic = '', ideographic = '', phonetic = ''] = value.split('=');
  const groups: PersonNameGroups = { Alphabetic: alphabetic };
  if (ideographic !== '') groups.Ideographic = ideographic;
  if (phonetic !== '') groups.Phonetic = phonetic;
  return groups;
}

const NUMERIC_READERS: Readonly<Record<string, { size: number; read: (b: Buffer, at: number) => number | bigint }>> = {
  US: { size: 2, read: (b, at) => b.readUInt16LE(at) },
  SS: { size: 2, read: (b, at) => b.readInt16LE(at) },
  UL: { size: 4, read: (b, at) => b.readUInt32LE(at) },
  SL: { size: 4, read: (b, at) => b.readInt32LE(at) },
  FL: { size: 4, read: (b, at) => b.readFloatLE(at) },
  FD: { size: 8, read: (b, at) => b.readDoubleLE(at) },
  SV: { size: 8, read: (b, at) => b.readBigInt64LE(at) },
  UV: { size: 8, read: (b, at) => b.readBigUInt64LE(at) },
};

/** String VRs of the default repertoire only: bytes are ASCII, read as Latin-1 so that nothing is lost. */
const DEFAULT_REPERTOIRE_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'TM', 'UI', 'UR']);

function elementValues(vr: string, bytes: Buffer, charset: CharacterSet): { values: string[]; warnings: string[] } {
  if (TEXT_VRS.has(vr)) return decodeText(bytes, charset, vr);
  if (DEFAULT_REPERTOIRE_VRS.has(vr)) {
    const values = decodeText(bytes, DEFAULT_CHARACTER_SET, vr).values;
    // dcmjs, which read these before, gave DS and IS as numbers: "1.50" and "1.5" stay equal for routing rules.
    if (vr === 'DS' || vr === 'IS')
      return {
        values: values.map((v) => (v !== '' && Number.isFinite(Number(v)) ? String(Number(v)) : v)),
        warnings: [],
      };
    return { values, warnings: [] };
  }
  const numeric = NUMERIC_READERS[vr];
  if (numeric !== undefined) {
    const values: string[] = [];
    for (let at = 0; at + numeric.size <= bytes.length; at += numeric.size)
      values.push(String(numeric.read(bytes, at)));
    return { values, warnings: [] };
  }
  if (vr === 'AT') {
    const values: string[] = [];
    for (let at = 0; at + 4 <= bytes.length; at += 4) {
      values.push(
        `${bytes.readUInt16LE(at).toString(16).padStart(4, '0')}${bytes
          .readUInt16LE(at + 2)
          .toString(16)
          .padStart(4, '0')}`.toUpperCase(),
      );
    }
    return { values, warnings: [] };
  }
  // Binary blobs and sequences: present, but no text to compare.
  return { values: bytes.length === 0 ? [] : [''], warnings: [] };
}

function dictionaryVr(tag: number): string {
  const hex = tag.toString(16).padStart(8, '0').toUpperCase();
  // dcmjs's data dictionary (not in our declaration of the module: reached and checked at run time).
  const dictionary: unknown = Reflect.get(dcmjs.data.DicomMetaDictionary, 'dictionary');
  const entry: unknown =
    typeof dictionary === 'object' && dictionary !== null
      ? Reflect.get(dictionary, `(${hex.slice(0, 4)},${hex.slice(4)})`)
      : undefined;
  const found: unknown = typeof entry === 'object' && entry !== null ? Reflect.get(entry, 'vr') : undefined;
  const vr = typeof found === 'string' ? found : 'UN';
  // Entries such as "US or SS" or "OB or OW": the first is right for the attributes we read as text.
  return vr.slice(0, 2);
}

/**
 * dcmjs refuses a multi-valued Specific Character Set and any term it does not know (and its ignoreErrors mode
 * swallows real damage too). Callers that need dcmjs for structure and pixels, not text, parse this copy instead:
 * every (0008,0005) that dcmjs would refuse is blanked to spaces (the default repertoire), at every depth. Returns
 * the input itself when nothing needs blanking. Text read from the copy is not to be trusted beyond ASCII: read
 * text with readDatasetText().
 */
export function dcmjsReadable(part10: Uint8Array): Uint8Array {
  const file = Buffer.from(part10.buffer, part10.byteOffset, part10.byteLength);
  const blank: Array<{ at: number; length: number }> = [];
  let datasetOffset: number;
  let deflated: boolean;
  let dataset: Buffer;
  try {
    const header = parsePart10Header(file, 'the instance');
    const encoding = encodingOf(header.transferSyntaxUid);
    if (encoding === undefined) return part10;
    datasetOffset = header.datasetOffset;
    deflated = encoding.deflated;
    // Offsets of a deflated dataset are offsets in its inflated bytes: patch those, and deflate them again.
    dataset = deflated ? inflateRawSync(file.subarray(datasetOffset)) : file.subarray(datasetOffset);
    walkDatasetBuffer(dataset, deflated ? EXPLICIT_VR_LITTLE_ENDIAN : header.transferSyntaxUid, {
      descendDefinedItems: true,
      visit: (e) => {
        if (e.tag !== SPECIFIC_CHARACTER_SET || e.length === 0) return;
        if (!dcmjsAccepts(e.value())) blank.push({ at: e.valueOffset, length: e.length });
      },
    });
  } catch {
    return part10; // a damaged file: let the caller's parser name the damage
  }
  if (blank.length === 0) return part10;
  if (deflated) {
    const patched = Buffer.from(dataset);
    for (const { at, length } of blank) patched.fill(0x20, at, at + length);
    return Buffer.concat([file.subarray(0, datasetOffset), deflateRawSync(patched)]);
  }
  const copy = new Uint8Array(part10);
  for (const { at, length } of blank) copy.fill(0x20, datasetOffset + at, datasetOffset + at + length);
  return copy;
}

/** Deflated Explicit VR Little Endian inflates to an Explicit VR Little Endian dataset (PS3.5 A.5). */
const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

/** dcmjs 0.5x's own table of terms (its `encodingMapping`), after its normalisation. */
function dcmjsAccepts(value: Buffer): boolean {
  const terms = value
    .toString('latin1')
    .replace(/\0+$/, '')
    .split('\\')
    .map((t) => t.trim());
  if (terms.length > 1) return false;
  const key = (terms[0] ?? '').replace(/[_ ]/g, '-').toLowerCase();
  return DCMJS_TERMS.has(key);
}

const DCMJS_TERMS = new Set([
  '',
  'iso-ir-6',
  'iso-ir-100',
  'iso-ir-101',
  'iso-ir-109',
  'iso-ir-110',
  'iso-ir-192',
  'iso-2022-ir-6',
  'iso-2022-ir-100',
  'iso-2022-ir-101',
  'iso-2022-ir-109',
  'iso-2022-ir-110',
  'gb18030',
  'gbk',
]);
