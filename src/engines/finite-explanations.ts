// The one check both engines run on what they explain: a relevance map with NaN or infinity in it would be drawn
// as an overlay without a heatmap (the colour map turns NaN into nothing), so it is an error, never an image.

import { GatewayError } from '../errors.js';
import type { Explanation } from '../lrp/densenet-lrp.js';

/** Returns the explanations unchanged, or throws LRP_NOT_FINITE naming the first image and class at fault. */
export function assertFiniteExplanations(explanations: Explanation[][]): Explanation[][] {
  for (const [image, perImage] of explanations.entries()) {
    for (const e of perImage) {
      const bad = firstNonFinite(e.relevance);
      if (bad !== undefined || !Number.isFinite(e.logit)) {
        const what =
          bad === undefined ? `its logit is ${e.logit}` : `relevance ${e.relevance[bad]} at pixel ${bad} of the map`;
        throw new GatewayError(
          'LRP_NOT_FINITE',
          `the ${e.composite} explanation of ${e.targetClass} for image ${image + 1} of the batch is not finite (${what}); no heatmap is made from it`,
        );
      }
    }
  }
  return explanations;
}

function firstNonFinite(values: Float32Array): number | undefined {
  for (let i = 0; i < values.length; i += 1) if (!Number.isFinite(values[i])) return i;
  return undefined;
}
