// Brings a relevance map from the model's input square back onto the picture we draw. The square holds the
// source image resized into it (preprocessing `placement`: fitted and centred for 'pad', filling it for
// 'stretch'); the picture is the source image, possibly scaled down to the output size cap. A picture pixel's
// centre is mapped into the square through the source, and the relevance there is read bilinearly from the
// four nearest square pixels, clamped to the part of the square the image occupies so padding never bleeds in.

import type { Placement } from '../imaging/resize.js';

/** A relevance map at model input resolution and where the source image sits in it. */
export interface RelevanceMap {
  /** size x size values, row-major: relevance of each model input pixel (summed over channels). */
  values: Float32Array;
  size: number;
  /** Where the source image was placed in the square by preprocessing. */
  placement: Placement;
}

interface AxisTaps {
  /** Lower and upper neighbour index in the square, and the weight of the upper one. */
  lo: Int32Array;
  hi: Int32Array;
  w: Float32Array;
}

/** Bilinear taps along one axis: picture index -> square coordinate, within [offset, offset + extent - 1]. */
function axisTaps(pictureSize: number, offset: number, extent: number): AxisTaps {
  const lo = new Int32Array(pictureSize);
  const hi = new Int32Array(pictureSize);
  const w = new Float32Array(pictureSize);
  const scale = extent / pictureSize;
  const last = offset + extent - 1;
  for (let i = 0; i < pictureSize; i++) {
    // Pixel centres: centre of picture pixel i lands at (i + 0.5) * scale in the placed image, whose pixel
    // centres sit at k + 0.5.
    let u = offset + (i + 0.5) * scale - 0.5;
    if (u < offset) u = offset;
    if (u > last) u = last;
    const k = Math.floor(u);
    lo[i] = k;
    hi[i] = Math.min(k + 1, last);
    w[i] = u - k;
  }
  return { lo, hi, w };
}

/**
 * The relevance at every pixel of a rows x columns picture of the whole source image (any size: the source's
 * own, or scaled down), bilinearly interpolated.
 */
export function relevanceOnPicture(map: RelevanceMap, rows: number, columns: number): Float32Array {
  const { values, size, placement: p } = map;
  const xs = axisTaps(columns, p.left, p.columns);
  const ys = axisTaps(rows, p.top, p.rows);
  const out = new Float32Array(rows * columns);
  // Interpolate each needed pair of square rows horizontally once per picture row, then vertically.
  const upper = new Float32Array(columns);
  const lower = new Float32Array(columns);
  for (let y = 0; y < rows; y++) {
    const r0 = (ys.lo[y] ?? 0) * size;
    const r1 = (ys.hi[y] ?? 0) * size;
    const wy = ys.w[y] ?? 0;
    for (let x = 0; x < columns; x++) {
      const x0 = xs.lo[x] ?? 0;
      const x1 = xs.hi[x] ?? 0;
      const wx = xs.w[x] ?? 0;
      const a0 = values[r0 + x0] ?? 0;
      const a1 = values[r0 + x1] ?? 0;
      const b0 = values[r1 + x0] ?? 0;
      const b1 = values[r1 + x1] ?? 0;
      upper[x] = a0 + (a1 - a0) * wx;
      lower[x] = b0 + (b1 - b0) * wx;
    }
    const base = y * columns;
    for (let x = 0; x < columns; x++) {
      const u = upper[x] ?? 0;
      out[base + x] = u + ((lower[x] ?? 0) - u) * wy;
    }
  }
  return out;
}

/** 1 for the square pixels the image occupies, 0 for preprocessing padding. */
export function placementMask(size: number, p: Placement): Uint8Array {
  const mask = new Uint8Array(size * size);
  for (let y = p.top; y < p.top + p.rows && y < size; y++)
    mask.fill(1, y * size + p.left, y * size + Math.min(size, p.left + p.columns));
  return mask;
}
