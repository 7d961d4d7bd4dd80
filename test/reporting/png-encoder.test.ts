import test from 'ava';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { encodePng } from '../../src/reporting/png-encoder.js';

test('a PNG decoder (Skia) reads back exactly the RGB pixels, and the bytes are deterministic', async (t) => {
  const rows = 37;
  const columns = 53;
  const data = new Uint8Array(rows * columns * 3);
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = i % 7 === 0 ? s >>> 24 : (i * 31) & 0xff;
  }
  const png = encodePng({ rows, columns, data });
  t.deepEqual(png, encodePng({ rows, columns, data }));
  const image = await loadImage(png);
  t.is(image.width, columns);
  t.is(image.height, rows);
  const ctx = createCanvas(columns, rows).getContext('2d');
  ctx.drawImage(image, 0, 0);
  const rgba = ctx.getImageData(0, 0, columns, rows).data;
  let mismatches = 0;
  for (let p = 0; p < rows * columns; p++)
    for (let k = 0; k < 3; k++) if (rgba[p * 4 + k] !== data[p * 3 + k]) mismatches++;
  t.is(mismatches, 0);
});
