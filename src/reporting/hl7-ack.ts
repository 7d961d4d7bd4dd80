import { unescapeHl7, type Hl7Delimiters } from './hl7-escape.js';
import type { SendOutcome } from './mllp-outcome.js';

/**
 * original: only AA is success (application acknowledgement).
 * enhanced: CA (commit accept) is success too; the receiver answers CA when it honours MSH-15 = AL.
 */
export type AckMode = 'original' | 'enhanced';

export interface Hl7Ack {
  /** MSA-1, upper-cased: AA, AE, AR, CA, CE, CR (or whatever the peer sent). */
  code: string;
  /** MSA-2: the control ID of the message this ACK is for. */
  controlId: string;
  /**
   * MSA-3 and the ERR segments' texts; empty when the peer said nothing. Peer-supplied free text: it often
   * names the patient, so it goes to debug logs only, never into a reason, a warn/error log or the store.
   */
  text: string;
  /** ERR-3 identifiers (HL7 table 0357, e.g. 207), or the code component of v2.4 ERR-1: codes, no free text. */
  errorCodes?: string[];
}

export type AckParseResult = { ok: true; ack: Hl7Ack } | { ok: false; reason: string };

const MAX_TEXT = 300;

/**
 * Reads an ACK leniently: segments may be separated by \r, \n or \r\n; the delimiters are taken from the
 * ACK's own MSH (a peer may use other encoding characters than ours). Only MSH and MSA are required.
 */
export function parseAck(raw: string): AckParseResult {
  const segments = raw
    .replace(/^\uFEFF/, '')
    .split(/\r\n|\r|\n/)
    .map((s) => s.replace(/^\s+/, ''))
    .filter((s) => s !== '');
  const msh = segments.find((s) => s.startsWith('MSH'));
  if (msh === undefined || msh.length < 8)
    return { ok: false, reason: `the answer has no MSH segment: ${preview(raw)}` };
  const field = msh.charAt(3);
  const encoding = msh.slice(4).split(field)[0] ?? '';
  const delimiters: Hl7Delimiters = {
    field,
    component: encoding.charAt(0) || '^',
    repetition: encoding.charAt(1) || '~',
    escape: encoding.charAt(2) || '\\',
    subcomponent: encoding.charAt(3) || '&',
  };
  const fieldsOf = (segment: string) => segment.split(field);
  const firstComponent = (value: string | undefined) =>
    unescapeHl7((value ?? '').split(delimiters.component)[0] ?? '', delimiters).trim();

  const msa = segments.find((s) => s.startsWith(`MSA${field}`));
  if (msa === undefined) return { ok: false, reason: `the answer has no MSA segment: ${preview(raw)}` };
  const msaFields = fieldsOf(msa);
  const code = firstComponent(msaFields[1]).toUpperCase();
  if (code === '') return { ok: false, reason: `the answer's MSA-1 (acknowledgement code) is empty: ${preview(raw)}` };

  const texts: string[] = [];
  const errorCodes: string[] = [];
  const msaText = unescapeHl7(msaFields[3] ?? '', delimiters).trim();
  if (msaText !== '') texts.push(msaText);
  for (const err of segments.filter((s) => s.startsWith(`ERR${field}`))) {
    const errFields = fieldsOf(err);
    const text = errText(errFields, delimiters);
    if (text !== '' && !texts.includes(text)) texts.push(text);
    const errorCode = errCode(errFields, delimiters);
    if (errorCode !== undefined && !errorCodes.includes(errorCode)) errorCodes.push(errorCode);
  }
  const ack: Hl7Ack = { code, controlId: firstComponent(msaFields[2]), text: truncate(texts.join('; ')) };
  if (errorCodes.length > 0) ack.errorCodes = errorCodes;
  return { ok: true, ack };
}

/**
 * Decides what an ACK means for the message we sent: success only when MSA-1 is AA (or CA in enhanced mode)
 * and MSA-2 is our control ID; a mismatched ID means the ACK is not for this message, whatever it says.
 */
export function interpretAck(ack: Hl7Ack, expectedControlId: string, mode: AckMode): SendOutcome {
  const outcome = interpretAckCode(ack, expectedControlId, mode);
  // The peer's own words travel beside the reason, for the debug log only (see Hl7Ack.text).
  if (outcome.kind !== 'accepted' && ack.text !== '') outcome.peerText = ack.text;
  return outcome;
}

/**
 * What the reason says of the RIS's words: the ERR-3 codes and how long the text was, never the text itself
 * (MSA-3 and ERR often carry a patient name or ID).
 */
function saidOf(ack: Hl7Ack): string {
  const parts: string[] = [];
  if (ack.errorCodes !== undefined && ack.errorCodes.length > 0) parts.push(`error code ${ack.errorCodes.join(', ')}`);
  if (ack.text !== '') parts.push(`${ack.text.length} characters of text, logged at debug level only`);
  return parts.length === 0 ? '' : ` (${parts.join('; ')})`;
}

