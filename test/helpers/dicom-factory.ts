// Test helper: synthetic but standard-conformant DICOM chest X-ray files.
//
// makeImageFile() builds a Part 10 file (DX "for presentation", DX "for processing" or CR) with dcmjs; the
// datasets are written so that `dciodvfy` reports zero errors for every SOP class / photometric / bit depth.
// compressFile() turns a native (uncompressed) file into one of the compressed transfer syntaxes with DCMTK,
// or, for JPEG 2000 (which DCMTK 3.6.7 cannot encode), with OpenJPEG's `opj_compress` plus a dcmjs wrapper.
//
// External tools used: dcmtk (dcmcjpeg, dcmcjpls, dcmcrle, dcmconv), libopenjp2-tools (opj_compress),
// dicom3tools (dciodvfy).

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dcmjs from 'dcmjs';
import type { DicomDictInstance, DicomJson, NaturalDataset } from 'dcmjs';

const execFileAsync = promisify(execFile);
const { DicomDict, DicomMessage, DicomMetaDictionary } = dcmjs.data;

// ---------------------------------------------------------------------------------------------------------------
// UIDs

export const SOP_CLASS_UID = {
  'dx-presentation': '1.2.840.10008.5.1.4.1.1.1.1',
  'dx-processing': '1.2.840.10008.5.1.4.1.1.1.1.1',
  cr: '1.2.840.10008.5.1.4.1.1.1',
} as const;

export const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

/** Implementation Class UID written in the file meta information of every generated file. */
const IMPLEMENTATION_CLASS_UID = '2.25.223483526387165012930291847262910347561';
const IMPLEMENTATION_VERSION_NAME = 'CXRGW_TESTFACT';

