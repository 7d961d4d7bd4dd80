import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Marks our temporary files: hidden (leading dot) so that a folder watcher on the PACS or RIS side that skips
 * dot files never picks up a half-written one, and with a suffix no real output has.
 */
export const TEMP_SUFFIX = '.cxr-partial';

/**
 * Writes `data` to `dir/name` so that a reader sees either the old file or the whole new one, never a part,
 * and so that the new file survives a power cut once this resolves: temp file in the same directory (a
 * rename is only atomic within one file system), fsync, rename over the target, fsync of the directory
 * (and of the parents of directories it had to create, so the new entries are durable too).
 * Writing the same content again replaces the file with identical bytes: idempotent.
 */
export async function writeFileAtomic(dir: string, name: string, data: Uint8Array): Promise<void> {
  const created = await mkdir(dir, { recursive: true });
  const target = path.join(dir, name);
  const temp = path.join(dir, `.${name}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`);
  try {
    const handle = await open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDirectory(dir);
  if (created !== undefined) {
    // mkdir returned the topmost directory it created: each directory from there down to dir is a new entry
    // in its parent, so every parent from dir's up to created's is fsynced too.
    const top = path.dirname(path.resolve(created));
    for (let d = path.dirname(path.resolve(dir)); ; d = path.dirname(d)) {
      await fsyncDirectory(d);
      if (d === top || d === path.dirname(d)) break;
    }
  }
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
