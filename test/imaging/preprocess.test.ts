// Specification of preprocess(): window -> resize -> channels -> (x - mean) / std, as the manifest says. The key
// invariant: a MONOCHROME1 image and its MONOCHROME2 twin (stored values inverted, photometric flipped) give the
// same tensor.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { PixelDecodeError } from '../../src/imaging/pixel-errors.js';
import { preprocess } from '../../src/imaging/preprocess.js';
import { readImage } from '../../src/imaging/read-image.js';
import { preprocessingSchema, type PreprocessingSpec } from '../../src/imaging/preprocessing-spec.js';
import { compressFile, makeImageFile, writeImageFile } from '../helpers/dicom-factory.js';
import { editFile, nativeSamples16, set, setPixels } from './pixel-fixtures.js';

function spec(overrides: Partial<PreprocessingSpec> = {}): PreprocessingSpec {
  return preprocessingSchema.parse({ inputSize: 32, ...overrides });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}

/** The factory's MONOCHROME1 and MONOCHROME2 renderings of one phantom (stored values inverted, window mirrored). */
function twins(opts: { rows: number; columns: number; windowFn?: string; padding?: boolean }): [Buffer, Buffer] {
  const max = 4095;
  return (['MONOCHROME2', 'MONOCHROME1'] as const).map((photometric) => {
    const file = makeImageFile({ rows: opts.rows, columns: opts.columns, bitsStored: 12, photometric, seed: 5 }).bytes;
    return editFile(file, (_meta, ds) => {
      if (opts.windowFn) set(ds, '00281056', 'CS', [opts.windowFn]);
      if (opts.padding) {
        // A collimated border: the outer 3 columns hold the padding value (0 in MONOCHROME2, 4095 in its twin).
        const samples = nativeSamples16(file);
        const pad = photometric === 'MONOCHROME2' ? 0 : max;
        for (let y = 0; y < opts.rows; y++) for (let x = 0; x < 3; x++) samples[y * opts.columns + x] = pad;
        setPixels(ds, samples);
        set(ds, '00280120', 'US', [pad]);
      }
    });
  }) as [Buffer, Buffer];
}

test('a MONOCHROME1 image and its MONOCHROME2 twin give the same tensor (percentile window, padding)', (t) => {
  const [m2, m1] = twins({ rows: 120, columns: 96, padding: true });
  for (const resize of ['pad', 'stretch'] as const) {
    const s = spec({ window: 'percentile', resize, inputSize: 64 });
    const a = preprocess(readImage(m2), s);
    const b = preprocess(readImage(m1), s);
    t.true(maxAbsDiff(a.data, b.data) < 1e-6, `${resize}: ${maxAbsDiff(a.data, b.data)}`);
    t.is(a.window.source, 'percentile');
  }
});

test("a MONOCHROME1 image and its MONOCHROME2 twin give the same tensor with the file's window (LINEAR_EXACT)", (t) => {
  // The factory writes Window Center (min+max)/2 of the stored values, so the twin's center is 4095 - c: a mirror
  // image under LINEAR_EXACT. (Plain LINEAR is offset by half a step, 1/(w-1), by its definition.)
  const [m2, m1] = twins({ rows: 120, columns: 96, windowFn: 'LINEAR_EXACT' });
  const a = preprocess(readImage(m2), spec());
  const b = preprocess(readImage(m1), spec());
  t.is(a.window.source, 'window');
  t.true(maxAbsDiff(a.data, b.data) < 1e-6, String(maxAbsDiff(a.data, b.data)));
});

