import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { GatewayError, describeError } from '../errors.js';
import { encodingOf } from './transfer-syntaxes.js';
import { DEFAULT_CHARACTER_SET, characterSetFromBytes, decodeTextValue, type CharacterSet } from './character-sets.js';

/** The attributes we index an instance by. Everything else stays in the file, read when a stage needs it. */
export interface KeyAttributes {
  sopClassUid?: string;
  sopInstanceUid?: string;
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  modality?: string;
  bodyPartExamined?: string;
  viewPosition?: string;
  accessionNumber?: string;
  studyDate?: string;
  instanceNumber?: string;
}

export interface WalkResult {
  attributes: KeyAttributes;
  hasPixelData: boolean;
  elementCount: number;
  /** The dataset's Specific Character Set (0008,0005) terms; empty when it has none. */
  characterSet: string[];
  /** Why some text could not be decoded exactly (unknown character set terms, escape sequences); never the text. */
  textWarnings: string[];
}

/** One element with a defined length, as the walker passes it to a visitor. */
export interface VisitedElement {
  tag: number;
  /** The explicit VR, or undefined in an implicit VR dataset. */
  vr: string | undefined;
  depth: number;
  /** Offset of the element header in the dataset. */
  offset: number;
  valueOffset: number;
  length: number;
  value(): Buffer;
}

export interface WalkOptions {
  /** Called for every element with a defined length (at every depth that is walked). */
  visit?: (element: VisitedElement) => void;
  /**
   * Also walk the elements inside sequence items that have a defined length (the store only checks that they fit:
   * their content is the sender's business). For readers that must see nested elements too.
   */
  descendDefinedItems?: boolean;
}

const WANTED: ReadonlyMap<number, keyof KeyAttributes> = new Map([
  [0x00080016, 'sopClassUid'],
  [0x00080018, 'sopInstanceUid'],
  [0x00080020, 'studyDate'],
  [0x00080050, 'accessionNumber'],
  [0x00080060, 'modality'],
  [0x00180015, 'bodyPartExamined'],
  [0x00185101, 'viewPosition'],
  [0x0020000d, 'studyInstanceUid'],
  [0x0020000e, 'seriesInstanceUid'],
  [0x00200013, 'instanceNumber'],
]);

const PIXEL_DATA = 0x7fe00010;
const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const UNDEFINED_LENGTH = 0xffffffff;
// Explicit VRs whose length is a 4-byte field after two reserved bytes (PS3.5 7.1.2).
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const MAX_VALUE_READ = 1024; // the attributes we read are short strings; longer values are skipped

export class MalformedDatasetError extends GatewayError {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super('DATASET_MALFORMED', message);
  }
}

interface ByteSource {
  readonly length: number;
  bytes(offset: number, count: number): Buffer;
}

class BufferSource implements ByteSource {
  constructor(private readonly buffer: Buffer) {}
  get length(): number {
    return this.buffer.length;
  }
  bytes(offset: number, count: number): Buffer {
    return this.buffer.subarray(offset, offset + count);
  }
}

// Reads a file through a small window: walking an 8 MB image touches a few kilobytes of headers and
// jumps over the pixel data, so the file is never read whole.
class FileSource implements ByteSource {
  private windowStart = 0;
  private window = Buffer.alloc(0);
  readonly length: number;
  constructor(
    private readonly fd: number,
    private readonly base: number,
  ) {
    this.length = Math.max(0, fstatSync(fd).size - base);
  }
  bytes(offset: number, count: number): Buffer {
    if (offset < this.windowStart || offset + count > this.windowStart + this.window.length) {
      const size = Math.max(count, 64 * 1024);
      const buffer = Buffer.alloc(Math.min(size, Math.max(0, this.length - offset)));
      const read = readSync(this.fd, buffer, 0, buffer.length, this.base + offset);
      this.window = buffer.subarray(0, read);
      this.windowStart = offset;
    }
    const start = offset - this.windowStart;
    return this.window.subarray(start, start + count);
  }
}

/**
 * Walks every element of a stored dataset (skipping values, descending into sequences and pixel data
 * fragments) so that a truncated or garbled dataset is found before we acknowledge it, and collects the
 * key attributes on the way.
 */
