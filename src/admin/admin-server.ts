import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { settledBy, type Stage, type StageStatus } from '../logging/lifecycle.js';
import type { StageTimings } from '../logging/stage-timings.js';
import type { StoreMetrics } from '../store/store-metrics.js';
import { buildHealth, type Health, type HealthSource } from './health.js';
import { metricsText } from './metrics-text.js';

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
  health(): Health {
    return buildHealth(this.options.health);
  }

  private metrics(): string {
    return metricsText(this.options.health, this.options.metrics, this.options.timings);
  }
}

function send(response: http.ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  response.end(body);
}
