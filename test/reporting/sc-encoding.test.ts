// The heatmap SC in each configured encoding: valid for dciodvfy, read back by DCMTK's own decoders (an
// independent implementation) to the same pixels (lossless) or close ones (JPEG baseline), encapsulated as PS3.5
// A.4 asks (Basic Offset Table, one even-length fragment per frame), with the lossy flags right.
import test from 'ava';
import dcmjs from 'dcmjs';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GatewayError } from '../../src/errors.js';
import type { RgbImage } from '../../src/reporting/heatmap-overlay.js';
import { prepareScEncoding } from '../../src/reporting/sc-encoding.js';
import { SC_ENCODINGS, SC_ENCODING_SYNTAX, type ScEncoding } from '../../src/reporting/sc-encoding-types.js';
import { writeSecondaryCapture, type ScSopClass } from '../../src/reporting/secondary-capture.js';
import { compressFile, writeImageFile } from '../helpers/dicom-factory.js';
import { runCommand } from '../helpers/run-command.js';
import { CLASSIFICATION, CREATED_AT, EXPLANATION, MODEL, readBack, validate } from './reporting-fixtures.js';

/** The SC tests' explained warnings (Device UID in the Contributing Equipment Sequence); nothing else. */
const EXPLAINED_WARNINGS = [
  /^Warning - Attribute is not present in standard DICOM IOD - \(0x0018,0x1002\) UI Device UID\s*$/,
  /^Warning - Dicom dataset contains attributes not present in standard DICOM IOD - this is a Standard Extended SOP Class$/,
];

/**
 * JPEG baseline at quality 90 with 4:2:2 chroma on this picture: no sample off by more than this, and the mean
 * absolute error per sample below MEAN_ERROR_BOUND. Measured: max 14, mean 1.44; the bounds leave room for libjpeg
 * rounding differences, not for a colour-space or layout mistake (which gives errors of 50 to 200).
 */
const MAX_ERROR_BOUND = 32;
const MEAN_ERROR_BOUND = 2.5;

/** A chest-like picture: a smooth grey body, sharp-edged ribs, a colour blob and a flat banner with "text". */
function picture(rows = 200, columns = 160): RgbImage {
  const data = new Uint8Array(rows * columns * 3);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      const o = (y * columns + x) * 3;
      if (y > rows - 24) {
        // Banner: black with white "glyph" strokes.
        const on = (x % 7 < 2 && y % 9 < 6) || (y % 9 === 2 && x % 13 < 9);
        data.fill(on ? 255 : 0, o, o + 3);
        continue;
      }
      const body = 60 + 120 * Math.exp(-(((x - columns / 2) / (columns / 3)) ** 2)) + ((x * 31 + y * 17) % 9);
      const rib = Math.floor(y / 14) % 2 === 0 && x > 20 && x < columns - 20 ? 25 : 0;
      const grey = Math.min(255, body + rib);
      const blob = Math.exp(-((x - columns * 0.3) ** 2 + (y - rows * 0.4) ** 2) / (2 * 15 ** 2));
      data[o] = Math.round(grey * (1 - blob) + 255 * blob);
      data[o + 1] = Math.round(grey * (1 - blob * 0.6));
      data[o + 2] = Math.round(grey * (1 - blob));
    }
  }
  return { rows, columns, data };
}

async function nativeSource(): Promise<Buffer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sc-enc-'));
  const native = await writeImageFile(dir, { rows: 64, columns: 48, bitsAllocated: 8, bitsStored: 8 });
  return readFile(native.path);
}

async function lossySource(): Promise<Buffer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sc-enc-'));
  const native = await writeImageFile(dir, { rows: 64, columns: 48, bitsAllocated: 8, bitsStored: 8 });
  const out = path.join(dir, 'ls-lossy.dcm');
  await compressFile(native.path, out, 'jpeg-ls-lossy');
  return readFile(out);
}

function writeSc(
  source: Uint8Array,
  encoding: ScEncoding,
  extra: { sopClass?: ScSopClass; image?: RgbImage; maxBytes?: number } = {},
) {
  return writeSecondaryCapture({
    source,
    image: extra.image ?? picture(),
    model: MODEL,
    classification: CLASSIFICATION,
    explanation: EXPLANATION,
    revision: 0,
    createdAt: CREATED_AT,
    ...(extra.sopClass === undefined ? {} : { sopClass: extra.sopClass }),
    encoding: { encoding, jpegQuality: 90, ...(extra.maxBytes === undefined ? {} : { maxBytes: extra.maxBytes }) },
  });
}

const DECODER: Partial<Record<ScEncoding, string>> = {
  rle: 'dcmdrle',
  'jpeg-ls-lossless': 'dcmdjpls',
  'jpeg-lossless': 'dcmdjpeg',
  'jpeg-baseline': 'dcmdjpeg',
};

