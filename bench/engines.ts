// The two inference engines (ONNX Runtime, TF.js) against PyTorch, through the interface the daemon serves with:
// forward (engine.classify) and forward + LRP (engine.explain, predicted class), same weights, same input.
//
//   node dist/bench/engines.js [--arch densenet201] [--size 224] [--batches 1,8] [--repeats 5] [--threads 2]
//       [--engines onnxruntime:cpu,tfjs:wasm] [--composite isnet] [--torch cpu|cuda] [--seed 0]
//       [--allow-software-gpu] [--json-out FILE] [--keep]
//
// One invocation does everything:
//  1. A model directory: random torchvision weights (tools/bench_torch_densenet.py --export-weights, seed --seed,
//     3 classes) and a manifest written here; the input, torch.randn(N, 3, S, S) from
//     torch.Generator().manual_seed(--seed + 1), and PyTorch's logits for it (writeTorchInput).
//  2. PyTorch, per batch size: forward, and forward + backward of the top logit times the input (gradient x input,
//     the cheapest explanation PyTorch users run), --threads threads (--torch cuda: bench/webgpu/torch_cuda_densenet.py
//     on the GPU instead, same seeds).
//  3. Each engine (engine:device; devices: onnxruntime cpu|webgpu|cuda, tfjs wasm|cpu|webgpu|tensorflow...) and batch
//     size in a child process of this script: create the engine from the model directory (timed: loadMs, graphs
//     built and sessions opened included), one classify that is both warm-up and the logits check against PyTorch,
//     one explain as warm-up, then --repeats rounds of [classify, explain], interleaved so that machine noise hits
//     both alike. ONNX Runtime gets --threads intra-op threads; TF.js wasm computes on one thread (tfjs-backend-wasm
//     has no thread pool in Node), which is what the daemon runs today.
//  4. The relevance maps of the last explain of each child are compared between engines (max |a - b| over the
//     reference's max |value|; the reference is the first tfjs engine run): the two engines checking each other at
//     full size. Then a Markdown table, ratios against PyTorch from this same run, and the machine.

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { namedDenseNet } from '../src/inference/densenet-architecture.js';
import { readSafetensors } from '../src/inference/safetensors.js';
import { createOnnxEngine } from '../src/engines/onnx-engine.js';
import { createTfjsEngine } from '../src/engines/tfjs-engine.js';
import type { InferenceEngine } from '../src/engines/engine.js';
import type { BackendName } from '../src/inference/backend-types.js';
import { ONNX_EXECUTION_PROVIDERS, type OnnxExecutionProvider } from '../src/inference/onnx/onnx-types.js';
import type { CompositeName } from '../src/lrp/composites.js';
import {
  CLASSES,
  NORMALISATION,
  PYTHON,
  ROOT,
  archOption,
  compositesOption,
  exportRandomWeights,
  integerOption as int,
  listOption as list,
  runCaptured,
  runScriptChild,
  lastJson,
  torchCpuReference,
  writeTorchInput,
  type Arch,
} from './densenet-bench-setup.js';

interface EngineSpec {
  engine: 'onnxruntime' | 'tfjs';
  device: string;
}

interface Options {
  arch: Arch;
  size: number;
  batches: number[];
  repeats: number;
  threads: number;
  engines: EngineSpec[];
  composite: CompositeName;
  torch: 'cpu' | 'cuda';
  seed: number;
  allowSoftwareGpu: boolean;
  jsonOut?: string;
  keep: boolean;
}

const SCRIPT = fileURLToPath(import.meta.url);
const CHILD_TIMEOUT_MS = 900_000;
const TORCH_CUDA = path.join(ROOT, 'bench/webgpu/torch_cuda_densenet.py');

function engineSpec(text: string): EngineSpec {
  const [engine, device = ''] = text.split(':');
  if (engine === 'onnxruntime' && (ONNX_EXECUTION_PROVIDERS as readonly string[]).includes(device))
    return { engine, device };
  if (engine === 'tfjs' && device !== '') return { engine, device };
  throw new Error(`--engines: ${text} is not onnxruntime:(${ONNX_EXECUTION_PROVIDERS.join('|')}) or tfjs:<backend>`);
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    arch: 'densenet201',
    size: 224,
    batches: [1, 8],
    repeats: 5,
    threads: 2,
    engines: [engineSpec('onnxruntime:cpu'), engineSpec('tfjs:wasm')],
    composite: 'isnet',
    torch: 'cpu',
    seed: 0,
    allowSoftwareGpu: false,
    keep: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--arch') o.arch = archOption(next());
    else if (a === '--size') o.size = int(next(), a, 32);
    else if (a === '--batches') o.batches = [...new Set(list(next()).map((b) => int(b, a, 1)))];
    else if (a === '--repeats') o.repeats = int(next(), a, 1);
    else if (a === '--threads') o.threads = int(next(), a, 1);
    else if (a === '--engines') o.engines = list(next()).map(engineSpec);
    else if (a === '--composite') o.composite = compositesOption(next())[0] ?? 'isnet';
    else if (a === '--torch') {
      const t = next();
      if (t !== 'cpu' && t !== 'cuda') throw new Error('--torch: cpu or cuda');
      o.torch = t;
    } else if (a === '--seed') o.seed = int(next(), a, 0);
    else if (a === '--allow-software-gpu') o.allowSoftwareGpu = true;
    else if (a === '--json-out') o.jsonOut = next();
    else if (a === '--keep') o.keep = true;
    else throw new Error(`unknown argument ${a} (see the header of bench/engines.ts)`);
  }
  if (o.batches.length === 0 || o.engines.length === 0) throw new Error('--batches and --engines need values');
  return o;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? 'unknown error';
}