// HL7 table 0357 codes that blame the message itself (segment sequence, required field, data type, table value)
// or what we sent (message type, event, processing ID, version): resending the same message cannot help. 204
// (unknown key, e.g. an order the RIS has not received yet), 206 (record locked) and 207 (internal error) may clear.
const MESSAGE_ERROR_CODES = new Set(['100', '101', '102', '103', '200', '201', '202', '203']);

function interpretAckCode(ack: Hl7Ack, expectedControlId: string, mode: AckMode): SendOutcome {
  const said = saidOf(ack);
  // MSA-2 is an ID, not free text, but it is the peer's: keep it short and printable.
  const theirId = ack.controlId.slice(0, 40).replace(/[^\x20-\x7e]/g, '?');
  if (ack.controlId !== expectedControlId) {
    return {
      kind: 'retry',
      cause: 'control-id-mismatch',
      reason: `the RIS answered ${ack.code} with MSA-2 '${theirId}', which is not our control ID '${expectedControlId}'; the message is treated as not delivered`,
    };
  }
  switch (ack.code) {
    case 'AA':
      return { kind: 'accepted', ackCode: 'AA' };
    case 'CA':
      if (mode === 'enhanced') return { kind: 'accepted', ackCode: 'CA' };
      return {
        kind: 'retry',
        cause: 'unexpected-ack-code',
        reason: `the RIS answered CA (commit accept) but the sender expects original-mode AA; if the RIS uses enhanced acknowledgements, set the ACK mode to 'enhanced'`,
      };
    case 'AE':
      if (ack.errorCodes?.some((c) => MESSAGE_ERROR_CODES.has(c))) {
        return {
          kind: 'parked',
          cause: 'application-error-message',
          reason: `the RIS answered AE (application error)${said}, a code that refuses the message itself; the message is parked and will not be resent until an admin releases it`,
        };
      }
      return { kind: 'retry', cause: 'application-error', reason: `the RIS answered AE (application error)${said}` };
    case 'CE':
      return { kind: 'retry', cause: 'commit-error', reason: `the RIS answered CE (commit error)${said}` };
    case 'AR':
      return {
        kind: 'parked',
        cause: 'application-reject',
        reason: `the RIS answered AR (application reject)${said}; the message is parked and will not be resent until an admin releases it`,
      };
    case 'CR':
      return {
        kind: 'parked',
        cause: 'commit-reject',
        reason: `the RIS answered CR (commit reject)${said}; the message is parked and will not be resent until an admin releases it`,
      };
    default:
      return {
        kind: 'retry',
        cause: 'unexpected-ack-code',
        reason: `the RIS answered with acknowledgement code '${ack.code.slice(0, 8).replace(/[^\x20-\x7e]/g, '?')}', which is not an HL7 ACK code${said}`,
      };
  }
}

/** ERR-3.1 (the table 0357 identifier), else the first component of the v2.4-style ERR-1's code (ERR-1.4.1). */
function errCode(fields: string[], d: Hl7Delimiters): string | undefined {
  const code = unescapeHl7((fields[3] ?? '').split(d.component)[0] ?? '', d).trim();
  if (/^[A-Za-z0-9]{1,10}$/.test(code)) return code;
  const legacy = unescapeHl7(((fields[1] ?? '').split(d.component)[3] ?? '').split(d.subcomponent)[0] ?? '', d).trim();
  return /^[A-Za-z0-9]{1,10}$/.test(legacy) ? legacy : undefined;
}

/** ERR-8 (user message), else the text of ERR-3 (error code), else the v2.4-style ERR-1. */
function errText(fields: string[], d: Hl7Delimiters): string {
  const userMessage = unescapeHl7(fields[8] ?? '', d).trim();
  if (userMessage !== '') return userMessage;
  const code = (fields[3] ?? '').split(d.component);
  const codeText = unescapeHl7(code[1] ?? code[0] ?? '', d).trim();
  if (codeText !== '') return codeText;
  return (fields[1] ?? '')
    .split(d.component)
    .map((c) => unescapeHl7(c, d).trim())
    .filter((c) => c !== '')
    .join(' ');
}

function truncate(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}...` : text;
}

/**
 * What a reason may say about an answer we cannot read: its size and its first segment's name, not its text
 * (it may be a whole message with a PID segment).
 */
function preview(raw: string): string {
  const head = /^[A-Z][A-Z0-9]{2}/.exec(raw.replace(/^\uFEFF/, '').trimStart())?.[0];
  return `an answer of ${raw.length} characters${head === undefined ? '' : ` starting with segment ${head}`}`;
}
