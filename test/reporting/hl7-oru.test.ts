import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import {
  buildOruR01,
  dicomPersonNameToXpn,
  dicomSexToHl7,
  formatProbability,
  type OruInput,
} from '../../src/reporting/hl7-oru.js';

process.env.TZ = 'UTC';

function input(overrides: Partial<OruInput> = {}): OruInput {
  return {
    sendingApp: 'CXR_GATEWAY',
    sendingFacility: 'HOSP',
    receivingApp: 'RIS',
    receivingFacility: 'HOSP',
    timestamp: new Date('2024-03-01T10:00:00Z'),
    controlId: 'CXR0123456789ABCDEFG',
    patient: { id: 'P123', issuer: 'HOSP_MRN', name: 'Doe^John^Q^Dr^Jr', birthDate: '19700102', sex: 'F' },
    order: {
      placer: 'PL-1',
      filler: 'FI-1',
      accession: 'ACC0001',
      procedureCode: { code: 'CXR2V', text: 'Chest X-ray 2 views', codingSystem: 'L' },
      department: 'RAD',
    },
    observationTime: '20240301093015',
    resultTime: new Date('2024-03-01T10:00:05Z'),
    studyInstanceUid: '1.2.3.4.5',
    classification: {
      predicted: 'COVID-19',
      classes: ['COVID-19', 'pneumonia', 'normal'],
      probabilities: [0.87, 0.1, 0.03],
    },
    scSeriesInstanceUid: '2.25.123',
    modelName: 'DenseNet-201',
    modelVersion: '1.2.0',
    intendedUse: 'AI research result, not for diagnostic use.',
    resultStatus: 'P',
    ...overrides,
  };
}

test('has exactly the layout of the guide, segments separated and terminated by \\r', (t) => {
  const expected = [
    'MSH|^~\\&|CXR_GATEWAY|HOSP|RIS|HOSP|20240301100000+0000||ORU^R01^ORU_R01|CXR0123456789ABCDEFG|P|2.5.1|||AL|NE',
    'PID|1||P123^^^HOSP_MRN||Doe^John^Q^Jr^Dr||19700102|F',
    'ORC|RE|PL-1|FI-1||CM',
    'OBR|1|PL-1|FI-1|CXR2V^Chest X-ray 2 views^L|||20240301093015|||||||||||ACC0001||||20240301100005+0000||RAD|P||^^^^^R',
    'NTE|1|L|AI research result, not for diagnostic use.',
    'TQ1|1||||||||R^Routine^HL70485',
    'OBX|1|ST|113014^DICOM Study^DCM||1.2.3.4.5||||||P',
    'OBX|2|CWE|CXR-CLASS^AI classification^99CXR||840539006^COVID-19^SCT^^^^^^COVID-19||||||P',
    'OBX|3|NM|CXR-PROB-COVID-19^Probability COVID-19^99CXR||0.87|1^^UCUM|||||P',
    'OBX|4|NM|CXR-PROB-PNEUMONIA^Probability pneumonia^99CXR||0.1|1^^UCUM|||||P',
    'OBX|5|NM|CXR-PROB-NORMAL^Probability normal^99CXR||0.03|1^^UCUM|||||P',
    'OBX|6|ST|CXR-HEATMAP^AI heatmap series^99CXR||2.25.123||||||P',
    'OBX|7|ST|CXR-MODEL^AI model^99CXR||DenseNet-201 1.2.0||||||P',
  ];
  const message = buildOruR01(input());
  t.is(message, expected.join('\r') + '\r');
  t.false(message.includes('\n'));
});

