// The bridge worker: the thread that owns the gateway's one PostgreSQL connection. The main thread posts a
// statement, then blocks in Atomics.wait until this thread has posted the answer and raised the signal.
//
// One Client, not a pool: the main thread waits for every statement before it sends the next one, so a pool
// would never lend out a second connection; and a transaction (BEGIN ... COMMIT, savepoints) must run on one
// connection anyway.
import { workerData } from 'node:worker_threads';
import pg from 'pg';
import type { BridgeFailure, BridgeReply, BridgeRequest, BridgeValue, BridgeWorkerData } from './bridge-protocol.js';

const data = workerData as BridgeWorkerData;
const signal = new Int32Array(data.signal);
const port = data.port;

/** An int8 or numeric value a JavaScript number cannot hold exactly: refused rather than silently rounded. */
class UnsafeIntegerError extends Error {}
/** The connection is gone (or never came): the statement fails with the reason. */
class ConnectionLost extends Error {}

function safeInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new UnsafeIntegerError(`the integer ${text} is beyond Number.MAX_SAFE_INTEGER and cannot be read exactly`);
  }
  return value;
}

// Ids, counts and epoch milliseconds are int8 (COUNT(*) is int8 too): pg returns them as strings by default,
// while the store's callers (written for SQLite) expect numbers. This module runs only in this worker, so
// setting the parsers globally affects nothing else.
pg.types.setTypeParser(pg.types.builtins.INT8, safeInteger);
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (text: string) => {
  if (/^-?\d+$/.test(text)) return safeInteger(text);
  return Number(text);
});

let client: pg.Client | undefined;
/** False once the connection reported an error or ended: the next statement outside a transaction reconnects. */
let usable = false;

async function connected(inTransaction: boolean): Promise<pg.Client> {
  if (client !== undefined && usable) return client;
  if (client !== undefined) {
    const lost = client;
    client = undefined;
    lost.end().catch(() => undefined);
    if (inTransaction) {
      throw new ConnectionLost('the connection to PostgreSQL was lost inside a transaction, which is rolled back');
    }
  }
  const fresh = new pg.Client({
    connectionString: data.settings.url,
    connectionTimeoutMillis: data.settings.connectTimeoutMs,
    statement_timeout: data.settings.statementTimeoutMs,
    application_name: data.settings.applicationName,
  });
  // Without a listener an idle connection's error (server restart, network cut) would end this thread.
  fresh.on('error', () => {
    if (client === fresh) usable = false;
  });
  fresh.on('end', () => {
    if (client === fresh) usable = false;
  });
  try {
    await fresh.connect();
  } catch (error) {
    fresh.end().catch(() => undefined);
    throw new ConnectionLost(`cannot connect to PostgreSQL: ${messageOf(error)}`);
  }
  client = fresh;
  usable = true;
  return fresh;
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map((e: unknown) => messageOf(e)).join('; ');
  }
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** SQLSTATE classes that mean the session itself is gone (server shut down, connection failure). */
function endsSession(sqlstate: string): boolean {
  return sqlstate.startsWith('08') || sqlstate === '57P01' || sqlstate === '57P02' || sqlstate === '57P03';
}

function failureOf(error: unknown): BridgeFailure {
  if (error instanceof UnsafeIntegerError) {
    return { kind: 'value', message: error.message, sqlstate: undefined, detail: undefined };
  }
  if (error instanceof pg.DatabaseError && typeof error.code === 'string') {
    const lost = endsSession(error.code);
    if (lost) usable = false;
    return { kind: lost ? 'connection' : 'sql', message: error.message, sqlstate: error.code, detail: error.detail };
  }
  // Anything else comes from the socket: refused, reset, terminated unexpectedly, connect timeout.
  usable = false;
  return { kind: 'connection', message: messageOf(error), sqlstate: undefined, detail: undefined };
}

function toParam(value: BridgeValue): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

async function answer(request: BridgeRequest): Promise<BridgeReply> {
  try {
    if (request.kind === 'close') {
      const open = client;
      client = undefined;
      // A connection already lost has nothing to end; waiting on it could only delay the gateway's stop.
      if (open !== undefined && usable) await open.end();
      else open?.end().catch(() => undefined);
      return { id: request.id, ok: true, rows: [], rowCount: 0, command: '' };
    }
    const connection = await connected(request.inTransaction);
    if (request.kind === 'simple') {
      // Text without parameters goes over the simple query protocol, which runs several statements at once.
      await connection.query(request.sql);
      return { id: request.id, ok: true, rows: [], rowCount: 0, command: '' };
    }
    const result = await connection.query<Record<string, unknown>>(request.sql, request.params.map(toParam));
    return { id: request.id, ok: true, rows: result.rows, rowCount: result.rowCount ?? 0, command: result.command };
  } catch (error) {
    return { id: request.id, ok: false, failure: failureOf(error) };
  }
}

port.on('message', (request: BridgeRequest) => {
  void answer(request).then((reply) => {
    port.postMessage(reply);
    // The reply is in the port's queue before the signal rises, so the woken main thread always finds it.
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
    if (request.kind === 'close') port.close();
  });
});
