// Lossless compression of a phantom's single frame with the gateway's WASM encoders (src/imaging/frame-encoder.ts:
// libjpeg, CharLS, OpenJPEG, RLE), so that the gateway can be fed the compressed syntaxes modalities send without
// DCMTK at hand. Only lossless syntaxes: the decoded pixels of a phantom must equal its ground truth. HTJ2K is left
// out on purpose: dciodvfy (dicom3tools) cannot read it, and every phantom file must validate.

import { GatewayError } from '../errors.js';
import { TransferSyntax } from '../dicom/transfer-syntaxes.js';
import {
  encodeFrame as encodeImageFrame,
  frameEncodersReady,
  initFrameEncoders as initImageEncoders,
  type FrameCodec,
} from '../imaging/frame-encoder.js';

export const PHANTOM_SYNTAXES = {
  explicit: TransferSyntax.ExplicitVRLittleEndian,
  implicit: TransferSyntax.ImplicitVRLittleEndian,
  'jpeg-lossless': TransferSyntax.JpegLosslessSV1,
  'jpeg-ls-lossless': TransferSyntax.JpegLsLossless,
  'jpeg2000-lossless': TransferSyntax.Jpeg2000Lossless,
  rle: TransferSyntax.RleLossless,
} as const;

export type PhantomSyntax = keyof typeof PHANTOM_SYNTAXES;

export function isPhantomSyntax(name: string): name is PhantomSyntax {
  return Object.hasOwn(PHANTOM_SYNTAXES, name);
}

export function isEncapsulated(syntax: PhantomSyntax): syntax is Exclude<PhantomSyntax, 'explicit' | 'implicit'> {
  return syntax !== 'explicit' && syntax !== 'implicit';
}

/**
 * Bits Stored to declare for a frame of `bitsStored` bits in `syntax`. dcmjs-codecs' lossless JPEG encoder has
 * 8-, 12- and 16-bit builds and writes a sample precision of 16 for 13..15-bit data; the file then declares 16 bits
 * stored (the values are unchanged and still fit), so that Bits Stored and the JPEG precision agree.
 */
export function declaredBitsStored(syntax: PhantomSyntax, bitsStored: number): number {
  return syntax === 'jpeg-lossless' && bitsStored > 12 ? 16 : bitsStored;
}

/** Loads the WASM encoders once (src/imaging/frame-encoder.ts), with the phantom command's advice on failure. */
export async function initFrameEncoders(): Promise<void> {
  try {
    await initImageEncoders();
  } catch (cause) {
    throw new GatewayError(
      'PHANTOMS_CODECS_UNAVAILABLE',
      `${cause instanceof Error ? cause.message : String(cause)}; reinstall the gateway or write the phantoms with --syntax explicit`,
      { cause },
    );
  }
}

export interface FrameToEncode {
  pixels: Uint16Array;
  rows: number;
  columns: number;
  bitsStored: number;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
}

/** One compressed frame (the bitstream, not yet padded to even length). Call initFrameEncoders() first. */
export function encodeFrame(frame: FrameToEncode, syntax: PhantomSyntax): Uint8Array {
  if (!isEncapsulated(syntax)) throw new RangeError(`${syntax} is not a compressed syntax`);
  if (!frameEncodersReady()) {
    throw new GatewayError(
      'PHANTOMS_CODECS_UNAVAILABLE',
      'the image encoders are not loaded; await initFrameEncoders() before encoding',
    );
  }
  const codec: FrameCodec = syntax;
  try {
    return encodeImageFrame(
      {
        kind: 'grey16',
        pixels: frame.pixels,
        rows: frame.rows,
        columns: frame.columns,
        bitsStored: declaredBitsStored(syntax, frame.bitsStored),
        photometric: frame.photometric,
      },
      codec,
    );
  } catch (cause) {
    throw new GatewayError(
      'PHANTOMS_ENCODE_FAILED',
      `the ${syntax} encoder failed on a ${frame.columns} x ${frame.rows} frame; write this dataset with --syntax explicit`,
      { cause },
    );
  }
}