test('puts each value at its field number (OBR-18 accession, OBR-22 result time, OBR-24 dept, OBR-25 and every OBX-11 status)', (t) => {
  const segments = buildOruR01(input({ resultStatus: 'C' }))
    .split('\r')
    .filter(Boolean)
    .map((s) => s.split('|'));
  const obr = segments.find((s) => s[0] === 'OBR') ?? [];
  t.is(obr[18], 'ACC0001');
  t.is(obr[22], '20240301100005+0000');
  t.is(obr[24], 'RAD');
  t.is(obr[25], 'C');
  const obx = segments.filter((s) => s[0] === 'OBX');
  t.is(obx.length, 7);
  for (const segment of obx) t.is(segment[11], 'C');
  const msh = segments[0] ?? [];
  // MSH-n is fields[n - 1]: MSH-1 is the separator itself.
  t.is(msh[8], 'ORU^R01^ORU_R01');
  t.is(msh[9], 'CXR0123456789ABCDEFG');
  t.is(msh[11], '2.5.1');
  t.is(msh[14], 'AL');
  t.is(msh[15], 'NE');
});

test('leaves the heatmap OBX out when no SC series was sent, and numbers the OBX without gaps', (t) => {
  const obx = buildOruR01(input({ scSeriesInstanceUid: undefined }))
    .split('\r')
    .filter((s) => s.startsWith('OBX'));
  t.deepEqual(
    obx.map((s) => s.split('|').slice(1, 3).join('|')),
    ['1|ST', '2|CWE', '3|NM', '4|NM', '5|NM', '6|ST'],
  );
  t.false(obx.some((s) => s.includes('CXR-HEATMAP')));
});

test('escapes | ^ ~ \\ & in every value that comes from DICOM', (t) => {
  const message = buildOruR01(
    input({
      patient: { id: 'P|1', issuer: 'I&S', name: 'O|Brien^Ma~ry^&\\', birthDate: '19700102', sex: 'M' },
      order: {
        placer: 'P^L',
        filler: 'F~I',
        accession: 'A|B^C~D\\E&F',
        procedureCode: { code: 'C^X' },
        department: 'RAD',
      },
      studyInstanceUid: '1.2.3',
    }),
  );
  const lines = message.split('\r');
  t.is(lines[1], 'PID|1||P\\F\\1^^^I\\T\\S||O\\F\\Brien^Ma\\R\\ry^\\T\\\\E\\||19700102|M');
  t.is(lines[2], 'ORC|RE|P\\S\\L|F\\R\\I||CM');
  t.regex(lines[3] ?? '', /\|A\\F\\B\\S\\C\\R\\D\\E\\E\\T\\F\|/);
  t.regex(lines[3] ?? '', /^OBR\|1\|P\\S\\L\|F\\R\\I\|C\\S\\X\|/);
});

test('maps DICOM person names to XPN (prefix and suffix swap places) and uses only the alphabetic group', (t) => {
  t.deepEqual(dicomPersonNameToXpn('Family^Given^Middle^Prefix^Suffix'), [
    'Family',
    'Given',
    'Middle',
    'Suffix',
    'Prefix',
  ]);
  t.deepEqual(dicomPersonNameToXpn('Yamada^Tarou=山田^太郎=やまだ^たろう'), ['Yamada', 'Tarou', '', '', '']);
  t.deepEqual(dicomPersonNameToXpn('Doe '), ['Doe', '', '', '', '']);
  const pid = buildOruR01(input({ patient: { id: 'P1', name: 'Doe^Jane' } })).split('\r')[1];
  t.is(pid, 'PID|1||P1||Doe^Jane');
});

test('maps DICOM sex to HL7 table 0001', (t) => {
  t.is(dicomSexToHl7('M'), 'M');
  t.is(dicomSexToHl7('f '), 'F');
  t.is(dicomSexToHl7('O'), 'O');
  t.is(dicomSexToHl7(''), '');
  t.is(dicomSexToHl7(undefined), '');
  t.is(dicomSexToHl7('X'), 'U');
});

test('formats probabilities with at most four decimals', (t) => {
  t.is(formatProbability(0.87), '0.87');
  t.is(formatProbability(1), '1');
  t.is(formatProbability(0), '0');
  t.is(formatProbability(0.123456), '0.1235');
  t.is(formatProbability(0.00001), '0');
});

test('the same input builds the same message (nothing read from the clock)', (t) => {
  t.is(buildOruR01(input()), buildOruR01(input()));
});

