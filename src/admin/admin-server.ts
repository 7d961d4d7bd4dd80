import { readFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AdminConfig } from '../config/schema.js';
import { GatewayError, describeError } from '../errors.js';
import { BCP195_CIPHERS, TLS_MIN_VERSION } from '../config/tls-profile.js';
import type { Logger } from '../logging/logger.js';
import { settledBy, type Stage, type StageStatus } from '../logging/lifecycle.js';
import type { StageTimings } from '../logging/stage-timings.js';
import { RepeatLimiter, type AuditRecorder } from '../store/audit-trail.js';
import type { StoreMetrics } from '../store/store-metrics.js';
import type { AuthBackend, ConsoleBackend } from './console-types.js';
import { buildHealth, type Health, type HealthSource } from './health.js';
import { registerConsole } from './http/console-app.js';
import { metricsText } from './metrics-text.js';
import { receiveReadiness } from './readiness.js';

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
  /** With admin.tls: a failed TLS handshake is a security tls.failed audit event here. */
  audit?: AuditRecorder;
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
  /** Client addresses by TCP socket, for the audit of failed TLS handshakes. */
  private readonly peers = new WeakMap<object, string>();
  /** One tls.failed row per address, reason and minute: a scanner must not flood the audit trail. */
  private readonly tlsRepeats = new RepeatLimiter();

  constructor(private readonly options: AdminServerOptions) {}

  async start(): Promise<AddressInfo> {
    const { options } = this;
    const settings = { ...CONSOLE_DEFAULTS, ...options.settings };
    const tls = options.settings?.tls;
    // HTTPS (admin.tls): the session cookie is Secure then (sessions.ts sets it for request.protocol https).
    const https =
      tls === undefined ? undefined : { ...readTlsFiles(tls), minVersion: TLS_MIN_VERSION, ciphers: BCP195_CIPHERS };
    if (https !== undefined) {
      // A file that is not PEM, or a key that is not the certificate's: the start stops with the file named.
      try {
        createSecureContext(https);
      } catch (error) {
        throw new GatewayError(
          'ADMIN_TLS_FILE_UNREADABLE',
          `admin.tls: ${tls?.certFile} and ${tls?.keyFile} are not a PEM certificate and its key: ${describeError(error)}`,
        );
      }
    }
    // Fastify types an https server apart; the routes below use nothing that differs, hence the one cast.
    const app = Fastify({
      ...(https !== undefined ? { https } : {}),
      logger: false,
      trustProxy: settings.trustProxy,
      bodyLimit: 1024 * 1024,
      // Unknown query parameters are a 400 naming them, not silently dropped.
      ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    }) as unknown as FastifyInstance;
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
      '/readyz',
      {
        schema: {
          summary:
            'Whether this node takes new DICOM associations, for a load balancer: 200 ready, 503 with why (store, disk, listener, draining; no session needed)',
          tags: ['status'],
          security: [],
          response: {
            200: { type: 'object', additionalProperties: true },
            503: { type: 'object', additionalProperties: true },
          },
        },
      },
      async (_request, reply) => {
        const readiness = receiveReadiness(this.options.health);
        return reply
          .code(readiness.ready ? 200 : 503)
          .type('application/json')
          .header('cache-control', 'no-store')
          .serializer((body) => body as string)
          .send(`${JSON.stringify(readiness, null, 2)}\n`);
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
    if (https !== undefined) {
      // The TCP socket's peer, noted on arrival: a TLS socket the client already closed (it refused our
      // certificate) no longer knows its address, and the TCP socket under it (Node's _parent) is closed too.
      app.server.prependListener('connection', (raw: { remoteAddress?: string | undefined }) => {
        if (raw.remoteAddress !== undefined) this.peers.set(raw, raw.remoteAddress);
      });
      app.server.on('tlsClientError', (error, socket) => this.tlsFailed(error, socket));
    }
    await app.listen({ host, port });
    this.state = 'running';
    return app.server.address() as AddressInfo;
  }

  /**
   * A client whose TLS handshake failed (a plain-HTTP request, an old protocol or cipher, a client that refused
   * our certificate): a security event for the audit trail. No log line per attempt: a scanner would flood it.
   */
  private tlsFailed(
    error: NodeJS.ErrnoException,
    socket: { remoteAddress?: string | undefined; _parent?: { remoteAddress?: string | undefined } | null },
  ): void {
    const { audit } = this.options;
    if (audit === undefined) return;
    const parent = socket._parent;
    const address = socket.remoteAddress ?? (parent ? this.peers.get(parent) : undefined) ?? null;
    const now = (this.options.now ?? Date.now)();
    const why = error.code ?? describeError(error);
    const leftOut = this.tlsRepeats.admit(`${address ?? 'unknown'} ${why}`, now);
    if (leftOut === undefined) return;
    try {
      audit.record(
        {
          category: 'security',
          action: 'tls.failed',
          user: null,
          role: null,
          address,
          target: 'admin port',
          outcome: 'failure',
          after: { listener: 'admin', address, ...(leftOut > 0 ? { leftOutBefore: leftOut } : {}) },
          detail: `${why}${leftOut > 0 ? ` (${leftOut} more alike from this address in the minute before, not recorded one by one)` : ''}`,
        },
        now,
      );
    } catch (failure) {
      this.options.logger.error('audit event not recorded', {
        event: 'EXPORT-6403',
        action: 'tls.failed',
        error: describeError(failure),
      });
    }
  }

  /** Whether the port speaks HTTPS (admin.tls). */
  get secure(): boolean {
    return this.options.settings?.tls !== undefined;
  }

  /**
   * Reads admin.tls's certificate and key again (SIGHUP: a renewed certificate without a restart): new
   * connections get them, open ones keep theirs. Files that cannot be read leave the running ones in place
   * (EXPORT-6421). Returns whether the new ones are in use; false also without admin.tls or before start.
   */
  reloadTls(): boolean {
    const tls = this.options.settings?.tls;
    const app = this.app;
    if (tls === undefined || app === undefined) return false;
    try {
      const files = readTlsFiles(tls);
      (app.server as unknown as HttpsServer).setSecureContext({
        ...files,
        minVersion: TLS_MIN_VERSION,
        ciphers: BCP195_CIPHERS,
      });
    } catch (error) {
      this.options.logger.error('admin HTTPS certificate not reloaded: keeping the running one', {
        event: 'EXPORT-6421',
        certFile: tls.certFile,
        error: describeError(error),
      });
      return false;
    }
    this.options.logger.info('admin HTTPS certificate reloaded', { event: 'EXPORT-6420', certFile: tls.certFile });
    return true;
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

/** admin.tls's PEM files; ADMIN_TLS_FILE_UNREADABLE names the one that cannot be read. */
function readTlsFiles(tls: { certFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new GatewayError(
        'ADMIN_TLS_FILE_UNREADABLE',
        `cannot read the admin port's ${what} ${file}: ${describeError(error)}`,
      );
    }
  };
  return {
    cert: read(tls.certFile, 'certificate (admin.tls.certFile)'),
    key: read(tls.keyFile, 'key (admin.tls.keyFile)'),
  };
}
