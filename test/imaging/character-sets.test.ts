// Text never decides whether pixels can be read: a character set dcmjs refuses (ISO 2022 code extensions, unknown
// terms), at the top level or inside a sequence item, must not fail the image.

import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from '../helpers/run-command.js';
import { readImage } from '../../src/imaging/read-image.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { PATIENT_NAME, SPECIFIC_CHARACTER_SET, STANDARD_EXAMPLES, withRawElements } from '../dicom/charset-fixtures.js';

const REQUEST_ATTRIBUTES_SEQUENCE = 0x00400275;

function image(
  charset: string,
  name: Buffer,
  transferSyntax: 'explicit' | 'implicit' = 'explicit',
): { plain: Buffer; withText: Buffer } {
  const plain = makeImageFile({ rows: 32, columns: 24, transferSyntax, seed: 7 }).bytes;
  const withText = withRawElements(plain, [
    { tag: SPECIFIC_CHARACTER_SET, vr: 'CS', bytes: Buffer.from(charset, 'latin1') },
    { tag: PATIENT_NAME, vr: 'PN', bytes: name },
  ]);
  return { plain, withText };
}

const CASES: Array<[string, string, Buffer]> = [
  ...Object.entries(STANDARD_EXAMPLES).map(([name, e]): [string, string, Buffer] => [name, e.charset, e.bytes]),
  ['unknown term', 'ISO_IR 999', Buffer.from('Jos\xe9', 'latin1')],
  ['Cyrillic without extensions', 'ISO_IR 144', Buffer.from('bbeeda', 'hex')],
];

for (const [name, charset, bytes] of CASES) {
  for (const syntax of ['explicit', 'implicit'] as const) {
    test(`pixels read the same with ${name} text (${charset}, ${syntax} VR)`, (t) => {
      const { plain, withText } = image(charset, bytes, syntax);
      const expected = readImage(plain);
      const actual = readImage(withText);
      t.deepEqual(Array.from(actual.values), Array.from(expected.values));
      t.is(actual.rows, 32);
    });
  }
}

test('a multi-valued character set inside a sequence item (defined lengths) does not fail the image either', (t) => {
  const plain = makeImageFile({ rows: 16, columns: 16 }).bytes;
  const charset = Buffer.from('ISO 2022 IR 13\\ISO 2022 IR 87 ', 'latin1'); // padded to an even length
  const element = Buffer.concat([
    Buffer.from([0x08, 0x00, 0x05, 0x00]),
    Buffer.from('CS'),
    Buffer.from([charset.length, 0]),
    charset,
  ]);
  const item = Buffer.concat([Buffer.from([0xfe, 0xff, 0x00, 0xe0]), Buffer.alloc(4), element]);
  item.writeUInt32LE(element.length, 4);
  const file = withRawElements(plain, [{ tag: REQUEST_ATTRIBUTES_SEQUENCE, vr: 'SQ', bytes: item }]);
  t.is(readImage(file).rows, 16);
});

test('a deflated dataset with ISO 2022 code extensions reads too (patched inflated, deflated again)', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'deflated-charset-'));
  const example = STANDARD_EXAMPLES.japaneseIr87;
  const { plain, withText } = image(example.charset, example.bytes);
  writeFileSync(path.join(dir, 'in.dcm'), withText);
  const converted = await runCommand('dcmconv', ['+td', path.join(dir, 'in.dcm'), path.join(dir, 'deflated.dcm')]);
  t.is(converted.code, 0, converted.stderr);
  const deflated = readFileSync(path.join(dir, 'deflated.dcm'));
  t.true(deflated.includes(Buffer.from('1.2.840.10008.1.2.1.99')), 'the file really is deflated');
  t.deepEqual(Array.from(readImage(deflated).values), Array.from(readImage(plain).values));
});
