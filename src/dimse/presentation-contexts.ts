import { SopClass } from '../dicom/sop-classes.js';
import { TransferSyntax } from '../dicom/transfer-syntaxes.js';

export type ContextAnswer =
  | { result: 'accept'; transferSyntax: string }
  | { result: 'abstract-syntax-not-supported' }
  | { result: 'transfer-syntaxes-not-supported' };

export interface ContextPolicy {
  sopClasses: ReadonlySet<string>;
  /** The transfer syntaxes we store, in our order of preference. */
  transferSyntaxes: readonly string[];
}

const VERIFICATION_SYNTAXES = [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian];

/**
 * One answer per presentation context (a context carries exactly one result). The proposer lists its
 * syntaxes in its own order of preference, normally its native encoding first; we take the first of
 * those we accept so that the modality never has to transcode, and the bytes we store are its own.
 */
export function negotiateContext(
  abstractSyntax: string,
  proposed: readonly string[],
  policy: ContextPolicy,
): ContextAnswer {
  const acceptable: readonly string[] =
    abstractSyntax === SopClass.Verification
      ? VERIFICATION_SYNTAXES
      : policy.sopClasses.has(abstractSyntax)
        ? policy.transferSyntaxes
        : [];
  if (acceptable.length === 0) return { result: 'abstract-syntax-not-supported' };
  const chosen = proposed.find((ts) => acceptable.includes(ts));
  return chosen === undefined
    ? { result: 'transfer-syntaxes-not-supported' }
    : { result: 'accept', transferSyntax: chosen };
}
