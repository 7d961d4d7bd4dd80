// One image frame -> one compressed bitstream with dcmjs-codecs' WASM encoders (libjpeg, CharLS, OpenJPEG, RLE).
// Shared by the phantom writer (grey 16-bit frames, lossless only) and the heatmap Secondary Capture (8-bit RGB,
// lossless or JPEG baseline), so that both drive the same WASM module the same way.

import { endianness } from 'node:os';
import dcmjsCodecs from 'dcmjs-codecs';
import { GatewayError } from '../errors.js';

const { NativeCodecs, Context } = dcmjsCodecs;
const { JpegSampleFactor } = dcmjsCodecs.constants;

export type FrameCodec = 'jpeg-lossless' | 'jpeg-ls-lossless' | 'jpeg2000-lossless' | 'rle' | 'jpeg-baseline';

/** Loads the WASM module once (shared with the decoders when they are loaded too). */
export async function initFrameEncoders(): Promise<void> {
  if (NativeCodecs.isInitialized()) return;
  try {
    await NativeCodecs.initializeAsync({ logCodecsInfo: false, logCodecsTrace: false });
  } catch (cause) {
    throw new GatewayError(
      'IMAGE_ENCODERS_UNAVAILABLE',
      `the image encoders (dcmjs-codecs WASM) could not be loaded (${cause instanceof Error ? cause.message : String(cause)})`,
      { cause },
    );
  }
}

export function frameEncodersReady(): boolean {
  return NativeCodecs.isInitialized();
}

/** A grey frame of 16-bit samples (any Bits Stored up to 16) or an 8-bit colour-by-pixel RGB frame. */
export type FrameToEncode =
  | {
      kind: 'grey16';
      pixels: Uint16Array;
      rows: number;
      columns: number;
      bitsStored: number;
      photometric: 'MONOCHROME1' | 'MONOCHROME2';
    }
  | { kind: 'rgb8'; pixels: Uint8Array; rows: number; columns: number };

export interface FrameEncodeOptions {
  /** jpeg-baseline only: libjpeg quality, 1..100 (default 90). */
  quality?: number;
}

/**
 * One compressed frame (the bitstream, not yet padded to even length). Call initFrameEncoders() first.
 * jpeg-baseline encodes RGB as YCbCr with 4:2:2 chroma subsampling: the frame's Photometric Interpretation is then
 * YBR_FULL_422 (PS3.5 8.2.1). The lossless codecs keep RGB as RGB (no colour transform).
 */
export function encodeFrame(frame: FrameToEncode, codec: FrameCodec, options: FrameEncodeOptions = {}): Uint8Array {
  if (!NativeCodecs.isInitialized()) {
    throw new GatewayError(
      'IMAGE_ENCODERS_UNAVAILABLE',
      'the image encoders are not loaded; await initFrameEncoders() before encoding',
    );
  }
  if (codec === 'jpeg-baseline' && frame.kind !== 'rgb8')
    throw new RangeError('jpeg-baseline is used for 8-bit RGB frames only');
  const quality = checkQuality(options.quality ?? 90);
  const context = new Context(
    frame.kind === 'grey16'
      ? {
          width: frame.columns,
          height: frame.rows,
          bitsAllocated: 16,
          bitsStored: frame.bitsStored,
          samplesPerPixel: 1,
          pixelRepresentation: 0,
          planarConfiguration: 0,
          photometricInterpretation: frame.photometric,
          decodedBuffer: littleEndian16(frame.pixels),
        }
      : {
          width: frame.columns,
          height: frame.rows,
          bitsAllocated: 8,
          bitsStored: 8,
          samplesPerPixel: 3,
          pixelRepresentation: 0,
          planarConfiguration: 0,
          photometricInterpretation: 'RGB',
          decodedBuffer: frame.pixels.subarray(0, frame.rows * frame.columns * 3),
        },
  );
  const size = `${frame.columns} x ${frame.rows}`;
  let encoded: Uint8Array | undefined;
  try {
    switch (codec) {
      case 'jpeg-lossless':
        // Process 14, selection value 1 (the 1.2.840.10008.1.2.4.70 syntax).
        encoded = NativeCodecs.encodeJpeg(context, {
          lossy: false,
          predictor: 1,
          pointTransform: 0,
        }).getEncodedBuffer();
        break;
      case 'jpeg-ls-lossless':
        encoded = NativeCodecs.encodeJpegLs(context, { lossy: false }).getEncodedBuffer();
        break;
      case 'jpeg2000-lossless':
        encoded = NativeCodecs.encodeJpeg2000(context, { lossy: false }).getEncodedBuffer();
        break;
      case 'rle':
        encoded = NativeCodecs.encodeRle(context).getEncodedBuffer();
        break;
      case 'jpeg-baseline':
        encoded = NativeCodecs.encodeJpeg(context, {
          lossy: true,
          quality,
          sampleFactor: JpegSampleFactor.Sf422,
          predictor: 0,
          pointTransform: 0,
        }).getEncodedBuffer();
        break;
    }
  } catch (cause) {
    throw new GatewayError('IMAGE_ENCODE_FAILED', `the ${codec} encoder failed on a ${size} frame`, { cause });
  }
  if (!encoded || encoded.length === 0)
    throw new GatewayError('IMAGE_ENCODE_FAILED', `the ${codec} encoder produced no data for a ${size} frame`);
  return new Uint8Array(encoded);
}

function checkQuality(quality: number): number {
  if (!Number.isInteger(quality) || quality < 1 || quality > 100)
    throw new RangeError(`JPEG quality must be an integer from 1 to 100, got ${quality}`);
  return quality;
}

function littleEndian16(pixels: Uint16Array): Uint8Array {
  const bytes = new Uint8Array(pixels.length * 2);
  if (endianness() === 'LE') new Uint16Array(bytes.buffer).set(pixels);
  else {
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < pixels.length; i++) view.setUint16(i * 2, pixels[i] ?? 0, true);
  }
  return bytes;
}
