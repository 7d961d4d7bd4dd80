import { GatewayError, type ErrorCode } from '../errors.js';

/**
 * Why an instance's pixels could not be turned into a model input. The codes are stable (scripts, metrics and
 * tests match on them, and they are part of ERROR_CODES); the message is written for the admin who has to fix the sender or the file.
 */
export type PixelErrorCode = Extract<
  ErrorCode,
  /** The transfer syntax has no decoder here (video, retired JPEG processes, unknown private syntaxes). */
  | 'PIXELS_UNSUPPORTED_SYNTAX'
  /** The pixel data is damaged: truncated, garbled, or disagrees with the image's own header. */
  | 'PIXELS_CORRUPT'
  /** A pixel layout a chest radiograph classifier cannot use: colour, 1-bit, odd Bits Allocated/Stored. */
  | 'PIXELS_UNSUPPORTED_LAYOUT'
  /** No Pixel Data element (e.g. a report or a presentation state sent to the image pipeline). */
  | 'PIXELS_MISSING'
  /** Rows/Columns empty, absurd, or too large to decode safely. */
  | 'PIXELS_DIMENSIONS'
  /** The WASM decoders are not loaded (or are reloading after a crash); await initPixelCodecs(). */
  | 'PIXELS_CODECS_UNAVAILABLE'
  /** The model manifest's preprocessing block cannot be applied (e.g. 3 means for a 1-channel input). */
  | 'PIXELS_SPEC_MISMATCH'
>; // a subset of the catalogue (src/errors.ts): a pixel code missing there is a compile error

/**
 * The reason for a pixel failure. Pixels are decoded after the store has answered Success, and a sender never sends
 * an image again after a Success: so the reason says that the image was not processed and that the gateway keeps
 * it as received, names what could not be decoded, and says who can act (never "damaged in transit": the transfer
 * and the element structure were checked before the Success).
 */
export function notProcessed(what: string, action: string): string {
  return `the gateway could not decode this image's pixel data (${what}): not processed; ${action}`;
}

/** For a compressed stream our decoder refuses: the stream may be damaged, or beyond what our decoder handles. */
export function decoderLimitAction(codec: string): string {
  return (
    `the image is kept as received. If it displays in a viewer, this ${codec} stream is beyond the gateway's decoder (report it with the image); ` +
    'if it does not, the modality or PACS wrote a damaged stream: fix it there and send the image again'
  );
}

export class PixelDecodeError extends GatewayError {
  declare readonly code: PixelErrorCode;

  constructor(code: PixelErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'PixelDecodeError';
  }
}
