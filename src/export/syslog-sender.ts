/**
 * Syslog client for the hospital's audit repository (IHE ATNA's Record Audit Event): RFC 5424 messages over UDP
 * (RFC 5426), TCP with octet counting (RFC 6587 3.4.1) or TLS (RFC 5425, which is octet counting over TLS).
 *
 * What "sent" means here (the forwarder marks a row forwarded on it):
 * - udp: the datagram left the socket without error. The socket is connected, so an ICMP port unreachable from a
 *   stopped receiver fails the NEXT send, but the message in flight at that moment is lost: UDP gives no delivery
 *   guarantee (RFC 5426 says as much): during an outage, each retry's first datagram may be lost the same way, so
 *   the forwarder's "kept and sent later" promise holds for tcp and tls only. One message is one datagram of at most 65,507 bytes (what IPv4 UDP carries;
 *   IP fragments it above the path MTU); a larger one is refused as AUDIT_MESSAGE_TOO_LARGE. The messages built by
 *   reporting/atna-message.ts stay a few kilobytes (at most 100 instance UIDs, details of at most 2,000 characters).
 * - tcp / tls: the frame was written to the connection and the write completed without error. Syslog has no
 *   application acknowledgement, so a frame written just before the receiver dies can still be lost; a closed or
 *   failed connection fails the send and the frame is sent again on a new connection (at least once: the receiver
 *   sees the row id in the message's [meta sequenceId] to drop a repeat).
 * Certificate and key files are read at each (re)connection, so renewed files apply without a restart.
 */
import { BCP195_CIPHERS, TLS_MIN_VERSION } from '../config/tls-profile.js';
import { whenServerAccepted } from './tls-accepted.js';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { GatewayError } from '../errors.js';

export type SyslogTransport = 'udp' | 'tcp' | 'tls';

export interface SyslogTarget {
  transport: SyslogTransport;
  host: string;
  port: number;
  /** tls: the CA file the repository's certificate must chain to (else Node's default CAs). */
  caFile?: string;
  /** tls: our client certificate and key, for a repository that wants mutual TLS. */
  certFile?: string;
  keyFile?: string;
  /** Connect and write time limit (ms). */
  timeoutMs?: number;
}

export interface SyslogHeader {
  /** 0..23; IHE ATNA uses 10 (security/authorization). */
  facility: number;
  appName: string;
  /** Defaults to the machine's host name. */
  hostname?: string;
}

/** One message: its time, severity (RFC 5424 6.2.1), MSGID, sequence id and body (the audit XML). */
export interface SyslogMessage {
  at: number;
  severity: number;
  msgId: string;
  /** The audit row id, written as RFC 5424's registered [meta sequenceId] so a receiver can spot repeats. */
  sequenceId: number;
  body: string;
}

/** Largest UDP payload over IPv4 (65,535 - 20 byte IP header - 8 byte UDP header). */
export const UDP_MAX_BYTES = 65_507;

const BOM = '\uFEFF';

/** How long a TLS 1.3 connection waits for the server's session ticket before it is used anyway (ms). */
const TLS13_SETTLE_MS = 1_000;

/** RFC 5424 fields are printable US-ASCII without spaces; NILVALUE '-' when empty. */
function headerField(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return clean === '' ? '-' : clean;
}

/** `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [meta sequenceId="n"] BOM MSG`, UTF-8 (RFC 5424 6). */
export function formatSyslog(message: SyslogMessage, header: SyslogHeader): Buffer {
  const pri = header.facility * 8 + message.severity;
  // sequenceId is 1..2147483647 (RFC 5424 7.3.1); ids beyond wrap like the counter it describes.
  const sequence = ((message.sequenceId - 1) % 2_147_483_647) + 1;
  const head = [
    `<${pri}>1`,
    new Date(message.at).toISOString(),
    headerField(header.hostname ?? os.hostname(), 255),
    headerField(header.appName, 48),
    headerField(String(process.pid), 128),
    headerField(message.msgId, 32),
    `[meta sequenceId="${sequence}"]`,
  ].join(' ');
  return Buffer.from(`${head} ${BOM}${message.body}`, 'utf8');
}

