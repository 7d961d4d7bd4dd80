import net from 'node:net';
import { GatewayError } from '../errors.js';
import { interpretAck, parseAck, type AckMode } from './hl7-ack.js';
import { frameMessage, MllpDeframer } from './mllp-framing.js';
import type { SendOutcome } from './mllp-outcome.js';

export interface MllpSenderOptions {
  host: string;
  port: number;
  /** How long to wait for the TCP connection. */
  connectTimeoutMs: number;
  /** How long to wait for the ACK after the message is written. */
  responseTimeoutMs: number;
  ackMode: AckMode;
  /** Bytes on the wire; HL7 v2 defaults to ASCII, which UTF-8 contains. */
  encoding?: 'utf8' | 'latin1';
  /** An answer larger than this is not an ACK; the connection is dropped. */
  maxAckBytes?: number;
  /** How connections are opened (TLS, src/export/mllp-tls.ts); plain TCP when left out. */
  transport?: MllpTransport;
}

/**
 * Another way to open the connection than plain TCP (MLLP over TLS). The sender stays transport-neutral: the
 * transport opens the socket, names the event after which it may carry messages, and turns the failures it
 * knows (a certificate refused, a handshake cut short) into outcomes with their own causes.
 */
export interface MllpTransport {
  /** `ready`: the socket event after which the connection may carry messages ('connect' for plain TCP). */
  open(host: string, port: number): { socket: net.Socket; ready: string };
  /**
   * An outcome for a failure this transport recognises, else undefined (the sender's own classification).
   * `phase` 'connect': before `ready` (error undefined: the peer closed); 'exchange': later.
   */
  classify(
    error: NodeJS.ErrnoException | undefined,
    phase: 'connect' | 'exchange',
    peer: string,
    socket: net.Socket,
  ): SendOutcome | undefined;
}

type ConnectionEvent =
  | { type: 'frame'; frame: Buffer }
  | { type: 'too-large' }
  | { type: 'closed'; error: NodeJS.ErrnoException | undefined };

interface Connection {
  socket: net.Socket;
  /** The exchange waiting for an answer; frames that arrive while none waits are stale and dropped. */
  waiter: ((event: ConnectionEvent) => void) | null;
  lastError: NodeJS.ErrnoException | undefined;
  closed: Promise<void>;
}

/**
 * Sends HL7 messages to one RIS over MLLP and reads each ACK, one message at a time on one kept-open
 * connection; a lost connection is opened again on the next send. Apart from one immediate resend when a
 * kept-open connection turns out to have been closed by the RIS, it does not retry: every send resolves with
 * a SendOutcome and the pipeline decides, with nextAttemptAt, when to send again (with the same control ID).
 */
export class MllpSender {
  private state: 'new' | 'started' | 'stopped' = 'new';
  private connection: Connection | null = null;
  private connecting: net.Socket | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private abortCurrent: ((outcome: SendOutcome) => void) | null = null;
  private readonly peer: string;

  constructor(private readonly options: MllpSenderOptions) {
    this.peer = `${options.host}:${options.port}`;
  }

  /** Connections are opened lazily by send(), so a RIS that is down at start-up does not stop the gateway. */
  async start(): Promise<void> {
    if (this.state === 'stopped')
      throw new GatewayError(
        'MLLP_STOPPED',
        `the MLLP sender for ${this.peer} was stopped and cannot be started again`,
      );
    this.state = 'started';
  }