test('refuses a result it cannot report truthfully', (t) => {
  const bad = (overrides: Partial<OruInput>, message: RegExp) =>
    t.throws(() => buildOruR01(input(overrides)), { instanceOf: GatewayError, message });
  bad({ controlId: '' }, /control ID/);
  bad({ controlId: 'X'.repeat(21) }, /control ID/);
  bad({ controlId: 'A|B' }, /control ID/);
  bad(
    { classification: { predicted: 'other', classes: ['a', 'b'], probabilities: [0.5, 0.5] } },
    /predicted class 'other'/,
  );
  bad({ classification: { predicted: 'a', classes: ['a', 'b'], probabilities: [1] } }, /2 classes but 1 probabilities/);
  bad({ classification: { predicted: 'a', classes: ['a', 'b'], probabilities: [1.2, 0] } }, /not within 0\.\.1/);
  bad({ classification: { predicted: 'a', classes: ['a', 'b'], probabilities: [Number.NaN, 0] } }, /not within 0\.\.1/);
  bad({ classification: { predicted: 'a b', classes: ['a b', 'A-B'], probabilities: [0.5, 0.5] } }, /same OBX-3 code/);
  bad({ studyInstanceUid: ' ' }, /StudyInstanceUID/);
  bad({ observationTime: '2024-03-01' }, /observation time/);
});

test("codes the class as CWE with the SR's codes: SNOMED CT for known classes, 99CXRGW otherwise, model name as original text", (t) => {
  const classObx = (predicted: string, classes: string[]) =>
    buildOruR01(input({ classification: { predicted, classes, probabilities: classes.map(() => 1 / classes.length) } }))
      .split('\r')
      .find((s) => s.startsWith('OBX|2|'))
      ?.split('|');
  t.is(classObx('pneumonia', ['pneumonia', 'normal'])?.[5], '233604007^Pneumonia^SCT^^^^^^pneumonia');
  t.is(classObx('normal', ['pneumonia', 'normal'])?.[5], '17621005^Normal^SCT^^^^^^normal');
  t.is(classObx('Effusion', ['Effusion', 'normal'])?.[5], 'C-EFFUSION^Effusion^99CXRGW^^^^^^Effusion');
  t.is(classObx('Effusion', ['Effusion', 'normal'])?.[2], 'CWE');
});

test('sends one OBX group per image after the study-level summary, OBX-4 numbering the images', (t) => {
  const message = buildOruR01(
    input({
      images: [
        {
          sopInstanceUid: '1.2.3.4.5.1',
          classification: {
            predicted: 'normal',
            classes: ['COVID-19', 'pneumonia', 'normal'],
            probabilities: [0.1, 0.2, 0.7],
          },
          heatmapSopInstanceUid: '2.25.1001',
        },
        {
          sopInstanceUid: '1.2.3.4.5.2',
          classification: {
            predicted: 'COVID-19',
            classes: ['COVID-19', 'pneumonia', 'normal'],
            probabilities: [0.87, 0.1, 0.03],
          },
        },
      ],
    }),
  );
  const obx = message.split('\r').filter((s) => s.startsWith('OBX'));
  t.deepEqual(obx.slice(7), [
    'OBX|8|ST|CXR-IMAGE^Source image SOP Instance UID^99CXR|1|1.2.3.4.5.1||||||P',
    'OBX|9|CWE|CXR-CLASS^AI classification^99CXR|1|17621005^Normal^SCT^^^^^^normal||||||P',
    'OBX|10|NM|CXR-PROB-COVID-19^Probability COVID-19^99CXR|1|0.1|1^^UCUM|||||P',
    'OBX|11|NM|CXR-PROB-PNEUMONIA^Probability pneumonia^99CXR|1|0.2|1^^UCUM|||||P',
    'OBX|12|NM|CXR-PROB-NORMAL^Probability normal^99CXR|1|0.7|1^^UCUM|||||P',
    'OBX|13|ST|CXR-HEATMAP-SOP^AI heatmap SOP Instance UID^99CXR|1|2.25.1001||||||P',
    'OBX|14|ST|CXR-IMAGE^Source image SOP Instance UID^99CXR|2|1.2.3.4.5.2||||||P',
    'OBX|15|CWE|CXR-CLASS^AI classification^99CXR|2|840539006^COVID-19^SCT^^^^^^COVID-19||||||P',
    'OBX|16|NM|CXR-PROB-COVID-19^Probability COVID-19^99CXR|2|0.87|1^^UCUM|||||P',
    'OBX|17|NM|CXR-PROB-PNEUMONIA^Probability pneumonia^99CXR|2|0.1|1^^UCUM|||||P',
    'OBX|18|NM|CXR-PROB-NORMAL^Probability normal^99CXR|2|0.03|1^^UCUM|||||P',
  ]);
  // The summary keeps OBX-4 empty, so an engine that ignores sub-IDs still reads the study's class first.
  t.true(obx.slice(0, 7).every((s) => s.split('|')[4] === ''));
});