// ---------------------------------------------------------------------------------------------------------------
// Child: one engine, one batch size.

interface ChildSpec {
  engine: EngineSpec;
  batch: number;
  repeats: number;
  threads: number;
  composite: CompositeName;
  modelDir: string;
  ioFile: string;
  mapsFile: string;
  allowSoftwareGpu: boolean;
}

interface ChildResult {
  ok: true;
  device: string;
  details: Record<string, string>;
  loadMs: number;
  forwardMs: number[];
  explainMs: number[];
  logitsMaxAbsDiff: number;
  logitsMaxAbs: number;
  topClassAgrees: boolean;
  absorbedShare: number;
  maxRssBytes: number;
}

async function makeEngine(spec: ChildSpec): Promise<InferenceEngine> {
  const log = (message: string, fields: Record<string, string>) =>
    process.stderr.write(`    ${message} ${JSON.stringify(fields)}\n`);
  const lrp = { composite: spec.composite };
  if (spec.engine.engine === 'onnxruntime')
    return createOnnxEngine({
      modelDir: spec.modelDir,
      executionProviders: [spec.engine.device as OnnxExecutionProvider],
      intraOpThreads: spec.threads,
      allowSoftwareGpu: spec.allowSoftwareGpu,
      lrp,
      log,
    });
  return createTfjsEngine({
    modelDir: spec.modelDir,
    backend: spec.engine.device as BackendName,
    allowSoftwareGpu: spec.allowSoftwareGpu,
    lrp,
    log,
  });
}

