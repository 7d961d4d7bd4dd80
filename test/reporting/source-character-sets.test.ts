// Derived objects and HL7 made from a source whose text uses ISO 2022 code extensions (PS3.5 Annex H): the
// names must arrive as the same Unicode text, written as UTF-8 with ISO_IR 192 declared, and the SC/SR must
// still validate.

import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { risDestinationSchema } from '../../src/config/schema.js';
import { buildStudyReport, type StudyReportInput } from '../../src/pipeline/study-report.js';
import { writeSecondaryCapture } from '../../src/reporting/secondary-capture.js';
import { writeStructuredReport } from '../../src/reporting/structured-report.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { PATIENT_NAME, SPECIFIC_CHARACTER_SET, STANDARD_EXAMPLES, withRawElements } from '../dicom/charset-fixtures.js';
import { CLASSIFICATION, CREATED_AT, EXPLANATION, MODEL, readBack, validate } from './reporting-fixtures.js';

const REFERRING_PHYSICIAN_NAME = 0x00080090;

function source(example: (typeof STANDARD_EXAMPLES)[keyof typeof STANDARD_EXAMPLES]): Buffer {
  return withRawElements(makeImageFile({ rows: 48, columns: 40 }).bytes, [
    { tag: SPECIFIC_CHARACTER_SET, vr: 'CS', bytes: Buffer.from(example.charset, 'latin1') },
    { tag: REFERRING_PHYSICIAN_NAME, vr: 'PN', bytes: example.bytes },
    { tag: PATIENT_NAME, vr: 'PN', bytes: example.bytes },
  ]);
}

const personName = (v: unknown): string => {
  const first = Array.isArray(v) ? (v[0] as unknown) : v;
  if (typeof first === 'string') return first;
  const groups = first as { Alphabetic?: string; Ideographic?: string; Phonetic?: string };
  return [groups.Alphabetic ?? '', groups.Ideographic ?? '', groups.Phonetic ?? ''].join('=').replace(/=+$/, '');
};

for (const name of ['japaneseIr87', 'japaneseKatakana', 'korean'] as const) {
  const example = STANDARD_EXAMPLES[name];
  test(`SC and SR from a ${name} source carry the decoded names as UTF-8, and dciodvfy finds no error`, async (t) => {
    const bytes = source(example);
    const sc = writeSecondaryCapture({
      source: bytes,
      image: { rows: 8, columns: 8, data: new Uint8Array(8 * 8 * 3) },
      model: MODEL,
      classification: CLASSIFICATION,
      explanation: EXPLANATION,
      revision: 0,
      createdAt: CREATED_AT,
    });
    const scBack = readBack(sc.bytes);
    t.is(scBack.SpecificCharacterSet, 'ISO_IR 192');
    t.is(personName(scBack.PatientName), example.text.replace(/=+$/, ''));
    t.is(personName(scBack.ReferringPhysicianName), example.text.replace(/=+$/, ''));
    const scCheck = await validate(sc.bytes, 'sc.dcm');
    t.deepEqual(scCheck.errors, [], scCheck.output);
    t.false(/character|escape|repertoire/i.test(scCheck.warnings.join('\n')), scCheck.output);

    const sr = writeStructuredReport({
      images: [{ source: bytes, classification: CLASSIFICATION, explanation: EXPLANATION, heatmap: sc }],
      model: MODEL,
      revision: 0,
      createdAt: CREATED_AT,
    });
    const srBack = readBack(sr.bytes);
    t.is(srBack.SpecificCharacterSet, 'ISO_IR 192');
    t.is(personName(srBack.PatientName), example.text.replace(/=+$/, ''));
    const srCheck = await validate(sr.bytes, 'sr.dcm');
    t.deepEqual(srCheck.errors, [], srCheck.output);
  });
}

function oruPid(sourceBytes: Buffer): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'source-charsets-'));
  const sourcePath = path.join(dir, 'source.dcm');
  writeFileSync(sourcePath, sourceBytes);
  const result = {
    sopInstanceUid: '1.2.3.4',
    kind: 'written',
    classification: {
      classes: ['COVID-19', 'pneumonia', 'normal'],
      probabilities: [0.1, 0.2, 0.7],
      logits: [0, 0, 1],
      predicted: 'normal',
    },
    explanation: { targetClass: 'normal', composite: 'isnet', logit: 1, relevanceSum: 1, absorbedShare: 0 },
    outputs: [],
    stageMs: { decode: 0, explain: 0, write: 0 },
  } satisfies StudyReportInput['result'];
  const { message } = buildStudyReport({
    studyInstanceUid: '1.2.3',
    revision: 0,
    sourcePath,
    result,
    results: [result],
    priority: 'normal',
    manifest: { name: 'demo', version: '1.0.0', intendedUse: 'test' },
    ris: risDestinationSchema.parse({ type: 'folder', name: 'ris', path: dir }),
    createdAt: CREATED_AT,
  });
  return message.split(/\r/).find((segment) => segment.startsWith('PID|')) ?? '';
}

test('the HL7 ORU made from an ISO 2022 or Latin-1 source carries the decoded name in PID-5 (its alphabetic group)', (t) => {
  // hl7-oru puts the alphabetic group in PID-5 by design; what matters here is that no escape byte or mojibake reaches the RIS.
  t.is(oruPid(source(STANDARD_EXAMPLES.japaneseIr87)).split('|')[5], 'Yamada^Tarou');
  const latin1 = withRawElements(makeImageFile({ rows: 16, columns: 16 }).bytes, [
    { tag: SPECIFIC_CHARACTER_SET, vr: 'CS', bytes: Buffer.from('ISO 2022 IR 100') },
    { tag: PATIENT_NAME, vr: 'PN', bytes: Buffer.from('Buc^J\xe9r\xf4me', 'latin1') },
  ]);
  t.is(oruPid(latin1).split('|')[5], 'Buc^Jérôme');
});
