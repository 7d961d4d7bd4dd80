// Cheap structural checks on a compressed frame before it goes into WASM. The decoders do not reject every bad
// stream: libjpeg fills a truncated scan with grey, the RLE decoder zero-fills short segments, and a stream whose
// size disagrees with the DICOM header can trap inside the module (which then has to be reloaded). A wrong but
// plausible image is the worst outcome for a classifier, so these checks turn such cases into PIXELS_CORRUPT.

import { PixelDecodeError, notProcessed } from './pixel-errors.js';
import type { FrameCodec } from './transfer-syntaxes.js';

export interface ExpectedFrame {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  /** Bytes per sample in the decoded frame (1 or 2). */
  bytesPerSample: number;
}

interface StreamHeader {
  width: number;
  height: number;
  components: number;
}

// The stream arrived as the sender wrote it (the transfer and the element structure were checked before the
// Success), so the fix is at the sender's export.
const ACTION =
  'the image is kept as received. The compressed stream the modality or PACS wrote is incomplete or disagrees with its own header: fix the export there and send the image again';

function corrupt(what: string): PixelDecodeError {
  return new PixelDecodeError('PIXELS_CORRUPT', notProcessed(`compressed pixel data: ${what}`, ACTION));
}

export function checkFrame(frame: Uint8Array, codec: FrameCodec, expected: ExpectedFrame): void {
  if (frame.length === 0) throw corrupt('the first frame is empty');
  switch (codec) {
    case 'rle':
      checkRle(frame, expected);
      return;
    case 'jpeg':
    case 'jpeg-ls':
      checkEndMarker(frame, 'JPEG');
      checkDimensions(readJpegFrameHeader(frame, codec), expected, codec === 'jpeg' ? 'JPEG' : 'JPEG-LS');
      return;
    case 'jpeg2000':
    case 'htj2k': {
      const siz = readJ2kSiz(frame);
      // A JP2 file wrapper instead of a bare codestream: tolerated, the decoder finds the codestream itself.
      if (siz === undefined) return;
      checkEndMarker(frame, 'JPEG 2000');
      checkDimensions(siz, expected, 'JPEG 2000');
      return;
    }
    case 'jpeg-xl':
      // The JPEG XL header is bit-packed; the decoded size is checked after decoding instead.
      return;
  }
}

function checkDimensions(header: StreamHeader, expected: ExpectedFrame, what: string): void {
  if (
    header.width !== expected.columns ||
    header.height !== expected.rows ||
    header.components !== expected.samplesPerPixel
  ) {
    throw corrupt(
      `the ${what} stream holds ${header.width} x ${header.height} pixels with ${header.components} component(s) but the ` +
        `DICOM header says Columns ${expected.columns}, Rows ${expected.rows}, Samples per Pixel ${expected.samplesPerPixel} ` +
        '(the header and the pixel data disagree, typically after a faulty re-encode)',
    );
  }
}

/** EOI (JPEG, JPEG-LS) and EOC (JPEG 2000) are both FFD9; DICOM pads fragments to even length with 00. */
function checkEndMarker(frame: Uint8Array, what: string): void {
  let end = frame.length;
  while (end > 0 && frame[end - 1] === 0) end--;
  if (end < 2 || frame[end - 2] !== 0xff || frame[end - 1] !== 0xd9) {
    throw corrupt(`the ${what} stream has no end-of-image marker (it was truncated)`);
  }
}

function u16be(b: Uint8Array, i: number): number {
  return ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
}

function u32be(b: Uint8Array, i: number): number {
  return u16be(b, i) * 65536 + u16be(b, i + 2);
}

