// Specification of `scaling: 'bitsStored'`: stored values over their whole range, v / (2^BitsStored - 1), against
// the window path that the same 8-bit image takes through the DICOM LINEAR function.

import test from 'ava';
import { scaleByBitsStored } from '../../src/imaging/bits-stored.js';
import type { DecodedImage } from '../../src/imaging/decoded-image.js';
import { PixelDecodeError } from '../../src/imaging/pixel-errors.js';
import { preprocess } from '../../src/imaging/preprocess.js';
import { preprocessingSchema } from '../../src/imaging/preprocessing-spec.js';
import { readImage } from '../../src/imaging/read-image.js';
import { applyVoi } from '../../src/imaging/voi.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { editFile, set, setPixels } from './pixel-fixtures.js';

/** A 16 x 16 image holding every 8-bit value once, with the window an 8-bit export carries (127.5 / 256, LINEAR). */
function eightBitRamp(photometric: 'MONOCHROME1' | 'MONOCHROME2' = 'MONOCHROME2'): Buffer {
  return editFile(makeImageFile({ rows: 16, columns: 16, bitsAllocated: 8, photometric }).bytes, (_meta, ds) => {
    setPixels(
      ds,
      Uint8Array.from({ length: 256 }, (_, v) => v),
    );
    set(ds, '00281050', 'DS', [127.5]);
    set(ds, '00281051', 'DS', [256]);
    set(ds, '00281056', 'CS', ['LINEAR']);
  });
}

/** A 12-bit image whose samples are 0, 13, 26, ... up to 4095 (the last one). */
function twelveBitRamp(edit: Parameters<typeof editFile>[1] = () => undefined): { file: Buffer; stored: number[] } {
  const stored = Array.from({ length: 64 }, (_, i) => Math.min(4095, i * 65));
  const file = editFile(makeImageFile({ rows: 8, columns: 8, bitsStored: 12 }).bytes, (meta, ds) => {
    setPixels(ds, Uint16Array.from(stored));
    edit(meta, ds);
  });
  return { file, stored };
}

test('an 8-bit image gives exactly v / 255, where the LINEAR window 127.5 / 256 gives (v + 0.5) / 255', (t) => {
  const image = readImage(eightBitRamp());
  t.is(image.bitsStored, 8);
  const scaled = scaleByBitsStored(image, 0);
  const windowed = applyVoi(image, { window: 'dicom', percentiles: [0.5, 99.5], padValue: 0 });
  t.deepEqual(scaled.window, { center: 127.5, width: 255, source: 'bits-stored' });
  t.is(windowed.window.source, 'window');
  for (let v = 0; v < 256; v++) {
    t.is(scaled.pixels[v], Math.fround(v / 255), `stored ${v}`);
    // The DICOM LINEAR function puts integer values at the centres of its output steps: half a step higher
    // (clipped to 1 at the top).
    t.is(windowed.pixels[v], Math.fround(Math.min(1, (v + 0.5) / 255)), `stored ${v} through the window`);
  }
  let largest = 0;
  for (let v = 0; v < 255; v++) largest = Math.max(largest, (windowed.pixels[v] ?? 0) - (scaled.pixels[v] ?? 0));
  t.log(`window minus bitsStored: up to ${largest.toExponential(3)} (0.5 / 255 = ${(0.5 / 255).toExponential(3)})`);
  t.true(Math.abs(largest - 0.5 / 255) < 1e-7);
});

test('a 12-bit image gives v / 4095, whatever its window says', (t) => {
  const { file, stored } = twelveBitRamp((_meta, ds) => {
    set(ds, '00281050', 'DS', [300]);
    set(ds, '00281051', 'DS', [200]);
  });
  const scaled = scaleByBitsStored(readImage(file), 0);
  t.deepEqual(
    Array.from(scaled.pixels),
    stored.map((v) => Math.fround(v / 4095)),
  );
  t.is(scaled.pixels[63], 1);
});

test('MONOCHROME1 is still inverted, and padding takes the padding value', (t) => {
  const image = readImage(eightBitRamp('MONOCHROME1'));
  const scaled = scaleByBitsStored(
    { ...image, padding: Uint8Array.from({ length: 256 }, (_, i) => (i < 4 ? 1 : 0)) },
    0.25,
  );
  for (let v = 4; v < 256; v++) t.is(scaled.pixels[v], Math.fround(1 - Math.fround(v / 255)));
  t.deepEqual(Array.from(scaled.pixels.subarray(0, 4)), [0.25, 0.25, 0.25, 0.25]);
});

test('a Rescale Slope/Intercept is undone: the stored values are what is scaled', (t) => {
  const { file, stored } = twelveBitRamp((_meta, ds) => {
    set(ds, '00281052', 'DS', [-1024]);
    set(ds, '00281053', 'DS', [2]);
  });
  const image = readImage(file);
  t.deepEqual(image.modalityTransform, { kind: 'rescale', slope: 2, intercept: -1024 });
  const scaled = scaleByBitsStored(image, 0);
  for (const [i, v] of stored.entries()) t.true(Math.abs((scaled.pixels[i] ?? NaN) - v / 4095) < 1e-6, `stored ${v}`);
});

test('an image with a Modality LUT is refused: its stored values cannot be recovered', (t) => {
  const image: DecodedImage = {
    ...readImage(eightBitRamp()),
    modalityTransform: { kind: 'lut', lut: { firstMapped: 0, bits: 8, data: new Uint16Array(256) } },
  };
  const error = t.throws(() => scaleByBitsStored(image, 0), { instanceOf: PixelDecodeError });
  t.is(error?.code, 'PIXELS_SPEC_MISMATCH');
  t.regex(error?.message ?? '', /Modality LUT/);
});

test("preprocess follows the manifest's scaling (a constant image, so the resize keeps the value)", (t) => {
  const file = editFile(makeImageFile({ rows: 10, columns: 10, bitsAllocated: 8 }).bytes, (_meta, ds) => {
    setPixels(ds, new Uint8Array(100).fill(200));
    set(ds, '00281050', 'DS', [127.5]);
    set(ds, '00281051', 'DS', [256]);
  });
  const base = { inputSize: 8, channels: 1, mean: [0], std: [1] };
  const image = readImage(file);
  const bits = preprocess(image, preprocessingSchema.parse({ ...base, scaling: 'bitsStored' }));
  const window = preprocess(image, preprocessingSchema.parse(base));
  t.true(bits.data.every((v) => Math.abs(v - 200 / 255) < 1e-6));
  t.true(window.data.every((v) => Math.abs(v - 200.5 / 255) < 1e-6));
  t.is(bits.window.source, 'bits-stored');
});

test('the preprocessing schema accepts window and bitsStored (absent: window) and refuses anything else', (t) => {
  t.is(preprocessingSchema.parse({ inputSize: 224 }).scaling, undefined);
  t.is(preprocessingSchema.parse({ inputSize: 224, scaling: 'window' }).scaling, 'window');
  t.is(preprocessingSchema.parse({ inputSize: 224, scaling: 'bitsStored' }).scaling, 'bitsStored');
  for (const scaling of ['bits-stored', 'png', 8, null]) {
    const result = preprocessingSchema.safeParse({ inputSize: 224, scaling });
    t.false(result.success, String(scaling));
    if (!result.success) t.deepEqual(result.error.issues[0]?.path, ['scaling']);
  }
});
