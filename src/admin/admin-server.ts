import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { settledBy, type Stage, type StageStatus } from '../logging/lifecycle.js';
import type { DestinationTrouble } from '../export/delivery-watch.js';
import type { StageTimings } from '../logging/stage-timings.js';
import type { StoreMetrics } from '../store/store-metrics.js';
import {
  deliveriesHealth,
  diskHealth,
  listenerHealth,
  modelsHealth,
  stagesHealth,
  storeHealth,
  type ModelStatus,
  type NamedStatus,
} from './health.js';

export interface HealthSource {
  /** Whether the job store answers a query. */
  storeOk(): boolean;
  freeDiskBytes(): number;
  minFreeDiskBytes: number;
  models(): ModelStatus[];
  dicomListening(): boolean;
  /** Destinations whose deliveries are failing now (none when left out). */
  deliveries?(): DestinationTrouble[];
  /** delivery.alertAfterMinutes in seconds, read at each request (a reload may change it). */
  alertAfterSeconds?(): number;
  /** The daemon's stages and their status() (gateway.ts): a stage not running, or with problems, degrades. */
  stages?(): NamedStatus[];
}

/**
 * The loopback admin port: /healthz for load balancers and monitoring (200 when healthy, 503 with the
 * reasons otherwise) and /metrics in Prometheus text format.
 */
export class AdminServer implements Stage {
  readonly name = 'admin';
  private server: http.Server | undefined;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(
    private readonly options: {
      host: string;
      port: number;
      health: HealthSource;
      metrics: StoreMetrics;
      timings?: StageTimings;
      logger: Logger;
    },
  ) {}

  async start(): Promise<AddressInfo> {
    const server = http.createServer((request, response) => {
      try {
        if (request.method !== 'GET') return send(response, 405, 'text/plain', 'only GET\n');
        if (request.url === '/healthz') {
          const health = this.health();
          return send(
            response,
            health.status === 'ok' ? 200 : 503,
            'application/json',
            `${JSON.stringify(health, null, 2)}\n`,
          );
        }
        if (request.url === '/metrics') return send(response, 200, 'text/plain; version=0.0.4', this.metrics());
        return send(response, 404, 'text/plain', 'try /healthz or /metrics\n');
      } catch (error) {
        this.options.logger.error('admin request failed', {
          event: 'GATEWAY-7011',
          url: request.url,
          error: describeError(error),
        });
        return send(response, 500, 'text/plain', `${describeError(error)}\n`);
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.options.host, port: this.options.port }, () => resolve());
    });
    this.state = 'running';
    return server.address() as AddressInfo;
  }

  /**
   * Stops listening; requests in progress may finish until `deadline` (epoch ms; default: do not wait), then
   * every connection is closed (a monitoring client's keep-alive connection must not hold the shutdown).
   */
  async stop(deadline = 0): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.state = 'stopping';
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (!(await settledBy(closed, deadline))) server.closeAllConnections();
      await closed;
    }
    this.state = 'stopped';
  }

  status(): StageStatus {
    return { state: this.state === 'new' ? 'starting' : this.state, problems: [] };
  }

  /** Built from parts (health.ts): store, disk, models and their workers, DICOM listener, deliveries. */
  health(): { status: 'ok' | 'degraded'; problems: string[]; checks: Record<string, unknown> } {
    const h = this.options.health;
    const store = storeHealth(h.storeOk());
    const disk = diskHealth(h.freeDiskBytes(), h.minFreeDiskBytes);
    const models = modelsHealth(h.models());
    const dicom = listenerHealth(h.dicomListening());
    const deliveries = deliveriesHealth(h.deliveries?.() ?? [], h.alertAfterSeconds?.() ?? 30 * 60);
    const stages = stagesHealth(h.stages?.() ?? []);
    const problems = [store, disk, models, dicom, deliveries, stages].flatMap((p) => p.problems);
    // Stage problems repeat what a dedicated part said (the listener's); each sentence is shown once.
    const unique = [...new Set(problems)];
    return {
      status: unique.length === 0 ? 'ok' : 'degraded',
      problems: unique,
      checks: {
        store: store.check,
        diskFreeMB: disk.check,
        models: models.check,
        dicomListening: dicom.check,
        failingDeliveries: deliveries.check,
        stages: stages.check,
      },
    };
  }

  private metrics(): string {
    const counts = this.options.metrics.counts();
    const latency = this.options.metrics.endToEndLatency(Date.now() - 24 * 3600 * 1000);
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
    const models = this.options.health.models();
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
    for (const t of this.options.timings?.snapshot() ?? []) {
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
    const troubles = this.options.health.deliveries?.() ?? [];
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
    family('cxr_disk_free_bytes', 'gauge', 'Free space under storage.dataDir.');
    lines.push(`cxr_disk_free_bytes ${this.options.health.freeDiskBytes()}`);
    return `${lines.join('\n')}\n`;
  }
}

function send(response: http.ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  response.end(body);
}