test("sends the rule's priority in TQ1-9 and OBR-27.6: urgent as S (stat), normal as R (routine)", (t) => {
  const segments = (priority: 'urgent' | 'normal') =>
    buildOruR01(input({ priority }))
      .split('\r')
      .map((s) => s.split('|'));
  const urgent = segments('urgent');
  t.is(urgent.find((s) => s[0] === 'TQ1')?.[9], 'S^Stat^HL70485');
  t.is(urgent.find((s) => s[0] === 'OBR')?.[27], '^^^^^S');
  const normal = segments('normal');
  t.is(normal.find((s) => s[0] === 'TQ1')?.[9], 'R^Routine^HL70485');
  t.is(normal.find((s) => s[0] === 'OBR')?.[27], '^^^^^R');
});

test('refuses an image group it cannot report truthfully, and an unknown priority', (t) => {
  const image = {
    sopInstanceUid: '1.2.3.9',
    classification: { predicted: 'normal', classes: ['normal', 'pneumonia'], probabilities: [0.6, 0.4] },
  };
  const bad = (overrides: Partial<OruInput>, message: RegExp) =>
    t.throws(() => buildOruR01(input(overrides)), { instanceOf: GatewayError, message });
  bad({ images: [{ ...image, sopInstanceUid: ' ' }] }, /no SOPInstanceUID/);
  bad({ images: [{ ...image, classification: { ...image.classification, probabilities: [0.6] } }] }, /2 classes but 1/);
  bad({ images: [{ ...image, classification: { ...image.classification, predicted: 'x' } }] }, /predicted class 'x'/);
  bad({ priority: 'stat' as 'urgent' }, /priority must be urgent or normal/);
  bad({ priority: 'constructor' as 'urgent' }, /priority must be urgent or normal/);
});

test('uses the site OBX-3 codes where given and ours elsewhere; the study code stays 113014', (t) => {
  const obx3 = buildOruR01(
    input({
      observationCodes: {
        classification: { code: '18782-3', text: 'Radiology Study observation', codingSystem: 'LN' },
      },
      probabilityCodes: { pneumonia: { code: 'P-PNEU', text: 'Pneumonia probability', codingSystem: 'L' } },
    }),
  )
    .split('\r')
    .filter((s) => s.startsWith('OBX'))
    .map((s) => s.split('|')[3]);
  t.deepEqual(obx3, [
    '113014^DICOM Study^DCM',
    '18782-3^Radiology Study observation^LN',
    'CXR-PROB-COVID-19^Probability COVID-19^99CXR',
    'P-PNEU^Pneumonia probability^L',
    'CXR-PROB-NORMAL^Probability normal^99CXR',
    'CXR-HEATMAP^AI heatmap series^99CXR',
    'CXR-MODEL^AI model^99CXR',
  ]);
});

test('refuses site codes that would make two probabilities indistinguishable or leave OBX-3 empty', (t) => {
  const same = { code: 'P', text: 'p', codingSystem: 'L' };
  t.throws(() => buildOruR01(input({ probabilityCodes: { pneumonia: same, normal: same } })), {
    instanceOf: GatewayError,
    message: /same OBX-3 code/,
  });
  t.throws(() => buildOruR01(input({ observationCodes: { model: { code: ' ' } } })), {
    instanceOf: GatewayError,
    message: /OBX-3 code is empty/,
  });
});
