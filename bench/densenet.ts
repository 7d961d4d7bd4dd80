// DenseNet forward and LRP cost on the TensorFlow.js backends, against PyTorch on the CPU: same weights, same input.
//
//   node dist/bench/densenet.js [--arch densenet201] [--size 224] [--repeats 5] [--large-batch-repeats 3]
//       [--batches 1,8] [--backends tensorflow-gpu,tensorflow,wasm,cpu] [--composites isnet,epsilon]
//       [--torch-threads 2] [--seed 0] [--warmup 1] [--profile] [--keep] [--json] [--json-out FILE]
//
// One invocation does everything:
//  1. Weights and input. tools/bench_torch_densenet.py --export-weights writes random torchvision weights
//     (torch.manual_seed(--seed), 3 classes) into a temporary folder. A short Python snippet (below) then makes the input
//     exactly as that tool does, torch.randn(N, 3, S, S) from torch.Generator().manual_seed(--seed + 1), so the first
//     b images are the tool's own --batch b input, plus PyTorch's logits for it; both go to a safetensors file. TF.js
//     reads the same weights and input, and every run checks its logits against PyTorch's.
//  2. TF.js. Each (backend, batch size) runs in a child process of this script (same file, --worker), so that a backend
//     that dies (the wasm heap is capped at 4 GiB) costs only its own measurement and RSS is per run. Inside a child:
//     build the DenseNet and one DenseNetLrp per composite; record tf.memory(); one forward that is both the logits
//     check and the forward warm-up; --warmup LRP runs per composite; then --repeats rounds (--large-batch-repeats
//     above batch 1) of [forward with `await logits.data()`, LRP per composite with `await explain(x, 'predicted')`],
//     interleaved so that machine noise hits every measurement alike; tf.memory() again; dispose. Medians per image are
//     reported. The last warm-up of each measurement runs under tf.profile(), which gives its peak tensor memory (and,
//     with --profile, where the kernel time goes; --warmup 2 profiles a run whose kernels are already prepared). The cpu backend runs batch 1 only, one repeat, no LRP warm-up
//     (about 7 s per forward image). When a measurement fails, the child reports it, and the others are rerun in a
//     fresh child without it.
//  3. PyTorch: tools/bench_torch_densenet.py --weights <same file> --grad-x-input --threads --torch-threads per batch
//     size: forward and gradient x input per image (median over --repeats, after 2 warm-ups).
//  4. A Markdown table (each LRP / forward ratio twice: median over median, and per round, LRP run over the forward
//     run just before it, whose median is steadier where the machine's speed drifts), ratios, memory, machine info; with --json one JSON object on stdout instead (progress always on
//     stderr); --json-out FILE also writes that object to FILE.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { BACKEND_ORDER, selectBackend, type BackendName } from '../src/inference/backend.js';
import { readSafetensors } from '../src/inference/safetensors.js';
import type { CompositeName } from '../src/lrp/composites.js';
import { DenseNetLrp } from '../src/lrp/densenet-lrp.js';
import {
  CLASSES,
  NORMALISATION,
  archOption,
  compositesOption,
  exportRandomWeights,
  integerOption as int,
  listOption as list,
  loadDenseNet,
  runScriptChild,
  torchCpuReference,
  writeTorchInput,
  type Arch,
} from './densenet-bench-setup.js';

/** 'forward', or the composite of an LRP run. */
type Kind = 'forward' | CompositeName;

interface Options {
  arch: Arch;
  size: number;
  repeats: number;
  largeBatchRepeats: number;
  batches: number[];
  backends: BackendName[];
  composites: CompositeName[];
  torchThreads: number;
  seed: number;
  warmup: number;
  profile: boolean;
  keep: boolean;
  json: boolean;
  jsonOut?: string;
}

