// Output of libraries into our structured log instead of raw lines on stdout/stderr.
//
// What printed into the daemon's JSON stream (found on these machines and in the libraries' sources):
// - dcmjs: its `log` (a bundled loglevel logger, plus child loggers such as 'validation.dcmjs') writes through
//   console.warn/error/info, e.g. "Invalid vr type \0\0 - using UN" with the raw (often NUL) bytes of a VR; a few
//   code paths call console.log/console.warn directly.
// - console output of a worker thread is forwarded, as raw text, to the main thread's stdout/stderr.
// - Dawn (the `webgpu` package) writes from native code straight to fd 1 and 2: instance warnings
//   ("Warning: Couldn't load Vulkan ...") to stderr, and its device logging and uncaptured-error callbacks
//   printf("%s:\n") then the message in 4 KiB chunks with no newline after it to stdout. Nothing in JavaScript
//   can intercept those bytes; see logger.ts for how our own lines stay whole, and CXR_GATEWAY_LOG_FD to give the
//   JSON log an fd of its own.

import dcmjs from 'dcmjs';
import { isMainThread } from 'node:worker_threads';
import { describeError } from '../errors.js';
import type { LogEventAt } from './log-events.js';

/** Where captured library output goes: our logger, or (in a worker) a JSON line writer. */
export interface LibraryLogSink {
  warn(message: string, fields: { readonly event: LogEventAt<'warn'> } & Record<string, unknown>): void;
  debug(message: string, fields: Record<string, unknown>): void;
}

type LogMethod = (...args: unknown[]) => void;

interface LoglevelLogger {
  methodFactory: (methodName: string, level: number, loggerName: string | symbol | undefined) => LogMethod;
  getLevel(): number;
  setLevel(level: string | number): void;
  rebuild?: () => void;
  getLoggers?: () => Record<string, LoglevelLogger>;
}

/** Library messages as one line of text, with control characters (NUL included) made visible. */
export function libraryMessage(args: readonly unknown[]): string {
  const text = args
    .map((a) => (typeof a === 'string' ? a : a instanceof Error ? describeError(a) : safeInspect(a)))
    .join(' ');
  return text
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .slice(0, 2000);
}

function safeInspect(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

let dcmjsSink: LibraryLogSink | undefined;

/**
 * Sends dcmjs's log (the default logger and every named child logger, now and later) to `sink`: warn and error at
 * warn, the rest at debug. The last call wins: the process's current logger gets them.
 */
export function routeDcmjsLogs(sink: LibraryLogSink): void {
  const first = dcmjsSink === undefined;
  dcmjsSink = sink;
  if (!first) return;
  const root = dcmjs.log as unknown as LoglevelLogger;
  const factory = (methodName: string, _level: number, loggerName: string | symbol | undefined): LogMethod => {
    const library = typeof loggerName === 'string' ? `dcmjs:${loggerName}` : 'dcmjs';
    return (...args: unknown[]) => {
      const target = dcmjsSink;
      if (target === undefined) return;
      const fields = { library, detail: libraryMessage(args) };
      if (methodName === 'warn' || methodName === 'error')
        target.warn('library message', { event: 'GATEWAY-7020', ...fields });
      else target.debug('library message', fields);
    };
  };
  const loggers = [root, ...Object.values(root.getLoggers?.() ?? {})];
  for (const logger of loggers) {
    logger.methodFactory = factory;
    if (logger.rebuild) logger.rebuild();
    else logger.setLevel(logger.getLevel());
  }
}

const CONSOLE_METHODS = ['log', 'info', 'debug', 'trace', 'warn', 'error'] as const;
let consoleSink: LibraryLogSink | undefined;

/**
 * Sends console.* output (libraries that print directly, such as dcmjs's console.log/console.warn calls) to `sink`
 * instead of raw lines on stdout/stderr. Our own code never uses console; the CLI writes its answers with
 * process.stdout.write, which this leaves alone.
 */
export function routeConsole(sink: LibraryLogSink): void {
  const first = consoleSink === undefined;
  consoleSink = sink;
  if (!first) return;
  for (const method of CONSOLE_METHODS) {
    const routed: LogMethod = (...args: unknown[]) => {
      const fields = { library: 'console', detail: libraryMessage(args) };
      if (method === 'warn' || method === 'error')
        consoleSink?.warn('library message', { event: 'GATEWAY-7020', ...fields });
      else consoleSink?.debug('library message', fields);
    };
    Reflect.set(console, method, routed);
  }
}

/**
 * In a worker thread: library output becomes JSON lines on the worker's stdout, which Node forwards to the main
 * thread's stdout whole (one chunk per line). Only warn and above: a worker does not know the configured level,
 * and debug output of libraries is noise at any level above debug.
 */
export function routeLibraryLogsInWorker(): void {
  if (isMainThread) return;
  const write = (level: 'warn', message: string, fields: Record<string, unknown>) => {
    process.stdout.write(
      `${JSON.stringify({ level, message, ...fields, thread: 'worker', timestamp: new Date().toISOString() })}\n`,
    );
  };
  const sink: LibraryLogSink = { warn: (m, f) => write('warn', m, f), debug: () => undefined };
  routeDcmjsLogs(sink);
  routeConsole(sink);
}
