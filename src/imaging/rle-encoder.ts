// RLE Lossless (1.2.840.10008.1.2.5) for 8-bit samples, as PS3.5 Annex G lays it out: a 64-byte header (number
// of segments, then 15 segment offsets), one segment per sample plane (R, G, B for colour; 8-bit samples have one
// byte plane each), each segment PackBits-coded row by row (no run crosses a row end) and padded to even length.
// Written here rather than through the WASM codecs: it is small, synchronous, and needs no module to be loaded.

const HEADER_BYTES = 64;
const MAX_SEGMENTS = 15;
/** PackBits: one header byte governs at most 128 bytes. */
const MAX_RUN = 128;
/** A run this long or longer ends a literal stretch; shorter ones cost as much as leaving them literal. */
const MIN_RUN_INSIDE_LITERAL = 3;

/**
 * Encodes one frame of 8-bit samples, colour-by-pixel (Planar Configuration 0) when `samplesPerPixel` > 1.
 * Returns the whole RLE frame (header and segments), of even length.
 */
export function encodeRleFrame(pixels: Uint8Array, rows: number, columns: number, samplesPerPixel: number): Uint8Array {
  if (!Number.isInteger(samplesPerPixel) || samplesPerPixel < 1 || samplesPerPixel > MAX_SEGMENTS)
    throw new RangeError(`RLE takes 1..${MAX_SEGMENTS} samples per pixel, got ${samplesPerPixel}`);
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows < 1 || columns < 1)
    throw new RangeError(`RLE needs at least one row and column, got ${rows} x ${columns}`);
  if (pixels.length < rows * columns * samplesPerPixel)
    throw new RangeError(`${pixels.length} bytes are fewer than ${rows} x ${columns} x ${samplesPerPixel}`);
  // Worst case per row: every 128 literal bytes take one header byte; plus one byte of padding per segment.
  const perRow = columns + Math.ceil(columns / MAX_RUN);
  const out = new Uint8Array(HEADER_BYTES + samplesPerPixel * (rows * perRow + 1));
  const header = new DataView(out.buffer);
  header.setUint32(0, samplesPerPixel, true);
  const row = new Uint8Array(columns);
  let at = HEADER_BYTES;
  for (let sample = 0; sample < samplesPerPixel; sample++) {
    header.setUint32(4 + sample * 4, at, true);
    for (let y = 0; y < rows; y++) {
      const base = y * columns * samplesPerPixel + sample;
      for (let x = 0; x < columns; x++) row[x] = pixels[base + x * samplesPerPixel] ?? 0;
      at = packBitsRow(row, out, at);
    }
    // Segments start at even offsets: pad with a zero byte (G.3.1).
    if ((at - HEADER_BYTES) % 2 === 1) out[at++] = 0;
  }
  return out.slice(0, at);
}

/** PackBits of one row into `out` from `at`; returns the position after it. */
function packBitsRow(row: Uint8Array, out: Uint8Array, start: number): number {
  let at = start;
  let literalStart = -1;
  const flushLiteral = (end: number): void => {
    if (literalStart < 0) return;
    out[at++] = end - literalStart - 1;
    out.set(row.subarray(literalStart, end), at);
    at += end - literalStart;
    literalStart = -1;
  };
  let i = 0;
  while (i < row.length) {
    const value = row[i] ?? 0;
    let run = 1;
    while (i + run < row.length && run < MAX_RUN && row[i + run] === value) run++;
    if (run >= MIN_RUN_INSIDE_LITERAL || (run === 2 && literalStart < 0)) {
      flushLiteral(i);
      // Replicate run: header -(run - 1) as a signed byte, then the byte.
      out[at++] = 257 - run;
      out[at++] = value;
      i += run;
      continue;
    }
    if (literalStart < 0) literalStart = i;
    i += 1;
    if (i - literalStart === MAX_RUN) flushLiteral(i);
  }
  flushLiteral(row.length);
  return at;
}
