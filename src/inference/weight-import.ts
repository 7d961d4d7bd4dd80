import { GatewayError } from '../errors.js';
import { expectedParameters, type DenseNetArchitecture } from './densenet-architecture.js';

/** A tensor in host memory, in PyTorch's layout (OIHW convolutions, [out, in] linear weights). */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

// torchvision before 0.3 named dense layer modules `norm.1`, `conv.2`...; its own loader rewrites them
// with this pattern (torchvision/models/densenet.py, _load_state_dict).
const LEGACY_KEY = /^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_mean|running_var)$/;

/**
 * Brings checkpoint names to torchvision's current state_dict names: strips the `module.` prefix that
 * DataParallel adds, rewrites the old dense-layer key style, and drops BN's `num_batches_tracked` counters.
 */
export function normaliseParameterNames(raw: ReadonlyMap<string, HostTensor>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [original, tensor] of raw) {
    let name = original.startsWith('module.') ? original.slice('module.'.length) : original;
    if (name.endsWith('num_batches_tracked')) continue;
    name = name.replace(LEGACY_KEY, '$1$2.$3');
    out.set(name, tensor);
  }
  return out;
}

/**
 * Holds a weights file against the architecture: every parameter present with its exact shape, nothing
 * left over. The error names the first offender, which is usually enough to see a wrong variant or class
 * count.
 */
export function checkDenseNetWeights(
  raw: ReadonlyMap<string, HostTensor>,
  arch: DenseNetArchitecture,
  source: string,
): Map<string, HostTensor> {
  const weights = normaliseParameterNames(raw);
  const expected = expectedParameters(arch);
  for (const spec of expected) {
    const tensor = weights.get(spec.name);
    if (tensor === undefined) {
      throw new GatewayError(
        'WEIGHTS_MISMATCH',
        `${source}: missing parameter ${spec.name} (shape [${spec.shape.join(', ')}]); the file does not match the manifest's architecture`,
      );
    }
    if (tensor.shape.length !== spec.shape.length || tensor.shape.some((d, i) => d !== spec.shape[i])) {
      throw new GatewayError(
        'WEIGHTS_MISMATCH',
        `${source}: parameter ${spec.name} has shape [${tensor.shape.join(', ')}] but the architecture needs [${spec.shape.join(', ')}]`,
      );
    }
  }
  const known = new Set(expected.map((s) => s.name));
  for (const name of weights.keys()) {
    if (!known.has(name)) {
      throw new GatewayError(
        'WEIGHTS_MISMATCH',
        `${source}: unexpected parameter ${name}; the file is for a different architecture`,
      );
    }
  }
  return weights;
}