/** A fresh UID of the form `2.25.<decimal of a random 128-bit integer>` (ISO/IEC 9834-8 UUID-derived). */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomBytes(16).toString('hex')}`).toString(10)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Synthetic image

export type SopClassKind = keyof typeof SOP_CLASS_UID;

export interface SyntheticImageOptions {
  /** Default 256. */
  rows?: number;
  /** Default 256. */
  columns?: number;
  /** Default 16. */
  bitsAllocated?: 8 | 16;
  /** Default 12 when bitsAllocated is 16, 8 when it is 8. DX requires 6..16. */
  bitsStored?: number;
  /** Default MONOCHROME2. */
  photometric?: 'MONOCHROME1' | 'MONOCHROME2';
  /** Default dx-presentation. */
  sopClass?: SopClassKind;
  /** Default: fresh 2.25 UID. */
  studyInstanceUid?: string;
  /** Default: fresh 2.25 UID. */
  seriesInstanceUid?: string;
  /** Default: fresh 2.25 UID. */
  sopInstanceUid?: string;
  /** Default 'CXRTEST0001'. */
  patientId?: string;
  /** Default 'Test^Synthetic'. */
  patientName?: string;
  /** Default 'ACC0001'. */
  accessionNumber?: string;
  /** Default CHEST. */
  bodyPartExamined?: string;
  /** Default PA. */
  viewPosition?: string;
  /** Default from sopClass: DX for the DX classes, CR for CR. */
  modality?: string;
  /** Default 1. */
  instanceNumber?: number;
  /** Default 1. */
  seriesNumber?: number;
  /** Pixel content is a deterministic function of (seed, size, bit depth, photometric). Default 0. */
  seed?: number;
  /** Default explicit (Explicit VR Little Endian). */
  transferSyntax?: 'explicit' | 'implicit';
}

export interface SyntheticImageFile {
  bytes: Buffer;
  sopInstanceUid: string;
  sopClassUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  transferSyntaxUid: string;
}

interface ResolvedGeometry {
  rows: number;
  columns: number;
  bitsAllocated: 8 | 16;
  bitsStored: number;
  photometric: 'MONOCHROME1' | 'MONOCHROME2';
  seed: number;
}

/** mulberry32: small, fast, deterministic 32-bit PRNG returning floats in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function resolveGeometry(opts: SyntheticImageOptions): ResolvedGeometry {
  const rows = opts.rows ?? 256;
  const columns = opts.columns ?? 256;
  const bitsAllocated = opts.bitsAllocated ?? 16;
  const bitsStored = opts.bitsStored ?? (bitsAllocated === 16 ? 12 : 8);
  const photometric = opts.photometric ?? 'MONOCHROME2';
  const seed = opts.seed ?? 0;
  for (const [name, v] of [
    ['rows', rows],
    ['columns', columns],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 65535) throw new Error(`${name} must be an integer in 1..65535, got ${v}`);
  }
  if (bitsAllocated !== 8 && bitsAllocated !== 16)
    throw new Error(`bitsAllocated must be 8 or 16, got ${String(bitsAllocated)}`);
  if (!Number.isInteger(bitsStored) || bitsStored < 1 || bitsStored > bitsAllocated) {
    throw new Error(`bitsStored must be an integer in 1..${bitsAllocated}, got ${bitsStored}`);
  }
  if (!Number.isFinite(seed)) throw new Error(`seed must be a finite number, got ${seed}`);
  return { rows, columns, bitsAllocated, bitsStored, photometric, seed };
}

/**
 * The native pixel data (little endian, one sample per pixel, unsigned, padded to an even length) a file made
 * with these options carries. A chest-like phantom: a smooth vertical/horizontal gradient, two dark "lung"
 * ellipses, a bright "mediastinum" band, and seeded noise; ellipse placement and noise depend on the seed.
 * For MONOCHROME1 the values are inverted so the image displays the same way.
 */
export function makePixelData(opts: SyntheticImageOptions = {}): Buffer {
  const g = resolveGeometry(opts);
  const rand = prng(Math.floor(g.seed * 2654435761) ^ 0x5eed);
  const maxVal = 2 ** g.bitsStored - 1;
  // Seeded anatomy jitter.
  const jitter = (): number => (rand() - 0.5) * 0.08;
  const lungs = [
    { cx: 0.3 + jitter(), cy: 0.48 + jitter(), rx: 0.16 + jitter() / 2, ry: 0.3 + jitter() / 2 },
    { cx: 0.7 + jitter(), cy: 0.48 + jitter(), rx: 0.16 + jitter() / 2, ry: 0.3 + jitter() / 2 },
  ];
  const bytesPerSample = g.bitsAllocated / 8;
  const length = g.rows * g.columns * bytesPerSample;
  const buf = Buffer.alloc(length + (length % 2));
  for (let y = 0; y < g.rows; y++) {
    const fy = g.rows > 1 ? y / (g.rows - 1) : 0;
    for (let x = 0; x < g.columns; x++) {
      const fx = g.columns > 1 ? x / (g.columns - 1) : 0;
      let v = 0.35 + 0.3 * fy + 0.1 * fx;
      for (const l of lungs) {
        const d = ((fx - l.cx) / l.rx) ** 2 + ((fy - l.cy) / l.ry) ** 2;
        if (d < 1) v -= 0.3 * (1 - d * 0.5);
      }
      if (Math.abs(fx - 0.5) < 0.07) v += 0.15;
      v += (rand() - 0.5) * 0.06;
      v = Math.min(1, Math.max(0, v));
      let p = Math.round(v * maxVal);
      if (g.photometric === 'MONOCHROME1') p = maxVal - p;
      const i = y * g.columns + x;
      if (bytesPerSample === 1) buf[i] = p;
      else buf.writeUInt16LE(p, i * 2);
    }
  }
  return buf;
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  const ab = new ArrayBuffer(buf.byteLength);
  new Uint8Array(ab).set(buf);
  return ab;
}

function pixelRange(pixels: Buffer, g: ResolvedGeometry): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  const n = g.rows * g.columns;
  for (let i = 0; i < n; i++) {
    const p = g.bitsAllocated === 8 ? (pixels[i] ?? 0) : pixels.readUInt16LE(i * 2);
    if (p < min) min = p;
    if (p > max) max = p;
  }
  return { min, max };
}

function dicomDateTime(d: Date): { date: string; time: string } {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return {
    date: `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}`,
    time: `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`,
  };
}

/** Serialises a file meta + naturalised dataset pair to Part 10 bytes. */
function writePart10(meta: NaturalDataset, dataset: NaturalDataset, pixelVr: 'OB' | 'OW'): Buffer {
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  const denat: DicomJson = DicomMetaDictionary.denaturalizeDataset(dataset);
  const pixel = denat['7FE00010'];
  if (pixel) pixel.vr = pixelVr;
  dict.dict = denat;
  return Buffer.from(dict.write({ fragmentMultiframe: false }));
}

function fileMeta(sopClassUid: string, sopInstanceUid: string, transferSyntaxUid: string): NaturalDataset {
  return {
    FileMetaInformationVersion: toArrayBuffer(Buffer.from([0, 1])),
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: transferSyntaxUid,
    ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
    ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
  };
}

/** CID 4010 "DX View" codes for the View Position values a chest series normally carries. */
const VIEW_CODES: Record<string, { CodeValue: string; CodeMeaning: string }> = {
  PA: { CodeValue: '272479007', CodeMeaning: 'postero-anterior' },
  AP: { CodeValue: '399348003', CodeMeaning: 'antero-posterior' },
  LL: { CodeValue: '399173006', CodeMeaning: 'left lateral' },
  RL: { CodeValue: '399198007', CodeMeaning: 'right lateral' },
};

/** View Code Sequence (DX Positioning) for a known View Position; nothing for an unknown one. */
function viewCode(viewPosition: string): NaturalDataset {
  const code = VIEW_CODES[viewPosition.toUpperCase()];
  if (!code) return {};
  return { ViewCodeSequence: [{ ...code, CodingSchemeDesignator: 'SCT', ViewModifierCodeSequence: [] }] };
}

/** Row / column directions of a chest radiograph hung the conventional way for its view. */
function patientOrientation(viewPosition: string): [string, string] {
  switch (viewPosition.toUpperCase()) {
    case 'LL':
      return ['P', 'F'];
    case 'RL':
      return ['A', 'F'];
    default:
      return ['L', 'F'];
  }
}

/**
 * Builds a synthetic chest X-ray as Part 10 bytes: DX (for presentation / for processing) or CR IOD with every
 * Type 1 and Type 2 attribute its modules need, so dciodvfy reports no errors and no warnings. Overriding `modality`
 * with a value that does not fit the SOP class (e.g. 'CR' on a DX class) is allowed but makes the file invalid.
 */
export function makeImageFile(opts: SyntheticImageOptions = {}): SyntheticImageFile {
  const g = resolveGeometry(opts);
  const kind: SopClassKind = opts.sopClass ?? 'dx-presentation';
  const isDx = kind !== 'cr';
  if (isDx && g.bitsStored < 6) throw new Error(`DX images need bitsStored >= 6, got ${g.bitsStored}`);
  const sopClassUid = SOP_CLASS_UID[kind];
  const sopInstanceUid = opts.sopInstanceUid ?? newUid();
  const studyInstanceUid = opts.studyInstanceUid ?? newUid();
  const seriesInstanceUid = opts.seriesInstanceUid ?? newUid();
  const transferSyntaxUid =
    (opts.transferSyntax ?? 'explicit') === 'implicit' ? IMPLICIT_VR_LITTLE_ENDIAN : EXPLICIT_VR_LITTLE_ENDIAN;
  const modality = opts.modality ?? (isDx ? 'DX' : 'CR');
  const bodyPart = opts.bodyPartExamined ?? 'CHEST';
  const viewPosition = opts.viewPosition ?? 'PA';
  const pixels = makePixelData(opts);
  const { min, max } = pixelRange(pixels, g);
  const { date, time } = dicomDateTime(new Date());
  const monochrome1 = g.photometric === 'MONOCHROME1';

  const ds: NaturalDataset = {
    // SOP Common
    SpecificCharacterSet: 'ISO_IR 100',
    ImageType: ['ORIGINAL', 'PRIMARY'],
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    SOPClassUID: sopClassUid,
    SOPInstanceUID: sopInstanceUid,
    // General Study
    StudyDate: date,
    SeriesDate: date,
    AcquisitionDate: date,
    ContentDate: date,
    StudyTime: time,
    SeriesTime: time,
    AcquisitionTime: time,
    ContentTime: time,
    AccessionNumber: opts.accessionNumber ?? 'ACC0001',
    Modality: modality,
    ...(isDx ? { PresentationIntentType: kind === 'dx-presentation' ? 'FOR PRESENTATION' : 'FOR PROCESSING' } : {}),
    Manufacturer: 'cxr-gateway test factory',
    ReferringPhysicianName: '',
    StudyDescription: 'Synthetic chest X-ray',
    SeriesDescription: `Synthetic ${viewPosition} chest`,
    ManufacturerModelName: 'dicom-factory',
    ...(isDx
      ? {
          AnatomicRegionSequence: [{ CodeValue: '43799004', CodingSchemeDesignator: 'SCT', CodeMeaning: 'Chest' }],
          ...viewCode(viewPosition),
        }
      : {}),
    // Patient
    PatientName: opts.patientName ?? 'Test^Synthetic',
    PatientID: opts.patientId ?? 'CXRTEST0001',
    PatientBirthDate: '',
    PatientSex: '',
    // Series / acquisition
    BodyPartExamined: bodyPart,
    SoftwareVersions: '1',
    ...(isDx ? { DetectorType: 'SCINTILLATOR', ImagerPixelSpacing: [0.143, 0.143] } : {}),
    ViewPosition: viewPosition,
    ...(isDx ? { PositionerType: 'COLUMN' } : {}),
    StudyInstanceUID: studyInstanceUid,
    SeriesInstanceUID: seriesInstanceUid,
    StudyID: '1',
    SeriesNumber: opts.seriesNumber ?? 1,
    InstanceNumber: opts.instanceNumber ?? 1,
    PatientOrientation: patientOrientation(viewPosition),
    ...(isDx ? { ImageLaterality: 'U' } : {}),
    // Image Pixel
    SamplesPerPixel: 1,
    PhotometricInterpretation: g.photometric,
    Rows: g.rows,
    Columns: g.columns,
    BitsAllocated: g.bitsAllocated,
    BitsStored: g.bitsStored,
    HighBit: g.bitsStored - 1,
    PixelRepresentation: 0,
    ...(isDx
      ? {
          PixelIntensityRelationship: 'LIN',
          PixelIntensityRelationshipSign: monochrome1 ? 1 : -1,
          RescaleIntercept: 0,
          RescaleSlope: 1,
          RescaleType: 'US',
        }
      : {}),
    BurnedInAnnotation: 'NO',
    LossyImageCompression: '00',
    ...(kind !== 'dx-processing'
      ? { WindowCenter: [(min + max) / 2], WindowWidth: [Math.max(1, max - min + 1)], VOILUTFunction: 'LINEAR' }
      : {}),
    ...(isDx ? { AcquisitionContextSequence: [] } : {}),
    ...(isDx ? { PresentationLUTShape: monochrome1 ? 'INVERSE' : 'IDENTITY' } : {}),
    PixelData: [toArrayBuffer(pixels)],
    _vrMap: { PixelData: g.bitsAllocated === 8 ? 'OB' : 'OW' },
  };

  const bytes = writePart10(
    fileMeta(sopClassUid, sopInstanceUid, transferSyntaxUid),
    ds,
    g.bitsAllocated === 8 ? 'OB' : 'OW',
  );
  return { bytes, sopInstanceUid, sopClassUid, studyInstanceUid, seriesInstanceUid, transferSyntaxUid };
}

/** makeImageFile() written to `<dir>/<sopInstanceUid>.dcm`. */
export async function writeImageFile(
  dir: string,
  opts: SyntheticImageOptions = {},
): Promise<SyntheticImageFile & { path: string }> {
  const file = makeImageFile(opts);
  const path = join(dir, `${file.sopInstanceUid}.dcm`);
  await writeFile(path, file.bytes);
  return { path, ...file };
}

// ---------------------------------------------------------------------------------------------------------------
// External tools

interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

function isExecError(e: unknown): e is Error & { code?: number | string; stdout?: string; stderr?: string } {
  return e instanceof Error;
}

/** Runs a tool and returns its exit status and output; only a tool that cannot be started throws. */
async function runTool(cmd: string, args: readonly string[]): Promise<ToolResult> {
  try {
    const { stdout, stderr } = await execFileAsync(cmd, args, { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (isExecError(e) && typeof e.code === 'number') {
      return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
    throw new Error(`could not run ${cmd}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Runs a tool and throws, with its output, unless it exits 0. */
