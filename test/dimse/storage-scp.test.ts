import test from 'ava';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  COMPRESSED_SYNTAXES,
  TRANSFER_SYNTAX_UID,
  compressFile,
  writeImageFile,
  newUid,
  SOP_CLASS_UID,
  dciodvfy,
  decompressFile,
  makeImageFile,
  readEncapsulatedFrames,
  readNativePixelData,
  type CompressedSyntax,
  type SyntheticImageOptions,
} from '../helpers/dicom-factory.js';
import { echoscu, storescu } from '../helpers/dcmtk.js';
import { runCommand } from '../helpers/run-command.js';
import { listJobs, startGateway, type GatewayUnderTest } from '../helpers/gateway-process.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, datasetBytesOfPart10, openAssociation } from '../helpers/raw-scu.js';

let gateway: GatewayUnderTest;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'scp-files-'));

test.before(async () => {
  gateway = await startGateway({ assembly: { quietPeriodSeconds: 2 } });
});
test.after.always(async () => {
  await gateway?.stop();
});

async function imageFiles(count: number, options: SyntheticImageOptions = {}) {
  const studyInstanceUid = options.studyInstanceUid ?? newUid();
  const dir = mkdtempSync(path.join(scratch, 'set-'));
  const files = [];
  for (let i = 0; i < count; i += 1) {
    files.push(await writeImageFile(dir, { ...options, studyInstanceUid, instanceNumber: i + 1, seed: i }));
  }
  return { studyInstanceUid, files };
}

function storedPath(studyInstanceUid: string, sopInstanceUid: string): string {
  return path.join(gateway.workDir, 'data', 'spool', 'studies', studyInstanceUid, `${sopInstanceUid}.dcm`);
}

test('answers C-ECHO', async (t) => {
  const result = await echoscu(gateway.port);
  t.is(result.code, 0, result.stderr);
});

test('stores one DX image from storescu under its study, with its pixel data intact', async (t) => {
  const { studyInstanceUid, files } = await imageFiles(1);
  const [file] = files;
  if (!file) throw new Error('no file');
  const result = await storescu(gateway.port, [file.path]);
  t.is(result.code, 0, result.stderr);
  const stored = storedPath(studyInstanceUid, file.sopInstanceUid);
  t.is(datasetBytesOfPart10(readFileSync(stored)).transferSyntaxUid, file.transferSyntaxUid);
  t.deepEqual(await readNativePixelData(stored), await readNativePixelData(file.path));
  t.deepEqual((await dciodvfy(stored)).errors, []);
});

