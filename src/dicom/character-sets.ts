// Text values of received datasets, decoded per their Specific Character Set (0008,0005): every defined term of
// PS3.3 C.12.1.1.2, single-byte and multi-byte, with and without ISO 2022 code extensions (PS3.5 6.1.2.5).
//
// Why our own: dcmjs refuses a multi-valued Specific Character Set (every Japanese and Korean image with code
// extensions) and, told to ignore errors, decodes the whole dataset with the first term only. Text never decides
// whether an image can be processed, so nothing here throws: an unknown term or escape sequence decodes as the
// default repertoire with Latin-1 for the high half, and is reported back as a warning for the caller to log.

import { TextDecoder } from 'node:util';

/** One graphic character set that an escape sequence (or the initial state) can designate. */
type GraphicSet =
  | { kind: 'ascii' }
  /** JIS X 0201 Romaji (ISO-IR 14): ASCII but for yen and overline, read as ASCII like other toolkits do. */
  | { kind: 'romaji' }
  /** JIS X 0208 (ISO-IR 87) or JIS X 0212 (ISO-IR 159), two GL bytes per character, as G0. */
  | { kind: 'jis'; plane: 'x0208' | 'x0212' }
  /** A 94- or 96-character single-byte set in GR (G1), decoded by a WHATWG decoder. */
  | { kind: 'single'; decoder: string }
  /** JIS X 0201 Katakana (ISO-IR 13) in GR. */
  | { kind: 'katakana' }
  /** KS X 1001 (ISO-IR 149) or GB 2312 (ISO-IR 58), two GR bytes per character, as G1. */
  | { kind: 'double'; decoder: string };

interface TermInfo {
  /** What the term designates before any escape sequence, when it is value 1. */
  g0: GraphicSet;
  g1: GraphicSet | undefined;
}

const ASCII: GraphicSet = { kind: 'ascii' };

function single(decoder: string): TermInfo {
  return { g0: ASCII, g1: { kind: 'single', decoder } };
}

// Keys are terms with spaces, underscores and hyphens removed and upper-cased: "ISO_IR 100", "ISO 2022 IR 100"
// and the sloppy "ISO-IR 100" all reach the same entry (the two forms differ only in whether code extensions are
// allowed, and honouring an escape sequence a sender used without declaring the extension does no harm).
const TERMS: ReadonlyMap<string, TermInfo> = new Map<string, TermInfo>([
  ['', { g0: ASCII, g1: undefined }],
  ['ISOIR6', { g0: ASCII, g1: undefined }],
  ['ISOIR100', { g0: ASCII, g1: { kind: 'single', decoder: 'latin1-exact' } }],
  ['ISOIR101', single('iso-8859-2')],
  ['ISOIR109', single('iso-8859-3')],
  ['ISOIR110', single('iso-8859-4')],
  ['ISOIR144', single('iso-8859-5')],
  ['ISOIR127', single('iso-8859-6')],
  ['ISOIR126', single('iso-8859-7')],
  ['ISOIR138', single('iso-8859-8')],
  ['ISOIR148', single('iso-8859-9')],
  ['ISOIR203', single('iso-8859-15')],
  // TIS 620-2533; WHATWG's windows-874 is its superset (it adds characters only in 0x80-0x9F).
  ['ISOIR166', single('windows-874')],
  ['ISOIR13', { g0: { kind: 'romaji' }, g1: { kind: 'katakana' } }],
  // Multi-byte sets are not allowed as value 1 with code extensions except in the Korean and Chinese forms; a
  // sender that puts one first anyway still starts in ASCII, so its Latin names stay readable.
  ['ISOIR87', { g0: ASCII, g1: undefined }],
  ['ISOIR159', { g0: ASCII, g1: undefined }],
  ['ISOIR149', { g0: ASCII, g1: { kind: 'double', decoder: 'euc-kr' } }],
  ['ISOIR58', { g0: ASCII, g1: { kind: 'double', decoder: 'gbk' } }],
]);

/** Sets without code extensions whose bytes are decoded whole by one WHATWG decoder. */
const WHOLE_VALUE: ReadonlyMap<string, string> = new Map([
  ['ISOIR192', 'utf-8'],
  ['GB18030', 'gb18030'],
  ['GBK', 'gbk'],
]);

