// Instructions, not time: DenseNet forward and LRP on the wasm backend, counted under valgrind.
//
//   node dist/bench/lrp-instructions.js [--arch densenet201] [--size 224] [--batch 1] [--composites isnet,epsilon]
//       [--repeats 2] [--seed 0] [--negative-scales] [--json]
//
// Why: on a shared VM the speed drifts by up to 2x within a minute (bench/densenet.ts measured forward passes of 462
// to 867 ms in one run), which makes a wall-time ratio near a target a coin toss. The number of instructions executed
// does not drift. It is not time (memory stalls cost time without instructions), so it complements densenet.ts.
// How: random torchvision weights from tools/bench_torch_densenet.py --export-weights (as densenet.ts); a seeded random
// input. Each count is a child `valgrind --tool=cachegrind --cache-sim=no node <this script> --count <kind> ...` that
// loads the network, builds every composite's LRP, runs the forward pass and each composite once (the first call of a
// kernel also prepares it: XNNPACK packs the filters), then --repeats runs of <kind>; kind 'none' runs nothing more,
// so (I(kind) - I(none)) / (repeats * batch) is one image's share. Children run two at a time, each with V8's
// --single-threaded: with background compilation, a hot JavaScript loop ran in the baseline tier until the optimised
// code arrived, which under valgrind took long enough to swing one LRP's count by 8 G instructions (60 %) between
// identical runs; compiled in the foreground, two counts of one configuration gave isnet/forward 2.913 and 2.895. valgrind must be on PATH
// (Debian: apt-get install valgrind); a count takes about 4 minutes at batch 1.
// --negative-scales negates the BatchNorm scale of every third channel before each norm1, transition and norm5:
// trained weights have such channels (torchvision's random init has none), and alpha-beta then keeps the relevance
// that came through them apart, which costs more.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/inference/backend.js';
import type { CompositeName } from '../src/lrp/composites.js';
import { DenseNetLrp } from '../src/lrp/densenet-lrp.js';
import {
  CLASSES,
  NORMALISATION,
  ROOT,
  archOption,
  compositesOption,
  exportRandomWeights,
  integerOption,
  loadDenseNet,
  type Arch,
} from './densenet-bench-setup.js';

type Kind = 'none' | 'forward' | CompositeName;

interface Options {
  arch: Arch;
  size: number;
  batch: number;
  composites: CompositeName[];
  repeats: number;
  seed: number;
  negativeScales: boolean;
  json: boolean;
}

interface CountSpec extends Omit<Options, 'json'> {
  kind: Kind;
  weightsFile: string;
}

const SCRIPT = fileURLToPath(import.meta.url);
const EXPORT_TIMEOUT_MS = 600_000;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    arch: 'densenet201',
    size: 224,
    batch: 1,
    composites: ['isnet', 'epsilon'],
    repeats: 2,
    seed: 0,
    negativeScales: false,
    json: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--arch') o.arch = archOption(next());
    else if (a === '--size') o.size = integerOption(next(), a, 32);
    else if (a === '--batch') o.batch = integerOption(next(), a, 1);
    else if (a === '--repeats') o.repeats = integerOption(next(), a, 1);
    else if (a === '--seed') o.seed = integerOption(next(), a, 0);
    else if (a === '--composites') o.composites = compositesOption(next());
    else if (a === '--negative-scales') o.negativeScales = true;
    else if (a === '--json') o.json = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

/** The child: everything the other children do, then `repeats` runs of one kind. */
async function count(spec: CountSpec): Promise<void> {
  await selectBackend('wasm');
  const net = loadDenseNet(spec.arch, spec.weightsFile, (tensors) => {
    if (!spec.negativeScales) return;
    for (const [name, entry] of tensors) {
      if (/(norm1|transition\d\.norm|norm5)\.weight$/.test(name))
        tensors.set(name, { ...entry, data: Float32Array.from(entry.data, (v, i) => (i % 3 === 1 ? -v : v)) });
    }
  });
  const lrps = new Map(
    spec.composites.map((c) => [c, new DenseNetLrp(net, CLASSES, NORMALISATION, { composite: c })] as const),
  );
  const x = tf.randomNormal([spec.batch, spec.size, spec.size, 3], 0, 1, 'float32', spec.seed + 1) as tf.Tensor4D;
  const run = async (kind: Kind) => {
    if (kind === 'none') return;
    if (kind === 'forward') {
      const y = net.logits(x);
      await y.data();
      y.dispose();
    } else await (lrps.get(kind) as DenseNetLrp).explain(x);
  };
  await run('forward');
  for (const c of spec.composites) await run(c);
  for (let i = 0; i < spec.repeats; i += 1) await run(spec.kind);
}

