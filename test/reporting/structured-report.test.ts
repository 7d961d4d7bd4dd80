import test from 'ava';
import type { NaturalDataset } from 'dcmjs';
import { writeSecondaryCapture, type DerivedObject } from '../../src/reporting/secondary-capture.js';
import {
  COMPREHENSIVE_SR_SOP_CLASS_UID,
  writeStructuredReport,
  type StructuredReportRequest,
} from '../../src/reporting/structured-report.js';
import { classCode } from '../../src/reporting/sr-codes.js';
import { makeImageFile, type SyntheticImageFile } from '../helpers/dicom-factory.js';
import { CLASSIFICATION, CREATED_AT, EXPLANATION, MODEL, readBack, validate } from './reporting-fixtures.js';

function heatmapOf(source: SyntheticImageFile, revision = 0): DerivedObject {
  return writeSecondaryCapture({
    source: source.bytes,
    image: { rows: 8, columns: 8, data: new Uint8Array(8 * 8 * 3) },
    model: MODEL,
    classification: CLASSIFICATION,
    explanation: EXPLANATION,
    revision,
    createdAt: CREATED_AT,
  });
}

function request(
  source: SyntheticImageFile,
  overrides: Partial<StructuredReportRequest> = {},
): StructuredReportRequest {
  return {
    source: source.bytes,
    model: MODEL,
    classification: CLASSIFICATION,
    explanation: EXPLANATION,
    heatmaps: [heatmapOf(source)],
    revision: 0,
    createdAt: CREATED_AT,
    ...overrides,
  };
}

const items = (ds: NaturalDataset | undefined, keyword: string): NaturalDataset[] => {
  const v = ds?.[keyword];
  return Array.isArray(v) ? (v as NaturalDataset[]) : [];
};
const conceptOf = (item: NaturalDataset) => items(item, 'ConceptNameCodeSequence')[0]?.CodeMeaning;
/** Every content item of the tree, depth first. */
function flatten(ds: NaturalDataset): NaturalDataset[] {
  return items(ds, 'ContentSequence').flatMap((item) => [item, ...flatten(item)]);
}

for (const [name, overrides] of [
  ['first result, DX source', {}],
  ['CR source, MONOCHROME1', { sourceKind: 'cr' as const }],
  ['corrected revision', { revision: 2, supersedesRevision: 1 }],
  ['no heatmap', { heatmaps: [] }],
] as const) {
  test(`dciodvfy: zero errors and zero warnings: ${name}`, async (t) => {
    const { sourceKind, ...rest } = { sourceKind: undefined, ...overrides } as {
      sourceKind?: 'cr';
    } & Partial<StructuredReportRequest>;
    const source = makeImageFile(sourceKind === 'cr' ? { sopClass: 'cr', photometric: 'MONOCHROME1' } : {});
    const sr = writeStructuredReport(request(source, rest));
    const v = await validate(sr.bytes);
    t.deepEqual(v.errors, [], v.output);
    t.deepEqual(v.warnings, [], v.output);
    t.regex(v.output, /^ComprehensiveSR$/m);
  });
}

test('the SR states the classification as coded content, UNVERIFIED and PRELIMINARY, in the source study', (t) => {
  const source = makeImageFile();
  const sr = writeStructuredReport(request(source));
  const ds = readBack(sr.bytes);
  t.is(ds.SOPClassUID, COMPREHENSIVE_SR_SOP_CLASS_UID);
  t.is(sr.sopClassUid, COMPREHENSIVE_SR_SOP_CLASS_UID);
  t.is(ds.StudyInstanceUID, source.studyInstanceUid);
  t.not(ds.SeriesInstanceUID, source.seriesInstanceUid);
  t.is(ds.Modality, 'SR');
  t.deepEqual([ds.CompletionFlag, ds.VerificationFlag, ds.PreliminaryFlag], ['COMPLETE', 'UNVERIFIED', 'PRELIMINARY']);
  t.is(ds.SeriesDescription, 'AI result (SR) - NOT FOR DIAGNOSTIC USE');
  const all = flatten(ds);
  const finding = all.find(
    (i) => i.ValueType === 'CODE' && conceptOf(i) === 'Finding' && i.RelationshipType === 'CONTAINS',
  );
  t.like(items(finding, 'ConceptCodeSequence')[0], { CodeValue: '840539006', CodingSchemeDesignator: 'SCT' });
  const probabilities = all
    .filter((i) => i.ValueType === 'NUM')
    .map((i) => {
      const value = items(i, 'MeasuredValueSequence')[0];
      const cls = items(items(i, 'ContentSequence')[0], 'ConceptCodeSequence')[0]?.CodeMeaning;
      const unit = items(value, 'MeasurementUnitsCodeSequence')[0];
      return [cls, Number(value?.NumericValue), unit?.CodeValue];
    });
  t.deepEqual(probabilities, [
    ['COVID-19', 0.8712, '{probability}'],
    ['Pneumonia', 0.1011, '{probability}'],
    ['Normal', 0.0277, '{probability}'],
  ]);
  const observerUid = all.find((i) => conceptOf(i) === 'Device Observer UID');
  t.is(observerUid?.UID, MODEL.modelUid);
});

