// The ORU inputs read from the stored source image: order numbers from the Request Attributes Sequence, the
// accession number only as the configured fallback, the issuer of the patient ID, every image's group and the
// rule's priority.

import test from 'ava';
import dcmjs from 'dcmjs';
import type { NaturalDataset } from 'dcmjs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { risDestinationSchema } from '../../src/config/schema.js';
import { buildStudyReport, type StudyReportInput } from '../../src/pipeline/study-report.js';
import { makeImageFile, parseFile } from '../helpers/dicom-factory.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

process.env.TZ = 'UTC';

function sourceWith(extra: NaturalDataset): string {
  const { meta, dataset } = parseFile(makeImageFile({ rows: 16, columns: 16, accessionNumber: 'ACC77' }).bytes);
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset({ ...dataset, ...extra });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'study-report-'));
  const file = path.join(dir, 'source.dcm');
  writeFileSync(file, Buffer.from(dict.write()));
  return file;
}

function written(sopInstanceUid: string, probabilities: number[], scUid?: string): StudyReportInput['result'] {
  const classes = ['COVID-19', 'pneumonia', 'normal'];
  const best = probabilities.indexOf(Math.max(...probabilities));
  return {
    sopInstanceUid,
    kind: 'written',
    classification: { classes, probabilities, logits: [0, 0, 0], predicted: classes[best] ?? 'normal' },
    explanation: { targetClass: 'normal', composite: 'isnet', logit: 1, relevanceSum: 1, absorbedShare: 0 },
    outputs: scUid
      ? [
          {
            kind: 'sc',
            path: '/x.dcm',
            sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
            sopInstanceUid: scUid,
            seriesInstanceUid: '2.25.9',
          },
        ]
      : [],
    stageMs: { decode: 0, explain: 0, write: 0 },
  };
}

function report(sourcePath: string, ris: Record<string, unknown> = {}, priority: 'urgent' | 'normal' = 'normal') {
  const first = written('1.2.3.4.1', [0.8, 0.1, 0.1], '2.25.101');
  const second = written('1.2.3.4.2', [0.1, 0.1, 0.8]);
  const { message } = buildStudyReport({
    studyInstanceUid: '1.2.3',
    revision: 0,
    sourcePath,
    result: first,
    results: [first, second],
    priority,
    manifest: { name: 'demo', version: '1.0.0', intendedUse: 'test' },
    ris: risDestinationSchema.parse({ type: 'folder', name: 'ris', path: os.tmpdir(), ...ris }),
    createdAt: new Date('2024-03-01T10:00:00Z'),
  });
  return message
    .split('\r')
    .filter(Boolean)
    .map((s) => s.split('|'));
}

const field = (segments: string[][], name: string, n: number) => segments.find((s) => s[0] === name)?.[n];

test('ORC-2/OBR-2 and ORC-3/OBR-3 are the Placer/Filler Order Numbers of the Request Attributes Sequence', (t) => {
  const segments = report(
    sourceWith({
      RequestAttributesSequence: [
        { RequestedProcedureID: 'RP1' },
        { PlacerOrderNumberImagingServiceRequest: 'PLACER-9', FillerOrderNumberImagingServiceRequest: 'FILLER-9' },
      ],
    }),
  );
  t.is(field(segments, 'ORC', 2), 'PLACER-9');
  t.is(field(segments, 'ORC', 3), 'FILLER-9');
  t.is(field(segments, 'OBR', 2), 'PLACER-9');
  t.is(field(segments, 'OBR', 3), 'FILLER-9');
  t.is(field(segments, 'OBR', 18), 'ACC77');
});

test('a missing order number falls back to the accession number, or stays empty when the site says so', (t) => {
  const onlyPlacer = sourceWith({ RequestAttributesSequence: [{ PlacerOrderNumberImagingServiceRequest: 'PL-5' }] });
  const fallback = report(onlyPlacer);
  t.is(field(fallback, 'ORC', 2), 'PL-5');
  t.is(field(fallback, 'ORC', 3), 'ACC77');
  t.is(field(fallback, 'OBR', 3), 'ACC77');
  const none = report(sourceWith({}), { orderNumberFallback: 'empty' });
  t.is(field(none, 'ORC', 2), '');
  t.is(field(none, 'ORC', 3), '');
  t.is(field(none, 'OBR', 2), '');
  t.is(field(none, 'OBR', 18), 'ACC77');
  const accession = report(sourceWith({}));
  t.is(field(accession, 'ORC', 2), 'ACC77');
  t.is(field(accession, 'OBR', 3), 'ACC77');
});

test('PID-3 carries the Issuer of Patient ID as assigning authority, and nothing there when the source has none', (t) => {
  t.is(field(report(sourceWith({ IssuerOfPatientID: 'HOSP_MRN' })), 'PID', 3), 'CXRTEST0001^^^HOSP_MRN');
  t.is(field(report(sourceWith({})), 'PID', 3), 'CXRTEST0001');
});

test('every image of the revision gets its group with its heatmap SC instance, and the rule priority is sent', (t) => {
  const segments = report(sourceWith({}), {}, 'urgent');
  const images = segments.filter((s) => s[0] === 'OBX' && s[3]?.startsWith('CXR-IMAGE^'));
  t.deepEqual(
    images.map((s) => [s[4], s[5]]),
    [
      ['1', '1.2.3.4.1'],
      ['2', '1.2.3.4.2'],
    ],
  );
  const heatmaps = segments.filter((s) => s[0] === 'OBX' && s[3]?.startsWith('CXR-HEATMAP-SOP^'));
  t.deepEqual(
    heatmaps.map((s) => [s[4], s[5]]),
    [['1', '2.25.101']],
  );
  t.is(field(segments, 'TQ1', 9), 'S^Stat^HL70485');
});

test("the RIS destination's site fields reach MSH and OBX-3; a blank site code is refused by the config", (t) => {
  const segments = report(sourceWith({}), {
    sendingApplication: 'AI_APP',
    sendingFacility: 'RADIOLOGY',
    receivingApplication: 'RIS_APP',
    receivingFacility: 'HOSPITAL',
    observationCodes: { model: { code: 'M1', text: 'Model', codingSystem: 'L' } },
    probabilityCodes: { normal: { code: 'PN', text: 'Normal probability', codingSystem: 'L' } },
  });
  t.deepEqual(segments[0]?.slice(2, 6), ['AI_APP', 'RADIOLOGY', 'RIS_APP', 'HOSPITAL']);
  const obx3 = segments.filter((s) => s[0] === 'OBX').map((s) => s[3]);
  t.true(obx3.includes('M1^Model^L'));
  t.true(obx3.includes('PN^Normal probability^L'));
  t.false(obx3.some((c) => c?.startsWith('CXR-MODEL^') || c?.startsWith('CXR-PROB-NORMAL^')));
  t.false(
    risDestinationSchema.safeParse({
      type: 'folder',
      name: 'r',
      path: '/tmp',
      observationCodes: { model: { code: ' ' } },
    }).success,
  );
  t.false(
    risDestinationSchema.safeParse({
      type: 'folder',
      name: 'r',
      path: '/tmp',
      observationCodes: { study: { code: 'X' } },
    }).success,
  );
});
