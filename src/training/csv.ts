/**
 * A CSV table (RFC 4180: commas, double-quoted fields with "" escapes, CRLF or LF), first row the header.
 * Enough for labels files and NIH's Data_Entry_2017.csv; not a general-purpose parser.
 */
export interface CsvTable {
  header: string[];
  rows: Array<Record<string, string>>;
}

export function parseCsv(text: string): CsvTable {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 1;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      record.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i += 1;
      record.push(field);
      field = '';
      if (record.length > 1 || record[0] !== '') records.push(record);
      record = [];
    } else field += ch;
  }
  record.push(field);
  if (record.length > 1 || record[0] !== '') records.push(record);
  const header = (records.shift() ?? []).map((h, i) => (i === 0 ? h.replace(/^\uFEFF/, '') : h).trim());
  const rows = records.map((values) => Object.fromEntries(header.map((h, i) => [h, (values[i] ?? '').trim()])));
  return { header, rows };
}
