import { EventEmitter } from 'node:events';
import type net from 'node:net';

/**
 * What dcmjs-dimse is given instead of the connection's socket, so that it only sees the bytes we choose to
 * deliver (see StoreBypass) while sending through the real socket as before.
 *
 * dcmjs-dimse 0.3.3 (Network in build/dcmjs-dimse.min.js) uses only these members of its socket: in
 * `_wrapSocket`, `setTimeout(ms)` and listeners for 'connect', 'data', 'error', 'timeout' and 'close'; in
 * `_sendPdu` / `_sendPDataTF`, `write(buffer)`. Errors, timeouts and the close are passed through from the
 * real socket; 'data' is emitted only by `deliver`; 'connect' never fires, as the socket we wrap is already
 * connected (our SCP sets the library's `connected` fields itself).
 */
export class SocketProxy extends EventEmitter {
  constructor(private readonly socket: net.Socket) {
    super();
    socket.on('error', (error: Error) => this.emit('error', error));
    socket.on('timeout', () => this.emit('timeout'));
    socket.on('close', (hadError: boolean) => this.emit('close', hadError));
  }

  /** Hands the library one whole PDU; its 'data' listener parses and acts on it before this returns. */
  deliver(pdu: Buffer): void {
    this.emit('data', pdu);
  }

  write(data: Buffer | Uint8Array): boolean {
    return this.socket.write(data);
  }

  setTimeout(ms: number): this {
    this.socket.setTimeout(ms);
    return this;
  }

  end(): this {
    this.socket.end();
    return this;
  }

  destroy(error?: Error): this {
    this.socket.destroy(error);
    return this;
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  /**
   * The proxy under the type dcmjs-dimse's constructor declares. It is not a net.Socket, but it has every
   * member the library touches (listed above), which is all that this cast vouches for.
   */
  asLibrarySocket(): net.Socket {
    return this as unknown as net.Socket;
  }
}