/** Final bytes of the escape sequences PS3.3 Table C.12-3/C.12-4 lists, after ESC and the intermediate bytes. */
const ESCAPES: ReadonlyMap<string, { g: 0 | 1; set: GraphicSet }> = new Map<string, { g: 0 | 1; set: GraphicSet }>([
  ['(B', { g: 0, set: ASCII }],
  ['(J', { g: 0, set: { kind: 'romaji' } }],
  ['$B', { g: 0, set: { kind: 'jis', plane: 'x0208' } }],
  ['$@', { g: 0, set: { kind: 'jis', plane: 'x0208' } }], // JIS C 6226-1978, which X 0208 supersedes
  ['$(B', { g: 0, set: { kind: 'jis', plane: 'x0208' } }],
  ['$(D', { g: 0, set: { kind: 'jis', plane: 'x0212' } }],
  [')I', { g: 1, set: { kind: 'katakana' } }],
  ['-A', { g: 1, set: { kind: 'single', decoder: 'latin1-exact' } }],
  ['-B', { g: 1, set: { kind: 'single', decoder: 'iso-8859-2' } }],
  ['-C', { g: 1, set: { kind: 'single', decoder: 'iso-8859-3' } }],
  ['-D', { g: 1, set: { kind: 'single', decoder: 'iso-8859-4' } }],
  ['-L', { g: 1, set: { kind: 'single', decoder: 'iso-8859-5' } }],
  ['-G', { g: 1, set: { kind: 'single', decoder: 'iso-8859-6' } }],
  ['-F', { g: 1, set: { kind: 'single', decoder: 'iso-8859-7' } }],
  ['-H', { g: 1, set: { kind: 'single', decoder: 'iso-8859-8' } }],
  ['-M', { g: 1, set: { kind: 'single', decoder: 'iso-8859-9' } }],
  ['-b', { g: 1, set: { kind: 'single', decoder: 'iso-8859-15' } }],
  ['-T', { g: 1, set: { kind: 'single', decoder: 'windows-874' } }],
  ['$)C', { g: 1, set: { kind: 'double', decoder: 'euc-kr' } }],
  ['$)A', { g: 1, set: { kind: 'double', decoder: 'gbk' } }],
]);

/** The Specific Character Set of a dataset, ready to decode its text values. */
export interface CharacterSet {
  /** The terms as received (for messages). */
  readonly terms: readonly string[];
  /** Set when value 1 is UTF-8, GB18030 or GBK: no code extensions, one decoder for the whole value. */
  readonly whole: string | undefined;
  readonly initial: TermInfo;
  /** Terms we do not know, already reported; decoding goes on as ASCII with Latin-1 for the high half. */
  readonly warnings: readonly string[];
}

/** Value Representations whose values are text in the dataset's character set (PS3.5 6.1.2.3). */
export const TEXT_VRS: ReadonlySet<string> = new Set(['SH', 'LO', 'ST', 'LT', 'UT', 'UC', 'PN']);
/** Text VRs whose backslash is a character, not a value delimiter. */
const SINGLE_VALUED_VRS: ReadonlySet<string> = new Set(['ST', 'LT', 'UT', 'UR']);

/**
 * Every Specific Character Set term we decode, as lookup keys (see characterSetKey); the conformance statement's
 * table is checked against this list.
 */
export function knownCharacterSetKeys(): string[] {
  return [...TERMS.keys(), ...WHOLE_VALUE.keys()].filter((key) => key !== '');
}

/** The lookup key of a defined term: "ISO_IR 100" and "ISO 2022 IR 100" share one. */
export function characterSetKey(term: string): string {
  return normalizeTerm(term);
}

function normalizeTerm(term: string): string {
  return term
    .trim()
    .toUpperCase()
    .replace(/[\s_-]+/g, '')
    .replace(/^ISO2022IR/, 'ISOIR');
}

/** The default repertoire (no Specific Character Set, or an empty one). */
export const DEFAULT_CHARACTER_SET: CharacterSet = characterSetOf([]);

