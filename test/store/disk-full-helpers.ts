import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/logging/logger.js';
import type { Logger } from '../../src/logging/logger.js';

/**
 * A real small file system that fills up: a tmpfs of `sizeMb` (these tests run as root, as CI does). The
 * caller unmounts it with `release` in a teardown.
 */
export function smallTmpfs(sizeMb: number): { dir: string; release: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir]);
  return {
    dir,
    release: () => {
      execFileSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A JSON logger whose lines tests can read back. */
export function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      buffered = buffered.slice(nl + 1);
    }
  });
  return { logger: createLogger({ level: 'debug', format: 'json', stream }), lines };
}

/** The data set of a Part 10 file (what a C-STORE carries): after the preamble, 'DICM' and group 0002. */
export function datasetOf(part10: Buffer): Buffer {
  const groupLength = part10.readUInt32LE(132 + 8);
  return part10.subarray(132 + 12 + groupLength);
}
