// A minimal PNG encoder for 8-bit greyscale images (colour type 0): masks and previews need nothing more, and
// writing it ourselves keeps the output byte-identical for a given input (no encoder settings that drift).

import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Encodes rows x columns 8-bit grey samples (row-major) as a PNG file. */
export function encodeGreyPng(samples: Uint8Array, columns: number, rows: number): Buffer {
  if (samples.length !== rows * columns) throw new RangeError(`PNG: ${samples.length} samples for ${columns} x ${rows}`);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(columns, 0);
  header.writeUInt32BE(rows, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // colour type: greyscale
  // Scanlines with filter type 0 (None): masks are mostly runs, which deflate handles well on its own.
  const raw = Buffer.alloc(rows * (columns + 1));
  for (let y = 0; y < rows; y++) raw.set(samples.subarray(y * columns, (y + 1) * columns), y * (columns + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}
