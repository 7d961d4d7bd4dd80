import type { DeliveryOutcome as DestinationOutcome } from './destination.js';

/**
 * What a PACS or RIS destination answers to one delivery attempt: delivered, or retry/parked with a stable
 * cause code (see FAILURE_CLASSES in retry-policy.ts) and a sentence for the admin that holds no peer free text.
 */
export type DeliveryOutcome = DestinationOutcome;

/** PACS payload: the Part 10 files of one job's derived objects. RIS payload: one HL7 message file. */
export type DeliveryPayload = { kind: 'pacs'; files: string[] } | { kind: 'ris'; file: string; controlId: string };

/** One configured destination, as the pipeline sees it. */
export interface DeliveryTarget {
  readonly name: string;
  readonly kind: 'pacs' | 'ris';
  /** `signal`: the shutdown deadline; when it fires the send in flight ends with a `retry` outcome. */
  deliver(payload: DeliveryPayload, signal?: AbortSignal): Promise<DeliveryOutcome>;
  /** Ends at once: sends in flight answer retry. */
  stop?(): Promise<void>;
  /** Lets the sends in flight finish, then stops (a destination replaced or removed by a reload). */
  drain?(): Promise<void>;
}
