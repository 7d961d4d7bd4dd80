import test from 'ava';
import type { NaturalDataset } from 'dcmjs';
import { writeSecondaryCapture, type DerivedObject } from '../../src/reporting/secondary-capture.js';
import {
  COMPREHENSIVE_SR_SOP_CLASS_UID,
  writeStructuredReport,
  type ReportedImage,
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

function image(source: SyntheticImageFile, heatmap: DerivedObject | undefined = heatmapOf(source)): ReportedImage {
  return {
    source: source.bytes,
    classification: CLASSIFICATION,
    explanation: EXPLANATION,
    ...(heatmap === undefined ? {} : { heatmap }),
  };
}

function request(
  source: SyntheticImageFile,
  overrides: Partial<StructuredReportRequest> = {},
): StructuredReportRequest {
  return {
    images: [image(source)],
    model: MODEL,
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
  ['no heatmap', { noHeatmap: true }],
  ['three images of two series', { images: 3 }],
] as const) {
  test(`dciodvfy: zero errors and zero warnings: ${name}`, async (t) => {
    const { sourceKind, noHeatmap, images, ...rest } = { sourceKind: undefined, ...overrides } as {
      sourceKind?: 'cr';
      noHeatmap?: boolean;
      images?: number;
    } & Partial<StructuredReportRequest>;
    const source = makeImageFile(sourceKind === 'cr' ? { sopClass: 'cr', photometric: 'MONOCHROME1' } : {});
    const more = Array.from({ length: (images ?? 1) - 1 }, (_, i) =>
      makeImageFile({ studyInstanceUid: source.studyInstanceUid, instanceNumber: i + 2 }),
    );
    const predecessor =
      rest.supersedesRevision === undefined
        ? {}
        : { predecessor: writeStructuredReport(request(source, { revision: rest.supersedesRevision })) };
    const sr = writeStructuredReport(
      request(source, {
        images: [source, ...more].map((s) => image(s, noHeatmap ? undefined : heatmapOf(s, rest.revision ?? 0))),
        ...predecessor,
        ...rest,
      }),
    );
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

test('one SR for the study: every image has its measurement group, and every source and heatmap is referenced in the content and as evidence', (t) => {
  const source = makeImageFile();
  const second = makeImageFile({ studyInstanceUid: source.studyInstanceUid, instanceNumber: 4 });
  const third = makeImageFile({
    studyInstanceUid: source.studyInstanceUid,
    seriesInstanceUid: second.seriesInstanceUid,
    instanceNumber: 5,
  });
  const sources = [source, second, third];
  const heatmaps = sources.map((s) => heatmapOf(s));
  t.is(new Set(heatmaps.map((h) => h.seriesInstanceUid)).size, 1, 'the heatmaps share one series');
  const pneumonia = { ...CLASSIFICATION, predicted: 'pneumonia' };
  const ds = readBack(
    writeStructuredReport(
      request(source, {
        images: sources.map((s, i) => ({
          ...image(s, heatmaps[i]),
          ...(i === 1 ? { classification: pneumonia } : {}),
        })),
      }),
    ).bytes,
  );
  t.is(ds.InstanceNumber, 1);
  t.is(ds.SeriesNumber, 9002);
  const referenced = flatten(ds)
    .filter((i) => i.ValueType === 'IMAGE')
    .map((i) => items(i, 'ReferencedSOPSequence')[0]?.ReferencedSOPInstanceUID);
  for (const uid of [...sources.map((s) => s.sopInstanceUid), ...heatmaps.map((h) => h.sopInstanceUid)])
    t.true(referenced.includes(uid), uid);
  // One measurement group per image, in the given order, each with its own finding inferred from its own source.
  const measurements = flatten(ds).find((i) => conceptOf(i) === 'Imaging Measurements');
  const groups = items(measurements, 'ContentSequence');
  t.is(groups.length, 3);
  groups.forEach((group, i) => {
    t.is(conceptOf(group), 'Measurement Group');
    const finding = items(group, 'ContentSequence').find((c) => conceptOf(c) === 'Finding');
    t.is(items(finding, 'ConceptCodeSequence')[0]?.CodeMeaning, i === 1 ? 'Pneumonia' : 'COVID-19');
    const from = items(finding, 'ContentSequence')[0];
    t.is(from?.RelationshipType, 'INFERRED FROM');
    t.is(items(from, 'ReferencedSOPSequence')[0]?.ReferencedSOPInstanceUID, sources[i]?.sopInstanceUid);
    const own = items(group, 'ContentSequence').filter((c) => c.ValueType === 'IMAGE');
    t.deepEqual(
      own.map((c) => items(c, 'ReferencedSOPSequence')[0]?.ReferencedSOPInstanceUID),
      [heatmaps[i]?.sopInstanceUid],
    );
  });
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
    [second.seriesInstanceUid]: [second.sopInstanceUid, third.sopInstanceUid],
    [heatmaps[0]!.seriesInstanceUid]: heatmaps.map((h) => h.sopInstanceUid),
  });
});

test('an image of another study is refused: one SR covers one study', (t) => {
  const source = makeImageFile();
  const stranger = makeImageFile();
  t.throws(() => writeStructuredReport(request(source, { images: [image(source), image(stranger)] })), {
    message: /another study/,
  });
  t.throws(() => writeStructuredReport(request(source, { images: [] })), { message: /at least one image/ });
});

test('deterministic: same inputs, same bytes and UIDs; revision and model change them; a correction names its predecessor', (t) => {
  const source = makeImageFile();
  const first = writeStructuredReport(request(source));
  const again = writeStructuredReport(request(source));
  t.deepEqual(again.bytes, first.bytes);
  const revised = writeStructuredReport(
    request(source, {
      revision: 1,
      supersedesRevision: 0,
      predecessor: first,
      images: [image(source, heatmapOf(source, 1))],
    }),
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
  t.is(readBack(revised.bytes).SeriesNumber, 9012);
  t.is(items(readBack(first.bytes), 'PredecessorDocumentsSequence').length, 0);
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
      images: [
        {
          source: source.bytes,
          classification: { classes: ['normal', 'tuberculosis'], probabilities: [0.4, 0.6], predicted: 'tuberculosis' },
        },
      ],
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
