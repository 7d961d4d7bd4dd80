import net from 'node:net';
import { ContextResult, decodeAssociateRq, encodeAssociateAc } from '../../src/dimse/association-pdus.js';

export interface StallingPacs {
  readonly port: number;
  /** Associations accepted so far. */
  readonly associations: number;
  /** A-ABORT PDUs received so far. */
  readonly aborts: number;
  /** Resolves once `n` associations have sent (part of) a C-STORE. */
  waitForData(n: number): Promise<void>;
  /** Resolves once `n` connections have closed. */
  waitForClose(n: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A PACS that answers A-ASSOCIATE-RQ with an A-ASSOCIATE-AC (every context accepted with its first transfer
 * syntax) and then never answers anything: the C-STORE waits for its response timeout.
 */
export async function stallingPacs(): Promise<StallingPacs> {
  const sockets = new Set<net.Socket>();
  let associations = 0;
  let dataSeen = 0;
  let aborts = 0;
  let closes = 0;
  const wakers = new Set<() => void>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      closes += 1;
      for (const wake of wakers) wake();
    });
    let buffered = Buffer.alloc(0);
    let sentData = false;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 6) {
        const length = buffered.readUInt32BE(2);
        if (buffered.length < 6 + length) return;
        const pdu = buffered.subarray(0, 6 + length);
        buffered = buffered.subarray(6 + length);
        const type = pdu.readUInt8(0);
        if (type === 0x01) {
          const decoded = decodeAssociateRq(pdu);
          if (decoded.kind !== 'request') throw new Error('the SCU sent an A-ASSOCIATE-RQ the test cannot read');
          const { request } = decoded;
          associations += 1;
          socket.write(
            encodeAssociateAc({
              calledAe: request.calledAe,
              callingAe: request.callingAe,
              contexts: request.contexts.map((c) => ({
                id: c.id,
                result: ContextResult.Acceptance,
                transferSyntax: c.transferSyntaxes[0] ?? '1.2.840.10008.1.2',
              })),
              maxPduLength: 16384,
              implementationClassUid: '2.25.1234567',
              implementationVersionName: 'STALL',
            }),
          );
        } else if (type === 0x04 && !sentData) {
          // Counted once per association: a C-STORE is several P-DATA PDUs (command, then data set fragments).
          sentData = true;
          dataSeen += 1;
          for (const wake of wakers) wake();
        } else if (type === 0x07) {
          aborts += 1;
          for (const wake of wakers) wake();
        }
        // Anything else (A-RELEASE-RQ) goes unanswered too.
      }
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get associations() {
      return associations;
    },
    get aborts() {
      return aborts;
    },
    waitForData: (n) => waitFor(() => dataSeen >= n, `${n} associations sending a C-STORE (saw ${dataSeen})`),
    waitForClose: (n) => waitFor(() => closes >= n, `${n} connections closed (saw ${closes})`),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  function waitFor(done: () => boolean, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the stalling PACS timed out waiting for ${what}`)), 120_000);
      const check = () => {
        if (done()) {
          clearTimeout(timer);
          wakers.delete(check);
          resolve();
        }
      };
      wakers.add(check);
      check();
    });
  }
}
