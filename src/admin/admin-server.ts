import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AdminConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { settledBy, type Stage, type StageStatus } from '../logging/lifecycle.js';
import type { StageTimings } from '../logging/stage-timings.js';
import type { StoreMetrics } from '../store/store-metrics.js';
import type { AuthBackend, ConsoleBackend } from './console-types.js';
import { buildHealth, type Health, type HealthSource } from './health.js';
import { registerConsole } from './http/console-app.js';
import { metricsText } from './metrics-text.js';

type ConsoleConfig = Pick<
  AdminConfig,
  'trustProxy' | 'sessionIdleMinutes' | 'sessionMaxHours' | 'loginAttemptsPerMinute'
>;

const CONSOLE_DEFAULTS: ConsoleConfig = {
  trustProxy: false,
  sessionIdleMinutes: 30,
  sessionMaxHours: 12,
  loginAttemptsPerMinute: 5,
};

export interface AdminServerOptions {
  /** Default: settings.host, else 127.0.0.1. */
  host?: string;
  /** Default: settings.port, else 0 (any free port). */
  port?: number;
  health: HealthSource;
  metrics: StoreMetrics;
  timings?: StageTimings;
  logger: Logger;
  /** The admin section of the config (admin.*); host and port above win when both are given. */
  settings?: Partial<AdminConfig>;
  /** The operations console: with both backends the port also serves the pages, the API and /login. */
  console?: ConsoleBackend;
  auth?: AuthBackend;
  /** The clock of the login limiter (tests). */
  now?: () => number;
}

/**
 * The admin port: /healthz for load balancers and monitoring (200 when healthy, 503 with the reasons otherwise)
 * and /metrics in Prometheus text format, both without a session and read-only; with a ConsoleBackend and an
 * AuthBackend also the operations console (http/console-app.ts). Loopback by default.
 */
export class AdminServer implements Stage {
  readonly name = 'admin';
  private app: FastifyInstance | undefined;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(private readonly options: AdminServerOptions) {}

  async start(): Promise<AddressInfo> {
    const { options } = this;
    const settings = { ...CONSOLE_DEFAULTS, ...options.settings };
    const app = Fastify({
      logger: false,
      trustProxy: settings.trustProxy,
      bodyLimit: 1024 * 1024,
      // Unknown query parameters are a 400 naming them, not silently dropped.
      ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    });
    // Response schemas document the API (OpenAPI); answers are written in full with JSON.stringify.
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    this.app = app;

    const withConsole = options.console !== undefined && options.auth !== undefined;
    if (withConsole && options.console && options.auth) {
      await registerConsole(app, {
        console: options.console,
        auth: options.auth,
        settings,
        logger: options.logger,
        now: options.now ?? Date.now,
      });
    } else {
      app.setNotFoundHandler((_request, reply) =>
        reply.code(404).type('text/plain').header('cache-control', 'no-store').send('try /healthz or /metrics\n'),
      );
      app.setErrorHandler((error, request, reply) => {
        options.logger.error('admin request failed', {
          event: 'GATEWAY-7011',
          url: request.url,
          error: describeError(error),
        });
        return reply
          .code(500)
          .type('text/plain')
          .send(`${describeError(error)}\n`);
      });
    }
    app.get(
      '/healthz',
      {
        schema: {
          summary: 'Health for monitoring: 200 ok, 503 degraded with the problems (no session needed)',
          tags: ['status'],
          security: [],
          response: {
            200: { type: 'object', additionalProperties: true },
            503: { type: 'object', additionalProperties: true },
          },
        },
      },
      async (_request, reply) => {
        const health = this.health();
        return reply
          .code(health.status === 'ok' ? 200 : 503)
          .type('application/json')
          .header('cache-control', 'no-store')
          .serializer((body) => body as string)
          .send(`${JSON.stringify(health, null, 2)}\n`);
      },
    );
    app.get(
      '/metrics',
      {
        schema: {
          summary: 'Prometheus metrics (no session needed)',
          tags: ['status'],
          security: [],
          produces: ['text/plain'],
          response: { 200: { type: 'string' } },
        },
      },
      async (_request, reply) =>
        reply
          .type('text/plain; version=0.0.4')
          .header('cache-control', 'no-store')
          .serializer((body) => body as string)
          .send(this.metrics()),
    );

    const host = options.host ?? options.settings?.host ?? '127.0.0.1';
    const port = options.port ?? options.settings?.port ?? 0;
    await app.listen({ host, port });
    this.state = 'running';
    return app.server.address() as AddressInfo;
  }

  /**
   * Stops listening; requests in progress may finish until `deadline` (epoch ms; default: do not wait), then
   * every connection is closed (a monitoring client's keep-alive connection must not hold the shutdown).
   */
  async stop(deadline = 0): Promise<void> {
    const app = this.app;
    this.app = undefined;
    this.state = 'stopping';
    if (app) {
      const closed = app.close();
      app.server.closeIdleConnections();
      if (!(await settledBy(closed, deadline))) app.server.closeAllConnections();
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
