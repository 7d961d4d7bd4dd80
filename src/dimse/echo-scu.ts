import type { DicomClientTlsConfig } from '../config/schema.js';
import { ContextResult } from './association-pdus.js';
import { CommandElement, CommandField, NO_DATA_SET, encodeCommand } from './dimse-messages.js';
import { ScuAssociation, type ScuFailure } from './scu-association.js';

export type EchoOutcome = { ok: true; status: number } | { ok: false; reason: string };

const VERIFICATION = '1.2.840.10008.1.1';
const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_VR_LE = '1.2.840.10008.1.2';

/** C-ECHO: the first thing an admin tries against a new peer. Every wait is bounded by `timeoutMs`. */
export async function echo(peer: {
  host: string;
  port: number;
  callingAeTitle: string;
  calledAeTitle: string;
  timeoutMs: number;
  tls?: DicomClientTlsConfig;
}): Promise<EchoOutcome> {
  const opened = await ScuAssociation.open({
    host: peer.host,
    port: peer.port,
    callingAeTitle: peer.callingAeTitle,
    calledAeTitle: peer.calledAeTitle,
    contexts: [{ id: 1, abstractSyntax: VERIFICATION, transferSyntaxes: [EXPLICIT_VR_LE, IMPLICIT_VR_LE] }],
    connectTimeoutMs: peer.timeoutMs,
    responseTimeoutMs: peer.timeoutMs,
    ...(peer.tls === undefined ? {} : { tls: peer.tls }),
  });
  if (!(opened instanceof ScuAssociation)) return { ok: false, reason: describe(opened, peer.timeoutMs) };
  if (!opened.accepted?.contexts.some((c) => c.id === 1 && c.result === ContextResult.Acceptance)) {
    await opened.release();
    return { ok: false, reason: 'the peer accepted the association but not the Verification SOP class' };
  }
  const command = encodeCommand([
    [CommandElement.AffectedSopClassUid, { ui: VERIFICATION }],
    [CommandElement.CommandField, { us: CommandField.CEchoRq }],
    [CommandElement.MessageId, { us: 1 }],
    [CommandElement.CommandDataSetType, { us: NO_DATA_SET }],
  ]);
  const response = await opened.request(1, 1, command, undefined);
  await opened.release();
  if (!('elements' in response)) return { ok: false, reason: describe(response, peer.timeoutMs) };
  const status = response.status ?? 0xffff;
  return status === 0
    ? { ok: true, status }
    : { ok: false, reason: `C-ECHO status 0x${status.toString(16).padStart(4, '0')}` };
}

function describe(failure: ScuFailure, timeoutMs: number): string {
  switch (failure.kind) {
    case 'connection-refused':
    case 'connect-failed':
    case 'tls-failed':
    case 'connection-closed':
    case 'protocol-error':
      return failure.detail;
    case 'connect-timeout':
      return `no TCP connection within ${timeoutMs} ms`;
    case 'association-rejected':
      return `association rejected (result ${failure.result}, source ${failure.source}, reason ${failure.reason})`;
    case 'association-timeout':
    case 'response-timeout':
      return `no answer within ${timeoutMs} ms`;
    case 'association-aborted':
      return `the peer aborted the association (A-ABORT source ${failure.abort.source}, reason ${failure.abort.reason})`;
    case 'stopped':
      return 'stopped';
  }
}
