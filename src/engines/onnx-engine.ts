// The ONNX Runtime engine: the forward pass and the configured LRP composite compiled to ONNX graphs from the
// model directory (no TF.js), run by onnxruntime-node on the first execution provider that works.

import { GatewayError } from '../errors.js';
import { checkModelDirectory } from '../inference/model-loader.js';
import type { ModelManifest } from '../inference/model-manifest.js';
import { buildForwardModel, INPUT_NAME, type DenseNetGraphSource } from '../inference/onnx/densenet-graph.js';
import {
  openOnnxSession,
  type OnnxModelSession,
  type OnnxProviderSelection,
  type OnnxTensor,
} from '../inference/onnx/onnx-session.js';
import type { OnnxExecutionProvider } from '../inference/onnx/onnx-types.js';
import { lrpOptionsSchema, type LrpOptions } from '../lrp/composites.js';
import { explainedClassIndex, makeExplanation, type ExplainTarget, type Explanation } from '../lrp/explanation.js';
import { buildLrpModel } from '../lrp/onnx-lrp-graph.js';
import type { EngineInfo, InferenceEngine } from './engine.js';
import { assertFiniteExplanations } from './finite-explanations.js';

export interface OnnxEngineOptions {
  modelDir: string;
  /** Tried in this order (inference.onnxruntime.executionProviders). */
  executionProviders: readonly OnnxExecutionProvider[];
  /** Intra-op threads of one run on the CPU provider. */
  intraOpThreads: number;
  allowSoftwareGpu: boolean;
  lrp: Partial<LrpOptions>;
  /** Called for each execution provider passed over and for the one chosen. */
  log?: (message: string, fields: Record<string, string>) => void;
}

/** The graph's 'target' input asks for each image's predicted class with this index. */
const PREDICTED = -1n;

/**
 * Checks the model directory, builds the LRP graph of the configured composite and opens it on the first
 * execution provider that runs it. The forward-only graph (classify) is built on first use, on that provider.
 */
export async function createOnnxEngine(options: OnnxEngineOptions): Promise<InferenceEngine> {
  const checked = checkModelDirectory(options.modelDir);
  const { manifest } = checked;
  const lrpOptions = lrpOptionsSchema.parse(options.lrp);
  const source: DenseNetGraphSource = {
    architecture: manifest.architecture,
    weights: checked.weights,
    preprocessing: manifest.preprocessing,
  };
  const { session: lrpSession, selection } = await openOnnxSession(
    buildLrpModel({ ...source, classes: manifest.classes, options: lrpOptions }),
    {
      executionProviders: options.executionProviders,
      intraOpThreads: options.intraOpThreads,
      allowSoftwareGpu: options.allowSoftwareGpu,
      ...(options.log === undefined ? {} : { log: options.log }),
    },
  );
  return new OnnxEngine(manifest, lrpOptions, source, lrpSession, selection, options);
}

class OnnxEngine implements InferenceEngine {
  readonly info: EngineInfo;
  private forwardSession: Promise<OnnxModelSession> | undefined;
  private disposed = false;

  constructor(
    readonly manifest: ModelManifest,
    readonly lrpOptions: LrpOptions,
    private readonly source: DenseNetGraphSource,
    private readonly lrpSession: OnnxModelSession,
    selection: OnnxProviderSelection,
    private readonly options: OnnxEngineOptions,
  ) {
    this.info = {
      engine: 'onnxruntime',
      device: selection.provider,
      details: { ...selection.details },
      skipped: selection.skipped.map((s) => ({ name: `onnxruntime/${s.name}`, reason: s.reason })),
    };
  }

  async classify(inputs: readonly Float32Array[]): Promise<number[][]> {
    if (inputs.length === 0) return [];
    // A failed open is not kept: the next classify tries again.
    this.forwardSession ??= this.openForward().catch((error: unknown) => {
      this.forwardSession = undefined;
      throw error;
    });
    const session = await this.forwardSession;
    const out = await session.run({ [INPUT_NAME]: this.inputTensor(inputs) });
    return this.rows(floats(out, 'logits'), inputs.length);
  }

  async explain(inputs: readonly Float32Array[], target: ExplainTarget): Promise<Explanation[][]> {
    if (inputs.length === 0) return [];
    const classes = this.manifest.classes;
    // The graph explains one class per image and run: 'all' is one run per class.
    const runs: bigint[] =
      target === 'all'
        ? classes.map((_, c) => BigInt(c))
        : target === 'predicted'
          ? [PREDICTED]
          : [BigInt(explainedClassIndex(classes, target))];
    const input = this.inputTensor(inputs);
    const n = inputs.length;
    const size = this.manifest.preprocessing.inputSize;
    const explanations: Explanation[][] = Array.from({ length: n }, () => []);
    for (const t of runs) {
      const out = await this.lrpSession.run({
        [INPUT_NAME]: input,
        target: { type: 'int64', data: new BigInt64Array(n).fill(t), dims: [n] },
      });
      const logits = this.rows(floats(out, 'logits'), n);
      const maps = floats(out, 'relevance');
      const targets = int64s(out, 'target_index');
      for (let i = 0; i < n; i += 1) {
        const index = Number(targets[i] ?? 0n);
        const relevance = maps.slice(i * size * size, (i + 1) * size * size);
        explanations[i]?.push(makeExplanation(classes, this.lrpOptions, index, logits[i] ?? [], relevance, size));
      }
    }
    return assertFiniteExplanations(explanations);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const forward = this.forwardSession;
    await this.lrpSession.release();
    if (forward !== undefined) await forward.then((session) => session.release());
  }

  /** On the provider the LRP graph runs on: both graphs share the device the engine reports. */
  private async openForward(): Promise<OnnxModelSession> {
    const { session } = await openOnnxSession(buildForwardModel(this.source), {
      executionProviders: [this.lrpSession.provider],
      intraOpThreads: this.options.intraOpThreads,
      allowSoftwareGpu: this.options.allowSoftwareGpu,
    });
    return session;
  }

  /** The batch as the graphs' input: the images' NHWC data one after another. */
  private inputTensor(inputs: readonly Float32Array[]): OnnxTensor {
    const { inputSize: s, channels: c } = this.manifest.preprocessing;
    const data = new Float32Array(inputs.length * s * s * c);
    inputs.forEach((input, i) => {
      if (input.length !== s * s * c)
        throw new GatewayError(
          'INTERNAL',
          `image ${i + 1} has ${input.length} values; the model takes ${s} x ${s} x ${c} = ${s * s * c}`,
        );
      data.set(input, i * s * s * c);
    });
    return { type: 'float32', data, dims: [inputs.length, s, s, c] };
  }

  private rows(values: Float32Array, n: number): number[][] {
    const k = this.manifest.classes.length;
    return Array.from({ length: n }, (_, i) => Array.from(values.subarray(i * k, (i + 1) * k)));
  }
}

function floats(out: Record<string, OnnxTensor>, name: string): Float32Array {
  const t = out[name];
  if (t === undefined || !(t.data instanceof Float32Array))
    throw new GatewayError('ONNX_MODEL_REJECTED', `the ONNX graph gave no float32 output '${name}'`);
  return t.data;
}

function int64s(out: Record<string, OnnxTensor>, name: string): BigInt64Array {
  const t = out[name];
  if (t === undefined || !(t.data instanceof BigInt64Array))
    throw new GatewayError('ONNX_MODEL_REJECTED', `the ONNX graph gave no int64 output '${name}'`);
  return t.data;
}
