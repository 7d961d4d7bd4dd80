import { createHash } from 'node:crypto';
import { GatewayError } from '../errors.js';

/** MSH-10 is ST with a maximum length of 20 (v2.5.1 2.14.9.10). */
export const MAX_CONTROL_ID_LENGTH = 20;

const PREFIX = 'CXR';
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * The MSH-10 control ID of one result: the same study revision sent to the same RIS always gets the same
 * ID, so a retry after a timeout or a restart resends the same ID and the RIS can recognise the duplicate
 * (and our ACK check can match MSA-2 without remembering anything). A new revision (late images, a
 * corrected result) or another RIS gets a different ID.
 *
 * 'CXR' + 17 Crockford base-32 characters of a SHA-256 (85 bits): 20 characters, only [0-9A-Z], so it
 * never needs escaping.
 */
export function resultControlId(studyInstanceUid: string, revision: number, risName: string): string {
  const uid = studyInstanceUid.trim();
  if (uid === '')
    throw new GatewayError('HL7_BAD_CONTROL_ID_INPUT', 'cannot derive an HL7 control ID without a StudyInstanceUID');
  if (!Number.isSafeInteger(revision) || revision < 0) {
    throw new GatewayError('HL7_BAD_CONTROL_ID_INPUT', `study revision must be a whole number >= 0, got ${revision}`);
  }
  if (risName.trim() === '')
    throw new GatewayError(
      'HL7_BAD_CONTROL_ID_INPUT',
      'cannot derive an HL7 control ID without a RIS destination name',
    );
  // NUL cannot occur in a UID or a config name, so the three parts cannot run into each other.
  const digest = createHash('sha256').update(`${uid}\0${revision}\0${risName.trim()}`).digest();
  return PREFIX + base32(digest, MAX_CONTROL_ID_LENGTH - PREFIX.length);
}

function base32(bytes: Buffer, length: number): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += CROCKFORD[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= length) break;
  }
  return out;
}
