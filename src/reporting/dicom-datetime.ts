// DA / TM / DT values of the moment an output is created. Local time, deliberately: the objects carry dates and
// times copied from the source (StudyDate, StudyTime) that are in the site's local time, and DICOM has one
// TimezoneOffsetFromUTC for the whole instance, so our own values must be in the same local time. The moment is
// passed in (never read from the clock here) so that the same inputs give the same bytes.

export interface DicomMoment {
  /** YYYYMMDD */
  date: string;
  /** HHMMSS */
  time: string;
  /** YYYYMMDDHHMMSS */
  dateTime: string;
}

export function dicomMoment(at: Date): DicomMoment {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const date = `${p(at.getFullYear(), 4)}${p(at.getMonth() + 1)}${p(at.getDate())}`;
  const time = `${p(at.getHours())}${p(at.getMinutes())}${p(at.getSeconds())}`;
  return { date, time, dateTime: `${date}${time}` };
}
