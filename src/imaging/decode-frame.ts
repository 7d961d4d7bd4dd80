// Decoding one compressed frame with dcmjs-codecs (one WASM module holding libjpeg 8/12/16-bit, CharLS, OpenJPEG,
// OpenJPH, libjxl and an RLE decoder). The module loads asynchronously, once, when this file is imported (top-level
// await), so readImage() can stay synchronous; decoding itself is synchronous.
//
// A decoder that fails throws out of WASM without unwinding: the module's stack pointer is left where the failure
// happened and the frame's heap buffers leak. Unchecked, that breaks the module: in a probe, valid frames stopped
// decoding after 7 damaged JPEG 2000 frames (40 JPEG-LS ones). So:
//  - the stack pointer is saved before each decode and restored after a failure (2000 failures in a row then left
//    the module intact);
//  - a tiny known-good frame per codec (codec-canaries.ts) is decoded after a failure; if any comes back wrong, the
//    module is refused until reloaded;
//  - a fresh instance is loaded in the background after any failure and swapped in, returning the leaked heap.

import dcmjsCodecs from 'dcmjs-codecs';
import { CANARY_BITS_STORED, CANARY_SIZE, CANARY_STREAMS_BASE64, canaryPixel } from './codec-canaries.js';
import { checkFrame } from './codestream-check.js';
import { PixelDecodeError, decoderLimitAction, notProcessed } from './pixel-errors.js';
import type { FrameCodec } from './transfer-syntaxes.js';

const { NativeCodecs, Context } = dcmjsCodecs;
type CodecContext = InstanceType<typeof Context>;

export interface FrameGeometry {
  rows: number;
  columns: number;
  bitsAllocated: 8 | 16;
  bitsStored: number;
  pixelRepresentation: 0 | 1;
}

/** The module failed its canaries: no decoding until a fresh instance is in. */
let broken = false;
let loading: Promise<void> | undefined;
let lastLoadError: unknown;

function ready(): boolean {
  return !broken && NativeCodecs.isInitialized();
}

function load(): Promise<void> {
  loading ??= (async () => {
    try {
      // No release() first: initializeAsync swaps the new instance in at its end, so synchronous decodes running
      // meanwhile keep the old one instead of finding no module at all.
      await NativeCodecs.initializeAsync({ logCodecsInfo: false, logCodecsTrace: false });
      broken = false;
      lastLoadError = undefined;
    } catch (cause) {
      lastLoadError = cause;
      throw unavailable(cause);
    } finally {
      loading = undefined;
    }
  })();
  return loading;
}

function unavailable(cause: unknown): PixelDecodeError {
  return new PixelDecodeError(
    'PIXELS_CODECS_UNAVAILABLE',
    `the image decoders (dcmjs-codecs WASM) could not be loaded: ${cause instanceof Error ? cause.message : String(cause)}; ` +
      'check that node_modules/dcmjs-codecs/build/dcmjs-native-codecs.wasm is installed and readable',
    { cause },
  );
}

/** Loads, or after a broken decode reloads, the WASM decoders. Cheap once loaded; concurrent callers share a load. */
export function initPixelCodecs(): Promise<void> {
  return ready() ? Promise.resolve() : load();
}

/** Whether compressed frames can be decoded right now without awaiting initPixelCodecs(). */
export function pixelCodecsReady(): boolean {
  return ready();
}

// Load at import. A failure here is kept and reported by the first decode (or initPixelCodecs() call), not thrown
// from the import, so that native images still work on a machine where the WASM file is missing.
await load().catch(() => undefined);

const CODEC_NAME: Record<FrameCodec, string> = {
  rle: 'RLE',
  jpeg: 'JPEG',
  'jpeg-ls': 'JPEG-LS',
  jpeg2000: 'JPEG 2000',
  htj2k: 'HTJ2K',
  'jpeg-xl': 'JPEG XL',
};

function context(frame: Uint8Array, g: FrameGeometry): CodecContext {
  return new Context({
    width: g.columns,
    height: g.rows,
    bitsAllocated: g.bitsAllocated,
    bitsStored: g.bitsStored,
    samplesPerPixel: 1,
    pixelRepresentation: g.pixelRepresentation,
    planarConfiguration: 0,
    photometricInterpretation: 'MONOCHROME2',
    encodedBuffer: frame,
  });
}

/**
 * Decodes one compressed frame to little-endian samples, one per pixel, `bitsAllocated / 8` bytes each (or one byte
 * each when the stream itself is 8-bit). Throws PixelDecodeError: PIXELS_CORRUPT for a damaged stream,
 * PIXELS_CODECS_UNAVAILABLE when the module is not loaded.
 */
