// The bytes of the first frame in Pixel Data. Only the first frame is classified: a chest radiograph is one frame,
// and a multi-frame object that reaches the pipeline is read like its first image.

import { PixelDecodeError, notProcessed } from './pixel-errors.js';
import type { FrameCodec } from './transfer-syntaxes.js';

function asBytes(v: unknown): Uint8Array | undefined {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return undefined;
}

/** Native Pixel Data: dcmjs gives one buffer; the first frame is its first `frameBytes` bytes. */
export function firstNativeFrame(value: unknown[], frameBytes: number, describe: string): Uint8Array {
  const bytes = asBytes(value[0]);
  if (!bytes || bytes.length === 0) throw missingPixels();
  if (bytes.length < frameBytes) {
    throw new PixelDecodeError(
      'PIXELS_CORRUPT',
      notProcessed(
        `Pixel Data holds ${bytes.length} bytes but one frame of ${describe} needs ${frameBytes}`,
        'the image is kept as received. Its header and its pixel data disagree as the sender wrote them: fix the export at the modality or PACS and send the image again',
      ),
    );
  }
  return bytes.subarray(0, frameBytes);
}

/** Where a new frame starts in each codec's stream, for encapsulated data without a Basic Offset Table. */
function startsFrame(b: Uint8Array, codec: FrameCodec): boolean {
  switch (codec) {
    case 'jpeg':
    case 'jpeg-ls':
      return b[0] === 0xff && b[1] === 0xd8;
    case 'jpeg2000':
    case 'htj2k':
      return b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff && b[3] === 0x51;
    case 'jpeg-xl':
      return (b[0] === 0xff && b[1] === 0x0a) || (b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 0x0c);
    case 'rle':
      return true; // PS3.5 Annex G: one fragment per RLE frame
  }
}

/**
 * Encapsulated Pixel Data. dcmjs returns one buffer per frame when the Basic Offset Table is filled, and one per
 * fragment when it is empty; a frame split into several fragments is then rejoined here.
 */
export function firstEncapsulatedFrame(value: unknown[], codec: FrameCodec, numberOfFrames: number): Uint8Array {
  const parts = value.map(asBytes).filter((b): b is Uint8Array => b !== undefined && b.length > 0);
  const [first] = parts;
  if (!first) throw missingPixels();
  if (parts.length === 1 || parts.length === numberOfFrames) return first;
  let end = 1;
  if (numberOfFrames > 1) while (end < parts.length && !startsFrame(parts[end] ?? first, codec)) end++;
  else end = parts.length;
  if (end === 1) return first;
  const chunks = parts.slice(0, end);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export function missingPixels(): PixelDecodeError {
  return new PixelDecodeError(
    'PIXELS_MISSING',
    'the instance has no Pixel Data (7FE0,0010) to classify: it is not an image (a report, presentation state or key object?) ' +
      'or the sender stripped the pixels; route only CR/DX images to the gateway',
  );
}
