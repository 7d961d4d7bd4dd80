import type { HostTensor } from './weight-import.js';

// torchvision's BatchNorm2d default.
export const BN_EPSILON = 1e-5;

/** Inference-time BatchNorm on the host: y = x * scale + offset per channel. */
export interface HostAffineNorm {
  scale: Float32Array;
  offset: Float32Array;
}

/**
 * Folds a BatchNorm's running statistics into scale/offset in double precision, once, at load: the one
 * folding the TF.js network and the ONNX graphs share, so both engines compute with the same numbers.
 */
export function hostAffineNorm(weights: ReadonlyMap<string, HostTensor>, prefix: string): HostAffineNorm {
  const get = (field: string): Float32Array => {
    const t = weights.get(`${prefix}.${field}`);
    if (t === undefined) throw new Error(`weights lack ${prefix}.${field}`);
    return t.data;
  };
  const gamma = get('weight');
  const beta = get('bias');
  const mean = get('running_mean');
  const variance = get('running_var');
  const n = gamma.length;
  const scale = new Float32Array(n);
  const offset = new Float32Array(n);
  for (let i = 0; i < n; i += 1) {
    const s = (gamma[i] ?? 0) / Math.sqrt((variance[i] ?? 0) + BN_EPSILON);
    scale[i] = s;
    offset[i] = (beta[i] ?? 0) - (mean[i] ?? 0) * s;
  }
  return { scale, offset };
}
