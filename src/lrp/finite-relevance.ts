import { GatewayError } from '../errors.js';

/**
 * Refuses a relevance map holding NaN or an infinity: such a map has no colour scale (its maximum is not a
 * number), so a heatmap drawn from it would be an overlay without a heatmap, passed off as an explanation.
 * `what` names the map for the message (image, class, composite).
 */
export function assertFiniteRelevance(relevance: ArrayLike<number>, what: string): void {
  let bad = 0;
  let first = -1;
  for (let i = 0; i < relevance.length; i += 1) {
    if (!Number.isFinite(relevance[i])) {
      bad += 1;
      if (first < 0) first = i;
    }
  }
  if (bad === 0) return;
  throw new GatewayError(
    'LRP_NOT_FINITE',
    `${what}: ${bad} of ${relevance.length} relevance values are not finite (the first, ${String(relevance[first])}, at index ${first}); no heatmap is made from it`,
  );
}