const SCRIPT = fileURLToPath(import.meta.url);
/** LRP target: at most this many forward passes. */
const LRP_TARGET_RATIO = 3;
const CHILD_TIMEOUT_MS = 600_000;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    arch: 'densenet201',
    size: 224,
    repeats: 5,
    largeBatchRepeats: 3,
    batches: [1, 8],
    backends: [...BACKEND_ORDER],
    composites: ['isnet', 'epsilon'],
    torchThreads: 2,
    seed: 0,
    warmup: 1,
    profile: false,
    keep: false,
    json: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--arch') o.arch = archOption(next());
    else if (a === '--size') o.size = int(next(), a, 32);
    else if (a === '--repeats') o.repeats = int(next(), a, 1);
    else if (a === '--large-batch-repeats') o.largeBatchRepeats = int(next(), a, 1);
    else if (a === '--batches') o.batches = [...new Set(list(next()).map((b) => int(b, a, 1)))];
    else if (a === '--backends') {
      const names = list(next());
      for (const n of names)
        if (!(BACKEND_ORDER as readonly string[]).includes(n))
          throw new Error(`--backends: unknown backend ${n} (${BACKEND_ORDER.join(', ')})`);
      o.backends = names as BackendName[];
    } else if (a === '--composites') o.composites = compositesOption(next());
    else if (a === '--torch-threads') o.torchThreads = int(next(), a, 1);
    else if (a === '--seed') o.seed = int(next(), a, 0);
    else if (a === '--warmup') o.warmup = int(next(), a, 0);
    else if (a === '--profile') o.profile = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--json') o.json = true;
    else if (a === '--json-out') o.jsonOut = next();
    else if (a === '--help' || a === '-h') {
      const header = readFileSync(SCRIPT, 'utf8').split('\n');
      const end = header.findIndex((l) => !l.startsWith('//'));
      process.stdout.write(
        `${header
          .slice(0, end)
          .map((l) => l.slice(3))
          .join('\n')}\n`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.batches.length === 0) throw new Error('--batches is empty');
  return o;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
const mib = (bytes: number | null | undefined) => (bytes == null ? '—' : `${(bytes / 2 ** 20).toFixed(0)} MiB`);

function errorText(error: unknown): string {
  return (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).split('\n')[0] ?? 'unknown error';
}

// ---------------------------------------------------------------------------------------------------------------
// Worker: one backend, one batch size, in its own process. Events go to stdout as JSON lines, progress to stderr.

interface WorkerSpec {
  backend: BackendName;
  batch: number;
  kinds: Kind[];
  repeats: number;
  warmup: number;
  lrpWarmup: boolean;
  arch: Arch;
  size: number;
  weightsFile: string;
  ioFile: string;
}

interface ProfileSummary {
  what: string;
  /** tf.profile's peakBytes: the most tensor memory alive at once during the call (weights included). */
  peakBytes: number;
  kernelMs: number;
  kernels: number;
  byKernel: Array<{ name: string; ms: number; count: number }>;
  conv2dByStage: Array<{ stage: string; ms: number; count: number }>;
}

type WorkerEvent =
  | { e: 'unavailable'; reason: string }
  | { e: 'ready'; loadMs: number; baseBytes: number }
  | { e: 'check'; maxAbsDiff: number; topClassAgrees: boolean }
  | { e: 'begin'; kind: Kind; phase: 'warmup' | 'run'; repeat: number }
  | { e: 'warmup'; kind: Kind; ms: number; profile?: ProfileSummary }
  | { e: 'run'; kind: Kind; repeat: number; ms: number; cpuMs: number; absorbed?: number }
  | {
      e: 'error';
      kind: Kind;
      phase: 'warmup' | 'run';
      message: string;
      maxRssBytes: number;
      wasmHeapBytes: number | null;
    }
  | {
      e: 'done';
      numTensorsBeforeLoops: number;
      numTensorsAfterLoops: number;
      numTensorsAfterDispose: number;
      numBytesBeforeLoops: number;
      numBytesAfterLoops: number;
      maxRssBytes: number;
      wasmHeapBytes: number | null;
    };

type ProfileInfo = Awaited<ReturnType<typeof tf.profile>>;

/** Groups a tf.profile() record: time per kernel, and Conv2D time by stage (from its input's spatial size) and kernel size. */
function summariseProfile(what: string, info: ProfileInfo, size: number): ProfileSummary {
  const byKernel = new Map<string, { ms: number; count: number }>();
  const byStage = new Map<string, { ms: number; count: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    total += ms;
    const e = byKernel.get(k.name) ?? { ms: 0, count: 0 };
    e.ms += ms;
    e.count += 1;
    byKernel.set(k.name, e);
    if (k.name === 'Conv2D') {
      const [xShape, wShape] = k.inputShapes as number[][];
      const h = xShape?.[1] ?? 0;
      const stage =
        h > size / 2 - 1
          ? 'stem'
          : h >= size / 4 - 1
            ? 'block 1 + transition 1'
            : h >= size / 8 - 1
              ? 'block 2 + transition 2'
              : h >= size / 16 - 1
                ? 'block 3 + transition 3'
                : 'block 4';
      const key = `${stage} ${wShape?.[0]}x${wShape?.[1]}`;
      const s = byStage.get(key) ?? { ms: 0, count: 0 };
      s.ms += ms;
      s.count += 1;
      byStage.set(key, s);
    }
  }
  const sorted = (m: Map<string, { ms: number; count: number }>) => [...m.entries()].sort((a, b) => b[1].ms - a[1].ms);
  return {
    what,
    peakBytes: info.peakBytes,
    kernelMs: round(total),
    kernels: info.kernels.length,
    byKernel: sorted(byKernel).map(([name, v]) => ({ name, ms: round(v.ms), count: v.count })),
    conv2dByStage: sorted(byStage).map(([stage, v]) => ({ stage, ms: round(v.ms), count: v.count })),
  };
}

function nchwToNhwc(data: Float32Array, shape: number[]): Float32Array {
  const [n = 0, c = 0, h = 0, w = 0] = shape;
  const out = new Float32Array(n * h * w * c);
  for (let i = 0; i < n; i += 1)
    for (let k = 0; k < c; k += 1)
      for (let y = 0; y < h; y += 1)
        for (let x = 0; x < w; x += 1) out[((i * h + y) * w + x) * c + k] = data[((i * c + k) * h + y) * w + x] ?? 0;
  return out;
}

/** Size of the wasm backend's linear memory (it only grows), or null on other backends. */
function wasmHeapBytes(): number | null {
  try {
    const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
    return backend.wasm?.HEAPU8?.length ?? null;
  } catch {
    return null;
  }
}

async function worker(spec: WorkerSpec): Promise<void> {
  const emit = (event: WorkerEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);
  const say = (m: string) => process.stderr.write(`  [${spec.backend} batch ${spec.batch}] ${m}\n`);
  try {
    await selectBackend(spec.backend);
  } catch (error) {
    emit({ e: 'unavailable', reason: errorText(error) });
    return;
  }
  const t0 = performance.now();
  const io = readSafetensors(readFileSync(spec.ioFile), spec.ioFile).tensors;
  const inputEntry = io.get('input');
  const torchLogits = io.get('logits')?.data;
  if (!inputEntry || !torchLogits) throw new Error(`${spec.ioFile} lacks input or logits`);
  const [, c = 3, h = 0, w = 0] = inputEntry.shape;
  const perImage = c * h * w;
  const net = loadDenseNet(spec.arch, spec.weightsFile);
  const composites = spec.kinds.filter((k): k is CompositeName => k !== 'forward');
  const lrps = new Map(
    composites.map((k) => [k, new DenseNetLrp(net, CLASSES, NORMALISATION, { composite: k })] as const),
  );
  const x = tf.tensor4d(nchwToNhwc(inputEntry.data.subarray(0, spec.batch * perImage), [spec.batch, c, h, w]), [
    spec.batch,
    h,
    w,
    c,
  ]);
  const before = tf.memory();
  emit({ e: 'ready', loadMs: round(performance.now() - t0), baseBytes: before.numBytes });

  let current: { kind: Kind; phase: 'warmup' | 'run' } = { kind: 'forward', phase: 'warmup' };
  // Wall time, and the CPU time (user + system, all threads) this process spent meanwhile: the wasm backend computes
  // on one thread, so on a shared machine its CPU time is close to what the wall time would be on an idle one.
  const cpuMsSince = (c: NodeJS.CpuUsage) => {
    const d = process.cpuUsage(c);
    return (d.user + d.system) / 1000;
  };
  const measure = async (kind: Kind): Promise<{ ms: number; cpuMs: number; absorbed?: number }> => {
    const start = performance.now();
    const cpu = process.cpuUsage();
    if (kind === 'forward') {
      const y = net.logits(x);
      await y.data();
      const ms = performance.now() - start;
      const cpuMs = cpuMsSince(cpu);
      y.dispose();
      return { ms, cpuMs };
    }
    const explanations = await (lrps.get(kind) as DenseNetLrp).explain(x, 'predicted');
    const ms = performance.now() - start;
    const cpuMs = cpuMsSince(cpu);
    return { ms, cpuMs, absorbed: median(explanations.map((e) => e[0]?.absorbedShare ?? NaN)) };
  };
  const profiled = async (kind: Kind, what: string): Promise<{ ms: number; profile: ProfileSummary }> => {
    let ms = 0;
    const info = await tf.profile(async () => {
      ms = (await measure(kind)).ms;
      return [];
    });
    return { ms, profile: summariseProfile(what, info, spec.size) };
  };
  try {
    // The forward warm-up doubles as the check of our logits against PyTorch's (profiled apart from the check).
    const checkCompute = tf.env().getBool('CHECK_COMPUTATION_FOR_ERRORS');
    tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
    current = { kind: 'forward', phase: 'warmup' };
    emit({ e: 'begin', ...current, repeat: 0 });
    // A backend's first call of each kernel also prepares it (XNNPACK packs the filters), so the profile comes from
    // the last warm-up run, after the first, where there is one.
    const warm =
      spec.warmup > 1
        ? { ms: (await measure('forward')).ms, profile: undefined }
        : await profiled('forward', `forward, batch ${spec.batch}`);
    const logits = net.logits(x);
    const ours = (await logits.data()) as Float32Array;
    logits.dispose();
    let maxAbsDiff = 0;
    let topClassAgrees = true;
    const n = CLASSES.length;
    for (let i = 0; i < spec.batch; i += 1) {
      let a = 0;
      let t = 0;
      for (let k = 0; k < n; k += 1) {
        const j = i * n + k;
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs((ours[j] ?? 0) - (torchLogits[j] ?? 0)));
        if ((ours[j] ?? 0) > (ours[i * n + a] ?? 0)) a = k;
        if ((torchLogits[j] ?? 0) > (torchLogits[i * n + t] ?? 0)) t = k;
      }
      if (a !== t) topClassAgrees = false;
    }
    emit({ e: 'check', maxAbsDiff, topClassAgrees });
    emit({ e: 'warmup', kind: 'forward', ms: round(warm.ms), ...(warm.profile ? { profile: warm.profile } : {}) });
    say(
      `logits vs PyTorch max |diff| ${maxAbsDiff.toExponential(2)}, top class ${topClassAgrees ? 'agrees' : 'DISAGREES'}; warm-up forward ${warm.ms.toFixed(0)} ms${warm.profile ? `, peak tensors ${mib(warm.profile.peakBytes)}` : ''}`,
    );
    for (let i = 1; i < spec.warmup; i += 1) {
      emit({ e: 'begin', ...current, repeat: i });
      if (i === spec.warmup - 1) {
        const r = await profiled('forward', `forward, batch ${spec.batch}`);
        emit({ e: 'warmup', kind: 'forward', ms: round(r.ms), profile: r.profile });
      } else emit({ e: 'warmup', kind: 'forward', ms: round((await measure('forward')).ms) });
    }
    if (spec.lrpWarmup) {
      for (const kind of composites) {
        current = { kind, phase: 'warmup' };
        for (let i = 0; i < spec.warmup; i += 1) {
          emit({ e: 'begin', ...current, repeat: i });
          if (i === spec.warmup - 1) {
            const r = await profiled(kind, `LRP ${kind}, batch ${spec.batch}`);
            emit({ e: 'warmup', kind, ms: round(r.ms), profile: r.profile });
            say(`warm-up LRP ${kind} ${r.ms.toFixed(0)} ms, peak tensors ${mib(r.profile.peakBytes)}`);
          } else {
            const { ms } = await measure(kind);
            emit({ e: 'warmup', kind, ms: round(ms) });
          }
        }
      }
    }
    tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', checkCompute);
    const loopsBefore = tf.memory();
    for (let r = 0; r < spec.repeats; r += 1) {
      const parts: string[] = [];
      for (const kind of spec.kinds) {
        current = { kind, phase: 'run' };
        emit({ e: 'begin', ...current, repeat: r });
        const m = await measure(kind);
        emit({
          e: 'run',
          kind,
          repeat: r,
          ms: round(m.ms),
          cpuMs: round(m.cpuMs),
          ...(m.absorbed !== undefined ? { absorbed: m.absorbed } : {}),
        });
        parts.push(
          `${kind === 'forward' ? 'forward' : `LRP ${kind}`} ${m.ms.toFixed(0)} ms (cpu ${m.cpuMs.toFixed(0)})`,
        );
      }
      say(`repeat ${r + 1}/${spec.repeats}: ${parts.join(', ')}`);
    }
    const after = tf.memory();
    for (const l of lrps.values()) l.dispose();
    net.dispose();
    x.dispose();
    emit({
      e: 'done',
      numTensorsBeforeLoops: loopsBefore.numTensors,
      numTensorsAfterLoops: after.numTensors,
      numTensorsAfterDispose: tf.memory().numTensors,
      numBytesBeforeLoops: loopsBefore.numBytes,
      numBytesAfterLoops: after.numBytes,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      wasmHeapBytes: wasmHeapBytes(),
    });
  } catch (error) {
    say(`${current.kind} (${current.phase}) failed: ${errorText(error)}`);
    emit({
      e: 'error',
      ...current,
      message: errorText(error),
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      wasmHeapBytes: wasmHeapBytes(),
    });
    process.exitCode = 1;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Parent.

interface Measurement {
  msPerImage: number | null;
  runsMs: number[];
  /** CPU time (user + system, all threads of the node process) per image and per run. */
  cpuMsPerImage: number | null;
  cpuRunsMs: number[];
  cpuRatioToForward?: number | null;
  warmupMs: number[];
  /** Peak tensor memory during the profiled warm-up, weights and the other composites' prepared filters included. */
  peakTensorBytes: number | null;
  ratioToForward?: number | null;
  /**
   * This run over the forward run of the same round, per round: the forward and the LRP runs of a round are
   * seconds apart, so on a machine whose speed drifts (a shared VM) this is steadier than the ratio of medians.
   */
  roundRatios?: number[];
  medianAbsorbedShare?: number | null;
  error?: string;
  failedDuring?: string;
}

interface BatchResult {
  batch: number;
  repeats: number;
  attempts: number;
  logitsCheck?: { maxAbsDiff: number; topClassAgrees: boolean };
  measurements: Partial<Record<Kind, Measurement>>;
  memory?: Omit<Extract<WorkerEvent, { e: 'done' }>, 'e'>;
  /** Highest RSS and wasm heap of any attempt, failed ones included. */
  maxRssBytes: number;
  wasmHeapBytes: number | null;
  /** Tensor memory held before the loops (weights, LRP filters, input). */
  baseBytes?: number;
  profiles: ProfileSummary[];
}

interface BackendResult {
  backend: BackendName;
  started: boolean;
  skippedReason?: string;
  batches: BatchResult[];
}

interface TorchRow {
  batch: number;
  repeats: number;
  forwardMsPerImage: number;
  /** Fastest forward run: on a shared machine, the closest to an idle machine's time (the tool reports no runs for grad x input). */
  forwardMinMsPerImage: number;
  gradXInputMsPerImage: number;
  topClass: number[];
}

/** Runs one worker child; its stderr is kept, to find what a dying wasm module printed. */
async function runWorker(spec: WorkerSpec): Promise<{ events: WorkerEvent[]; exit: string; stderr: string }> {
  const { stdout, stderr, exit } = await runScriptChild(SCRIPT, ['--worker', JSON.stringify(spec)], CHILD_TIMEOUT_MS);
  const events = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as WorkerEvent);
  return { events, exit, stderr };
}

/** The first line a failing wasm module or XNNPACK printed (Aborted(), RuntimeError: ..., XNN status ...), if any. */
function wasmDiagnosis(stderr: string): string | undefined {
  const lines = stderr.split('\n');
  const hits = lines.filter((l) => /^(Aborted\(|RuntimeError: |XNN status )/.test(l.trim()));
  return hits.length > 0 ? [...new Set(hits.map((l) => l.trim()))].slice(0, 3).join(' | ') : undefined;
}

async function benchBatch(
  o: Options,
  backend: BackendName,
  batch: number,
  files: { weightsFile: string; ioFile: string },
  log: (m: string) => void,
): Promise<BatchResult | { unavailable: string }> {
  const isCpu = backend === 'cpu';
  const repeats = isCpu ? 1 : batch > 1 ? Math.min(o.repeats, o.largeBatchRepeats) : o.repeats;
  const result: BatchResult = {
    batch,
    repeats,
    attempts: 0,
    measurements: {},
    maxRssBytes: 0,
    wasmHeapBytes: null,
    profiles: [],
  };
  let remaining: Kind[] = ['forward', ...o.composites];
  while (remaining.length > 0) {
    result.attempts += 1;
    log(
      `tfjs ${backend}, batch ${batch}: ${remaining.join(', ')} (${repeats} repeats)${result.attempts > 1 ? `, attempt ${result.attempts}` : ''}`,
    );
    const { events, exit, stderr } = await runWorker({
      backend,
      batch,
      kinds: remaining,
      repeats,
      warmup: o.warmup,
      lrpWarmup: !isCpu,
      arch: o.arch,
      size: o.size,
      ...files,
    });
    const unavailable = events.find((e) => e.e === 'unavailable');
    if (unavailable) return { unavailable: unavailable.reason };
    const runs = new Map<Kind, number[]>();
    const cpuRuns = new Map<Kind, number[]>();
    const absorbed = new Map<Kind, number[]>();
    const warmups = new Map<Kind, number[]>();
    const profiles = new Map<Kind, ProfileSummary>();
    let lastBegin: Extract<WorkerEvent, { e: 'begin' }> | undefined;
    let failure: Extract<WorkerEvent, { e: 'error' }> | undefined;
    let done: Extract<WorkerEvent, { e: 'done' }> | undefined;
    for (const ev of events) {
      if (ev.e === 'ready') result.baseBytes = ev.baseBytes;
      else if (ev.e === 'check') result.logitsCheck = { maxAbsDiff: ev.maxAbsDiff, topClassAgrees: ev.topClassAgrees };
      else if (ev.e === 'begin') lastBegin = ev;
      else if (ev.e === 'warmup') {
        warmups.set(ev.kind, [...(warmups.get(ev.kind) ?? []), ev.ms]);
        if (ev.profile) profiles.set(ev.kind, ev.profile);
      } else if (ev.e === 'run') {
        runs.set(ev.kind, [...(runs.get(ev.kind) ?? []), ev.ms]);
        cpuRuns.set(ev.kind, [...(cpuRuns.get(ev.kind) ?? []), ev.cpuMs]);
        if (ev.absorbed !== undefined) absorbed.set(ev.kind, [...(absorbed.get(ev.kind) ?? []), ev.absorbed]);
      } else if (ev.e === 'error') failure = ev;
      else if (ev.e === 'done') done = ev;
    }
    for (const ev of [failure, done]) {
      if (!ev) continue;
      result.maxRssBytes = Math.max(result.maxRssBytes, ev.maxRssBytes);
      if (ev.wasmHeapBytes !== null) result.wasmHeapBytes = Math.max(result.wasmHeapBytes ?? 0, ev.wasmHeapBytes);
    }
    for (const p of profiles.values()) if (!result.profiles.some((q) => q.what === p.what)) result.profiles.push(p);
    if (done) {
      const { e: _, ...memory } = done;
      result.memory = memory;
      for (const kind of remaining) {
        const ms = runs.get(kind) ?? [];
        result.measurements[kind] = {
          msPerImage: round(median(ms) / batch),
          runsMs: ms,
          cpuMsPerImage: round(median(cpuRuns.get(kind) ?? []) / batch),
          cpuRunsMs: cpuRuns.get(kind) ?? [],
          warmupMs: warmups.get(kind) ?? [],
          peakTensorBytes: profiles.get(kind)?.peakBytes ?? null,
          ...(kind !== 'forward' ? { medianAbsorbedShare: round(median(absorbed.get(kind) ?? []), 4) } : {}),
        };
      }
      break;
    }
    // The child failed: blame the measurement it had begun, keep the others for a fresh child.
    const failed: Kind = failure?.kind ?? lastBegin?.kind ?? remaining[0] ?? 'forward';
    const during = failure?.phase ?? lastBegin?.phase ?? 'start-up';
    const diagnosis = wasmDiagnosis(stderr);
    const reported = failure?.message ?? `child ${exit} before reporting an error`;
    const message = diagnosis && !reported.includes(diagnosis) ? `${diagnosis} (then: ${reported})` : reported;
    log(`tfjs ${backend}, batch ${batch}: ${failed} failed during ${during}: ${message}`);
    const failedKinds = failed === 'forward' ? remaining : [failed]; // every LRP run starts with a forward pass
    for (const kind of failedKinds) {
      result.measurements[kind] = {
        msPerImage: null,
        runsMs: [],
        cpuMsPerImage: null,
        cpuRunsMs: [],
        warmupMs: warmups.get(kind) ?? [],
        peakTensorBytes: profiles.get(kind)?.peakBytes ?? null,
        error: kind === failed ? message : `not run: forward failed (${message})`,
        failedDuring: kind === failed ? `${during}${failure ? '' : `, ${exit}`}` : 'skipped',
      };
    }
    remaining = remaining.filter((k) => !failedKinds.includes(k));
  }
  const forward = result.measurements.forward?.msPerImage ?? null;
  for (const kind of o.composites) {
    const m = result.measurements[kind];
    if (m) m.ratioToForward = m.msPerImage !== null && forward !== null ? round(m.msPerImage / forward, 2) : null;
    const forwardRuns = result.measurements.forward?.runsMs ?? [];
    if (m && !m.error)
      m.roundRatios = m.runsMs.flatMap((v, i) => (forwardRuns[i] ? [round(v / (forwardRuns[i] ?? 1), 2)] : []));
    const cpuForward = result.measurements.forward?.cpuMsPerImage ?? null;
    if (m)
      m.cpuRatioToForward =
        m.cpuMsPerImage !== null && cpuForward !== null ? round(m.cpuMsPerImage / cpuForward, 2) : null;
  }
  return result;
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line) return line.split(':')[1]?.trim() ?? 'unknown';
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const log = (m: string) => process.stderr.write(`${m}\n`);
  const started = new Date();
  const t0 = performance.now();
  const loadBefore = os.loadavg();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-densenet-'));
  const cleanup = () => {
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    // 1. Weights and input, from PyTorch.
    const weightsFile = path.join(dir, `${o.arch}-random-seed${o.seed}.safetensors`);
    log(`exporting random ${o.arch} weights (seed ${o.seed}) to ${weightsFile}`);
    exportRandomWeights(
      { arch: o.arch, seed: o.seed, size: o.size, threads: o.torchThreads },
      weightsFile,
      CHILD_TIMEOUT_MS,
    );
    const maxBatch = Math.max(...o.batches);
    const ioFile = path.join(dir, 'input.safetensors');
    writeTorchInput(
      { arch: o.arch, seed: o.seed, size: o.size, threads: o.torchThreads },
      weightsFile,
      maxBatch,
      ioFile,
      CHILD_TIMEOUT_MS,
    );
    log(
      `input: ${maxBatch} x 3 x ${o.size} x ${o.size}, torch.randn from torch.Generator().manual_seed(${o.seed + 1}), with PyTorch's logits, in ${ioFile}`,
    );

    // 2. TF.js, one child per backend and batch size.
    const backends: BackendResult[] = [];
    for (const backend of o.backends) {
      const entry: BackendResult = { backend, started: true, batches: [] };
      backends.push(entry);
      for (const batch of backend === 'cpu' ? [1] : o.batches) {
        const r = await benchBatch(o, backend, batch, { weightsFile, ioFile }, log);
        if ('unavailable' in r) {
          entry.started = false;
          entry.skippedReason = r.unavailable;
          log(`tfjs ${backend}: not started (${r.unavailable})`);
          break;
        }
        entry.batches.push(r);
      }
    }

    // 3. PyTorch, same weights, same input.
    const torch: TorchRow[] = [];
    let torchInfo: Record<string, unknown> = {};
    for (const b of o.batches) {
      const repeats = b > 1 ? Math.min(o.repeats, o.largeBatchRepeats) : o.repeats;
      log(`PyTorch, batch ${b}: ${repeats} repeats, ${o.torchThreads} threads`);
      const r = torchCpuReference(
        { arch: o.arch, seed: o.seed, size: o.size, threads: o.torchThreads },
        weightsFile,
        b,
        repeats,
        CHILD_TIMEOUT_MS,
      );
      torchInfo = r;
      const forwardRuns = (r.ms_per_batch_forward as number[] | undefined) ?? [];
      torch.push({
        batch: b,
        repeats,
        forwardMsPerImage: round(Number(r.ms_per_image_forward)),
        forwardMinMsPerImage: round(Math.min(...forwardRuns) / b),
        gradXInputMsPerImage: round(Number(r.ms_per_image_grad_x_input)),
        topClass: r.top_class as number[],
      });
    }

    // Machine; the wasm flags need the wasm backend registered in this process (cheap).
    let wasmFlags: { simd: boolean; threads: boolean } | null = null;
    try {
      await import('@tensorflow/tfjs-backend-wasm');
      wasmFlags = {
        simd: Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')),
        threads: Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')),
      };
    } catch {
      // no wasm package
    }
    const machine = {
      cpu: cpuModel(),
      nproc: os.availableParallelism(),
      memoryGiB: round(os.totalmem() / 2 ** 30),
      loadAverageBefore: loadBefore.map((l) => round(l, 2)),
      loadAverageAfter: os.loadavg().map((l) => round(l, 2)),
      kernel: `${os.type()} ${os.release()}`,
      node: process.version,
      tfjs: tf.version.tfjs,
      wasmSimd: wasmFlags?.simd ?? null,
      wasmThreads: wasmFlags?.threads ?? null,
      torch: String(torchInfo.torch),
      torchvision: String(torchInfo.torchvision),
      torchThreads: o.torchThreads,
      torchBlas: String(torchInfo.blas),
      torchMkldnn: Boolean(torchInfo.mkldnn),
    };
    const ratios = backends
      .filter((b) => b.started)
      .flatMap((b) =>
        b.batches.map((r) => {
          const t = torch.find((x) => x.batch === r.batch);
          const fwd = r.measurements.forward?.msPerImage ?? null;
          const ratio = (a: number | null | undefined, bb: number | undefined) =>
            a != null && bb !== undefined ? round(a / bb, 2) : null;
          const out: Record<string, number | string | null> = {
            backend: b.backend,
            batch: r.batch,
            forwardVsTorchForward: ratio(fwd, t?.forwardMsPerImage),
          };
          for (const c of o.composites) {
            const m = r.measurements[c];
            out[`lrp_${c}_vsForward`] = m?.ratioToForward ?? null;
            out[`lrp_${c}_vsTorchGradXInput`] = ratio(m?.msPerImage, t?.gradXInputMsPerImage);
          }
          return out;
        }),
      );
    const result = {
      command: `node dist/bench/densenet.js ${process.argv.slice(2).join(' ')}`.trim(),
      date: started.toISOString(),
      wallSeconds: round((performance.now() - t0) / 1000),
      options: o,
      machine,
      weights: `torchvision ${o.arch}, torch.manual_seed(${o.seed}), ${CLASSES.length} classes (tools/bench_torch_densenet.py --export-weights)`,
      input: `torch.randn(N, 3, ${o.size}, ${o.size}) from torch.Generator().manual_seed(${o.seed + 1}), as tools/bench_torch_densenet.py makes it`,
      lrpTargetRatio: LRP_TARGET_RATIO,
      tfjs: backends,
      torch,
      ratios,
      parentMaxRssBytes: process.resourceUsage().maxRSS * 1024,
    };
    if (o.jsonOut) writeFileSync(o.jsonOut, `${JSON.stringify(result, null, 2)}\n`);
    if (o.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    printReport(result, o);
  } finally {
    cleanup();
  }
}

function printReport(
  result: {
    command: string;
    date: string;
    wallSeconds: number;
    machine: Record<string, unknown>;
    tfjs: BackendResult[];
    torch: TorchRow[];
    ratios: Array<Record<string, number | string | null>>;
  },
  o: Options,
): void {
  const p = (s = '') => process.stdout.write(`${s}\n`);
  const m = result.machine;
  const cs = o.composites;
  p();
  p(`${result.command}: ${result.date}, ${result.wallSeconds} s`);
  p(
    `${String(m.cpu)} x ${String(m.nproc)}, ${String(m.memoryGiB)} GiB, ${String(m.kernel)}; node ${String(m.node)}; tfjs ${String(m.tfjs)} (wasm SIMD ${String(m.wasmSimd)}, threads ${String(m.wasmThreads)}); ` +
      `torch ${String(m.torch)} (${String(m.torchThreads)} threads, mkldnn ${String(m.torchMkldnn)}, BLAS ${String(m.torchBlas)}); load before ${(m.loadAverageBefore as number[]).join(' ')}, after ${(m.loadAverageAfter as number[]).join(' ')}`,
  );
  p();
  const cell = (x: Measurement | undefined) =>
    x === undefined ? '—' : x.msPerImage !== null ? x.msPerImage.toFixed(1) : `failed (${x.failedDuring})`;
  p(
    `| engine | batch | repeats | forward ms/img | ${cs.map((c) => `LRP ${c} ms/img | ${c} / forward`).join(' | ')} | grad x input ms/img |`,
  );
  p(`|---|---:|---:|---:|${cs.map(() => '---:|---:|').join('')}---:|`);
  for (const b of result.tfjs) {
    if (!b.started) {
      p(`| tfjs ${b.backend} | — | — | not started |${cs.map(() => ' — | — |').join('')} — |`);
      continue;
    }
    for (const r of b.batches) {
      const cells = cs.map((c) => {
        const x = r.measurements[c];
        const ratio = x?.ratioToForward;
        const rounds = x?.roundRatios ?? [];
        const perRound =
          rounds.length > 1
            ? ` · per round ${median(rounds).toFixed(2)} (${Math.min(...rounds).toFixed(2)}–${Math.max(...rounds).toFixed(2)})`
            : '';
        const over =
          ratio != null && (ratio > LRP_TARGET_RATIO || (rounds.length > 1 && median(rounds) > LRP_TARGET_RATIO))
            ? ' (> 3)'
            : '';
        return `${cell(x)} | ${ratio == null ? '—' : `${ratio.toFixed(2)}${perRound}${over}`}`;
      });
      p(
        `| tfjs ${b.backend} | ${r.batch} | ${r.repeats} | ${cell(r.measurements.forward)} | ${cells.join(' | ')} | — |`,
      );
    }
  }
  for (const t of result.torch)
    p(
      `| PyTorch CPU, ${o.torchThreads} threads | ${t.batch} | ${t.repeats} | ${t.forwardMsPerImage.toFixed(1)} | ${cs.map(() => '— | —').join(' | ')} | ${t.gradXInputMsPerImage.toFixed(1)} |`,
    );
  p();
  p('CPU time of the TF.js process per image (user + system, all threads; median), for a shared machine:');
  p();
  p(`| engine | batch | forward CPU ms/img | ${cs.map((c) => `LRP ${c} CPU ms/img | ${c} / forward`).join(' | ')} |`);
  p(`|---|---:|---:|${cs.map(() => '---:|---:|').join('')}`);
  const cpuCell = (x: Measurement | undefined) =>
    x === undefined ? '—' : x.cpuMsPerImage !== null ? x.cpuMsPerImage.toFixed(1) : 'failed';
  for (const b of result.tfjs.filter((x) => x.started)) {
    for (const r of b.batches) {
      const cells = cs.map((c) => {
        const x = r.measurements[c];
        return `${cpuCell(x)} | ${x?.cpuRatioToForward == null ? '—' : x.cpuRatioToForward.toFixed(2)}`;
      });
      p(`| tfjs ${b.backend} | ${r.batch} | ${cpuCell(r.measurements.forward)} | ${cells.join(' | ')} |`);
    }
  }
  p();
  p('Ratios (median ms/img over median ms/img, same batch size):');
  p();
  p(
    `| backend | batch | forward / PyTorch forward | ${cs.map((c) => `LRP ${c} / forward | LRP ${c} / PyTorch grad x input`).join(' | ')} |`,
  );
  p(`|---|---:|---:|${cs.map(() => '---:|---:|').join('')}`);
  const s = (v: unknown) => (v === null || v === undefined ? '—' : String(v));
  for (const r of result.ratios)
    p(
      `| ${s(r.backend)} | ${s(r.batch)} | ${s(r.forwardVsTorchForward)} | ${cs.map((c) => `${s(r[`lrp_${c}_vsForward`])} | ${s(r[`lrp_${c}_vsTorchGradXInput`])}`).join(' | ')} |`,
    );
  p();
  for (const b of result.tfjs) {
    if (!b.started) {
      p(`tfjs ${b.backend}: not started: ${b.skippedReason ?? ''}`);
      continue;
    }
    for (const r of b.batches) {
      const mem = r.memory;
      const check = r.logitsCheck
        ? `logits vs PyTorch max |diff| ${r.logitsCheck.maxAbsDiff.toExponential(2)}, top class ${r.logitsCheck.topClassAgrees ? 'agrees' : 'DISAGREES'}`
        : 'no logits check';
      const leak = mem
        ? `tf.memory().numTensors before loops ${mem.numTensorsBeforeLoops}, after ${mem.numTensorsAfterLoops} (${mem.numTensorsAfterLoops - mem.numTensorsBeforeLoops} leaked), after dispose ${mem.numTensorsAfterDispose}`
        : 'no memory record (every attempt failed)';
      p(
        `tfjs ${b.backend}, batch ${r.batch}: ${check}; ${leak}; tensors before loops ${mib(r.baseBytes)}; peak RSS ${mib(r.maxRssBytes)}${r.wasmHeapBytes !== null ? `; wasm heap ${mib(r.wasmHeapBytes)}` : ''}; ${r.attempts} child process(es)`,
      );
      for (const kind of ['forward', ...o.composites] as Kind[]) {
        const x = r.measurements[kind];
        if (!x) continue;
        const what = kind === 'forward' ? 'forward' : `LRP ${kind}`;
        const extra = x.medianAbsorbedShare != null ? `, absorbed share ${x.medianAbsorbedShare}` : '';
        p(
          `  ${what}: runs ${x.runsMs.join(', ') || '—'} ms (CPU ${x.cpuRunsMs.join(', ') || '—'} ms); warm-up ${x.warmupMs.join(', ') || '—'} ms; peak tensor memory ${mib(x.peakTensorBytes)}${extra}${x.error ? `; FAILED during ${x.failedDuring}: ${x.error}` : ''}`,
        );
      }
    }
  }
  p(
    `PyTorch: ${result.torch.map((t) => `batch ${t.batch}: fastest forward ${t.forwardMinMsPerImage} ms/img, top class per image ${t.topClass.join(',')}`).join('; ')}`,
  );
  if (o.profile) {
    for (const b of result.tfjs) {
      for (const r of b.batches) {
        for (const prof of r.profiles) {
          p();
          p(
            `profile tfjs ${b.backend} ${prof.what} (warm-up run): ${prof.kernels} kernels, ${prof.kernelMs} ms kernel time, peak tensor memory ${mib(prof.peakBytes)}`,
          );
          p(
            `  by kernel: ${prof.byKernel
              .slice(0, 14)
              .map((k) => `${k.name} ${k.ms} ms (${k.count})`)
              .join(', ')}`,
          );
          p(
            `  Conv2D by stage and kernel size: ${prof.conv2dByStage.map((k) => `${k.stage} ${k.ms} ms (${k.count})`).join('; ')}`,
          );
        }
      }
    }
  }
}

if (process.argv[2] === '--worker') {
  worker(JSON.parse(process.argv[3] ?? '{}') as WorkerSpec).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
} else {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
