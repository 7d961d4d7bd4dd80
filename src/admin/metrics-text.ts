import type { StageTimings } from '../logging/stage-timings.js';
import type { StoreMetrics } from '../store/store-metrics.js';
import { nodeState } from './cluster-view.js';
import type { HealthSource } from './health.js';

/** /metrics in Prometheus text format: store counts, models and workers, stage timings, failing deliveries, disk. */
export function metricsText(health: HealthSource, metrics: StoreMetrics, timings: StageTimings | undefined): string {
  const counts = metrics.counts();
  const latency = metrics.endToEndLatency(Date.now() - 24 * 3600 * 1000);
  const lines: string[] = [];
  const family = (name: string, type: 'counter' | 'gauge' | 'summary', help: string) =>
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  family('cxr_instances_received_total', 'counter', 'Instances received and stored (duplicates not counted).');
  lines.push(`cxr_instances_received_total ${counts.instances}`);
  for (const [name, table, help] of [
    ['cxr_jobs', counts.jobs, 'Study jobs by state (ready and processing are the inference queue).'],
    ['cxr_images', counts.images, 'Images of jobs by state (written = classified, explained and written).'],
    [
      'cxr_deliveries',
      counts.deliveries,
      'Deliveries to PACS and RIS by state (pending = queue, parked = needs an admin).',
    ],
    ['cxr_studies', counts.studies, 'Studies by assembly state.'],
  ] as const) {
    family(name, 'gauge', help);
    for (const [state, n] of Object.entries(table)) lines.push(`${name}{state="${state}"} ${n}`);
  }
  const models = health.models();
  family('cxr_model_loaded', 'gauge', 'Whether each configured model is loaded (1) and its inference workers.');
  for (const m of models)
    lines.push(`cxr_model_loaded{model="${m.name}",backend="${m.backend ?? ''}"} ${m.loaded ? 1 : 0}`);
  family('cxr_end_to_end_latency_seconds', 'summary', 'Last image received to job done, over the last 24 hours.');
  if (latency.p50Seconds !== undefined)
    lines.push(`cxr_end_to_end_latency_seconds{quantile="0.5"} ${latency.p50Seconds}`);
  if (latency.p95Seconds !== undefined)
    lines.push(`cxr_end_to_end_latency_seconds{quantile="0.95"} ${latency.p95Seconds}`);
  lines.push(`cxr_end_to_end_latency_seconds_count ${latency.count}`);
  family(
    'cxr_stage_seconds',
    'summary',
    'Time spent per stage since start: decode, explain (classification and LRP in one pass), write per image; pacs, ris per delivered message.',
  );
  for (const t of timings?.snapshot() ?? []) {
    lines.push(
      `cxr_stage_seconds_sum{stage="${t.stage}"} ${t.seconds}`,
      `cxr_stage_seconds_count{stage="${t.stage}"} ${t.count}`,
    );
  }
  family('cxr_model_workers', 'gauge', 'Inference workers per model: live now, and wanted (when the pool says).');
  for (const m of models) {
    lines.push(`cxr_model_workers{model="${m.name}",state="live"} ${m.workers}`);
    if (m.wantedWorkers !== undefined)
      lines.push(`cxr_model_workers{model="${m.name}",state="wanted"} ${m.wantedWorkers}`);
  }
  const troubles = health.deliveries?.() ?? [];
  family(
    'cxr_deliveries_retrying',
    'gauge',
    'Pending deliveries whose last attempt failed, by destination (they are retried; alert when non-zero for long).',
  );
  for (const t of troubles) lines.push(`cxr_deliveries_retrying{destination="${t.destination}"} ${t.failing}`);
  family(
    'cxr_delivery_oldest_failing_seconds',
    'gauge',
    "How long each destination's oldest failing delivery has been failing.",
  );
  for (const t of troubles)
    lines.push(`cxr_delivery_oldest_failing_seconds{destination="${t.destination}"} ${t.oldestFailingSeconds}`);
  family(
    'cxr_deliveries_parked',
    'gauge',
    'Parked deliveries by destination: never retried on their own; release or discard them (alert when non-zero).',
  );
  for (const p of health.parked?.() ?? [])
    lines.push(`cxr_deliveries_parked{destination="${p.destination}"} ${p.parked}`);
  const reload = health.lastReload?.();
  family(
    'cxr_config_reload_refused',
    'gauge',
    'Whether the last configuration reload was refused (1: the daemon runs an older configuration than the file).',
  );
  lines.push(`cxr_config_reload_refused ${reload !== undefined && !reload.ok ? 1 : 0}`);
  family(
    'cxr_config_last_reload_timestamp_seconds',
    'gauge',
    'When the last configuration reload was tried (applied or refused), in seconds since the epoch; 0 when none.',
  );
  lines.push(`cxr_config_last_reload_timestamp_seconds ${reload === undefined ? 0 : reload.at / 1000}`);
  clusterMetrics(health, family, lines);
  family('cxr_disk_free_bytes', 'gauge', 'Free space under storage.dataDir.');
  lines.push(`cxr_disk_free_bytes ${health.freeDiskBytes()}`);
  return `${lines.join('\n')}\n`;
}

/** The cluster as this node sees it: nodes by state, and the live leases each node holds (none when not known). */
function clusterMetrics(
  health: HealthSource,
  family: (name: string, type: 'gauge', help: string) => void,
  lines: string[],
): void {
  if (health.cluster === undefined) return;
  let view;
  try {
    view = health.cluster();
  } catch {
    // The store does not answer: /healthz says so; the cluster families are left out rather than shown as zero.
    return;
  }
  family(
    'cxr_cluster_nodes',
    'gauge',
    'Nodes of the cluster by state: alive, down (no heartbeat within cluster.leaseSeconds), draining.',
  );
  for (const state of ['alive', 'down', 'draining'] as const)
    lines.push(`cxr_cluster_nodes{state="${state}"} ${view.nodes.filter((n) => nodeState(n) === state).length}`);
  family('cxr_leases_held', 'gauge', 'Live leases each node holds, by kind (job, delivery).');
  for (const n of view.nodes) {
    lines.push(`cxr_leases_held{node="${n.name}",kind="job"} ${n.leases.jobs}`);
    lines.push(`cxr_leases_held{node="${n.name}",kind="delivery"} ${n.leases.deliveries}`);
  }
}
