// Each heatmap SC encoding (secondaryCapture.encoding) delivered to a real PACS (Orthanc 1.10 with orthanc-gdcm) by
// our C-STORE SCU: the SCU proposes each object in its own transfer syntax, Orthanc accepts it in that syntax and
// keeps the very frame we encoded (no re-encoding on our side), and can decode it for its preview.
import test from 'ava';
import { Writable } from 'node:stream';
import { PacsDicomDestination } from '../../src/export/pacs-dicom-destination.js';
import { createLogger } from '../../src/logging/logger.js';
import { prepareScEncoding } from '../../src/reporting/sc-encoding.js';
import { SC_ENCODINGS, SC_ENCODING_SYNTAX } from '../../src/reporting/sc-encoding-types.js';
import { writeSecondaryCapture } from '../../src/reporting/secondary-capture.js';
import { makeImageFile, newUid } from '../helpers/dicom-factory.js';
import { pngSize, startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import { CLASSIFICATION, CREATED_AT, EXPLANATION, MODEL, readBack } from '../reporting/reporting-fixtures.js';

let orthanc: OrthancUnderTest;

test.before(async () => {
  await prepareScEncoding('jpeg-baseline');
  orthanc = await startOrthanc();
});
test.after.always(async () => {
  await orthanc?.dispose();
});

function destination(): PacsDicomDestination {
  return new PacsDicomDestination({
    name: 'orthanc',
    peer: {
      host: '127.0.0.1',
      port: orthanc.dicomPort,
      calledAeTitle: orthanc.aeTitle,
      callingAeTitle: 'CXR_GATEWAY',
      connectTimeoutMs: 2000,
      responseTimeoutMs: 10_000,
    },
    logger: createLogger({
      level: 'error',
      format: 'json',
      stream: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
    }),
  });
}

/** A smooth picture with a colour patch: enough structure for every codec to have work to do. */
function picture(rows: number, columns: number) {
  const data = new Uint8Array(rows * columns * 3);
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < columns; x++) {
      const o = (y * columns + x) * 3;
      const grey = (x * 2 + y) & 0xff;
      const patch = x > columns / 4 && x < columns / 2 && y > rows / 4 && y < rows / 2;
      data.set(patch ? [230, grey >> 2, 20] : [grey, grey, grey], o);
    }
  return { rows, columns, data };
}

for (const encoding of SC_ENCODINGS) {
  test.serial(
    `an SC in ${encoding} is stored by Orthanc in that transfer syntax, frame for frame, and previews`,
    async (t) => {
      const patientId = `PID-${newUid().slice(-8)}`;
      const dx = makeImageFile({ patientId, rows: 64, columns: 64 });
      const sc = writeSecondaryCapture({
        source: dx.bytes,
        image: picture(120, 96),
        model: MODEL,
        classification: CLASSIFICATION,
        explanation: EXPLANATION,
        revision: 0,
        createdAt: CREATED_AT,
        encoding: { encoding },
      });
      t.deepEqual(await destination().deliver([{ bytes: sc.bytes, label: `heatmap ${encoding}` }]), {
        kind: 'delivered',
      });
      const id = await orthanc.lookupInstance(sc.sopInstanceUid);
      if (id === undefined) return t.fail(`Orthanc does not have the ${encoding} SC`);
      const syntax = await (await orthanc.get(`/instances/${id}/metadata/TransferSyntax`)).text();
      t.is(syntax, SC_ENCODING_SYNTAX[encoding]);
      // Orthanc's DCMTK re-serialises sequences, so the file is compared where it matters: the pixel data, which
      // is exactly the frame we encoded (no re-encoding by our SCU, none by Orthanc).
      const frame = Buffer.from(await (await orthanc.get(`/instances/${id}/frames/0/raw`)).arrayBuffer());
      const ours = Buffer.from((readBack(sc.bytes).PixelData as ArrayBuffer[])[0] ?? new ArrayBuffer(0));
      t.true(ours.length > 0);
      t.true(frame.equals(ours), `Orthanc's frame (${frame.length} bytes) is ours (${ours.length} bytes)`);
      const preview = await orthanc.preview(id);
      t.is(preview.contentType, 'image/png');
      t.deepEqual(pngSize(preview.bytes), { width: 96, height: 120 });
    },
  );
}
