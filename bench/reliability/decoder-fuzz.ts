// Decoder fuzzer: base images in every transfer syntax the gateway accepts (native explicit/implicit, deflate, JPEG
// baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE; made with dcmtk's dcmconv/dcmcjpeg/dcmcjpls/dcmcrle and
// opj_compress through test/helpers/dicom-factory.ts), mutated (pixel bit flips, truncation, overwritten and zeroed
// runs, fragment and element lengths off, absurd image-pixel-module values) and fed one by one to the pixel path in a
// child process (decoder-fuzz-child.ts). Counted: decoded, clean errors (PixelDecodeError with a code), unclean
// errors (any other exception), crashes (the child died; it is restarted) and hangs (no answer in --timeout s; the
// child is killed and restarted).
//
//   node dist/bench/reliability/decoder-fuzz.js [--inputs 10000] [--seed N] [--timeout 10] [--time-limit 600] [--replay I]

import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  COMPRESSED_SYNTAXES,
  compressFile,
  writeImageFile,
  type CompressedSyntax,
} from '../../test/helpers/dicom-factory.js';
import { datasetBytesOfPart10 } from '../../test/helpers/raw-scu.js';
import type { DecodeAnswer } from './decoder-fuzz-child.js';
import {
  Rng,
  check,
  elapsedSeconds,
  isMain,
  parseNumberOptions,
  printSummary,
  randomSeed,
  runMain,
  scratchDir,
  type Figure,
} from './harness.js';
import { streamSeed } from './pdu-streams.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'decoder-fuzz-child.js');

export interface DecoderFuzzOptions extends Record<string, number> {
  inputs: number;
  seed: number;
  timeout: number;
  timeLimit: number;
  replay: number;
}

type Syntax = 'explicit' | 'implicit' | CompressedSyntax;

interface BaseFile {
  syntax: Syntax;
  bytes: Buffer;
  /** Where the mutable region starts and ends: the Pixel Data value, or the whole deflated dataset. */
  regionStart: number;
  encapsulated: boolean;
}

export interface DecoderFuzzResult {
  figures: Figure[];
  ok: boolean;
  inputs: number;
  decoded: number;
  cleanErrors: number;
  uncleanErrors: number;
  crashes: number;
  hangs: number;
  baseFailures: string[];
  bySyntax: Record<string, { n: number; decoded: number; clean: number; unclean: number; crash: number; hang: number }>;
  seconds: number;
}

/** Makes the base file of every syntax from one 16-bit/12-bit and one 8-bit native image. */
async function makeBaseFiles(seed: number): Promise<BaseFile[]> {
  const dir = scratchDir('decoder-base');
  const wide = await writeImageFile(dir, { rows: 128, columns: 128, seed });
  const narrow = await writeImageFile(dir, { rows: 128, columns: 128, bitsAllocated: 8, seed: seed + 1 });
  const implicitPath = path.join(dir, 'implicit.dcm');
  const { runCommand } = await import('../../test/helpers/run-command.js');
  const conv = await runCommand('dcmconv', ['+ti', wide.path, implicitPath]);
  if (conv.code !== 0) throw new Error(`dcmconv +ti failed: ${conv.stderr}`);
  const out: BaseFile[] = [
    describe('explicit', readFileSync(wide.path)),
    describe('implicit', readFileSync(implicitPath)),
  ];
  for (const syntax of COMPRESSED_SYNTAXES) {
    const dst = path.join(dir, `${syntax}.dcm`);
    await compressFile(syntax === 'jpeg-baseline' ? narrow.path : wide.path, dst, syntax);
    out.push(describe(syntax, readFileSync(dst)));
  }
  return out;
}

function describe(syntax: Syntax, bytes: Buffer): BaseFile {
  if (syntax === 'deflated') {
    const { dataset } = datasetBytesOfPart10(bytes);
    return { syntax, bytes, regionStart: bytes.length - dataset.length, encapsulated: false };
  }
  const tag = Buffer.from([0xe0, 0x7f, 0x10, 0x00]);
  const at = bytes.lastIndexOf(tag);
  if (at < 0) throw new Error(`${syntax}: no Pixel Data element found`);
  return {
    syntax,
    bytes,
    regionStart: at + (syntax === 'implicit' ? 8 : 12),
    encapsulated: syntax !== 'explicit' && syntax !== 'implicit',
  };
}

/** Offsets of the value of a US element (group 0028) in an explicit or implicit little-endian dataset. */
function usValueOffset(base: BaseFile, element: number): number | undefined {
  const tag = Buffer.from([0x28, 0x00, element & 0xff, element >> 8]);
  const at = base.bytes.indexOf(tag, 132);
  if (at < 0 || at > base.regionStart) return undefined;
  return at + 8;
}

const MUTATIONS = [
  'bit-flips',
  'truncate',
  'overwrite-run',
  'zero-run',
  'fragment-length',
  'pixel-length',
  'header',
] as const;

