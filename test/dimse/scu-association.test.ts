import test from 'ava';
import net from 'node:net';
import { Writable } from 'node:stream';
import { encodeAbort, encodeAssociateAc, decodeAssociateRq } from '../../src/dimse/association-pdus.js';
import { encodeResponse, parseCommand } from '../../src/dimse/dimse-messages.js';
import { PduStreamParser } from '../../src/dimse/pdu-stream.js';
import { sendInstances } from '../../src/dimse/storage-scu.js';
import { createLogger } from '../../src/logging/logger.js';
import { makeImageFile } from '../helpers/dicom-factory.js';

type Behaviour = 'never-release' | 'abort-after-store' | 'silent-after-connect';

/**
 * A Storage SCP written by hand that misbehaves on cue: it accepts every context, answers C-STOREs with Success,
 * then (never-release) ignores the A-RELEASE-RQ and keeps the connection open, or (abort-after-store) sends an
 * A-ABORT instead of the response and keeps the connection open.
 */
async function misbehavingScp(behaviour: Behaviour) {
  const sockets = new Set<net.Socket>();
  let closedByClient = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closedByClient += 1;
    });
    if (behaviour === 'silent-after-connect') return;
    let command: Buffer[] = [];
    const parser = new PduStreamParser(
      {
        controlPdu: (pdu) => {
          if (pdu.readUInt8(0) !== 0x01) return; // A-RELEASE-RQ and the rest: ignored
          const decoded = decodeAssociateRq(pdu);
          if (decoded.kind !== 'request') throw new Error('bad request');
          socket.write(
            encodeAssociateAc({
              calledAe: decoded.request.calledAe,
              callingAe: decoded.request.callingAe,
              contexts: decoded.request.contexts.map((c) => ({
                id: c.id,
                result: 0,
                transferSyntax: c.transferSyntaxes[0] ?? '',
              })),
              maxPduLength: 16384,
              implementationClassUid: '1.2.3.4',
              implementationVersionName: 'MISBEHAVE',
            }),
          );
        },
        dataPduStart: () => undefined,
        pdvStart: () => undefined,
        pdvValue: (slice) => command.push(Buffer.from(slice)),
        pdvEnd: (pdv) => {
          if (!pdv.isLast) return;
          if (pdv.isCommand) return;
          // The data set is complete: answer its command (the first PDVs collected).
          const request = parseCommand(command[0] ?? Buffer.alloc(0));
          command = [];
          if (behaviour === 'abort-after-store') {
            socket.write(encodeAbort(2, 0));
            return;
          }
          for (const pdu of encodeResponse(
            {
              contextId: pdv.contextId,
              requestCommandField: 0x0001,
              messageIdBeingRespondedTo: request?.messageId ?? 0,
              status: 0,
              affectedSopClassUid: request?.affectedSopClassUid,
              affectedSopInstanceUid: request?.affectedSopInstanceUid,
            },
            16384,
          ))
            socket.write(pdu);
        },
        dataPduEnd: () => undefined,
      },
      () => undefined,
    );
    socket.on('data', (chunk: Buffer) => parser.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    closedByClient: () => closedByClient,
    stop: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

function quietLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n'))
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: createLogger({ level: 'debug', format: 'json', stream }), lines };
}

const peer = (port: number, responseTimeoutMs = 1000) => ({
  host: '127.0.0.1',
  port,
  calledAeTitle: 'BAD_PACS',
  callingAeTitle: 'CXR_GATEWAY',
  connectTimeoutMs: 2000,
  responseTimeoutMs,
});

test('a PACS that never answers the A-RELEASE-RQ: the results stand and the connection is closed within ARTIM', async (t) => {
  const scp = await misbehavingScp('never-release');
  t.teardown(() => scp.stop());
  const { logger, lines } = quietLogger();
  const started = Date.now();
  const outcome = await sendInstances(peer(scp.port), [{ bytes: makeImageFile().bytes }], { logger });
  const elapsed = Date.now() - started;
  if ('transient' in outcome) return t.fail(outcome.transient.reason);
  t.deepEqual(
    outcome.results.map((r) => r.outcome),
    ['stored'],
  );
  t.true(elapsed < 3000, `took ${elapsed} ms`);
  t.true(lines.some((l) => l.event === 'DIMSE-1107'));
  // We closed it (A-ABORT after the unanswered release, then the close), not the peer.
  const deadline = Date.now() + 3000;
  while (scp.closedByClient() === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(scp.closedByClient(), 1);
});

test('a PACS that sends A-ABORT instead of a response and keeps the connection open: the batch fails at once', async (t) => {
  const scp = await misbehavingScp('abort-after-store');
  t.teardown(() => scp.stop());
  const { logger } = quietLogger();
  const started = Date.now();
  const outcome = await sendInstances(peer(scp.port, 10_000), [{ bytes: makeImageFile().bytes }], { logger });
  const elapsed = Date.now() - started;
  if (!('transient' in outcome)) return t.fail('expected a batch failure');
  t.is(outcome.transient.kind, 'association-aborted');
  t.regex(
    outcome.transient.reason,
    /BAD_PACS@127\.0\.0\.1:\d+ aborted the association \(A-ABORT, by the PACS DICOM stack\) after 0 of 1 C-STOREs were answered/,
  );
  t.true(elapsed < 2000, `took ${elapsed} ms (the response timeout is 10 s)`);
});

test('a peer that accepts TCP and then says nothing: association-timeout within the response timeout', async (t) => {
  const scp = await misbehavingScp('silent-after-connect');
  t.teardown(() => scp.stop());
  const { logger } = quietLogger();
  const started = Date.now();
  const outcome = await sendInstances(peer(scp.port, 500), [{ bytes: makeImageFile().bytes }], { logger });
  if (!('transient' in outcome)) return t.fail('expected a batch failure');
  t.is(outcome.transient.kind, 'association-timeout');
  t.true(Date.now() - started < 2000);
});
