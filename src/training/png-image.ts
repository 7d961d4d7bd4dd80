import { createCanvas, loadImage } from '@napi-rs/canvas';
import type { DecodedImage } from '../imaging/decoded-image.js';

/**
 * A PNG (NIH ChestX-ray14 ships 8-bit grey PNGs) as the DecodedImage the preprocessing expects, decoded
 * with @napi-rs/canvas (Skia). Skia hands out 8-bit RGBA, so a 16-bit PNG loses its low byte; the red
 * channel is the grey value. The PNG is already a display image: its window maps 0..255 onto [0, 1]
 * exactly (LINEAR_EXACT, centre 127.5, width 255), so the `dicom` window mode keeps it as it is.
 */
export async function decodePng(bytes: Uint8Array, source: string): Promise<DecodedImage> {
  const image = await loadImage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const { width, height } = image;
  const canvas = createCanvas(width, height);
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const rgba = context.getImageData(0, 0, width, height).data;
  const values = new Float32Array(width * height);
  for (let i = 0; i < values.length; i += 1) values[i] = rgba[i * 4] ?? 0;
  return {
    rows: height,
    columns: width,
    photometric: 'MONOCHROME2',
    values,
    padding: undefined,
    // An 8-bit PNG's samples are its stored values.
    bitsStored: 8,
    modalityTransform: { kind: 'rescale', slope: 1, intercept: 0 },
    voi: { kind: 'window', center: 127.5, width: 255, fn: 'LINEAR_EXACT' },
    sopInstanceUid: source,
    transferSyntaxUid: '',
    lossy: false,
  };
}