export function decodeFrame(frame: Uint8Array, codec: FrameCodec, g: FrameGeometry): Uint8Array {
  const bytesPerSample = g.bitsAllocated / 8;
  checkFrame(frame, codec, { rows: g.rows, columns: g.columns, samplesPerPixel: 1, bytesPerSample });
  if (!ready()) {
    if (lastLoadError !== undefined && loading === undefined) throw unavailable(lastLoadError);
    throw new PixelDecodeError(
      'PIXELS_CODECS_UNAVAILABLE',
      broken
        ? 'the image decoders are reloading after a damaged image broke them; await initPixelCodecs() (or use loadImage()) and retry'
        : 'the image decoders are not loaded yet; await initPixelCodecs() (or use loadImage()) and retry',
    );
  }
  let decoded: Uint8Array | undefined;
  const stack = wasmStack();
  const stackPointer = stack?.current();
  try {
    decoded = runDecoder(codec, context(frame, g)).getDecodedBuffer();
  } catch (cause) {
    if (stack && stackPointer !== undefined) stack.restore(stackPointer);
    afterFailure();
    const why = cause instanceof Error ? cause.message.trim() : String(cause);
    throw new PixelDecodeError(
      'PIXELS_CORRUPT',
      notProcessed(`the ${CODEC_NAME[codec]} decoder failed: ${why}`, decoderLimitAction(CODEC_NAME[codec])),
      { cause },
    );
  }
  const pixels = g.rows * g.columns;
  if (
    decoded !== undefined &&
    (decoded.length === pixels * bytesPerSample || (decoded.length === pixels && g.bitsStored <= 8))
  ) {
    return decoded;
  }
  throw new PixelDecodeError(
    'PIXELS_CORRUPT',
    notProcessed(
      `the ${CODEC_NAME[codec]} decoder produced ${decoded?.length ?? 0} bytes where ` +
        `Rows ${g.rows} x Columns ${g.columns} x ${bytesPerSample} byte(s) needs ${pixels * bytesPerSample}: the header and the pixel data disagree`,
      decoderLimitAction(CODEC_NAME[codec]),
    ),
  );
}

interface WasmStack {
  current(): number;
  restore(pointer: number): void;
}

/**
 * The Emscripten stack helpers the module exports (emscripten_stack_get_current, _emscripten_stack_restore), reached
 * through dcmjs-codecs' undeclared `NativeCodecs.wasmApi`; checked at run time, undefined if a release renames them.
 */
function wasmStack(): WasmStack | undefined {
  const api: unknown = Reflect.get(NativeCodecs, 'wasmApi');
  if (typeof api !== 'object' || api === null) return undefined;
  const current: unknown = Reflect.get(api, 'wasmemscripten_stack_get_current');
  const restore: unknown = Reflect.get(api, 'wasm_emscripten_stack_restore');
  if (typeof current !== 'function' || typeof restore !== 'function') return undefined;
  return {
    current: () => Number(current()),
    restore: (pointer) => {
      restore(pointer);
    },
  };
}

function afterFailure(): void {
  broken = !canariesPass();
  // Swap in a fresh instance in the background (frees what the failed decode leaked); its failure surfaces through
  // the next initPixelCodecs() / decode, not as an unhandled rejection.
  load().catch(() => undefined);
}

/** Whether every decoder still turns its known-good frame into the known pixels. */
export function canariesPass(): boolean {
  const g: FrameGeometry = {
    rows: CANARY_SIZE,
    columns: CANARY_SIZE,
    bitsAllocated: 16,
    bitsStored: CANARY_BITS_STORED,
    pixelRepresentation: 0,
  };
  const stack = wasmStack();
  for (const codec of Object.keys(CANARY_STREAMS_BASE64) as FrameCodec[]) {
    const stackPointer = stack?.current();
    try {
      const stream = new Uint8Array(Buffer.from(CANARY_STREAMS_BASE64[codec], 'base64'));
      const out = runDecoder(codec, context(stream, g)).getDecodedBuffer();
      if (out === undefined || out.length !== CANARY_SIZE * CANARY_SIZE * 2) return false;
      for (let y = 0; y < CANARY_SIZE; y++) {
        for (let x = 0; x < CANARY_SIZE; x++) {
          const i = 2 * (y * CANARY_SIZE + x);
          if (((out[i] ?? 0) | ((out[i + 1] ?? 0) << 8)) !== canaryPixel(x, y)) return false;
        }
      }
    } catch {
      if (stack && stackPointer !== undefined) stack.restore(stackPointer);
      return false;
    }
  }
  return true;
}

function runDecoder(codec: FrameCodec, ctx: CodecContext): CodecContext {
  switch (codec) {
    case 'rle':
      return NativeCodecs.decodeRle(ctx);
    case 'jpeg':
      // Grey images only reach here; no colour conversion wanted.
      return NativeCodecs.decodeJpeg(ctx, { convertColorspaceToRgb: false });
    case 'jpeg-ls':
      return NativeCodecs.decodeJpegLs(ctx);
    case 'jpeg2000':
      return NativeCodecs.decodeJpeg2000(ctx);
    case 'htj2k':
      return NativeCodecs.decodeHtJpeg2000(ctx);
    case 'jpeg-xl':
      return NativeCodecs.decodeJpegXl(ctx);
  }
}
