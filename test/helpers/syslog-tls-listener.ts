import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

// dist/test/helpers -> the script stays in the source tree (tsc does not copy it).
const SCRIPT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../test/helpers/syslog_tls_listener.py',
);

export interface TlsSyslogRecord {
  frame?: string;
  client?: string | null;
  version?: string;
  error?: string;
}

export interface TlsSyslogListener {
  port: number;
  records(): TlsSyslogRecord[];
  stop(): Promise<void>;
}

/** Starts the Python RFC 5425 receiver (ssl-wrapped, octet-counted frames); `clientCa` makes it require client certificates. */
export async function startTlsSyslogListener(
  dir: string,
  files: { cert: string; key: string; clientCa?: string },
  port?: number,
): Promise<TlsSyslogListener> {
  const listenPort = port ?? (await freePort());
  const out = path.join(dir, `tls-received-${listenPort}.jsonl`);
  const args = [SCRIPT, String(listenPort), files.cert, files.key, out, ...(files.clientCa ? [files.clientCa] : [])];
  const child = spawn('/usr/bin/python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`syslog TLS listener exited (${code}): ${stderr}`)));
  });
  const pid = child.pid as number;
  return {
    port: listenPort,
    records: () =>
      existsSync(out)
        ? readFileSync(out, 'utf8')
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as TlsSyslogRecord)
        : [],
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      process.kill(pid, 'SIGTERM');
      await gone;
    },
  };
}
