// Modality values -> display values in [0, 1], with bright = dense for both photometric interpretations, which is
// how the chest X-ray PNGs the model was trained on look. The window is the file's own VOI (VOI LUT Sequence, else
// Window Center/Width, PS3.3 C.11.2) or, when there is none or the manifest asks for it, a robust percentile window
// computed over body pixels only (padding would otherwise drag the low percentile to the padding value).

import type { DecodedImage, VoiWindow } from './decoded-image.js';
import { lookup, type Lut } from './lut.js';
import { percentiles } from './percentile.js';

/** `bits-stored`: no window, the stored values over their whole range (the manifest's `scaling: 'bitsStored'`). */
export type WindowSource = 'voi-lut' | 'window' | 'percentile' | 'bits-stored';

export interface AppliedWindow {
  center: number;
  width: number;
  source: WindowSource;
}

export interface VoiOptions {
  /** `dicom`: the file's VOI when it has one, else percentile; `percentile`: always percentile. */
  window: 'dicom' | 'percentile';
  /** Lower and upper percentile (0..100) of the robust window. */
  percentiles: readonly [number, number];
  /** Output value for padding pixels (the same value the resize uses for its border). */
  padValue: number;
}

export interface Windowed {
  /** rows x columns display values in [0, 1], row-major. */
  pixels: Float32Array;
  window: AppliedWindow;
}

export function applyVoi(image: DecodedImage, options: VoiOptions): Windowed {
  const { values } = image;
  const out = new Float32Array(values.length);
  const voi = options.window === 'dicom' ? image.voi : undefined;
  let window: AppliedWindow;
  if (voi?.kind === 'lut') {
    applyLut(values, voi.lut, out);
    // The LUT's input domain, reported as a window so logs read the same whatever the VOI was.
    window = {
      center: voi.lut.firstMapped + (voi.lut.data.length - 1) / 2,
      width: voi.lut.data.length,
      source: 'voi-lut',
    };
  } else if (voi?.kind === 'window') {
    applyWindow(values, voi, out);
    window = { center: voi.center, width: voi.width, source: 'window' };
  } else {
    const [lo = 0, hi = 0] = robustRange(image, options.percentiles);
    applyWindow(values, { kind: 'window', center: (lo + hi) / 2, width: hi - lo, fn: 'LINEAR_EXACT' }, out);
    window = { center: (lo + hi) / 2, width: hi - lo, source: 'percentile' };
  }
  finishDisplay(image, out, options.padValue);
  return { pixels: out, window };
}

/**
 * What every mapping to [0, 1] ends with, in place: MONOCHROME1 inverted (bright = dense), then the padding
 * pixels set to the padding value.
 */
export function finishDisplay(
  image: Pick<DecodedImage, 'photometric' | 'padding'>,
  out: Float32Array,
  padValue: number,
): void {
  if (image.photometric === 'MONOCHROME1') for (let i = 0; i < out.length; i++) out[i] = 1 - (out[i] ?? 0);
  if (image.padding) for (let i = 0; i < out.length; i++) if (image.padding[i]) out[i] = padValue;
}

/**
 * The [low, high] percentiles of the non-padding modality values (of all values when every pixel is padding, so
 * that a degenerate image still yields a defined window).
 */
export function robustRange(
  image: Pick<DecodedImage, 'values' | 'padding'>,
  qs: readonly [number, number],
): [number, number] {
  let [lo, hi] = percentiles(image.values, image.padding, qs);
  if (lo === undefined || hi === undefined || Number.isNaN(lo) || Number.isNaN(hi)) {
    [lo, hi] = percentiles(image.values, undefined, qs);
  }
  return [lo ?? 0, hi ?? 0];
}

/** PS3.3 C.11.2.1.2 (LINEAR), C.11.2.1.3.1 (SIGMOID), C.11.2.1.3.2 (LINEAR_EXACT), output range [0, 1]. */
export function applyWindow(values: Float32Array, w: VoiWindow, out: Float32Array): void {
  const c = w.center;
  const width = w.width;
  const n = values.length;
  if (w.fn === 'SIGMOID') {
    for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp((-4 * ((values[i] ?? 0) - c)) / width));
    return;
  }
  let below: number;
  let above: number;
  let offset: number;
  let scale: number;
  if (w.fn === 'LINEAR_EXACT') {
    below = c - width / 2;
    above = c + width / 2;
    offset = c - width / 2;
    scale = width > 0 ? 1 / width : 0;
  } else {
    // The "- 0.5" and "width - 1" place integer pixel values at the centres of the output steps.
    below = c - 0.5 - (width - 1) / 2;
    above = c - 0.5 + (width - 1) / 2;
    offset = below;
    scale = width > 1 ? 1 / (width - 1) : 0;
  }
  for (let i = 0; i < n; i++) {
    const x = values[i] ?? 0;
    out[i] = x <= below ? 0 : x > above ? 1 : (x - offset) * scale;
  }
}

function applyLut(values: Float32Array, lut: Lut, out: Float32Array): void {
  const max = 2 ** lut.bits - 1;
  for (let i = 0; i < values.length; i++) out[i] = lookup(lut, values[i] ?? 0) / max;
}
