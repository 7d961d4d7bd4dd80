import { expectedParameters, type DenseNetArchitecture } from '../inference/densenet-architecture.js';
import type { HostTensor } from '../inference/weight-import.js';
import type { SeededRandom } from './random.js';

/**
 * A freshly initialised torchvision DenseNet state_dict, initialised as torchvision's DenseNet.__init__
 * does: convolutions kaiming_normal_ (fan-in, ReLU gain: std = sqrt(2 / fan_in)), BatchNorm weight 1 and
 * bias 0 (running mean 0, variance 1), classifier weight as nn.Linear's default
 * (uniform in +-1/sqrt(fan_in)) and bias 0.
 */
export function kaimingDenseNetWeights(arch: DenseNetArchitecture, random: SeededRandom): Map<string, HostTensor> {
  const weights = new Map<string, HostTensor>();
  for (const spec of expectedParameters(arch)) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    if (spec.name === 'classifier.weight') {
      const bound = 1 / Math.sqrt(spec.shape[1] ?? 1);
      for (let i = 0; i < count; i += 1) data[i] = random.uniform(-bound, bound);
    } else if (spec.shape.length === 4) {
      const [, cin = 1, kh = 1, kw = 1] = spec.shape;
      const std = Math.sqrt(2 / (cin * kh * kw));
      for (let i = 0; i < count; i += 1) data[i] = random.normal() * std;
    } else if (spec.name.endsWith('.weight') || spec.name.endsWith('.running_var')) {
      data.fill(1);
    }
    weights.set(spec.name, { shape: [...spec.shape], data });
  }
  return weights;
}

/**
 * A fresh classifier head [classes, features] + [classes], initialised as torchvision does (see above):
 * what a replaced head starts from in a transfer step.
 */
export function freshClassifier(
  classes: number,
  features: number,
  random: SeededRandom,
): { weight: HostTensor; bias: HostTensor } {
  const bound = 1 / Math.sqrt(features);
  const weight = new Float32Array(classes * features);
  for (let i = 0; i < weight.length; i += 1) weight[i] = random.uniform(-bound, bound);
  return {
    weight: { shape: [classes, features], data: weight },
    bias: { shape: [classes], data: new Float32Array(classes) },
  };
}