/** Walks the marker segments up to the frame header (SOFn for JPEG, SOF55 for JPEG-LS). */
function readJpegFrameHeader(b: Uint8Array, codec: 'jpeg' | 'jpeg-ls'): StreamHeader {
  const what = codec === 'jpeg' ? 'JPEG' : 'JPEG-LS';
  if (b[0] !== 0xff || b[1] !== 0xd8) throw corrupt(`the ${what} stream does not start with a start-of-image marker`);
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) throw corrupt(`the ${what} stream has garbage where a marker should be (offset ${i})`);
    const marker = b[i + 1] ?? 0;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      i += 2; // stand-alone markers carry no length
      continue;
    }
    const length = u16be(b, i + 2);
    if (length < 2) throw corrupt(`the ${what} stream has a marker segment of impossible length ${length}`);
    const isSof =
      codec === 'jpeg'
        ? marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc
        : marker === 0xf7;
    if (isSof) {
      if (i + 10 > b.length) break;
      return { height: u16be(b, i + 5), width: u16be(b, i + 7), components: b[i + 9] ?? 0 };
    }
    if (marker === 0xda || marker === 0xd9) break; // a scan (or the end) before any frame header
    i += 2 + length;
  }
  throw corrupt(`the ${what} stream has no frame header`);
}

/** The SIZ segment of a JPEG 2000 codestream, or undefined when the frame is a JP2 file (box structure). */
function readJ2kSiz(b: Uint8Array): StreamHeader | undefined {
  if (b.length >= 8 && u32be(b, 0) === 12 && u32be(b, 4) === 0x6a502020) return undefined;
  if (b.length < 42 || u16be(b, 0) !== 0xff4f || u16be(b, 2) !== 0xff51) {
    throw corrupt('the JPEG 2000 stream does not start with SOC and SIZ markers');
  }
  const xsiz = u32be(b, 8);
  const ysiz = u32be(b, 12);
  const xosiz = u32be(b, 16);
  const yosiz = u32be(b, 20);
  return { width: xsiz - xosiz, height: ysiz - yosiz, components: u16be(b, 40) };
}

/**
 * RLE (PS3.5 Annex G): a 64-byte header (segment count, 15 offsets), then one PackBits segment per byte plane.
 * Each segment must expand to rows x columns bytes; the decoder zero-fills a short one without complaint.
 */
function checkRle(b: Uint8Array, expected: ExpectedFrame): void {
  if (b.length < 64) throw corrupt(`the RLE frame is ${b.length} bytes, shorter than its 64-byte header`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const segments = view.getUint32(0, true);
  const want = expected.bytesPerSample * expected.samplesPerPixel;
  if (segments !== want) {
    throw corrupt(`the RLE header lists ${segments} segment(s), the DICOM header implies ${want}`);
  }
  const offsets: number[] = [];
  for (let s = 0; s < segments; s++) offsets.push(view.getUint32(4 + 4 * s, true));
  offsets.push(b.length);
  const pixels = expected.rows * expected.columns;
  for (let s = 0; s < segments; s++) {
    const start = offsets[s] ?? 0;
    const end = offsets[s + 1] ?? b.length;
    if (start < 64 || end > b.length || start >= end) {
      throw corrupt(`RLE segment ${s + 1} has an offset outside the frame (${start}..${end} of ${b.length} bytes)`);
    }
    const produced = packBitsLength(b, start, end, pixels);
    if (produced < pixels) throw corrupt(`RLE segment ${s + 1} expands to ${produced} of ${pixels} bytes (truncated)`);
  }
}

/** Output length of a PackBits run list (stops counting once `enough` is reached). */
function packBitsLength(b: Uint8Array, start: number, end: number, enough: number): number {
  let out = 0;
  let i = start;
  while (i < end && out < enough) {
    const n = b[i] ?? 0;
    if (n < 128) {
      const literal = n + 1;
      if (i + 1 + literal > end) return out + Math.max(0, end - i - 1);
      out += literal;
      i += 1 + literal;
    } else if (n > 128) {
      if (i + 1 >= end) return out;
      out += 257 - n;
      i += 2;
    } else {
      i += 1; // -128: no-op
    }
  }
  return out;
}
