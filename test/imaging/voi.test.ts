// Specification of the VOI stage: the DICOM window functions (PS3.3 C.11.2.1.2/3) on known inputs, VOI LUT lookup,
// the robust percentile window over body pixels only, MONOCHROME1 inversion and padding.

import test from 'ava';
import type { DecodedImage, VoiWindow } from '../../src/imaging/decoded-image.js';
import { percentiles } from '../../src/imaging/percentile.js';
import { applyVoi, applyWindow } from '../../src/imaging/voi.js';

function win(center: number, width: number, fn: VoiWindow['fn']): VoiWindow {
  return { kind: 'window', center, width, fn };
}

function windowed(xs: number[], w: VoiWindow): number[] {
  const out = new Float32Array(xs.length);
  applyWindow(Float32Array.from(xs), w, out);
  return Array.from(out);
}

function image(values: number[], extra: Partial<DecodedImage> = {}): DecodedImage {
  return {
    rows: 1,
    columns: values.length,
    photometric: 'MONOCHROME2',
    values: Float32Array.from(values),
    padding: undefined,
    bitsStored: 16,
    modalityTransform: { kind: 'rescale', slope: 1, intercept: 0 },
    voi: undefined,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    lossy: false,
    ...extra,
  };
}

const OPTIONS = { window: 'dicom', percentiles: [0.5, 99.5], padValue: 0 } as const;

/** numpy.percentile (linear) by sorting: the reference the histogram method must match. */
function referencePercentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const r = (q / 100) * (s.length - 1);
  const lo = s[Math.floor(r)] ?? NaN;
  const hi = s[Math.ceil(r)] ?? NaN;
  return lo + (hi - lo) * (r - Math.floor(r));
}

test('LINEAR: integer inputs c - 0.5 - (w-1)/2 .. c - 0.5 + (w-1)/2 ramp from 0 to 1, clamped outside', (t) => {
  // c = 100, w = 21: 89.5 and below -> 0, above 109.5 -> 1, 90 -> 0.5/20, 109 -> 19.5/20.
  const got = windowed([0, 89, 90, 100, 109, 110, 1000], win(100, 21, 'LINEAR'));
  const want = [0, 0, 0.025, 0.525, 0.975, 1, 1];
  got.forEach((v, i) => t.true(Math.abs(v - (want[i] ?? NaN)) < 1e-6, `x[${i}] -> ${v}, want ${want[i]}`));
  // Width 1 is a threshold at c - 0.5.
  t.deepEqual(windowed([99, 99.5, 100], win(100, 1, 'LINEAR')), [0, 0, 1]);
});

test('LINEAR_EXACT: (x - c) / w + 0.5 on c - w/2 .. c + w/2', (t) => {
  const got = windowed([80, 90, 95, 100, 110, 111], win(100, 20, 'LINEAR_EXACT'));
  t.deepEqual(got, [0, 0, 0.25, 0.5, 1, 1]);
});

test('SIGMOID: 1 / (1 + exp(-4 (x - c) / w))', (t) => {
  const [atCenter = NaN, quarter = NaN] = windowed([100, 105], win(100, 20, 'SIGMOID'));
  t.is(atCenter, 0.5);
  t.true(Math.abs(quarter - 1 / (1 + Math.exp(-1))) < 1e-6);
});

test('VOI LUT: entries scaled by 2^bits - 1, inputs clamped to the mapped range', (t) => {
  const lut = { firstMapped: 10, bits: 8, data: Uint16Array.from([0, 51, 204, 255]) };
  const r = applyVoi(image([5, 10, 11, 12, 13, 100]), { ...OPTIONS });
  t.is(r.window.source, 'percentile', 'no VOI in the file');
  const withLut = applyVoi(image([5, 10, 11, 12, 13, 100], { voi: { kind: 'lut', lut } }), OPTIONS);
  t.deepEqual(Array.from(withLut.pixels), [0, 0, 0.2, 0.8, 1, 1].map(Math.fround));
  t.is(withLut.window.source, 'voi-lut');
});

test('the percentile window ignores padding pixels', (t) => {
  // Body: 0..999. Padding: 500 pixels at -5000 (a collimated border), flagged.
  const body = Array.from({ length: 1000 }, (_, i) => i);
  const values = [...body, ...Array.from({ length: 500 }, () => -5000)];
  const padding = Uint8Array.from(values, (v) => (v === -5000 ? 1 : 0));
  const flagged = applyVoi(image(values, { padding }), OPTIONS);
  const lo = referencePercentile(body, 0.5);
  const hi = referencePercentile(body, 99.5);
  t.true(Math.abs(flagged.window.center - (lo + hi) / 2) < 1e-9);
  t.true(Math.abs(flagged.window.width - (hi - lo)) < 1e-9);
  t.is(flagged.window.source, 'percentile');
  // Padding pixels take the pad value; body pixels span [0, 1].
  t.true(flagged.pixels.subarray(1000).every((v) => v === 0));
  t.is(flagged.pixels[500], Math.fround((500 - lo) / (hi - lo)));

  // Unflagged, the same border drags the low percentile down to -5000.
  const unflagged = applyVoi(image(values), OPTIONS);
  t.true(unflagged.window.center < flagged.window.center - 1000);
});

test('percentiles() equals the sort-based definition on non-integer data with exclusions', (t) => {
  let seed = 12345;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const xs = Array.from({ length: 20000 }, () => Math.fround((rand() - 0.3) * 1e6 * rand()));
  const exclude = Uint8Array.from(xs, (_, i) => (i % 7 === 0 ? 1 : 0));
  const kept = xs.filter((_, i) => i % 7 !== 0);
  const qs = [0, 0.5, 2, 50, 97.5, 99.5, 100];
  const got = percentiles(Float32Array.from(xs), exclude, qs);
  qs.forEach((q, i) => {
    const want = referencePercentile(kept, q);
    t.true(Math.abs((got[i] ?? NaN) - want) <= Math.abs(want) * 1e-6, `q ${q}: ${got[i]} vs ${want}`);
  });
  t.deepEqual(percentiles(Float32Array.from([3, 3, 3]), undefined, [1, 99]), [3, 3]);
  t.true(percentiles(Float32Array.from([1, 2]), Uint8Array.from([1, 1]), [50]).every(Number.isNaN));
});

test("the manifest's window: 'percentile' ignores the file's window, 'dicom' uses it", (t) => {
  const values = Array.from({ length: 100 }, (_, i) => i * 10);
  const voi = win(500, 200, 'LINEAR_EXACT');
  t.is(applyVoi(image(values, { voi }), OPTIONS).window.source, 'window');
  t.is(applyVoi(image(values, { voi }), { ...OPTIONS, window: 'percentile' }).window.source, 'percentile');
});

test('MONOCHROME1 is inverted after windowing (bright = dense); padding still takes the pad value', (t) => {
  const values = [0, 25, 50, 75, 100];
  const padding = Uint8Array.from([0, 0, 0, 0, 1]);
  const voi = win(50, 100, 'LINEAR_EXACT');
  const m2 = applyVoi(image(values, { voi, padding }), { ...OPTIONS, padValue: 0.25 });
  const m1 = applyVoi(image(values, { voi, padding, photometric: 'MONOCHROME1' }), { ...OPTIONS, padValue: 0.25 });
  t.deepEqual(Array.from(m2.pixels), [0, 0.25, 0.5, 0.75, 0.25]);
  t.deepEqual(Array.from(m1.pixels), [1, 0.75, 0.5, 0.25, 0.25]);
});
