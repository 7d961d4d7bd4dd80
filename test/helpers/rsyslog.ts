import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './ports.js';
import { waitUntil } from './wait-until.js';

export const RSYSLOGD = '/usr/sbin/rsyslogd';

/** One message as rsyslog parsed it (RFC 5424 fields), written by the test's template as one JSON line. */
export interface ReceivedSyslog {
  pri: string;
  hostname: string;
  app: string;
  procid: string;
  msgid: string;
  sd: string;
  timestamp: string;
  /** MSG as rsyslog kept it (a BOM first when the sender wrote one). */
  msg: string;
}

export interface Rsyslog {
  udpPort: number;
  tcpPort: number;
  pid: number;
  messages(): ReceivedSyslog[];
  stop(): Promise<void>;
}

// Every RFC 5424 field into a JSON object per line; control characters kept (the audit XML has newlines) and
// messages up to 64 KiB (the default 8 KiB would cut long audit messages).
const TEMPLATE = [
  ['pri', 'pri'],
  ['hostname', 'hostname'],
  ['app', 'app-name'],
  ['procid', 'procid'],
  ['msgid', 'msgid'],
  ['sd', 'structured-data'],
  ['timestamp', 'timereported" dateFormat="rfc3339'],
  ['msg', 'msg'],
]
  .map(
    ([key, prop], i) =>
      `constant(value="${i === 0 ? '{' : '\\",'}\\"${key}\\":\\"") property(name="${prop}" format="json")`,
  )
  .join(' ');

/**
 * Starts a real rsyslogd (Debian's, in the foreground, with its own config, work folder and pid file in `dir`)
 * listening with imudp and imtcp on free 127.0.0.1 ports and writing what it receives to `dir`/received.jsonl.
 * `ports` reuses given ports (to restart a receiver where the gateway expects it).
 */
export async function startRsyslog(dir: string, ports?: { udpPort: number; tcpPort: number }): Promise<Rsyslog> {
  const udpPort = ports?.udpPort ?? (await freePort());
  const tcpPort = ports?.tcpPort ?? (await freePort());
  const out = path.join(dir, 'received.jsonl');
  const conf = path.join(dir, 'rsyslog.conf');
  const pidFile = path.join(dir, 'rsyslogd.pid');
  writeFileSync(
    conf,
    `global(workDirectory="${dir}" maxMessageSize="64k" parser.escapeControlCharactersOnReceive="off")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="${udpPort}")
input(type="imtcp" address="127.0.0.1" port="${tcpPort}")
template(name="fields" type="list") { ${TEMPLATE} constant(value="\\"}\\n") }
*.* action(type="omfile" file="${out}" template="fields")
`,
  );
  const child: ChildProcess = spawn(RSYSLOGD, ['-n', '-f', conf, '-i', pidFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  const pid = child.pid;
  if (pid === undefined) throw new Error('rsyslogd did not start');
  // Ready when the TCP input accepts and the UDP port is bound (/proc/net/udp lists it).
  let accepting = false;
  const hexPort = udpPort.toString(16).toUpperCase().padStart(4, '0');
  await waitUntil(
    () => {
      if (exited) throw new Error(`rsyslogd exited: ${stderr}`);
      if (!accepting) {
        const probe = net.connect({ host: '127.0.0.1', port: tcpPort });
        probe.once('connect', () => {
          accepting = true;
          probe.destroy();
        });
        probe.once('error', () => probe.destroy());
      }
      return accepting && readFileSync('/proc/net/udp', 'utf8').includes(`:${hexPort} `);
    },
    'rsyslogd to listen',
    15_000,
  );
  return {
    udpPort,
    tcpPort,
    pid,
    messages: () =>
      existsSync(out)
        ? readFileSync(out, 'utf8')
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as ReceivedSyslog)
        : [],
    stop: async () => {
      if (exited) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      process.kill(pid, 'SIGTERM');
      await gone;
    },
  };
}
