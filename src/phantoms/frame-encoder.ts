// Lossless compression of a phantom's single frame with dcmjs-codecs' WASM encoders (libjpeg, CharLS, OpenJPEG,
// RLE), so that the gateway can be fed the compressed syntaxes modalities send without DCMTK at hand. Only lossless
// syntaxes: the decoded pixels of a phantom must equal its ground truth. HTJ2K is left out on purpose: dciodvfy
// (dicom3tools) cannot read it, and every phantom file must validate.

import { endianness } from 'node:os';
import dcmjsCodecs from 'dcmjs-codecs';
import { GatewayError } from '../errors.js';
import { TransferSyntax } from '../dicom/transfer-syntaxes.js';

const { NativeCodecs, Context } = dcmjsCodecs;

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

export function isEncapsulated(syntax: PhantomSyntax): boolean {
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

/** Loads the WASM module once (shared with the decoders when they are loaded too). */
export async function initFrameEncoders(): Promise<void> {
  if (NativeCodecs.isInitialized()) return;
  try {
    await NativeCodecs.initializeAsync({ logCodecsInfo: false, logCodecsTrace: false });
  } catch (cause) {
    throw new GatewayError(
      'PHANTOMS_CODECS_UNAVAILABLE',
      `the image encoders (dcmjs-codecs WASM) could not be loaded (${cause instanceof Error ? cause.message : String(cause)}); ` +
        'reinstall the gateway or write the phantoms with --syntax explicit',
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
  if (!NativeCodecs.isInitialized()) {
    throw new GatewayError(
      'PHANTOMS_CODECS_UNAVAILABLE',
      'the image encoders are not loaded; await initFrameEncoders() before encoding',
    );
  }
  const bytes = new Uint8Array(frame.pixels.length * 2);
  if (endianness() === 'LE') new Uint16Array(bytes.buffer).set(frame.pixels);
  else {
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < frame.pixels.length; i++) view.setUint16(i * 2, frame.pixels[i] ?? 0, true);
  }
  const context = new Context({
    width: frame.columns,
    height: frame.rows,
    bitsAllocated: 16,
    bitsStored: declaredBitsStored(syntax, frame.bitsStored),
    samplesPerPixel: 1,
    pixelRepresentation: 0,
    planarConfiguration: 0,
    photometricInterpretation: frame.photometric,
    decodedBuffer: bytes,
  });
  let encoded: Uint8Array | undefined;
  try {
    switch (syntax) {
      case 'jpeg-lossless':
        encoded = NativeCodecs.encodeJpeg(context, { lossy: false }).getEncodedBuffer();
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
    }
  } catch (cause) {
    throw new GatewayError(
      'PHANTOMS_ENCODE_FAILED',
      `the ${syntax} encoder failed on a ${frame.columns} x ${frame.rows} frame; write this dataset with --syntax explicit`,
      { cause },
    );
  }
  if (!encoded || encoded.length === 0) {
    throw new GatewayError(
      'PHANTOMS_ENCODE_FAILED',
      `the ${syntax} encoder produced no data for a ${frame.columns} x ${frame.rows} frame; write this dataset with --syntax explicit`,
    );
  }
  return new Uint8Array(encoded);
}