test('the twins also agree after lossless compression (JPEG-LS)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pixels-twins-'));
  try {
    const [m2, m1] = await Promise.all(
      (['MONOCHROME2', 'MONOCHROME1'] as const).map(async (photometric) => {
        const src = await writeImageFile(dir, { rows: 64, columns: 48, photometric, seed: 9 });
        const out = join(dir, `${photometric}.dcm`);
        await compressFile(src.path, out, 'jpeg-ls-lossless');
        return preprocess(readImage(await readFile(out)), spec({ window: 'percentile' })).data;
      }),
    );
    t.true(maxAbsDiff(m2 ?? new Float32Array(), m1 ?? new Float32Array(1)) < 1e-6);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('channels and normalisation: (x - mean) / std per channel, NHWC, channels interleaved', (t) => {
  // A constant image windowed to exactly 0.5.
  const file = editFile(makeImageFile({ rows: 10, columns: 10 }).bytes, (_meta, ds) => {
    setPixels(ds, new Uint16Array(100).fill(1000));
    set(ds, '00281050', 'DS', [1000]);
    set(ds, '00281051', 'DS', [100]);
    set(ds, '00281056', 'CS', ['LINEAR_EXACT']);
  });
  const image = readImage(file);
  const rgb = preprocess(image, spec({ inputSize: 8 }));
  t.deepEqual(rgb.shape, [8, 8, 3]);
  t.is(rgb.data.length, 8 * 8 * 3);
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  for (let i = 0; i < 64; i++) {
    for (let c = 0; c < 3; c++) {
      const want = (0.5 - (mean[c] ?? 0)) / (std[c] ?? 1);
      if (Math.abs((rgb.data[i * 3 + c] ?? NaN) - want) > 1e-6) {
        t.fail(`pixel ${i} channel ${c}: ${rgb.data[i * 3 + c]} vs ${want}`);
        return;
      }
    }
  }
  const grey = preprocess(image, spec({ inputSize: 8, channels: 1, mean: [0.5], std: [0.25] }));
  t.deepEqual(grey.shape, [8, 8, 1]);
  t.true(grey.data.every((v) => Math.abs(v) < 1e-6));
  // One mean/std for three channels applies to all of them.
  const broadcast = preprocess(image, spec({ inputSize: 8, mean: [0], std: [1] }));
  t.true(broadcast.data.every((v) => Math.abs(v - 0.5) < 1e-6));
  t.deepEqual(rgb.window, { center: 1000, width: 100, source: 'window' });
});

test('pad: the border carries padValue through normalisation', (t) => {
  // 10 rows x 40 columns, white; into 16 with padValue 0 -> 4 image rows at row 6.
  const file = editFile(makeImageFile({ rows: 10, columns: 40 }).bytes, (_meta, ds) => {
    setPixels(ds, new Uint16Array(400).fill(4000));
    set(ds, '00281050', 'DS', [2000]);
    set(ds, '00281051', 'DS', [1000]);
  });
  const out = preprocess(readImage(file), spec({ inputSize: 16, channels: 1, mean: [0], std: [1], padValue: 0 }));
  for (let y = 0; y < 16; y++) {
    const row = out.data.subarray(y * 16, (y + 1) * 16);
    const want = y >= 6 && y < 10 ? 1 : 0;
    t.true(
      row.every((v) => Math.abs(v - want) < 1e-6),
      `row ${y}`,
    );
  }
});

test('a manifest whose mean/std count fits neither 1 nor the channel count is refused', (t) => {
  const image = readImage(makeImageFile({ rows: 8, columns: 8 }).bytes);
  const error = t.throws(() => preprocess(image, spec({ channels: 1 })), { instanceOf: PixelDecodeError });
  t.is(error?.code, 'PIXELS_SPEC_MISMATCH');
  t.regex(error?.message ?? '', /3 mean values for a 1-channel input/);
});

test('a 2500 x 2048 image goes to 224 x 224 x 3', (t) => {
  const image = readImage(makeImageFile({ rows: 2500, columns: 2048, seed: 1 }).bytes);
  const out = preprocess(image, spec({ inputSize: 224 }));
  t.deepEqual(out.shape, [224, 224, 3]);
  t.true(out.data.every(Number.isFinite));
  // Portrait: 20 padded columns on each side hold normalised padValue 0 in channel 0.
  t.true(Math.abs((out.data[(100 * 224 + 5) * 3] ?? NaN) - (0 - 0.485) / 0.229) < 1e-6);
});