test('the SR references the source image and the heatmap SC, in the content and as evidence', (t) => {
  const source = makeImageFile();
  const heatmap = heatmapOf(source);
  const ds = readBack(writeStructuredReport(request(source, { heatmaps: [heatmap] })).bytes);
  const referenced = flatten(ds)
    .filter((i) => i.ValueType === 'IMAGE')
    .map((i) => items(i, 'ReferencedSOPSequence')[0]?.ReferencedSOPInstanceUID);
  t.true(referenced.includes(source.sopInstanceUid));
  t.true(referenced.includes(heatmap.sopInstanceUid));
  const evidence = items(ds, 'CurrentRequestedProcedureEvidenceSequence');
  t.is(evidence.length, 1);
  t.is(evidence[0]?.StudyInstanceUID, source.studyInstanceUid);
  const bySeries = Object.fromEntries(
    items(evidence[0], 'ReferencedSeriesSequence').map((s) => [
      s.SeriesInstanceUID,
      items(s, 'ReferencedSOPSequence').map((r) => r.ReferencedSOPInstanceUID),
    ]),
  );
  t.deepEqual(bySeries, {
    [source.seriesInstanceUid]: [source.sopInstanceUid],
    [heatmap.seriesInstanceUid]: [heatmap.sopInstanceUid],
  });
});

test('deterministic: same inputs, same bytes and UIDs; revision and model change them', (t) => {
  const source = makeImageFile();
  const first = writeStructuredReport(request(source));
  const again = writeStructuredReport(request(source));
  t.deepEqual(again.bytes, first.bytes);
  const revised = writeStructuredReport(
    request(source, { revision: 1, supersedesRevision: 0, heatmaps: [heatmapOf(source, 1)] }),
  );
  const otherModel = writeStructuredReport(request(source, { model: { ...MODEL, version: '2.0.0' } }));
  t.is(new Set([first, revised, otherModel].map((o) => o.sopInstanceUid)).size, 3);
  t.is(new Set([first, revised, otherModel].map((o) => o.seriesInstanceUid)).size, 3);
  const sc = heatmapOf(source);
  t.not(first.sopInstanceUid, sc.sopInstanceUid);
  t.not(first.seriesInstanceUid, sc.seriesInstanceUid, 'SR and heatmaps each have their own series');
  // A corrected SR names the SR it replaces: exactly the one revision 0 produced.
  const predecessor = items(readBack(revised.bytes), 'PredecessorDocumentsSequence')[0];
  const series = items(predecessor, 'ReferencedSeriesSequence')[0];
  t.is(series?.SeriesInstanceUID, first.seriesInstanceUid);
  t.is(items(series, 'ReferencedSOPSequence')[0]?.ReferencedSOPInstanceUID, first.sopInstanceUid);
  t.regex(String(readBack(revised.bytes).SeriesDescription), /corrected, replaces r0/);
});

test('a class outside the known three gets a declared local code (dciodvfy does not know private schemes)', async (t) => {
  t.deepEqual(classCode('Tuberculosis (suspected)'), {
    CodeValue: 'C-TUBERCULOSIS-S',
    CodingSchemeDesignator: '99CXRGW',
    CodeMeaning: 'Tuberculosis (suspected)',
  });
  t.is(classCode('Pneumonia').CodingSchemeDesignator, 'SCT');
  const source = makeImageFile();
  const sr = writeStructuredReport(
    request(source, {
      classification: { classes: ['normal', 'tuberculosis'], probabilities: [0.4, 0.6], predicted: 'tuberculosis' },
      heatmaps: [],
    }),
  );
  const ds = readBack(sr.bytes);
  t.like(items(ds, 'CodingSchemeIdentificationSequence')[0], { CodingSchemeDesignator: '99CXRGW' });
  const v = await validate(sr.bytes);
  t.deepEqual(v.errors, [], v.output);
  t.log(`warnings (expected: only the unregistered 99CXRGW scheme): ${v.warnings.length}`);
  t.true(v.warnings.length > 0);
  t.true(
    v.warnings.every((w) => w.includes('Unrecognized defined term <99CXRGW>')),
    v.output,
  );
});
