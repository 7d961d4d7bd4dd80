// Identifiers and dates of the phantom datasets, derived from the dataset seed and the image's position only, so a
// dataset generated twice is the same dataset (same UIDs, same bytes) and two seeds never collide.
// UIDs are `2.25.<decimal of a name-based UUID>` (ISO/IEC 9834-8; UUID version 5: SHA-1 of a namespace + name).

import { createHash } from 'node:crypto';

/** Namespace UUID for cxr-gateway phantoms (a fixed random UUID). */
const NAMESPACE = Buffer.from('5b0f3c2e9d4a4f6b8c1e2a7d9e0f1b3c', 'hex');

export type UidKind = 'study' | 'series' | 'instance';

/** A UUID-derived UID for (seed, kind, key); key is the study index, or `study.image` for series and instances. */
export function phantomUid(seed: number, kind: UidKind, key: string | number): string {
  const digest = createHash('sha1')
    .update(NAMESPACE)
    .update(`cxr-gateway-phantom|${seed >>> 0}|${kind}|${key}`)
    .digest();
  const uuid = Buffer.from(digest.subarray(0, 16));
  uuid[6] = ((uuid[6] ?? 0) & 0x0f) | 0x50;
  uuid[8] = ((uuid[8] ?? 0) & 0x3f) | 0x80;
  return `2.25.${BigInt(`0x${uuid.toString('hex')}`).toString(10)}`;
}

/** A study date and time in 2020 (DICOM DA / TM), fixed by the seed and study index, never by the clock. */
export function phantomStudyDateTime(seed: number, studyIndex: number): { date: string; time: string } {
  const digest = createHash('sha1')
    .update(`cxr-gateway-phantom-date|${seed >>> 0}|${studyIndex}`)
    .digest();
  const day = digest.readUInt16BE(0) % 366;
  const seconds = 7 * 3600 + (digest.readUInt32BE(2) % (12 * 3600));
  const d = new Date(Date.UTC(2020, 0, 1) + day * 86_400_000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return {
    date: `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}`,
    time: `${p(Math.floor(seconds / 3600))}${p(Math.floor(seconds / 60) % 60)}${p(seconds % 60)}`,
  };
}
