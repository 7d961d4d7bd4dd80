import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { AuditRecorder } from '../store/audit-trail.js';
import { recordPacsSent } from './pacs-sent-audit.js';
import type { DeliveryOutcome, Destination, DicomObject } from './destination.js';
import { dicomObjectSource, readDicomObject } from './dicom-object-read.js';
import { httpRequest, type HttpAnswer, type Problem } from './http-request.js';
import { verdictForStatus } from './pacs-dicom-destination.js';

/** How we prove who we are to the DICOMweb server. Secrets are read from their files at each delivery. */
export type DicomwebAuth =
  { type: 'none' } | { type: 'basic'; username: string; passwordFile: string } | { type: 'bearer'; tokenFile: string };

export interface PacsDicomwebDestinationOptions {
  name: string;
  /** The server's DICOMweb root, e.g. https://pacs.example/dicom-web (no trailing slash needed). */
  baseUrl: string;
  auth: DicomwebAuth;
  /** PEM CA certificate(s) an https server's certificate must chain to; the system's trust store when left out. */
  caFile?: string;
  /** For the whole request: connecting, sending and the server's answer. */
  timeoutMs: number;
  logger: Logger;
  /** Where each delivery attempt's outcome is recorded (pacs.sent, one per study); none when left out. */
  audit?: AuditRecorder;
  now?: () => number;
}

interface Prepared {
  source: string;
  bytes: Buffer;
  sopInstanceUid: string;
  studyInstanceUid: string | undefined;
}

/**
 * A PACS reached over DICOMweb: each delivery is one STOW-RS request (PS3.18 10.5) carrying the whole batch as
 * multipart/related; type="application/dicom", Part 10 files unchanged. Sending a batch again is safe for the
 * same reason as with C-STORE: the server keys instances by SOP Instance UID.
 *
 * The answer maps onto the causes C-STORE uses, so that retry and park mean the same for both: no answer, a
 * timeout, 5xx, 408 and 429 retry; a request the server refuses as such (400, 401, 403, 404, 405, 409, 413, 415)
 * parks with the status in the reason, since resending the same request to the same URL with the same
 * credentials cannot succeed; 200/202 are read per instance (the Failed SOP Sequence's Failure Reason is a
 * C-STORE status, PS3.18 10.5.3, and is judged by verdictForStatus).
 */
export class PacsDicomwebDestination implements Destination<DicomObject> {
  readonly name: string;
  private stopped = false;
  private readonly inFlight = new Set<AbortController>();

  constructor(private readonly options: PacsDicomwebDestinationOptions) {
    this.name = options.name;
  }

  async start(): Promise<void> {}

  /** Aborts the requests in progress; their deliveries answer retry. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const controller of this.inFlight) controller.abort();
  }

  /** The STOW-RS endpoint: {baseUrl}/studies. */
  get studiesUrl(): URL {
    return new URL(`${this.options.baseUrl.replace(/\/+$/, '')}/studies`);
  }

  async deliver(items: readonly DicomObject[], signal?: AbortSignal): Promise<DeliveryOutcome> {
    if (this.stopped || signal?.aborted)
      return {
        kind: 'retry',
        cause: 'stopped',
        reason: `destination ${this.name} is stopped (the gateway is shutting down)`,
      };
    const controller = new AbortController();
    this.inFlight.add(controller);
    const onSignal = () => controller.abort();
    signal?.addEventListener('abort', onSignal, { once: true });
    try {
      const prepared: Prepared[] = [];
      const problems: Problem[] = [];
      for (const [index, item] of items.entries()) {
        const p = await prepare(item, index);
        if ('problem' in p) problems.push(p.problem);
        else prepared.push(p);
      }
      let outcome: DeliveryOutcome;
      if (prepared.length === 0) outcome = outcomeOf(problems, items.length, this.studiesUrl.origin);
      else {
        const answer = await this.post(prepared, controller.signal);
        outcome = this.judge(answer, prepared, problems, items.length);
      }
      this.auditAttempt(prepared, outcome);
      return outcome;
    } finally {
      signal?.removeEventListener('abort', onSignal);
      this.inFlight.delete(controller);
    }
  }

  private judge(answer: HttpAnswer, prepared: Prepared[], problems: Problem[], total: number): DeliveryOutcome {
    if (!('failure' in answer) && answer.status !== 200 && answer.status !== 202)
      // The body is the server's free text (it may quote the object): debug only.
      this.options.logger.debug('STOW-RS answer body', {
        destination: this.name,
        status: answer.status,
        peerText: answer.body.slice(0, 2000),
      });
    return stowOutcome(
      answer,
      prepared.map((p) => p.sopInstanceUid),
      problems,
      total,
      this.studiesUrl,
    );
  }

