import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dcmjs from 'dcmjs';
import { dcmjsReadable, readDatasetText } from '../../src/dicom/dataset-text.js';
import { walkDatasetBuffer } from '../../src/dicom/dataset-walker.js';
import { parsePart10Header } from '../../src/dicom/part10-header.js';
import { readDatasetAttributes } from '../../src/routing/dataset-attributes.js';
import { readSourceInstance } from '../../src/reporting/source-instance.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { PATIENT_NAME, SPECIFIC_CHARACTER_SET, STANDARD_EXAMPLES, hex, withRawElements } from './charset-fixtures.js';

const ACCESSION_NUMBER = 0x00080050;
const INSTITUTION_NAME = 0x00080080;

function japaneseDx(transferSyntax: 'explicit' | 'implicit' = 'explicit'): Buffer {
  const example = STANDARD_EXAMPLES.japaneseIr87;
  return withRawElements(makeImageFile({ rows: 64, columns: 64, transferSyntax }).bytes, [
    { tag: SPECIFIC_CHARACTER_SET, vr: 'CS', bytes: Buffer.from(example.charset, 'latin1') },
    { tag: PATIENT_NAME, vr: 'PN', bytes: example.bytes },
    // 山田病院 (Yamada hospital), JIS X 0208, switched back before the end.
    { tag: INSTITUTION_NAME, vr: 'LO', bytes: Buffer.from('1b24423b334544494231211b2842', 'hex') },
  ]);
}

test('dcmjs alone refuses the multi-valued character set (why we decode text ourselves)', (t) => {
  const file = japaneseDx();
  t.throws(() => dcmjs.data.DicomMessage.readFile(new Uint8Array(file).buffer), { message: /multiple character sets/ });
});

for (const syntax of ['explicit', 'implicit'] as const) {
  test(`a Japanese ISO 2022 dataset reads as Unicode text (${syntax} VR)`, (t) => {
    const text = readDatasetText(japaneseDx(syntax));
    t.deepEqual(text.characterSet, ['ISO 2022 IR 13', 'ISO 2022 IR 87']);
    t.deepEqual(text.values('00100010'), [STANDARD_EXAMPLES.japaneseIr87.text]);
    t.deepEqual(text.values('00080080'), ['山田病院']);
    t.is(text.vr('00100010'), 'PN');
    t.deepEqual(text.values('00080060'), ['DX']);
    t.deepEqual(text.values('00280010'), ['64'], 'binary VRs read as numbers');
    t.deepEqual(text.warnings, []);
  });
}

test('dcmjsReadable blanks only a character set dcmjs refuses, and leaves the pixels alone', (t) => {
  const file = japaneseDx();
  const readable = dcmjsReadable(file);
  t.not(readable, file);
  t.is(readable.length, file.length);
  const parsed = dcmjs.data.DicomMessage.readFile(new Uint8Array(readable).buffer);
  t.truthy(parsed.dict['7FE00010']);
  const header = parsePart10Header(file, 'test');
  const pixels = (b: Uint8Array) => {
    let at = -1;
    walkDatasetBuffer(Buffer.from(b).subarray(header.datasetOffset), header.transferSyntaxUid, {
      visit: (e) => (e.tag === 0x7fe00010 ? (at = e.valueOffset) : undefined),
    });
    return Buffer.from(b).subarray(header.datasetOffset + at);
  };
  t.true(pixels(readable).equals(pixels(file)));
  const plain = makeImageFile({ rows: 16, columns: 16 }).bytes;
  t.is(dcmjsReadable(plain), plain, 'no copy when dcmjs can read the file as it is');
  const latin1 = withRawElements(plain, [{ tag: SPECIFIC_CHARACTER_SET, vr: 'CS', bytes: Buffer.from('ISO_IR 100') }]);
  t.is(dcmjsReadable(latin1), latin1);
});

test('routing attributes decode text with the character set; the key attributes of the walker too', (t) => {
  const file = withRawElements(japaneseDx(), [
    { tag: ACCESSION_NUMBER, vr: 'SH', bytes: hex('1b2442 3b33 1b2842 3132') },
  ]);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dataset-text-'));
  const filePath = path.join(dir, 'jp.dcm');
  writeFileSync(filePath, file);
  const attribute = readDatasetAttributes(filePath);
  t.deepEqual(attribute('00080080'), ['山田病院']);
  t.deepEqual(attribute('00100010'), ['Yamada^Tarou'], 'a Person Name is routed on its alphabetic group');
  t.deepEqual(attribute('00080050'), ['山12']);
  t.is(attribute('00091010'), undefined);
  const header = parsePart10Header(file, 'test');
  const walked = walkDatasetBuffer(file.subarray(header.datasetOffset), header.transferSyntaxUid);
  t.is(walked.attributes.accessionNumber, '山12');
  t.deepEqual(walked.characterSet, ['ISO 2022 IR 13', 'ISO 2022 IR 87']);
});

test('the source patient/study module for SC/SR/HL7 carries the decoded name groups', (t) => {
  const source = readSourceInstance(japaneseDx());
  const [name] = source.patientStudy.PatientName as Array<Record<string, string>>;
  t.like(name, { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' });
  const korean = STANDARD_EXAMPLES.korean;
  const kr = withRawElements(makeImageFile({ rows: 16, columns: 16 }).bytes, [
    { tag: SPECIFIC_CHARACTER_SET, vr: 'CS', bytes: Buffer.from(korean.charset, 'latin1') },
    { tag: PATIENT_NAME, vr: 'PN', bytes: korean.bytes },
  ]);
  const [krName] = readSourceInstance(kr).patientStudy.PatientName as Array<Record<string, string>>;
  t.like(krName, { Alphabetic: 'Hong^Gildong', Ideographic: '洪^吉洞', Phonetic: '홍^길동' });
});

test('an unknown character set term never fails reading: Latin-1 with a warning', (t) => {
  const file = withRawElements(makeImageFile({ rows: 16, columns: 16 }).bytes, [
    { tag: SPECIFIC_CHARACTER_SET, vr: 'CS', bytes: Buffer.from('ISO_IR 999') },
    { tag: PATIENT_NAME, vr: 'PN', bytes: Buffer.from('Jos\xe9^Mar\xeda', 'latin1') },
  ]);
  const text = readDatasetText(file);
  t.deepEqual(text.values('00100010'), ['José^María']);
  t.is(text.warnings.length, 1);
  const [name] = readSourceInstance(file).patientStudy.PatientName as Array<Record<string, string>>;
  t.like(name, { Alphabetic: 'José^María' });
});
