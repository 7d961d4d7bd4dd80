// The diverging colour scale of the heatmaps: red = evidence for the explained class, blue = evidence against,
// symmetric around zero. Values near zero are fully transparent so that the anatomy under weak relevance stays
// visible; opacity then rises smoothly with |relevance|. The scale is robust: the 99.5th percentile of |R| maps
// to full colour, so a handful of extreme pixels (LRP maps often have some) cannot wash the rest of the map out.

import { percentiles } from '../imaging/percentile.js';

export interface ColormapOptions {
  /** Opacity of full-scale relevance (0..1). */
  maxAlpha: number;
  /** |v| (relevance / scale) at or below which nothing is drawn. */
  transparentBelow: number;
  /** |v| from which the colour is drawn at maxAlpha. */
  opaqueFrom: number;
}

export const DEFAULT_COLORMAP: ColormapOptions = { maxAlpha: 0.75, transparentBelow: 0.1, opaqueFrom: 0.7 };

/** Entries of the lookup table; odd, so that the middle entry is exactly zero. */
export const LUT_SIZE = 511;
const HALF = (LUT_SIZE - 1) / 2;

/** Colour at weak and at full relevance, per sign. Saturated hues stay readable over any grey. */
const FOR_WEAK = [255, 96, 80] as const;
const FOR_FULL = [215, 0, 0] as const;
const AGAINST_WEAK = [80, 150, 255] as const;
const AGAINST_FULL = [0, 60, 230] as const;

/**
 * RGBA entries (alpha 0..255) for v from -1 to +1: entry i stands for v = (i - 255) / 255.
 * Build it once per render; lutIndex() finds the entry of a value.
 */
export function divergingLut(options: ColormapOptions = DEFAULT_COLORMAP): Uint8Array {
  const lut = new Uint8Array(LUT_SIZE * 4);
  for (let i = 0; i < LUT_SIZE; i++) {
    const v = (i - HALF) / HALF;
    const t = Math.abs(v);
    const [weak, full] = v >= 0 ? [FOR_WEAK, FOR_FULL] : [AGAINST_WEAK, AGAINST_FULL];
    for (let c = 0; c < 3; c++) {
      const from = weak[c] ?? 0;
      lut[i * 4 + c] = Math.round(from + ((full[c] ?? 0) - from) * t);
    }
    lut[i * 4 + 3] = Math.round(255 * options.maxAlpha * smoothstep(options.transparentBelow, options.opaqueFrom, t));
  }
  return lut;
}

/** LUT entry of relevance r on a scale where `inverseScale` = 1 / (relevance of full colour). */
export function lutIndex(r: number, inverseScale: number): number {
  return lutIndexOfScaled(r * inverseScale * HALF);
}

/**
 * LUT entry of t = v * HALF (v = relevance / scale). Rounds |t| so that +v and -v get mirrored entries (plain
 * Math.round rounds halves up, which would make the scale slightly asymmetric).
 */
export function lutIndexOfScaled(t: number): number {
  const m = t < 0 ? -t : t;
  const k = m >= HALF ? HALF : (m + 0.5) | 0;
  return t < 0 ? HALF - k : HALF + k;
}

/**
 * Robust full-colour scale of a relevance map: the `percentile`th percentile of |R| over the pixels where
 * `region` is 1 (all pixels when it is undefined). 0 when the map is zero there (nothing to draw).
 */
export function relevanceScale(relevance: Float32Array, region?: Uint8Array, percentile = 99.5): number {
  const magnitudes = new Float32Array(relevance.length);
  for (let i = 0; i < relevance.length; i++) magnitudes[i] = Math.abs(relevance[i] ?? 0);
  // percentiles() takes an exclusion mask: 1 = skip.
  let exclude: Uint8Array | undefined;
  if (region) {
    exclude = new Uint8Array(region.length);
    for (let i = 0; i < region.length; i++) exclude[i] = region[i] ? 0 : 1;
  }
  const [q] = percentiles(magnitudes, exclude, [percentile]);
  return q !== undefined && Number.isFinite(q) && q > 0 ? q : 0;
}

function smoothstep(edge0: number, edge1: number, x: number): number {
  if (edge1 <= edge0) return x > edge0 ? 1 : 0;
  const t = Math.min(1, Math.max(0, (x - edge0) / (edge1 - edge0)));
  return t * t * (3 - 2 * t);
}
