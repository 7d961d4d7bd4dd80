// The decoder fuzzer's victim: a child process that feeds each input it is sent to the gateway's pixel path
// (loadImage: the WASM codecs, then readImage, as the pipeline's image work does) and answers how it ended. A crash
// of this process (a WASM abort, an out-of-memory) is what the parent counts; it never takes the parent down.

import { loadImage } from '../../src/imaging/read-image.js';

export interface DecodeRequest {
  id: number;
  bytes: Uint8Array;
}

export type DecodeAnswer =
  | { id: number; outcome: 'decoded'; rows: number; columns: number; consistent: boolean }
  | { id: number; outcome: 'clean-error'; code: string }
  | { id: number; outcome: 'unclean-error'; name: string; message: string };

process.on('message', (request: DecodeRequest) => {
  void (async () => {
    let answer: DecodeAnswer;
    try {
      const image = await loadImage(
        Buffer.from(request.bytes.buffer, request.bytes.byteOffset, request.bytes.byteLength),
      );
      const consistent =
        image.values.length === image.rows * image.columns &&
        Array.from(image.values.subarray(0, 64)).every(Number.isFinite);
      answer = { id: request.id, outcome: 'decoded', rows: image.rows, columns: image.columns, consistent };
    } catch (error) {
      // A clean error is a GatewayError with a code (PixelDecodeError): the pipeline fails the image with its reason.
      const e = error as { name?: string; code?: unknown; message?: string };
      if (e?.name === 'PixelDecodeError' && typeof e.code === 'string')
        answer = { id: request.id, outcome: 'clean-error', code: e.code };
      else
        answer = {
          id: request.id,
          outcome: 'unclean-error',
          name: e?.name ?? typeof error,
          message: String(e?.message ?? error).slice(0, 200),
        };
    }
    process.send?.(answer);
  })();
});
process.send?.({ ready: true });
