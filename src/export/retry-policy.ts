import { GatewayError } from '../errors.js';

/**
 * What a failed delivery attempt says about the next one:
 * - transient: the cause lies outside the items (a peer that is down, busy, out of space, in maintenance, not
 *   yet configured); it clears without anyone touching the items, so the delivery retries for as long as it
 *   takes (delivery.transientMaxAttempts, 0 = no limit) and an alert (metric, degraded /healthz) tells the admin
 *   when it lasts.
 * - permanent: the peer refused the items themselves, or our configuration cannot ever deliver them; sending the
 *   same bytes again would be refused again, so the delivery parks (after delivery.permanentMaxAttempts, 1 by
 *   default) for an admin.
 * - unknown: a failure we cannot place (an unexpected status, an unreadable answer); retried, but only up to
 *   delivery.maxAttempts, so a peer that always answers nonsense does not keep a result busy for ever.
 */
export type FailureClass = 'transient' | 'permanent' | 'unknown';

/**
 * THE one table that classifies delivery failures, by the stable cause code each destination reports (the
 * code is also what the store's last_error starts with and what logs carry as `cause`). A cause not listed
 * here is 'unknown'. Keep it in step with the destinations: src/export/*-destination.ts, src/dimse/storage-scu.ts
 * (batch failures), src/reporting/hl7-ack.ts and mllp-sender.ts (RIS answers), src/export/folder-failure.ts.
 */
