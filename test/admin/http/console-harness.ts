// Starts an AdminServer with the console on 127.0.0.1 (a free port) over the in-memory fakes, and a small cookie-
// keeping HTTP client, so that tests go through real sockets, real cookies and the real plugins.

import type { ExecutionContext } from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { AdminServer } from '../../../src/admin/admin-server.js';
import type { AdminConfig } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/logging/logger.js';
import { JobStore } from '../../../src/store/job-store.js';
import { StoreMetrics } from '../../../src/store/store-metrics.js';
import { FakeAuth, FakeConsole } from './fake-backends.js';

export interface LogLine {
  event?: string;
  level?: string;
  [key: string]: unknown;
}

export class Client {
  readonly cookies = new Map<string, string>();

  constructor(readonly base: string) {}

  async request(
    method: string,
    url: string,
    options: { json?: unknown; form?: Record<string, string>; csrf?: string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (options.csrf !== undefined) headers['x-csrf-token'] = options.csrf;
    let body: string | undefined;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(options.form).toString();
    }
    const response = await fetch(`${this.base}${url}`, { method, headers, body, redirect: 'manual' });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(cookie)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  get(url: string): Promise<Response> {
    return this.request('GET', url);
  }

  /** The CSRF token of this client's session (GET /api/v1/session). */
  async csrf(): Promise<string> {
    const response = await this.get('/api/v1/session');
    if (response.status !== 200) throw new Error(`session: ${response.status}`);
    return ((await response.json()) as { csrfToken: string }).csrfToken;
  }

  /** POST with this session's CSRF token. */
  async act(url: string, json: unknown = {}): Promise<Response> {
    return this.request('POST', url, { json, csrf: await this.csrf() });
  }
}

export interface ConsoleUnderTest {
  base: string;
  backend: FakeConsole;
  auth: FakeAuth;
  logs: LogLine[];
  /** The login limiter's clock. */
  clock: { now: number };
  client(): Client;
  login(user: string, password: string): Promise<Client>;
}

export async function startConsole(
  t: ExecutionContext,
  settings: Partial<AdminConfig> = {},
): Promise<ConsoleUnderTest> {
  const store = JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'console-')), 'db.sqlite'));
  t.teardown(() => store.close());
  const logs: LogLine[] = [];
  const logger = createLogger({
    level: 'info',
    format: 'json',
    stream: new Writable({
      write: (chunk: Buffer, _e, cb) => {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line) as LogLine);
        cb();
      },
    }),
  });
  const backend = new FakeConsole();
  const auth = new FakeAuth().addUser('alice', 'correct horse', 'admin').addUser('victor', 'viewer pass', 'viewer');
  backend.addStudy({ uid: '1.2.3.1', accession: 'ACC1' });
  backend.addStudy({
    uid: '1.2.3.2',
    accession: 'ACC2',
    receivedAt: Date.UTC(2026, 11, 1, 9),
    deliveries: ['delivered', 'parked'],
  });
  const clock = { now: Date.UTC(2026, 11, 1, 10) };
  const server = new AdminServer({
    host: '127.0.0.1',
    port: 0,
    metrics: new StoreMetrics(store.connection),
    logger,
    health: {
      storeOk: () => true,
      freeDiskBytes: () => 10 * 1048576,
      minFreeDiskBytes: 1048576,
      models: () => [],
      dicomListening: () => true,
    },
    settings: { loginAttemptsPerMinute: 3, ...settings },
    console: backend,
    auth,
    now: () => clock.now,
  });
  const address = await server.start();
  t.teardown(() => server.stop());
  const base = `http://127.0.0.1:${address.port}`;
  return {
    base,
    backend,
    auth,
    logs,
    clock,
    client: () => new Client(base),
    login: async (user, password) => {
      const client = new Client(base);
      const response = await client.request('POST', '/login', { json: { user, password } });
      if (response.status !== 200) throw new Error(`login of ${user}: ${response.status} ${await response.text()}`);
      return client;
    },
  };
}
