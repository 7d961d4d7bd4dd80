import http from 'node:http';
import https from 'node:https';
import { TLS_PROFILE } from '../config/tls-profile.js';
import { describeError } from '../errors.js';

/** Why an attempt failed, in the delivery contract's terms (cause codes of src/export/retry-policy.ts). */
export type Problem = { kind: 'retry' | 'parked'; cause: string; detail: string };

/** What the server answered, or why there is no answer. */
export type HttpAnswer = { status: number; body: string } | { failure: Problem };

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: URL;
  headers: Record<string, string | number>;
  body?: Buffer;
  /** For https: the CA the server's certificate must chain to; the system's trust store when undefined. */
  ca: Buffer | undefined;
  /** For the whole exchange: connecting, sending and reading the answer. */
  timeoutMs: number;
  signal: AbortSignal;
}

/**
 * One HTTP(S) exchange that never rejects: the status and body, or the failure as a retry Problem (no answer,
 * timeout, abort, TLS). https uses the gateway's one TLS profile (BCP 195) and verifies the server's certificate
 * and host name. node:http rather than fetch, because fetch takes no CA or TLS options without undici's Agent.
 */
export function httpRequest(r: HttpRequest): Promise<HttpAnswer> {
  const { url, timeoutMs, signal } = r;
  return new Promise<HttpAnswer>((resolve) => {
    let settled = false;
    const settle = (answer: HttpAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(answer);
    };
    const request =
      url.protocol === 'https:'
        ? https.request(url, {
            method: r.method,
            headers: r.headers,
            ...TLS_PROFILE,
            ...(r.ca === undefined ? {} : { ca: r.ca }),
          })
        : http.request(url, { method: r.method, headers: r.headers });
    const timer = setTimeout(() => {
      settle({
        failure: {
          kind: 'retry',
          cause: 'response-timeout',
          detail: `${url.origin} did not answer within ${timeoutMs / 1000} s`,
        },
      });
      request.destroy();
    }, timeoutMs);
    const onAbort = (): void => {
      settle({ failure: { kind: 'retry', cause: 'stopped', detail: `the request to ${url.origin} was stopped` } });
      request.destroy();
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    request.on('error', (error) => settle({ failure: networkProblem(error, url) }));
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', (error) => settle({ failure: networkProblem(error, url) }));
      response.on('end', () =>
        settle({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    request.end(r.body);
  });
}

function networkProblem(error: Error & { code?: string }, url: URL): Problem {
  const where = url.origin;
  const code = error.code ?? '';
  if (code === 'ECONNREFUSED')
    return { kind: 'retry', cause: 'connection-refused', detail: `nothing listens at ${where}` };
  if (code === 'ECONNRESET' || code === 'EPIPE')
    return { kind: 'retry', cause: 'connection-reset', detail: `${where} reset the connection` };
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code))
    return {
      kind: 'retry',
      cause: 'tls-untrusted-certificate',
      detail: `we refused the certificate of ${where}: ${describeError(error)}`,
    };
  return { kind: 'retry', cause: 'connect-failed', detail: `cannot reach ${where}: ${describeError(error)}` };
}
