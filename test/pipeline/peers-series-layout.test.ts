import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resultControlId } from '../../src/reporting/hl7-control-id.js';
import { KEY_OBJECT_SELECTION_SOP_CLASS_UID } from '../../src/reporting/rejection-note.js';
import { COMPREHENSIVE_SR_SOP_CLASS_UID } from '../../src/reporting/structured-report.js';
import { dciodvfy, newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-process.js';
import { startHl7Listener, type Hl7Listener } from '../helpers/hl7-listener.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import {
  RIS_NAME,
  SECONDARY_CAPTURE,
  inputDir,
  isLog,
  jobsOfStudy,
  orthancStudyInstances,
  peerConfig,
  writtenResults,
} from '../helpers/pipeline-peers.js';

// The series a radiologist sees, with real peers: a study of three frontal images, then a late fourth one
// (revision 1). Orthanc is the PACS. Orthanc stores a Key Object Selection rejection note like any object but does
// not act on it (it implements no IHE IOCM): everything stays visible there. So the test computes the IOCM view a
// conforming PACS would show (everything minus what a rejection note lists) and checks that view.

let orthanc: OrthancUnderTest;
let listener: Hl7Listener;
let gateway: GatewayUnderTest;

test.before(async () => {
  [orthanc, listener] = await Promise.all([startOrthanc(), startHl7Listener({ responses: ['aa'] })]);
  gateway = await startGateway(
    peerConfig({ pacsPort: orthanc.dicomPort, risPort: listener.port, outputs: ['sc', 'sr'] }),
  );
});

test.after.always(async () => {
  await gateway?.stop();
  await Promise.all([orthanc?.dispose(), listener?.stop()]);
});

interface Held {
  orthancId: string;
  sopInstanceUid: string;
  sopClassUid: string;
  seriesInstanceUid: string;
  seriesNumber: number;
  instanceNumber: number;
}

type Sequence = Array<Record<string, unknown>>;
const seq = (v: unknown): Sequence => (Array.isArray(v) ? (v as Sequence) : []);

/** The SOP Instance UIDs a KOS lists in its Current Requested Procedure Evidence, by series. */
function evidence(tags: Record<string, unknown>): Map<string, string[]> {
  const bySeries = new Map<string, string[]>();
  for (const study of seq(tags.CurrentRequestedProcedureEvidenceSequence))
    for (const series of seq(study.ReferencedSeriesSequence))
      bySeries.set(
        String(series.SeriesInstanceUID),
        seq(series.ReferencedSOPSequence).map((r) => String(r.ReferencedSOPInstanceUID)),
      );
  return bySeries;
}

