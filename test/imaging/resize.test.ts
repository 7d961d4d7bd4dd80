// Specification of the resize stage: antialiased (PIL-equivalent bilinear) resampling, `pad` fits and centres with
// the pad value, `stretch` fills the square.

import test from 'ava';
import { placement, resample, resizeToSquare } from '../../src/imaging/resize.js';

function constant(n: number, v: number): Float32Array {
  return new Float32Array(n).fill(v);
}

function maxAbs(a: Float32Array, v: number): number {
  return a.reduce((m, x) => Math.max(m, Math.abs(x - v)), 0);
}

test('a constant image stays constant, shrinking or growing, in both modes', (t) => {
  for (const [rows, columns] of [
    [250, 204],
    [37, 53],
    [7, 3],
    [1, 1],
  ] as const) {
    for (const size of [224, 16]) {
      t.true(maxAbs(resizeToSquare(constant(rows * columns, 0.3), rows, columns, size, 'stretch', 0), 0.3) < 1e-6);
      const p = placement(rows, columns, size, 'pad');
      const padded = resizeToSquare(constant(rows * columns, 0.3), rows, columns, size, 'pad', 0.3);
      t.true(maxAbs(padded, 0.3) < 1e-6, `${rows}x${columns} -> ${size} (${p.rows}x${p.columns})`);
    }
  }
});

test('a downsampled 1-pixel checkerboard averages to grey (antialiasing), where point sampling would alias', (t) => {
  const n = 512;
  const board = new Float32Array(n * n);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) board[y * n + x] = (x + y) % 2;
  const out = resample(board, n, n, 64, 64);
  t.true(maxAbs(out, 0.5) < 0.01, `max deviation ${maxAbs(out, 0.5)}`);
  // Point sampling every 8th pixel would give a constant 0 or 1 (pure aliasing).
  t.is(board[0], 0);
  t.is(board[8 * n + 8], 0);
  // Also for a non-integer factor, and rectangular.
  t.true(maxAbs(resample(board, n, n, 61, 45), 0.5) < 0.02);
});

test('equals PIL Image.resize(BILINEAR) on a float image (reference values from Pillow 9.4)', (t) => {
  // Source 9 x 13, pixel i = ((37 i) mod 101) / 100; resized to 4 x 5 by PIL in mode 'F'.
  const src = Float32Array.from({ length: 9 * 13 }, (_, i) => ((i * 37) % 101) / 100);
  const pil = [
    0.4420571327, 0.5288830995, 0.5716897845, 0.4816536903, 0.4374857246, 0.4537398517, 0.5029342174, 0.5173798203,
    0.5488026738, 0.535739839, 0.5144227743, 0.5028529167, 0.435888499, 0.5106503963, 0.5151301026, 0.478057146,
    0.4748138487, 0.5211184024, 0.440701276, 0.4590571522,
  ];
  const out = resample(src, 9, 13, 4, 5);
  pil.forEach((v, i) => t.true(Math.abs((out[i] ?? NaN) - v) < 1e-6, `pixel ${i}: ${out[i]} vs ${v}`));
});

test('pad keeps the aspect ratio and centres the image; the border is the pad value', (t) => {
  // A portrait detector image, 2500 x 2048, into 224: 224 rows, round(2048 * 224 / 2500) = 184 columns, 20 each side.
  t.deepEqual(placement(2500, 2048, 224, 'pad'), { rows: 224, columns: 184, top: 0, left: 20 });
  // Landscape 20 x 80 into 32: 8 rows at row 12.
  const p = placement(20, 80, 32, 'pad');
  t.deepEqual(p, { rows: 8, columns: 32, top: 12, left: 0 });
  const out = resizeToSquare(constant(20 * 80, 1), 20, 80, 32, 'pad', 0.2);
  for (let y = 0; y < 32; y++) {
    const inside = y >= 12 && y < 20;
    const row = out.subarray(y * 32, (y + 1) * 32);
    t.true(maxAbs(row, inside ? 1 : 0.2) < 1e-6, `row ${y}`);
  }
  // Centring with an odd margin: 3 x 10 into 8 -> 2 rows (round 2.4) at row 3.
  t.deepEqual(placement(3, 10, 8, 'pad'), { rows: 2, columns: 8, top: 3, left: 0 });
});

test('pad preserves left/right and top/bottom (no flip, no transpose)', (t) => {
  // 40 x 80 ramp rising to the right, bright band in the top rows.
  const rows = 40;
  const columns = 80;
  const src = new Float32Array(rows * columns);
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < columns; x++) src[y * columns + x] = (x / (columns - 1)) * 0.5 + (y < 10 ? 0.5 : 0);
  const out = resizeToSquare(src, rows, columns, 16, 'pad', 0);
  // Image occupies rows 4..11.
  const at = (y: number, x: number): number => out[y * 16 + x] ?? NaN;
  t.true(at(8, 15) > at(8, 0), 'ramp rises to the right');
  t.true(at(4, 8) > at(11, 8), 'band at the top');
});

test('stretch fills the square whatever the aspect', (t) => {
  const out = resizeToSquare(constant(20 * 80, 0.7), 20, 80, 32, 'stretch', 0);
  t.true(maxAbs(out, 0.7) < 1e-6);
  t.deepEqual(placement(20, 80, 32, 'stretch'), { rows: 32, columns: 32, top: 0, left: 0 });
});
