// Opens an ONNX Runtime session on the first execution provider that can really run the model. ONNX Runtime
// itself falls back to the CPU without a word when a GPU provider cannot load, so every provider is checked
// before the session is made: a gateway that says "cuda" must be running on CUDA.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { GatewayError, describeError } from '../../errors.js';
import { adapterSummary, checkAdapter, describeAdapter, isSoftwareAdapter } from '../webgpu-adapter.js';
import { loadDawn } from '../webgpu-dawn.js';
import type { OnnxExecutionProvider } from './onnx-types.js';

export interface OnnxSessionOptions {
  /** Tried in this order; the first that loads and runs the model is used (auto: cuda, webgpu, cpu). */
  executionProviders: readonly OnnxExecutionProvider[];
  /** Intra-op threads of the CPU provider (default: the machine's cores). */
  intraOpThreads?: number;
  /** Accept a software WebGPU adapter (lavapipe, SwiftShader): for tests only (inference.allowSoftwareGpu). */
  allowSoftwareGpu: boolean;
  /** Called for each provider passed over (with why) and for the one chosen. */
  log?: (message: string, fields: Record<string, string>) => void;
}

export interface OnnxProviderSelection {
  provider: OnnxExecutionProvider;
  skipped: Array<{ name: OnnxExecutionProvider; reason: string }>;
  /** e.g. { threads: '2' } or the WebGPU adapter. */
  details: Record<string, string>;
}

/** A tensor crossing into or out of a session. */
export interface OnnxTensor {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: readonly number[];
}

export interface OnnxModelSession {
  readonly provider: OnnxExecutionProvider;
  run(feeds: Readonly<Record<string, OnnxTensor>>): Promise<Record<string, OnnxTensor>>;
  release(): Promise<void>;
}

type OrtModule = typeof Ort;

/** onnxruntime-node, and the folder of its native binding, where GPU hosts install the CUDA provider library. */
export interface OnnxRuntimeHandle {
  ort: OrtModule;
  bindingDir: string;
}

export type OnnxRuntimeLoader = () => Promise<OnnxRuntimeHandle>;

// In a variable: onnxruntime-node is an optional dependency, loaded only when the ONNX engine is chosen.
const ORT = 'onnxruntime-node';

let defaultRuntime: Promise<OnnxRuntimeHandle> | undefined;

/** Loads onnxruntime-node once per process and finds its binding folder; a failed load is tried again next time. */
export function loadOnnxRuntime(): Promise<OnnxRuntimeHandle> {
  defaultRuntime ??= (async () => {
    const loaded = (await import(ORT)) as OrtModule & { default?: OrtModule };
    // A CommonJS package: its exports arrive as the default export, named ones only as far as Node detects them.
    const ort = loaded.default ?? loaded;
    const entry = createRequire(import.meta.url).resolve(ORT);
    return { ort, bindingDir: path.join(path.dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch) };
  })();
  defaultRuntime.catch(() => {
    defaultRuntime = undefined;
  });
  return defaultRuntime;
}

/**
 * Loads onnxruntime-node (an optional dependency: a clear ONNX_RUNTIME_UNAVAILABLE error when it is absent) and
 * opens a session for the model on the first execution provider that works.
 */
export async function openOnnxSession(
  model: Uint8Array,
  options: OnnxSessionOptions,
): Promise<{ session: OnnxModelSession; selection: OnnxProviderSelection }> {
  return openOnnxSessionWith(loadOnnxRuntime, model, options);
}