async function child(spec: ChildSpec): Promise<void> {
  const io = readSafetensors(readFileSync(spec.ioFile), spec.ioFile).tensors;
  const input = io.get('input');
  const torchLogits = io.get('logits')?.data;
  if (input === undefined || torchLogits === undefined) throw new Error(`${spec.ioFile} lacks input or logits`);
  const [, c = 3, h = 0, w = 0] = input.shape;
  const inputs = Array.from({ length: spec.batch }, (_, i) => {
    const out = new Float32Array(h * w * c);
    const base = i * c * h * w;
    for (let k = 0; k < c; k += 1)
      for (let p = 0; p < h * w; p += 1) out[p * c + k] = input.data[base + k * h * w + p] as number;
    return out;
  });
  const started = performance.now();
  const engine = await makeEngine(spec);
  const loadMs = performance.now() - started;
  const logits = await engine.classify(inputs);
  let maxAbsDiff = 0;
  let maxAbs = 0;
  let agrees = true;
  const k = CLASSES.length;
  logits.forEach((row, i) => {
    const ref = Array.from(torchLogits.subarray(i * k, (i + 1) * k));
    row.forEach((v, j) => {
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - (ref[j] as number)));
      maxAbs = Math.max(maxAbs, Math.abs(ref[j] as number));
    });
    if (row.indexOf(Math.max(...row)) !== ref.indexOf(Math.max(...ref))) agrees = false;
  });
  await engine.explain(inputs, 'predicted');
  const forwardMs: number[] = [];
  const explainMs: number[] = [];
  let last: Awaited<ReturnType<InferenceEngine['explain']>> = [];
  for (let r = 0; r < spec.repeats; r += 1) {
    let t = performance.now();
    await engine.classify(inputs);
    forwardMs.push(performance.now() - t);
    t = performance.now();
    last = await engine.explain(inputs, 'predicted');
    explainMs.push(performance.now() - t);
    process.stderr.write(
      `    round ${r + 1}/${spec.repeats}: forward ${forwardMs.at(-1)?.toFixed(0)} ms, forward + LRP ${explainMs.at(-1)?.toFixed(0)} ms\n`,
    );
  }
  const maps = new Float32Array(spec.batch * h * w);
  last.forEach((perImage, i) => maps.set(perImage[0]?.relevance ?? new Float32Array(h * w), i * h * w));
  writeFileSync(spec.mapsFile, maps);
  const result: ChildResult = {
    ok: true,
    device: engine.info.device,
    details: engine.info.details,
    loadMs,
    forwardMs,
    explainMs,
    logitsMaxAbsDiff: maxAbsDiff,
    logitsMaxAbs: maxAbs,
    topClassAgrees: agrees,
    absorbedShare: median(last.map((e) => e[0]?.absorbedShare ?? NaN)),
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  await engine.dispose();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// ---------------------------------------------------------------------------------------------------------------
// Parent.

async function runChild(spec: ChildSpec): Promise<ChildResult | { ok: false; error: string }> {
  const { stdout, stderr, exit } = await runScriptChild(SCRIPT, ['--child', JSON.stringify(spec)], CHILD_TIMEOUT_MS);
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (line !== undefined) return JSON.parse(line) as ChildResult;
  return { ok: false, error: `${exit}: ${stderr.trim().split('\n').slice(-3).join(' | ')}` };
}

interface TorchRow {
  batch: number;
  forwardMsPerImage: number;
  gradXInputMsPerImage: number;
}

function torchRows(o: Options, weightsFile: string): { rows: TorchRow[]; info: Record<string, unknown> } {
  if (o.torch === 'cuda') {
    const r = lastJson(
      runCaptured(
        PYTHON,
        [
          TORCH_CUDA,
          '--arch',
          o.arch,
          '--size',
          String(o.size),
          '--batches',
          o.batches.join(','),
          '--repeats',
          String(Math.max(o.repeats, 10)),
          '--seed',
          String(o.seed),
        ],
        CHILD_TIMEOUT_MS,
      ),
    );
    const per = (r.results ?? []) as Array<Record<string, number>>;
    return {
      rows: per.map((b) => ({
        batch: b.batch ?? 0,
        forwardMsPerImage: b.forward_ms_per_image ?? NaN,
        gradXInputMsPerImage: b.grad_x_input_ms_per_image ?? NaN,
      })),
      info: r,
    };
  }
  const rows: TorchRow[] = [];
  let info: Record<string, unknown> = {};
  for (const b of o.batches) {
    const r = torchCpuReference(
      { arch: o.arch, seed: o.seed, size: o.size, threads: o.threads },
      weightsFile,
      b,
      o.repeats,
      CHILD_TIMEOUT_MS,
    );
    info = r;
    rows.push({
      batch: b,
      forwardMsPerImage: Number(r.ms_per_image_forward),
      gradXInputMsPerImage: Number(r.ms_per_image_grad_x_input),
    });
  }
  return { rows, info };
}

function writeModelDirectory(dir: string, o: Options, weightsFile: string): void {
  mkdirSync(dir, { recursive: true });
  const weights = readFileSync(weightsFile);
  writeFileSync(path.join(dir, 'weights.safetensors'), weights);
  const manifest = {
    name: `bench-${o.arch}`,
    version: `random-seed${o.seed}`,
    modelUid: `2.25.${BigInt(`0x${createHash('sha256').update(weights).digest('hex').slice(0, 30)}`).toString()}`,
    architecture: namedDenseNet(o.arch, CLASSES.length),
    classes: CLASSES,
    preprocessing: { inputSize: o.size, channels: 3, mean: NORMALISATION.mean, std: NORMALISATION.std },
    weights: {
      file: 'weights.safetensors',
      format: 'safetensors',
      sha256: createHash('sha256').update(weights).digest('hex'),
    },
    intendedUse: 'benchmark only: random weights',
  };
  writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

function mapDifference(a: Float32Array, reference: Float32Array): number {
  let diff = 0;
  let max = 0;
  for (let i = 0; i < reference.length; i += 1) {
    diff = Math.max(diff, Math.abs((a[i] ?? NaN) - (reference[i] as number)));
    max = Math.max(max, Math.abs(reference[i] as number));
  }
  return max === 0 ? diff : diff / max;
}

async function main(o: Options): Promise<void> {
  const log = (m: string) => process.stderr.write(`${m}\n`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-engines-bench-'));
  try {
    const weightsFile = path.join(dir, `${o.arch}-seed${o.seed}.safetensors`);
    log(`exporting random ${o.arch} weights (seed ${o.seed})`);
    const setup = { arch: o.arch, seed: o.seed, size: o.size, threads: o.threads };
    exportRandomWeights(setup, weightsFile, CHILD_TIMEOUT_MS);
    const modelDir = path.join(dir, 'model');
    writeModelDirectory(modelDir, o, weightsFile);
    const ioFile = path.join(dir, 'input.safetensors');
    writeTorchInput(setup, weightsFile, Math.max(...o.batches), ioFile, CHILD_TIMEOUT_MS);

    log(`PyTorch (${o.torch}), batches ${o.batches.join(', ')}`);
    const torch = torchRows(o, weightsFile);

    const runs: Array<{ spec: EngineSpec; batch: number; result: ChildResult | { ok: false; error: string } }> = [];
    for (const batch of o.batches)
      for (const spec of o.engines) {
        log(`${spec.engine}:${spec.device}, batch ${batch}`);
        const mapsFile = path.join(dir, `maps-${spec.engine}-${spec.device}-b${batch}.f32`);
        const result = await runChild({
          engine: spec,
          batch,
          repeats: o.repeats,
          threads: o.threads,
          composite: o.composite,
          modelDir,
          ioFile,
          mapsFile,
          allowSoftwareGpu: o.allowSoftwareGpu,
        });
        runs.push({ spec, batch, result });
      }

    // The engines check each other: every map against the first tfjs engine's of the same batch.
    const agreement: Array<{ batch: number; engine: string; reference: string; relativeMaxDiff: number }> = [];
    for (const batch of o.batches) {
      const reference = runs.find((r) => r.batch === batch && r.spec.engine === 'tfjs' && r.result.ok);
      if (reference === undefined) continue;
      const refName = `${reference.spec.engine}:${reference.spec.device}`;
      const refMaps = new Float32Array(
        readFileSync(path.join(dir, `maps-${refName.replace(':', '-')}-b${batch}.f32`)).buffer.slice(0),
      );
      for (const r of runs) {
        if (r.batch !== batch || r === reference || !r.result.ok) continue;
        const name = `${r.spec.engine}:${r.spec.device}`;
        const maps = new Float32Array(
          readFileSync(path.join(dir, `maps-${name.replace(':', '-')}-b${batch}.f32`)).buffer.slice(0),
        );
        agreement.push({ batch, engine: name, reference: refName, relativeMaxDiff: mapDifference(maps, refMaps) });
      }
    }

    const lines: string[] = [];
    lines.push(
      `DenseNet (${o.arch}), ${o.size}x${o.size}, LRP composite ${o.composite}, ${o.threads} threads for PyTorch and ONNX Runtime, ${o.repeats} rounds; ms per image, medians.`,
      '',
      '| batch | what | forward | forward + explanation | forward / PyTorch | explained / PyTorch fwd+grad×input | load (ms) | logits vs PyTorch (max abs diff / max abs) |',
      '|---:|---|---:|---:|---:|---:|---:|---|',
    );
    for (const batch of o.batches) {
      const t = torch.rows.find((r) => r.batch === batch);
      if (t)
        lines.push(
          `| ${batch} | PyTorch ${String(torch.info.torch ?? '')} (${o.torch}), gradient x input | ${round(t.forwardMsPerImage)} | ${round(t.gradXInputMsPerImage)} | 1 | 1 | | |`,
        );
      for (const r of runs.filter((x) => x.batch === batch)) {
        const name = `${r.spec.engine}:${r.spec.device}`;
        if (!r.result.ok) {
          lines.push(`| ${batch} | ${name} | failed: ${r.result.error} | | | | | |`);
          continue;
        }
        const f = median(r.result.forwardMs) / batch;
        const e = median(r.result.explainMs) / batch;
        lines.push(
          `| ${batch} | ${name} (${o.composite}) | ${round(f)} | ${round(e)} | **${t ? (f / t.forwardMsPerImage).toFixed(2) : '—'}** | **${t ? (e / t.gradXInputMsPerImage).toFixed(2) : '—'}** | ${round(r.result.loadMs, 0)} | ${r.result.logitsMaxAbsDiff.toExponential(1)} / ${r.result.logitsMaxAbs.toFixed(2)}${r.result.topClassAgrees ? '' : ' TOP CLASS DIFFERS'} |`,
        );
      }
    }
    if (agreement.length > 0) {
      lines.push('', 'Relevance maps, engine against engine (max |a - b| / max |reference|), same input:');
      for (const a of agreement)
        lines.push(`- batch ${a.batch}: ${a.engine} vs ${a.reference}: ${a.relativeMaxDiff.toExponential(2)}`);
    }
    lines.push(
      '',
      `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}; load average ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}; ${new Date().toISOString()}.`,
    );
    process.stdout.write(`${lines.join('\n')}\n`);
    if (o.jsonOut !== undefined)
      writeFileSync(
        o.jsonOut,
        `${JSON.stringify({ options: o, torch, runs, agreement, at: new Date().toISOString() }, null, 2)}\n`,
      );
  } finally {
    if (o.keep) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  child(JSON.parse(argv[1] ?? '{}') as ChildSpec).catch((error: unknown) => {
    process.stderr.write(`child failed: ${errorText(error)}\n`);
    process.exit(1);
  });
} else {
  main(parseArgs(argv)).catch((error: unknown) => {
    process.stderr.write(`${errorText(error)}\n`);
    process.exit(1);
  });
}
