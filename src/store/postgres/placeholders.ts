// The store's SQL is written once with SQLite's `?` placeholders; PostgreSQL numbers its own ($1, $2, ...). A `?`
// is a placeholder only in the SQL text itself: inside a string literal ('it''s ?'), a quoted identifier ("a?"),
// a dollar-quoted body ($$ ? $$) or a comment it is just a character and stays as it is.

export interface NumberedSql {
  text: string;
  /** How many placeholders the statement has, so that a wrong argument count fails before a round trip. */
  count: number;
}

export function numberPlaceholders(sql: string): NumberedSql {
  let text = '';
  let count = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (c === "'" || c === '"') {
      // A doubled quote inside a literal or identifier is the escaped quote itself, so the scan simply
      // reads on to the next quote: '' closes and reopens at once, with nothing in between.
      const end = sql.indexOf(c, i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      text += sql.slice(i, stop);
      i = stop;
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? sql.length : end + 1;
      text += sql.slice(i, stop);
      i = stop;
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end === -1 ? sql.length : end + 2;
      text += sql.slice(i, stop);
      i = stop;
    } else if (c === '$' && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? ' ')) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag === null) {
        text += c;
        i += 1;
        continue;
      }
      const end = sql.indexOf(tag[0], i + tag[0].length);
      const stop = end === -1 ? sql.length : end + tag[0].length;
      text += sql.slice(i, stop);
      i = stop;
    } else if (c === '?') {
      count += 1;
      text += `$${count}`;
      i += 1;
    } else {
      text += c;
      i += 1;
    }
  }
  return { text, count };
}
