import winston from 'winston';
import type { Writable } from 'node:stream';

export type Logger = winston.Logger;

export interface LoggerOptions {
  level: 'error' | 'warn' | 'info' | 'debug';
  format: 'auto' | 'json' | 'pretty';
  /** Where lines go; stdout for the daemon, stderr for CLI commands whose stdout is their answer. */
  stream?: Writable & { isTTY?: boolean };
}

// Fields that identify a patient. They may appear at debug level for troubleshooting on site,
// never at info or above, whatever a caller passes in.
const PHI_FIELDS = ['patientName', 'patientId', 'patientBirthDate', 'otherPatientIds'];

const dropPhiAboveDebug = winston.format((info) => {
  if (info.level !== 'debug') {
    for (const field of PHI_FIELDS) delete info[field];
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

export function createLogger(options: LoggerOptions): Logger {
  const stream = options.stream ?? process.stdout;
  const pretty = options.format === 'pretty' || (options.format === 'auto' && stream.isTTY === true);
  return winston.createLogger({
    level: options.level,
    format: winston.format.combine(
      dropPhiAboveDebug(),
      winston.format.timestamp(),
      winston.format.errors({ stack: false }),
      pretty ? prettyLine : winston.format.json(),
    ),
    transports: [new winston.transports.Stream({ stream })],
  });
}
