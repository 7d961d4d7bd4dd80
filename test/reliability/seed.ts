// The CI subset of the robustness suite runs with a fixed seed (reproducible in CI); RELIABILITY_SEED overrides it
// to explore, and every test logs the seed it used so that a failure can be replayed with the script.

export function reliabilitySeed(fallback: number): number {
  const fromEnv = process.env.RELIABILITY_SEED;
  if (fromEnv === undefined || fromEnv === '') return fallback;
  const seed = Number(fromEnv);
  if (!Number.isInteger(seed) || seed < 0)
    throw new Error(`RELIABILITY_SEED must be a whole number >= 0, got '${fromEnv}'`);
  return seed >>> 0;
}

/** The figures of a run as lines for t.log. */
export function figureLines(figures: ReadonlyArray<readonly [string, string | number, string?]>): string {
  return figures.map(([label, value, verdict]) => `${label}: ${value}${verdict ? ` (${verdict})` : ''}`).join('\n');
}