/** openOnnxSession with the runtime loaded by `loader` (tests give one that fails). */
export async function openOnnxSessionWith(
  loader: OnnxRuntimeLoader,
  model: Uint8Array,
  options: OnnxSessionOptions,
): Promise<{ session: OnnxModelSession; selection: OnnxProviderSelection }> {
  let runtime: OnnxRuntimeHandle;
  try {
    runtime = await loader();
  } catch (error) {
    throw new GatewayError(
      'ONNX_RUNTIME_UNAVAILABLE',
      `onnxruntime-node could not be loaded (${describeError(error).split('\n')[0]}): reinstall it with npm ci ` +
        '(linux-x64, linux-arm64, macOS or Windows), or set inference.engine: tfjs',
      { cause: error },
    );
  }
  const skipped: OnnxProviderSelection['skipped'] = [];
  for (const provider of options.executionProviders) {
    const outcome = await tryProvider(runtime, provider, model, options);
    if ('reason' in outcome) {
      skipped.push({ name: provider, reason: outcome.reason });
      options.log?.(`ONNX Runtime: execution provider ${provider} skipped: ${outcome.reason}`, {
        provider,
        reason: outcome.reason,
      });
      continue;
    }
    const selection: OnnxProviderSelection = { provider, skipped, details: outcome.details };
    options.log?.(`ONNX Runtime: execution provider ${provider} chosen`, { provider, ...outcome.details });
    return { session: wrapSession(runtime.ort, provider, outcome.session), selection };
  }
  throw new GatewayError(
    'ONNX_PROVIDER_UNAVAILABLE',
    options.executionProviders.length === 0
      ? 'inference.onnxruntime.executionProviders is empty: list at least cpu'
      : `no ONNX Runtime execution provider could run the model: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`,
  );
}

type ProviderOutcome = { session: Ort.InferenceSession; details: Record<string, string> } | { reason: string };

async function tryProvider(
  runtime: OnnxRuntimeHandle,
  provider: OnnxExecutionProvider,
  model: Uint8Array,
  options: OnnxSessionOptions,
): Promise<ProviderOutcome> {
  switch (provider) {
    case 'cuda':
      return tryCuda(runtime, model);
    case 'webgpu':
      return tryWebGpu(runtime, model, options.allowSoftwareGpu);
    case 'cpu':
      return tryCpu(runtime, model, options.intraOpThreads);
  }
}

/** What every session gets: ONNX Runtime's full graph optimisation (Conv+Relu, Conv+Add fusions and the like). */
function sessionOptions(
  executionProviders: Ort.InferenceSession.SessionOptions['executionProviders'],
  extra: Partial<Ort.InferenceSession.SessionOptions> = {},
): Ort.InferenceSession.SessionOptions {
  return { executionProviders, graphOptimizationLevel: 'all', ...extra };
}

async function tryCuda(runtime: OnnxRuntimeHandle, model: Uint8Array): Promise<ProviderOutcome> {
  const supported = runtime.ort.listSupportedBackends().some((b) => b.name === 'cuda');
  if (!supported)
    return { reason: `this build of onnxruntime-node has no CUDA provider (${process.platform}-${process.arch})` };
  // Without this library ONNX Runtime would log a warning and quietly run the session on the CPU.
  const library = path.join(runtime.bindingDir, cudaLibraryName());
  if (!existsSync(library)) {
    return {
      reason:
        'the CUDA provider is not installed (GPU hosts: node node_modules/onnxruntime-node/script/install ' +
        '--onnxruntime-node-install=cuda12)',
    };
  }
  try {
    const session = await runtime.ort.InferenceSession.create(model, sessionOptions(['cuda']));
    return { session, details: { library } };
  } catch (error) {
    return { reason: `the CUDA provider could not run the model (${firstLine(error)})` };
  }
}

function cudaLibraryName(): string {
  return process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
}

/*
 * ONNX Runtime 1.30's WebGPU provider places every node of the forward graph on the GPU: a session made with
 * logSeverityLevel 0 logs "All nodes placed on [WebGpuExecutionProvider]" (checked on lavapipe for the tiny
 * DenseNet with a 3-channel and a 1-channel input, i.e. with and without Tile, in NCHW and in NHWC); no node
 * falls back to the CPU.
 * Its Dawn device is one per process: sessions run at the same time from two worker threads fail ("Command
 * encoding already finished", seen on lavapipe), while any number of sessions in one thread run fine (their runs
 * are serialised on that thread). So WebGPU sessions belong in one thread of a process.
 */
