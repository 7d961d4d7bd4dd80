// UIDs of the objects we derive from a received image. They are a pure function of what the object is
// (which source, which model, which kind of output, which revision), so that a re-run or a re-send produces
// the same UIDs and the PACS recognises the second copy instead of filing a duplicate.
//
// Form: `2.25.<decimal>` (PS3.5 B.2, a UID derived from a UUID). The UUID is an RFC 9562 version 8 UUID built
// from SHA-256 as in its appendix B.2: the first 128 bits of the hash with the version nibble set to 8 and the
// variant bits to 10, so the value is a well-formed UUID (122 bits of hash) as `2.25.` requires.

import { createHash } from 'node:crypto';

/** What kind of object a UID names; part of the hash so two kinds never share a UID. */
export type DerivedOutputKind = 'heatmap-sc' | 'heatmap-mf-sc' | 'classification-sr' | 'rejection-kos';

export interface DerivedModelKey {
  modelUid: string;
  version: string;
}

/** Increments whenever the layout of the hashed key changes, so old and new schemes cannot collide. */
const SCHEME = 'cxr-gateway/derived-uid/1';

/** `2.25.` + the decimal of a SHA-256-based UUID of the given parts (order matters, no separator ambiguity). */
export function uidFromParts(parts: readonly (string | number)[]): string {
  // JSON keeps the parts apart unambiguously ("a|b","c" vs "a","b|c").
  const digest = createHash('sha256')
    .update(JSON.stringify([SCHEME, ...parts.map(String)]))
    .digest();
  const bytes = Buffer.from(digest.subarray(0, 16));
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80; // version 8
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // variant 10
  return `2.25.${BigInt(`0x${bytes.toString('hex')}`).toString(10)}`;
}

export interface InstanceUidKey {
  sourceSopInstanceUid: string;
  model: DerivedModelKey;
  kind: DerivedOutputKind;
  revision: number;
  /**
   * Distinguishes several outputs of one kind for the same source, e.g. one heatmap per explained class.
   * Leave it out when there is one output per source.
   */
  variant?: string;
}

/** SOP Instance UID of one derived object. */
export function derivedInstanceUid(key: InstanceUidKey): string {
  return uidFromParts([
    'instance',
    key.sourceSopInstanceUid,
    key.model.modelUid,
    key.model.version,
    key.kind,
    key.revision,
    key.variant ?? '',
  ]);
}

export interface StudyOutputKey {
  studyInstanceUid: string;
  model: DerivedModelKey;
  kind: DerivedOutputKind;
  revision: number;
}

/**
 * Series Instance UID: one series per (study, model version, output kind, revision), so a study's heatmaps of one
 * revision sit in one series whatever source series they come from, and each revision has series of its own.
 */
export function derivedSeriesUid(key: StudyOutputKey): string {
  return uidFromParts([
    'study-series',
    key.studyInstanceUid,
    key.model.modelUid,
    key.model.version,
    key.kind,
    key.revision,
  ]);
}

/** SOP Instance UID of an object made once per study and revision (the SR, the rejection note). */
export function studyInstanceUid(key: StudyOutputKey): string {
  return uidFromParts([
    'study-instance',
    key.studyInstanceUid,
    key.model.modelUid,
    key.model.version,
    key.kind,
    key.revision,
  ]);
}
