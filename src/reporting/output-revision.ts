import { GatewayError } from '../errors.js';

/**
 * A study revision (0 for the first result, one more for each reopening) and the earlier revision an output
 * replaces. Both are part of derived UIDs, so nonsense here would mint UIDs that nothing can ever match again.
 */
export function checkRevision(revision: number, supersedes: number | undefined): void {
  if (!Number.isInteger(revision) || revision < 0) {
    throw new GatewayError(
      'OUTPUT_REVISION_INVALID',
      `the study revision must be a whole number >= 0, got ${revision}`,
    );
  }
  if (supersedes !== undefined && (!Number.isInteger(supersedes) || supersedes < 0 || supersedes >= revision)) {
    throw new GatewayError(
      'OUTPUT_REVISION_INVALID',
      `revision ${revision} can only supersede an earlier revision, got ${supersedes}`,
    );
  }
}
