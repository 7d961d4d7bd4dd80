import { readFile } from 'node:fs/promises';
import { GatewayError, describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { MllpSender, type MllpSenderOptions } from '../reporting/mllp-sender.js';
import type { DeliveryOutcome, Destination, Hl7Message } from './destination.js';

export interface RisMllpDestinationOptions {
  name: string;
  sender: MllpSenderOptions;
  logger: Logger;
}

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

  constructor(private readonly options: RisMllpDestinationOptions) {
    this.name = options.name;
    this.sender = new MllpSender(options.sender);
  }

  start(): Promise<void> {
    return this.sender.start();
  }

  stop(): Promise<void> {
    return this.sender.stop();
  }

  async deliver(items: readonly Hl7Message[], signal?: AbortSignal): Promise<DeliveryOutcome> {
    for (const item of items) {
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
    }
    return { kind: 'delivered' };
  }
}
