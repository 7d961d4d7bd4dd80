// The names of the heatmap SC's encodings and their transfer syntaxes, with no encoder behind them: the config
// schema validates `secondaryCapture` against these without loading any codec (sc-encoding.ts does the encoding).

import { TransferSyntax } from '../dicom/transfer-syntaxes.js';

export const SC_ENCODINGS = ['explicit-le', 'rle', 'jpeg-ls-lossless', 'jpeg-lossless', 'jpeg-baseline'] as const;

export type ScEncoding = (typeof SC_ENCODINGS)[number];

/** The transfer syntax each encoding writes (docs/conformance-statement.md lists these). */
export const SC_ENCODING_SYNTAX: Record<ScEncoding, string> = {
  'explicit-le': TransferSyntax.ExplicitVRLittleEndian,
  rle: TransferSyntax.RleLossless,
  'jpeg-ls-lossless': TransferSyntax.JpegLsLossless,
  'jpeg-lossless': TransferSyntax.JpegLosslessSV1,
  'jpeg-baseline': TransferSyntax.JpegBaseline,
};

/** libjpeg's quality for jpeg-baseline unless configured: visually lossless for a colour overlay. */
export const DEFAULT_JPEG_QUALITY = 90;

export interface ScEncodingOptions {
  encoding: ScEncoding;
  /** jpeg-baseline only, 1..100. */
  jpegQuality?: number;
  /**
   * Largest Part 10 object in bytes; a picture that would be larger is scaled down (aspect kept) until it fits.
   * Unlimited when left out.
   */
  maxBytes?: number;
}
