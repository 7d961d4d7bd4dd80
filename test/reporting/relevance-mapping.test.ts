import test from 'ava';
import { placement } from '../../src/imaging/resize.js';
import { placementMask, relevanceOnPicture } from '../../src/reporting/relevance-mapping.js';

test('at the placed size, the map reads back exactly the relevance of the image area', (t) => {
  const size = 8;
  const p = placement(4, 8, size, 'pad'); // 4 x 8 image: rows 2..5 of the square
  t.deepEqual(p, { rows: 4, columns: 8, top: 2, left: 0 });
  const values = new Float32Array(size * size).map((_, i) => i);
  const out = relevanceOnPicture({ values, size, placement: p }, 4, 8);
  t.deepEqual(Array.from(out), Array.from(values.subarray(16, 48)));
});

test('upsampling is bilinear between pixel centres and never reads the padding', (t) => {
  const size = 4;
  const p = { rows: 2, columns: 4, top: 1, left: 0 };
  const values = new Float32Array(size * size).fill(100); // padding rows hold 100
  values.set([0, 0, 0, 0], 4);
  values.set([8, 8, 8, 8], 8);
  const out = relevanceOnPicture({ values, size, placement: p }, 4, 4); // 2 square rows -> 4 picture rows
  const column0 = [0, 1, 2, 3].map((y) => out[y * 4] ?? NaN);
  // Picture row centres 0.5, 1.5, 2.5, 3.5 map to square rows 0.75, 1.25, 1.75, 2.25 within rows 1..2:
  // clamped at the ends, interpolated in between.
  t.deepEqual(column0, [0, 2, 6, 8]);
  t.true(
    out.every((v) => v <= 8),
    'the padding value 100 never appears',
  );
});

test('a point of relevance lands where the source pixel is, for pad and stretch placements', (t) => {
  for (const mode of ['pad', 'stretch'] as const) {
    const rows = 300;
    const columns = 200;
    const size = 60;
    const p = placement(rows, columns, size, mode);
    const values = new Float32Array(size * size);
    // The square pixel under source pixel (150, 50).
    const sy = Math.round(p.top + (150 + 0.5) * (p.rows / rows) - 0.5);
    const sx = Math.round(p.left + (50 + 0.5) * (p.columns / columns) - 0.5);
    values[sy * size + sx] = 1;
    const out = relevanceOnPicture({ values, size, placement: p }, rows, columns);
    let best = 0;
    for (let i = 1; i < out.length; i++) if ((out[i] ?? 0) > (out[best] ?? 0)) best = i;
    const [y, x] = [Math.floor(best / columns), best % columns];
    t.true(Math.abs(y - 150) <= 3 && Math.abs(x - 50) <= 3, `${mode}: peak at (${y}, ${x})`);
  }
});

test('the placement mask covers exactly the image area', (t) => {
  const mask = placementMask(4, { rows: 2, columns: 3, top: 1, left: 1 });
  t.deepEqual(Array.from(mask), [0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0]);
});
