// A short run of the real daemon (backend auto: Dawn is loaded and probed in the inference worker, as in
// production), fed images that make libraries talk: every line on its stdout must be one of our JSON records.
// Also: Japanese and Korean ISO 2022 images are classified, and a dataset the store accepted but the pixel reader
// cannot handle fails visibly (warn, with ids) with a reason that says the gateway did not process it.

import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeImageFile, newUid } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { startGateway } from '../helpers/gateway-process.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';
import { PATIENT_NAME, SPECIFIC_CHARACTER_SET, STANDARD_EXAMPLES, withRawElements } from '../dicom/charset-fixtures.js';

test('daemon stdout is JSON records only; ISO 2022 images are classified; a pixel failure is a warn with ids saying "not processed"', async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'log-stream-out-'));
  const gateway = await startGateway({
    models: { tiny: tinyModelDir() },
    inference: { defaultModel: 'tiny', workers: 1, backend: 'auto' },
    destinations: {
      pacs: [{ type: 'folder', name: 'pacs-folder', path: path.join(out, 'dicom') }],
      ris: [{ type: 'folder', name: 'ris-folder', path: path.join(out, 'hl7') }],
    },
    rules: [
      {
        name: 'chest',
        match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } },
        action: { model: 'tiny', outputs: ['sc', 'sr'], pacs: ['pacs-folder'], ris: ['ris-folder'] },
      },
    ],
  } as never);
  t.teardown(() => gateway.stop());

  const dir = mkdtempSync(path.join(os.tmpdir(), 'log-stream-in-'));
  const write = (name: string, bytes: Buffer) => {
    const file = path.join(dir, name);
    writeFileSync(file, bytes);
    return file;
  };
  const withText = (
    example: (typeof STANDARD_EXAMPLES)[keyof typeof STANDARD_EXAMPLES],
    studyInstanceUid: string,
    sopInstanceUid: string,
  ) =>
    withRawElements(makeImageFile({ rows: 64, columns: 64, studyInstanceUid, sopInstanceUid }).bytes, [
      { tag: SPECIFIC_CHARACTER_SET, vr: 'CS', bytes: Buffer.from(example.charset, 'latin1') },
      { tag: PATIENT_NAME, vr: 'PN', bytes: example.bytes },
    ]);
  const japanese = { study: newUid(), sop: newUid() };
  const korean = { study: newUid(), sop: newUid() };
  const odd = { study: newUid(), sop: newUid() };
  const files = [
    write('ja.dcm', withText(STANDARD_EXAMPLES.japaneseIr87, japanese.study, japanese.sop)),
    write('ko.dcm', withText(STANDARD_EXAMPLES.korean, korean.study, korean.sop)),
    // Rows says 128 where the pixels hold 64: every element is whole, so the store acknowledges it (Success);
    // only the pixel reader finds that header and pixels disagree.
    write(
      'odd.dcm',
      withRawElements(
        makeImageFile({ rows: 64, columns: 64, studyInstanceUid: odd.study, sopInstanceUid: odd.sop }).bytes,
        [{ tag: 0x00280010, vr: 'US', bytes: Buffer.from([128, 0]) }],
      ),
    ),
  ];
  t.is((await storescu(gateway.port, files)).code, 0);

  for (const id of [japanese, korean]) {
    await gateway.waitForLog(
      (l) => l.event === 'ANALYSIS-5010' && l.sopInstanceUid === id.sop,
      `classification of ${id.sop}`,
      90_000,
    );
  }
  const failed = await gateway.waitForLog(
    (l) => l.event === 'ANALYSIS-5011' && l.sopInstanceUid === odd.sop,
    'the failed image',
    90_000,
  );
  t.like(failed, { level: 'warn', code: 'PIXELS_CORRUPT', studyInstanceUid: odd.study });
  t.truthy(failed.jobId);
  t.regex(
    String(failed.why),
    /^the gateway could not decode this image's pixel data \(Pixel Data holds 8192 bytes but one frame of 128 x 64 x 16 bits needs 16384\): not processed; the image is kept as received\./,
  );
  t.notRegex(String(failed.why), /in transit/);

  t.is(await gateway.stop(), 0);
  const raw = gateway.logs.filter((l) => l.level === 'raw');
  t.deepEqual(raw, [], 'no foreign line on stdout');
  t.true(gateway.logs.length > 10);
  t.false(
    gateway.logs.some((l) => JSON.stringify(l).includes('\\u0000')),
    'no NUL byte in any record either',
  );
});