export function walkStoredDataset(
  filePath: string,
  datasetOffset: number,
  transferSyntaxUid: string,
  options: WalkOptions = {},
): WalkResult {
  const encoding = encodingOf(transferSyntaxUid);
  if (encoding === undefined) {
    throw new MalformedDatasetError(`unreadable transfer syntax ${transferSyntaxUid}`, 0);
  }
  const fd = openSync(filePath, 'r');
  try {
    let source: ByteSource = new FileSource(fd, datasetOffset);
    if (encoding.deflated) {
      const compressed = source.bytes(0, source.length);
      try {
        source = new BufferSource(inflateRawSync(compressed));
      } catch (error) {
        throw new MalformedDatasetError(`garbled: deflated dataset does not inflate (${describeError(error)})`, 0);
      }
    }
    return walkBytes(source, encoding.explicitVr, options);
  } finally {
    closeSync(fd);
  }
}

/** Walks a dataset held in memory (no Part 10 header), for callers that already have the bytes. */
export function walkDatasetBuffer(dataset: Buffer, transferSyntaxUid: string, options: WalkOptions = {}): WalkResult {
  const encoding = encodingOf(transferSyntaxUid);
  if (encoding === undefined) {
    throw new MalformedDatasetError(`unreadable transfer syntax ${transferSyntaxUid}`, 0);
  }
  const bytes = encoding.deflated ? inflateRawSync(dataset) : dataset;
  return walkBytes(new BufferSource(bytes), encoding.explicitVr, options);
}

function walkBytes(source: ByteSource, explicitVr: boolean, options: WalkOptions): WalkResult {
  const result: WalkResult = {
    attributes: {},
    hasPixelData: false,
    elementCount: 0,
    characterSet: [],
    textWarnings: [],
  };
  const walker = new Walker(source, explicitVr, result, options);
  walker.elements(0, source.length, 0, false);
  return result;
}

const SPECIFIC_CHARACTER_SET = 0x00080005;

class Walker {
  // Tags ascend, so (0008,0005) comes before every text attribute we keep.
  private charset: CharacterSet = DEFAULT_CHARACTER_SET;

  constructor(
    private readonly source: ByteSource,
    private readonly explicitVr: boolean,
    private readonly result: WalkResult,
    private readonly options: WalkOptions,
  ) {}

  /** Walks elements from `offset`; returns the offset after them (after the item delimiter when `inItem`). */
  elements(offset: number, end: number, depth: number, inItem: boolean): number {
    let pos = offset;
    while (pos < end) {
      const header = this.need(pos, 8, end, 'element header');
      const tag = ((header.readUInt16LE(0) << 16) | header.readUInt16LE(2)) >>> 0;
      if (tag === ITEM_DELIMITER) {
        if (!inItem) throw new MalformedDatasetError(`garbled: item delimiter outside an item at offset ${pos}`, pos);
        return pos + 8;
      }
      if (tag === ITEM || tag === SEQUENCE_DELIMITER) {
        throw new MalformedDatasetError(`garbled: unexpected item tag at offset ${pos}`, pos);
      }
      const { vr, length, headerLength } = this.elementHeader(pos, tag, header, end);
      const valueStart = pos + headerLength;
      if (depth === 0) this.result.elementCount += 1;
      if (tag === PIXEL_DATA && depth === 0) this.result.hasPixelData = true;

      if (length === UNDEFINED_LENGTH) {
        if (tag === PIXEL_DATA) pos = this.fragments(valueStart, end);
        else if (vr === 'SQ' || vr === 'UN' || vr === undefined)
          pos = this.sequence(valueStart, end, depth, vr === 'UN');
        else
          throw new MalformedDatasetError(`garbled: (${hexTag(tag)}) ${vr} has undefined length at offset ${pos}`, pos);
        continue;
      }
      if (valueStart + length > end) {
        throw new MalformedDatasetError(
          `truncated: (${hexTag(tag)}) at offset ${pos} needs ${length} bytes, ${end - valueStart} remain`,
          pos,
        );
      }
      if (depth === 0 && tag === SPECIFIC_CHARACTER_SET && length <= MAX_VALUE_READ) {
        this.charset = characterSetFromBytes(this.source.bytes(valueStart, length));
        this.result.characterSet = [...this.charset.terms];
        this.result.textWarnings.push(...this.charset.warnings);
      }
      const key = depth === 0 ? WANTED.get(tag) : undefined;
      if (key !== undefined && length <= MAX_VALUE_READ) {
        // Only Accession Number (SH) may hold more than the default repertoire; the rest are CS, UI, DA and IS.
        this.result.attributes[key] = decodeTextValue(this.source.bytes(valueStart, length), this.charset, vr ?? 'SH');
      }
      if (this.options.visit) {
        const source = this.source;
        this.options.visit({
          tag,
          vr,
          depth,
          offset: pos,
          valueOffset: valueStart,
          length,
          value: () => Buffer.from(source.bytes(valueStart, length)),
        });
      }
      if (vr === 'SQ' && this.options.descendDefinedItems === true && length > 0) {
        this.sequence(valueStart, valueStart + length, depth, false);
      }
      pos = valueStart + length;
    }
    if (inItem) throw new MalformedDatasetError('truncated: an item has no delimiter', pos);
    return pos;
  }