test.serial(
  'three images, then a late fourth: Orthanc holds revision 0 (3 heatmaps + SR), revision 1 (4 heatmaps + SR) and one rejection note of revision 0; the IOCM view is revision 1 and the note; all valid',
  async (t) => {
    const dir = inputDir();
    const studyInstanceUid = newUid();
    const image = (instanceNumber: number, seed: number) =>
      writeImageFile(dir, { studyInstanceUid, accessionNumber: 'ACC-SERIES-1', instanceNumber, seed });
    const first = await Promise.all([image(3, 81), image(1, 82), image(2, 83)]);
    t.is(
      (
        await storescu(
          gateway.port,
          first.map((f) => f.path),
        )
      ).code,
      0,
    );
    await gateway.waitForLog(isLog('EXPORT-6002', { studyInstanceUid, revision: 0 }), 'revision 0 reported', 90_000);
    const late = await image(4, 84);
    t.is((await storescu(gateway.port, [late.path])).code, 0);
    await gateway.waitForLog(isLog('EXPORT-6002', { studyInstanceUid, revision: 1 }), 'revision 1 reported', 90_000);

    const jobs = jobsOfStudy(gateway.workDir, studyInstanceUid);
    t.deepEqual(
      jobs.map((j) => [j.revision, j.state]),
      [
        [0, 'done'],
        [1, 'done'],
      ],
    );
    const held: Held[] = [];
    for (const s of await orthancStudyInstances(orthanc, studyInstanceUid)) {
      const tags = await orthanc.instanceTags(s.orthancId);
      held.push({
        orthancId: s.orthancId,
        sopInstanceUid: s.sopInstanceUid,
        sopClassUid: s.sopClassUid,
        seriesInstanceUid: s.seriesInstanceUid,
        seriesNumber: Number(tags.SeriesNumber),
        instanceNumber: Number(tags.InstanceNumber),
      });
    }
    const bySeriesNumber = (n: number) => held.filter((h) => h.seriesNumber === n);
    // Revision 0: one heatmap series of three (numbered 1..3 in the images' order) and one SR.
    const sc0 = bySeriesNumber(9001);
    const sr0 = bySeriesNumber(9002);
    const sc1 = bySeriesNumber(9011);
    const sr1 = bySeriesNumber(9012);
    const kos = bySeriesNumber(9013);
    t.is(held.length, 3 + 1 + 4 + 1 + 1, JSON.stringify(held.map((h) => [h.seriesNumber, h.instanceNumber])));
    t.true(sc0.every((h) => h.sopClassUid === SECONDARY_CAPTURE));
    t.true(sc1.every((h) => h.sopClassUid === SECONDARY_CAPTURE));
    t.deepEqual(sc0.map((h) => h.instanceNumber).sort(), [1, 2, 3]);
    t.deepEqual(sc1.map((h) => h.instanceNumber).sort(), [1, 2, 3, 4]);
    t.is(new Set(sc0.map((h) => h.seriesInstanceUid)).size, 1, 'one heatmap series for revision 0');
    t.is(new Set(sc1.map((h) => h.seriesInstanceUid)).size, 1, 'one heatmap series for revision 1');
    t.deepEqual(
      [...sr0, ...sr1].map((h) => h.sopClassUid),
      [COMPREHENSIVE_SR_SOP_CLASS_UID, COMPREHENSIVE_SR_SOP_CLASS_UID],
    );
    t.deepEqual(
      kos.map((h) => h.sopClassUid),
      [KEY_OBJECT_SELECTION_SOP_CLASS_UID],
    );
    // Five series, five distinct numbers, and no two series share a number.
    const seriesNumbers = new Map(held.map((h) => [h.seriesInstanceUid, h.seriesNumber]));
    t.is(seriesNumbers.size, 5);
    t.is(new Set(seriesNumbers.values()).size, 5);
    // The heatmaps are the ones the store recorded, the instance numbered 1 made from series 1's first image.
    const [job0, job1] = jobs;
    const scOf = (jobId: number) =>
      new Map(
        writtenResults(gateway.workDir, jobId).map((r) => [
          r.sopInstanceUid,
          r.outputs.find((o) => o.kind === 'sc')?.sopInstanceUid,
        ]),
      );
    const r0 = scOf(job0?.id ?? -1);
    t.is(sc0.find((h) => h.instanceNumber === 1)?.sopInstanceUid, r0.get(first[1]!.sopInstanceUid));
    t.is(sc0.find((h) => h.instanceNumber === 3)?.sopInstanceUid, r0.get(first[0]!.sopInstanceUid));
    t.is(sc1.find((h) => h.instanceNumber === 4)?.sopInstanceUid, scOf(job1?.id ?? -1).get(late.sopInstanceUid));

    // The rejection note lists exactly revision 0's three heatmaps and its SR.
    const kosTags = await orthanc.instanceTags(kos[0]?.orthancId ?? '');
    t.like(seq(kosTags.ConceptNameCodeSequence)[0], { CodeValue: '113001', CodingSchemeDesignator: 'DCM' });
    const listed = evidence(kosTags);
    t.deepEqual([...listed.keys()].sort(), [sc0[0]?.seriesInstanceUid, sr0[0]?.seriesInstanceUid].sort());
    t.deepEqual([...listed.values()].flat().sort(), [...sc0, ...sr0].map((h) => h.sopInstanceUid).sort());
    // Revision 1's SR names revision 0's as its predecessor.
    const sr1Tags = await orthanc.instanceTags(sr1[0]?.orthancId ?? '');
    const predecessor = seq(
      seq(seq(sr1Tags.PredecessorDocumentsSequence)[0]?.ReferencedSeriesSequence)[0]?.ReferencedSOPSequence,
    )[0];
    t.is(predecessor?.ReferencedSOPInstanceUID, sr0[0]?.sopInstanceUid);

    // The IOCM view: what a PACS that acts on rejection notes shows.
    const rejected = new Set([...listed.values()].flat());
    const visible = held.filter((h) => !rejected.has(h.sopInstanceUid));
    t.deepEqual(
      visible.map((h) => h.sopInstanceUid).sort(),
      [...sc1, ...sr1, ...kos].map((h) => h.sopInstanceUid).sort(),
    );
    t.deepEqual([...new Set(visible.map((h) => h.seriesNumber))].sort(), [9011, 9012, 9013]);

    // The ORU of revision 1 references the one heatmap series and each image's heatmap instance.
    const oru = listener.received.find((m) => m.controlId === resultControlId(studyInstanceUid, 1, RIS_NAME));
    if (oru?.segments === undefined) return t.fail('no parsed ORU for revision 1');
    const obx = oru.segments.filter((s) => s[0] === 'OBX');
    const valueOf = (code: string) =>
      obx.filter((s) => (s[3] as string[] | undefined)?.[0] === code).map((s) => (s[5] as string[] | undefined)?.[0]);
    t.deepEqual(valueOf('CXR-HEATMAP'), [sc1[0]?.seriesInstanceUid]);
    t.deepEqual(valueOf('CXR-HEATMAP-SOP').sort(), sc1.map((h) => h.sopInstanceUid).sort());

    // dciodvfy on what Orthanc gives back: a heatmap, the SR and the rejection note, zero errors each.
    const out = mkdtempSync(path.join(os.tmpdir(), 'series-layout-'));
    for (const [name, h] of [
      ['sc', sc1[0]],
      ['sr', sr1[0]],
      ['kos', kos[0]],
    ] as const) {
      const file = path.join(out, `${name}.dcm`);
      writeFileSync(file, Buffer.from(await (await orthanc.get(`/instances/${h?.orthancId}/file`)).arrayBuffer()));
      const v = await dciodvfy(file);
      t.deepEqual(v.errors, [], `${name}: ${v.output}`);
    }
  },
);
