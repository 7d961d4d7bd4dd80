// Stored values -> [0, 1] over their whole Bits Stored range, with no window: how an image exported as a PNG of
// its stored values looks to a model trained on such PNGs (preprocessing `scaling: 'bitsStored'`).

import type { DecodedImage } from './decoded-image.js';
import { PixelDecodeError } from './pixel-errors.js';
import { finishDisplay, type Windowed } from './voi.js';

/**
 * v / (2^BitsStored - 1) for each stored value v, clamped to [0, 1] (signed values below 0 give 0), then
 * MONOCHROME1 inverted and padding set, as after a window. The decoded values are modality values: a Rescale
 * Slope/Intercept is undone to get the stored value back; a Modality LUT cannot be undone, so it is refused.
 */
export function scaleByBitsStored(image: DecodedImage, padValue: number): Windowed {
  const transform = image.modalityTransform;
  if (transform.kind === 'lut') {
    throw new PixelDecodeError(
      'PIXELS_SPEC_MISMATCH',
      "the model's manifest asks for preprocessing.scaling 'bitsStored' (stored values over their range), but this image maps its stored values through a Modality LUT, which cannot be undone; use scaling 'window' for such images",
    );
  }
  const max = 2 ** image.bitsStored - 1;
  const { values } = image;
  const out = new Float32Array(values.length);
  const identity = transform.slope === 1 && transform.intercept === 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? 0;
    const stored = identity ? v : (v - transform.intercept) / transform.slope;
    const x = stored / max;
    out[i] = x <= 0 ? 0 : x >= 1 ? 1 : x;
  }
  finishDisplay(image, out, padValue);
  // Reported as the equivalent LINEAR_EXACT window, which maps [0, max] onto [0, 1] the same way.
  return { pixels: out, window: { center: max / 2, width: max, source: 'bits-stored' } };
}
