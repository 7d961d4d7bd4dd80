// Density -> stored pixel values, the way a digital radiography system would deliver them: a processing curve
// (gain, offset, gamma) that differs between exposures and vendors, quantum noise that grows where fewer photons
// arrive (dense regions) and shrinks with larger pixels, the heel effect, optional collimation (unexposed borders
// are white), the bit depth (12..16 bits stored), and MONOCHROME1 inversion last. The window written to the file
// covers the body, and the mapping never looks at the image content: adding a finding changes only its pixels.

import type { Field } from './raster.js';
import { createRandom, type Random } from './random.js';

export type Photometric = 'MONOCHROME1' | 'MONOCHROME2';

export interface VoiWindowValues {
  center: number;
  width: number;
  fn: 'LINEAR' | 'SIGMOID';
}

export interface Exposure {
  bitsStored: number;
  photometric: Photometric;
  offset: number;
  gain: number;
  gamma: number;
  /** Quantum noise scale in density units for this image's pixel size (grows with density, see expose()). */
  noise: number;
  /** Density change from the top to the bottom of the image (anode heel effect). */
  heel: number;
  /** Window in stored values (already inverted for MONOCHROME1). */
  window: VoiWindowValues;
  /** Tube voltage (kVp) and exposure (mAs) the noise level corresponds to, for the DICOM header. */
  kvp: number;
  mas: number;
}

/** Density of an unexposed (collimated) border: brighter than any anatomy. */
const COLLIMATED = 1.3;

export function drawExposure(
  r: Random,
  bitsStored: number,
  photometric: Photometric,
  rows: number,
  columns: number,
  portable: boolean,
): Exposure {
  const maxValue = 2 ** bitsStored - 1;
  const gain = (maxValue * r.uniform(0.5, 0.78)) / 1.35;
  const offset = maxValue * r.uniform(0.02, 0.12);
  const mas = portable ? r.uniform(1.2, 3.2) : r.uniform(1.5, 5);
  // Quantum noise: sigma ~ 1/sqrt(photons per pixel); pixels of a 1024-pixel image of a 43 cm detector are the
  // reference, a smaller rendering of the same detector has bigger pixels and proportionally less noise.
  const noise = (0.02 / Math.sqrt(mas)) * (Math.max(rows, columns) / 1024);
  const center = offset + gain * r.uniform(0.46, 0.56);
  const width = gain * r.uniform(0.95, 1.2);
  return {
    bitsStored,
    photometric,
    offset,
    gain,
    gamma: r.uniform(0.85, 1.15),
    noise,
    heel: r.uniform(-0.04, 0.04),
    window: {
      center: Math.round(photometric === 'MONOCHROME1' ? maxValue - center : center),
      width: Math.round(width),
      fn: r.chance(0.15) ? 'SIGMOID' : 'LINEAR',
    },
    kvp: portable ? Math.round(r.uniform(80, 95)) : Math.round(r.uniform(110, 125)),
    mas: Math.round(mas * 10) / 10,
  };
}

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Collimator blades: with some probability, borders of up to 7% of the image outside `keep` (the lungs' bounding box
 * plus a margin) become unexposed. Returns the exposed area (inclusive pixel bounds), or undefined when the whole
 * image was exposed.
 */
export function drawCollimation(r: Random, rows: number, columns: number, keep: Box | undefined): Box | undefined {
  if (!r.chance(0.4)) return undefined;
  const side = (limit: number, size: number): number =>
    Math.max(0, Math.min(Math.floor(size * r.uniform(0, 0.07)), Math.floor(limit)));
  const margin = 0.03 * Math.max(rows, columns);
  const k = keep ?? { x0: columns / 2, y0: rows / 2, x1: columns / 2, y1: rows / 2 };
  return {
    x0: side(k.x0 - margin, columns),
    y0: side(k.y0 - margin, rows),
    x1: columns - 1 - side(columns - 1 - k.x1 - margin, columns),
    y1: rows - 1 - side(rows - 1 - k.y1 - margin, rows),
  };
}

