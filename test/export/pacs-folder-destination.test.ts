import test from 'ava';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import dcmjs from 'dcmjs';
import { PacsFolderDestination } from '../../src/export/pacs-folder-destination.js';
import { createLogger } from '../../src/logging/logger.js';
import { makeImageFile, writeImageFile } from '../helpers/dicom-factory.js';
import { makeReadOnly } from './read-only-folder.js';
import { makeSecondaryCapture } from './secondary-capture-fixture.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'pacs-folder-'));
const logger = createLogger({
  level: 'error',
  format: 'json',
  stream: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
});

function destinationIn(folder: string): PacsFolderDestination {
  return new PacsFolderDestination({ name: 'pacs-folder', path: folder, logger });
}

/** Every file under dir, relative, sorted. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((entry) => statSync(path.join(dir, entry)).isFile())
    .sort();
}

test('writes each object to <study>/<SOP instance>.dcm with its exact bytes and no temp file left', async (t) => {
  const folder = path.join(mkdtempSync(path.join(scratch, 'out-')), 'not-yet-there');
  const dx = makeImageFile();
  const sc = makeSecondaryCapture({ studyInstanceUid: dx.studyInstanceUid });
  const outcome = await destinationIn(folder).deliver([{ bytes: dx.bytes }, { bytes: sc.bytes, label: 'heatmap' }]);
  t.deepEqual(outcome, { kind: 'delivered' });
  t.deepEqual(
    tree(folder),
    [
      path.join(dx.studyInstanceUid, `${dx.sopInstanceUid}.dcm`),
      path.join(dx.studyInstanceUid, `${sc.sopInstanceUid}.dcm`),
    ].sort(),
  );
  t.true(readFileSync(path.join(folder, dx.studyInstanceUid, `${dx.sopInstanceUid}.dcm`)).equals(dx.bytes));
  t.true(readFileSync(path.join(folder, dx.studyInstanceUid, `${sc.sopInstanceUid}.dcm`)).equals(sc.bytes));
});

test('delivering the same objects again changes nothing: same files, same bytes', async (t) => {
  const folder = mkdtempSync(path.join(scratch, 'out-'));
  const source = await writeImageFile(mkdtempSync(path.join(scratch, 'src-')));
  const destination = destinationIn(folder);
  t.deepEqual(await destination.deliver([{ path: source.path }]), { kind: 'delivered' });
  const first = tree(folder);
  const target = path.join(folder, source.studyInstanceUid, `${source.sopInstanceUid}.dcm`);
  const firstInode = statSync(target).ino;
  t.deepEqual(await destination.deliver([{ path: source.path }]), { kind: 'delivered' });
  t.deepEqual(tree(folder), first);
  t.true(readFileSync(target).equals(source.bytes));
  // Replaced by rename, not rewritten in place: a reader holding the old file never sees a partial one.
  t.not(statSync(target).ino, firstInode);
});

test('a read-only target folder is a retry whose reason names the folder and the refusal', async (t) => {
  const folder = mkdtempSync(path.join(scratch, 'read-only-'));
  const undo = await makeReadOnly(folder);
  t.teardown(undo);
  const outcome = await destinationIn(folder).deliver([{ bytes: makeImageFile().bytes }]);
  t.like(outcome, { kind: 'retry', cause: 'folder-not-writable' });
  t.regex(
    outcome.kind === 'retry' ? outcome.reason : '',
    new RegExp(`cannot write into ${folder.replace(/[.]/g, '\\.')}: permission denied \\((EACCES|EPERM)\\)`),
  );
  t.deepEqual(tree(folder), []);
});

test('objects that cannot be filed (not DICOM, no Study Instance UID) park the batch; the others are written', async (t) => {
  const folder = mkdtempSync(path.join(scratch, 'out-'));
  const good = makeImageFile();
  const bad = makeImageFile();
  const parsed = dcmjs.data.DicomMessage.readFile(
    bad.bytes.buffer.slice(bad.bytes.byteOffset, bad.bytes.byteOffset + bad.bytes.byteLength) as ArrayBuffer,
  );
  delete parsed.dict['0020000D']; // Study Instance UID
  const withoutStudy = Buffer.from(parsed.write({ fragmentMultiframe: false }));
  const outcome = await destinationIn(folder).deliver([
    { bytes: Buffer.from('not dicom'), label: 'junk' },
    { bytes: good.bytes },
    { bytes: withoutStudy, label: 'no-study' },
  ]);
  t.like(outcome, { kind: 'parked', cause: 'invalid-object' });
  t.regex(
    outcome.kind === 'parked' ? outcome.reason : '',
    /2 of 3 objects cannot go to .*: junk is not a DICOM Part 10 file .*; no-study: no valid Study Instance UID/,
  );
  t.deepEqual(tree(folder), [path.join(good.studyInstanceUid, `${good.sopInstanceUid}.dcm`)]);
});

test('a stopped folder destination answers retry and writes nothing', async (t) => {
  const folder = mkdtempSync(path.join(scratch, 'out-'));
  const destination = destinationIn(folder);
  await destination.stop();
  t.like(await destination.deliver([{ bytes: makeImageFile().bytes }]), { kind: 'retry', cause: 'stopped' });
  t.deepEqual(tree(folder), []);
});
