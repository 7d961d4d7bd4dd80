import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { echo } from '../dimse/echo-scu.js';
import { sendInstances } from '../dimse/storage-scu.js';
import { GatewayError } from '../errors.js';
import { createLogger } from '../logging/logger.js';

export const SEND_USAGE = `  cxr-gateway send FILE|DIR... --to HOST:PORT [--aec AE] [--aet AE]
                                             C-STORE files (folders recursively) in one association
  cxr-gateway echo --to HOST:PORT [--aec AE] [--aet AE]
                                             C-ECHO a DICOM peer`;

function peerOf(args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      to: { type: 'string' },
      aec: { type: 'string', default: 'CXR_GATEWAY' },
      aet: { type: 'string', default: 'CXR_SEND' },
      timeout: { type: 'string', default: '30' },
    },
  });
  const match = /^(.+):(\d+)$/.exec(values.to ?? '');
  if (!match) throw new GatewayError('USAGE', 'give the destination as --to HOST:PORT, e.g. --to 127.0.0.1:11112');
  const timeoutMs = Number(values.timeout) * 1000;
  return {
    positionals,
    peer: {
      host: match[1] ?? '',
      port: Number(match[2]),
      calledAeTitle: values.aec ?? '',
      callingAeTitle: values.aet ?? '',
      connectTimeoutMs: timeoutMs,
      responseTimeoutMs: timeoutMs,
    },
  };
}

/** `cxr-gateway send`: our own C-STORE SCU, for admins and the README's three-command tour. */
export async function sendCommand(args: string[]): Promise<number> {
  const { positionals, peer } = peerOf(args);
  const files = positionals.flatMap(expand);
  if (files.length === 0) throw new GatewayError('USAGE', 'send needs at least one file or folder with DICOM files');
  const logger = createLogger({ level: 'warn', format: 'auto', stream: process.stderr });
  const result = await sendInstances(
    peer,
    files.map((f) => ({ path: f })),
    { logger },
  );
  if ('transient' in result) {
    process.stderr.write(
      `send failed: ${result.transient.reason} (${result.completed.length} of ${files.length} answered before)\n`,
    );
    return 1;
  }
  let failed = 0;
  for (const r of result.results) {
    const ok = r.outcome === 'stored' || r.outcome === 'warning';
    if (!ok) failed += 1;
    const what = 'sopInstanceUid' in r ? r.sopInstanceUid : '';
    const detail =
      r.outcome === 'not-sent'
        ? r.reason
        : `status 0x${r.status.toString(16).padStart(4, '0')}${r.comment ? ` ${r.comment}` : ''}`;
    process.stdout.write(`${r.outcome.padEnd(8)} ${what} ${detail}\n`);
  }
  process.stdout.write(`${result.results.length - failed} of ${files.length} stored at ${peer.host}:${peer.port}\n`);
  return failed === 0 ? 0 : 1;
}

export async function echoCommand(args: string[]): Promise<number> {
  const { peer } = peerOf(args);
  const outcome = await echo({ ...peer, timeoutMs: peer.responseTimeoutMs });
  process.stdout.write(
    outcome.ok
      ? `C-ECHO ${peer.host}:${peer.port} (${peer.calledAeTitle}): success\n`
      : `C-ECHO failed: ${outcome.reason}\n`,
  );
  return outcome.ok ? 0 : 1;
}

function expand(entry: string): string[] {
  if (statSync(entry).isDirectory())
    return readdirSync(entry)
      .sort()
      .flatMap((name) => expand(path.join(entry, name)));
  return entry.endsWith('.dcm') || path.extname(entry) === '' ? [entry] : [];
}