  /**
   * Ends the send in flight with a retry outcome (the RIS may or may not have the message; the same control
   * ID goes out again after restart), answers queued sends the same way, and closes the connection.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    const connection = this.connection;
    this.abortCurrent?.(this.stoppedOutcome());
    this.connecting?.destroy();
    this.connection = null;
    if (connection) {
      connection.socket.destroy();
      await connection.closed;
    }
    await this.queue;
  }

  /**
   * Sends one message and waits for its ACK. `controlId` must be the message's MSH-10: success is an ACK
   * whose MSA-2 equals it. Rejects (GatewayError) only for a caller's mistake: not started, or a control ID
   * that does not match the message. Everything the network or the RIS does is a resolved SendOutcome.
   * `signal` (the gateway's shutdown deadline) ends this send at once, waiting or connecting, with a `stopped`
   * retry: the connection is closed, so a RIS that never ACKs cannot hold the shutdown for responseTimeoutMs.
   */
  send(message: string, controlId: string, signal?: AbortSignal): Promise<SendOutcome> {
    if (this.state !== 'started') {
      return Promise.reject(
        new GatewayError(
          'MLLP_NOT_STARTED',
          `the MLLP sender for ${this.peer} is ${this.state === 'new' ? 'not started' : 'stopped'}`,
        ),
      );
    }
    const inMessage = messageControlId(message);
    if (inMessage !== controlId) {
      return Promise.reject(
        new GatewayError(
          'MLLP_CONTROL_ID_MISMATCH',
          `control ID '${controlId}' is not the message's MSH-10 ('${inMessage ?? 'no MSH'}'); the ACK could not be matched`,
        ),
      );
    }
    let frame: Buffer;
    try {
      frame = frameMessage(message, this.options.encoding ?? 'utf8');
    } catch (error) {
      return Promise.reject(error);
    }
    const run = this.queue.then(() => this.exchange(frame, controlId, signal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async exchange(frame: Buffer, controlId: string, signal: AbortSignal | undefined): Promise<SendOutcome> {
    if (this.state !== 'started' || signal?.aborted) return this.stoppedOutcome();
    const kept = this.connection;
    if (kept !== null) {
      const outcome = await this.attempt(kept, frame, controlId, signal);
      // Many RIS close MLLP connections that sat idle; when we write before we have seen that close, the
      // kept connection fails at once with a close or reset. That is not a failed delivery worth a backoff:
      // open a fresh connection and send again, once.
      const stale =
        outcome.kind === 'retry' && (outcome.cause === 'connection-closed' || outcome.cause === 'connection-reset');
      if (!stale || this.state !== 'started' || signal?.aborted) return outcome;
    }
    const opened = await this.connect(signal);
    if (!('socket' in opened)) return opened;
    return this.attempt(opened, frame, controlId, signal);
  }

  /** Writes the frame on one connection and waits for its answer, a close, or the response timeout. */
  private attempt(
    conn: Connection,
    frame: Buffer,
    controlId: string,
    signal: AbortSignal | undefined,
  ): Promise<SendOutcome> {
    return new Promise<SendOutcome>((resolve) => {
      let settled = false;
      const onSignal = () => finish(this.stoppedOutcome(), false);
      const finish = (outcome: SendOutcome, keepConnection: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onSignal);
        conn.waiter = null;
        this.abortCurrent = null;
        // After a timeout or an answer we cannot match, a late ACK could arrive and be taken for the next
        // message's: only a connection whose last answer matched is used again.
        if (!keepConnection) this.drop(conn);
        resolve(outcome);
      };
      const timer = setTimeout(
        () =>
          finish(
            {
              kind: 'retry',
              cause: 'no-ack',
              reason: `no ACK from the RIS at ${this.peer} within ${this.options.responseTimeoutMs} ms (the message may or may not have arrived; it will be resent with the same control ID)`,
            },
            false,
          ),
        this.options.responseTimeoutMs,
      );
      this.abortCurrent = (outcome) => finish(outcome, false);
      conn.waiter = (event) => {
        if (event.type === 'closed') {
          finish(this.lostOutcome(event.error, conn.socket), false);
          return;
        }
        if (event.type === 'too-large') {
          finish(
            {
              kind: 'retry',
              cause: 'unreadable-ack',
              reason: `the RIS at ${this.peer} answered with more than ${this.maxAckBytes()} bytes, which is not an ACK`,
            },
            false,
          );
          return;
        }
        const raw = event.frame.toString(this.options.encoding ?? 'utf8');
        const parsed = parseAck(raw);
        if (!parsed.ok) {
          // The answer may be anything (a whole message with a PID): its text goes to debug logs only, as peerText.
          finish(
            {
              kind: 'retry',
              cause: 'unreadable-ack',
              reason: `the RIS at ${this.peer} answered with something that is not an ACK: ${parsed.reason}`,
              peerText: raw.slice(0, 300),
            },
            false,
          );
          return;
        }
        finish(interpretAck(parsed.ack, controlId, this.options.ackMode), parsed.ack.controlId === controlId);
      };
      if (signal?.aborted) {
        finish(this.stoppedOutcome(), true);
        return;
      }
      // The deadline drops the connection: an ACK arriving later must not be taken for another message's.
      signal?.addEventListener('abort', onSignal, { once: true });
      conn.socket.write(frame);
    });
  }

  private connect(signal: AbortSignal | undefined): Promise<Connection | SendOutcome> {
    return new Promise((resolve) => {
      const transport = this.options.transport;
      const opened = transport?.open(this.options.host, this.options.port);
      const socket = opened?.socket ?? net.connect({ host: this.options.host, port: this.options.port });
      this.connecting = socket;
      let done = false;
      const onSignal = () => {
        socket.destroy();
        settle(this.stoppedOutcome());
      };
      const settle = (result: Connection | SendOutcome) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onSignal);
        socket.off('error', onError);
        socket.off('close', onClose);
        // A socket we gave up on may still report an error on its way down; it has no one left to tell.
        if (!('socket' in result)) socket.on('error', () => undefined);
        if (this.connecting === socket) this.connecting = null;
        resolve(result);
      };
      const onError = (error: NodeJS.ErrnoException) => {
        socket.destroy();
        settle(transport?.classify(error, 'connect', this.peer, socket) ?? this.connectFailure(error));
      };
      const onClose = () =>
        settle(
          this.state === 'started'
            ? (transport?.classify(undefined, 'connect', this.peer, socket) ?? this.lostOutcome(undefined))
            : this.stoppedOutcome(),
        );
      const timer = setTimeout(() => {
        socket.destroy();
        settle({
          kind: 'retry',
          cause: 'connect-timeout',
          reason: `no ${opened?.ready === 'secureConnect' ? 'TLS' : 'TCP'} connection to the RIS at ${this.peer} within ${this.options.connectTimeoutMs} ms`,
        });
      }, this.options.connectTimeoutMs);
      socket.on('error', onError);
      socket.on('close', onClose);
      signal?.addEventListener('abort', onSignal, { once: true });
      socket.once(opened?.ready ?? 'connect', () => {
        if (done) return;
        socket.setNoDelay(true);
        // TCP keep-alive finds a RIS that vanished while the connection sat idle between results.
        socket.setKeepAlive(true, 30_000);
        const connection = this.adopt(socket);
        settle(connection);
      });
    });
  }

