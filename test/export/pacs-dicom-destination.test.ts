import test from 'ava';
import { Writable } from 'node:stream';
import dcmjs from 'dcmjs';
import type { InstanceResult } from '../../src/dimse/storage-scu.js';
import { PacsDicomDestination, deliveryOutcomeFor } from '../../src/export/pacs-dicom-destination.js';
import { createLogger, type Logger } from '../../src/logging/logger.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import { startOrthanc, pngSize, type OrthancUnderTest } from '../helpers/orthanc.js';
import { datasetBytesOfPart10 } from '../helpers/raw-scu.js';
import { SECONDARY_CAPTURE_SOP_CLASS_UID, studyPair } from './secondary-capture-fixture.js';

const DX_FOR_PRESENTATION = '1.2.840.10008.5.1.4.1.1.1.1';

let orthanc: OrthancUnderTest;

test.before(async () => {
  orthanc = await startOrthanc();
});
test.after.always(async () => {
  await orthanc?.dispose();
});

function quietLogger(): Logger {
  return createLogger({
    level: 'error',
    format: 'json',
    stream: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
  });
}

function destination(overrides: { callingAeTitle?: string } = {}): PacsDicomDestination {
  return new PacsDicomDestination({
    name: 'orthanc',
    peer: {
      host: '127.0.0.1',
      port: orthanc.dicomPort,
      calledAeTitle: orthanc.aeTitle,
      callingAeTitle: overrides.callingAeTitle ?? 'CXR_GATEWAY',
      connectTimeoutMs: 2000,
      responseTimeoutMs: 5000,
    },
    logger: quietLogger(),
  });
}

async function orthancId(sopInstanceUid: string): Promise<string> {
  const id = await orthanc.lookupInstance(sopInstanceUid);
  if (id === undefined) throw new Error(`Orthanc does not have ${sopInstanceUid}`);
  return id;
}

// These tests stop and start the one Orthanc, so they run one after the other.

test.serial(
  'delivers an image and its heatmap Secondary Capture into one study: two series, right tags, previews',
  async (t) => {
    const { dx, sc, items } = studyPair();
    t.deepEqual(await destination().deliver(items), { kind: 'delivered' });

    const dxId = await orthancId(dx.sopInstanceUid);
    const scId = await orthancId(sc.sopInstanceUid);
    const dxTags = await orthanc.instanceTags(dxId);
    const scTags = await orthanc.instanceTags(scId);
    t.like(dxTags, {
      Modality: 'DX',
      SOPClassUID: DX_FOR_PRESENTATION,
      StudyInstanceUID: dx.studyInstanceUid,
      SeriesInstanceUID: dx.seriesInstanceUid,
    });
    t.like(scTags, {
      Modality: 'OT',
      SOPClassUID: SECONDARY_CAPTURE_SOP_CLASS_UID,
      StudyInstanceUID: dx.studyInstanceUid,
      SeriesInstanceUID: sc.seriesInstanceUid,
    });

    const dxInstance = await orthanc.getJson<{ ParentSeries: string }>(`/instances/${dxId}`);
    const studyId = (await orthanc.getJson<{ ParentStudy: string }>(`/series/${dxInstance.ParentSeries}`)).ParentStudy;
    const study = await orthanc.study(studyId);
    t.is(study.MainDicomTags.StudyInstanceUID, dx.studyInstanceUid);
    t.is(study.Series.length, 2);
    t.is((await orthanc.getJson<unknown[]>(`/studies/${studyId}/instances`)).length, 2);

    for (const [id, size] of [
      [dxId, { width: 256, height: 256 }],
      [scId, { width: sc.columns, height: sc.rows }],
    ] as const) {
      const preview = await orthanc.preview(id);
      t.is(preview.contentType, 'image/png');
      t.deepEqual(pngSize(preview.bytes), size);
    }

    // The Secondary Capture written by dcmjs arrives intact: Orthanc keeps its data set byte for byte (the DX
    // is re-serialised by Orthanc's DCMTK, which rewrites its empty sequence; storage-scu.test.ts shows that
    // our SCU sends every object byte for byte).
    const stored = Buffer.from(await (await orthanc.get(`/instances/${scId}/file`)).arrayBuffer());
    t.true(datasetBytesOfPart10(stored).dataset.equals(datasetBytesOfPart10(sc.bytes).dataset));
    const frame = Buffer.from(await (await orthanc.get(`/instances/${scId}/frames/0/raw`)).arrayBuffer());
    t.true(frame.equals(sc.pixels));
  },
);