  private elementHeader(
    pos: number,
    tag: number,
    header: Buffer,
    end: number,
  ): { vr: string | undefined; length: number; headerLength: number } {
    if (!this.explicitVr) return { vr: undefined, length: header.readUInt32LE(4), headerLength: 8 };
    const vr = header.toString('latin1', 4, 6);
    if (!/^[A-Z]{2}$/.test(vr)) {
      throw new MalformedDatasetError(`garbled: (${hexTag(tag)}) at offset ${pos} has no valid VR`, pos);
    }
    if (LONG_VRS.has(vr)) {
      const long = this.need(pos, 12, end, 'element header');
      return { vr, length: long.readUInt32LE(8), headerLength: 12 };
    }
    return { vr, length: header.readUInt16LE(6), headerLength: 8 };
  }

  /**
   * Walks the items of a sequence from `offset`. With undefined length it ends at the sequence delimiter; a sequence
   * of defined length (only walked with descendDefinedItems) ends at `end`.
   */
  private sequence(offset: number, end: number, depth: number, implicitContent: boolean): number {
    let pos = offset;
    const inner = implicitContent && this.explicitVr ? new Walker(this.source, false, this.result, this.options) : this;
    for (;;) {
      if (this.options.descendDefinedItems === true && pos === end) return pos;
      const header = this.need(pos, 8, end, 'sequence item');
      const tag = ((header.readUInt16LE(0) << 16) | header.readUInt16LE(2)) >>> 0;
      const length = header.readUInt32LE(4);
      if (tag === SEQUENCE_DELIMITER) return pos + 8;
      if (tag !== ITEM) throw new MalformedDatasetError(`garbled: expected a sequence item at offset ${pos}`, pos);
      if (length === UNDEFINED_LENGTH) {
        pos = inner.elements(pos + 8, end, depth + 1, true);
      } else {
        if (pos + 8 + length > end) throw new MalformedDatasetError(`truncated: sequence item at offset ${pos}`, pos);
        if (this.options.descendDefinedItems === true) inner.elements(pos + 8, pos + 8 + length, depth + 1, false);
        pos += 8 + length;
      }
    }
  }

  private fragments(offset: number, end: number): number {
    let pos = offset;
    for (;;) {
      const header = this.need(pos, 8, end, 'pixel data fragment');
      const tag = ((header.readUInt16LE(0) << 16) | header.readUInt16LE(2)) >>> 0;
      const length = header.readUInt32LE(4);
      if (tag === SEQUENCE_DELIMITER) return pos + 8;
      if (tag !== ITEM || length === UNDEFINED_LENGTH) {
        throw new MalformedDatasetError(`garbled: pixel data fragment expected at offset ${pos}`, pos);
      }
      if (pos + 8 + length > end) {
        throw new MalformedDatasetError(`truncated: pixel data fragment at offset ${pos}`, pos);
      }
      pos += 8 + length;
    }
  }

  private need(pos: number, count: number, end: number, what: string): Buffer {
    if (pos + count > end) {
      throw new MalformedDatasetError(`truncated: ${what} at offset ${pos} is cut off`, pos);
    }
    return this.source.bytes(pos, count);
  }
}

function hexTag(tag: number): string {
  const hex = tag.toString(16).padStart(8, '0').toUpperCase();
  return `${hex.slice(0, 4)},${hex.slice(4)}`;
}
