// Specification of the greyscale PNG encoder used for masks and previews: Skia decodes what it writes to the same
// samples, at any size, and the bytes depend only on the samples.

import { createCanvas, loadImage } from '@napi-rs/canvas';
import test from 'ava';
import { encodeGreyPng } from '../../src/reporting/png-encoder.js';

async function decodeRed(png: Buffer): Promise<{ width: number; height: number; red: number[] }> {
  const image = await loadImage(png);
  const canvas = createCanvas(image.width, image.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  const rgba = ctx.getImageData(0, 0, image.width, image.height).data;
  const red: number[] = [];
  for (let i = 0; i < rgba.length; i += 4) red.push(rgba[i] ?? 0);
  return { width: image.width, height: image.height, red };
}

test('decodes to the samples it was given', async (t) => {
  for (const [columns, rows] of [
    [1, 1],
    [7, 3],
    [64, 40],
  ] as const) {
    const samples = new Uint8Array(columns * rows).map((_, i) => (i * 37 + (i % columns) * 11) & 0xff);
    const decoded = await decodeRed(encodeGreyPng(samples, columns, rows));
    t.is(decoded.width, columns);
    t.is(decoded.height, rows);
    t.deepEqual(decoded.red, [...samples]);
  }
});

test('is deterministic and refuses a sample count that does not match the size', (t) => {
  const samples = new Uint8Array(100).fill(255);
  t.deepEqual(encodeGreyPng(samples, 10, 10), encodeGreyPng(samples, 10, 10));
  t.throws(() => encodeGreyPng(samples, 10, 11), { message: /100 samples for 10 x 11/ });
});
