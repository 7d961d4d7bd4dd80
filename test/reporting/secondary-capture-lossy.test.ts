import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeSecondaryCapture } from '../../src/reporting/secondary-capture.js';
import { readSourceInstance } from '../../src/reporting/source-instance.js';
import { compressFile, writeImageFile, type CompressedSyntax } from '../helpers/dicom-factory.js';
import { editFile, remove, set, wrapFrame } from '../imaging/pixel-fixtures.js';
import { CLASSIFICATION, CREATED_AT, EXPLANATION, MODEL, readBack, validate } from './reporting-fixtures.js';

/** The dciodvfy warnings the SC tests explain (Device UID in the Contributing Equipment Sequence); nothing else. */
const EXPLAINED_WARNINGS = [
  /^Warning - Attribute is not present in standard DICOM IOD - \(0x0018,0x1002\) UI Device UID\s*$/,
  /^Warning - Dicom dataset contains attributes not present in standard DICOM IOD - this is a Standard Extended SOP Class$/,
];

/** An 8-bit source (JPEG baseline needs it), written natively and then compressed by DCMTK when a syntax is given. */
async function source(syntax?: CompressedSyntax): Promise<Buffer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sc-lossy-'));
  const native = await writeImageFile(dir, { rows: 64, columns: 48, bitsAllocated: 8, bitsStored: 8 });
  if (syntax === undefined) return readFile(native.path);
  const out = path.join(dir, `${syntax}.dcm`);
  await compressFile(native.path, out, syntax);
  return readFile(out);
}

