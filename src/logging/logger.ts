import winston from 'winston';
import { writeSync } from 'node:fs';
import { Writable } from 'node:stream';
import { routeConsole, routeDcmjsLogs } from './library-logs.js';
import type { LogEventAt, LogEventLevel } from './log-events.js';
import { GatewayError } from '../errors.js';

/** The fields of a line at `level`: its `event` code (log-events.ts) and any ids and values. */
export type EventFields<L extends LogEventLevel> = { readonly event: LogEventAt<L> } & Record<string, unknown>;

/**
 * The daemon's logger. info, warn and error take an `event` code of their level from the catalogue
 * (log-events.ts): a line without one, or with a code of another level, does not compile. Debug lines stay free.
 */
export interface Logger {
  error(message: string, fields: EventFields<'error'>): void;
  warn(message: string, fields: EventFields<'warn'>): void;
  info(message: string, fields: EventFields<'info'>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  level: 'error' | 'warn' | 'info' | 'debug';
  format: 'auto' | 'json' | 'pretty';
  /**
   * Where lines go; stdout for the daemon, stderr for CLI commands whose stdout is their answer. Default: the fd in
   * CXR_GATEWAY_LOG_FD when set, else stdout.
   */
  stream?: Writable & { isTTY?: boolean };
  /**
   * Whether library output (dcmjs's log, console.*) is sent into this logger. Default: when the logger writes to
   * the process's own output (stdout, stderr or CXR_GATEWAY_LOG_FD), not for a logger on a stream of its own.
   */
  captureLibraryOutput?: boolean;
}

/**
 * The environment variable that gives the JSON log an fd of its own. Native libraries (Dawn) write to fd 1 and 2
 * from C++, where nothing in the process can stop them; with e.g. `CXR_GATEWAY_LOG_FD=3 cxr-gateway start
 * 3>&1 1>>native.log 2>&1`, the log stream carries our JSON lines only.
 */
export const LOG_FD_VARIABLE = 'CXR_GATEWAY_LOG_FD';

// Fields that identify a patient. They may appear at debug level for troubleshooting on site,
// never at info or above, whatever a caller passes in.
const PHI_FIELDS = ['patientName', 'patientId', 'patientBirthDate', 'otherPatientIds'];

const dropPhiAboveDebug = winston.format((info) => {
  if (info.level !== 'debug') {
    for (const field of PHI_FIELDS) delete info[field];
  }
  return info;
});

/**
 * Longest string kept in a field. Each line is written with one write(2); a pipe writes up to PIPE_BUF (4096)
 * bytes atomically, so short lines can never have another writer's bytes (a native library on the same fd) land
 * inside them. A longer value is cut, and says so.
 */
export const MAX_FIELD_CHARS = 1024;

const boundFields = winston.format((info) => {
  for (const [key, value] of Object.entries(info)) {
    if (typeof value === 'string' && value.length > MAX_FIELD_CHARS) {
      info[key] = `${value.slice(0, MAX_FIELD_CHARS)}... (${value.length - MAX_FIELD_CHARS} more characters cut)`;
    }
  }
  return info;
});

const prettyLine = winston.format.printf((info) => {
  const { level, message, timestamp, ...fields } = info;
  const extras = Object.entries(fields)
    .filter(([key]) => typeof key === 'string')
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  return `${String(timestamp)} ${level.padEnd(5)} ${String(message)}${extras ? `  ${extras}` : ''}`;
});

/** Writes each chunk to an fd synchronously: one line, one write(2) (looping only if the kernel takes less). */
class FdStream extends Writable {
  readonly isTTY = false;
  constructor(private readonly fd: number) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    try {
      let at = 0;
      while (at < chunk.length) at += writeSync(this.fd, chunk, at, chunk.length - at);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
}

function logFdFromEnvironment(): number | undefined {
  const value = process.env[LOG_FD_VARIABLE];
  if (value === undefined || value === '') return undefined;
  const fd = Number(value);
  if (!Number.isInteger(fd) || fd < 1)
    throw new GatewayError(
      'LOG_FD_INVALID',
      `${LOG_FD_VARIABLE} must be an open file descriptor number, got '${value}'`,
    );
  return fd;
}

export function createLogger(options: LoggerOptions): Logger {
  const fd = options.stream === undefined ? logFdFromEnvironment() : undefined;
  const stream = options.stream ?? (fd === undefined ? process.stdout : new FdStream(fd));
  const pretty = options.format === 'pretty' || (options.format === 'auto' && stream.isTTY === true);
  const logger = winston.createLogger({
    level: options.level,
    format: winston.format.combine(
      dropPhiAboveDebug(),
      boundFields(),
      winston.format.timestamp(),
      winston.format.errors({ stack: false }),
      pretty ? prettyLine : winston.format.json(),
    ),
    transports: [new winston.transports.Stream({ stream })],
  });
  const processOutput =
    options.stream === undefined || options.stream === process.stdout || options.stream === process.stderr;
  if (options.captureLibraryOutput ?? processOutput) {
    routeDcmjsLogs(logger);
    routeConsole(logger);
  }
  return logger;
}
