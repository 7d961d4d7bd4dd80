import test from 'ava';
import { characterSetOf, decodeText } from '../../src/dicom/character-sets.js';
import { STANDARD_EXAMPLES, hex } from './charset-fixtures.js';

const terms = (value: string) => characterSetOf(value.split('\\'));

for (const [name, example] of Object.entries(STANDARD_EXAMPLES)) {
  test(`PS3.5 example ${name} (${example.charset}) decodes to its Unicode text`, (t) => {
    const decoded = decodeText(example.bytes, terms(example.charset), 'PN');
    t.deepEqual(decoded.values, [example.text]);
    t.deepEqual(decoded.warnings, []);
  });
}

const SINGLE_BYTE: ReadonlyArray<[string, string, string]> = [
  ['ISO_IR 100', '4275635e4ae972f46d65', 'Buc^Jérôme'],
  ['ISO_IR 101', '5761b3ea73615e4c656368', 'Wałęsa^Lech'],
  ['ISO_IR 109', 'a1616c5e47b1617267b17572', 'Ħal^Għargħur'],
  ['ISO_IR 110', 'd3ba6e69f1b95e4ae06e6973', 'Ķēniņš^Jānis'],
  ['ISO_IR 144', 'bbeeda6365dcd1e3e0d3', 'Люкceмбург'],
  ['ISO_IR 127', 'e2c8c7e6ea5ee4e6d2c7d1', 'قباني^لنزار'],
  ['ISO_IR 126', 'c4e9efedf5f3e9eff2', 'Διονυσιος'],
  ['ISO_IR 138', 'f9f8e5ef5ee3e1e5f8e4', 'שרון^דבורה'],
  ['ISO_IR 148', 'c761f072fd5ed66d6572', 'Çağrı^Ömer'],
  ['ISO_IR 203', 'bc757672655ea4', 'Œuvre^€'],
  ['ISO_IR 166', 'b9d2c25ecac1aad2c2', 'นาย^สมชาย'],
  ['ISO_IR 13', 'd4cfc0de5ec0dbb3', 'ﾔﾏﾀﾞ^ﾀﾛｳ'],
  ['ISO_IR 192', '57616e675e5869616f446f6e673de78e8b5ee5b08fe69db13d', 'Wang^XiaoDong=王^小東='],
  ['GBK', '4c695e4875613dc0ee5ebbaa3d', 'Li^Hua=李^华='],
];

for (const [term, bytes, text] of SINGLE_BYTE) {
  test(`${term} decodes without code extensions`, (t) => {
    t.deepEqual(decodeText(hex(bytes), terms(term), 'PN').values, [text]);
  });
}

test('ISO-IR 100 is ISO 8859-1 proper, not windows-1252 (0x80-0x9F are not typographic quotes)', (t) => {
  t.is(decodeText(hex('93'), terms('ISO_IR 100'), 'LO').values[0], '\u0093');
});

test('ISO 2022 single-byte G1 sets switch by escape sequence within one value (PS3.5 6.1.2.5)', (t) => {
  const bytes = hex('44696f6e7973696f733d 1b2d46 c4e9efedf5f3e9eff2');
  t.deepEqual(decodeText(bytes, terms('ISO 2022 IR 100\\ISO 2022 IR 126'), 'PN').values, ['Dionysios=Διονυσιος']);
});

test('a backslash inside a two-byte JIS character is not a value delimiter; outside it is', (t) => {
  // 俑 is 0x50 0x5C in JIS X 0208.
  const bytes = Buffer.concat([hex('1b2442 505c 1b2842'), Buffer.from('\\B')]);
  t.deepEqual(decodeText(bytes, terms('\\ISO 2022 IR 87'), 'LO').values, ['俑', 'B']);
});

test('a GBK trail byte 0x5C is part of its character (乗), not a delimiter', (t) => {
  t.deepEqual(decodeText(hex('815c 5c 41'), terms('GBK'), 'LO').values, ['乗', 'A']);
});

test('delimiters return to the initial set when a sender forgot to switch back (single-byte G0)', (t) => {
  // Greek designated into G1, then a caret with no ESC - A before it: after it, G1 is Latin-1 again.
  const charset = terms('ISO 2022 IR 100\\ISO 2022 IR 126');
  t.deepEqual(decodeText(hex('1b2d46 c4 5e c4'), charset, 'PN').values, ['Δ^Ä']);
  // For free text, CR LF resets too, and the backslash is a character.
  t.deepEqual(decodeText(hex('1b2d46 c4 0d0a c4 5c c4'), charset, 'LT').values, ['Δ\r\nÄ\\Ä']);
  // A caret is no delimiter outside a Person Name.
  t.deepEqual(decodeText(hex('1b2d46 c4 5e c4'), charset, 'LO').values, ['Δ^Δ']);
});