/** Reads the values of Specific Character Set (0008,0005). Never throws: unknown terms become warnings. */
export function characterSetOf(terms: readonly string[]): CharacterSet {
  const warnings: string[] = [];
  const first = normalizeTerm(terms[0] ?? '');
  const whole = WHOLE_VALUE.get(first);
  let initial = TERMS.get(first);
  if (initial === undefined) {
    initial = { g0: ASCII, g1: { kind: 'single', decoder: 'latin1-exact' } };
    if (whole === undefined)
      warnings.push(`unknown Specific Character Set term "${terms[0] ?? ''}": text read as Latin-1`);
  }
  for (const term of terms.slice(1)) {
    const key = normalizeTerm(term);
    if (!TERMS.has(key) && !WHOLE_VALUE.has(key))
      warnings.push(`unknown Specific Character Set term "${term}": its escape sequences are skipped`);
    else if (whole !== undefined && key !== '')
      warnings.push(`"${term}" cannot extend ${terms[0] ?? ''} (no code extensions allowed with it): ignored`);
  }
  return { terms: terms.map((t) => t.trim()), whole, initial, warnings };
}

/** Parses the raw bytes of a Specific Character Set element (CS: default repertoire, backslash-separated). */
export function characterSetFromBytes(bytes: Uint8Array): CharacterSet {
  return characterSetOf(Buffer.from(bytes).toString('latin1').replace(/\0+$/, '').split('\\'));
}

const decoders = new Map<string, TextDecoder>();
function decoder(name: string): TextDecoder {
  let d = decoders.get(name);
  if (d === undefined) {
    d = new TextDecoder(name);
    decoders.set(name, d);
  }
  return d;
}

export interface DecodedText {
  values: string[];
  /** Escape sequences or bytes that could not be read (never the text itself: it may be a patient's name). */
  warnings: string[];
}

/**
 * Decodes one text element: splits it into values (backslash only where it is a delimiter: not inside a two-byte
 * JIS character, not in ST/LT/UT) and decodes each, switching sets at escape sequences. Values are trimmed of
 * padding (leading and trailing spaces; trailing only for the free-text VRs).
 */
export function decodeText(bytes: Uint8Array, charset: CharacterSet, vr: string): DecodedText {
  const warnings: string[] = [];
  const multi = !SINGLE_VALUED_VRS.has(vr);
  let values: string[];
  if (charset.whole !== undefined) {
    // UTF-8 never has 0x5C inside a character; GBK and GB18030 can, so split after decoding.
    const text = decoder(charset.whole).decode(bytes);
    values = multi ? text.split('\\') : [text];
  } else {
    values = new Iso2022Decoder(charset.initial, vr === 'PN', warnings).decode(bytes, multi);
  }
  const trimmed = values.map((v) => {
    const noNul = v.replace(/\0+$/, '');
    return multi ? noNul.trim() : noNul.trimEnd();
  });
  return { values: trimmed, warnings };
}

/** Decodes one text value to a single string (multiple values joined by backslash, as DICOM shows them). */
export function decodeTextValue(bytes: Uint8Array, charset: CharacterSet, vr: string): string {
  return decodeText(bytes, charset, vr).values.join('\\');
}

const ESC = 0x1b;
const BACKSLASH = 0x5c;
// Delimiters that return to the initial sets (PS3.5 6.1.2.5.3): CR LF FF TAB for every text VR, and the
// component and group delimiters of a Person Name.
const LINE_DELIMITERS = new Set([0x0d, 0x0a, 0x0c, 0x09]);
const PN_DELIMITERS = new Set([0x5e, 0x3d]);

class Iso2022Decoder {
  private g0: GraphicSet;
  private g1: GraphicSet | undefined;
  private out = '';
  private run: number[] = [];
  private runSet: GraphicSet | undefined;

  constructor(
    private readonly initial: TermInfo,
    private readonly personName: boolean,
    private readonly warnings: string[],
  ) {
    this.g0 = initial.g0;
    this.g1 = initial.g1;
  }

