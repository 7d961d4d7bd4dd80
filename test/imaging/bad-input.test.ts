// Specification: input the pipeline cannot classify fails with a PixelDecodeError whose code says which kind of
// problem it is and whose message tells the admin what to do. A damaged compressed stream never leaves the WASM
// decoders broken for the next, valid, file.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { DicomJson } from 'dcmjs';
import { GatewayError } from '../../src/errors.js';
import { canariesPass, initPixelCodecs, pixelCodecsReady } from '../../src/imaging/decode-frame.js';
import { PixelDecodeError, type PixelErrorCode } from '../../src/imaging/pixel-errors.js';
import { loadImage, readImage } from '../../src/imaging/read-image.js';
import { compressFile, makeImageFile, writeImageFile, type CompressedSyntax } from '../helpers/dicom-factory.js';
import { editFile, remove, set } from './pixel-fixtures.js';
import { withRawElements } from '../dicom/charset-fixtures.js';

const ROWS = 40;
const COLUMNS = 56;

let dir = '';
let source: { path: string; bytes: Buffer } = { path: '', bytes: Buffer.alloc(0) };
const compressed = new Map<CompressedSyntax, Buffer>();

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pixels-bad-'));
  source = await writeImageFile(dir, { rows: ROWS, columns: COLUMNS, seed: 2 });
  for (const syntax of ['jpeg-lossless-sv1', 'jpeg-ls-lossless', 'jpeg2000-lossless', 'rle'] as const) {
    const out = join(dir, `${syntax}.dcm`);
    await compressFile(source.path, out, syntax);
    compressed.set(syntax, await readFile(out));
  }
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function file(syntax: CompressedSyntax): Buffer {
  const f = compressed.get(syntax);
  if (!f) throw new Error(`no ${syntax} file`);
  return f;
}

/** Replaces the (single) compressed frame of a file. */
function withFrame(bytes: Buffer, edit: (frame: Uint8Array) => Uint8Array): Buffer {
  return editFile(bytes, (_meta, ds) => {
    const [frame] = ds['7FE00010']?.Value ?? [];
    if (!(frame instanceof ArrayBuffer)) throw new Error('no frame');
    ds['7FE00010'] = { vr: 'OB', Value: [new Uint8Array(edit(new Uint8Array(frame))).buffer] };
  });
}

function fails(t: import('ava').ExecutionContext, bytes: Uint8Array, code: PixelErrorCode, message?: RegExp): void {
  const error = t.throws(() => readImage(bytes), { instanceOf: PixelDecodeError });
  t.true(error instanceof GatewayError, 'a GatewayError, like every error leaving a module');
  t.is(error?.code, code, error?.message);
  if (message) t.regex(error?.message ?? '', message);
  if (code === 'PIXELS_CORRUPT') assertHonestCorruptReason(t, error?.message ?? '');
}

/**
 * Pixels are decoded after the store said Success, and a sender never resends after a Success: the reason says the
 * image was not processed and who can act, and never blames the transfer (which was checked before the Success).
 */
