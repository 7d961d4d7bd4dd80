// Antialiased resampling of a grey Float32 image, the way PIL's Image.resize(BILINEAR) does it (which is what
// torchvision's Resize applied to the training PNGs): a triangle filter whose support widens with the downsampling
// factor, so every source pixel contributes and fine patterns average out instead of aliasing. Separable: one
// horizontal pass, one vertical pass, with per-output-index weights computed once.

export type ResizeMode = 'pad' | 'stretch';

interface AxisWeights {
  /** First source index each output index reads. */
  start: Int32Array;
  /** Number of taps of each output index. */
  taps: Int32Array;
  /** Weights, `maxTaps` per output index, normalised to sum 1. */
  weights: Float64Array;
  maxTaps: number;
}

function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const filterScale = Math.max(1, scale);
  const support = filterScale; // triangle radius 1, stretched when downsampling
  const maxTaps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const taps = new Int32Array(outSize);
  const weights = new Float64Array(outSize * maxTaps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support + 0.5));
    const hi = Math.min(inSize, Math.floor(center + support + 0.5));
    let sum = 0;
    for (let k = 0; k < hi - lo; k++) {
      const w = Math.max(0, 1 - Math.abs((lo + k + 0.5 - center) / filterScale));
      weights[o * maxTaps + k] = w;
      sum += w;
    }
    if (sum > 0) for (let k = 0; k < hi - lo; k++) weights[o * maxTaps + k] = (weights[o * maxTaps + k] ?? 0) / sum;
    start[o] = lo;
    taps[o] = hi - lo;
  }
  return { start, taps, weights, maxTaps };
}

/** Resamples rows x columns to outRows x outColumns (antialiased when shrinking, bilinear when growing). */
export function resample(
  src: Float32Array,
  rows: number,
  columns: number,
  outRows: number,
  outColumns: number,
): Float32Array {
  const h = axisWeights(columns, outColumns);
  const v = axisWeights(rows, outRows);
  // Horizontal pass: rows x outColumns.
  const tmp = new Float32Array(rows * outColumns);
  for (let y = 0; y < rows; y++) {
    const rowBase = y * columns;
    const outBase = y * outColumns;
    for (let o = 0; o < outColumns; o++) {
      const s = rowBase + (h.start[o] ?? 0);
      const wBase = o * h.maxTaps;
      const n = h.taps[o] ?? 0;
      let acc = 0;
      for (let k = 0; k < n; k++) acc += (src[s + k] ?? 0) * (h.weights[wBase + k] ?? 0);
      tmp[outBase + o] = acc;
    }
  }
  // Vertical pass: row by row, accumulating whole rows so memory is read sequentially.
  const out = new Float32Array(outRows * outColumns);
  const acc = new Float64Array(outColumns);
  for (let o = 0; o < outRows; o++) {
    acc.fill(0);
    const s = v.start[o] ?? 0;
    const n = v.taps[o] ?? 0;
    for (let k = 0; k < n; k++) {
      const w = v.weights[o * v.maxTaps + k] ?? 0;
      const base = (s + k) * outColumns;
      for (let x = 0; x < outColumns; x++) acc[x] = (acc[x] ?? 0) + (tmp[base + x] ?? 0) * w;
    }
    out.set(acc, o * outColumns);
  }
  return out;
}

export interface Placement {
  /** Size of the resampled image inside the square. */
  rows: number;
  columns: number;
  /** Offset of its top-left corner. */
  top: number;
  left: number;
}

/** Where the image lands in a size x size square: fitted and centred (pad) or filling it (stretch). */
export function placement(rows: number, columns: number, size: number, mode: ResizeMode): Placement {
  if (mode === 'stretch') return { rows: size, columns: size, top: 0, left: 0 };
  const scale = size / Math.max(rows, columns);
  const r = Math.min(size, Math.max(1, Math.round(rows * scale)));
  const c = Math.min(size, Math.max(1, Math.round(columns * scale)));
  return { rows: r, columns: c, top: Math.floor((size - r) / 2), left: Math.floor((size - c) / 2) };
}

/** The image resized into a size x size square; in pad mode the border is `padValue`. */
export function resizeToSquare(
  src: Float32Array,
  rows: number,
  columns: number,
  size: number,
  mode: ResizeMode,
  padValue: number,
): Float32Array {
  const p = placement(rows, columns, size, mode);
  const inner = resample(src, rows, columns, p.rows, p.columns);
  if (p.rows === size && p.columns === size) return inner;
  const out = new Float32Array(size * size).fill(padValue);
  for (let y = 0; y < p.rows; y++)
    out.set(inner.subarray(y * p.columns, (y + 1) * p.columns), (p.top + y) * size + p.left);
  return out;
}
