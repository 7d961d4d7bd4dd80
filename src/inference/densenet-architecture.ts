import { z } from 'zod';

/** The hyper-parameters of a torchvision DenseNet; any combination, so tiny variants exist for tests. */
export const denseNetArchitectureSchema = z
  .object({
    family: z.literal('densenet'),
    growthRate: z.number().int().min(1),
    blockConfig: z.array(z.number().int().min(1)).min(1).max(8),
    numInitFeatures: z.number().int().min(1),
    bnSize: z.number().int().min(1).default(4),
    numClasses: z.number().int().min(1),
  })
  .strict();

export type DenseNetArchitecture = z.infer<typeof denseNetArchitectureSchema>;

/** torchvision's named variants (torchvision/models/densenet.py). */
export const DENSENET_VARIANTS = {
  densenet121: { growthRate: 32, blockConfig: [6, 12, 24, 16], numInitFeatures: 64, bnSize: 4 },
  densenet169: { growthRate: 32, blockConfig: [6, 12, 32, 32], numInitFeatures: 64, bnSize: 4 },
  densenet201: { growthRate: 32, blockConfig: [6, 12, 48, 32], numInitFeatures: 64, bnSize: 4 },
} as const;

export function namedDenseNet(variant: keyof typeof DENSENET_VARIANTS, numClasses: number): DenseNetArchitecture {
  const v = DENSENET_VARIANTS[variant];
  return {
    family: 'densenet',
    growthRate: v.growthRate,
    blockConfig: [...v.blockConfig],
    numInitFeatures: v.numInitFeatures,
    bnSize: v.bnSize,
    numClasses,
  };
}

export type ParameterKind = 'conv' | 'bn' | 'linear-weight' | 'linear-bias';

/** One parameter tensor as torchvision names and shapes it (OIHW convolutions, [out, in] linear). */
export interface ParameterSpec {
  name: string;
  shape: number[];
}

const BN_FIELDS = ['weight', 'bias', 'running_mean', 'running_var'] as const;

/**
 * Every parameter a torchvision DenseNet with this architecture has, in state_dict order, with its
 * shape: the checklist the importer holds a weights file against.
 */
export function expectedParameters(arch: DenseNetArchitecture): ParameterSpec[] {
  const specs: ParameterSpec[] = [];
  const bn = (prefix: string, channels: number) => {
    for (const field of BN_FIELDS) specs.push({ name: `${prefix}.${field}`, shape: [channels] });
  };
  specs.push({ name: 'features.conv0.weight', shape: [arch.numInitFeatures, 3, 7, 7] });
  bn('features.norm0', arch.numInitFeatures);
  let channels = arch.numInitFeatures;
  const inner = arch.bnSize * arch.growthRate;
  arch.blockConfig.forEach((layers, b) => {
    for (let l = 0; l < layers; l += 1) {
      const prefix = `features.denseblock${b + 1}.denselayer${l + 1}`;
      const input = channels + l * arch.growthRate;
      bn(`${prefix}.norm1`, input);
      specs.push({ name: `${prefix}.conv1.weight`, shape: [inner, input, 1, 1] });
      bn(`${prefix}.norm2`, inner);
      specs.push({ name: `${prefix}.conv2.weight`, shape: [arch.growthRate, inner, 3, 3] });
    }
    channels += layers * arch.growthRate;
    if (b !== arch.blockConfig.length - 1) {
      const prefix = `features.transition${b + 1}`;
      bn(`${prefix}.norm`, channels);
      specs.push({ name: `${prefix}.conv.weight`, shape: [Math.floor(channels / 2), channels, 1, 1] });
      channels = Math.floor(channels / 2);
    }
  });
  bn('features.norm5', channels);
  specs.push({ name: 'classifier.weight', shape: [arch.numClasses, channels] });
  specs.push({ name: 'classifier.bias', shape: [arch.numClasses] });
  return specs;
}

/** Channels entering the classifier. */
export function featureChannels(arch: DenseNetArchitecture): number {
  let channels = arch.numInitFeatures;
  arch.blockConfig.forEach((layers, b) => {
    channels += layers * arch.growthRate;
    if (b !== arch.blockConfig.length - 1) channels = Math.floor(channels / 2);
  });
  return channels;
}