/** The SC's pixels as DCMTK decodes them (RGB, colour-by-pixel), and the decoded file's attributes. */
async function decodedByDcmtk(bytes: Uint8Array, encoding: ScEncoding): Promise<{ rgb: Uint8Array; rows: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sc-dec-'));
  const input = path.join(dir, 'in.dcm');
  writeFileSync(input, bytes);
  const decoder = DECODER[encoding];
  let file = input;
  if (decoder !== undefined) {
    file = path.join(dir, 'out.dcm');
    const result = await runCommand(decoder, [input, file]);
    if (result.code !== 0) throw new Error(`${decoder} failed: ${result.stderr}${result.stdout}`);
  }
  const ds = readBack(readFileSync(file));
  if (ds.PhotometricInterpretation !== 'RGB') throw new Error(`decoded as ${String(ds.PhotometricInterpretation)}`);
  if (ds.PlanarConfiguration !== 0)
    throw new Error(`decoded with planar configuration ${String(ds.PlanarConfiguration)}`);
  const pixels = (ds.PixelData as ArrayBuffer[])[0];
  if (pixels === undefined) throw new Error('no pixel data');
  return { rgb: new Uint8Array(pixels), rows: Number(ds.Rows) };
}

/** The encapsulated Pixel Data's items: Basic Offset Table entries and fragment lengths (PS3.5 A.4). */
function encapsulation(bytes: Uint8Array): { offsets: number[]; fragments: number[] } {
  const marker = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  const buf = Buffer.from(bytes);
  const at = buf.lastIndexOf(marker);
  if (at < 0) throw new Error('no encapsulated OB Pixel Data element');
  let p = at + marker.length;
  const item = (): { tag: number; length: number } => {
    const tag = buf.readUInt32LE(p);
    const length = buf.readUInt32LE(p + 4);
    p += 8;
    return { tag, length };
  };
  const ITEM = 0xe000fffe;
  const SEQUENCE_DELIMITER = 0xe0ddfffe;
  const bot = item();
  if (bot.tag !== ITEM) throw new Error('no Basic Offset Table item');
  const offsets: number[] = [];
  for (let i = 0; i < bot.length; i += 4) offsets.push(buf.readUInt32LE(p + i));
  p += bot.length;
  const fragments: number[] = [];
  for (;;) {
    const next = item();
    if (next.tag === SEQUENCE_DELIMITER) break;
    if (next.tag !== ITEM) throw new Error(`unexpected tag ${next.tag.toString(16)}`);
    fragments.push(next.length);
    p += next.length;
  }
  if (p !== buf.length) throw new Error('bytes after the sequence delimiter');
  return { offsets, fragments };
}

test.before(async () => {
  await prepareScEncoding('jpeg-baseline');
});

for (const encoding of SC_ENCODINGS) {
  for (const sopClass of ['secondary-capture', 'multiframe-true-color'] as const) {
    test(`${encoding} ${sopClass}: dciodvfy 0 errors, only the explained warnings`, async (t) => {
      const sc = writeSc(await nativeSource(), encoding, { sopClass });
      const v = await validate(sc.bytes);
      t.deepEqual(v.errors, [], v.output);
      t.deepEqual(
        v.warnings.filter((w) => !EXPLAINED_WARNINGS.some((re) => re.test(w))),
        [],
        v.output,
      );
    });
  }

  test(`${encoding}: DCMTK decodes the pixels ${encoding === 'jpeg-baseline' ? 'close to' : 'equal to'} the picture`, async (t) => {
    const image = picture();
    const sc = writeSc(await nativeSource(), encoding, { image });
    const ds = readBack(sc.bytes);
    const { rgb, rows } = await decodedByDcmtk(sc.bytes, encoding);
    t.is(rows, image.rows);
    const expected = image.data.subarray(0, image.rows * image.columns * 3);
    t.is(rgb.length >= expected.length, true);
    const got = rgb.subarray(0, expected.length);
    if (encoding !== 'jpeg-baseline') {
      t.true(Buffer.from(got).equals(Buffer.from(expected)), 'lossless: the very same samples');
      t.is(ds.PhotometricInterpretation, 'RGB');
      return;
    }
    let max = 0;
    let sum = 0;
    for (let i = 0; i < expected.length; i++) {
      const d = Math.abs((got[i] ?? 0) - (expected[i] ?? 0));
      max = Math.max(max, d);
      sum += d;
    }
    const mean = sum / expected.length;
    t.log(`jpeg-baseline q90: max error ${max}, mean ${mean.toFixed(3)}`);
    t.true(max <= MAX_ERROR_BOUND, `max error ${max}`);
    t.true(mean <= MEAN_ERROR_BOUND, `mean error ${mean}`);
    t.is(ds.PhotometricInterpretation, 'YBR_FULL_422');
  });

  test(`${encoding}: the file says its transfer syntax; encapsulated pixels have a BOT and one even fragment`, async (t) => {
    const sc = writeSc(await nativeSource(), encoding);
    const meta = readMeta(sc.bytes);
    t.is(meta.TransferSyntaxUID, SC_ENCODING_SYNTAX[encoding]);
    if (encoding === 'explicit-le') {
      t.throws(() => encapsulation(sc.bytes));
      return;
    }
    const { offsets, fragments } = encapsulation(sc.bytes);
    t.deepEqual(offsets, [0], 'one frame, at offset 0 of the first fragment');
    t.is(fragments.length, 1, 'one fragment per frame');
    t.is((fragments[0] ?? 1) % 2, 0, 'even length');
  });
}