/** Runs one child under cachegrind; resolves to the instructions it executed. */
function countUnderValgrind(spec: CountSpec): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'valgrind',
      [
        '--tool=cachegrind',
        '--cache-sim=no',
        '--cachegrind-out-file=/dev/null',
        process.execPath,
        '--single-threaded',
        SCRIPT,
        '--count',
        JSON.stringify(spec),
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const refs = /I\s+refs:\s+([\d,]+)/.exec(stderr)?.[1];
      if (code !== 0 || refs === undefined)
        reject(new Error(`count of ${spec.kind} failed (exit ${code}): ${stderr.split('\n').slice(-8).join('\n')}`));
      else resolve(Number(refs.replaceAll(',', '')));
    });
  });
}

async function main(o: Options): Promise<void> {
  if (spawnSync('valgrind', ['--version']).status !== 0)
    throw new Error('valgrind is not on PATH (Debian: apt-get install valgrind)');
  const started = Date.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-lrp-instructions-'));
  try {
    const weightsFile = path.join(dir, `${o.arch}-random-seed${o.seed}.safetensors`);
    exportRandomWeights({ arch: o.arch, seed: o.seed, size: o.size, threads: 2 }, weightsFile, EXPORT_TIMEOUT_MS);
    const kinds: Kind[] = ['none', 'forward', ...o.composites];
    const counts = new Map<Kind, number>();
    const queue = [...kinds];
    const lane = async () => {
      for (let kind = queue.shift(); kind !== undefined; kind = queue.shift()) {
        process.stderr.write(`counting ${kind} under valgrind...\n`);
        const { json: _json, ...rest } = o;
        counts.set(kind, await countUnderValgrind({ ...rest, kind, weightsFile }));
      }
    };
    await Promise.all([lane(), lane()]);
    const base = counts.get('none') ?? 0;
    const perImage = (k: Kind) => ((counts.get(k) ?? 0) - base) / (o.repeats * o.batch);
    const forward = perImage('forward');
    const result = {
      command: `node dist/bench/lrp-instructions.js ${process.argv.slice(2).join(' ')}`.trim(),
      date: new Date(started).toISOString(),
      minutes: Math.round((Date.now() - started) / 600) / 100,
      options: o,
      forwardInstructionsPerImage: forward,
      composites: o.composites.map((c) => ({
        composite: c,
        instructionsPerImage: perImage(c),
        ratioToForward: Math.round((perImage(c) / forward) * 1000) / 1000,
      })),
      rawCounts: Object.fromEntries(counts),
    };
    if (o.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    const g = (n: number) => `${(n / 1e9).toFixed(3)} G`;
    process.stdout.write(`${result.command}: ${result.date}, ${result.minutes} min\n`);
    process.stdout.write(
      `${o.arch}, ${o.size}x${o.size}, batch ${o.batch}, ${o.repeats} counted runs per kind${o.negativeScales ? ', every third BatchNorm scale negated' : ''}\n\n`,
    );
    process.stdout.write('| what | instructions per image | / forward |\n|---|---:|---:|\n');
    process.stdout.write(`| forward | ${g(forward)} | 1 |\n`);
    for (const c of result.composites)
      process.stdout.write(`| LRP ${c.composite} | ${g(c.instructionsPerImage)} | ${c.ratioToForward.toFixed(3)} |\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--count') {
  count(JSON.parse(process.argv[3] ?? '{}') as CountSpec).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
} else {
  Promise.resolve()
    .then(() => main(parseArgs(process.argv.slice(2))))
    .catch((error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    });
}
