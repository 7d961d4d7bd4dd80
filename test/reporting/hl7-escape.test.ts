import test from 'ava';
import { escapeHl7, unescapeHl7 } from '../../src/reporting/hl7-escape.js';

test('escapes each delimiter with its HL7 sequence', (t) => {
  t.is(escapeHl7('a|b'), 'a\\F\\b');
  t.is(escapeHl7('a^b'), 'a\\S\\b');
  t.is(escapeHl7('a~b'), 'a\\R\\b');
  t.is(escapeHl7('a\\b'), 'a\\E\\b');
  t.is(escapeHl7('a&b'), 'a\\T\\b');
  t.is(escapeHl7('|^~\\&'), '\\F\\\\S\\\\R\\\\E\\\\T\\');
});

test('writes CR, LF and the MLLP frame bytes as hex, so they can end neither a segment nor a frame', (t) => {
  t.is(escapeHl7('line1\rline2\n'), 'line1\\X0D\\line2\\X0A\\');
  t.is(escapeHl7('\x0b\x1c'), '\\X0B\\\\X1C\\');
});

test('leaves ordinary text, including non-ASCII letters, alone', (t) => {
  t.is(escapeHl7('Müller-Lüdenscheidt, J. (1.2.840)'), 'Müller-Lüdenscheidt, J. (1.2.840)');
});

test('unescape reverses escape', (t) => {
  for (const value of ['', 'plain', '|^~\\&', "O'Brien|X^Mary~&\\", 'a\rb\nc\x0b\x1c', '\\\\E\\']) {
    t.is(unescapeHl7(escapeHl7(value)), value, JSON.stringify(value));
  }
});

test('unescape drops formatting sequences it cannot show and keeps a lone escape character', (t) => {
  t.is(unescapeHl7('\\H\\bold\\N\\ text'), 'bold text');
  t.is(unescapeHl7('line\\.br\\next'), 'line\nnext');
  t.is(unescapeHl7('C:\\path'), 'C:\\path');
});

test('unescape honours other delimiters', (t) => {
  const d = { field: '#', component: '$', repetition: '*', escape: '!', subcomponent: '%' };
  t.is(unescapeHl7('a!F!b!S!c!E!', d), 'a#b$c!');
  t.is(escapeHl7('a#b$c!', d), 'a!F!b!S!c!E!');
});
