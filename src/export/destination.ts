/**
 * What became of one attempt to hand a batch to a destination. The pipeline stores it with the job: `retry`
 * schedules another attempt of the whole batch (with backoff; how many times depends on the cause's class in
 * FAILURE_CLASSES, src/export/retry-policy.ts: transient causes without limit by default), `parked` waits
 * for an admin. Same shape as the MLLP sender's SendOutcome (whose success is `accepted`), so one scheduler
 * handles both.
 *
 * The rule every destination follows: `retry` when the cause lies outside the items (a peer that is down,
 * busy, out of space, or not yet configured to accept us) and may clear without anyone touching the items;
 * `parked` when the items themselves are refused and sending the same bytes again cannot succeed. A `reason`
 * never quotes the peer's free text (HL7 MSA-3/ERR, DICOM Error Comment): it may name the patient, and the
 * reason is stored and logged at warn; destinations log that text at debug only.
 */
export type DeliveryOutcome =
  | { kind: 'delivered' }
  /** `cause`: a stable kebab-case code for scripts and tests; `reason`: the sentence for the admin. */
  | { kind: 'retry'; cause: string; reason: string }
  | { kind: 'parked'; cause: string; reason: string };

/**
 * Somewhere results go: a PACS, a RIS, a folder. `deliver` never rejects for what the items, the peer or the
 * file system do; each of those is a DeliveryOutcome. Delivering the same items again is harmless (the same
 * UIDs or control ID replace what is there), which is what makes `retry` of a whole batch safe.
 */
export interface Destination<T> {
  readonly name: string;
  /** Readies the destination (MLLP opens connections lazily; folders and DICOM need nothing). */
  start(): Promise<void>;
  /** Ends a delivery in flight with a `retry` outcome; later deliveries answer `retry` too. */
  stop(): Promise<void>;
  /**
   * `signal` fires when the gateway's shutdown deadline is reached: the delivery then ends at once (association
   * aborted, connection closed) with a `retry` outcome, so a silent peer cannot hold the shutdown.
   */
  deliver(items: readonly T[], signal?: AbortSignal): Promise<DeliveryOutcome>;
}

/** A DICOM object for a PACS: a Part 10 file, or its bytes (e.g. a Secondary Capture just written). */
export type DicomObject = { readonly path: string } | { readonly bytes: Uint8Array; readonly label?: string };

/**
 * An HL7 v2 message for a RIS, with its control ID (MSH-10), which names the file or is matched against the
 * ACK: the message itself (segments separated by `\r`), or a file holding it (UTF-8).
 */
export type Hl7Message =
  { readonly controlId: string; readonly message: string } | { readonly controlId: string; readonly path: string };
