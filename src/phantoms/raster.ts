// Raster primitives the anatomy is built from: filled polygons (hard masks), separable box blurs (soft edges and
// thickness profiles, O(pixels) whatever the radius), blobs and tubes with a radial profile (bounded to their own
// bounding box), and smooth value noise. All work at any image size; nothing here knows about anatomy.

import type { Point } from './geometry.js';

export interface Field {
  width: number;
  height: number;
  data: Float32Array;
}

export function createField(width: number, height: number): Field {
  return { width, height, data: new Float32Array(width * height) };
}

export function cloneField(field: Field): Field {
  return { width: field.width, height: field.height, data: new Float32Array(field.data) };
}

export type Combine = 'set' | 'add' | 'max';

const SUBSAMPLES = 4;

/**
 * Fills a polygon (even-odd rule) with `value`, antialiased: each pixel gets the fraction of its area inside (four
 * sub-scanlines, exact horizontal coverage), so outlines stay smooth at 128 pixels as at 4096. 'set' blends towards
 * `value` by the coverage; 'add' adds value x coverage; 'max' raises to it.
 */
export function fillPolygon(field: Field, points: readonly Point[], value = 1, combine: Combine = 'set'): void {
  const { width, height, data } = field;
  const n = points.length;
  if (n < 3) return;
  // Edges as flat coordinates (x0, y0, x1, y1), skipping horizontal ones.
  const edges = new Float64Array(n * 4);
  let edgeCount = 0;
  let minY = Infinity;
  let maxY = -Infinity;
  for (let e = 0; e < n; e++) {
    const a = points[e] ?? [0, 0];
    const b = points[(e + 1) % n] ?? [0, 0];
    if (a[1] < minY) minY = a[1];
    if (a[1] > maxY) maxY = a[1];
    if (a[1] === b[1]) continue;
    edges[edgeCount * 4] = a[0];
    edges[edgeCount * 4 + 1] = a[1];
    edges[edgeCount * 4 + 2] = b[0];
    edges[edgeCount * 4 + 3] = b[1];
    edgeCount++;
  }
  const y0 = Math.max(0, Math.floor(minY));
  const y1 = Math.min(height - 1, Math.floor(maxY));
  if (y1 < y0 || edgeCount < 2) return;
  // Edges bucketed by the pixel rows they cross (a counting sort into one flat array): a scanline only looks at
  // the few edges that can cut it.
  const rowsSpanned = y1 - y0 + 1;
  const start = new Int32Array(rowsSpanned + 1);
  const edgeTop = new Int32Array(edgeCount);
  const edgeBottom = new Int32Array(edgeCount);
  for (let e = 0; e < edgeCount; e++) {
    const ya = edges[e * 4 + 1] ?? 0;
    const yb = edges[e * 4 + 3] ?? 0;
    const top = Math.max(y0, Math.floor(Math.min(ya, yb)));
    const bottom = Math.min(y1, Math.floor(Math.max(ya, yb)));
    edgeTop[e] = top;
    edgeBottom[e] = bottom;
    for (let y = top; y <= bottom; y++) start[y - y0 + 1] = (start[y - y0 + 1] ?? 0) + 1;
  }
  for (let r = 0; r < rowsSpanned; r++) start[r + 1] = (start[r + 1] ?? 0) + (start[r] ?? 0);
  const bucket = new Int32Array(start[rowsSpanned] ?? 0);
  const fill = start.slice(0, rowsSpanned);
  for (let e = 0; e < edgeCount; e++) {
    for (let y = edgeTop[e] ?? 0; y <= (edgeBottom[e] ?? -1); y++) {
      const slot = fill[y - y0] ?? 0;
      bucket[slot] = e;
      fill[y - y0] = slot + 1;
    }
  }
  // Per row: partial coverage of the pixels where a span starts or ends, and a difference array for the pixels a
  // span covers fully (one prefix sum per row instead of touching every covered pixel four times).
  const coverage = new Float32Array(width + 1);
  const runs = new Float32Array(width + 1);
  const xs: number[] = [];
  const w = 1 / SUBSAMPLES;
  for (let y = y0; y <= y1; y++) {
    const from = start[y - y0] ?? 0;
    const to = start[y - y0 + 1] ?? 0;
    if (to - from < 2) continue;
    let lo = width;
    let hi = -1;
    for (let sub = 0; sub < SUBSAMPLES; sub++) {
      const sy = y + (sub + 0.5) / SUBSAMPLES;
      xs.length = 0;
      for (let k = from; k < to; k++) {
        const e = (bucket[k] ?? 0) * 4;
        const ax = edges[e] ?? 0;
        const ay = edges[e + 1] ?? 0;
        const bx = edges[e + 2] ?? 0;
        const by = edges[e + 3] ?? 0;
        if ((ay <= sy && by > sy) || (by <= sy && ay > sy)) xs.push(ax + ((sy - ay) / (by - ay)) * (bx - ax));
      }
      if (xs.length > 2) xs.sort((p, q) => p - q);
      else if (xs.length === 2 && (xs[0] ?? 0) > (xs[1] ?? 0)) xs.reverse();
      for (let k = 0; k + 1 < xs.length; k += 2) {
        const xa = Math.max(0, xs[k] ?? 0);
        const xb = Math.min(width, xs[k + 1] ?? 0);
        if (xb <= xa) continue;
        const ia = Math.floor(xa);
        const ib = Math.min(width - 1, Math.floor(xb));
        if (ia < lo) lo = ia;
        if (ib > hi) hi = ib;
        if (ia === ib) {
          coverage[ia] = (coverage[ia] ?? 0) + (xb - xa) * w;
          continue;
        }
        coverage[ia] = (coverage[ia] ?? 0) + (ia + 1 - xa) * w;
        runs[ia + 1] = (runs[ia + 1] ?? 0) + w;
        runs[ib] = (runs[ib] ?? 0) - w;
        coverage[ib] = (coverage[ib] ?? 0) + (xb - ib) * w;
      }
    }
    if (hi < lo) continue;
    const row = y * width;
    let run = 0;
    for (let x = lo; x <= hi; x++) {
      run += runs[x] ?? 0;
      runs[x] = 0;
      const c = Math.min(1, run + (coverage[x] ?? 0));
      coverage[x] = 0;
      if (c <= 1e-6) continue;
      const i = row + x;
      const old = data[i] ?? 0;
      if (combine === 'set') data[i] = old + (value - old) * c;
      else if (combine === 'add') data[i] = old + value * c;
      else if (value * c > old) data[i] = value * c;
    }
  }
}

