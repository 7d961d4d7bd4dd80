import { readFile } from 'node:fs/promises';
import { GatewayError, describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { OBSERVATION_CODES } from '../reporting/hl7-oru.js';
import { MllpSender, type MllpSenderOptions } from '../reporting/mllp-sender.js';
import type { AuditRecord, AuditRecorder } from '../store/audit-trail.js';
import type { DeliveryOutcome, Destination, Hl7Message } from './destination.js';
import { MllpTlsTransport, type MllpTlsSettings } from './mllp-tls.js';

export interface RisMllpDestinationOptions {
  name: string;
  /** Host, port, timeouts; a `transport` here is replaced when `tls` is given. */
  sender: MllpSenderOptions;
  /** MLLP over TLS (destinations.ris[].tls); plain TCP when left out. */
  tls?: MllpTlsSettings;
  logger: Logger;
  /** Where ris.sent (hl7) and tls.failed (security) audit events go; none recorded when left out. */
  audit?: AuditRecorder;
  /** The audit clock (tests). */
  now?: () => number;
}

/** The causes a TLS handshake failure toward the RIS reports (src/export/mllp-tls.ts): each is a security event. */
const TLS_CAUSES = new Set(['tls-untrusted-certificate', 'tls-certificate-refused', 'tls-handshake-failed']);

// MllpSender refuses these before sending: the message itself is wrong, so sending it again cannot help.
const MESSAGE_ERRORS = new Set(['MLLP_CONTROL_ID_MISMATCH', 'MLLP_FRAME_BYTES_IN_MESSAGE']);

/**
 * A RIS reached over MLLP: the MllpSender, seen as a Destination. Its outcomes already have the delivery
 * shape (only success is called `accepted` there); messages of a batch go one after the other, and the first
 * that is not accepted decides the batch (the RIS keeps the ones before it; resending them with the same
 * control ID is how HL7 expects a retry).
 */
export class RisMllpDestination implements Destination<Hl7Message> {
  readonly name: string;
  private readonly sender: MllpSender;

  private readonly address: string;

  constructor(private readonly options: RisMllpDestinationOptions) {
    this.name = options.name;
    this.address = `${options.sender.host}:${options.sender.port}`;
    const transport =
      options.tls === undefined
        ? options.sender.transport
        : new MllpTlsTransport(options.tls, (error) =>
            // A renewed file that cannot be read: the last good copy stays in use, and the admin hears of it.
            options.logger.warn('RIS TLS file unreadable: using the copy read before', {
              event: 'EXPORT-6402',
              destination: this.name,
              error: describeError(error),
            }),
          );
    this.sender = new MllpSender({ ...options.sender, ...(transport !== undefined ? { transport } : {}) });
  }

  start(): Promise<void> {
    return this.sender.start();
  }

  stop(): Promise<void> {
    return this.sender.stop();
  }

  async deliver(items: readonly Hl7Message[], signal?: AbortSignal): Promise<DeliveryOutcome> {
    for (const item of items) {
      const outcome = await this.deliverOne(item, signal);
      if (outcome.kind !== 'delivered') return outcome;
    }
    return { kind: 'delivered' };
  }

  /** One message: sent, its ACK read, the outcome audited (a message that could not even be read is not). */
  private async deliverOne(item: Hl7Message, signal: AbortSignal | undefined): Promise<DeliveryOutcome> {
    let message: string;
    try {
      message = 'message' in item ? item.message : await readFile(item.path, 'utf8');
    } catch (error) {
      return {
        kind: 'parked',
        cause: 'invalid-message',
        reason: `message ${item.controlId}: ${describeError(error)}`,
      };
    }
    let outcome;
    try {
      outcome = await this.sender.send(message, item.controlId, signal);
    } catch (error) {
      if (error instanceof GatewayError && MESSAGE_ERRORS.has(error.code))
        return { kind: 'parked', cause: 'invalid-message', reason: error.message };
      return { kind: 'retry', cause: 'stopped', reason: describeError(error) };
    }
    this.audit(item.controlId, message, outcome.kind === 'accepted' ? undefined : outcome);
    if (outcome.kind !== 'accepted') {
      const { logger } = this.options;
      // The reason holds codes and lengths only; what the RIS wrote (often a patient's name) is debug-only.
      logger.warn('RIS delivery not accepted', {
        event: 'EXPORT-6012',
        destination: this.name,
        controlId: item.controlId,
        kind: outcome.kind,
        cause: outcome.cause,
        why: outcome.reason,
      });
      if (outcome.peerText !== undefined)
        logger.debug('RIS answer text', {
          destination: this.name,
          controlId: item.controlId,
          cause: outcome.cause,
          peerText: outcome.peerText,
        });
      return { kind: outcome.kind, cause: outcome.cause, reason: outcome.reason };
    }
    return { kind: 'delivered' };
  }

  /**
   * ris.sent for every outcome of a send (a stop in progress is no outcome of the RIS and is not audited), and
   * a security tls.failed when the handshake failed. The audit trail must not decide a delivery: a row that
   * cannot be written is logged and the delivery goes on.
   */
  private audit(controlId: string, message: string, failure: { cause: string; reason: string } | undefined): void {
    const { audit, logger } = this.options;
    if (audit === undefined || failure?.cause === 'stopped') return;
    const studyInstanceUid = studyUidOf(message);
    const { host, port } = this.options.sender;
    const records: AuditRecord[] = [
      {
        category: 'hl7',
        action: 'ris.sent',
        user: null,
        role: null,
        address: this.address,
        target: studyInstanceUid === null ? `message ${controlId}` : `study ${studyInstanceUid}`,
        outcome: failure === undefined ? 'success' : 'failure',
        after: { studyInstanceUid, destination: this.name, controlId, host, port, tls: this.options.tls !== undefined },
        detail: failure === undefined ? null : `${failure.cause}: ${failure.reason}`,
      },
    ];
    if (failure !== undefined && TLS_CAUSES.has(failure.cause)) {
      logger.warn('TLS handshake with the RIS failed', {
        event: 'EXPORT-6401',
        destination: this.name,
        address: this.address,
        cause: failure.cause,
        why: failure.reason,
      });
      records.push({
        category: 'security',
        action: 'tls.failed',
        user: null,
        role: null,
        address: this.address,
        target: `destination ${this.name}`,
        outcome: 'failure',
        after: { destination: this.name, address: this.address },
        detail: `${failure.cause}: ${failure.reason}`,
      });
    }
    const now = (this.options.now ?? Date.now)();
    for (const record of records) {
      try {
        audit.record(record, now);
      } catch (error) {
        logger.error('audit event not recorded', {
          event: 'EXPORT-6403',
          destination: this.name,
          action: record.action,
          error: describeError(error),
        });
      }
    }
  }
}

/**
 * The Study Instance UID an ORU of ours carries (OBX with OBX-3 = 113014 "DICOM Study", src/reporting/hl7-oru.ts),
 * for the audit row: the delivery knows only the file and the control ID. Null for a message without one.
 */
export function studyUidOf(message: string): string | null {
  const field = message.charAt(3) || '|';
  const component =
    message
      .split(/\r\n|\r|\n/)[0]
      ?.split(field)[1]
      ?.charAt(0) || '^';
  for (const segment of message.split(/\r\n|\r|\n/)) {
    const fields = segment.split(field);
    if (fields[0] !== 'OBX') continue;
    if (fields[3]?.split(component)[0] !== OBSERVATION_CODES.study.code) continue;
    const value = fields[5]?.trim() ?? '';
    // A UID is digits and dots; anything else is not what we wrote, and an audit row must never carry free text.
    return /^[0-9.]{1,64}$/.test(value) ? value : null;
  }
  return null;
}