function readMeta(bytes: Uint8Array): Record<string, unknown> {
  const dict = dcmjs.data.DicomMessage.readFile(new Uint8Array(bytes).buffer);
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(dict.meta);
}

test('jpeg-baseline from a lossless source: LossyImageCompression 01, our ratio and ISO_10918_1', async (t) => {
  const sc = writeSc(await nativeSource(), 'jpeg-baseline');
  const ds = readBack(sc.bytes);
  t.is(ds.LossyImageCompression, '01');
  t.is(ds.LossyImageCompressionMethod, 'ISO_10918_1');
  const ratio = Number(ds.LossyImageCompressionRatio);
  const pixelBytes = 200 * 160 * 3;
  const { fragments } = encapsulation(sc.bytes);
  t.true(Math.abs(ratio - pixelBytes / (fragments[0] ?? 1)) < 0.05, `ratio ${ratio}`);
  t.true(ratio > 2, `ratio ${ratio}`);
});

test("jpeg-baseline from a lossy source: ours appended to the source's ratio and method, in order", async (t) => {
  const source = await lossySource();
  const before = readBack(writeSc(source, 'explicit-le').bytes);
  t.is(before.LossyImageCompression, '01');
  const sourceMethods = [before.LossyImageCompressionMethod].flat();
  t.deepEqual(sourceMethods, ['ISO_14495_1']);
  const ds = readBack(writeSc(source, 'jpeg-baseline').bytes);
  t.is(ds.LossyImageCompression, '01');
  t.deepEqual([ds.LossyImageCompressionMethod].flat(), ['ISO_14495_1', 'ISO_10918_1']);
  const sourceRatios = [before.LossyImageCompressionRatio].flat().filter((r) => r !== undefined);
  const ratios = [ds.LossyImageCompressionRatio].flat();
  t.is(ratios.length, sourceRatios.length + 1);
  t.deepEqual(ratios.slice(0, sourceRatios.length).map(Number), sourceRatios.map(Number));
});

test('lossless encodings of a lossless source say 00 with no ratio or method', async (t) => {
  for (const encoding of ['rle', 'jpeg-ls-lossless', 'jpeg-lossless'] as const) {
    const ds = readBack(writeSc(await nativeSource(), encoding).bytes);
    t.is(ds.LossyImageCompression, '00', encoding);
    t.is(ds.LossyImageCompressionRatio, undefined, encoding);
    t.is(ds.LossyImageCompressionMethod, undefined, encoding);
  }
});

test('the size cap scales the picture down, aspect kept, until the object fits; DerivationDescription says so', async (t) => {
  const image = picture(400, 320);
  const source = await nativeSource();
  const full = writeSc(source, 'rle', { image });
  t.is(full.downscaled, undefined);
  const maxBytes = Math.floor(full.bytes.length / 3);
  const capped = writeSc(source, 'rle', { image, maxBytes });
  t.true(capped.bytes.length <= maxBytes, `${capped.bytes.length} > ${maxBytes}`);
  const ds = readBack(capped.bytes);
  const rows = Number(ds.Rows);
  const columns = Number(ds.Columns);
  t.true(rows < 400 && columns < 320);
  t.true(Math.abs(columns / rows - 320 / 400) < 0.02, `aspect ${columns}/${rows}`);
  t.deepEqual(capped.downscaled, { from: { rows: 400, columns: 320 }, to: { rows, columns }, maxBytes });
  t.regex(
    String(ds.DerivationDescription),
    new RegExp(`scaled down from 320 x 400 to ${columns} x ${rows} to fit the ${maxBytes}-byte size cap`),
  );
  t.is(capped.sopInstanceUid, full.sopInstanceUid, 'the same object, smaller');
  const v = await validate(capped.bytes);
  t.deepEqual(v.errors, [], v.output);
  // An object already under the cap is left alone, byte for byte.
  t.true(writeSc(source, 'rle', { image, maxBytes: full.bytes.length }).bytes.equals(full.bytes));
});

test('a size cap no picture of at least 128 pixels fits is refused with SC_SIZE_CAP_UNREACHABLE', async (t) => {
  const source = await nativeSource();
  const error = t.throws(() => writeSc(source, 'explicit-le', { image: picture(400, 320), maxBytes: 20_000 }), {
    instanceOf: GatewayError,
  });
  t.is(error?.code, 'SC_SIZE_CAP_UNREACHABLE');
});