/** One box-blur pass along each row, edges replicated. */
function boxRows(src: Float32Array, dst: Float32Array, width: number, height: number, radius: number): void {
  const norm = 1 / (2 * radius + 1);
  const last = width - 1;
  for (let y = 0; y < height; y++) {
    const base = y * width;
    let acc = (radius + 1) * (src[base] ?? 0);
    for (let k = 1; k <= radius; k++) acc += src[base + Math.min(k, last)] ?? 0;
    for (let x = 0; x < width; x++) {
      dst[base + x] = acc * norm;
      acc += (src[base + Math.min(x + radius + 1, last)] ?? 0) - (src[base + Math.max(x - radius, 0)] ?? 0);
    }
  }
}

/** One box-blur pass along each column, edges replicated; walks rows in order (one running sum per column). */
function boxColumns(src: Float32Array, dst: Float32Array, width: number, height: number, radius: number): void {
  const norm = 1 / (2 * radius + 1);
  const last = height - 1;
  const acc = new Float64Array(width);
  for (let k = -radius; k <= radius; k++) {
    const row = Math.min(Math.max(k, 0), last) * width;
    for (let x = 0; x < width; x++) acc[x] = (acc[x] ?? 0) + (src[row + x] ?? 0);
  }
  for (let y = 0; y < height; y++) {
    const out = y * width;
    const add = Math.min(y + radius + 1, last) * width;
    const sub = Math.max(y - radius, 0) * width;
    for (let x = 0; x < width; x++) {
      const a = acc[x] ?? 0;
      dst[out + x] = a * norm;
      acc[x] = a + (src[add + x] ?? 0) - (src[sub + x] ?? 0);
    }
  }
}

/**
 * Blurs in place with `passes` box passes per axis (3 passes approximate a Gaussian of sigma ~ radius). A radius
 * below half a pixel leaves the field as it is, so features keep their meaning at small image sizes. Wide radii
 * (thickness and depth profiles) go through a reduced-resolution copy: see blurWide().
 */
export function blur(field: Field, radius: number, passes = 2): void {
  if (radius >= WIDE_RADIUS) {
    blurWide(field, radius, passes);
    return;
  }
  blurExact(field, radius, passes);
}

/** From this radius on, blur() works on a reduced copy. */
const WIDE_RADIUS = 8;

function blurExact(field: Field, radius: number, passes: number): void {
  const r = Math.round(radius);
  if (r < 1) return;
  const { width, height } = field;
  const tmp = new Float32Array(field.data.length);
  for (let p = 0; p < passes; p++) {
    boxRows(field.data, tmp, width, height, r);
    boxColumns(tmp, field.data, width, height, r);
  }
}

