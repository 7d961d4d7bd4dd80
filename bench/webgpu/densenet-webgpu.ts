// DenseNet forward and LRP on the webgpu backend (Dawn over Vulkan): ms per image at each batch size.
//
//   node dist/bench/webgpu/densenet-webgpu.js [--arch densenet201] [--size 224] [--batches 1,8] [--repeats 5]
//       [--warmup 2] [--composite isnet] [--reference FILE.safetensors] [--allow-software] [--seed 0] [--json-out FILE]
//
// Made to run on a GPU machine without internet from the bundle that make-bundle.sh builds (run.sh drives it).
// --reference: weights, input and logits written by torch_cuda_densenet.py --export, so TF.js runs PyTorch's
// exact model and input and its logits are checked against PyTorch's (CUDA, TF32 off). Without it the weights
// and the input are random from --seed (no check). Timing: --warmup untimed runs, then --repeats timed runs
// of the forward pass (`await logits.data()`) and of LRP (`await explain(x, 'predicted')`), interleaved;
// medians per image. The first warm-up includes WGSL shader compilation and is reported separately.
// A software adapter (lavapipe) is refused unless --allow-software (for a local smoke test only).

import { readFileSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/inference/backend.js';
import {
  DENSENET_VARIANTS,
  expectedParameters,
  namedDenseNet,
  type DenseNetArchitecture,
} from '../../src/inference/densenet-architecture.js';
import { DenseNet } from '../../src/inference/densenet.js';
import { readSafetensors } from '../../src/inference/safetensors.js';
import { deviceErrors } from '../../src/inference/webgpu-device-errors.js';
import { checkDenseNetWeights, type HostTensor } from '../../src/inference/weight-import.js';
import { COMPOSITE_NAMES, type CompositeName } from '../../src/lrp/composites.js';
import { DenseNetLrp } from '../../src/lrp/densenet-lrp.js';

type Arch = keyof typeof DENSENET_VARIANTS;

interface Options {
  arch: Arch;
  size: number;
  batches: number[];
  repeats: number;
  warmup: number;
  composite: CompositeName;
  reference?: string;
  allowSoftware: boolean;
  seed: number;
  jsonOut?: string;
}

const CLASSES = ['COVID-19', 'pneumonia', 'normal'];
const NORMALISATION = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

function parseArgs(argv: string[]): Options {
  const o: Options = {
    arch: 'densenet201',
    size: 224,
    batches: [1, 8],
    repeats: 5,
    warmup: 2,
    composite: 'isnet',
    allowSoftware: false,
    seed: 0,
  };
  const int = (s: string | undefined, name: string, min: number) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} needs an integer >= ${min}, got ${s}`);
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--arch') {
      const v = next() ?? '';
      if (!(v in DENSENET_VARIANTS)) throw new Error(`--arch: one of ${Object.keys(DENSENET_VARIANTS).join(', ')}`);
      o.arch = v as Arch;
    } else if (a === '--size') o.size = int(next(), a, 32);
    else if (a === '--batches') o.batches = (next() ?? '').split(',').map((b) => int(b, a, 1));
    else if (a === '--repeats') o.repeats = int(next(), a, 1);
    else if (a === '--warmup') o.warmup = int(next(), a, 1);
    else if (a === '--composite') {
      const v = next() ?? '';
      if (!(COMPOSITE_NAMES as readonly string[]).includes(v))
        throw new Error(`--composite: one of ${COMPOSITE_NAMES.join(', ')}`);
      o.composite = v as CompositeName;
    } else if (a === '--reference') o.reference = next();
    else if (a === '--allow-software') o.allowSoftware = true;
    else if (a === '--seed') o.seed = int(next(), a, 0);
    else if (a === '--json-out') o.jsonOut = next();
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

/** mulberry32 with Box-Muller: deterministic normal samples without a dependency. */
function normalSampler(seed: number): () => number {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** torchvision's init in spirit (Kaiming-normal convolutions, unit BN), with random BN statistics so BN does something. */
function randomWeights(arch: DenseNetArchitecture, seed: number): Map<string, HostTensor> {
  const normal = normalSampler(seed);
  const weights = new Map<string, HostTensor>();
  for (const spec of expectedParameters(arch)) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const field = spec.name.slice(spec.name.lastIndexOf('.') + 1);
    const fanIn = spec.shape.slice(1).reduce((a, b) => a * b, 1);
    for (let i = 0; i < size; i += 1) {
      if (spec.shape.length >= 2) data[i] = normal() * Math.sqrt(2 / fanIn);
      else if (field === 'weight') data[i] = 1 + 0.1 * normal();
      else if (field === 'running_var') data[i] = 1 + 0.1 * Math.abs(normal());
      else data[i] = 0.05 * normal(); // bias, running_mean
    }
    weights.set(spec.name, { shape: spec.shape, data });
  }
  return weights;
}

function nchwToNhwc(t: HostTensor): { shape: [number, number, number, number]; data: Float32Array } {
  const [n, c, h, w] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let b = 0; b < n; b += 1)
    for (let ch = 0; ch < c; ch += 1)
      for (let y = 0; y < h; y += 1)
        for (let x = 0; x < w; x += 1)
          out[((b * h + y) * w + x) * c + ch] = t.data[((b * c + ch) * h + y) * w + x] ?? 0;
  return { shape: [n, h, w, c], data: out };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const selection = await selectBackend('webgpu', {
    allowSoftwareGpu: o.allowSoftware,
    log: (m, f) => say(`${m} ${JSON.stringify(f)}`),
  });
  const arch = namedDenseNet(o.arch, CLASSES.length);
  const maxBatch = Math.max(...o.batches);

  let weights: Map<string, HostTensor>;
  let input: { shape: [number, number, number, number]; data: Float32Array };
  let torchLogits: Float32Array | undefined;
  if (o.reference !== undefined) {
    const file = readSafetensors(readFileSync(o.reference), o.reference).tensors;
    const raw = new Map<string, HostTensor>();
    for (const [name, t] of file)
      if (name !== 'input' && name !== 'logits') raw.set(name, { shape: t.shape, data: t.data });
    weights = checkDenseNetWeights(raw, arch, o.reference);
    const x = file.get('input');
    if (x === undefined || (x.shape[0] ?? 0) < maxBatch || x.shape[2] !== o.size)
      throw new Error(`${o.reference}: needs an input of at least ${maxBatch} images of ${o.size}x${o.size}`);
    input = nchwToNhwc({ shape: x.shape, data: x.data });
    torchLogits = file.get('logits')?.data;
  } else {
    weights = randomWeights(arch, o.seed);
    const normal = normalSampler(o.seed + 1);
    input = {
      shape: [maxBatch, o.size, o.size, 3],
      data: Float32Array.from({ length: maxBatch * o.size * o.size * 3 }, normal),
    };
  }
  const net = DenseNet.fromHostWeights(arch, weights);
  const lrp = new DenseNetLrp(net, CLASSES, NORMALISATION, { composite: o.composite });
  const all = tf.tensor4d(input.data, input.shape);
  say(`webgpu on ${selection.details['adapter'] ?? '?'}; ${o.arch} ${o.size}x${o.size}, LRP ${o.composite}`);

  const results: Array<Record<string, number>> = [];
  for (const batch of o.batches) {
    const x = tf.slice(all, [0, 0, 0, 0], [batch, o.size, o.size, 3]) as tf.Tensor4D;
    let logits: Float32Array = new Float32Array();
    const forward = async () => {
      const y = net.logits(x);
      logits = (await y.data()) as Float32Array;
      y.dispose();
    };
    const explain = async () => void (await lrp.explain(x, 'predicted'));
    const firstForward = await timed(forward);
    const firstLrp = await timed(explain);
    for (let i = 1; i < o.warmup; i += 1) {
      await forward();
      await explain();
    }
    const fwd: number[] = [];
    const rel: number[] = [];
    for (let i = 0; i < o.repeats; i += 1) {
      fwd.push(await timed(forward));
      rel.push(await timed(explain));
    }
    const row: Record<string, number> = {
      batch,
      forward_ms_per_image: median(fwd) / batch,
      lrp_ms_per_image: median(rel) / batch,
      first_forward_ms: firstForward,
      first_lrp_ms: firstLrp,
    };
    if (torchLogits !== undefined) {
      const ref = torchLogits.subarray(0, logits.length);
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < ref.length; i += 1) {
        diff = Math.max(diff, Math.abs((logits[i] ?? NaN) - (ref[i] ?? NaN)));
        scale = Math.max(scale, Math.abs(ref[i] ?? 0));
      }
      row['logits_rel_error_vs_torch'] = diff / scale;
    }
    results.push(row);
    say(
      `batch ${batch}: forward ${row['forward_ms_per_image']?.toFixed(2)} ms/img, LRP ${row['lrp_ms_per_image']?.toFixed(2)} ms/img ` +
        `(first run incl. shader compilation: forward ${firstForward.toFixed(0)} ms, LRP ${firstLrp.toFixed(0)} ms)` +
        (row['logits_rel_error_vs_torch'] !== undefined
          ? `; logits vs PyTorch ${row['logits_rel_error_vs_torch'].toExponential(2)}`
          : ''),
    );
    x.dispose();
  }
  const errors = deviceErrors();
  if (errors.count > 0)
    say(
      `WARNING: ${errors.count} WebGPU device errors, results are not trustworthy: ${errors.first.slice(0, 3).join(' | ')}`,
    );
  const summary = {
    backend: selection.name,
    adapter: selection.details,
    arch: o.arch,
    size: o.size,
    composite: o.composite,
    weights: o.reference ?? `random(seed=${o.seed})`,
    repeats: o.repeats,
    node: process.version,
    device_errors: errors.count,
    results,
  };
  const json = JSON.stringify(summary);
  process.stdout.write(`${json}\n`);
  if (o.jsonOut !== undefined) writeFileSync(o.jsonOut, `${json}\n`);
  lrp.dispose();
  net.dispose();
  all.dispose();
}

main().then(
  // Exit at once: a GPU callback still pending must not keep the bench alive once its results are out.
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
