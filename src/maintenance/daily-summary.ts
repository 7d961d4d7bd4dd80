import type { StoreMetrics } from '../store/store-metrics.js';

/** The one line a day an admin reads: what came in, what went out, what is stuck, how long it took. */
export function dailySummary(metrics: StoreMetrics, now: number): Record<string, unknown> {
  const counts = metrics.counts();
  const latency = metrics.endToEndLatency(now - 24 * 3600 * 1000);
  return {
    instancesStored: counts.instances,
    jobs: counts.jobs,
    deliveries: counts.deliveries,
    imagesFailed: counts.images.failed ?? 0,
    parkedDeliveries: counts.deliveries.parked ?? 0,
    jobsDoneLast24h: latency.count,
    latencyP50Seconds: latency.p50Seconds,
    latencyP95Seconds: latency.p95Seconds,
  };
}