test('stores the dataset bytes exactly as they came off the wire, behind a valid Part 10 header', async (t) => {
  const image = makeImageFile({});
  const sent = datasetBytesOfPart10(image.bytes).dataset;
  const association = await openAssociation({
    host: '127.0.0.1',
    port: gateway.port,
    callingAe: 'MODALITY',
    calledAe: 'CXR_GATEWAY',
    contexts: [{ abstractSyntax: image.sopClassUid, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
  });
  if (association.rejected) return t.fail('association rejected');
  t.is(
    (
      await association.store({
        sopClassUid: image.sopClassUid,
        sopInstanceUid: image.sopInstanceUid,
        dataset: sent,
        pdvSize: 1000,
      })
    ).status,
    0,
  );
  await association.release();
  const stored = readFileSync(storedPath(image.studyInstanceUid, image.sopInstanceUid));
  t.true(datasetBytesOfPart10(stored).dataset.equals(sent));
  const meta = await runCommand('dcmdump', [
    '-q',
    '-M',
    '+P',
    '0002,0003',
    '+P',
    '0002,0016',
    storedPath(image.studyInstanceUid, image.sopInstanceUid),
  ]);
  t.regex(meta.stdout, new RegExp(image.sopInstanceUid.replace(/\./g, '\\.')));
  t.regex(meta.stdout, /\[MODALITY\]/);
});

test('stores 50 instances sent in one association, and assembles them into one study job', async (t) => {
  const { studyInstanceUid, files } = await imageFiles(50, { rows: 64, columns: 64 });
  const result = await storescu(
    gateway.port,
    files.map((f) => f.path),
  );
  t.is(result.code, 0, result.stderr);
  await gateway.waitForLog(
    (l) => l.event === 'ASSEMBLY-3001' && l.studyInstanceUid === studyInstanceUid,
    'the study to be assembled',
  );
  const listing = await listJobs(gateway.configPath);
  t.like(
    listing.studies.find((s) => s.studyInstanceUid === studyInstanceUid),
    { state: 'ready', instanceCount: 50 },
  );
  const jobs = listing.jobs.filter((j) => j.studyInstanceUid === studyInstanceUid);
  // One job for the study; what the pipeline then does with it is the pipeline tests' business.
  t.is(jobs.length, 1);
  t.like(jobs[0], { instanceCount: 50 });
});

test('serves 5 associations at once', async (t) => {
  const sets = await Promise.all([0, 1, 2, 3, 4].map(() => imageFiles(4, { rows: 128, columns: 128 })));
  const results = await Promise.all(
    sets.map((s, i) =>
      storescu(
        gateway.port,
        s.files.map((f) => f.path),
        { callingAe: `MOD${i}` },
      ),
    ),
  );
  for (const r of results) t.is(r.code, 0, r.stderr);
  for (const s of sets)
    for (const f of s.files) t.notThrows(() => readFileSync(storedPath(s.studyInstanceUid, f.sopInstanceUid)));
});

test('a second copy of an instance is acknowledged and creates no second job', async (t) => {
  const { studyInstanceUid, files } = await imageFiles(1);
  const paths = files.map((f) => f.path);
  t.is((await storescu(gateway.port, paths)).code, 0);
  await gateway.waitForLog((l) => l.event === 'ASSEMBLY-3001' && l.studyInstanceUid === studyInstanceUid, 'assembly');
  t.is((await storescu(gateway.port, paths)).code, 0);
  await gateway.waitForLog(
    (l) => l.event === 'DIMSE-1021' && l.sopInstanceUid === files[0]?.sopInstanceUid,
    'the duplicate to be acknowledged',
  );
  // Longer than the quiet period: a re-opened study would have produced a second job by now.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const listing = await listJobs(gateway.configPath);
  t.is(listing.jobs.filter((j) => j.studyInstanceUid === studyInstanceUid).length, 1);
  t.like(
    listing.studies.find((s) => s.studyInstanceUid === studyInstanceUid),
    { instanceCount: 1, revision: 0 },
  );
});

test('a late instance after assembly reopens the study as a new revision and a second job', async (t) => {
  const studyInstanceUid = newUid();
  const first = await imageFiles(1, { studyInstanceUid });
  t.is(
    (
      await storescu(
        gateway.port,
        first.files.map((f) => f.path),
      )
    ).code,
    0,
  );
  await gateway.waitForLog((l) => l.event === 'ASSEMBLY-3001' && l.studyInstanceUid === studyInstanceUid, 'assembly');
  const late = await imageFiles(1, { studyInstanceUid });
  t.is(
    (
      await storescu(
        gateway.port,
        late.files.map((f) => f.path),
      )
    ).code,
    0,
  );
  await gateway.waitForLog(
    (l) => l.event === 'ASSEMBLY-3001' && l.studyInstanceUid === studyInstanceUid && l.revision === 1,
    'the second assembly',
  );
  const jobs = (await listJobs(gateway.configPath)).jobs.filter((j) => j.studyInstanceUid === studyInstanceUid);
  t.deepEqual(
    jobs.map((j) => [j.revision, j.instanceCount]),
    [
      [0, 1],
      [1, 2],
    ],
  );
});

test('a non-image SOP class is refused at association time, in its own presentation context', async (t) => {
  const association = await openAssociation({
    host: '127.0.0.1',
    port: gateway.port,
    callingAe: 'MODALITY',
    calledAe: 'CXR_GATEWAY',
    contexts: [
      { abstractSyntax: '1.2.840.10008.5.1.4.1.1.88.11', transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }, // Basic Text SR
      { abstractSyntax: '1.2.840.10008.5.1.4.1.1.2', transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }, // CT
      {
        abstractSyntax: SOP_CLASS_UID['dx-presentation'],
        transferSyntaxes: ['1.2.840.10008.1.2.2', EXPLICIT_VR_LITTLE_ENDIAN],
      },
    ],
  });
  if (association.rejected) return t.fail('association rejected');
  t.deepEqual(
    association.contexts.map((c) => c.result),
    [3, 3, 0],
  );
  t.is(association.contexts[2]?.transferSyntax, EXPLICIT_VR_LITTLE_ENDIAN);
  await association.release();
});

// storescu proposes what its flag says; dcmsend proposes each file's own syntax (storescu has no flag for
// JPEG lossless process 14, and dcmsend is the other common DCMTK sender).
const SENDER: Record<CompressedSyntax, { program: 'storescu' | 'dcmsend'; args: string[] }> = {
  deflated: { program: 'storescu', args: ['-xd'] },
  'jpeg-baseline': { program: 'storescu', args: ['-xy'] },
  'jpeg-extended': { program: 'storescu', args: ['-xx'] },
  'jpeg-lossless-p14': { program: 'dcmsend', args: ['-dn'] },
  'jpeg-lossless-sv1': { program: 'storescu', args: ['-xs'] },
  'jpeg-ls-lossless': { program: 'storescu', args: ['-xt'] },
  'jpeg-ls-lossy': { program: 'storescu', args: ['-xu'] },
  'jpeg2000-lossless': { program: 'storescu', args: ['-xv'] },
  'jpeg2000-lossy': { program: 'storescu', args: ['-xw'] },
  rle: { program: 'storescu', args: ['-xr'] },
};

for (const syntax of COMPRESSED_SYNTAXES) {
  test(`accepts and stores ${syntax} as proposed, without transcoding`, async (t) => {
    const eightBit = syntax === 'jpeg-baseline';
    const { studyInstanceUid, files } = await imageFiles(1, eightBit ? { bitsAllocated: 8, bitsStored: 8 } : {});
    const [source] = files;
    if (!source) throw new Error('no file');
    const compressed = path.join(path.dirname(source.path), `${syntax}.dcm`);
    await compressFile(source.path, compressed, syntax);
    const sender = SENDER[syntax];
    const result =
      sender.program === 'storescu'
        ? await storescu(gateway.port, [compressed], { extraArgs: sender.args })
        : await runCommand('dcmsend', [
            ...sender.args,
            '-aet',
            'MODALITY',
            '-aec',
            'CXR_GATEWAY',
            '127.0.0.1',
            String(gateway.port),
            compressed,
          ]);
    t.is(result.code, 0, result.stderr);
    const stored = storedPath(studyInstanceUid, source.sopInstanceUid);
    t.is(datasetBytesOfPart10(readFileSync(stored)).transferSyntaxUid, TRANSFER_SYNTAX_UID[syntax]);
    if (syntax === 'deflated') {
      // A sender re-deflates with its own zlib settings, so compare what the bytes inflate to.
      const inflated = path.join(path.dirname(source.path), 'inflated.dcm');
      await decompressFile(stored, inflated);
      t.deepEqual(await readNativePixelData(inflated), await readNativePixelData(source.path));
    } else {
      t.deepEqual(await readEncapsulatedFrames(stored), await readEncapsulatedFrames(compressed));
    }
  });
}
