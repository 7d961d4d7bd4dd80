// A raw TCP connection to the daemon for the suite: write bytes, wait for a PDU or for the daemon to close, and say
// what happened. Unlike RawAssociation (test/helpers/raw-scu.ts) it never throws on what the peer sends: a fuzz
// stream is judged only by whether the daemon answered, closed, or stayed open.

import net from 'node:net';
import { PduReader, type RawPdu } from '../../test/helpers/raw-scu.js';

export class Wire {
  readonly pdus: RawPdu[] = [];
  closedByPeer = false;
  private closed = false;
  private readonly reader = new PduReader();
  private readonly wakers = new Set<() => void>();
  /** Set by destroy(): pending waits end (false) so that no timer outlives the connection. */
  private destroyed = false;
  /** Bytes that could not be split into PDUs (the daemon never sends those, but we do not trust it). */
  unparsable = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.pdus.push(...this.reader.push(chunk));
      } catch {
        this.unparsable = true;
      }
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('end', () => {
      if (!this.closed) this.closedByPeer = true;
      this.wake();
    });
    socket.once('close', () => {
      if (!this.closed) this.closedByPeer = true;
      this.closed = true;
      this.wake();
    });
  }

  /**
   * `from`: the local address, another loopback address (127.0.0.2 ...) so that the daemon sees the attacker as a
   * different source from the legitimate sender (DCMTK storescu, which always comes from 127.0.0.1).
   */
  static connect(port: number, timeoutMs = 5000, from?: string): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, ...(from === undefined ? {} : { localAddress: from }) });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no TCP connection to 127.0.0.1:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Wire(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  get isClosed(): boolean {
    return this.closed || this.closedByPeer;
  }

  write(bytes: Buffer): void {
    if (!this.isClosed && !this.socket.destroyed) this.socket.write(bytes);
  }

  /** The first PDU (of `type`, if given) that arrived since `after` PDUs, or undefined on timeout / close. */
  async pdu(timeoutMs: number, type?: number, after = 0): Promise<RawPdu | undefined> {
    const found = (): RawPdu | undefined => this.pdus.slice(after).find((p) => type === undefined || p.type === type);
    const ok = await this.until(() => found() !== undefined || this.isClosed, timeoutMs);
    return ok ? found() : undefined;
  }

  /** Resolves true when the daemon closed the connection within `timeoutMs`. */
  async closeWithin(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.closedByPeer, timeoutMs);
  }

  /** Waits until nothing has arrived for `quietMs` (or the peer closed, or `maxMs` passed). */
  async quiet(quietMs: number, maxMs: number): Promise<void> {
    const deadline = Date.now() + maxMs;
    let seen = this.pdus.length;
    for (;;) {
      const left = Math.min(quietMs, deadline - Date.now());
      if (left <= 0) return;
      await this.until(() => this.pdus.length !== seen || this.isClosed, left);
      if (this.isClosed || this.pdus.length === seen) return;
      seen = this.pdus.length;
    }
  }

  destroy(): void {
    this.closed = true;
    this.destroyed = true;
    this.socket.destroy();
    this.wake();
  }

  private until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    if (condition()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waker = (): void => {
        if (condition()) finish(true);
        else if (this.destroyed) finish(false);
      };
      const timer = setTimeout(() => finish(condition()), timeoutMs);
      const finish = (value: boolean): void => {
        clearTimeout(timer);
        this.wakers.delete(waker);
        resolve(value);
      };
      this.wakers.add(waker);
    });
  }

  private wake(): void {
    for (const w of [...this.wakers]) w();
  }
}