  decode(bytes: Uint8Array, multi: boolean): string[] {
    const values: string[] = [];
    let i = 0;
    while (i < bytes.length) {
      const b = bytes[i] ?? 0;
      if (b === ESC) {
        i = this.escape(bytes, i);
        continue;
      }
      if (b < 0x80) {
        if (this.g0.kind === 'jis' && b > 0x20 && b < 0x7f) {
          // Two GL bytes make one character; a lone last byte is a damaged value.
          const next = bytes[i + 1];
          if (next === undefined || next <= 0x20 || next >= 0x7f) {
            this.emit(ASCII, b);
            i += 1;
            continue;
          }
          this.emit(this.g0, b, next);
          i += 2;
          continue;
        }
        const delimiter =
          (multi && b === BACKSLASH) || LINE_DELIMITERS.has(b) || (this.personName && PN_DELIMITERS.has(b));
        if (delimiter) this.reset();
        if (multi && b === BACKSLASH) {
          values.push(this.take());
          i += 1;
          continue;
        }
        this.emit(this.g0.kind === 'jis' ? ASCII : this.g0, b);
        i += 1;
        continue;
      }
      // High half: the G1 set. Two-byte sets take their pair together.
      const g1 = this.g1;
      if (g1?.kind === 'double') {
        const next = bytes[i + 1];
        if (b >= 0xa1 && b <= 0xfe && next !== undefined && next >= 0xa1 && next <= 0xfe) {
          this.emit(g1, b, next);
          i += 2;
          continue;
        }
      }
      this.emit(g1 === undefined || g1.kind === 'double' ? { kind: 'single', decoder: 'latin1-exact' } : g1, b);
      i += 1;
    }
    values.push(this.take());
    return values;
  }

  /** Applies the escape sequence at `at`; returns the index after it. */
  private escape(bytes: Uint8Array, at: number): number {
    let end = at + 1;
    // ISO 2022: intermediate bytes 0x20-0x2F, then one final byte 0x30-0x7E.
    while (end < bytes.length && (bytes[end] ?? 0) >= 0x20 && (bytes[end] ?? 0) <= 0x2f) end++;
    const final = bytes[end];
    if (final === undefined || final < 0x30 || final > 0x7e) {
      this.warnings.push(`an incomplete escape sequence at byte ${at} was skipped`);
      return Math.max(end, at + 1);
    }
    const key = Buffer.from(bytes.subarray(at + 1, end + 1)).toString('latin1');
    const designation = ESCAPES.get(key);
    if (designation === undefined) {
      this.warnings.push(
        `unknown escape sequence ESC ${[...key].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' ')} skipped`,
      );
    } else if (designation.g === 0) {
      this.g0 = designation.set;
    } else {
      this.g1 = designation.set;
    }
    return end + 1;
  }

  private reset(): void {
    this.g0 = this.initial.g0;
    this.g1 = this.initial.g1;
  }

  private emit(set: GraphicSet, ...bytes: number[]): void {
    if (this.runSet !== undefined && !sameSet(this.runSet, set)) this.flush();
    this.runSet = set;
    this.run.push(...bytes);
  }

  private take(): string {
    this.flush();
    const value = this.out;
    this.out = '';
    return value;
  }

  private flush(): void {
    const set = this.runSet;
    if (set === undefined || this.run.length === 0) return;
    this.out += decodeRun(set, this.run);
    this.run = [];
    this.runSet = undefined;
  }
}

function sameSet(a: GraphicSet, b: GraphicSet): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'jis' && b.kind === 'jis') return a.plane === b.plane;
  if ((a.kind === 'single' || a.kind === 'double') && (b.kind === 'single' || b.kind === 'double'))
    return a.decoder === b.decoder;
  return true;
}

function decodeRun(set: GraphicSet, run: number[]): string {
  switch (set.kind) {
    case 'ascii':
    case 'romaji':
      return String.fromCharCode(...run);
    case 'katakana':
      // JIS X 0201 Katakana 0xA1-0xDF is U+FF61-U+FF9F, in order; anything else in GR is not a character.
      return run.map((b) => (b >= 0xa1 && b <= 0xdf ? String.fromCharCode(0xff61 + b - 0xa1) : '\ufffd')).join('');
    case 'single':
      // WHATWG's "latin1" is windows-1252; DICOM's ISO-IR 100 is ISO 8859-1 proper.
      if (set.decoder === 'latin1-exact') return String.fromCharCode(...run);
      return decoder(set.decoder).decode(Uint8Array.from(run));
    case 'double':
      return decoder(set.decoder).decode(Uint8Array.from(run));
    case 'jis': {
      // EUC-JP carries X 0208 as GR pairs and X 0212 as 0x8F + GR pair: one decoder for both planes.
      const euc: number[] = [];
      for (let i = 0; i + 1 < run.length; i += 2) {
        if (set.plane === 'x0212') euc.push(0x8f);
        euc.push((run[i] ?? 0) | 0x80, (run[i + 1] ?? 0) | 0x80);
      }
      return decoder('euc-jp').decode(Uint8Array.from(euc));
    }
  }
}
