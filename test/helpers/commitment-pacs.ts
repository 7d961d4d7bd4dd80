// Test helper: a stand-in PACS that is a Storage Commitment SCP reporting on the request's OWN association (what
// Orthanc never does: it always opens a new one). It accepts every proposed context with its first syntax, answers
// each C-STORE Success, answers the N-ACTION Success and then, on the same association, sends the N-EVENT-REPORT
// that `report` decides (all committed, or some instances failed with a reason), and records our N-EVENT-REPORT-RSP.

import net from 'node:net';
import {
  ContextResult,
  decodeAssociateRq,
  encodeAssociateAc,
  encodeReleaseRp,
} from '../../src/dimse/association-pdus.js';
import {
  CommandElement,
  CommandField,
  encodeCommand,
  encodeResponse,
  framePdvs,
  parseCommand,
  type Command,
} from '../../src/dimse/dimse-messages.js';
import {
  CommitmentEvent,
  STORAGE_COMMITMENT_INSTANCE,
  STORAGE_COMMITMENT_PUSH_MODEL,
  decodeCommitmentDataset,
  encodeCommitmentDataset,
  type CommitmentDataset,
} from '../../src/dimse/storage-commitment.js';
import { freePort } from './ports.js';

export interface CommitmentPacs {
  readonly port: number;
  /** Our answers to its N-EVENT-REPORTs (status), in order. */
  readonly reportAnswers: Command[];
  /** The N-ACTION requests it received (decoded data sets). */
  readonly requests: CommitmentDataset[];
  close(): Promise<void>;
}

export interface CommitmentPacsOptions {
  /** Which of the requested instances fail, with which Failure Reason; none by default. */
  failures?: (sopInstanceUid: string) => number | undefined;
  /** The N-ACTION-RSP status (Success by default); with any other, no report follows. */
  actionStatus?: number;
  /** false: the Push Model context is refused (abstract syntax not supported). */
  acceptCommitment?: boolean;
  /** true: the N-ACTION is answered Success and no report ever follows. */
  neverReport?: boolean;
}

export async function commitmentPacs(options: CommitmentPacsOptions = {}): Promise<CommitmentPacs> {
  const sockets = new Set<net.Socket>();
  const reportAnswers: Command[] = [];
  const requests: CommitmentDataset[] = [];
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    const syntaxes = new Map<number, string>();
    let buffered = Buffer.alloc(0);
    let command: Buffer[] = [];
    let dataset: Buffer[] = [];
    let pending: Command | undefined;
    let nextMessageId = 1000;
    const send = (pdus: Buffer[]) => {
      for (const pdu of pdus) socket.write(pdu);
    };
    const onMessage = (contextId: number, cmd: Command, data: Buffer | undefined) => {
      if (cmd.commandField === CommandField.CStoreRq) {
        send(
          encodeResponse(
            {
              contextId,
              requestCommandField: CommandField.CStoreRq,
              messageIdBeingRespondedTo: cmd.messageId ?? 0,
              status: 0,
              ...(cmd.affectedSopClassUid === undefined ? {} : { affectedSopClassUid: cmd.affectedSopClassUid }),
              ...(cmd.affectedSopInstanceUid === undefined
                ? {}
                : { affectedSopInstanceUid: cmd.affectedSopInstanceUid }),
            },
            0,
          ),
        );
      } else if (cmd.commandField === CommandField.NActionRq && data !== undefined) {
        const syntax = syntaxes.get(contextId) ?? '';
        const request = decodeCommitmentDataset(data, syntax);
        if (typeof request === 'string') throw new Error(request);
        requests.push(request);
        send(
          encodeResponse(
            {
              contextId,
              requestCommandField: CommandField.NActionRq,
              messageIdBeingRespondedTo: cmd.messageId ?? 0,
              status: options.actionStatus ?? 0,
              affectedSopClassUid: STORAGE_COMMITMENT_PUSH_MODEL,
              affectedSopInstanceUid: STORAGE_COMMITMENT_INSTANCE,
            },
            0,
          ),
        );
        if ((options.actionStatus ?? 0) !== 0 || options.neverReport === true) return;
        const failed = request.referenced.flatMap((r) => {
          const reason = options.failures?.(r.sopInstanceUid);
          return reason === undefined ? [] : [{ ...r, failureReason: reason }];
        });
        const committed = request.referenced.filter((r) => options.failures?.(r.sopInstanceUid) === undefined);
        nextMessageId += 1;
        const report = encodeCommand([
          [CommandElement.AffectedSopClassUid, { ui: STORAGE_COMMITMENT_PUSH_MODEL }],
          [CommandElement.CommandField, { us: CommandField.NEventReportRq }],
          [CommandElement.MessageId, { us: nextMessageId }],
          [CommandElement.CommandDataSetType, { us: 0 }],
          [CommandElement.AffectedSopInstanceUid, { ui: STORAGE_COMMITMENT_INSTANCE }],
          [
            CommandElement.EventTypeId,
            { us: failed.length === 0 ? CommitmentEvent.AllCommitted : CommitmentEvent.FailuresExist },
          ],
        ]);
        const body = encodeCommitmentDataset(
          { transactionUid: request.transactionUid, referenced: committed, failed },
          syntax,
        );
        send(framePdvs(contextId, true, report, 0).map((p) => Buffer.concat(p)));
        send(framePdvs(contextId, false, body, 0).map((p) => Buffer.concat(p)));
      } else if (cmd.commandField === CommandField.NEventReportRsp) {
        reportAnswers.push(cmd);
      }
    };
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
          for (const c of request.contexts) syntaxes.set(c.id, c.transferSyntaxes[0] ?? '');
          socket.write(
            encodeAssociateAc({
              calledAe: request.calledAe,
              callingAe: request.callingAe,
              contexts: request.contexts.map((c) => ({
                id: c.id,
                result:
                  options.acceptCommitment === false && c.abstractSyntax === STORAGE_COMMITMENT_PUSH_MODEL
                    ? ContextResult.AbstractSyntaxNotSupported
                    : ContextResult.Acceptance,
                transferSyntax: c.transferSyntaxes[0] ?? '1.2.840.10008.1.2',
              })),
              maxPduLength: 65536,
              implementationClassUid: '2.25.1234567',
              implementationVersionName: 'COMMIT',
            }),
          );
        } else if (type === 0x04) {
          let offset = 6;
          while (offset < pdu.length) {
            const itemLength = pdu.readUInt32BE(offset);
            const contextId = pdu.readUInt8(offset + 4);
            const header = pdu.readUInt8(offset + 5);
            const value = pdu.subarray(offset + 6, offset + 4 + itemLength);
            offset += 4 + itemLength;
            const isCommand = (header & 1) === 1;
            const isLast = (header & 2) === 2;
            (isCommand ? command : dataset).push(Buffer.from(value));
            if (!isLast) continue;
            if (isCommand) {
              const parsed = parseCommand(Buffer.concat(command));
              command = [];
              if (parsed === undefined) throw new Error('a command set the test cannot read');
              if (parsed.hasDataset) pending = parsed;
              else onMessage(contextId, parsed, undefined);
            } else if (pending !== undefined) {
              const cmd = pending;
              pending = undefined;
              const data = Buffer.concat(dataset);
              dataset = [];
              onMessage(contextId, cmd, data);
            }
          }
        } else if (type === 0x05) {
          socket.write(encodeReleaseRp());
          socket.end();
        }
      }
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port }, resolve));
  return {
    port,
    reportAnswers,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
