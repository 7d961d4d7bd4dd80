// Specification of the synthetic DICOM factory (test/helpers/dicom-factory.ts): generated files are valid DX / CR
// IODs according to dciodvfy, pixel content is deterministic per seed, and every compressed transfer syntax yields a
// parseable file that decodes (losslessly where the syntax is lossless).

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import {
  COMPRESSED_SYNTAXES,
  EXPLICIT_VR_LITTLE_ENDIAN,
  IMPLICIT_VR_LITTLE_ENDIAN,
  LOSSLESS,
  SOP_CLASS_UID,
  TRANSFER_SYNTAX_UID,
  compressFile,
  dciodvfy,
  decompressFile,
  makeImageFile,
  makePixelData,
  parseFile,
  readEncapsulatedFrames,
  readNativePixelData,
  writeImageFile,
  type CompressedSyntax,
  type SopClassKind,
  type SyntheticImageOptions,
} from './helpers/dicom-factory.js';

const execFileAsync = promisify(execFile);

let workDir = '';
test.before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'dicom-factory-test-'));
});
test.after.always(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Naturalised meta information and data set of a Part 10 file. */
function parse(bytes: Buffer): { meta: Record<string, unknown>; ds: Record<string, unknown> } {
  const { meta, dataset } = parseFile(bytes);
  return { meta, ds: dataset };
}

async function dcmdump(path: string): Promise<string> {
  // Throws (non-zero exit) if DCMTK cannot parse the file.
  const { stdout, stderr } = await execFileAsync('dcmdump', [path], { maxBuffer: 64 * 1024 * 1024 });
  if (/^E: /m.test(stderr)) throw new Error(`dcmdump reported errors for ${path}: ${stderr}`);
  return stdout;
}

function samples(buf: Buffer, bitsAllocated: 8 | 16): number[] {
  const out: number[] = [];
  if (bitsAllocated === 8) for (const b of buf) out.push(b);
  else for (let i = 0; i + 1 < buf.length; i += 2) out.push(buf.readUInt16LE(i));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// IOD validity

const SOP_CLASSES: SopClassKind[] = ['dx-presentation', 'dx-processing', 'cr'];
const PHOTOMETRICS = ['MONOCHROME1', 'MONOCHROME2'] as const;
const BIT_DEPTHS = [8, 16] as const;
const SYNTAXES = ['explicit', 'implicit'] as const;

for (const sopClass of SOP_CLASSES) {
  for (const photometric of PHOTOMETRICS) {
    for (const bitsAllocated of BIT_DEPTHS) {
      for (const transferSyntax of SYNTAXES) {
        test(`dciodvfy: ${sopClass} ${photometric} ${bitsAllocated}-bit ${transferSyntax} VR has no errors`, async (t) => {
          const file = await writeImageFile(workDir, {
            sopClass,
            photometric,
            bitsAllocated,
            transferSyntax,
            seed: 11,
          });
          t.is(file.path, join(workDir, `${file.sopInstanceUid}.dcm`));
          const result = await dciodvfy(file.path);
          t.deepEqual(result.errors, [], result.output);
          for (const w of result.warnings) t.log(w);
          const { meta, ds } = parse(await readFile(file.path));
          t.is(
            meta.TransferSyntaxUID,
            transferSyntax === 'implicit' ? IMPLICIT_VR_LITTLE_ENDIAN : EXPLICIT_VR_LITTLE_ENDIAN,
          );
          t.is(ds.SOPClassUID, SOP_CLASS_UID[sopClass]);
          t.is(ds.Modality, sopClass === 'cr' ? 'CR' : 'DX');
          t.is(ds.PhotometricInterpretation, photometric);
          t.is(ds.BitsAllocated, bitsAllocated);
          t.is(ds.BitsStored, bitsAllocated === 16 ? 12 : 8);
        });
      }
    }
  }
}

test('dciodvfy: other geometry, bit depths and views stay valid', async (t) => {
  const variants: SyntheticImageOptions[] = [
    { rows: 101, columns: 77, bitsAllocated: 8 },
    { rows: 64, columns: 512, bitsStored: 16 },
    { bitsStored: 10, sopClass: 'dx-processing', viewPosition: 'AP' },
    { bitsStored: 14, sopClass: 'cr', viewPosition: 'LL', photometric: 'MONOCHROME1' },
  ];
  for (const v of variants) {
    const file = await writeImageFile(workDir, v);
    const result = await dciodvfy(file.path);
    t.deepEqual(result.errors, [], `${JSON.stringify(v)}\n${result.output}`);
    for (const w of result.warnings) t.log(JSON.stringify(v), w);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Defaults, options, UIDs

test('defaults: 256x256 16/12-bit MONOCHROME2 DX for presentation, explicit VR, fresh 2.25 UIDs', (t) => {
  const a = makeImageFile();
  const b = makeImageFile();
  const { meta, ds } = parse(a.bytes);
  t.is(a.bytes.subarray(128, 132).toString('latin1'), 'DICM');
  t.is(a.sopClassUid, SOP_CLASS_UID['dx-presentation']);
  t.is(a.transferSyntaxUid, EXPLICIT_VR_LITTLE_ENDIAN);
  t.is(meta.TransferSyntaxUID, EXPLICIT_VR_LITTLE_ENDIAN);
  t.is(meta.MediaStorageSOPInstanceUID, a.sopInstanceUid);
  t.is(meta.MediaStorageSOPClassUID, a.sopClassUid);
  t.is(ds.SOPInstanceUID, a.sopInstanceUid);
  t.is(ds.StudyInstanceUID, a.studyInstanceUid);
  t.is(ds.SeriesInstanceUID, a.seriesInstanceUid);
  t.is(ds.Rows, 256);
  t.is(ds.Columns, 256);
  t.is(ds.BitsAllocated, 16);
  t.is(ds.BitsStored, 12);
  t.is(ds.HighBit, 11);
  t.is(ds.PhotometricInterpretation, 'MONOCHROME2');
  t.is(ds.PresentationIntentType, 'FOR PRESENTATION');
  t.is(ds.BodyPartExamined, 'CHEST');
  t.is(ds.ViewPosition, 'PA');
  for (const uid of [a.sopInstanceUid, a.studyInstanceUid, a.seriesInstanceUid]) {
    t.regex(uid, /^2\.25\.(0|[1-9]\d*)$/);
    t.true(uid.length <= 64);
    t.true(BigInt(uid.slice(5)) < 2n ** 128n);
  }
  t.not(a.sopInstanceUid, b.sopInstanceUid);
  t.not(a.studyInstanceUid, b.studyInstanceUid);
  t.not(a.seriesInstanceUid, b.seriesInstanceUid);
});

test('options are written to the file', (t) => {
  const opts: SyntheticImageOptions = {
    studyInstanceUid: '1.2.3.4',
    seriesInstanceUid: '1.2.3.4.5',
    sopInstanceUid: '1.2.3.4.5.6',
    patientId: 'PID42',
    patientName: 'Doe^Jane',
    accessionNumber: 'ACC42',
    bodyPartExamined: 'THORAX',
    viewPosition: 'AP',
    instanceNumber: 7,
    sopClass: 'cr',
    transferSyntax: 'implicit',
  };
  const file = makeImageFile(opts);
  t.like(file, {
    studyInstanceUid: '1.2.3.4',
    seriesInstanceUid: '1.2.3.4.5',
    sopInstanceUid: '1.2.3.4.5.6',
    sopClassUid: SOP_CLASS_UID.cr,
    transferSyntaxUid: IMPLICIT_VR_LITTLE_ENDIAN,
  });
  const { ds } = parse(file.bytes);
  t.is(ds.PatientID, 'PID42');
  t.deepEqual(ds.PatientName, [{ Alphabetic: 'Doe^Jane' }]);
  t.is(ds.AccessionNumber, 'ACC42');
  t.is(ds.BodyPartExamined, 'THORAX');
  t.is(ds.ViewPosition, 'AP');
  t.is(ds.InstanceNumber, 7);
  t.is(ds.Modality, 'CR');
  t.is(parse(makeImageFile({ modality: 'OT' }).bytes).ds.Modality, 'OT');
});

test('invalid geometry is refused', (t) => {
  t.throws(() => makeImageFile({ rows: 0 }), { message: /rows/ });
  t.throws(() => makeImageFile({ bitsAllocated: 8, bitsStored: 12 }), { message: /bitsStored/ });
  t.throws(() => makeImageFile({ bitsStored: 4 }), { message: /DX images need bitsStored >= 6/ });
});

// ---------------------------------------------------------------------------------------------------------------
// Pixel content

test('same seed gives identical pixels, different seeds differ', async (t) => {
  for (const opts of [
    { bitsAllocated: 16 as const },
    { bitsAllocated: 8 as const, photometric: 'MONOCHROME1' as const },
  ]) {
    const a = await writeImageFile(workDir, { ...opts, seed: 42 });
    const b = await writeImageFile(workDir, { ...opts, seed: 42, transferSyntax: 'implicit' });
    const c = await writeImageFile(workDir, { ...opts, seed: 43 });
    const pa = await readNativePixelData(a.path);
    const pb = await readNativePixelData(b.path);
    const pc = await readNativePixelData(c.path);
    t.is(pa.length, 256 * 256 * (opts.bitsAllocated / 8));
    t.true(pa.equals(pb), 'same seed, same pixels');
    t.false(pa.equals(pc), 'different seed, different pixels');
    t.true(pa.equals(makePixelData({ ...opts, seed: 42 })));
  }
  t.false(makePixelData({ seed: 0 }).equals(makePixelData({ seed: 1 })));
  t.true(makePixelData().equals(makePixelData({ seed: 0 })), 'default seed is 0');
});

test('pixels fit Bits Stored, span a useful range, and MONOCHROME1 is the inverse of MONOCHROME2', (t) => {
  for (const bitsStored of [8, 10, 12, 16]) {
    const bitsAllocated = bitsStored > 8 ? 16 : 8;
    const values = samples(makePixelData({ bitsAllocated, bitsStored, seed: 5 }), bitsAllocated);
    const max = Math.max(...values);
    const min = Math.min(...values);
    t.true(max <= 2 ** bitsStored - 1, `max ${max} fits ${bitsStored} bits`);
    t.true(max - min > (2 ** bitsStored - 1) / 3, `range ${min}..${max} is not flat`);
  }
  const m2 = samples(makePixelData({ seed: 9 }), 16);
  const m1 = samples(makePixelData({ seed: 9, photometric: 'MONOCHROME1' }), 16);
  t.deepEqual(
    m1,
    m2.map((v) => 4095 - v),
  );
  // Odd pixel count with 8 bits: Pixel Data is padded to an even length in the file, trimmed on read.
  t.is(makePixelData({ rows: 3, columns: 3, bitsAllocated: 8 }).length, 10);
});

// ---------------------------------------------------------------------------------------------------------------
// Compression

/** A source that each syntax accepts: baseline needs 8 bits, extended <= 12; others take the 16/12 default. */
const COMPRESSION_SOURCES: Record<CompressedSyntax, SyntheticImageOptions[]> = {
  deflated: [{}, { bitsAllocated: 8, transferSyntax: 'implicit' }],
  'jpeg-baseline': [{ bitsAllocated: 8 }, { bitsAllocated: 8, rows: 101, columns: 77, photometric: 'MONOCHROME1' }],
  'jpeg-extended': [{}, { bitsAllocated: 8 }],
  'jpeg-lossless-p14': [{}, { bitsStored: 16, transferSyntax: 'implicit' }, { bitsAllocated: 8 }],
  'jpeg-lossless-sv1': [{}, { bitsStored: 16 }, { bitsAllocated: 8, sopClass: 'cr' }],
  'jpeg-ls-lossless': [{}, { bitsStored: 16 }, { bitsAllocated: 8 }],
  'jpeg-ls-lossy': [{}, { bitsAllocated: 8 }],
  'jpeg2000-lossless': [
    {},
    { bitsStored: 16, transferSyntax: 'implicit' },
    { bitsAllocated: 8, rows: 101, columns: 77 },
  ],
  'jpeg2000-lossy': [{}, { bitsAllocated: 8 }],
  rle: [{}, { bitsStored: 16 }, { bitsAllocated: 8, rows: 101, columns: 77 }],
};

for (const syntax of COMPRESSED_SYNTAXES) {
  test(`compressFile ${syntax}: right transfer syntax, parses, ${LOSSLESS[syntax] ? 'round-trips exactly' : 'decodes close to the source'}`, async (t) => {
    for (const [i, opts] of (COMPRESSION_SOURCES[syntax] ?? []).entries()) {
      const label = `${syntax} from ${JSON.stringify(opts)}`;
      const src = await writeImageFile(workDir, { seed: 100 + i, ...opts });
      const dst = join(workDir, `${src.sopInstanceUid}.${syntax}.dcm`);
      await compressFile(src.path, dst, syntax);

      const dump = await dcmdump(dst);
      t.regex(dump, new RegExp(`\\(0002,0010\\) UI [=\\[]`), label);
      const compressed = await readFile(dst);
      const { meta, ds } = parse(compressed);
      t.is(meta.TransferSyntaxUID, TRANSFER_SYNTAX_UID[syntax], label);
      t.is(ds.SOPInstanceUID, src.sopInstanceUid, `${label}: SOP Instance UID kept`);
      t.is(ds.LossyImageCompression, LOSSLESS[syntax] ? '00' : '01', label);
      if (syntax !== 'deflated') {
        // dicom3tools cannot read Deflated Explicit VR Little Endian, so only the others are validated.
        const v = await dciodvfy(dst);
        t.deepEqual(v.errors, [], `${label}\n${v.output}`);
        for (const w of v.warnings) t.log(label, w);
      } else {
        t.true(compressed.length < src.bytes.length, 'deflate shrinks the file');
      }

      const original = await readNativePixelData(src.path);
      const decodedPath = join(workDir, `${src.sopInstanceUid}.${syntax}.decoded.dcm`);
      await decompressFile(dst, decodedPath);
      const decoded = await readNativePixelData(decodedPath);
      t.is(decoded.length, original.length, label);
      const bits = (opts.bitsAllocated ?? 16) as 8 | 16;
      if (LOSSLESS[syntax]) {
        t.true(decoded.equals(original), `${label}: lossless round trip`);
      } else {
        const a = samples(original, bits);
        const b = samples(decoded, bits);
        let sum = 0;
        let worst = 0;
        for (let k = 0; k < a.length; k++) {
          const d = Math.abs((a[k] ?? 0) - (b[k] ?? 0));
          sum += d;
          worst = Math.max(worst, d);
        }
        const range = 2 ** (opts.bitsStored ?? (bits === 16 ? 12 : 8)) - 1;
        t.false(decoded.equals(original), `${label}: lossy output differs somewhere`);
        t.log(`${label}: mean abs error ${(sum / a.length).toFixed(3)}, worst ${worst} (range ${range})`);
        t.true(sum / a.length < range * 0.02, `${label}: mean abs error ${sum / a.length} small`);
        if (syntax === 'jpeg-ls-lossy') t.true(worst <= 2, `${label}: near-lossless NEAR=2, worst ${worst}`);
        t.truthy(ds.LossyImageCompressionMethod, label);
        t.truthy(ds.LossyImageCompressionRatio, label);
      }
    }
  });
}

test('JPEG 2000: one even-length fragment after a Basic Offset Table, and opj_decompress decodes it', async (t) => {
  const src = await writeImageFile(workDir, { seed: 7 });
  const original = await readNativePixelData(src.path);
  for (const syntax of ['jpeg2000-lossless', 'jpeg2000-lossy'] as const) {
    const dst = join(workDir, `${src.sopInstanceUid}.${syntax}.j2k.dcm`);
    await compressFile(src.path, dst, syntax);
    const dump = await dcmdump(dst);
    t.regex(dump, /\(7fe0,0010\) OB \(PixelSequence #=2\)/, 'Basic Offset Table item + one fragment');
    const fragmentLength = /\(7fe0,0010\)[^\n]*\n[^\n]*\n\s*\(fffe,e000\) pi [^#]*#\s*(\d+),/.exec(dump)?.[1];
    t.truthy(fragmentLength);
    t.is(Number(fragmentLength) % 2, 0, 'fragment has even length');

    const [frame] = await readEncapsulatedFrames(dst);
    t.truthy(frame);
    t.deepEqual(
      [...(frame ?? Buffer.alloc(0)).subarray(0, 4)],
      [0xff, 0x4f, 0xff, 0x51],
      'J2K codestream: SOC then SIZ',
    );
    const j2k = join(workDir, `${src.sopInstanceUid}.${syntax}.j2k`);
    const raw = join(workDir, `${src.sopInstanceUid}.${syntax}.rawl`);
    await writeFile(j2k, frame ?? Buffer.alloc(0));
    await execFileAsync('opj_decompress', ['-i', j2k, '-o', raw]);
    const pixels = await readFile(raw);
    t.is(pixels.length, original.length);
    if (syntax === 'jpeg2000-lossless') t.true(pixels.equals(original), 'reversible 5/3 is exact');
    else t.false(pixels.equals(original));
  }
});

test('compressFile refuses sources that do not fit, with a clear message', async (t) => {
  const twelveBit = await writeImageFile(workDir, {});
  const sixteenBit = await writeImageFile(workDir, { bitsStored: 16 });
  const out = join(workDir, 'refused.dcm');
  await t.throwsAsync(compressFile(twelveBit.path, out, 'jpeg-baseline'), {
    message: /jpeg-baseline.*Bits Stored is 12.*needs an 8-bit image/,
  });
  await t.throwsAsync(compressFile(sixteenBit.path, out, 'jpeg-extended'), {
    message: /jpeg-extended.*Bits Stored is 16.*needs Bits Stored <= 12/,
  });
  const compressed = join(workDir, `${twelveBit.sopInstanceUid}.rle-src.dcm`);
  await compressFile(twelveBit.path, compressed, 'rle');
  await t.throwsAsync(compressFile(compressed, out, 'jpeg-lossless-sv1'), {
    message: /transfer syntax 1\.2\.840\.10008\.1\.2\.5, not Implicit\/Explicit VR Little Endian/,
  });
  await t.throwsAsync(compressFile(twelveBit.path, out, 'nope' as CompressedSyntax), {
    message: /unknown compressed syntax/,
  });
});
