/**
 * What became of one attempt to hand a message to the RIS. The pipeline stores it with the job: `retry`
 * schedules another attempt (see nextAttemptAt), `parked` waits for an admin. Each cause names what happened;
 * each reason is the sentence for the admin.
 */
export type SendOutcome =
  | { kind: 'accepted'; ackCode: 'AA' | 'CA' }
  /**
   * `reason` never carries text the RIS wrote (it goes to the store and to warn logs); `peerText` does
   * (MSA-3, ERR texts, an unreadable answer), for debug logs only.
   */
  | { kind: 'retry'; cause: RetryCause; reason: string; peerText?: string }
  | { kind: 'parked'; cause: ParkCause; reason: string; peerText?: string };

export type RetryCause =
  /** MSA-1 AE: the RIS had a problem processing it; it may succeed later. */
  | 'application-error'
  /** MSA-1 CE (enhanced mode): the RIS could not commit it to safe storage. */
  | 'commit-error'
  /** No ACK within the response timeout (the message may or may not have arrived). */
  | 'no-ack'
  | 'connection-refused'
  | 'connect-timeout'
  /** Any other failure to connect (host unreachable, name not found, ...). */
  | 'connect-failed'
  | 'connection-reset'
  /** The RIS closed the connection before it answered. */
  | 'connection-closed'
  /** An ACK for another message: MSA-2 is not our MSH-10. */
  | 'control-id-mismatch'
  /** The answer is not an ACK we can read (no MSH/MSA). */
  | 'unreadable-ack'
  /** MSA-1 is not an acknowledgement code we accept in the configured mode. */
  | 'unexpected-ack-code'
  /** The sender stopped while the message was on its way. */
  | 'stopped'
  /** MLLP over TLS (src/export/mllp-tls.ts): we refused the RIS's certificate. */
  | 'tls-untrusted-certificate'
  /** MLLP over TLS: the RIS refused our client certificate, or that we sent none. */
  | 'tls-certificate-refused'
  /** MLLP over TLS: any other handshake failure (no common version or cipher, dropped mid-handshake). */
  | 'tls-handshake-failed';

export type ParkCause =
  /** MSA-1 AR: the RIS refuses the message itself; sending it again would be refused again. */
  | 'application-reject'
  /** MSA-1 CR (enhanced mode): the same, at the commit level. */
  | 'commit-reject'
  /** MSA-1 AE with an ERR-3 code that refuses the message itself (HL7 table 0357: 100-103, 200-203). */
  | 'application-error-message';
