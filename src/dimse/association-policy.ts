import type { AllowedCaller } from '../config/schema.js';

export interface AssociationPolicy {
  aeTitle: string;
  callers: { allowAny: boolean; allowed: readonly AllowedCaller[] };
  maxAssociations: number;
}

export interface AssociationRequest {
  calledAe: string;
  callingAe: string;
  peerAddress: string;
}

/** A-ASSOCIATE-RJ fields (PS3.8 9.3.4) together with the sentence we log for the admin. */
export interface Rejection {
  result: 1 | 2; // 1 permanent, 2 transient
  source: 1 | 2 | 3; // 1 service user, 2 ACSE provider, 3 presentation provider
  reason: number;
  explanation: string;
}

export type AssociationDecision = { accept: true } | ({ accept: false } & Rejection);

const PERMANENT = 1;
const TRANSIENT = 2;
const SERVICE_USER = 1;
const PRESENTATION_PROVIDER = 3;
const CALLING_AE_NOT_RECOGNIZED = 3;
const CALLED_AE_NOT_RECOGNIZED = 7;
const LOCAL_LIMIT_EXCEEDED = 2;

/**
 * Decides whether an association request may proceed. Pure: the caller supplies how many associations
 * are already open, so the rules can be tested without a socket.
 */
export function decideAssociation(
  request: AssociationRequest,
  policy: AssociationPolicy,
  openAssociations: number,
): AssociationDecision {
  const called = request.calledAe.trim();
  const calling = request.callingAe.trim();
  const peer = normaliseAddress(request.peerAddress);
  if (called !== policy.aeTitle) {
    return {
      accept: false,
      result: PERMANENT,
      source: SERVICE_USER,
      reason: CALLED_AE_NOT_RECOGNIZED,
      explanation: `called AE '${called}' is not ours ('${policy.aeTitle}'): fix the destination AE title on the sender`,
    };
  }
  if (!policy.callers.allowAny) {
    const entries = policy.callers.allowed.filter((c) => c.aeTitle === calling);
    if (entries.length === 0) {
      return {
        accept: false,
        result: PERMANENT,
        source: SERVICE_USER,
        reason: CALLING_AE_NOT_RECOGNIZED,
        explanation: `calling AE '${calling}' is not in dicom.callers.allowed`,
      };
    }
    const hostAllowed = entries.some((c) => c.host === undefined || normaliseAddress(c.host) === peer);
    if (!hostAllowed) {
      const hosts = entries.map((c) => c.host).join(', ');
      return {
        accept: false,
        result: PERMANENT,
        source: SERVICE_USER,
        reason: CALLING_AE_NOT_RECOGNIZED,
        explanation: `calling AE '${calling}' connected from ${peer}, but dicom.callers.allowed binds it to ${hosts}`,
      };
    }
  }
  if (openAssociations >= policy.maxAssociations) {
    return {
      accept: false,
      result: TRANSIENT,
      source: PRESENTATION_PROVIDER,
      reason: LOCAL_LIMIT_EXCEEDED,
      explanation: `${openAssociations} associations are open, the limit is dicom.maxAssociations=${policy.maxAssociations}; the sender should retry later`,
    };
  }
  return { accept: true };
}

/** IPv4 peers on a dual-stack socket show up as `::ffff:a.b.c.d`. */
export function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
