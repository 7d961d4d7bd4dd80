// The one check both engines run on what they explain: a relevance map with NaN or infinity in it would be drawn
// as an overlay without a heatmap (the colour map turns NaN into nothing), so it is an error, never an image.
// The map itself is judged by lrp's assertFiniteRelevance (which DenseNetLrp also applies); the logit is added here.

import { GatewayError } from '../errors.js';
import type { Explanation } from '../lrp/explanation.js';
import { assertFiniteRelevance } from '../lrp/finite-relevance.js';

/** Returns the explanations unchanged, or throws LRP_NOT_FINITE naming the first image and class at fault. */
export function assertFiniteExplanations(explanations: Explanation[][]): Explanation[][] {
  for (const [image, perImage] of explanations.entries()) {
    for (const e of perImage) {
      const what = `the ${e.composite} explanation of ${e.targetClass} for image ${image + 1} of the batch`;
      assertFiniteRelevance(e.relevance, what);
      if (!Number.isFinite(e.logit))
        throw new GatewayError('LRP_NOT_FINITE', `${what}: its logit is ${e.logit}; no heatmap is made from it`);
    }
  }
  return explanations;
}
