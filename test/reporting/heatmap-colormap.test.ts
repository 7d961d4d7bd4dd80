import test from 'ava';
import { LUT_SIZE, divergingLut, lutIndex, relevanceScale } from '../../src/reporting/heatmap-colormap.js';

const lut = divergingLut();
const entry = (v: number) => {
  const e = lutIndex(v, 1) * 4;
  return { r: lut[e] ?? 0, g: lut[e + 1] ?? 0, b: lut[e + 2] ?? 0, a: lut[e + 3] ?? 0 };
};

test('positive relevance is red, negative blue, and zero fully transparent', (t) => {
  const plus = entry(1);
  const minus = entry(-1);
  t.true(plus.r > 200 && plus.b < 50, JSON.stringify(plus));
  t.true(minus.b > 200 && minus.r < 50, JSON.stringify(minus));
  t.is(entry(0).a, 0);
  t.is(entry(0.05).a, 0, 'weak relevance leaves the anatomy untouched');
  t.is(entry(-0.05).a, 0);
});

test('the scale is symmetric: +v and -v are equally opaque, and opacity grows with |v|', (t) => {
  let previous = -1;
  for (let i = 0; i <= 20; i++) {
    const v = i / 20;
    t.is(entry(v).a, entry(-v).a, `|v| = ${v}`);
    t.true(entry(v).a >= previous);
    previous = entry(v).a;
  }
  t.true(entry(1).a > 150);
  t.is(lutIndex(0, 1), (LUT_SIZE - 1) / 2);
  t.is(lutIndex(5, 1), LUT_SIZE - 1, 'values beyond the scale saturate');
  t.is(lutIndex(-5, 1), 0);
});

test('the 99.5th percentile scale ignores a single outlier', (t) => {
  const n = 100 * 100;
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = (i / n) * (i % 2 === 0 ? 1 : -1); // |R| uniform in [0, 1)
  const clean = relevanceScale(values);
  values[1234] = 1e6;
  const withOutlier = relevanceScale(values);
  t.log(`scale without outlier ${clean.toFixed(4)}, with a 1e6 outlier ${withOutlier.toFixed(4)}`);
  t.true(Math.abs(clean - 0.995) < 0.002);
  t.true(Math.abs(withOutlier - clean) < 0.002, 'a max-based scale would be 1e6');
});

test('the scale is taken over the image region only, and is 0 for an empty map', (t) => {
  const values = new Float32Array(16).fill(0.1);
  values.fill(5, 0, 4); // first row: outside the region
  const region = new Uint8Array(16).fill(1);
  region.fill(0, 0, 4);
  t.true(Math.abs(relevanceScale(values, region) - 0.1) < 1e-6);
  t.is(relevanceScale(new Float32Array(16)), 0);
});
