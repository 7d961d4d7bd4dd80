/** The stages a study's trip is timed by: per image in the inference worker, per delivery in the pipeline. */
/** `explain` is the model's forward pass and LRP together: one pass gives the class and the heatmap. */
export const STAGES = ['decode', 'explain', 'write', 'pacs', 'ris'] as const;
export type Stage = (typeof STAGES)[number];

export type StageMs = Partial<Record<Stage, number>>;

/**
 * Running sums of stage durations since start, for /metrics (a Prometheus summary without quantiles) and the
 * end-to-end benchmark, which sets the pipeline's latency beside the time its stages actually worked.
 */
export class StageTimings {
  private readonly sums = new Map<Stage, { seconds: number; count: number }>();

  observe(stage: Stage, ms: number): void {
    const s = this.sums.get(stage) ?? { seconds: 0, count: 0 };
    s.seconds += ms / 1000;
    s.count += 1;
    this.sums.set(stage, s);
  }

  observeAll(ms: StageMs): void {
    for (const stage of STAGES) {
      const v = ms[stage];
      if (v !== undefined) this.observe(stage, v);
    }
  }

  snapshot(): Array<{ stage: Stage; seconds: number; count: number }> {
    return STAGES.flatMap((stage) => {
      const s = this.sums.get(stage);
      return s ? [{ stage, ...s }] : [];
    });
  }
}
