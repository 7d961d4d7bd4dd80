import { z } from 'zod';

/** A rule for one convolution (Montavon et al. 2019; Zennit's names where they differ). */
export type ConvRule =
  | { kind: 'epsilon' }
  | { kind: 'alpha-beta'; alpha: number; beta: number }
  | { kind: 'gamma'; gamma: number }
  /** z^B: for the first layer, with the lowest and highest value each input channel can take. */
  | { kind: 'z-box' }
  /** Flat: relevance spread evenly over the receptive field, ignoring weights and inputs. */
  | { kind: 'flat' };

/** Where a convolution sits in a DenseNet, which is what composites decide rules by. */
export type ConvSite =
  { kind: 'stem' } | { kind: 'dense-layer'; block: number } | { kind: 'transition'; index: number };

export const COMPOSITE_NAMES = ['isnet', 'epsilon', 'epsilon-plus-flat', 'epsilon-gamma-box'] as const;
export type CompositeName = (typeof COMPOSITE_NAMES)[number];

export const lrpOptionsSchema = z
  .object({
    composite: z.enum(COMPOSITE_NAMES).default('isnet'),
    /** Stabiliser of the epsilon rule: z + epsilon * sign(z), with sign(0) = +1. */
    epsilon: z.number().min(0).default(1e-2),
    gamma: z.number().min(0).default(0.25),
    alpha: z.number().min(1).default(2),
    beta: z.number().min(0).default(1),
    /**
     * Per-channel bounds of the network input for z^B. Default: what the pixels 0 and 1 become after the
     * model's mean/std normalisation, i.e. the true range of a preprocessed image.
     */
    inputBounds: z
      .object({ low: z.array(z.number()), high: z.array(z.number()) })
      .strict()
      .optional(),
  })
  .strict();

export type LrpOptions = z.infer<typeof lrpOptionsSchema>;

/**
 * The rule each convolution gets. Dense (linear) steps, BatchNorm affine maps, average and global pooling
 * always use epsilon, and the stem max pool always sends relevance to its winning input.
 * `isnet` is the seed author's DenseNet recipe: alpha-beta in the early, fine-grained blocks (1-2 and
 * transitions 1-2), epsilon in the deep ones, z^B at the pixels.
 */
export function convRule(options: LrpOptions, site: ConvSite): ConvRule {
  const epsilon: ConvRule = { kind: 'epsilon' };
  const alphaBeta: ConvRule = { kind: 'alpha-beta', alpha: options.alpha, beta: options.beta };
  switch (options.composite) {
    case 'epsilon':
      return epsilon;
    case 'isnet':
      if (site.kind === 'stem') return { kind: 'z-box' };
      if (site.kind === 'dense-layer') return site.block < 2 ? alphaBeta : epsilon;
      return site.index < 2 ? alphaBeta : epsilon;
    case 'epsilon-plus-flat':
      return site.kind === 'stem' ? { kind: 'flat' } : { kind: 'alpha-beta', alpha: 1, beta: 0 };
    case 'epsilon-gamma-box':
      return site.kind === 'stem' ? { kind: 'z-box' } : { kind: 'gamma', gamma: options.gamma };
  }
}