export const FAILURE_CLASSES: Readonly<Record<string, { class: FailureClass; meaning: string }>> = {
  // Network, either peer: nobody answers, or the connection broke. A maintenance window looks exactly like this.
  'connection-refused': { class: 'transient', meaning: 'nothing listens on the peer port (ECONNREFUSED)' },
  'connect-timeout': { class: 'transient', meaning: 'no TCP connection within the connect timeout' },
  'connect-failed': { class: 'transient', meaning: 'host unreachable, name not found (DNS), network down' },
  'connection-reset': { class: 'transient', meaning: 'the peer reset the connection (ECONNRESET, EPIPE)' },
  'connection-closed': { class: 'transient', meaning: 'the peer closed the connection before it answered' },
  stopped: { class: 'transient', meaning: 'the gateway stopped during the attempt' },
  // DICOM (PACS).
  // A-ASSOCIATE-RJ, "rejected-transient" (busy) and also "rejected-permanent" (calling or called AE not
  // recognised): the latter is a setting on one side or the other that an admin fixes without touching our
  // objects, and a parked delivery never moves again by itself, so it retries (and alerts) rather than parks.
  'association-rejected': {
    class: 'transient',
    meaning: 'A-ASSOCIATE-RJ: the PACS is busy, or does not accept our AE titles as configured',
  },
  'association-timeout': { class: 'transient', meaning: 'TCP connected, no answer to the association request' },
  'association-aborted': {
    class: 'transient',
    meaning: 'A-ABORT or a dropped connection before every C-STORE was answered',
  },
  'response-timeout': { class: 'transient', meaning: 'no C-STORE response within the response timeout' },
  'pacs-out-of-resources': {
    class: 'transient',
    meaning: 'C-STORE 0xA7xx or 0x0213: out of resources, resource limitation',
  },
  'pacs-processing-failure': {
    class: 'transient',
    meaning: 'C-STORE 0x0110 processing failure (the PACS had a problem)',
  },
  'pacs-refuses-sop-class': {
    class: 'transient',
    meaning: 'C-STORE 0x0122, or no accepted presentation context: a PACS setting its admin can change',
  },
  'pacs-not-authorized': {
    class: 'transient',
    meaning: 'C-STORE 0x0124 not authorised: a PACS setting its admin can change',
  },
  'pacs-refused-object': {
    class: 'permanent',
    meaning: 'C-STORE 0xA9xx, 0xCxxx, 0x0117, 0x0106, 0x0212: the PACS judged the object itself',
  },
  'invalid-object': { class: 'permanent', meaning: 'our own object cannot be read or named (damaged output)' },
  'pacs-failure': { class: 'unknown', meaning: 'any other C-STORE failure status' },
  // Storage commitment (issue 19, storageCommitment on a dicom destination): the objects are re-sent and re-committed.
  'commitment-request-failed': {
    class: 'transient',
    meaning: 'the N-ACTION did not reach the PACS, or it refused the Storage Commitment Push Model or the request',
  },
  'commitment-failed': {
    class: 'transient',
    meaning: 'the N-EVENT-REPORT lists objects the PACS did not commit (Failed SOP Sequence), or leaves some out',
  },
  'commitment-timeout': {
    class: 'transient',
    meaning: 'no N-EVENT-REPORT within storageCommitment.timeoutSeconds (the PACS cannot reach our SCP?)',
  },
  // DICOMweb STOW-RS (PACS, src/export/pacs-dicomweb-destination.ts); network failures use the causes above.
  'dicomweb-server-error': { class: 'transient', meaning: 'HTTP 5xx, 408 or 429: the server cannot take it now' },
  'dicomweb-not-authorized': {
    class: 'permanent',
    meaning: 'HTTP 401 or 403: the configured credentials are missing or refused (fix auth, then requeue)',
  },
  'dicomweb-not-found': {
    class: 'permanent',
    meaning: 'HTTP 404 or 405: no STOW-RS service at {baseUrl}/studies (fix baseUrl, then requeue)',
  },
  'dicomweb-refused': { class: 'permanent', meaning: 'HTTP 400, 409, 413, 415 or another refusal of the request' },
  'dicomweb-unreadable-answer': { class: 'unknown', meaning: 'HTTP 202 without a response body we can read' },
  'dicomweb-credentials-unreadable': {
    class: 'transient',
    meaning: 'the passwordFile, tokenFile or tls.caFile of the destination cannot be read',
  },
  // HL7 (RIS).
  'application-error': {
    class: 'transient',
    meaning: 'MSA-1 AE without an ERR-3 code that blames the message (e.g. 206 record locked, 207 internal error)',
  },
  'application-error-message': {
    class: 'permanent',
    meaning: 'MSA-1 AE with ERR-3 100-103 or 200-203: the message content or type is refused',
  },
  'commit-error': { class: 'transient', meaning: 'MSA-1 CE: the RIS could not commit it to safe storage' },
  'no-ack': { class: 'transient', meaning: 'no ACK within the ACK timeout' },
  'application-reject': { class: 'permanent', meaning: 'MSA-1 AR: the RIS refuses the message' },
  'commit-reject': { class: 'permanent', meaning: 'MSA-1 CR: the RIS refuses the message at commit level' },
  'invalid-message': { class: 'permanent', meaning: 'our own message cannot be sent (unreadable file, wrong MSH-10)' },
  'control-id-mismatch': { class: 'unknown', meaning: 'an ACK for another message (MSA-2 is not our MSH-10)' },
  'unreadable-ack': { class: 'unknown', meaning: 'the answer is not an ACK we can read' },
  'unexpected-ack-code': { class: 'unknown', meaning: 'MSA-1 is not an acknowledgement code we accept' },
  // TLS (MLLP over TLS, src/export/mllp-tls.ts). All transient, like 'association-rejected': a certificate we do
  // not trust, or one the peer does not trust, is a configuration problem of one side, fixed by an admin without
  // touching the message (and a peer in the middle of a certificate rotation looks exactly like it); a parked
  // delivery never moves by itself, so these retry, and the outage alert (alertAfterMinutes, a degraded
  // /healthz) and the security audit event tls.failed tell the admin at once.
  'tls-untrusted-certificate': {
    class: 'transient',
    meaning:
      "we refused the peer's certificate (unknown CA, self-signed, expired, wrong name): fix tls.caFile/servername or the peer's certificate",
  },
  'tls-certificate-refused': {
    class: 'transient',
    meaning: 'the peer refused our client certificate, or that we sent none (its TLS alert says which)',
  },
  'tls-handshake-failed': {
    class: 'transient',
    meaning: 'any other TLS handshake failure: no common version or cipher, a plain-TCP peer, dropped mid-handshake',
  },
  // Folders (either kind).
  'folder-not-writable': { class: 'transient', meaning: 'permission denied or read-only file system' },
  'folder-full': { class: 'transient', meaning: 'no space left on the destination folder (ENOSPC, EDQUOT)' },
  'folder-not-a-directory': { class: 'transient', meaning: 'part of the folder path is a file' },
  'folder-write-failed': { class: 'transient', meaning: 'any other file system error while writing' },
  // The pipeline itself.
  'destination-not-configured': {
    class: 'transient',
    meaning:
      'the delivery names a destination that is not live (removed, or not yet added by a reload): it waits for it',
  },
  'payload-mismatch': {
    class: 'permanent',
    meaning: 'a PACS destination got a RIS payload or the other way round (renamed under a reload)',
  },
  'delivery-threw': { class: 'unknown', meaning: 'the destination threw instead of answering with an outcome' },
  'stored-json-invalid': {
    class: 'permanent',
    meaning:
      "the delivery's payload in the job store cannot be read back (a damaged row, or one written by another version)",
  },
};

/**
 * The class of a failure: from the table, else from what the destination said (`parked` -> permanent); an
 * unlisted `retry` cause is unknown, which keeps the old bounded behaviour for it.
 */
