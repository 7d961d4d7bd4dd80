// Decoded image -> model input, following the manifest's preprocessing block (preprocessing-spec.ts):
// VOI window (or the Bits Stored range) and MONOCHROME1 inversion -> resize into the square -> channels -> (x - mean) / std.

import type { PreprocessingSpec } from './preprocessing-spec.js';
import type { DecodedImage } from './decoded-image.js';
import { PixelDecodeError } from './pixel-errors.js';
import { resizeToSquare } from './resize.js';
import { scaleByBitsStored } from './bits-stored.js';
import { applyVoi, type AppliedWindow } from './voi.js';

export interface ModelInput {
  /** One image, NHWC without the N: inputSize * inputSize * channels values, channels interleaved. */
  data: Float32Array;
  shape: [height: number, width: number, channels: number];
  /** The window that mapped modality values to [0, 1], for logs and for the explanation overlay. */
  window: AppliedWindow;
}

export function preprocess(image: DecodedImage, spec: PreprocessingSpec): ModelInput {
  const channels = spec.channels;
  const mean = perChannel(spec.mean, channels, 'mean');
  const std = perChannel(spec.std, channels, 'std');
  const { pixels, window } =
    spec.scaling === 'bitsStored'
      ? scaleByBitsStored(image, spec.padValue)
      : applyVoi(image, { window: spec.window, percentiles: spec.percentiles, padValue: spec.padValue });
  const size = spec.inputSize;
  const grey = resizeToSquare(pixels, image.rows, image.columns, size, spec.resize, spec.padValue);
  const data = new Float32Array(size * size * channels);
  for (let c = 0; c < channels; c++) {
    const m = mean[c] ?? 0;
    const inv = 1 / (std[c] ?? 1);
    for (let i = 0, j = c; i < grey.length; i++, j += channels) data[j] = ((grey[i] ?? 0) - m) * inv;
  }
  return { data, shape: [size, size, channels], window };
}

/** One value per channel: a single value applies to every channel; otherwise the counts must match. */
function perChannel(v: readonly number[], channels: number, name: string): number[] {
  if (v.length === 1) return Array.from({ length: channels }, () => v[0] ?? 0);
  if (v.length === channels) return [...v];
  throw new PixelDecodeError(
    'PIXELS_SPEC_MISMATCH',
    `the model manifest gives ${v.length} ${name} values for a ${channels}-channel input; give 1 or ${channels} (preprocessing.${name})`,
  );
}
