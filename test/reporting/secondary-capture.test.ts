import test from 'ava';
import type { NaturalDataset } from 'dcmjs';
import { GatewayError } from '../../src/errors.js';
import { renderHeatmap } from '../../src/reporting/render-heatmap.js';
import {
  SC_SOP_CLASS_UID,
  writeSecondaryCapture,
  type ScSopClass,
  type SecondaryCaptureRequest,
} from '../../src/reporting/secondary-capture.js';
import type { RgbImage } from '../../src/reporting/heatmap-overlay.js';
import { makeImageFile, type SopClassKind } from '../helpers/dicom-factory.js';
import { runCommand } from '../helpers/run-command.js';
import { editFile } from '../imaging/pixel-fixtures.js';
import {
  CLASSIFICATION,
  CREATED_AT,
  EXPLANATION,
  HEATMAP_MODEL,
  MODEL,
  plantedRelevance,
  readBack,
  validate,
} from './reporting-fixtures.js';

/**
 * The only warnings dciodvfy (dicom3tools 2022-06) gives on our SCs, both from one attribute: Device UID in the
 * Contributing Equipment Sequence. IHE AI Results requires it there (it identifies the model weights), and
 * dicom3tools' dictionary of that sequence predates it, so it reports the file as a Standard Extended SOP Class,
 * which PS3.4 B.1.3 allows (extra Type 3 attributes). Nothing else may appear.
 */
const EXPLAINED_WARNINGS = [
  /^Warning - Attribute is not present in standard DICOM IOD - \(0x0018,0x1002\) UI Device UID\s*$/,
  /^Warning - Dicom dataset contains attributes not present in standard DICOM IOD - this is a Standard Extended SOP Class$/,
];