export function mutate(base: BaseFile, rng: Rng): { bytes: Buffer; mutation: string } {
  const bytes = Buffer.from(base.bytes);
  const start = base.regionStart;
  const span = Math.max(1, bytes.length - start);
  const mutation = rng.pick(MUTATIONS);
  switch (mutation) {
    case 'bit-flips': {
      const n = 1 + rng.int(32);
      // Half the time near the start of the region: codec headers (SOF, SIZ, RLE header) live there.
      for (let i = 0; i < n; i += 1) {
        const at = start + rng.int(rng.chance(0.5) ? Math.min(span, 64) : span);
        bytes[at] = (bytes[at] ?? 0) ^ (1 << rng.int(8));
      }
      return { bytes, mutation: `${n} bit flips` };
    }
    case 'truncate': {
      const cut = start + rng.int(span);
      return { bytes: bytes.subarray(0, cut), mutation: `truncated at ${cut}/${bytes.length}` };
    }
    case 'overwrite-run':
    case 'zero-run': {
      const length = 1 + rng.int(256);
      const at = start + rng.int(span);
      for (let i = at; i < Math.min(bytes.length, at + length); i += 1)
        bytes[i] = mutation === 'zero-run' ? 0 : rng.int(256);
      return { bytes, mutation: `${mutation} ${length} at ${at - start}` };
    }
    case 'fragment-length': {
      // An item (FFFE,E000) length inside encapsulated Pixel Data: the offset table or a fragment.
      const items: number[] = [];
      const itemTag = Buffer.from([0xfe, 0xff, 0x00, 0xe0]);
      for (let at = bytes.indexOf(itemTag, start); at >= 0 && at < bytes.length; at = bytes.indexOf(itemTag, at + 4))
        items.push(at + 4);
      if (!base.encapsulated || items.length === 0) return mutate(base, rng);
      const at = rng.pick(items);
      const length = rng.pick([
        0,
        1,
        3,
        0xffffffff,
        0x7fffffff,
        bytes.readUInt32LE(at) + 1,
        bytes.readUInt32LE(at) - 1,
        rng.int(1 << 20),
      ]);
      bytes.writeUInt32LE(length >>> 0, at);
      return { bytes, mutation: `item length ${length}` };
    }
    case 'pixel-length': {
      if (base.syntax === 'deflated') return mutate(base, rng);
      const at = start - 4;
      const old = bytes.readUInt32LE(at);
      const length = rng.pick([0, 2, old - 2, old + 2, old - 1, 0xffffffff, 0x7ffffffe, rng.int(1 << 24)]);
      bytes.writeUInt32LE(length >>> 0, at);
      return { bytes, mutation: `Pixel Data length ${length}` };
    }
    case 'header': {
      if (base.syntax === 'deflated') return mutate(base, rng);
      // Rows, Columns, Samples per Pixel, Bits Allocated, Bits Stored, High Bit, Pixel Representation.
      const element = rng.pick([0x0010, 0x0011, 0x0002, 0x0100, 0x0101, 0x0102, 0x0103]);
      const at = usValueOffset(base, element);
      if (at === undefined) return mutate(base, rng);
      const value = rng.pick([0, 1, 2, 7, 8, 9, 12, 15, 16, 17, 24, 32, 64, 255, 4096, 65535, rng.int(65536)]);
      bytes.writeUInt16LE(value, at);
      return { bytes, mutation: `(0028,${element.toString(16).padStart(4, '0')}) = ${value}` };
    }
  }
}

/** One child at a time; restarted after a crash or a hang. */
class Victim {
  private child: ChildProcess | undefined;
  private pending:
    { id: number; resolve: (a: DecodeAnswer | 'crash' | 'hang') => void; timer: NodeJS.Timeout } | undefined;

