// docs/hl7-interface.md against the message itself: an ORU built from a stored source image goes over MLLP to the
// python3-hl7 listener, and what arrived is parsed with python3-hl7 and checked field by field, one check per row
// of the mapping table.

import test from 'ava';
import dcmjs from 'dcmjs';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { risDestinationSchema } from '../../src/config/schema.js';
import { buildStudyReport, type StudyReportInput } from '../../src/pipeline/study-report.js';
import { MllpSender } from '../../src/reporting/mllp-sender.js';
import { packageRoot } from '../../src/reporting/package-root.js';
import { makeImageFile, parseFile } from '../helpers/dicom-factory.js';
import { startHl7Listener } from '../helpers/hl7-listener.js';
import { checkOru, type FieldCheck } from '../helpers/hl7-oru-check.js';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

process.env.TZ = 'UTC';

const STUDY = '1.2.826.0.1.3680043.8.498.19';
const CLASSES = ['COVID-19', 'pneumonia', 'normal'];

function source(): string {
  const { meta, dataset } = parseFile(
    makeImageFile({ rows: 16, columns: 16, studyInstanceUid: STUDY, accessionNumber: 'ACC|19' }).bytes,
  );
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset({
    ...dataset,
    PatientName: 'Doe^Jane^Q^Dr^Jr',
    PatientID: 'MRN-4711',
    IssuerOfPatientID: 'HOSP_MRN',
    PatientBirthDate: '19700102',
    PatientSex: 'F',
    StudyDate: '20240301',
    StudyTime: '093015',
    RequestAttributesSequence: [
      { PlacerOrderNumberImagingServiceRequest: 'PL-19', FillerOrderNumberImagingServiceRequest: 'FI&19' },
    ],
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hl7-interface-'));
  const file = path.join(dir, 'source.dcm');
  writeFileSync(file, Buffer.from(dict.write()));
  return file;
}

function written(sopInstanceUid: string, probabilities: number[], scUid?: string): StudyReportInput['result'] {
  const best = probabilities.indexOf(Math.max(...probabilities));
  return {
    sopInstanceUid,
    kind: 'written',
    classification: { classes: CLASSES, probabilities, logits: [0, 0, 0], predicted: CLASSES[best] ?? 'normal' },
    explanation: { targetClass: 'pneumonia', composite: 'isnet', logit: 1, relevanceSum: 1, absorbedShare: 0 },
    outputs: scUid
      ? [
          {
            kind: 'sc',
            path: '/x.dcm',
            sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
            sopInstanceUid: scUid,
            seriesInstanceUid: '2.25.77',
          },
        ]
      : [],
    stageMs: { decode: 0, explain: 0, write: 0 },
  };
}

/** The rows' keys of the mapping table: the first column, in backticks. */
function documentedKeys(): string[] {
  const doc = readFileSync(path.join(packageRoot(), 'docs/hl7-interface.md'), 'utf8');
  return [...doc.matchAll(/^\| `([A-Z0-9]+(?:\([a-z-]+\))?-\d+(?:\.\d+)?)` \|/gm)].map((m) => m[1] ?? '');
}

test('python3-hl7 reads every field of the mapping table as documented, after the ORU went over MLLP', async (t) => {
  // Summary first: the strongest finding (lowest "normal") is the second image, which has the heatmap SC.
  const first = written('1.2.3.4.1', [0.1, 0.2, 0.7]);
  const second = written('1.2.3.4.2', [0.05, 0.9, 0.05], '2.25.102');
  const ris = risDestinationSchema.parse({
    type: 'mllp',
    name: 'ris',
    host: '127.0.0.1',
    port: 2575,
    sendingApplication: 'AI_APP',
    sendingFacility: 'RADIOLOGY',
    receivingApplication: 'RIS_APP',
    receivingFacility: 'HOSPITAL',
  });
  const { message, controlId } = buildStudyReport({
    studyInstanceUid: STUDY,
    revision: 1,
    sourcePath: source(),
    result: second,
    results: [first, second],
    priority: 'urgent',
    manifest: { name: 'DenseNet-201', version: '1.2.0', intendedUse: 'Not for diagnostic use.' },
    ris,
    createdAt: new Date('2024-03-01T10:00:00Z'),
  });

  const listener = await startHl7Listener({ responses: ['aa'] });
  t.teardown(() => listener.stop());
  const sender = new MllpSender({
    host: '127.0.0.1',
    port: listener.port,
    connectTimeoutMs: 1_000,
    responseTimeoutMs: 5_000,
    ackMode: 'original',
  });
  await sender.start();
  t.teardown(() => sender.stop());
  t.deepEqual(await sender.send(message, controlId), { kind: 'accepted', ackCode: 'AA' });
  const [received] = await listener.waitForMessages(1);
  if (received === undefined) return t.fail('the listener received nothing');

  // OBX layout: 1 study, 2 class, 3-5 probabilities, 6 heatmap series, 7 model; image 1: 8 image, 9 class,
  // 10-12 probabilities; image 2: 13 image, 14 class, 15-17 probabilities, 18 heatmap SC.
  const f = (key: string, segment: string, occurrence: number, field: number, expected: string, component = 1) =>
    ({ key, segment, occurrence, field, component, expected }) satisfies FieldCheck;
  const seg = (key: string, field: number, expected: string, component = 1) =>
    f(key, key.split('-')[0] ?? '', 1, field, expected, component);
  const checks: FieldCheck[] = [
    seg('MSH-3', 3, 'AI_APP'),
    seg('MSH-4', 4, 'RADIOLOGY'),
    seg('MSH-5', 5, 'RIS_APP'),
    seg('MSH-6', 6, 'HOSPITAL'),
    seg('MSH-7', 7, '20240301100000+0000'),
    seg('MSH-9.1', 9, 'ORU', 1),
    seg('MSH-9.2', 9, 'R01', 2),
    seg('MSH-9.3', 9, 'ORU_R01', 3),
    seg('MSH-10', 10, controlId),
    seg('MSH-11', 11, 'P'),
    seg('MSH-12', 12, '2.5.1'),
    seg('MSH-15', 15, 'AL'),
    seg('MSH-16', 16, 'NE'),
    seg('PID-1', 1, '1'),
    seg('PID-3.1', 3, 'MRN-4711', 1),
    seg('PID-3.4', 3, 'HOSP_MRN', 4),
    seg('PID-5.1', 5, 'Doe', 1),
    seg('PID-5.2', 5, 'Jane', 2),
    seg('PID-7', 7, '19700102'),
    seg('PID-8', 8, 'F'),
    seg('ORC-1', 1, 'RE'),
    seg('ORC-2', 2, 'PL-19'),
    seg('ORC-3', 3, 'FI&19'),
    seg('ORC-5', 5, 'CM'),
    seg('OBR-1', 1, '1'),
    seg('OBR-2', 2, 'PL-19'),
    seg('OBR-3', 3, 'FI&19'),
    seg('OBR-4.1', 4, 'CXR-AI', 1),
    seg('OBR-4.2', 4, 'Chest X-ray AI classification', 2),
    seg('OBR-7', 7, '20240301093015'),
    seg('OBR-18', 18, 'ACC|19'),
    seg('OBR-22', 22, '20240301100000+0000'),
    seg('OBR-24', 24, 'RAD'),
    seg('OBR-25', 25, 'C'),
    seg('OBR-27.6', 27, 'S', 6),
    seg('NTE-1', 1, '1'),
    seg('NTE-2', 2, 'L'),
    seg('NTE-3', 3, 'Not for diagnostic use.'),
    seg('TQ1-1', 1, '1'),
    seg('TQ1-9.1', 9, 'S', 1),
    seg('TQ1-9.2', 9, 'Stat', 2),
    seg('TQ1-9.3', 9, 'HL70485', 3),
    f('OBX-1', 'OBX', 18, 1, '18'),
    f('OBX-11', 'OBX', 18, 11, 'C'),
    f('OBX(study)-2', 'OBX', 1, 2, 'ST'),
    f('OBX(study)-3', 'OBX', 1, 3, '113014'),
    f('OBX(study)-5', 'OBX', 1, 5, STUDY),
    f('OBX(class)-2', 'OBX', 2, 2, 'CWE'),
    f('OBX(class)-3', 'OBX', 2, 3, 'CXR-CLASS'),
    f('OBX(class)-5.1', 'OBX', 2, 5, '233604007', 1),
    f('OBX(class)-5.2', 'OBX', 2, 5, 'Pneumonia', 2),
    f('OBX(class)-5.3', 'OBX', 2, 5, 'SCT', 3),
    f('OBX(class)-5.9', 'OBX', 2, 5, 'pneumonia', 9),
    f('OBX(probability)-2', 'OBX', 4, 2, 'NM'),
    f('OBX(probability)-3', 'OBX', 4, 3, 'CXR-PROB-PNEUMONIA'),
    f('OBX(probability)-5', 'OBX', 4, 5, '0.9'),
    f('OBX(probability)-6.1', 'OBX', 4, 6, '1', 1),
    f('OBX(probability)-6.3', 'OBX', 4, 6, 'UCUM', 3),
    f('OBX(heatmap-series)-3', 'OBX', 6, 3, 'CXR-HEATMAP'),
    f('OBX(heatmap-series)-5', 'OBX', 6, 5, '2.25.77'),
    f('OBX(model)-3', 'OBX', 7, 3, 'CXR-MODEL'),
    f('OBX(model)-5', 'OBX', 7, 5, 'DenseNet-201 1.2.0'),
    f('OBX(image)-2', 'OBX', 8, 2, 'ST'),
    f('OBX(image)-3', 'OBX', 8, 3, 'CXR-IMAGE'),
    f('OBX(image)-4', 'OBX', 13, 4, '2'),
    f('OBX(image)-5', 'OBX', 8, 5, '1.2.3.4.1'),
    f('OBX(image-class)-4', 'OBX', 9, 4, '1'),
    f('OBX(image-class)-5.1', 'OBX', 9, 5, '17621005', 1),
    f('OBX(image-probability)-4', 'OBX', 16, 4, '2'),
    f('OBX(image-probability)-5', 'OBX', 16, 5, '0.9'),
    f('OBX(heatmap-image)-3', 'OBX', 18, 3, 'CXR-HEATMAP-SOP'),
    f('OBX(heatmap-image)-4', 'OBX', 18, 4, '2'),
    f('OBX(heatmap-image)-5', 'OBX', 18, 5, '2.25.102'),
  ];

  t.deepEqual(
    [...checks.map((c) => c.key)].sort(),
    [...documentedKeys()].sort(),
    'one check per row of docs/hl7-interface.md',
  );
  const result = checkOru(received.raw, checks);
  t.deepEqual(result.errors, []);
  t.is(result.checked, checks.length);
});

test('the checker fails a field that is not as documented (it can fail)', (t) => {
  const message = 'MSH|^~\\&|A||||20240301||ORU^R01^ORU_R01|X|P|2.5.1\rPID|1\rORC|RE\rOBR|1\rOBX|2|NM|X||high|1\r';
  const result = checkOru(message, [
    { key: 'MSH-3', segment: 'MSH', occurrence: 1, field: 3, expected: 'B' },
    { key: 'PID-3.4', segment: 'PID', occurrence: 1, field: 3, component: 4, expected: 'HOSP' },
  ]);
  t.deepEqual(result.errors, [
    "MSH-3: 'A', expected 'B'",
    "PID-3.4: '', expected 'HOSP'",
    "OBX #1: OBX-1 is '2'",
    "OBX #1: NM value 'high' is not a number",
    'OBX #1: NM without UCUM units',
  ]);
});
