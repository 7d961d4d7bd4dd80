// Our RLE Lossless encoder (PS3.5 Annex G) against a PackBits decoder written from the standard's text and against
// dcmjs-codecs' decoder (an independent implementation), on the inputs where PackBits goes wrong: runs and literals
// longer than 128, runs of exactly 2 and 3, rows that end inside a run, odd segment lengths.
import test from 'ava';
import dcmjsCodecs from 'dcmjs-codecs';
import { initFrameEncoders } from '../../src/imaging/frame-encoder.js';
import { encodeRleFrame } from '../../src/imaging/rle-encoder.js';

const { NativeCodecs, Context } = dcmjsCodecs;

/** Decodes an RLE frame of 8-bit samples back to colour-by-pixel bytes (G.3.2: header n, then copy or replicate). */
function decodeRle(frame: Uint8Array, rows: number, columns: number, samples: number): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const segments = view.getUint32(0, true);
  if (segments !== samples) throw new Error(`${segments} segments for ${samples} samples`);
  const out = new Uint8Array(rows * columns * samples);
  for (let s = 0; s < segments; s++) {
    const start = view.getUint32(4 + s * 4, true);
    const end = s + 1 < segments ? view.getUint32(8 + s * 4, true) : frame.length;
    if (start % 2 !== 0) throw new Error(`segment ${s} starts at an odd offset`);
    let p = start;
    let written = 0;
    while (written < rows * columns && p < end) {
      const n = ((frame[p++] ?? 0) << 24) >> 24;
      if (n >= 0) {
        for (let k = 0; k <= n; k++) out[written++ * samples + s] = frame[p++] ?? 0;
      } else if (n !== -128) {
        const value = frame[p++] ?? 0;
        for (let k = 0; k < 1 - n; k++) out[written++ * samples + s] = value;
      }
    }
    if (written !== rows * columns) throw new Error(`segment ${s} decodes to ${written} samples`);
  }
  return out;
}

function rowsOf(rows: number, columns: number, samples: number, fill: (i: number) => number): Uint8Array {
  const pixels = new Uint8Array(rows * columns * samples);
  for (let i = 0; i < pixels.length; i++) pixels[i] = fill(i) & 0xff;
  return pixels;
}

let seed = 12345;
const random = (): number => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed >>> 16;
};

const CASES: Array<[string, number, number, number, (i: number) => number]> = [
  ['one flat plane longer than a run', 3, 300, 1, () => 7],
  ['literal noise longer than 128', 4, 333, 1, () => random()],
  ['runs of 2 and 3 between literals', 5, 97, 1, (i) => [1, 1, 2, 3, 3, 3, 4, 5, 6, 6][i % 10] ?? 0],
  ['rows that end inside a run', 6, 5, 1, (i) => (i < 12 ? 9 : i)],
  [
    'RGB, runs in one plane and noise in another',
    17,
    129,
    3,
    (i) => (i % 3 === 0 ? 200 : i % 3 === 1 ? random() : (i >> 6) & 1),
  ],
  ['a single pixel', 1, 1, 3, (i) => i * 50],
  ['an odd segment length is padded', 1, 3, 1, (i) => i],
];

test.before(async () => {
  await initFrameEncoders();
});

for (const [name, rows, columns, samples, fill] of CASES) {
  test(`${name}: decodes back to the same bytes, by the standard's rules and by dcmjs-codecs`, (t) => {
    const pixels = rowsOf(rows, columns, samples, fill);
    const frame = encodeRleFrame(pixels, rows, columns, samples);
    t.is(frame.length % 2, 0, 'even frame length');
    t.deepEqual(decodeRle(frame, rows, columns, samples), pixels);
    const decoded = NativeCodecs.decodeRle(
      new Context({
        width: columns,
        height: rows,
        bitsAllocated: 8,
        bitsStored: 8,
        samplesPerPixel: samples,
        pixelRepresentation: 0,
        planarConfiguration: 0,
        photometricInterpretation: samples === 3 ? 'RGB' : 'MONOCHROME2',
        encodedBuffer: frame,
      }),
    ).getDecodedBuffer();
    t.deepEqual(new Uint8Array(decoded ?? []).subarray(0, pixels.length), pixels);
  });
}

test('a flat plane compresses to two bytes per 128 samples of a row; noise grows by at most one byte per 128', (t) => {
  const flat = encodeRleFrame(new Uint8Array(256), 1, 256, 1);
  t.is(flat.length, 64 + 4);
  const noise = rowsOf(1, 256, 1, () => random());
  t.true(encodeRleFrame(noise, 1, 256, 1).length <= 64 + 256 + 2 + 1);
});

test('bad layouts are refused', (t) => {
  t.throws(() => encodeRleFrame(new Uint8Array(10), 2, 2, 3), { instanceOf: RangeError });
  t.throws(() => encodeRleFrame(new Uint8Array(10), 0, 2, 1), { instanceOf: RangeError });
  t.throws(() => encodeRleFrame(new Uint8Array(48), 1, 1, 16), { instanceOf: RangeError });
});