/**
 * Like blur(), for wide radii: the field is averaged down by a factor that keeps the radius at about four pixels,
 * blurred there and bilinearly enlarged again. Thickness and depth profiles are smooth, so nothing visible is lost,
 * and the cost no longer grows with the image area times the number of passes.
 */
function blurWide(field: Field, radius: number, passes: number): void {
  const factor = Math.floor(radius / 4);
  if (factor < 2) {
    blurExact(field, radius, passes);
    return;
  }
  const { width, height, data } = field;
  const sw = Math.ceil(width / factor);
  const sh = Math.ceil(height / factor);
  const small = createField(sw, sh);
  const cell = new Int32Array(width);
  for (let x = 0; x < width; x++) cell[x] = Math.floor(x / factor);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / factor) * sw;
    const src = y * width;
    for (let x = 0; x < width; x++) {
      const j = row + (cell[x] ?? 0);
      small.data[j] = (small.data[j] ?? 0) + (data[src + x] ?? 0);
    }
  }
  // Cells cut by the right or bottom edge average only the pixels they hold.
  for (let sy = 0; sy < sh; sy++) {
    const ch = Math.min(factor, height - sy * factor);
    for (let sx = 0; sx < sw; sx++) {
      const cw = Math.min(factor, width - sx * factor);
      small.data[sy * sw + sx] = (small.data[sy * sw + sx] ?? 0) / (cw * ch);
    }
  }
  blurExact(small, radius / factor, passes);
  // Bilinear enlargement, with the horizontal taps computed once.
  const axis = (size: number, n: number): { i0: Int32Array; i1: Int32Array; t: Float32Array } => {
    const i0 = new Int32Array(size);
    const i1 = new Int32Array(size);
    const t = new Float32Array(size);
    for (let k = 0; k < size; k++) {
      const f = Math.min(n - 1, Math.max(0, (k + 0.5) / factor - 0.5));
      const a = Math.floor(f);
      i0[k] = a;
      i1[k] = Math.min(n - 1, a + 1);
      t[k] = f - a;
    }
    return { i0, i1, t };
  };
  const ax = axis(width, sw);
  const ay = axis(height, sh);
  const top = new Float32Array(sw);
  for (let y = 0; y < height; y++) {
    const r0 = (ay.i0[y] ?? 0) * sw;
    const r1 = (ay.i1[y] ?? 0) * sw;
    const ty = ay.t[y] ?? 0;
    for (let sx = 0; sx < sw; sx++) {
      const a = small.data[r0 + sx] ?? 0;
      top[sx] = a + ((small.data[r1 + sx] ?? 0) - a) * ty;
    }
    const out = y * width;
    for (let x = 0; x < width; x++) {
      const a = top[ax.i0[x] ?? 0] ?? 0;
      data[out + x] = a + ((top[ax.i1[x] ?? 0] ?? 0) - a) * (ax.t[x] ?? 0);
    }
  }
}

/** Radial profiles: s is the distance from the centre (line) over the radius, in [0, 1). */
export const Profile = {
  /** Path length through a cylinder or sphere: how soft tissue and organs project. */
  cylinder: (s: number): number => Math.sqrt(1 - s * s),
  /** Compactly supported soft bump: exactly 0 at s = 1, so a blob touches nothing outside its radius. */
  soft: (s: number): number => (1 - s * s) * (1 - s * s),
  /** Like soft, but nearly flat over the inner half: an opacity that is dense throughout with a soft margin. */
  plateau: (s: number): number => {
    const s4 = s * s * s * s;
    return (1 - s4) * (1 - s4);
  },
  /** A hollow tube seen from the side (cortical bone): brighter at the edges than in the middle. */
  cortex: (s: number): number => Math.sqrt(1 - s * s) - (s < 0.62 ? 0.55 * Math.sqrt(1 - (s / 0.62) ** 2) : 0),
  flat: (): number => 1,
} as const;

export type RadialProfile = (s: number) => number;

/** Adds (or, with combine 'max', raises to) amplitude * profile over a rotated ellipse (pixel units). */
export function addEllipse(
  field: Field,
  cx: number,
  cy: number,
  rx: number,
  ry: number,
  angle: number,
  amplitude: number,
  profile: RadialProfile,
  combine: 'add' | 'max' = 'add',
): void {
  const { width, height, data } = field;
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const ext = Math.max(rx, ry);
  const x0 = Math.max(0, Math.floor(cx - ext));
  const x1 = Math.min(width - 1, Math.ceil(cx + ext));
  const y0 = Math.max(0, Math.floor(cy - ext));
  const y1 = Math.min(height - 1, Math.ceil(cy + ext));
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      const a = (dx * c + dy * s) / rx;
      const b = (-dx * s + dy * c) / ry;
      const d2 = a * a + b * b;
      if (d2 < 1) {
        const i = y * width + x;
        const v = amplitude * profile(Math.sqrt(d2));
        if (combine === 'add') data[i] = (data[i] ?? 0) + v;
        else if (v > (data[i] ?? 0)) data[i] = v;
      }
    }
  }
}

