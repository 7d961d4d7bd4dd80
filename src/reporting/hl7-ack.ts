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
  /** MSA-3 and the ERR segments' texts, for the admin; empty when the peer said nothing. */
  text: string;
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
  if (msh === undefined || msh.length < 8) return { ok: false, reason: `the answer has no MSH segment: ${preview(raw)}` };
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
  const firstComponent = (value: string | undefined) => unescapeHl7((value ?? '').split(delimiters.component)[0] ?? '', delimiters).trim();

  const msa = segments.find((s) => s.startsWith(`MSA${field}`));
  if (msa === undefined) return { ok: false, reason: `the answer has no MSA segment: ${preview(raw)}` };
  const msaFields = fieldsOf(msa);
  const code = firstComponent(msaFields[1]).toUpperCase();
  if (code === '') return { ok: false, reason: `the answer's MSA-1 (acknowledgement code) is empty: ${preview(raw)}` };

  const texts: string[] = [];
  const msaText = unescapeHl7(msaFields[3] ?? '', delimiters).trim();
  if (msaText !== '') texts.push(msaText);
  for (const err of segments.filter((s) => s.startsWith(`ERR${field}`))) {
    const text = errText(fieldsOf(err), delimiters);
    if (text !== '' && !texts.includes(text)) texts.push(text);
  }
  return { ok: true, ack: { code, controlId: firstComponent(msaFields[2]), text: truncate(texts.join('; ')) } };
}

/**
 * Decides what an ACK means for the message we sent: success only when MSA-1 is AA (or CA in enhanced mode)
 * and MSA-2 is our control ID; a mismatched ID means the ACK is not for this message, whatever it says.
 */
export function interpretAck(ack: Hl7Ack, expectedControlId: string, mode: AckMode): SendOutcome {
  const said = ack.text === '' ? '' : `: ${ack.text}`;
  if (ack.controlId !== expectedControlId) {
    return {
      kind: 'retry',
      cause: 'control-id-mismatch',
      reason: `the RIS answered ${ack.code} with MSA-2 '${ack.controlId}', which is not our control ID '${expectedControlId}'; the message is treated as not delivered`,
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
      return { kind: 'retry', cause: 'unexpected-ack-code', reason: `the RIS answered with acknowledgement code '${ack.code}', which is not an HL7 ACK code${said}` };
  }
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

function preview(raw: string): string {
  const shown = raw.slice(0, 80).replace(/[\x00-\x1f]/g, (c) => (c === '\r' || c === '\n' ? '<CR>' : '?'));
  return `'${shown}'${raw.length > 80 ? '...' : ''}`;
}