/**
 * NHWC inside the provider: ONNX Runtime then runs its convolutions in the channels-last kernels and transposes
 * the weights once at load. DenseNet-121 at 96x96 on lavapipe: 447 ms against 677 ms with the default NCHW, the
 * same logits.
 */
const WEBGPU_PROVIDER: Ort.InferenceSession.WebGpuExecutionProviderOption = { name: 'webgpu', preferredLayout: 'NHWC' };

async function tryWebGpu(
  runtime: OnnxRuntimeHandle,
  model: Uint8Array,
  allowSoftware: boolean,
): Promise<ProviderOutcome> {
  if (!runtime.ort.listSupportedBackends().some((b) => b.name === 'webgpu'))
    return { reason: `this build of onnxruntime-node has no WebGPU provider (${process.platform}-${process.arch})` };
  // ONNX Runtime brings its own Dawn and asks for an adapter of its own, but on the same Vulkan drivers: the one
  // Dawn offers us is the one it gets, so a software adapter is refused here, before it is used silently.
  let details: Record<string, string>;
  try {
    const dawn = await loadDawn();
    const adapter = await dawn.create([]).requestAdapter({ powerPreference: 'high-performance' });
    if (adapter === null) return { reason: 'WebGPU offers no adapter on this machine (no Vulkan driver)' };
    const info = describeAdapter(adapter);
    checkAdapter(info, allowSoftware);
    details = { adapter: adapterSummary(info), software: String(isSoftwareAdapter(info)) };
  } catch (error) {
    return { reason: firstLine(error) };
  }
  try {
    const session = await runtime.ort.InferenceSession.create(model, sessionOptions([WEBGPU_PROVIDER]));
    return { session, details };
  } catch (error) {
    return { reason: `the WebGPU provider could not run the model (${firstLine(error)})` };
  }
}

async function tryCpu(
  runtime: OnnxRuntimeHandle,
  model: Uint8Array,
  intraOpThreads?: number,
): Promise<ProviderOutcome> {
  const threads = intraOpThreads ?? os.availableParallelism();
  try {
    // One inter-op thread: a DenseNet is one chain of layers, nothing runs beside it. No spinning: ONNX Runtime's
    // intra-op threads otherwise busy-wait between operators and fight Node's own threads for the cores.
    // DenseNet-201, 224x224, batch 1, 2 threads on a quiet 2-core VM: 103.6 ms per forward pass with spinning,
    // 51.9 ms without (a torchvision export of the same network: 113.1 and 56.5 ms).
    const session = await runtime.ort.InferenceSession.create(
      model,
      sessionOptions(['cpu'], {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      }),
    );
    return { session, details: { threads: String(threads) } };
  } catch (error) {
    // The CPU provider runs every standard operator: a graph it refuses is one we built wrong.
    throw new GatewayError(
      'ONNX_MODEL_REJECTED',
      `ONNX Runtime's CPU provider refused the graph built from the model folder (${firstLine(error)})`,
      { cause: error },
    );
  }
}

function wrapSession(ort: OrtModule, provider: OnnxExecutionProvider, session: Ort.InferenceSession): OnnxModelSession {
  return {
    provider,
    async run(feeds) {
      const ortFeeds: Record<string, Ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const results = await session.run(ortFeeds);
      const out: Record<string, OnnxTensor> = {};
      for (const [name, value] of Object.entries(results)) out[name] = fromOrt(name, value as Ort.Tensor);
      return out;
    },
    async release() {
      await session.release();
    },
  };
}

function fromOrt(name: string, t: Ort.Tensor): OnnxTensor {
  if (t.type === 'float32' && t.data instanceof Float32Array) return { type: 'float32', data: t.data, dims: t.dims };
  if (t.type === 'int64' && t.data instanceof BigInt64Array) return { type: 'int64', data: t.data, dims: t.dims };
  throw new Error(`ONNX output ${name} is ${t.type}, not float32 or int64`);
}

function firstLine(error: unknown): string {
  return describeError(error).split('\n')[0] ?? '';
}
