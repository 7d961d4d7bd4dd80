import test from 'ava';
import { numberPlaceholders } from '../../../src/store/postgres/placeholders.js';

test('each ? outside quotes becomes $1..$n in order', (t) => {
  t.deepEqual(numberPlaceholders('SELECT * FROM t WHERE a = ? AND b IN (?, ?)'), {
    text: 'SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)',
    count: 3,
  });
});

test('a ? inside a string literal, a quoted identifier, a comment or a dollar quote stays', (t) => {
  const sql = `SELECT '?', 'it''s ?', "col?" , ? -- what?
    /* and ? here */ , $$ ? $$, $tag$ ? $tag$, ?`;
  const { text, count } = numberPlaceholders(sql);
  t.is(count, 2);
  t.is(
    text,
    `SELECT '?', 'it''s ?', "col?" , $1 -- what?
    /* and ? here */ , $$ ? $$, $tag$ ? $tag$, $2`,
  );
});

test('a placeholder right after an operator counts; an unterminated literal runs to the end', (t) => {
  t.deepEqual(numberPlaceholders('UPDATE t SET a=?,b=?'), { text: 'UPDATE t SET a=$1,b=$2', count: 2 });
  t.deepEqual(numberPlaceholders("SELECT ?, 'open ?"), { text: "SELECT $1, 'open ?", count: 1 });
});