  private async authorization(): Promise<string | undefined | Problem> {
    const { auth } = this.options;
    try {
      if (auth.type === 'basic') {
        const password = (await readFile(auth.passwordFile, 'utf8')).replace(/\r?\n$/, '');
        return `Basic ${Buffer.from(`${auth.username}:${password}`).toString('base64')}`;
      }
      if (auth.type === 'bearer') return `Bearer ${(await readFile(auth.tokenFile, 'utf8')).trim()}`;
      return undefined;
    } catch (error) {
      // A secret file an admin has not put in place yet (or with the wrong owner): fixed without touching the items.
      return {
        kind: 'retry',
        cause: 'dicomweb-credentials-unreadable',
        detail: `cannot read the ${auth.type} credentials of destination ${this.name}: ${describeError(error)}`,
      };
    }
  }

  private async post(prepared: Prepared[], signal: AbortSignal): Promise<HttpAnswer> {
    const url = this.studiesUrl;
    const authorization = await this.authorization();
    if (typeof authorization === 'object') return { failure: authorization };
    let ca: Buffer | undefined;
    if (url.protocol === 'https:' && this.options.caFile !== undefined) {
      try {
        ca = await readFile(this.options.caFile);
      } catch (error) {
        return {
          failure: {
            kind: 'retry',
            cause: 'dicomweb-credentials-unreadable',
            detail: `cannot read tls.caFile of destination ${this.name}: ${describeError(error)}`,
          },
        };
      }
    }
    const boundary = `cxr-${randomBytes(12).toString('hex')}`;
    const parts: Buffer[] = [];
    for (const p of prepared) {
      parts.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), p.bytes, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from(`--${boundary}--\r\n`));
    const body = Buffer.concat(parts);
    const headers: Record<string, string | number> = {
      'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      'Content-Length': body.length,
      Accept: 'application/dicom+json',
    };
    if (authorization !== undefined) headers['Authorization'] = authorization;
    return await httpRequest({ method: 'POST', url, headers, body, ca, timeoutMs: this.options.timeoutMs, signal });
  }

  /**
   * The console's echo: a GET on {baseUrl}/studies?limit=1 with our credentials. Any 2xx proves the URL, the TLS
   * set-up and the credentials; a server without QIDO-RS there answers 404/405 and the detail says so.
   */
  async probe(): Promise<{ ok: boolean; detail: string }> {
    const url = new URL(`${this.studiesUrl.href}?limit=1`);
    const authorization = await this.authorization();
    if (typeof authorization === 'object') return { ok: false, detail: authorization.detail };
    let ca: Buffer | undefined;
    try {
      if (url.protocol === 'https:' && this.options.caFile !== undefined) ca = await readFile(this.options.caFile);
    } catch (error) {
      return { ok: false, detail: `cannot read tls.caFile: ${describeError(error)}` };
    }
    const answer = await httpRequest({
      method: 'GET',
      url,
      headers: {
        Accept: 'application/dicom+json',
        ...(authorization === undefined ? {} : { Authorization: authorization }),
      },
      ca,
      timeoutMs: this.options.timeoutMs,
      signal: new AbortController().signal,
    });
    if ('failure' in answer) return { ok: false, detail: `GET ${url.href}: ${answer.failure.detail}` };
    if (answer.status >= 200 && answer.status < 300)
      return { ok: true, detail: `GET ${url.href} answered ${answer.status}` };
    const said = httpStatusOutcome(answer.status, url.href);
    return {
      ok: false,
      detail: said.kind === 'delivered' ? `HTTP ${answer.status}` : said.reason.replace('STOW-RS to', 'GET'),
    };
  }

  /** One pacs.sent per study in the batch: delivered is a success, anything else (retry, parked) a failure. */
  private auditAttempt(batch: readonly Prepared[], outcome: DeliveryOutcome): void {
    const { audit, logger } = this.options;
    if (audit === undefined) return;
    const url = this.studiesUrl;
    recordPacsSent({
      audit,
      logger,
      destination: this.name,
      instances: batch,
      outcome,
      at: (this.options.now ?? Date.now)(),
      user: this.options.auth.type === 'basic' ? this.options.auth.username : null,
      address: url.host,
      transport: { url: url.href, tls: url.protocol === 'https:' },
    });
  }
}