function image(rows = 40, columns = 30): RgbImage {
  const data = new Uint8Array(rows * columns * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  return { rows, columns, data };
}

function request(source: Uint8Array, overrides: Partial<SecondaryCaptureRequest> = {}): SecondaryCaptureRequest {
  return {
    source,
    image: image(),
    model: MODEL,
    classification: CLASSIFICATION,
    explanation: EXPLANATION,
    revision: 0,
    createdAt: CREATED_AT,
    ...overrides,
  };
}

const sequenceItem = (ds: NaturalDataset, keyword: string): NaturalDataset => {
  const items = ds[keyword];
  const first = Array.isArray(items) ? (items[0] as NaturalDataset | undefined) : undefined;
  if (!first) throw new Error(`${keyword} has no item`);
  return first;
};

const CASES: Array<{
  sopClass: ScSopClass;
  source: SopClassKind;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  revision: number;
  supersedes?: number;
}> = [];
for (const sopClass of ['secondary-capture', 'multiframe-true-color'] as const)
  for (const source of ['cr', 'dx-presentation'] as const)
    for (const photometric of ['MONOCHROME1', 'MONOCHROME2'] as const)
      for (const [revision, supersedes] of [
        [0, undefined],
        [2, 1],
      ] as const)
        CASES.push({ sopClass, source, photometric, revision, ...(supersedes === undefined ? {} : { supersedes }) });

for (const c of CASES) {
  const name = `${c.sopClass} from ${c.source} ${c.photometric}, revision ${c.revision}${c.supersedes === undefined ? '' : ` superseding ${c.supersedes}`}`;
  test(`dciodvfy: no errors, only the explained warnings: ${name}`, async (t) => {
    const source = makeImageFile({ rows: 96, columns: 80, sopClass: c.source, photometric: c.photometric });
    // A real rendered heatmap, so the pixel module describes real pixels.
    const rendered = await renderHeatmap(
      source.bytes,
      CLASSIFICATION,
      { ...EXPLANATION, relevance: plantedRelevance(96, 80, 32, 'pad', { row: 40, column: 30, sigma: 8 }).values },
      { ...HEATMAP_MODEL, preprocessing: { inputSize: 32, resize: 'pad', window: 'dicom', percentiles: [0.5, 99.5] } },
    );
    const sc = writeSecondaryCapture(
      request(source.bytes, {
        image: rendered.image,
        sopClass: c.sopClass,
        revision: c.revision,
        ...(c.supersedes === undefined ? {} : { supersedesRevision: c.supersedes }),
      }),
    );
    const v = await validate(sc.bytes);
    const unexplained = v.warnings.filter((w) => !EXPLAINED_WARNINGS.some((re) => re.test(w)));
    t.deepEqual(v.errors, [], v.output);
    t.deepEqual(unexplained, [], v.output);
    if (v.warnings.length > 0) t.log(`explained warnings: ${v.warnings.join(' | ')}`);
    t.regex(v.output, c.sopClass === 'secondary-capture' ? /^SCImage$/m : /^MultiframeTrueColorSCImage$/m);
    const ds = readBack(sc.bytes);
    t.is(ds.SOPClassUID, SC_SOP_CLASS_UID[c.sopClass]);
    t.is(ds.Rows, rendered.image.rows);
    t.is(ds.Columns, rendered.image.columns);
    t.regex(
      String(ds.SeriesDescription),
      c.supersedes === undefined
        ? /^AI heatmap \(LRP\) - NOT FOR DIAGNOSTIC USE$/
        : /^AI heatmap \(LRP\) corrected, replaces r1 - NOT FOR DIAGNOSTIC USE$/,
    );
  });
}

test('the SC is in the source study, references the source, and carries the provenance the guide lists', (t) => {
  const source = makeImageFile({ sopClass: 'dx-presentation', patientId: 'P-77', accessionNumber: 'A-123' });
  const sc = writeSecondaryCapture(request(source.bytes));
  const ds = readBack(sc.bytes);
  const src = readBack(source.bytes);
  for (const keyword of [
    'PatientName',
    'PatientID',
    'PatientBirthDate',
    'PatientSex',
    'StudyInstanceUID',
    'StudyDate',
    'StudyTime',
    'AccessionNumber',
    'StudyID',
    'ReferringPhysicianName',
  ]) {
    t.deepEqual(ds[keyword], src[keyword], keyword);
  }
  t.is(ds.StudyInstanceUID, source.studyInstanceUid);
  t.not(ds.SeriesInstanceUID, source.seriesInstanceUid);
  t.is(ds.SeriesInstanceUID, sc.seriesInstanceUid);
  t.is(ds.SOPInstanceUID, sc.sopInstanceUid);
  t.is(ds.Modality, 'OT');
  t.is(ds.ConversionType, 'WSD');
  t.deepEqual(ds.ImageType, ['DERIVED', 'SECONDARY']);
  t.is(ds.BurnedInAnnotation, 'YES');
  t.deepEqual(
    [
      ds.SamplesPerPixel,
      ds.PhotometricInterpretation,
      ds.PlanarConfiguration,
      ds.BitsAllocated,
      ds.BitsStored,
      ds.HighBit,
      ds.PixelRepresentation,
    ],
    [3, 'RGB', 0, 8, 8, 7, 0],
  );
  t.deepEqual(
    [ds.ContentDate, ds.ContentTime, ds.InstanceCreationDate, ds.InstanceCreationTime],
    ['20240517', '093015', '20240517', '093015'],
  );
  const reference = sequenceItem(ds, 'SourceImageSequence');
  t.is(reference.ReferencedSOPClassUID, source.sopClassUid);
  t.is(reference.ReferencedSOPInstanceUID, source.sopInstanceUid);
  const equipment = sequenceItem(ds, 'ContributingEquipmentSequence');
  t.like(sequenceItem(equipment, 'PurposeOfReferenceCodeSequence'), {
    CodeValue: 'Newcode1',
    CodingSchemeDesignator: '99IHE',
    CodeMeaning: 'Processing Algorithm',
  });
  t.is(equipment.DeviceUID, MODEL.modelUid);
  t.is(equipment.ManufacturerModelName, MODEL.name);
  t.is(ds.Manufacturer, 'cxr-gateway');
  t.is(ds.SecondaryCaptureDeviceManufacturer, 'cxr-gateway');
  t.regex(
    String(ds.DerivationDescription),
    /^LRP \(isnet, epsilon 0\.01, alpha 2, beta 1\) relevance map for 'COVID-19' from model densenet201-cxr 1\.2\.0/,
  );
  t.deepEqual(ds.PatientOrientation, ['L', 'F']);
  t.is(ds.Laterality, undefined, 'Type 2C, absent for the unpaired chest');
  const pixels = new Uint8Array((ds.PixelData as ArrayBuffer[])[0] ?? new ArrayBuffer(0));
  t.deepEqual(pixels.subarray(0, 40 * 30 * 3), image().data);
});

test('dcmdump reads it as Explicit VR Little Endian with our UIDs', async (t) => {
  const source = makeImageFile({ sopClass: 'cr' });
  const sc = writeSecondaryCapture(request(source.bytes));
  const v = await validate(sc.bytes);
  const dump = await runCommand('dcmdump', [
    '+P',
    '0002,0010',
    '+P',
    '0020,000d',
    '+P',
    '0008,0018',
    '+P',
    '0008,0016',
    v.file,
  ]);
  t.is(dump.code, 0, dump.stderr);
  t.regex(dump.stdout, /\(0002,0010\) UI =LittleEndianExplicit/);
  t.true(dump.stdout.includes(`[${source.studyInstanceUid}]`));
  t.true(dump.stdout.includes(`[${sc.sopInstanceUid}]`));
  t.regex(dump.stdout, /=SecondaryCaptureImageStorage/);
});

test('same inputs give the same UIDs and the same bytes; revision, model and output kind change the UIDs', (t) => {
  const source = makeImageFile({ sopClass: 'dx-presentation' });
  const first = writeSecondaryCapture(request(source.bytes));
  const again = writeSecondaryCapture(request(Buffer.from(source.bytes)));
  t.deepEqual(again.bytes, first.bytes);
  t.is(again.sopInstanceUid, first.sopInstanceUid);
  const revised = writeSecondaryCapture(request(source.bytes, { revision: 1, supersedesRevision: 0 }));
  const otherModel = writeSecondaryCapture(request(source.bytes, { model: { ...MODEL, version: '1.3.0' } }));
  const otherWeights = writeSecondaryCapture(request(source.bytes, { model: { ...MODEL, modelUid: '2.25.9' } }));
  const multiframe = writeSecondaryCapture(request(source.bytes, { sopClass: 'multiframe-true-color' }));
  const otherClass = writeSecondaryCapture(
    request(source.bytes, { explanation: { ...EXPLANATION, targetClass: 'pneumonia' } }),
  );
  const all = [first, revised, otherModel, otherWeights, multiframe, otherClass];
  t.is(new Set(all.map((o) => o.sopInstanceUid)).size, all.length);
  t.is(new Set([first, revised, otherModel, otherWeights, multiframe].map((o) => o.seriesInstanceUid)).size, 5);
  t.is(
    otherClass.seriesInstanceUid,
    first.seriesInstanceUid,
    "heatmaps of several classes share the source's AI series",
  );
  // One heatmap series per study and revision: an image of another source series of the same study joins it.
  const secondImage = makeImageFile({
    studyInstanceUid: source.studyInstanceUid,
    instanceNumber: 7,
  });
  t.not(secondImage.seriesInstanceUid, source.seriesInstanceUid);
  const sibling = writeSecondaryCapture(request(secondImage.bytes, { instanceNumber: 2 }));
  t.is(sibling.seriesInstanceUid, first.seriesInstanceUid, 'one heatmap series per study and revision');
  t.not(sibling.sopInstanceUid, first.sopInstanceUid);
  t.is(readBack(sibling.bytes).InstanceNumber, 2, "the image's place in the job, not the source's number");
  const otherStudy = writeSecondaryCapture(request(makeImageFile({}).bytes));
  t.not(otherStudy.seriesInstanceUid, first.seriesInstanceUid);
  // Series numbers: 9001 for revision 0's heatmaps, 9011 for revision 1's (series-numbers.ts).
  t.is(readBack(first.bytes).SeriesNumber, 9001);
  t.is(readBack(revised.bytes).SeriesNumber, 9011);
});

test('non-ASCII patient names survive, declared as UTF-8', async (t) => {
  // The factory's bytes are UTF-8 (dcmjs always writes UTF-8) but declared ISO_IR 100; fix the declaration in
  // place (same length) so the source is a correct UTF-8 file.
  const source = Buffer.from(makeImageFile({ patientName: 'Müller^Jörg' }).bytes);
  const at = source.indexOf('ISO_IR 100');
  t.true(at > 0);
  source.write('ISO_IR 192', at, 'latin1');
  const sc = writeSecondaryCapture(request(source));
  const ds = readBack(sc.bytes);
  t.is(ds.SpecificCharacterSet, 'ISO_IR 192');
  t.deepEqual(ds.PatientName, [{ Alphabetic: 'Müller^Jörg' }]);
  const v = await validate(sc.bytes);
  t.deepEqual(v.errors, [], v.output);
  const ascii = readBack(writeSecondaryCapture(request(makeImageFile().bytes)).bytes);
  t.is(ascii.SpecificCharacterSet, undefined, 'default repertoire needs no declaration');
});

test('a source that states Laterality keeps it; one without a usable UID is refused', (t) => {
  const withLaterality = editFile(makeImageFile().bytes, (_meta, ds) => {
    ds['00200060'] = { vr: 'CS', Value: ['R'] };
  });
  t.is(readBack(writeSecondaryCapture(request(withLaterality)).bytes).Laterality, 'R');
  const noSeries = editFile(makeImageFile().bytes, (_meta, ds) => {
    delete ds['0020000E'];
  });
  const error = t.throws(() => writeSecondaryCapture(request(noSeries)), { instanceOf: GatewayError });
  t.is((error as GatewayError).code, 'SOURCE_INCOMPLETE');
  t.regex(error?.message ?? '', /SeriesInstanceUID/);
});

test('revisions are checked: a revision supersedes only an earlier one', (t) => {
  const source = makeImageFile().bytes;
  for (const bad of [
    { revision: -1 },
    { revision: 1.5 },
    { revision: 1, supersedesRevision: 1 },
    { revision: 0, supersedesRevision: 0 },
  ]) {
    const error = t.throws(() => writeSecondaryCapture(request(source, bad)), { instanceOf: GatewayError });
    t.is((error as GatewayError).code, 'OUTPUT_REVISION_INVALID');
  }
});

test('the series description honours a site that allows diagnostic use', (t) => {
  const ds = readBack(writeSecondaryCapture(request(makeImageFile().bytes, { usageNotice: '' })).bytes);
  t.is(ds.SeriesDescription, 'AI heatmap (LRP)');
});