function assertHonestCorruptReason(t: import('ava').ExecutionContext, message: string): void {
  t.regex(message, /^the gateway could not decode this image's pixel data \(.+\): not processed; /, message);
  t.notRegex(message, /in transit|damaged it;/i, message);
}

function edited(edit: (ds: DicomJson, meta: DicomJson) => void, bytes: Buffer = source.bytes): Buffer {
  return editFile(bytes, (meta, ds) => edit(ds, meta));
}

test('an unsupported transfer syntax names itself and what to send instead', (t) => {
  const mpeg2 = withFrame(file('jpeg-lossless-sv1'), (f) => f);
  const retagged = edited((_ds, meta) => set(meta, '00020010', 'UI', ['1.2.840.10008.1.2.4.100']), mpeg2);
  fails(
    t,
    retagged,
    'PIXELS_UNSUPPORTED_SYNTAX',
    /1\.2\.840\.10008\.1\.2\.4\.100 \(MPEG2 Main Profile\) is not supported.*configure the sending modality or PACS to send .*1\.2\.840\.10008\.1\.2\.1/,
  );
  const privateSyntax = edited((_ds, meta) => set(meta, '00020010', 'UI', ['1.2.3.4.5']), mpeg2);
  fails(t, privateSyntax, 'PIXELS_UNSUPPORTED_SYNTAX', /1\.2\.3\.4\.5 \(unknown\)/);
  const retired = edited((_ds, meta) => set(meta, '00020010', 'UI', ['1.2.840.10008.1.2.4.55']), mpeg2);
  fails(t, retired, 'PIXELS_UNSUPPORTED_SYNTAX', /retired JPEG process/);
});

test('a truncated JPEG, JPEG-LS or JPEG 2000 stream is corrupt (the decoders would fill it with grey)', (t) => {
  for (const syntax of ['jpeg-lossless-sv1', 'jpeg-ls-lossless', 'jpeg2000-lossless'] as const) {
    fails(
      t,
      withFrame(file(syntax), (f) => f.slice(0, f.length >> 1)),
      'PIXELS_CORRUPT',
      /truncated/,
    );
  }
});

test('a stream whose size disagrees with Rows/Columns is corrupt', (t) => {
  for (const syntax of ['jpeg-lossless-sv1', 'jpeg-ls-lossless', 'jpeg2000-lossless'] as const) {
    fails(
      t,
      edited((ds) => set(ds, '00280010', 'US', [ROWS + 8]), file(syntax)),
      'PIXELS_CORRUPT',
      /holds 56 x 40 pixels .* Rows 48/,
    );
  }
});

test('garbled streams are corrupt, and the decoders still decode the next valid file exactly', async (t) => {
  const valid = readImage(source.bytes).values;
  // Bytes flipped all through the stream after its headers: the pattern that left OpenJPEG's heap broken in a probe.
  const flip = (f: Uint8Array): Uint8Array => {
    const c = f.slice();
    for (let i = 30; i < c.length - 2; i += 13) c[i] = (c[i] ?? 0) ^ 0x5a;
    return c;
  };
  for (const syntax of ['jpeg2000-lossless', 'jpeg-lossless-sv1', 'jpeg-ls-lossless'] as const) {
    const error = t.throws(() => readImage(withFrame(file(syntax), flip)), { instanceOf: PixelDecodeError });
    t.is(error?.code, 'PIXELS_CORRUPT', `${syntax}: ${error?.message}`);
    assertHonestCorruptReason(t, error?.message ?? '');
    // loadImage waits for a reload if the failure broke the module; the same (valid) file then decodes exactly.
    const again = await loadImage(file(syntax));
    t.deepEqual(Array.from(again.values), Array.from(valid), syntax);
  }
  await initPixelCodecs();
  t.true(pixelCodecsReady());
  t.true(canariesPass());
});

test('50 damaged JPEG 2000 frames in a row, with no pause to reload, leave the decoders working', (t) => {
  // Without restoring the WASM stack pointer after each failure, valid frames stopped decoding after 7 of these.
  const damaged = withFrame(file('jpeg2000-lossless'), (f) => {
    const c = f.slice();
    for (let i = 30; i < c.length - 2; i += 13) c[i] = (c[i] ?? 0) ^ 0x5a;
    return c;
  });
  for (let k = 0; k < 50; k++) {
    const error = t.throws(() => readImage(damaged), { instanceOf: PixelDecodeError });
    if (error?.code !== 'PIXELS_CORRUPT') {
      t.fail(`attempt ${k}: ${error?.code} ${error?.message}`);
      return;
    }
  }
  t.true(pixelCodecsReady());
  t.deepEqual(Array.from(readImage(file('jpeg2000-lossless')).values), Array.from(readImage(source.bytes).values));
});

test('RLE: a wrong segment count or a short segment is corrupt (the decoder would zero-fill)', (t) => {
  fails(
    t,
    withFrame(file('rle'), (f) => {
      const c = f.slice();
      c[0] = 3; // segment count 3 for a 16-bit image (2 expected)
      return c;
    }),
    'PIXELS_CORRUPT',
    /lists 3 segment\(s\), the DICOM header implies 2/,
  );
  fails(
    t,
    withFrame(file('rle'), (f) => f.slice(0, f.length - 200)),
    'PIXELS_CORRUPT',
    /RLE segment 2 expands to \d+ of 2240 bytes/,
  );
  fails(
    t,
    withFrame(file('rle'), (f) => f.slice(0, 20)),
    'PIXELS_CORRUPT',
    /shorter than its 64-byte header/,
  );
});

test('odd Bits Allocated / Bits Stored / High Bit are unsupported layouts', (t) => {
  fails(
    t,
    edited((ds) => set(ds, '00280100', 'US', [12])),
    'PIXELS_UNSUPPORTED_LAYOUT',
    /Bits Allocated is 12/,
  );
  fails(
    t,
    edited((ds) => set(ds, '00280100', 'US', [1])),
    'PIXELS_UNSUPPORTED_LAYOUT',
    /Bits Allocated is 1: a bitmap/,
  );
  fails(
    t,
    edited((ds) => set(ds, '00280101', 'US', [17])),
    'PIXELS_UNSUPPORTED_LAYOUT',
    /Bits Stored is 17/,
  );
  fails(
    t,
    edited((ds) => set(ds, '00280102', 'US', [16])),
    'PIXELS_UNSUPPORTED_LAYOUT',
    /High Bit is 16/,
  );
  fails(
    t,
    edited((ds) => set(ds, '00280103', 'US', [2])),
    'PIXELS_UNSUPPORTED_LAYOUT',
    /Pixel Representation is 2/,
  );
});

test('empty or huge dimensions are refused before any pixel is touched', (t) => {
  fails(
    t,
    edited((ds) => set(ds, '00280010', 'US', [0])),
    'PIXELS_DIMENSIONS',
    /Rows is 0.*empty image/,
  );
  fails(
    t,
    edited((ds) => set(ds, '00280011', 'US', [20000])),
    'PIXELS_DIMENSIONS',
    /Columns is 20000; images must be 1\.\.16384/,
  );
  fails(
    t,
    edited((ds) => {
      set(ds, '00280010', 'US', [12000]);
      set(ds, '00280011', 'US', [12000]);
    }),
    'PIXELS_DIMENSIONS',
    /144000000 pixels, above the 100000000 limit/,
  );
  fails(
    t,
    edited((ds) => remove(ds, '00280010')),
    'PIXELS_DIMENSIONS',
    /no Rows/,
  );
});

test('no Pixel Data, or floating-point pixels, is named as such', (t) => {
  fails(
    t,
    edited((ds) => remove(ds, '7FE00010')),
    'PIXELS_MISSING',
    /no Pixel Data \(7FE0,0010\)/,
  );
  fails(
    t,
    edited((ds) => {
      const pixels = ds['7FE00010'];
      remove(ds, '7FE00010');
      if (pixels) ds['7FE00008'] = { vr: 'OF', Value: pixels.Value ?? [] };
    }),
    'PIXELS_UNSUPPORTED_LAYOUT',
    /floating-point pixel data/,
  );
});

test('colour images are refused: the model reads grey radiographs', (t) => {
  fails(
    t,
    edited((ds) => {
      set(ds, '00280002', 'US', [3]);
      set(ds, '00280004', 'CS', ['RGB']);
      set(ds, '00280006', 'US', [0]);
    }),
    'PIXELS_UNSUPPORTED_LAYOUT',
    /RGB with 3 sample\(s\) per pixel.*grey radiographs only/,
  );
  fails(
    t,
    edited((ds) => set(ds, '00280004', 'CS', ['PALETTE COLOR'])),
    'PIXELS_UNSUPPORTED_LAYOUT',
    /PALETTE COLOR/,
  );
  fails(
    t,
    edited((ds) => remove(ds, '00280004')),
    'PIXELS_UNSUPPORTED_LAYOUT',
    /without a Photometric Interpretation/,
  );
});

test('truncated native pixel data and non-DICOM bytes are corrupt', (t) => {
  const short = edited((ds) => {
    const [pixels] = ds['7FE00010']?.Value ?? [];
    if (pixels instanceof ArrayBuffer) ds['7FE00010'] = { vr: 'OW', Value: [pixels.slice(0, 1000)] };
  });
  fails(t, short, 'PIXELS_CORRUPT', /Pixel Data holds 1000 bytes but one frame of 40 x 56 x 16 bits needs 4480/);
  fails(
    t,
    Buffer.from('this is not a DICOM file at all, just text '.repeat(10)),
    'PIXELS_CORRUPT',
    /the instance is not a DICOM Part 10 file/,
  );
  // dcmjs would zero-fill pixel data cut off by the end of the file; the element walk refuses it first.
  const whole = makeImageFile({ rows: 64, columns: 64 }).bytes;
  fails(
    t,
    whole.subarray(0, whole.length - 100),
    'PIXELS_CORRUPT',
    /the dataset is damaged: truncated: \(7FE0,0010\).*stored copy was damaged afterwards/,
  );
  fails(t, makeImageFile({ rows: 8, columns: 8 }).bytes.subarray(0, 200), 'PIXELS_CORRUPT');
});

test("a dataset whose structure the store accepted but dcmjs cannot parse fails as the gateway's limit, not the sender's", (t) => {
  // An unknown explicit VR: the element walk (the store's check) steps over it; dcmjs loses track and drops the
  // Pixel Data after it, which used to be reported as "the sender stripped the pixels".
  const file = withRawElements(makeImageFile({ rows: 16, columns: 16 }).bytes, [
    { tag: 0x00091010, vr: 'ZZ', bytes: Buffer.from('abcd') },
  ]);
  fails(
    t,
    file,
    'PIXELS_CORRUPT',
    /the gateway's DICOM parser \(dcmjs\) failed on it: it lost the Pixel Data.*a limit of the gateway, not damage by the sender/,
  );
});

test('a decoder failure says the stream may be beyond our decoder, and the image was not processed', (t) => {
  const flipped = withFrame(file('jpeg2000-lossless'), (f) => {
    const c = f.slice();
    for (let i = 30; i < c.length - 2; i += 13) c[i] = (c[i] ?? 0) ^ 0x5a;
    return c;
  });
  const error = t.throws(() => readImage(flipped), { instanceOf: PixelDecodeError });
  t.is(error?.code, 'PIXELS_CORRUPT');
  t.regex(
    error?.message ?? '',
    /JPEG 2000.*If it displays in a viewer, this JPEG 2000 stream is beyond the gateway's decoder/,
    error?.message,
  );
});
