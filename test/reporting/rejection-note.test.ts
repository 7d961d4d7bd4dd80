import test from 'ava';
import type { NaturalDataset } from 'dcmjs';
import {
  KEY_OBJECT_SELECTION_SOP_CLASS_UID,
  writeRejectionNote,
  type RejectionNoteRequest,
} from '../../src/reporting/rejection-note.js';
import { writeSecondaryCapture } from '../../src/reporting/secondary-capture.js';
import { writeStructuredReport } from '../../src/reporting/structured-report.js';
import { makeImageFile, type SyntheticImageFile } from '../helpers/dicom-factory.js';
import { CLASSIFICATION, CREATED_AT, EXPLANATION, MODEL, readBack, validate } from './reporting-fixtures.js';

const items = (ds: NaturalDataset | undefined, keyword: string): NaturalDataset[] => {
  const v = ds?.[keyword];
  return Array.isArray(v) ? (v as NaturalDataset[]) : [];
};

/** Revision 0 of a study of `n` images as it was sent: its heatmaps (one series) and its SR. */
function revisionZero(n: number) {
  const first = makeImageFile({ instanceNumber: 1 });
  const sources: SyntheticImageFile[] = [
    first,
    ...Array.from({ length: n - 1 }, (_, i) =>
      makeImageFile({ studyInstanceUid: first.studyInstanceUid, instanceNumber: i + 2 }),
    ),
  ];
  const heatmaps = sources.map((s, i) =>
    writeSecondaryCapture({
      source: s.bytes,
      image: { rows: 8, columns: 8, data: new Uint8Array(8 * 8 * 3) },
      model: MODEL,
      classification: CLASSIFICATION,
      explanation: EXPLANATION,
      revision: 0,
      createdAt: CREATED_AT,
      instanceNumber: i + 1,
    }),
  );
  const sr = writeStructuredReport({
    images: sources.map((s, i) => ({ source: s.bytes, classification: CLASSIFICATION, heatmap: heatmaps[i] })),
    model: MODEL,
    revision: 0,
    createdAt: CREATED_AT,
  });
  return { sources, heatmaps, sr };
}

function request(overrides: Partial<RejectionNoteRequest> = {}): RejectionNoteRequest {
  const { sources, heatmaps, sr } = revisionZero(3);
  return {
    source: sources[0]!.bytes,
    model: MODEL,
    revision: 1,
    rejectedRevision: 0,
    rejected: [...heatmaps, sr],
    createdAt: CREATED_AT,
    ...overrides,
  };
}

test('dciodvfy: the rejection note is a valid Key Object Selection Document, zero errors', async (t) => {
  const note = writeRejectionNote(request());
  const v = await validate(note.bytes, 'kos.dcm');
  t.deepEqual(v.errors, [], v.output);
  t.regex(v.output, /KeyObjectSelectionDocument/);
  // Every warning is named here, so a new one fails the test until it is fixed or explained.
  t.deepEqual(v.warnings, [], v.output);
});

test('the note is titled "Rejected for Quality Reasons" and lists exactly the rejected instances, by series, in content and evidence', (t) => {
  const { sources, heatmaps, sr } = revisionZero(3);
  const note = writeRejectionNote(request({ source: sources[0]!.bytes, rejected: [...heatmaps, sr] }));
  const ds = readBack(note.bytes);
  t.is(ds.SOPClassUID, KEY_OBJECT_SELECTION_SOP_CLASS_UID);
  t.is(note.sopClassUid, KEY_OBJECT_SELECTION_SOP_CLASS_UID);
  t.is(ds.Modality, 'KO');
  t.is(ds.StudyInstanceUID, sources[0]!.studyInstanceUid);
  t.is(ds.PatientID, readBack(sources[0]!.bytes).PatientID);
  t.like(items(ds, 'ConceptNameCodeSequence')[0], {
    CodeValue: '113001',
    CodingSchemeDesignator: 'DCM',
    CodeMeaning: 'Rejected for Quality Reasons',
  });
  t.like(items(ds, 'ContentTemplateSequence')[0], { MappingResource: 'DCMR', TemplateIdentifier: '2010' });
  t.is(ds.SeriesNumber, 9013, "revision 1's rejection series");
  const evidence = items(ds, 'CurrentRequestedProcedureEvidenceSequence');
  t.is(evidence.length, 1);
  t.is(evidence[0]?.StudyInstanceUID, sources[0]!.studyInstanceUid);
  const bySeries = Object.fromEntries(
    items(evidence[0], 'ReferencedSeriesSequence').map((s) => [
      s.SeriesInstanceUID,
      items(s, 'ReferencedSOPSequence').map((r) => r.ReferencedSOPInstanceUID),
    ]),
  );
  t.deepEqual(bySeries, {
    [heatmaps[0]!.seriesInstanceUid]: heatmaps.map((h) => h.sopInstanceUid),
    [sr.seriesInstanceUid]: [sr.sopInstanceUid],
  });
  const references = items(ds, 'ContentSequence').filter(
    (c) => c.RelationshipType === 'CONTAINS' && c.ValueType !== 'TEXT',
  );
  t.deepEqual(
    references.map((c) => [c.ValueType, items(c, 'ReferencedSOPSequence')[0]?.ReferencedSOPInstanceUID]),
    [...heatmaps.map((h) => ['IMAGE', h.sopInstanceUid]), ['COMPOSITE', sr.sopInstanceUid]],
  );
});

test('deterministic UIDs: the same note again is the same bytes; another revision or study is another note', (t) => {
  const base = request();
  const first = writeRejectionNote(base);
  t.deepEqual(writeRejectionNote(base).bytes, first.bytes);
  const later = writeRejectionNote({ ...base, revision: 2, rejectedRevision: 1 });
  const otherStudy = writeRejectionNote({ ...base, source: makeImageFile().bytes });
  t.is(new Set([first, later, otherStudy].map((n) => n.sopInstanceUid)).size, 3);
  t.is(new Set([first, later, otherStudy].map((n) => n.seriesInstanceUid)).size, 3);
  t.is(readBack(later.bytes).SeriesNumber, 9023);
});

test('a note that rejects nothing, or a revision that rejects itself or a later one, is refused', (t) => {
  t.throws(() => writeRejectionNote(request({ rejected: [] })), { message: /at least one instance/ });
  t.throws(() => writeRejectionNote(request({ revision: 1, rejectedRevision: 1 })), {
    message: /can only supersede an earlier revision/,
  });
  t.throws(() => writeRejectionNote(request({ revision: 0, rejectedRevision: 0 })), {
    message: /can only supersede an earlier revision/,
  });
});
