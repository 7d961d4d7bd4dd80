import { GatewayError } from '../errors.js';

/**
 * explain.target may name a class ('pneumonia') instead of 'predicted' or 'all'. The schema cannot know the
 * models' classes, so a typo would pass validation and then fail every image at run time; this check runs where the
 * manifests are known (gateway start, after reading them, and every reload) and refuses such a configuration.
 */
export function checkExplainTarget(
  target: string,
  classesByModel: Iterable<readonly [string, readonly string[]]>,
): void {
  if (target === 'predicted' || target === 'all') return;
  for (const [model, classes] of classesByModel) {
    if (!classes.includes(target)) {
      throw new GatewayError(
        'EXPLAIN_TARGET_UNKNOWN',
        `explain.target '${target}' is not a class of model '${model}' (its classes are ${classes.join(', ')}); name one of them, or use 'predicted' or 'all'`,
      );
    }
  }
}