  async decode(id: number, bytes: Buffer, timeoutMs: number): Promise<DecodeAnswer | 'crash' | 'hang'> {
    const child = await this.ensure();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        this.kill();
        resolve('hang');
      }, timeoutMs);
      this.pending = { id, resolve, timer };
      child.send({ id, bytes: new Uint8Array(bytes) });
    });
  }

  kill(): void {
    const child = this.child;
    this.child = undefined;
    if (child?.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
  }

  private ensure(): Promise<ChildProcess> {
    if (this.child) return Promise.resolve(this.child);
    return new Promise((resolve, reject) => {
      const child = fork(CHILD, [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
      const onReady = (m: unknown): void => {
        if ((m as { ready?: boolean }).ready) {
          child.off('message', onReady);
          this.child = child;
          resolve(child);
        }
      };
      child.on('message', onReady);
      child.on('message', (m: DecodeAnswer & { ready?: boolean }) => {
        if (m.ready || !this.pending || m.id !== this.pending.id) return;
        const p = this.pending;
        this.pending = undefined;
        clearTimeout(p.timer);
        p.resolve(m);
      });
      child.once('exit', () => {
        if (this.child === child) this.child = undefined;
        if (this.pending) {
          const p = this.pending;
          this.pending = undefined;
          clearTimeout(p.timer);
          p.resolve('crash');
        }
      });
      child.once('error', reject);
    });
  }
}

export async function runDecoderFuzz(options: DecoderFuzzOptions): Promise<DecoderFuzzResult> {
  const started = Date.now();
  const deadline = started + options.timeLimit * 1000;
  const bases = await makeBaseFiles(options.seed);
  const victim = new Victim();
  const bySyntax: DecoderFuzzResult['bySyntax'] = Object.fromEntries(
    bases.map((b) => [b.syntax, { n: 0, decoded: 0, clean: 0, unclean: 0, crash: 0, hang: 0 }]),
  );
  const cleanCodes: Record<string, number> = {};
  const unclean: string[] = [];
  const failures: string[] = [];
  const baseFailures: string[] = [];
  let decoded = 0;
  let inconsistent = 0;
  let cleanErrors = 0;
  let uncleanErrors = 0;
  let crashes = 0;
  let hangs = 0;
  let inputs = 0;
  try {
    // Every base file must decode as it is (the WASM codecs load on the first; a generous timeout for that).
    for (const base of bases) {
      const answer = await victim.decode(-1, base.bytes, 60_000);
      if (typeof answer === 'string' || answer.outcome !== 'decoded')
        baseFailures.push(`${base.syntax}: ${JSON.stringify(answer)}`);
    }
    const indices = options.replay >= 0 ? [options.replay] : Array.from({ length: options.inputs }, (_, i) => i);
    for (const i of indices) {
      if (Date.now() > deadline) break;
      const rng = new Rng(streamSeed(options.seed, i));
      const base = bases[i % bases.length] as BaseFile;
      const { bytes, mutation } = mutate(base, rng);
      const answer = await victim.decode(i, bytes, options.timeout * 1000);
      inputs += 1;
      const s = bySyntax[base.syntax] as DecoderFuzzResult['bySyntax'][string];
      s.n += 1;
      const where = `#${i} ${base.syntax} ${mutation}`;
      if (answer === 'crash') {
        crashes += 1;
        s.crash += 1;
        failures.push(`crash: ${where}`);
      } else if (answer === 'hang') {
        hangs += 1;
        s.hang += 1;
        failures.push(`hang: ${where}`);
      } else if (answer.outcome === 'decoded') {
        decoded += 1;
        s.decoded += 1;
        if (!answer.consistent) {
          inconsistent += 1;
          failures.push(`decoded to inconsistent values: ${where}`);
        }
      } else if (answer.outcome === 'clean-error') {
        cleanErrors += 1;
        s.clean += 1;
        cleanCodes[answer.code] = (cleanCodes[answer.code] ?? 0) + 1;
      } else {
        uncleanErrors += 1;
        s.unclean += 1;
        unclean.push(`${answer.name}: ${answer.message}`);
        failures.push(`unclean error (${answer.name}: ${answer.message.slice(0, 80)}): ${where}`);
      }
    }
  } finally {
    victim.kill();
  }
  const figures: Figure[] = [
    ['syntaxes', bases.map((b) => b.syntax).join(' ')],
    [
      'base files that decode unmutated',
      `${bases.length - baseFailures.length}/${bases.length}`,
      check(baseFailures.length === 0),
    ],
    ['mutated inputs', inputs, check(inputs === (options.replay >= 0 ? 1 : options.inputs))],
    ['decoded (mutation in pixel values only)', decoded],
    ['  with inconsistent values', inconsistent, check(inconsistent === 0)],
    ['clean errors (PixelDecodeError)', cleanErrors],
    [
      '  by code',
      Object.entries(cleanCodes)
        .map(([k, v]) => `${k}:${v}`)
        .join(' '),
    ],
    ['unclean errors (other exceptions)', uncleanErrors, check(uncleanErrors === 0)],
    ['crashes of the decoding process', crashes, check(crashes === 0)],
    [`hangs (no answer in ${options.timeout} s)`, hangs, check(hangs === 0)],
    [
      '  by syntax (n/decoded/clean/unclean/crash/hang)',
      Object.entries(bySyntax)
        .map(([k, v]) => `${k}:${v.n}/${v.decoded}/${v.clean}/${v.unclean}/${v.crash}/${v.hang}`)
        .join(' '),
    ],
    ['seconds', elapsedSeconds(started)],
  ];
  for (const f of baseFailures) console.error(`base file failed: ${f}`);
  for (const f of failures.slice(0, 15)) console.log(`  ${f}`);
  if (failures.length > 15)
    console.log(`  ... and ${failures.length - 15} more (replay one: --seed ${options.seed} --replay I)`);
  return {
    figures,
    ok: !figures.some(([, , v]) => v === 'FAIL'),
    inputs,
    decoded,
    cleanErrors,
    uncleanErrors,
    crashes,
    hangs,
    baseFailures,
    bySyntax,
    seconds: (Date.now() - started) / 1000,
  };
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    const options = parseNumberOptions(process.argv.slice(2), {
      inputs: 10000,
      seed: randomSeed(),
      timeout: 10,
      timeLimit: 600,
      replay: -1,
    });
    console.log(`decoder-fuzz: seed ${options.seed}`);
    const result = await runDecoderFuzz(options);
    printSummary('decoder fuzzer', options.seed, options, result.figures);
    return result.ok;
  });
}
