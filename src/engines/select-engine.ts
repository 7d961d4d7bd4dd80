// Which engine serves the model: inference.engine names one, or `auto` tries them in ENGINE_ORDER (ONNX Runtime
// first: the faster one on a CPU host) and falls back with the reason. The daemon's workers, `render` and
// `classify` all make their engine here, so they choose alike.

import os from 'node:os';
import { describeError, errorCode, GatewayError } from '../errors.js';
import type { BackendPreference } from '../inference/backend-types.js';
import type { OnnxExecutionProvider } from '../inference/onnx/onnx-types.js';
import type { LrpOptions } from '../lrp/composites.js';
import type { InferenceEngine } from './engine.js';
import { logEngineChoice, type EngineLog } from './engine-log.js';
import { ENGINE_ORDER, type EngineName, type EnginePreference } from './engine-types.js';
import { createOnnxEngine } from './onnx-engine.js';
import { createTfjsEngine } from './tfjs-engine.js';

export interface EngineChoiceOptions {
  modelDir: string;
  /** inference.engine. */
  engine: EnginePreference;
  /** inference.backend: the TF.js engine's backend. */
  tfjsBackend: BackendPreference;
  /** inference.onnxruntime.executionProviders. */
  executionProviders: readonly OnnxExecutionProvider[];
  /** Intra-op threads of the ONNX Runtime CPU provider; 'auto': the cores. */
  intraOpThreads: number | 'auto';
  allowSoftwareGpu: boolean;
  /** The `explain` settings less the target. */
  lrp: Partial<LrpOptions>;
  /** ANALYSIS-5016 per engine, backend or provider passed over, ANALYSIS-5015 for the one chosen. */
  log?: EngineLog;
}

/** How an engine is made from the resolved options; tests inject their own. */
export type EngineFactory = (options: ResolvedEngineOptions) => Promise<InferenceEngine>;

export interface ResolvedEngineOptions extends Omit<EngineChoiceOptions, 'intraOpThreads' | 'engine' | 'log'> {
  intraOpThreads: number;
}

export const DEFAULT_ENGINE_FACTORIES: Readonly<Record<EngineName, EngineFactory>> = {
  onnxruntime: (o) =>
    createOnnxEngine({
      modelDir: o.modelDir,
      executionProviders: o.executionProviders,
      intraOpThreads: o.intraOpThreads,
      allowSoftwareGpu: o.allowSoftwareGpu,
      lrp: o.lrp,
    }),
  tfjs: (o) =>
    createTfjsEngine({
      modelDir: o.modelDir,
      backend: o.tfjsBackend,
      allowSoftwareGpu: o.allowSoftwareGpu,
      lrp: o.lrp,
    }),
};

/** Codes of a model folder's problems (manifest, weights, checksum, placeholders): no other engine helps. */
const MODEL_PROBLEM = /^(MODEL_|WEIGHTS_)/;

/**
 * Makes the first engine of the preference that starts. Engines passed over join the chosen engine's
 * info.skipped (before its own backends or providers), and the choice is logged. When none starts:
 * ENGINE_UNAVAILABLE with every engine's reason; a broken model folder throws its own error at once.
 */
export async function createEngine(
  options: EngineChoiceOptions,
  factories: Partial<Record<EngineName, EngineFactory>> = {},
): Promise<InferenceEngine> {
  const { engine: preference, log, ...rest } = options;
  const resolved: ResolvedEngineOptions = {
    ...rest,
    intraOpThreads: options.intraOpThreads === 'auto' ? os.availableParallelism() : options.intraOpThreads,
  };
  const order: readonly EngineName[] = preference === 'auto' ? ENGINE_ORDER : [preference];
  const skipped: Array<{ name: string; reason: string }> = [];
  for (const name of order) {
    const factory = factories[name] ?? DEFAULT_ENGINE_FACTORIES[name];
    try {
      const engine = await factory(resolved);
      engine.info.skipped.unshift(...skipped);
      if (log !== undefined) logEngineChoice(engine.info, log);
      return engine;
    } catch (error) {
      // A broken model folder breaks every engine alike: its own error says what to fix, not a list of engines.
      if (MODEL_PROBLEM.test(errorCode(error, 'INTERNAL'))) throw error;
      skipped.push({ name, reason: describeError(error).split('\n')[0] ?? 'unknown error' });
    }
  }
  const reasons = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  throw new GatewayError(
    'ENGINE_UNAVAILABLE',
    preference === 'auto'
      ? `no inference engine could be started (${reasons})`
      : `inference.engine '${preference}' could not be started: ${reasons}`,
  );
}
