// How the heatmap Secondary Capture's pixels go into the file: the transfer syntaxes we write it in (issue 19),
// chosen by `secondaryCapture.encoding`. Lossless encodings keep the RGB picture exactly; JPEG baseline trades exact
// colours for size and makes the object lossy (LossyImageCompression 01, its ratio and ISO_10918_1 appended to the
// source's own history). Every encapsulated object holds one fragment per frame behind a Basic Offset Table.

import { encodeFrame, frameEncodersReady, initFrameEncoders, type FrameCodec } from '../imaging/frame-encoder.js';
import { encodeRleFrame } from '../imaging/rle-encoder.js';
import type { RgbImage } from './heatmap-overlay.js';
import {
  DEFAULT_JPEG_QUALITY,
  SC_ENCODING_SYNTAX,
  type ScEncoding,
  type ScEncodingOptions,
} from './sc-encoding-types.js';

const WASM_CODEC: Partial<Record<ScEncoding, FrameCodec>> = {
  'jpeg-ls-lossless': 'jpeg-ls-lossless',
  'jpeg-lossless': 'jpeg-lossless',
  'jpeg-baseline': 'jpeg-baseline',
};

/** Whether the encoding uses the WASM encoders (await prepareScEncoding() before writing then). */
export function needsWasmEncoders(encoding: ScEncoding): boolean {
  return WASM_CODEC[encoding] !== undefined;
}

/** Loads what `encoding` needs; a no-op for explicit-le and rle. */
export async function prepareScEncoding(encoding: ScEncoding): Promise<void> {
  if (needsWasmEncoders(encoding) && !frameEncodersReady()) await initFrameEncoders();
}

export interface EncodedScPixels {
  transferSyntaxUid: string;
  /** RGB, except YBR_FULL_422 for jpeg-baseline (YCbCr, chroma subsampled: PS3.5 8.2.1). */
  photometric: 'RGB' | 'YBR_FULL_422';
  /** Native: one buffer of even length. Encapsulated: one buffer per frame (dcmjs writes the item and its padding). */
  pixelData: ArrayBuffer[];
  encapsulated: boolean;
  /** jpeg-baseline: uncompressed size / compressed size of this encoding. */
  lossyRatio?: number;
}

/** The picture's pixels in `encoding`. */
export function encodeScPixels(image: RgbImage, options: ScEncodingOptions): EncodedScPixels {
  const { rows, columns } = image;
  const rawBytes = rows * columns * 3;
  const raw = image.data.subarray(0, rawBytes);
  const transferSyntaxUid = SC_ENCODING_SYNTAX[options.encoding];
  if (options.encoding === 'explicit-le') {
    // OB values have even length: pad the last byte.
    const pixels = new Uint8Array(rawBytes + (rawBytes % 2));
    pixels.set(raw);
    return { transferSyntaxUid, photometric: 'RGB', pixelData: [pixels.buffer], encapsulated: false };
  }
  const frame =
    options.encoding === 'rle'
      ? encodeRleFrame(raw, rows, columns, 3)
      : encodeFrame({ kind: 'rgb8', pixels: raw, rows, columns }, WASM_CODEC[options.encoding] ?? 'rle', {
          quality: options.jpegQuality ?? DEFAULT_JPEG_QUALITY,
        });
  const copy = new ArrayBuffer(frame.byteLength);
  new Uint8Array(copy).set(frame);
  const pixelData = [copy];
  if (options.encoding !== 'jpeg-baseline')
    return { transferSyntaxUid, photometric: 'RGB', pixelData, encapsulated: true };
  return {
    transferSyntaxUid,
    photometric: 'YBR_FULL_422',
    pixelData,
    encapsulated: true,
    lossyRatio: rawBytes / frame.byteLength,
  };
}
