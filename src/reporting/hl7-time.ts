import { GatewayError } from '../errors.js';

/**
 * A point in time for an HL7 DTM field: a Date (rendered in the gateway's local time with its UTC offset,
 * so the RIS never has to guess the zone) or an HL7 DTM string that is already right, such as the one
 * dicomDateTimeToHl7 makes from StudyDate/StudyTime (which DICOM gives without a zone).
 */
export type Hl7DateTime = Date | string;

// YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ] (v2.5.1 2.A.22)
const DTM = /^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,4})?)?)?)?)?)?([+-]\d{4})?$/;

/** Renders a Date as YYYYMMDDHHMMSS+ZZZZ in local time. */
export function formatHl7DateTime(date: Date): string {
  if (Number.isNaN(date.getTime()))
    throw new GatewayError('HL7_BAD_TIME', 'cannot put an invalid date into an HL7 message');
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return (
    `${pad(date.getFullYear(), 4)}${pad(date.getMonth() + 1)}${pad(date.getDate())}` +
    `${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
  );
}

/** A Date, or a DTM string checked against the HL7 grammar (a malformed time is refused, not sent). */
export function toHl7DateTime(value: Hl7DateTime, what: string): string {
  if (value instanceof Date) return formatHl7DateTime(value);
  const trimmed = value.trim();
  if (!DTM.test(trimmed)) {
    throw new GatewayError(
      'HL7_BAD_TIME',
      `${what} '${value}' is not an HL7 date/time (YYYYMMDD[HHMM[SS[.SSSS]]][+ZZZZ])`,
    );
  }
  return trimmed;
}

/**
 * DICOM DA (YYYYMMDD) and TM (HHMMSS.FFFFFF, possibly shortened or in the old HH:MM:SS form) to an HL7 DTM
 * string. The fraction is cut to the four digits HL7 allows. DICOM times carry no zone, so neither does
 * the result (the RIS reads it as its local time, as it does the same study's DICOM header).
 */
export function dicomDateTimeToHl7(date: string, time = ''): string {
  const da = date.trim().replace(/\./g, '');
  if (!/^\d{8}$/.test(da)) throw new GatewayError('HL7_BAD_TIME', `DICOM date '${date}' is not YYYYMMDD`);
  const trimmed = time.trim();
  if (trimmed === '') return da;
  // The old ACR-NEMA form HH:MM:SS is still met; its colons go only between two-digit parts.
  if (trimmed.includes(':') && !/^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$/.test(trimmed)) {
    throw new GatewayError('HL7_BAD_TIME', `DICOM time '${time}' is not HHMMSS.FFFFFF`);
  }
  const tm = trimmed.replace(/:/g, '');
  const match = /^(\d{2}(?:\d{2}(?:\d{2})?)?)(?:\.(\d{1,6}))?$/.exec(tm);
  if (!match) throw new GatewayError('HL7_BAD_TIME', `DICOM time '${time}' is not HHMMSS.FFFFFF`);
  const whole = match[1] ?? '';
  const fraction = match[2] !== undefined && whole.length === 6 ? `.${match[2].slice(0, 4)}` : '';
  return `${da}${whole}${fraction}`;
}