function heatmapSc(bytes: Uint8Array): Buffer {
  const rows = 40;
  const columns = 30;
  const data = new Uint8Array(rows * columns * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  return writeSecondaryCapture({
    source: bytes,
    image: { rows, columns, data },
    model: MODEL,
    classification: CLASSIFICATION,
    explanation: EXPLANATION,
    revision: 0,
    createdAt: CREATED_AT,
  }).bytes;
}

async function checkValid(t: import('ava').ExecutionContext, sc: Uint8Array): Promise<void> {
  const v = await validate(sc);
  t.deepEqual(v.errors, [], v.output);
  t.deepEqual(
    v.warnings.filter((w) => !EXPLAINED_WARNINGS.some((re) => re.test(w))),
    [],
    v.output,
  );
}

const numbers = (v: unknown): number[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).map(Number);

for (const [syntax, method] of [
  ['jpeg-ls-lossy', 'ISO_14495_1'],
  ['jpeg-baseline', 'ISO_10918_1'],
  ['jpeg2000-lossy', 'ISO_15444_1'],
] as const) {
  test(`an SC from a ${syntax} source says 01 with the source's ratio and method; dciodvfy 0 errors`, async (t) => {
    const bytes = await source(syntax);
    const src = readBack(bytes);
    // The encoders state it themselves: the SC must carry exactly what the source says.
    t.is(src.LossyImageCompression, '01');
    const sourceRatios = numbers(src.LossyImageCompressionRatio);
    t.true(sourceRatios.length > 0 && sourceRatios.every((r) => r > 1), String(sourceRatios));
    const sc = heatmapSc(bytes);
    const ds = readBack(sc);
    t.is(ds.LossyImageCompression, '01');
    t.deepEqual(numbers(ds.LossyImageCompressionRatio), sourceRatios);
    t.deepEqual([ds.LossyImageCompressionMethod].flat(), [method]);
    await checkValid(t, sc);
  });
}

test('a lossy transfer syntax counts as lossy when the source does not say so; the method comes from the syntax', async (t) => {
  const bytes = editFile(await source('jpeg-ls-lossy'), (_meta, ds) => remove(ds, '00282110', '00282112', '00282114'));
  const src = readBack(bytes);
  t.is(src.LossyImageCompression, undefined);
  const sc = heatmapSc(bytes);
  const ds = readBack(sc);
  t.is(ds.LossyImageCompression, '01');
  t.is(ds.LossyImageCompressionRatio, undefined);
  t.deepEqual([ds.LossyImageCompressionMethod].flat(), ['ISO_14495_1']);
  await checkValid(t, sc);
});

test('a source flagged 00 in a lossy syntax is still lossy: the syntax wins over the flag', async (t) => {
  const bytes = editFile(await source('jpeg-baseline'), (_meta, ds) => {
    set(ds, '00282110', 'CS', ['00']);
    remove(ds, '00282112', '00282114');
  });
  const sc = heatmapSc(bytes);
  const ds = readBack(sc);
  t.is(ds.LossyImageCompression, '01');
  t.deepEqual([ds.LossyImageCompressionMethod].flat(), ['ISO_10918_1']);
  await checkValid(t, sc);
});

test('a native source that was lossy once keeps its flag, ratios and methods in order', async (t) => {
  const bytes = editFile(await source(), (_meta, ds) => {
    set(ds, '00282110', 'CS', ['01']);
    set(ds, '00282112', 'DS', [2.5, 8]);
    set(ds, '00282114', 'CS', ['ISO_10918_1', 'ISO_15444_1']);
  });
  const lossy = readSourceInstance(bytes).lossyCompression;
  t.deepEqual(lossy, { lossy: true, ratios: [2.5, 8], methods: ['ISO_10918_1', 'ISO_15444_1'] });
  const sc = heatmapSc(bytes);
  const ds = readBack(sc);
  t.is(ds.LossyImageCompression, '01');
  t.deepEqual(numbers(ds.LossyImageCompressionRatio), [2.5, 8]);
  t.deepEqual([ds.LossyImageCompressionMethod].flat(), ['ISO_10918_1', 'ISO_15444_1']);
  await checkValid(t, sc);
});

for (const syntax of [undefined, 'jpeg-ls-lossless', 'jpeg-lossless-sv1', 'rle', 'jpeg2000-lossless'] as const) {
  test(`an SC from a lossless ${syntax ?? 'native'} source says 00, with no ratio or method; dciodvfy 0 errors`, async (t) => {
    const bytes = await source(syntax);
    t.deepEqual(readSourceInstance(bytes).lossyCompression, { lossy: false, ratios: [], methods: [] });
    const sc = heatmapSc(bytes);
    const ds = readBack(sc);
    t.is(ds.LossyImageCompression, '00');
    t.is(ds.LossyImageCompressionRatio, undefined);
    t.is(ds.LossyImageCompressionMethod, undefined);
    await checkValid(t, sc);
  });
}

// Only the attributes before Pixel Data are read, so a placeholder frame stands for the codestream. These are the
// syntaxes our SCP accepts (src/dicom/transfer-syntaxes.ts) that the DCMTK cases above do not cover.
for (const [uid, expected] of [
  ['1.2.840.10008.1.2.4.51', { lossy: true, methods: ['ISO_10918_1'] }],
  ['1.2.840.10008.1.2.4.91', { lossy: true, methods: ['ISO_15444_1'] }],
  ['1.2.840.10008.1.2.4.57', { lossy: false, methods: [] }],
  ['1.2.840.10008.1.2.4.90', { lossy: false, methods: [] }],
] as const) {
  test(`transfer syntax ${uid} without a flag reads as ${expected.lossy ? 'lossy' : 'lossless'}`, async (t) => {
    const bytes = wrapFrame(await source(), uid, [new Uint8Array([0xff, 0x4f, 0xff, 0xd9])]);
    t.deepEqual(readSourceInstance(bytes).lossyCompression, {
      lossy: expected.lossy,
      ratios: [],
      methods: [...expected.methods],
    });
  });
}

test('a source that already lists the syntax method last does not get it twice', async (t) => {
  const bytes = editFile(await source('jpeg-ls-lossy'), (_meta, ds) => {
    set(ds, '00282112', 'DS', [3, 2]);
    set(ds, '00282114', 'CS', ['ISO_10918_1', 'ISO_14495_1']);
  });
  t.deepEqual(readSourceInstance(bytes).lossyCompression, {
    lossy: true,
    ratios: [3, 2],
    methods: ['ISO_10918_1', 'ISO_14495_1'],
  });
});
