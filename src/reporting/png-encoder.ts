// A minimal PNG writer for 8-bit RGB (PNG spec, ISO/IEC 15948): signature, IHDR, one IDAT, IEND. Each row uses
// the Up filter (the difference to the row above), which suits the smooth images we write and costs one
// subtraction per byte. Output is deterministic: same pixels, same bytes.

import { deflateSync } from 'node:zlib';
import type { RgbImage } from './heatmap-overlay.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(parts: readonly Uint8Array[]): number {
  let c = 0xffffffff;
  for (const bytes of parts)
    for (let i = 0; i < bytes.length; i++) c = (CRC_TABLE[(c ^ (bytes[i] ?? 0)) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(data.length, 0);
  header.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32([header.subarray(4), data]), 0);
  return Buffer.concat([header, data, crc]);
}

/** PNG bytes of an RGB image. `level`: zlib level 0-9 (6: a good size for the time). */
export function encodePng(image: RgbImage, level = 6): Buffer {
  const { rows, columns, data } = image;
  const stride = columns * 3;
  const filtered = Buffer.alloc(rows * (stride + 1));
  for (let y = 0; y < rows; y++) {
    const out = y * (stride + 1);
    const row = y * stride;
    if (y === 0) {
      filtered[out] = 0; // None: no row above
      filtered.set(data.subarray(row, row + stride), out + 1);
      continue;
    }
    filtered[out] = 2; // Up
    const above = row - stride;
    for (let i = 0; i < stride; i++) filtered[out + 1 + i] = ((data[row + i] ?? 0) - (data[above + i] ?? 0)) & 0xff;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(columns, 0);
  ihdr.writeUInt32BE(rows, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(filtered, { level })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** Rows x columns 8-bit grey samples (row-major) as a PNG: masks and phantom previews. */
export function encodeGreyPng(samples: Uint8Array, columns: number, rows: number): Buffer {
  if (samples.length !== rows * columns)
    throw new RangeError(`PNG: ${samples.length} samples for ${columns} x ${rows}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(columns, 0);
  ihdr.writeUInt32BE(rows, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // colour type: greyscale
  // Filter type 0 (None) on every row: masks are mostly runs, which deflate handles well on its own.
  const raw = Buffer.alloc(rows * (columns + 1));
  for (let y = 0; y < rows; y++) raw.set(samples.subarray(y * columns, (y + 1) * columns), y * (columns + 1) + 1);
  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}