async function runToolOk(cmd: string, args: readonly string[]): Promise<ToolResult> {
  const r = await runTool(cmd, args);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  }
  return r;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'dicom-factory-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs dicom3tools' `dciodvfy` (IOD / attribute validator) on a file. It reports on stderr, one finding per line,
 * lines starting with `Error` or `Warning`; `output` is everything it printed.
 */
export async function dciodvfy(path: string): Promise<{ errors: string[]; warnings: string[]; output: string }> {
  const r = await runTool('dciodvfy', [path]);
  const output = `${r.stderr}${r.stdout}`;
  const lines = output.split(/\r?\n/);
  return {
    errors: lines.filter((l) => l.startsWith('Error')),
    warnings: lines.filter((l) => l.startsWith('Warning')),
    output,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading files back

interface PixelModule {
  transferSyntaxUid: string;
  rows: number;
  columns: number;
  bitsAllocated: number;
  bitsStored: number;
  samplesPerPixel: number;
  pixelRepresentation: number;
  numberOfFrames: number;
}

function firstNumber(ds: DicomJson, tag: string, fallback?: number): number {
  const v = ds[tag]?.Value?.[0];
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  if (Number.isFinite(n)) return n;
  if (fallback !== undefined) return fallback;
  throw new Error(`attribute (${tag.slice(0, 4)},${tag.slice(4)}) is missing or not numeric`);
}

function firstString(ds: DicomJson, tag: string): string | undefined {
  const v = ds[tag]?.Value?.[0];
  return typeof v === 'string' ? v.replace(/[\0 ]+$/, '') : undefined;
}

function pixelModule(dict: { meta: DicomJson; dict: DicomJson }): PixelModule {
  return {
    transferSyntaxUid: firstString(dict.meta, '00020010') ?? '',
    rows: firstNumber(dict.dict, '00280010'),
    columns: firstNumber(dict.dict, '00280011'),
    bitsAllocated: firstNumber(dict.dict, '00280100'),
    bitsStored: firstNumber(dict.dict, '00280101'),
    samplesPerPixel: firstNumber(dict.dict, '00280002', 1),
    pixelRepresentation: firstNumber(dict.dict, '00280103', 0),
    numberOfFrames: firstNumber(dict.dict, '00280008', 1),
  };
}

/**
 * Parses Part 10 bytes. dcmjs logs "Invalid vr type ox - using OW" (on its 'validation.dcmjs' logger) whenever it
 * reads implicit-VR Pixel Data; that logger is silenced for the (synchronous) parse only.
 */
function parseDicom(bytes: Buffer): DicomDictInstance {
  const validationLog = dcmjs.log.getLogger('validation.dcmjs');
  const level = validationLog.getLevel();
  validationLog.setLevel('silent');
  try {
    return DicomMessage.readFile(toArrayBuffer(bytes));
  } finally {
    validationLog.setLevel(level);
  }
}

/** Parses Part 10 bytes into naturalised file meta information and data set (dcmjs keywords as keys). */
export function parseFile(bytes: Buffer): { meta: NaturalDataset; dataset: NaturalDataset } {
  const dicom = parseDicom(bytes);
  return {
    meta: DicomMetaDictionary.naturalizeDataset(dicom.meta),
    dataset: DicomMetaDictionary.naturalizeDataset(dicom.dict),
  };
}

async function readDicom(path: string): Promise<DicomDictInstance> {
  return parseDicom(await readFile(path));
}

function pixelValues(ds: DicomJson): ArrayBuffer[] {
  const value = ds['7FE00010']?.Value;
  if (!value || value.length === 0) throw new Error('file has no Pixel Data');
  return value.map((v) => {
    if (!(v instanceof ArrayBuffer)) throw new Error('Pixel Data value is not binary');
    return v;
  });
}

const NATIVE_SYNTAXES: ReadonlySet<string> = new Set([IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN]);

/**
 * The native (uncompressed, little-endian) pixel data of a file in Implicit or Explicit VR Little Endian, trimmed to
 * rows x columns x samples x frames x bytes (i.e. without the trailing pad byte). Throws for any other syntax.
 */
export async function readNativePixelData(path: string): Promise<Buffer> {
  const dicom = await readDicom(path);
  const pm = pixelModule(dicom);
  if (!NATIVE_SYNTAXES.has(pm.transferSyntaxUid)) {
    throw new Error(`${path} is in transfer syntax ${pm.transferSyntaxUid}, not a native little-endian one`);
  }
  const [first] = pixelValues(dicom.dict);
  const expected = pm.rows * pm.columns * pm.samplesPerPixel * pm.numberOfFrames * Math.ceil(pm.bitsAllocated / 8);
  const buf = Buffer.from(first ?? new ArrayBuffer(0));
  if (buf.length < expected) throw new Error(`${path}: Pixel Data has ${buf.length} bytes, expected ${expected}`);
  return buf.subarray(0, expected);
}

/**
 * The frames of an encapsulated (compressed) Pixel Data element, one Buffer per frame (the fragments of a frame
 * concatenated, as dcmjs returns them; a trailing pad byte, if the encoder added one, is kept).
 */
export async function readEncapsulatedFrames(path: string): Promise<Buffer[]> {
  const dicom = await readDicom(path);
  const ts = firstString(dicom.meta, '00020010') ?? '';
  if (NATIVE_SYNTAXES.has(ts) || ts === TRANSFER_SYNTAX_UID.deflated) {
    throw new Error(`${path} is in transfer syntax ${ts}, which has no encapsulated Pixel Data`);
  }
  return pixelValues(dicom.dict).map((ab) => Buffer.from(ab));
}

// ---------------------------------------------------------------------------------------------------------------
// Compression

export type CompressedSyntax =
  | 'deflated'
  | 'jpeg-baseline'
  | 'jpeg-extended'
  | 'jpeg-lossless-p14'
  | 'jpeg-lossless-sv1'
  | 'jpeg-ls-lossless'
  | 'jpeg-ls-lossy'
  | 'jpeg2000-lossless'
  | 'jpeg2000-lossy'
  | 'rle';

export const TRANSFER_SYNTAX_UID: Record<CompressedSyntax, string> = {
  deflated: '1.2.840.10008.1.2.1.99',
  'jpeg-baseline': '1.2.840.10008.1.2.4.50',
  'jpeg-extended': '1.2.840.10008.1.2.4.51',
  'jpeg-lossless-p14': '1.2.840.10008.1.2.4.57',
  'jpeg-lossless-sv1': '1.2.840.10008.1.2.4.70',
  'jpeg-ls-lossless': '1.2.840.10008.1.2.4.80',
  'jpeg-ls-lossy': '1.2.840.10008.1.2.4.81',
  'jpeg2000-lossless': '1.2.840.10008.1.2.4.90',
  'jpeg2000-lossy': '1.2.840.10008.1.2.4.91',
  rle: '1.2.840.10008.1.2.5',
};

export const COMPRESSED_SYNTAXES: readonly CompressedSyntax[] = Object.keys(TRANSFER_SYNTAX_UID) as CompressedSyntax[];

/** Whether decoding gives back exactly the source pixels. */
export const LOSSLESS: Record<CompressedSyntax, boolean> = {
  deflated: true,
  'jpeg-baseline': false,
  'jpeg-extended': false,
  'jpeg-lossless-p14': true,
  'jpeg-lossless-sv1': true,
  'jpeg-ls-lossless': true,
  'jpeg-ls-lossy': false,
  'jpeg2000-lossless': true,
  'jpeg2000-lossy': false,
  rle: true,
};

interface SourceLimits {
  /** Highest Bits Stored the encoder accepts. */
  maxBitsStored: number;
  /** Bits Allocated values accepted (undefined: any). */
  bitsAllocated?: readonly number[];
  /** Only single-frame, one-sample, unsigned images (the JPEG 2000 path). */
  simpleOnly?: boolean;
  /** Human-readable statement of what the source must be. */
  needs: string;
}

/**
 * What each syntax needs from its source. Every syntax needs a native source (Implicit or Explicit VR Little
 * Endian), which is what makeImageFile() produces.
 */
export const SOURCE_REQUIREMENTS: Record<CompressedSyntax, SourceLimits> = {
  deflated: { maxBitsStored: 16, needs: 'any native image' },
  'jpeg-baseline': {
    maxBitsStored: 8,
    bitsAllocated: [8],
    needs: 'an 8-bit image (Bits Allocated 8, Bits Stored <= 8)',
  },
  'jpeg-extended': { maxBitsStored: 12, needs: 'Bits Stored <= 12 (e.g. the 16/12 default, or 8-bit)' },
  'jpeg-lossless-p14': { maxBitsStored: 16, needs: 'Bits Stored <= 16' },
  'jpeg-lossless-sv1': { maxBitsStored: 16, needs: 'Bits Stored <= 16' },
  'jpeg-ls-lossless': { maxBitsStored: 16, needs: 'Bits Stored 2..16' },
  'jpeg-ls-lossy': { maxBitsStored: 16, needs: 'Bits Stored 2..16' },
  'jpeg2000-lossless': {
    maxBitsStored: 16,
    simpleOnly: true,
    needs: 'a single-frame, single-sample, unsigned image with Bits Stored <= 16',
  },
  'jpeg2000-lossy': {
    maxBitsStored: 16,
    simpleOnly: true,
    needs: 'a single-frame, single-sample, unsigned image with Bits Stored <= 16',
  },
  rle: { maxBitsStored: 16, bitsAllocated: [8, 16], needs: 'Bits Allocated 8 or 16' },
};

/** Compression ratio requested from opj_compress for jpeg2000-lossy. */
const J2K_LOSSY_RATE = 10;

function checkSource(path: string, pm: PixelModule, syntax: CompressedSyntax): void {
  const req = SOURCE_REQUIREMENTS[syntax];
  const fail = (why: string): never => {
    throw new Error(`compressFile(${syntax}): source ${path} does not fit: ${why}; ${syntax} needs ${req.needs}`);
  };
  if (!NATIVE_SYNTAXES.has(pm.transferSyntaxUid)) {
    fail(`it is in transfer syntax ${pm.transferSyntaxUid || '(none)'}, not Implicit/Explicit VR Little Endian`);
  }
  if (pm.bitsStored > req.maxBitsStored) fail(`Bits Stored is ${pm.bitsStored}`);
  if (req.bitsAllocated && !req.bitsAllocated.includes(pm.bitsAllocated)) fail(`Bits Allocated is ${pm.bitsAllocated}`);
  if ((syntax === 'jpeg-ls-lossless' || syntax === 'jpeg-ls-lossy') && pm.bitsStored < 2)
    fail(`Bits Stored is ${pm.bitsStored}`);
  if (req.simpleOnly) {
    if (pm.numberOfFrames !== 1) fail(`it has ${pm.numberOfFrames} frames`);
    if (pm.samplesPerPixel !== 1) fail(`it has ${pm.samplesPerPixel} samples per pixel`);
    if (pm.pixelRepresentation !== 0) fail('its pixels are signed');
    if (pm.bitsAllocated !== 8 && pm.bitsAllocated !== 16) fail(`Bits Allocated is ${pm.bitsAllocated}`);
  }
}

/** DCMTK command line for every syntax DCMTK 3.6.7 can encode. `+un`: lossy output keeps the SOP Instance UID. */
const DCMTK_ENCODER: Record<Exclude<CompressedSyntax, 'jpeg2000-lossless' | 'jpeg2000-lossy'>, readonly string[]> = {
  deflated: ['dcmconv', '+td'],
  'jpeg-baseline': ['dcmcjpeg', '+eb', '+sr', '+un'],
  'jpeg-extended': ['dcmcjpeg', '+ee', '+sr', '+un'],
  'jpeg-lossless-p14': ['dcmcjpeg', '+el', '+un'],
  'jpeg-lossless-sv1': ['dcmcjpeg', '+e1', '+un'],
  'jpeg-ls-lossless': ['dcmcjpls', '+el', '+un'],
  'jpeg-ls-lossy': ['dcmcjpls', '+en', '+un'],
  rle: ['dcmcrle', '+un'],
};

/**
 * Writes `src` (a native file, e.g. from writeImageFile) to `dst` in a compressed transfer syntax. See
 * SOURCE_REQUIREMENTS for what each syntax needs from the source; a source that does not fit throws before any tool
 * runs. Lossy outputs keep the source's SOP Instance UID (convenient for tests, though a real modality would mint a
 * new one) and carry Lossy Image Compression "01" with ratio and method.
 *
 * DCMTK encodes every syntax except JPEG 2000; for JPEG 2000 the pixels are encoded by `opj_compress` (reversible
 * 5/3 for .90, irreversible 9/7 at ratio 10:1 for .91) and wrapped by dcmjs as encapsulated Pixel Data (a Basic
 * Offset Table item and one even-length fragment).
 */
export async function compressFile(src: string, dst: string, syntax: CompressedSyntax): Promise<void> {
  if (!Object.hasOwn(TRANSFER_SYNTAX_UID, syntax)) throw new Error(`unknown compressed syntax ${String(syntax)}`);
  const source = await readDicom(src);
  const pm = pixelModule(source);
  checkSource(src, pm, syntax);
  await withTempDir(async (tmp) => {
    const out = join(tmp, 'out.dcm');
    if (syntax === 'jpeg2000-lossless' || syntax === 'jpeg2000-lossy') {
      await encodeJpeg2000(source, pm, syntax, tmp, out);
    } else {
      const [cmd, ...args] = DCMTK_ENCODER[syntax];
      if (!cmd) throw new Error(`no encoder for ${syntax}`);
      await runToolOk(cmd, [...args, src, out]);
    }
    await writeFile(dst, await readFile(out));
  });
}

async function encodeJpeg2000(
  source: DicomDictInstance,
  pm: PixelModule,
  syntax: 'jpeg2000-lossless' | 'jpeg2000-lossy',
  tmp: string,
  out: string,
): Promise<void> {
  const bytesPerSample = pm.bitsAllocated / 8;
  const expected = pm.rows * pm.columns * bytesPerSample;
  const [native] = pixelValues(source.dict);
  const pixels = Buffer.from(native ?? new ArrayBuffer(0));
  if (pixels.length < expected) throw new Error(`source Pixel Data has ${pixels.length} bytes, expected ${expected}`);
  // .rawl: raw little-endian samples, 1 byte each up to 8 bits, 2 bytes each above.
  const rawPath = join(tmp, 'in.rawl');
  const j2kPath = join(tmp, 'out.j2k');
  await writeFile(rawPath, pixels.subarray(0, expected));
  // Resolution levels: at most 6, and the lowest level must still be at least one pixel.
  const levels = Math.max(1, Math.min(6, Math.floor(Math.log2(Math.min(pm.rows, pm.columns))) + 1));
  const lossy = syntax === 'jpeg2000-lossy';
  await runToolOk('opj_compress', [
    '-i',
    rawPath,
    '-o',
    j2kPath,
    '-F',
    `${pm.columns},${pm.rows},1,${pm.bitsStored},u`,
    '-n',
    String(levels),
    ...(lossy ? ['-I', '-r', String(J2K_LOSSY_RATE)] : []),
  ]);
  const codestream = await readFile(j2kPath);

  const meta: DicomJson = { ...source.meta };
  delete meta['00020000'];
  meta['00020010'] = { vr: 'UI', Value: [TRANSFER_SYNTAX_UID[syntax]] };
  const dict: DicomJson = { ...source.dict };
  // dcmjs writes encapsulated Pixel Data as: Basic Offset Table item, one fragment per frame (padded to even
  // length, fragmentMultiframe: false), sequence delimiter.
  dict['7FE00010'] = { vr: 'OB', Value: [toArrayBuffer(codestream)] };
  if (lossy) {
    const ratio = (pm.rows * pm.columns * bytesPerSample) / codestream.length;
    Object.assign(
      dict,
      DicomMetaDictionary.denaturalizeDataset({
        LossyImageCompression: '01',
        LossyImageCompressionRatio: [Number(ratio.toFixed(2))],
        LossyImageCompressionMethod: ['ISO_15444_1'],
        DerivationDescription: `Lossy compression with JPEG 2000 (OpenJPEG irreversible 9/7, rate ${J2K_LOSSY_RATE}:1)`,
      }),
    );
    // As DCMTK does for lossy JPEG: the image is no longer the original.
    const imageType = dict['00080008']?.Value;
    if (imageType && imageType.length > 0) dict['00080008'] = { vr: 'CS', Value: ['DERIVED', ...imageType.slice(1)] };
  }
  const writer = new DicomDict(meta);
  writer.dict = dict;
  await writeFile(out, Buffer.from(writer.write({ fragmentMultiframe: false })));
}

/**
 * Writes `src` (any syntax compressFile produces, or a native one) to `dst` in Explicit VR Little Endian, decoding
 * with DCMTK (dcmdjpeg, dcmdjpls, dcmdrle, dcmconv) or, for JPEG 2000, with `opj_decompress` on the extracted
 * codestream.
 */
export async function decompressFile(src: string, dst: string): Promise<void> {
  const source = await readDicom(src);
  const pm = pixelModule(source);
  const ts = pm.transferSyntaxUid;
  await withTempDir(async (tmp) => {
    const out = join(tmp, 'out.dcm');
    if (ts === TRANSFER_SYNTAX_UID['jpeg2000-lossless'] || ts === TRANSFER_SYNTAX_UID['jpeg2000-lossy']) {
      await decodeJpeg2000(source, pm, tmp, out);
    } else if (ts.startsWith('1.2.840.10008.1.2.4.8')) {
      await runToolOk('dcmdjpls', [src, out]);
    } else if (ts.startsWith('1.2.840.10008.1.2.4.')) {
      await runToolOk('dcmdjpeg', [src, out]);
    } else if (ts === TRANSFER_SYNTAX_UID.rle) {
      await runToolOk('dcmdrle', [src, out]);
    } else {
      await runToolOk('dcmconv', ['+te', src, out]);
    }
    await writeFile(dst, await readFile(out));
  });
}

async function decodeJpeg2000(source: DicomDictInstance, pm: PixelModule, tmp: string, out: string): Promise<void> {
  if (pm.numberOfFrames !== 1 || pm.samplesPerPixel !== 1)
    throw new Error('only single-frame monochrome JPEG 2000 is supported');
  const [frame] = pixelValues(source.dict);
  const j2kPath = join(tmp, 'in.j2k');
  const rawPath = join(tmp, 'out.rawl');
  await writeFile(j2kPath, Buffer.from(frame ?? new ArrayBuffer(0)));
  await runToolOk('opj_decompress', ['-i', j2kPath, '-o', rawPath]);
  const decoded = await readFile(rawPath);
  const bytesPerSample = pm.bitsAllocated / 8;
  const expected = pm.rows * pm.columns * bytesPerSample;
  // opj writes 1 byte per sample up to 8 bits of precision and 2 above; widen 8-bit output into 16-bit storage.
  let pixels: Buffer;
  if (decoded.length === expected) {
    pixels = decoded;
  } else if (bytesPerSample === 2 && decoded.length === expected / 2) {
    pixels = Buffer.alloc(expected);
    for (let i = 0; i < decoded.length; i++) pixels.writeUInt16LE(decoded[i] ?? 0, i * 2);
  } else {
    throw new Error(`opj_decompress produced ${decoded.length} bytes, expected ${expected}`);
  }
  const meta: DicomJson = { ...source.meta };
  delete meta['00020000'];
  meta['00020010'] = { vr: 'UI', Value: [EXPLICIT_VR_LITTLE_ENDIAN] };
  const padded = pixels.length % 2 === 1 ? Buffer.concat([pixels, Buffer.alloc(1)]) : pixels;
  const dict: DicomJson = {
    ...source.dict,
    '7FE00010': { vr: bytesPerSample === 1 ? 'OB' : 'OW', Value: [toArrayBuffer(padded)] },
  };
  const writer = new DicomDict(meta);
  writer.dict = dict;
  await writeFile(out, Buffer.from(writer.write()));
}
