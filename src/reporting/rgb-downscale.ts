// Scales an RGB picture down, keeping its aspect ratio, with the same antialiased filter the classifier's input
// uses (imaging/resize.ts), one colour plane at a time: for the Secondary Capture's size cap.

import { resample } from '../imaging/resize.js';
import type { RgbImage } from './heatmap-overlay.js';

/** `image` scaled by `factor` (0 < factor < 1), at least one row and column. */
export function downscaleRgb(image: RgbImage, factor: number): RgbImage {
  if (!(factor > 0 && factor < 1)) throw new RangeError(`a downscale factor is in (0, 1), got ${factor}`);
  const { rows, columns } = image;
  const outRows = Math.max(1, Math.floor(rows * factor));
  const outColumns = Math.max(1, Math.floor(columns * factor));
  const plane = new Float32Array(rows * columns);
  const data = new Uint8Array(outRows * outColumns * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane.length; i++) plane[i] = image.data[i * 3 + c] ?? 0;
    const scaled = resample(plane, rows, columns, outRows, outColumns);
    for (let i = 0; i < scaled.length; i++) data[i * 3 + c] = Math.min(255, Math.max(0, Math.round(scaled[i] ?? 0)));
  }
  return { rows: outRows, columns: outColumns, data };
}