  /** Wires a connected socket: frames go to the waiting exchange; a close ends it. */
  private adopt(socket: net.Socket): Connection {
    const deframer = new MllpDeframer(this.maxAckBytes());
    let closed!: () => void;
    const connection: Connection = {
      socket,
      waiter: null,
      lastError: undefined,
      closed: new Promise<void>((r) => (closed = r)),
    };
    socket.on('data', (chunk: Buffer) => {
      const { frames, tooLarge } = deframer.push(chunk);
      if (tooLarge) {
        connection.waiter?.({ type: 'too-large' });
        this.drop(connection);
        return;
      }
      for (const frame of frames) connection.waiter?.({ type: 'frame', frame });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => (connection.lastError = error));
    socket.on('close', () => {
      if (this.connection === connection) this.connection = null;
      connection.waiter?.({ type: 'closed', error: connection.lastError });
      closed();
    });
    this.connection = connection;
    return connection;
  }

  private drop(connection: Connection): void {
    if (this.connection === connection) this.connection = null;
    connection.socket.destroy();
  }

  private maxAckBytes(): number {
    return this.options.maxAckBytes ?? 1024 * 1024;
  }

  private connectFailure(error: NodeJS.ErrnoException): SendOutcome {
    if (error.code === 'ECONNREFUSED') {
      return {
        kind: 'retry',
        cause: 'connection-refused',
        reason: `the RIS at ${this.peer} refused the connection (ECONNREFUSED): is its MLLP listener running on that host and port?`,
      };
    }
    return {
      kind: 'retry',
      cause: 'connect-failed',
      reason: `cannot connect to the RIS at ${this.peer}: ${error.code ?? ''} ${error.message}`.replace(/\s+/g, ' '),
    };
  }

  private lostOutcome(error: NodeJS.ErrnoException | undefined, socket?: net.Socket): SendOutcome {
    // TLS 1.3 settles the client's handshake before the server has judged our certificate: its refusal
    // arrives as an alert after the first write.
    const known =
      error === undefined || socket === undefined
        ? undefined
        : this.options.transport?.classify(error, 'exchange', this.peer, socket);
    if (known !== undefined) return known;
    if (error !== undefined && (error.code === 'ECONNRESET' || error.code === 'EPIPE')) {
      return {
        kind: 'retry',
        cause: 'connection-reset',
        reason: `the RIS at ${this.peer} reset the connection (${error.code}) before it answered; the message will be resent with the same control ID`,
      };
    }
    const detail = error === undefined ? '' : ` (${error.code ?? error.message})`;
    return {
      kind: 'retry',
      cause: 'connection-closed',
      reason: `the RIS at ${this.peer} closed the connection${detail} before it answered; the message will be resent with the same control ID`,
    };
  }

  private stoppedOutcome(): SendOutcome {
    return {
      kind: 'retry',
      cause: 'stopped',
      reason: `the gateway stopped before the RIS at ${this.peer} answered; the message will be resent after restart`,
    };
  }
}

/** MSH-10 of an HL7 message, read with the field separator the message itself declares. */
function messageControlId(message: string): string | undefined {
  if (!message.startsWith('MSH')) return undefined;
  const separator = message.charAt(3);
  const msh = message.split(/\r\n|\r|\n/)[0] ?? '';
  // fields[0] is 'MSH' and fields[1] is MSH-2 (MSH-1 is the separator itself), so MSH-n is fields[n - 1].
  return msh.split(separator)[9];
}
