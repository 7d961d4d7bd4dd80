/**
 * HL7 v2 escape sequences (v2.5.1 chapter 2.7.4) for the default delimiters `|^~\&`.
 *
 * Every value we put into a message goes through escapeHl7: patient names, accession numbers and UIDs come
 * from DICOM headers that a modality or a RIS filled in, and one stray `^` or `|` would shift every field
 * after it on the receiving side.
 */

/** The encoding characters we always send in MSH-1/MSH-2. */
export const HL7_DELIMITERS = {
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
} as const;

export interface Hl7Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

/**
 * Escapes delimiters as \F\ \S\ \R\ \E\ \T\ and control characters (CR, LF, the MLLP frame bytes 0x0B and
 * 0x1C, ...) as hex \Xhh\: a CR in a value would otherwise end the segment, and a 0x1C would end the
 * MLLP frame.
 */
export function escapeHl7(value: string, delimiters: Hl7Delimiters = HL7_DELIMITERS): string {
  let out = '';
  for (const char of value) {
    if (char === delimiters.escape) out += `${delimiters.escape}E${delimiters.escape}`;
    else if (char === delimiters.field) out += `${delimiters.escape}F${delimiters.escape}`;
    else if (char === delimiters.component) out += `${delimiters.escape}S${delimiters.escape}`;
    else if (char === delimiters.repetition) out += `${delimiters.escape}R${delimiters.escape}`;
    else if (char === delimiters.subcomponent) out += `${delimiters.escape}T${delimiters.escape}`;
    else if (isControl(char)) out += `${delimiters.escape}X${hex2(char)}${delimiters.escape}`;
    else out += char;
  }
  return out;
}

/**
 * Reverses escapeHl7 for text we receive (ACK MSA-3, ERR user messages). Formatting sequences (\H\, \N\,
 * \.br\ ...) become what a log line can show; unknown sequences are dropped, as v2.5.1 2.7.4 allows.
 */
export function unescapeHl7(value: string, delimiters: Hl7Delimiters = HL7_DELIMITERS): string {
  const esc = delimiters.escape;
  if (!value.includes(esc)) return value;
  let out = '';
  let i = 0;
  while (i < value.length) {
    const char = value[i] as string;
    if (char !== esc) {
      out += char;
      i += 1;
      continue;
    }
    const end = value.indexOf(esc, i + 1);
    if (end < 0) {
      // A lone escape character: keep the rest as it is rather than lose text an admin should read.
      out += value.slice(i);
      break;
    }
    out += decodeSequence(value.slice(i + 1, end), delimiters);
    i = end + 1;
  }
  return out;
}

function decodeSequence(sequence: string, d: Hl7Delimiters): string {
  switch (sequence) {
    case 'F':
      return d.field;
    case 'S':
      return d.component;
    case 'R':
      return d.repetition;
    case 'E':
      return d.escape;
    case 'T':
      return d.subcomponent;
    case 'H':
    case 'N':
      return '';
    case '.br':
      return '\n';
    default:
      if (/^X([0-9A-Fa-f]{2})+$/.test(sequence)) {
        let decoded = '';
        for (let k = 1; k < sequence.length; k += 2)
          decoded += String.fromCharCode(Number.parseInt(sequence.slice(k, k + 2), 16));
        return decoded;
      }
      return '';
  }
}

function isControl(char: string): boolean {
  const code = char.codePointAt(0) ?? 0;
  return code < 0x20 || code === 0x7f;
}

function hex2(char: string): string {
  return (char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(2, '0');
}