test.serial(
  'Orthanc down: retry naming the refused connection; back up: the same delivery succeeds without duplicates',
  async (t) => {
    const { dx, sc, items } = studyPair();
    const pacs = destination();
    await orthanc.stop();
    const down = await pacs.deliver(items);
    t.like(down, { kind: 'retry', cause: 'connection-refused' });
    t.regex(
      down.kind === 'retry' ? down.reason : '',
      new RegExp(`connection refused by 127\\.0\\.0\\.1:${orthanc.dicomPort} \\(ECONNREFUSED\\)`),
    );

    await orthanc.restart();
    t.deepEqual(await pacs.deliver(items), { kind: 'delivered' });
    // A retry after a lost answer re-sends what the PACS already has: still one instance per SOP Instance UID.
    t.deepEqual(await pacs.deliver(items), { kind: 'delivered' });
    for (const uid of [dx.sopInstanceUid, sc.sopInstanceUid]) {
      const found = await (
        await fetch(`http://127.0.0.1:${orthanc.httpPort}/tools/lookup`, { method: 'POST', body: uid })
      ).json();
      t.is((found as Array<{ Type: string }>).filter((f) => f.Type === 'Instance').length, 1, uid);
    }
    const studies =
      await orthanc.getJson<Array<{ MainDicomTags: { StudyInstanceUID: string }; Series: string[] }>>(
        '/studies?expand',
      );
    const study = studies.find((s) => s.MainDicomTags.StudyInstanceUID === dx.studyInstanceUid);
    t.is(study?.Series.length, 2);
  },
);

// Decision: an association rejected because the PACS does not know our calling AE is a retry, not parked.
// The fix lies with the PACS admin (register the gateway's AE and address), needs nothing from us or the
// items, and deliveries then resume by themselves; delivery.maxAttempts still parks it if nobody acts, and
// the reason says what to register.
test.serial(
  'a calling AE Orthanc does not know: the association is rejected, and delivery answers retry',
  async (t) => {
    const { dx, items } = studyPair();
    const outcome = await destination({ callingAeTitle: 'UNKNOWN_AE' }).deliver(items);
    t.like(outcome, { kind: 'retry', cause: 'association-rejected' });
    const reason = outcome.kind === 'retry' ? outcome.reason : '';
    t.regex(
      reason,
      /rejected the association from 'UNKNOWN_AE' \(permanent, service user: calling AE title not recognized\)/,
    );
    t.regex(reason, /register AE 'UNKNOWN_AE'/);
    t.is(await orthanc.lookupInstance(dx.sopInstanceUid), undefined);
  },
);

test.serial(
  'an object Orthanc cannot index gets 0xA700 from it (a retry); the rest of the batch is stored',
  async (t) => {
    const good = makeImageFile();
    const bad = makeImageFile();
    const parsed = dcmjs.data.DicomMessage.readFile(
      bad.bytes.buffer.slice(bad.bytes.byteOffset, bad.bytes.byteOffset + bad.bytes.byteLength) as ArrayBuffer,
    );
    delete parsed.dict['0020000D']; // Study Instance UID
    const withoutStudy = Buffer.from(parsed.write({ fragmentMultiframe: false }));
    const outcome = await destination().deliver([{ bytes: withoutStudy, label: 'no-study' }, { bytes: good.bytes }]);
    // Orthanc answers "out of resources" for every store error, so this cannot be told from a full disk.
    t.like(outcome, { kind: 'retry', cause: 'pacs-out-of-resources' });
    t.regex(
      outcome.kind === 'retry' ? outcome.reason : '',
      new RegExp(
        `did not store 1 of 2 objects: ${bad.sopInstanceUid.replace(/\./g, '\\.')}: 0xA700 refused: out of resources`,
      ),
    );
    t.not(await orthanc.lookupInstance(good.sopInstanceUid), undefined);
    t.is(await orthanc.lookupInstance(bad.sopInstanceUid), undefined);
  },
);