/**
 * The exposed image in MONOCHROME2 sense (higher = more attenuation), stored-value units, before any burned-in text
 * and before MONOCHROME1 inversion. `noise` must be a stream used for nothing else (it is consumed per pixel).
 */
/**
 * 65536 standard normal samples (Box-Muller from a fixed stream), indexed per pixel by one draw of the noise stream:
 * one random number per pixel instead of a logarithm, a square root and a cosine, with no visible difference.
 */
let gaussianTable: Float32Array | undefined;

function gaussians(): Float32Array {
  if (gaussianTable) return gaussianTable;
  const r = createRandom(0x9a55, 'gaussian-table');
  const table = new Float32Array(65536);
  for (let i = 0; i < table.length; i++) table[i] = r.normal();
  gaussianTable = table;
  return table;
}

export function expose(density: Field, e: Exposure, collimation: Box | undefined, noise: Random): Float32Array {
  const normals = gaussians();
  const { width, height, data } = density;
  const maxValue = 2 ** e.bitsStored - 1;
  const out = new Float32Array(width * height);
  // The processing curve and the noise level depend on density alone: tabulated once (linear interpolation between
  // LUT_STEPS points per density unit) instead of a pow() and an exp() per pixel.
  const size = Math.ceil(LUT_MAX * LUT_STEPS) + 2;
  const curve = new Float64Array(size);
  const sigma = new Float64Array(size);
  for (let k = 0; k < size; k++) {
    const d = k / LUT_STEPS;
    curve[k] = e.offset + e.gain * d ** e.gamma;
    // Fewer photons reach the detector behind dense tissue: relative noise grows with density.
    sigma[k] = e.gain * e.noise * (0.5 + Math.exp(1.2 * (d - 0.5)));
  }
  for (let y = 0; y < height; y++) {
    const heel = e.heel * (y / Math.max(1, height - 1) - 0.5);
    const rowCollimated = collimation !== undefined && (y < collimation.y0 || y > collimation.y1);
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const collimated = rowCollimated || (collimation !== undefined && (x < collimation.x0 || x > collimation.x1));
      const d = collimated ? COLLIMATED : Math.min(LUT_MAX, Math.max(0, (data[i] ?? 0) + heel));
      const p = d * LUT_STEPS;
      const k = Math.floor(p);
      const f = p - k;
      const c0 = curve[k] ?? 0;
      const s0 = sigma[k] ?? 0;
      const g = normals[Math.floor(noise.next() * 65536)] ?? 0;
      const v = c0 + ((curve[k + 1] ?? c0) - c0) * f + (s0 + ((sigma[k + 1] ?? s0) - s0) * f) * g;
      out[i] = v < 0 ? 0 : v > maxValue ? maxValue : v;
    }
  }
  return out;
}

/** Densities above this are clipped (nothing in a phantom gets near it). */
const LUT_MAX = 3;
const LUT_STEPS = 1024;

/** Rounds to stored values, inverting for MONOCHROME1 (same appearance once the Presentation LUT is INVERSE). */
export function toStored(values: Float32Array, e: Exposure): Uint16Array {
  const maxValue = 2 ** e.bitsStored - 1;
  const out = new Uint16Array(values.length);
  const invert = e.photometric === 'MONOCHROME1';
  for (let i = 0; i < values.length; i++) {
    const v = Math.round(values[i] ?? 0);
    const c = v < 0 ? 0 : v > maxValue ? maxValue : v;
    out[i] = invert ? maxValue - c : c;
  }
  return out;
}

/** The display value (MONOCHROME2 sense) at the top of the window: what burned-in text is drawn with. */
export function whiteLevel(e: Exposure): number {
  const maxValue = 2 ** e.bitsStored - 1;
  const center = e.photometric === 'MONOCHROME1' ? maxValue - e.window.center : e.window.center;
  return Math.min(maxValue, Math.round(center + 0.55 * e.window.width));
}
