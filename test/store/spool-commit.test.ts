// Spool.commit when the study folder goes between its mkdir and the rename: retention removes a purged study's folder
// once it is empty, on any node of a shared spool, while an image of that study may be arriving.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Spool } from '../../src/store/spool.js';

/** A spool whose study folder is already gone when the rename comes (made, then removed by retention). */
class FolderRemovedAfterMkdir extends Spool {
  protected override studyDir(): { exists: Promise<void>; durable: Promise<void> } {
    return { exists: Promise.resolve(), durable: Promise.resolve() };
  }
}

test('the study folder removed after its mkdir: made again and the image renamed into it', async (t) => {
  const spool = new FolderRemovedAfterMkdir(mkdtempSync(path.join(os.tmpdir(), 'spool-commit-')));
  spool.open();
  const incoming = spool.newIncomingPath();
  writeFileSync(incoming, 'image bytes');
  const final = await spool.commit(incoming, '1.2.3', '1.2.3.4');
  t.is(final, spool.finalPath('1.2.3', '1.2.3.4'));
  t.is(readFileSync(final, 'utf8'), 'image bytes');
  t.false(existsSync(incoming));
});

test('a transfer file that is itself gone is still an error (ENOENT), not retried', async (t) => {
  const spool = new FolderRemovedAfterMkdir(mkdtempSync(path.join(os.tmpdir(), 'spool-commit-')));
  spool.open();
  const error = await t.throwsAsync(spool.commit(spool.newIncomingPath(), '1.2.3', '1.2.3.5'));
  t.is((error as NodeJS.ErrnoException).code, 'ENOENT');
  t.false(existsSync(path.join(spool.studiesDir, '1.2.3')), 'no folder made for it');
});
