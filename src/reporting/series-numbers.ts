// Series Numbers of our series in the source's study. Every revision gets numbers of its own, so that a corrected
// result never shows beside the first one under the same number: 9000 + 10 x revision + the kind's offset.
// 9000 keeps them above what modalities number their own series; a block of ten per revision leaves room for
// more kinds without renumbering. Series Number is IS (at most 2^31 - 1): fine for any revision a study reaches.

import { GatewayError } from '../errors.js';

export type NumberedSeries = 'heatmap' | 'sr' | 'rejection';

const BASE = 9000;
const PER_REVISION = 10;
const OFFSET: Record<NumberedSeries, number> = { heatmap: 1, sr: 2, rejection: 3 };

export function outputSeriesNumber(kind: NumberedSeries, revision: number): number {
  const n = BASE + PER_REVISION * revision + OFFSET[kind];
  if (!Number.isSafeInteger(revision) || revision < 0 || n > 2 ** 31 - 1)
    throw new GatewayError('OUTPUT_REVISION_INVALID', `no series number for revision ${revision}`);
  return n;
}
