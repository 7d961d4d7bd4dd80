// Pixel pipeline cost per transfer syntax: readImage (parse + decode + modality values) and preprocess (window,
// antialiased resize to 224, channels, mean/std) for one 2500 x 2048 radiograph.
//
//   node dist/bench/preprocess.js [--runs 5] [--rows 2500] [--columns 2048] [--bits-stored 12] [--size 224] [--json]
//
// One synthetic chest image (test/helpers/dicom-factory.ts, 16 bits allocated) is written once and converted with
// compressFile() into every syntax it can make (JPEG baseline from an 8-bit twin, since baseline is 8-bit only),
// plus HTJ2K and JPEG XL encoded by dcmjs-codecs itself. Each file is read from memory (no disk in the timing): one
// untimed warm-up, then --runs timed runs; the table shows medians.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { preprocessingSchema } from '../src/imaging/preprocessing-spec.js';
import { preprocess } from '../src/imaging/preprocess.js';
import { readImage } from '../src/imaging/read-image.js';
import { nativeSamples16, wasmEncode, wrapFrame } from '../test/imaging/pixel-fixtures.js';
import {
  COMPRESSED_SYNTAXES,
  LOSSLESS,
  SOURCE_REQUIREMENTS,
  TRANSFER_SYNTAX_UID,
  compressFile,
  writeImageFile,
} from '../test/helpers/dicom-factory.js';

interface Options {
  runs: number;
  rows: number;
  columns: number;
  bitsStored: number;
  size: number;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 5, rows: 2500, columns: 2048, bitsStored: 12, size: 224, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): number => Number(argv[++i]);
    if (a === '--runs') o.runs = next();
    else if (a === '--rows') o.rows = next();
    else if (a === '--columns') o.columns = next();
    else if (a === '--bits-stored') o.bitsStored = next();
    else if (a === '--size') o.size = next();
    else if (a === '--json') o.json = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

interface Row {
  syntax: string;
  uid: string;
  lossless: boolean;
  bits: string;
  mb: number;
  readMs: number;
  preprocessMs: number;
  totalMs: number;
  maxAbsError: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-preprocess-'));
  try {
    const spec = preprocessingSchema.parse({ inputSize: o.size });
    const geometry = { rows: o.rows, columns: o.columns };
    const src16 = await writeImageFile(dir, { ...geometry, bitsAllocated: 16, bitsStored: o.bitsStored, seed: 7 });
    const src8 = await writeImageFile(dir, { ...geometry, bitsAllocated: 8, bitsStored: 8, seed: 7 });
    const files: { syntax: string; uid: string; lossless: boolean; bits: string; bytes: Buffer; reference: Buffer }[] =
      [];
    const bits16 = `16/${o.bitsStored}`;
    files.push({
      syntax: 'explicit-le',
      uid: '1.2.840.10008.1.2.1',
      lossless: true,
      bits: bits16,
      bytes: src16.bytes,
      reference: src16.bytes,
    });
    const implicit = await writeImageFile(dir, {
      ...geometry,
      bitsAllocated: 16,
      bitsStored: o.bitsStored,
      seed: 7,
      transferSyntax: 'implicit',
    });
    files.push({
      syntax: 'implicit-le',
      uid: '1.2.840.10008.1.2',
      lossless: true,
      bits: bits16,
      bytes: implicit.bytes,
      reference: src16.bytes,
    });
    for (const syntax of COMPRESSED_SYNTAXES) {
      const eightBit = SOURCE_REQUIREMENTS[syntax].bitsAllocated?.includes(16) === false;
      const source = eightBit ? src8 : src16;
      if (!eightBit && SOURCE_REQUIREMENTS[syntax].maxBitsStored < o.bitsStored) continue;
      const out = path.join(dir, `${syntax}.dcm`);
      await compressFile(source.path, out, syntax);
      files.push({
        syntax,
        uid: TRANSFER_SYNTAX_UID[syntax],
        lossless: LOSSLESS[syntax],
        bits: eightBit ? '8/8' : bits16,
        bytes: readFileSync(out),
        reference: source.bytes,
      });
    }
    const samples = nativeSamples16(src16.bytes);
    for (const [syntax, uid, encoder] of [
      ['htj2k-lossless (dcmjs-codecs)', '1.2.840.10008.1.2.4.201', 'encodeHtJpeg2000'],
      ['jpeg-xl-lossless (dcmjs-codecs)', '1.2.840.10008.1.2.4.110', 'encodeJpegXl'],
    ] as const) {
      const frame = await wasmEncode(encoder, samples, { ...geometry, bitsStored: o.bitsStored });
      const bytes = wrapFrame(src16.bytes, uid, [frame]);
      writeFileSync(path.join(dir, `${encoder}.dcm`), bytes);
      files.push({ syntax, uid, lossless: true, bits: bits16, bytes, reference: src16.bytes });
    }

    const rows: Row[] = [];
    for (const f of files) {
      const reference = readImage(f.reference).values;
      const decoded = readImage(f.bytes); // warm-up
      let maxAbsError = 0;
      for (let i = 0; i < reference.length; i++)
        maxAbsError = Math.max(maxAbsError, Math.abs((decoded.values[i] ?? 0) - (reference[i] ?? 0)));
      preprocess(decoded, spec);
      const read: number[] = [];
      const prep: number[] = [];
      const total: number[] = [];
      for (let r = 0; r < o.runs; r++) {
        const t0 = performance.now();
        const image = readImage(f.bytes);
        const t1 = performance.now();
        preprocess(image, spec);
        const t2 = performance.now();
        read.push(t1 - t0);
        prep.push(t2 - t1);
        total.push(t2 - t0);
      }
      rows.push({
        syntax: f.syntax,
        uid: f.uid,
        lossless: f.lossless,
        bits: f.bits,
        mb: f.bytes.length / 1e6,
        readMs: median(read),
        preprocessMs: median(prep),
        totalMs: median(total),
        maxAbsError,
      });
    }
    if (o.json) {
      console.log(JSON.stringify({ options: o, node: process.version, cpu: os.cpus()[0]?.model, rows }, null, 2));
      return;
    }
    console.log(
      `readImage + preprocess to ${o.size}: ${o.rows} x ${o.columns}, median of ${o.runs} (after 1 warm-up); node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x ${os.cpus().length}`,
    );
    console.log('');
    console.log(
      '| syntax | UID | bits (alloc/stored) | file MB | readImage ms | preprocess ms | total ms | max abs error vs native |',
    );
    console.log('|---|---|---|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(
        `| ${r.syntax} | ${r.uid} | ${r.bits} | ${r.mb.toFixed(2)} | ${r.readMs.toFixed(1)} | ${r.preprocessMs.toFixed(1)} | ${r.totalMs.toFixed(1)} | ${r.maxAbsError}${r.lossless ? '' : ' (lossy)'} |`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