async function prepare(item: DicomObject, index: number): Promise<Prepared | { problem: Problem }> {
  const unreadable = (detail: string) => ({ problem: { kind: 'parked' as const, cause: 'invalid-object', detail } });
  try {
    const { source, bytes, sopInstanceUid, studyInstanceUid } = await readDicomObject(item, index);
    if (sopInstanceUid === undefined) return unreadable(`${source} has no SOP Instance UID`);
    return { source, bytes, sopInstanceUid, studyInstanceUid };
  } catch (error) {
    return unreadable(`cannot read ${dicomObjectSource(item, index)}: ${describeError(error)}`);
  }
}

/**
 * The delivery outcome of one STOW-RS exchange: no answer is its retry; a status other than 200/202 is judged by
 * httpStatusOutcome; a 200/202 by the Failed SOP Sequence, each failure's reason being a C-STORE status
 * (verdictForStatus). `problems` are those of objects we could not send at all; `total` counts every object.
 */
export function stowOutcome(
  answer: HttpAnswer,
  sentSopInstanceUids: readonly string[],
  problems: readonly Problem[],
  total: number,
  studiesUrl: URL,
): DeliveryOutcome {
  const where = studiesUrl.origin;
  if ('failure' in answer)
    return { kind: answer.failure.kind, cause: answer.failure.cause, reason: answer.failure.detail };
  const { status, body } = answer;
  if (status !== 200 && status !== 202) return httpStatusOutcome(status, studiesUrl.href);
  const failed = failedInstances(body);
  if (failed === undefined && status === 202)
    return {
      kind: 'retry',
      cause: 'dicomweb-unreadable-answer',
      reason: `${where} answered 202 (some objects not stored) without a response we can read`,
    };
  const sent = new Set(sentSopInstanceUids);
  const all = [...problems];
  for (const f of failed ?? []) {
    if (!sent.has(f.sopInstanceUid)) continue;
    const verdict = verdictForStatus(f.reason);
    if (verdict.kind !== 'ok') all.push({ ...verdict, detail: `${f.sopInstanceUid}: ${verdict.detail}` });
  }
  return outcomeOf(all, total, where);
}

/** The batch's outcome from the problems of its objects, as deliveryOutcomeFor does for C-STORE: a parked object parks it. */
function outcomeOf(problems: readonly Problem[], total: number, where: string): DeliveryOutcome {
  if (problems.length === 0) return { kind: 'delivered' };
  const first = problems.find((p) => p.kind === 'parked') ?? problems[0];
  if (first === undefined) return { kind: 'delivered' };
  return {
    kind: first.kind,
    cause: first.cause,
    reason: `${where} did not store ${problems.length} of ${total} objects: ${problems.map((p) => p.detail).join('; ')}`,
  };
}

/** A status other than 200/202: see the class comment. */
export function httpStatusOutcome(status: number, url: string): DeliveryOutcome {
  const said = `STOW-RS to ${url} answered HTTP ${status}`;
  if (status >= 500 || status === 408 || status === 429)
    return { kind: 'retry', cause: 'dicomweb-server-error', reason: `${said}: the server cannot take it now` };
  if (status === 401 || status === 403)
    return {
      kind: 'parked',
      cause: 'dicomweb-not-authorized',
      reason: `${said}: the credentials (auth) are missing or refused`,
    };
  if (status === 404 || status === 405)
    return { kind: 'parked', cause: 'dicomweb-not-found', reason: `${said}: no STOW-RS service there (check baseUrl)` };
  if (status >= 400)
    return { kind: 'parked', cause: 'dicomweb-refused', reason: `${said}: the server refuses the request` };
  return { kind: 'parked', cause: 'dicomweb-refused', reason: `${said}, which is not a STOW-RS answer` };
}

/** The Failed SOP Sequence (0008,1198) of a DICOM JSON STOW-RS response; undefined when the body is not one. */
export function failedInstances(body: string): Array<{ sopInstanceUid: string; reason: number }> | undefined {
  if (body.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const root = Array.isArray(parsed) ? parsed[0] : parsed;
  if (typeof root !== 'object' || root === null) return undefined;
  const sequence = (root as Record<string, { Value?: unknown[] } | undefined>)['00081198'];
  const out: Array<{ sopInstanceUid: string; reason: number }> = [];
  for (const item of sequence?.Value ?? []) {
    if (typeof item !== 'object' || item === null) continue;
    const fields = item as Record<string, { Value?: unknown[] } | undefined>;
    const uid = fields['00081155']?.Value?.[0];
    const reason = fields['00081197']?.Value?.[0];
    if (typeof uid === 'string')
      out.push({ sopInstanceUid: uid, reason: typeof reason === 'number' ? reason : 0x0110 });
  }
  return out;
}