/** Octet-counting frame (RFC 6587 3.4.1, RFC 5425 4.3): `MSG-LEN SP SYSLOG-MSG`. */
export function octetFrame(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${message.length} `, 'ascii'), message]);
}

/** Sends one formatted message at a time over one kept-open connection (reopened after a failure). */
export class SyslogSender {
  private stream: net.Socket | undefined;
  /** A connection being opened: close() cuts it too, so a stop never waits for a connect timeout. */
  private connecting: net.Socket | undefined;
  private udp: dgram.Socket | undefined;
  private readonly timeoutMs: number;

  constructor(private readonly target: SyslogTarget) {
    this.timeoutMs = target.timeoutMs ?? 10_000;
  }

  get description(): string {
    return `${this.target.transport}://${this.target.host}:${this.target.port}`;
  }

  /** Resolves once the transport took the message (see the file comment); rejects with a GatewayError. */
  async send(message: Buffer): Promise<void> {
    if (this.target.transport === 'udp') return this.sendDatagram(message);
    const socket = this.stream ?? (await this.connect());
    await this.write(socket, octetFrame(message));
  }

  close(): void {
    this.stream?.destroy();
    this.stream = undefined;
    this.connecting?.destroy(new Error('the sender was closed'));
    this.connecting = undefined;
    this.udp?.close();
    this.udp = undefined;
  }

  private async sendDatagram(message: Buffer): Promise<void> {
    if (message.length > UDP_MAX_BYTES) {
      throw new GatewayError(
        'AUDIT_MESSAGE_TOO_LARGE',
        `an audit message of ${message.length} bytes does not fit one UDP datagram to ${this.description}`,
      );
    }
    const socket = this.udp ?? (await this.connectUdp());
    await new Promise<void>((resolve, reject) => {
      socket.send(message, (error) => {
        if (error === null || error === undefined) return resolve();
        // A refused datagram (ICMP port unreachable) poisons nothing but this socket: open a new one next time.
        this.udp = undefined;
        socket.close();
        reject(unreachable(this.description, error));
      });
    });
  }

  private connectUdp(): Promise<dgram.Socket> {
    const socket = dgram.createSocket(net.isIPv6(this.target.host) ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', (error) => {
        socket.close();
        reject(unreachable(this.description, error));
      });
      socket.connect(this.target.port, this.target.host, () => {
        socket.removeAllListeners('error');
        // Errors between sends (ICMP) surface on the next send; this keeps them from being unhandled.
        socket.on('error', () => undefined);
        this.udp = socket;
        resolve(socket);
      });
    });
  }

  private connect(): Promise<net.Socket> {
    const { host, port } = this.target;
    return new Promise((resolve, reject) => {
      let socket: net.Socket;
      const ready = 'tls' === this.target.transport ? 'secureConnect' : 'connect';
      try {
        socket =
          this.target.transport === 'tls'
            ? tls.connect({
                host,
                port,
                ...(net.isIP(host) === 0 ? { servername: host } : {}),
                ...this.tlsFiles(),
                minVersion: TLS_MIN_VERSION,
                ciphers: BCP195_CIPHERS,
                rejectUnauthorized: true,
              })
            : net.connect({ host, port });
      } catch (error) {
        reject(error instanceof GatewayError ? error : tlsFailed(this.description, error));
        return;
      }
      this.connecting = socket;
      const timer = setTimeout(
        () => socket.destroy(new Error(`no connection within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      const onError = (error: Error) => {
        clearTimeout(timer);
        if (this.connecting === socket) this.connecting = undefined;
        socket.destroy();
        reject(isTlsError(error) ? tlsFailed(this.description, error) : unreachable(this.description, error));
      };
      socket.once('error', onError);
      const accepted = () => {
        clearTimeout(timer);
        if (this.connecting === socket) this.connecting = undefined;
        socket.off('error', onError);
        socket.setNoDelay(true);
        // The receiver never writes; data, an end or an error all mean the connection is done for.
        const drop = () => {
          if (this.stream === socket) this.stream = undefined;
          socket.destroy();
        };
        socket.on('error', drop);
        socket.on('end', drop);
        socket.on('close', drop);
        socket.on('data', () => undefined);
        this.stream = socket;
        resolve(socket);
      };
      socket.once(ready, () => {
        // Under TLS 1.3, a frame written before the server accepted our certificate would be lost with the
        // connection it is about to refuse.
        if (socket instanceof tls.TLSSocket) whenServerAccepted(socket, TLS13_SETTLE_MS, accepted);
        else accepted();
      });
    });
  }

  private tlsFiles(): tls.ConnectionOptions {
    const read = (file: string, what: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (error) {
        throw new GatewayError('AUDIT_SYSLOG_FILES', `audit.syslog.${what} ${file} cannot be read`, { cause: error });
      }
    };
    const { caFile, certFile, keyFile } = this.target;
    return {
      ...(caFile === undefined ? {} : { ca: read(caFile, 'caFile') }),
      ...(certFile === undefined ? {} : { cert: read(certFile, 'certFile') }),
      ...(keyFile === undefined ? {} : { key: read(keyFile, 'keyFile') }),
    };
  }

  private write(socket: net.Socket, frame: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (socket.destroyed || !socket.writable) {
        this.stream = undefined;
        reject(unreachable(this.description, new Error('the connection was closed by the receiver')));
        return;
      }
      const timer = setTimeout(
        () => socket.destroy(new Error(`write not done within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      const onClose = () => finish(new Error('the connection was closed by the receiver'));
      const finish = (error?: Error | null) => {
        clearTimeout(timer);
        socket.off('close', onClose);
        if (error === undefined || error === null) return resolve();
        if (this.stream === socket) this.stream = undefined;
        socket.destroy();
        reject(unreachable(this.description, error));
      };
      socket.once('close', onClose);
      socket.write(frame, finish);
    });
  }
}

function isTlsError(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return (
    /^ERR_TLS|^ERR_SSL|CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME/.test(code) ||
    /SSL|TLS|certificate|alert/i.test(error.message)
  );
}

function unreachable(where: string, cause: unknown): GatewayError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new GatewayError('AUDIT_SYSLOG_UNREACHABLE', `the audit repository ${where} cannot be reached: ${reason}`, {
    cause,
  });
}

function tlsFailed(where: string, cause: unknown): GatewayError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new GatewayError('AUDIT_SYSLOG_TLS', `TLS to the audit repository ${where} failed: ${reason}`, { cause });
}