export function failureClassOf(cause: string, said: 'retry' | 'parked'): FailureClass {
  const known = FAILURE_CLASSES[cause];
  if (known !== undefined) return known.class;
  return said === 'parked' ? 'permanent' : 'unknown';
}

export interface RetryPolicy {
  /** Delay after the first failed attempt. */
  initialDelayMs: number;
  /** Each further failure multiplies the delay by this (>= 1). */
  multiplier: number;
  /** The delay never grows past this. */
  maxDelayMs: number;
  /** After this many failed attempts of unknown class the delivery is parked for an admin. */
  maxAttempts: number;
  /** The same for transient failures; 0 = no limit (the default: a long outage parks nothing). */
  transientMaxAttempts?: number;
  /** The same for permanent refusals; 1 = park at the first. */
  permanentMaxAttempts?: number;
  /** 0..1: the share of each delay that is random, so that many queued results do not retry in step. */
  jitter: number;
}

export type NextAttempt = { kind: 'retry'; at: Date; delayMs: number } | { kind: 'park'; reason: string };

/**
 * When to try again after `attempt` failed attempts (1 after the first), or that it is time to park.
 * Pure: the caller passes the clock and the random source, so the pipeline can store the answer and
 * tests can pin it. The delay is base * (1 - jitter * random), with base = initial * multiplier^(attempt-1)
 * capped at maxDelayMs: jitter only ever shortens it, so maxDelayMs stays a true upper bound.
 * `failure` picks the attempt limit (see FailureClass); without it the limit is maxAttempts.
 */
export function nextAttemptAt(
  attempt: number,
  now: Date,
  policy: RetryPolicy,
  random: () => number,
  failure: FailureClass = 'unknown',
): NextAttempt {
  checkPolicy(policy);
  if (!Number.isSafeInteger(attempt) || attempt < 1) {
    throw new GatewayError(
      'RETRY_BAD_ATTEMPT',
      `attempt must be a whole number >= 1 (failed attempts so far), got ${attempt}`,
    );
  }
  const limit = attemptLimit(policy, failure);
  if (limit > 0 && attempt >= limit) {
    const which = failure === 'unknown' ? '' : ` for ${failure} failures`;
    return {
      kind: 'park',
      reason: `gave up after ${attempt} failed attempts (the retry policy allows ${limit}${which})`,
    };
  }
  // The exponent is capped so that a delivery retried for weeks does not overflow to Infinity.
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** Math.min(attempt - 1, 64));
  const r = Math.min(1, Math.max(0, random()));
  const delayMs = Math.round(base * (1 - policy.jitter * r));
  return { kind: 'retry', at: new Date(now.getTime() + delayMs), delayMs };
}

function attemptLimit(policy: RetryPolicy, failure: FailureClass): number {
  if (failure === 'transient') return policy.transientMaxAttempts ?? 0;
  if (failure === 'permanent') return policy.permanentMaxAttempts ?? 1;
  return policy.maxAttempts;
}

function checkPolicy(policy: RetryPolicy): void {
  const fail = (what: string) => {
    throw new GatewayError('RETRY_BAD_POLICY', `retry policy: ${what}`);
  };
  if (!Number.isFinite(policy.initialDelayMs) || policy.initialDelayMs < 0)
    fail(`initialDelayMs must be >= 0, got ${policy.initialDelayMs}`);
  if (!Number.isFinite(policy.multiplier) || policy.multiplier < 1)
    fail(`multiplier must be >= 1, got ${policy.multiplier}`);
  if (!Number.isFinite(policy.maxDelayMs) || policy.maxDelayMs < policy.initialDelayMs) {
    fail(`maxDelayMs must be >= initialDelayMs (${policy.initialDelayMs}), got ${policy.maxDelayMs}`);
  }
  if (!Number.isSafeInteger(policy.maxAttempts) || policy.maxAttempts < 1)
    fail(`maxAttempts must be a whole number >= 1, got ${policy.maxAttempts}`);
  const transient = policy.transientMaxAttempts ?? 0;
  if (!Number.isSafeInteger(transient) || transient < 0)
    fail(`transientMaxAttempts must be a whole number >= 0 (0 = no limit), got ${transient}`);
  const permanent = policy.permanentMaxAttempts ?? 1;
  if (!Number.isSafeInteger(permanent) || permanent < 1)
    fail(`permanentMaxAttempts must be a whole number >= 1, got ${permanent}`);
  if (!Number.isFinite(policy.jitter) || policy.jitter < 0 || policy.jitter > 1)
    fail(`jitter must be within 0..1, got ${policy.jitter}`);
}
