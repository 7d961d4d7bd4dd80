import { z } from 'zod';
import type { SeededRandom } from './random.js';

/**
 * Small geometric and photometric changes applied to training images (never to validation images).
 * No horizontal flips: a chest X-ray's left and right are not interchangeable (heart, gastric bubble),
 * and the network may legitimately rely on them.
 */
export const augmentationSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Largest shift, as a fraction of the image edge, in each direction. */
    maxShift: z.number().min(0).max(0.5).default(0.05),
    /** Largest in-plane rotation, degrees. */
    maxRotationDegrees: z.number().min(0).max(45).default(5),
    /** Largest relative zoom in or out. */
    maxScale: z.number().min(0).max(0.5).default(0.05),
    /** Largest added brightness, in [0, 1] display units. */
    maxBrightness: z.number().min(0).max(0.5).default(0.05),
    /** Largest relative contrast change around mid-grey. */
    maxContrast: z.number().min(0).max(0.9).default(0.1),
  })
  .strict();

export type AugmentationSpec = z.infer<typeof augmentationSchema>;

/**
 * One random augmentation of a square grey image in [0, 1] display units (what preprocessing yields
 * before mean/std): rotation, zoom and shift about the centre with bilinear sampling, the outside filled
 * with the padding value inference uses; then contrast and brightness, clamped to [0, 1].
 */
export function augmentGrey(
  grey: Float32Array,
  size: number,
  spec: AugmentationSpec,
  random: SeededRandom,
  padValue: number,
): Float32Array {
  const angle = (random.uniform(-1, 1) * spec.maxRotationDegrees * Math.PI) / 180;
  const scale = 1 + random.uniform(-1, 1) * spec.maxScale;
  const shiftX = random.uniform(-1, 1) * spec.maxShift * size;
  const shiftY = random.uniform(-1, 1) * spec.maxShift * size;
  const contrast = 1 + random.uniform(-1, 1) * spec.maxContrast;
  const brightness = random.uniform(-1, 1) * spec.maxBrightness;
  const out = new Float32Array(size * size);
  const centre = (size - 1) / 2;
  // Inverse map: for each output pixel, where it comes from in the source.
  const cos = Math.cos(angle) / scale;
  const sin = Math.sin(angle) / scale;
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      const dx = x - centre - shiftX;
      const dy = y - centre - shiftY;
      const sx = cos * dx + sin * dy + centre;
      const sy = -sin * dx + cos * dy + centre;
      const v = bilinear(grey, size, sx, sy, padValue);
      out[y * size + x] = Math.min(1, Math.max(0, (v - 0.5) * contrast + 0.5 + brightness));
    }
  }
  return out;
}

function bilinear(image: Float32Array, size: number, x: number, y: number, outside: number): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  const at = (xx: number, yy: number) =>
    xx < 0 || yy < 0 || xx >= size || yy >= size ? outside : (image[yy * size + xx] ?? outside);
  const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
  const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
  return top * (1 - fy) + bottom * fy;
}
