// Exact percentiles of a large Float32 image without sorting it: a 65536-bin histogram finds the bin holding each
// wanted order statistic, then only the values of those few bins are gathered and sorted. For integer-valued images
// with a range below 65536 (every 8- to 16-bit radiograph with an integer rescale) each bin holds one distinct value,
// so the gathered values need no sort. Three tight passes over the pixels; no copy of the image.

const BINS = 65536;

/**
 * Percentiles `qs` (0..100) of `values` where `exclude` is 0 (all values when it is undefined), with numpy's default
 * ("linear") definition: rank q/100 x (n - 1), interpolated between its neighbours. NaN for each q when no value
 * is included.
 */
export function percentiles(values: Float32Array, exclude: Uint8Array | undefined, qs: readonly number[]): number[] {
  const len = values.length;
  const skip = exclude ?? new Uint8Array(0);
  const masked = exclude !== undefined;
  let n = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < len; i++) {
    if (masked && skip[i]) continue;
    const v = values[i] ?? 0;
    if (v < min) min = v;
    if (v > max) max = v;
    n++;
  }
  if (n === 0) return qs.map(() => NaN);
  if (min === max) return qs.map(() => min);

  // Bin of v: floor((v - min) * scale), the maximum folded into the last bin.
  const scale = BINS / (max - min);
  const counts = new Uint32Array(BINS);
  for (let i = 0; i < len; i++) {
    if (masked && skip[i]) continue;
    const b = (((values[i] ?? 0) - min) * scale) | 0;
    const bin = b < BINS ? b : BINS - 1;
    counts[bin] = (counts[bin] ?? 0) + 1;
  }
  // before[b]: how many included values lie in bins below b.
  const before = new Float64Array(BINS);
  for (let b = 1; b < BINS; b++) before[b] = (before[b - 1] ?? 0) + (counts[b - 1] ?? 0);
  const binOfRank = (k: number): number => {
    let lo = 0;
    let hi = BINS - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((before[mid] ?? 0) <= k) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };

  const ranks = qs.map((q) => (Math.min(100, Math.max(0, q)) / 100) * (n - 1));
  // slot[b]: index of bin b among the wanted bins, -1 for the others.
  const slot = new Int32Array(BINS).fill(-1);
  const buckets: Float32Array[] = [];
  for (const r of ranks) {
    for (const k of [Math.floor(r), Math.min(n - 1, Math.ceil(r))]) {
      const b = binOfRank(k);
      if (slot[b] === -1) {
        slot[b] = buckets.length;
        buckets.push(new Float32Array(counts[b] ?? 0));
      }
    }
  }
  const fill = new Int32Array(buckets.length);
  for (let i = 0; i < len; i++) {
    if (masked && skip[i]) continue;
    const v = values[i] ?? 0;
    const b = ((v - min) * scale) | 0;
    const s = slot[b < BINS ? b : BINS - 1] ?? -1;
    if (s < 0) continue;
    const bucket = buckets[s];
    const at = fill[s] ?? 0;
    if (bucket) bucket[at] = v;
    fill[s] = at + 1;
  }
  for (const bucket of buckets) if (!allEqual(bucket)) bucket.sort();

  const orderStatistic = (k: number): number => {
    const b = binOfRank(k);
    return buckets[slot[b] ?? -1]?.[k - (before[b] ?? 0)] ?? NaN;
  };
  return ranks.map((r) => {
    const k0 = Math.floor(r);
    const lo = orderStatistic(k0);
    if (r === k0) return lo;
    const hi = orderStatistic(Math.min(n - 1, k0 + 1));
    return lo + (hi - lo) * (r - k0);
  });
}

function allEqual(a: Float32Array): boolean {
  const first = a[0];
  for (let i = 1; i < a.length; i++) if (a[i] !== first) return false;
  return true;
}
