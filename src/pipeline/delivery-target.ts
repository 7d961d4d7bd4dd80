/** What a PACS or RIS destination answers to one delivery attempt. */
export type DeliveryOutcome = { kind: 'delivered' } | { kind: 'retry'; reason: string } | { kind: 'parked'; reason: string };

/** PACS payload: the Part 10 files of one job's derived objects. RIS payload: one HL7 message file. */
export type DeliveryPayload = { kind: 'pacs'; files: string[] } | { kind: 'ris'; file: string; controlId: string };

/** One configured destination, as the pipeline sees it. */
export interface DeliveryTarget {
  readonly name: string;
  readonly kind: 'pacs' | 'ris';
  deliver(payload: DeliveryPayload): Promise<DeliveryOutcome>;
  stop?(): Promise<void>;
}
