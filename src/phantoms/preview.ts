// What a viewer shows for a phantom: its stored values through its own window (and, for MONOCHROME1, the INVERSE
// presentation LUT), as [0, 1] grey levels (0 black) and as an 8-bit PNG. Used for dataset previews and by tests
// that ask whether something looks brighter.

import { encodeGreyPng } from '../reporting/png-encoder.js';
import type { PhantomImage } from './render-phantom.js';

/** Display values in [0, 1] (PS3.3 C.11.2.1.2 window functions), MONOCHROME1 inverted. */
export function displayPixels(image: Pick<PhantomImage, 'pixels' | 'window' | 'photometric'>): Float32Array {
  const { center, width, fn } = image.window;
  const out = new Float32Array(image.pixels.length);
  const invert = image.photometric === 'MONOCHROME1';
  for (let i = 0; i < out.length; i++) {
    const x = image.pixels[i] ?? 0;
    let y: number;
    if (fn === 'SIGMOID') {
      y = 1 / (1 + Math.exp((-4 * (x - center)) / width));
    } else {
      const t = (x - (center - 0.5)) / (width - 1) + 0.5;
      y = t <= 0 ? 0 : t >= 1 ? 1 : t;
    }
    out[i] = invert ? 1 - y : y;
  }
  return out;
}

/** An 8-bit greyscale PNG of the displayed image. */
export function previewPng(image: PhantomImage): Buffer {
  const display = displayPixels(image);
  const grey = new Uint8Array(display.length);
  for (let i = 0; i < grey.length; i++) grey[i] = Math.round((display[i] ?? 0) * 255);
  return encodeGreyPng(grey, image.columns, image.rows);
}