test('inside two-byte JIS X 0208 a caret byte belongs to a character: only a conformant switch back ends it', (t) => {
  const bytes = Buffer.concat([hex('1b2442 3b334544 1b2842'), Buffer.from('^Tarou')]);
  t.deepEqual(decodeText(bytes, terms('\\ISO 2022 IR 87'), 'PN').values, ['山田^Tarou']);
});

test('JIS X 0212 (ISO 2022 IR 159) decodes through its own escape sequence', (t) => {
  // JIS X 0212 0x3021 is 丂 (U+4E02).
  t.deepEqual(decodeText(hex('1b242844 3021 1b2842'), terms('\\ISO 2022 IR 159'), 'LO').values, ['丂']);
});

test('an unknown term, an unknown escape sequence and a cut-off escape decode anyway, with warnings', (t) => {
  const unknown = terms('ISO_IR 999');
  t.is(unknown.warnings.length, 1);
  t.regex(unknown.warnings[0] ?? '', /unknown Specific Character Set term "ISO_IR 999"/);
  t.deepEqual(decodeText(hex('4a e9'), unknown, 'LO').values, ['Jé']);
  const escapes = decodeText(hex('41 1b285a 42 1b24'), terms(''), 'LO');
  t.deepEqual(escapes.values, ['AB']);
  t.is(escapes.warnings.length, 2);
  for (const w of escapes.warnings) t.notRegex(w, /A|B/, 'warnings never carry the text');
});

test('values are split and trimmed of padding; free text keeps leading spaces', (t) => {
  t.deepEqual(decodeText(Buffer.from(' A \\B\0'), terms(''), 'LO').values, ['A', 'B']);
  t.deepEqual(decodeText(Buffer.from('  indented \\ text  '), terms(''), 'ST').values, ['  indented \\ text']);
});

test('term spellings are normalised (ISO_IR / ISO 2022 IR / case)', (t) => {
  t.deepEqual(decodeText(hex('c4e9'), terms('iso 2022 ir 126'), 'LO').values, ['Δι']);
  t.deepEqual(decodeText(hex('c4e9'), terms('ISO-IR 126'), 'LO').values, ['Δι']);
});

test('2,000 random byte strings under every defined term and random escapes never throw (text never fails an image)', (t) => {
  const allTerms = [
    '',
    'ISO_IR 100',
    'ISO_IR 101',
    'ISO_IR 109',
    'ISO_IR 110',
    'ISO_IR 144',
    'ISO_IR 127',
    'ISO_IR 126',
    'ISO_IR 138',
    'ISO_IR 148',
    'ISO_IR 203',
    'ISO_IR 13',
    'ISO_IR 166',
    'ISO_IR 192',
    'GB18030',
    'GBK',
    'ISO 2022 IR 6\\ISO 2022 IR 87',
    'ISO 2022 IR 13\\ISO 2022 IR 87\\ISO 2022 IR 159',
    '\\ISO 2022 IR 149',
    '\\ISO 2022 IR 58',
    'ISO 2022 IR 100\\ISO 2022 IR 126\\ISO 2022 IR 144',
    'BOGUS\\ALSO BOGUS',
  ];
  const escapes = [
    '1b2842',
    '1b284a',
    '1b2442',
    '1b242844',
    '1b2949',
    '1b2d41',
    '1b2d46',
    '1b2d4c',
    '1b242943',
    '1b242941',
    '1b2d54',
    '1b',
    '1b24',
    '1b2428',
  ];
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  let decoded = 0;
  for (let i = 0; i < 2000; i++) {
    const parts: Buffer[] = [];
    const pieces = 1 + Math.floor(random() * 6);
    for (let p = 0; p < pieces; p++) {
      if (random() < 0.4) parts.push(hex(escapes[Math.floor(random() * escapes.length)] ?? ''));
      parts.push(Buffer.from(Array.from({ length: Math.floor(random() * 12) }, () => Math.floor(random() * 256))));
    }
    const bytes = Buffer.concat(parts);
    const charset = terms(allTerms[i % allTerms.length] ?? '');
    for (const vr of ['PN', 'LO', 'LT']) {
      const result = decodeText(bytes, charset, vr);
      if (!result.values.every((v) => typeof v === 'string')) t.fail(`not strings for ${bytes.toString('hex')}`);
      decoded++;
    }
  }
  t.is(decoded, 6000);
});