test.serial('a stopped destination answers retry without connecting', async (t) => {
  const pacs = destination();
  await pacs.stop();
  t.like(await pacs.deliver(studyPair().items), { kind: 'retry', cause: 'stopped' });
});

function answered(status: number, comment?: string): InstanceResult {
  return {
    source: 'x',
    sopInstanceUid: `1.2.3.${status}`,
    sopClassUid: DX_FOR_PRESENTATION,
    outcome: status === 0 ? 'stored' : status >= 0xb000 && status < 0xc000 ? 'warning' : 'failed',
    status,
    ...(comment ? { comment } : {}),
  };
}

test('statuses a retry cannot fix park the batch; statuses that may clear retry it; warnings are delivered', (t) => {
  const peer = 'PACS@10.0.0.1:104';
  t.deepEqual(
    deliveryOutcomeFor({ results: [answered(0), answered(0xb000), answered(0xb007), answered(0x0111)] }, peer),
    { kind: 'delivered' },
  );
  for (const status of [0xa900, 0xc000, 0xc123, 0x0117]) {
    t.like(
      deliveryOutcomeFor({ results: [answered(0), answered(status, 'bad data set')] }, peer),
      { kind: 'parked', cause: 'pacs-refused-object' },
      status.toString(16),
    );
  }
  for (const [status, cause] of [
    [0xa700, 'pacs-out-of-resources'],
    [0xa701, 'pacs-out-of-resources'],
    [0x0110, 'pacs-processing-failure'],
    [0x0122, 'pacs-refuses-sop-class'],
    [0x0124, 'pacs-not-authorized'],
    [0x0211, 'pacs-failure'],
  ] as const) {
    t.like(deliveryOutcomeFor({ results: [answered(status)] }, peer), { kind: 'retry', cause }, status.toString(16));
  }
  // A refused object parks the batch even next to a transient refusal; the reason lists both.
  const mixed = deliveryOutcomeFor({ results: [answered(0xa700), answered(0xa900, 'SOP class mismatch')] }, peer);
  t.like(mixed, { kind: 'parked', cause: 'pacs-refused-object' });
  t.regex(
    mixed.kind === 'parked' ? mixed.reason : '',
    /did not store 2 of 2 objects: 1\.2\.3\.42752: 0xA700 refused: out of resources; 1\.2\.3\.43264: 0xA900 data set does not match SOP class \(error comment of 18 characters, logged at debug level\)/,
  );
  // The Error Comment is the PACS's free text (it may quote a patient): never in the reason, which the store keeps.
  const named = deliveryOutcomeFor({ results: [answered(0xa900, 'Patient DOE^JANE mismatch')] }, peer);
  t.notRegex(named.kind === 'parked' ? named.reason : 'missing', /DOE|JANE|missing/);
  t.like(
    deliveryOutcomeFor(
      {
        results: [
          { source: 'f.dcm', outcome: 'not-sent', cause: 'unreadable', reason: 'f.dcm is not a DICOM Part 10 file' },
        ],
      },
      peer,
    ),
    { kind: 'parked', cause: 'invalid-object' },
  );
  t.like(
    deliveryOutcomeFor(
      {
        results: [
          {
            source: 'f.dcm',
            sopInstanceUid: '1.2',
            outcome: 'not-sent',
            cause: 'no-accepted-context',
            reason: 'no context',
          },
        ],
      },
      peer,
    ),
    { kind: 'retry', cause: 'pacs-refuses-sop-class' },
  );
  t.deepEqual(deliveryOutcomeFor({ transient: { kind: 'response-timeout', reason: 'slow' }, completed: [] }, peer), {
    kind: 'retry',
    cause: 'response-timeout',
    reason: 'slow',
  });
});