/** Adds amplitude * profile(distance / radius) around the segment p0-p1, the radius going from r0 to r1. */
export function addTube(
  field: Field,
  p0: Point,
  p1: Point,
  r0: number,
  r1: number,
  amplitude: number,
  profile: RadialProfile,
  combine: 'add' | 'max' = 'add',
): void {
  const { width, height, data } = field;
  const rMax = Math.max(r0, r1);
  const x0 = Math.max(0, Math.floor(Math.min(p0[0], p1[0]) - rMax));
  const x1 = Math.min(width - 1, Math.ceil(Math.max(p0[0], p1[0]) + rMax));
  const y0 = Math.max(0, Math.floor(Math.min(p0[1], p1[1]) - rMax));
  const y1 = Math.min(height - 1, Math.ceil(Math.max(p0[1], p1[1]) + rMax));
  const ex = p1[0] - p0[0];
  const ey = p1[1] - p0[1];
  const len2 = ex * ex + ey * ey || 1;
  for (let y = y0; y <= y1; y++) {
    const py = y + 0.5 - p0[1];
    for (let x = x0; x <= x1; x++) {
      const px = x + 0.5 - p0[0];
      const t = Math.min(1, Math.max(0, (px * ex + py * ey) / len2));
      const dx = px - t * ex;
      const dy = py - t * ey;
      const r = r0 + (r1 - r0) * t;
      const d2 = (dx * dx + dy * dy) / (r * r);
      if (d2 < 1) {
        const i = y * width + x;
        const v = amplitude * profile(Math.sqrt(d2));
        if (combine === 'add') data[i] = (data[i] ?? 0) + v;
        else if (v > (data[i] ?? 0)) data[i] = v;
      }
    }
  }
}

/**
 * Smooth value noise in [0, 1]: random values on a grid of `cell` pixels, interpolated with smoothstep weights.
 * `next` supplies the grid values (a seeded stream), so the texture is deterministic.
 */
export function valueNoise(width: number, height: number, cell: number, next: () => number): Float32Array {
  const c = Math.max(1, cell);
  const gw = Math.ceil(width / c) + 2;
  const gh = Math.ceil(height / c) + 2;
  const grid = new Float32Array(gw * gh);
  for (let i = 0; i < grid.length; i++) grid[i] = next();
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const gy = y / c;
    const iy = Math.floor(gy);
    let fy = gy - iy;
    fy = fy * fy * (3 - 2 * fy);
    for (let x = 0; x < width; x++) {
      const gx = x / c;
      const ix = Math.floor(gx);
      let fx = gx - ix;
      fx = fx * fx * (3 - 2 * fx);
      const g = iy * gw + ix;
      const top = (grid[g] ?? 0) + ((grid[g + 1] ?? 0) - (grid[g] ?? 0)) * fx;
      const bottom = (grid[g + gw] ?? 0) + ((grid[g + gw + 1] ?? 0) - (grid[g + gw] ?? 0)) * fx;
      out[y * width + x] = top + (bottom - top) * fy;
    }
  }
  return out;
}

export function addScaled(target: Field, source: Field, k: number): void {
  const t = target.data;
  const s = source.data;
  for (let i = 0; i < t.length; i++) t[i] = (t[i] ?? 0) + k * (s[i] ?? 0);
}

/**
 * The projected thickness of solid outlines (a body, a limb): 0 outside, `rim` at the skin line (the step that makes
 * a skin line visible), rising to 1 a `radius` inside, like the path length through a rounded solid.
 */
export function thickness(
  width: number,
  height: number,
  outlines: ReadonlyArray<readonly Point[]>,
  radius: number,
  rim: number,
): Field {
  const mask = createField(width, height);
  for (const outline of outlines) fillPolygon(mask, outline, 1);
  const inner = cloneField(mask);
  blur(inner, radius, 2);
  for (let i = 0; i < mask.data.length; i++) {
    const m = mask.data[i] ?? 0;
    if (m > 0) mask.data[i] = m * (rim + (1 - rim) * Math.min(1, Math.max(0, ((inner.data[i] ?? 0) - 0.5) * 2.2)));
  }
  blur(mask, radius * 0.04, 1);
  return mask;
}
