import { randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  statfsSync,
  unlinkSync,
  close,
  fdatasync,
  fsync,
  mkdir,
  open,
  rename,
  writev,
} from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { GatewayError } from '../errors.js';
import { isValidUid } from '../dicom/uids.js';

/**
 * Where received instances live on disk. A transfer is written to `incoming/` and only renamed into
 * `studies/<StudyInstanceUID>/<SOPInstanceUID>.dcm` once it is complete and fsynced, so a file under
 * `studies/` is always whole; what is left in `incoming/` after a crash was never acknowledged.
 */
export class Spool {
  readonly incomingDir: string;
  readonly studiesDir: string;
  /**
   * Study folders being created and made durable, by path. Commits run concurrently, so a second instance
   * of a new study must not find the folder already there (its mkdir does nothing) and commit its row before
   * the first instance's fsync of studies/ has made the folder's entry durable: it waits on this instead.
   */
  private readonly studyDirsInFlight = new Map<string, { exists: Promise<void>; durable: Promise<void> }>();

  /**
   * `node`: on a spool shared by several nodes, each one's transfers go to incoming/<node>/, so that a node that
   * starts removes its own partial transfers only, never those another node is receiving at that moment.
   */
  constructor(
    readonly root: string,
    node?: string,
  ) {
    this.incomingDir = node === undefined ? path.join(root, 'incoming') : path.join(root, 'incoming', node);
    this.studiesDir = path.join(root, 'studies');
  }

  /** Creates the folders and removes partial transfers a crash left behind; returns how many. */
  open(): number {
    for (const dir of [this.incomingDir, this.studiesDir]) {
      const firstCreated = mkdirSync(dir, { recursive: true });
      // A folder we just made must itself survive a crash before anything in it is acknowledged.
      if (firstCreated !== undefined) syncDirectorySync(path.dirname(firstCreated));
    }
    let removed = 0;
    for (const name of readdirSync(this.incomingDir)) {
      if (name.endsWith('.part')) {
        unlinkSync(path.join(this.incomingDir, name));
        removed += 1;
      }
    }
    return removed;
  }

  newIncomingPath(): string {
    return path.join(this.incomingDir, `${randomUUID()}.part`);
  }

  finalPath(studyInstanceUid: string, sopInstanceUid: string): string {
    if (!isValidUid(studyInstanceUid) || !isValidUid(sopInstanceUid)) {
      // Callers validate first; this is the last line of defence for the file system.
      throw new GatewayError('UID_INVALID', 'refusing to build a spool path from a value that is not a UID');
    }
    return path.join(this.studiesDir, studyInstanceUid, `${sopInstanceUid}.dcm`);
  }

  /**
   * Moves a complete, fsynced transfer to its place and makes the rename itself durable; resolves with the
   * final path only then, so a row that points at it can be committed. Everything runs on the thread pool:
   * a directory fsync is a journal commit (milliseconds), and the event loop has other associations to read.
   */
  async commit(
    incomingPath: string,
    studyInstanceUid: string,
    sopInstanceUid: string,
    renamed?: () => void,
  ): Promise<string> {
    const target = this.finalPath(studyInstanceUid, sopInstanceUid);
    const studyDir = path.dirname(target);
    const folder = this.studyDir(studyDir);
    await folder.exists;
    let remade: Promise<void> | undefined;
    try {
      await callback<void>((done) => rename(incomingPath, target, done));
    } catch (error) {
      // The study folder went between our mkdir and the rename: retention removes a purged study's folder once it
      // is empty (on any node of a shared spool). Made again, its entry made durable, and renamed into it.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync(incomingPath)) throw error;
      await callback<string | undefined>((done) => mkdir(studyDir, { recursive: true }, done));
      remade = syncDirectory(this.studiesDir);
      await callback<void>((done) => rename(incomingPath, target, done));
    }
    // From here the file is at `target`: a caller that gives up (a failed fsync) must remove it there.
    renamed?.();
    // The file's entry in its study folder and, for a new study, the folder's entry under studies/ are
    // independent; both must be durable before we return, so the fsyncs run side by side.
    await Promise.all([syncDirectory(studyDir), folder.durable, remade]);
    return target;
  }

  /** Makes sure a study folder exists; `durable` settles once its entry under studies/ is on disk. */
  protected studyDir(dir: string): { exists: Promise<void>; durable: Promise<void> } {
    const inFlight = this.studyDirsInFlight.get(dir);
    if (inFlight !== undefined) return inFlight;
    const created = callback<string | undefined>((done) => mkdir(dir, { recursive: true }, done));
    const exists = created.then(() => undefined);
    const durable = created.then((first) => (first === undefined ? undefined : syncDirectory(this.studiesDir)));
    const entry = { exists, durable };
    this.studyDirsInFlight.set(dir, entry);
    const forget = (): void => {
      if (this.studyDirsInFlight.get(dir) === entry) this.studyDirsInFlight.delete(dir);
    };
    // Kept while in flight only: later commits find the folder there and need not wait for anything.
    durable.then(forget, forget);
    return entry;
  }

  discard(incomingPath: string): void {
    try {
      unlinkSync(incomingPath);
    } catch {
      // already gone: nothing to clean
    }
  }

  freeBytes(): number {
    const stats = statfsSync(this.root);
    return stats.bavail * stats.bsize;
  }
}

/** Wraps a Node callback API call in a promise (the callback forms skip fs/promises' FileHandle overhead). */
function callback<T>(start: (done: (error: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((error, value) => (error ? reject(error) : resolve(value as T)));
  });
}

function syncDirectorySync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const fd = await callback<number>((done) => open(dir, 'r', done));
  let syncError: unknown;
  try {
    await callback<void>((done) => fsync(fd, done));
  } catch (error) {
    syncError = error;
  }
  await callback<void>((done) => close(fd, done));
  if (syncError !== undefined) throw syncError;
}

export interface SpoolFileWriterOptions {
  /**
   * Bytes the writer may queue before `write` returns false and the SCP pauses the socket (default 4 MiB
   * per association; while we are paused the kernel's socket buffer still takes in several more).
   */
  highWaterMark?: number;
  /**
   * Start an fdatasync in the background each time this many bytes have been written since the last one
   * began (default 2 MiB); 0 turns it off. See SpoolFileWriter.
   */
  writebackBytes?: number;
}

const DEFAULT_HIGH_WATER_MARK = 4 * 1024 * 1024;
const DEFAULT_WRITEBACK_BYTES = 2 * 1024 * 1024;

/**
 * A file sink for one C-STORE: writes the Part 10 header, then the dataset bytes as they arrive from the
 * network, and fsyncs before it reports `finish`. Nothing is parsed or copied on the way.
 *
 * Early writeback: with 24 GiB of RAM the kernel would not start writing a file back on its own before our
 * final fsync, which then has the whole file (8 MB for a DX image) to push to disk while the sender waits
 * for our answer. So while the data set arrives, an fdatasync runs in the background now and then
 * (`writebackBytes`), and the disk works alongside the network; the final fsync only has the tail left.
 * These syncs are extra: durability still rests on the final fsync alone, which also reports the errors
 * of the early ones.
 */
export class SpoolFileWriter extends Writable {
  private fd: number | undefined;
  bytesWritten = 0;
  private readonly writebackBytes: number;
  private writtenSinceSync = 0;
  private syncing = false;
  private syncError: Error | undefined;
  /** Run once the background fdatasync in flight has returned. */
  private afterSync: Array<() => void> = [];

  constructor(
    readonly filePath: string,
    private readonly header: Buffer,
    options: SpoolFileWriterOptions = {},
  ) {
    super({ highWaterMark: options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK });
    this.writebackBytes = options.writebackBytes ?? DEFAULT_WRITEBACK_BYTES;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.filePath, 'wx', 0o640, (error, fd) => {
      if (error) return callback(error);
      this.fd = fd;
      this.writeAll([this.header], callback);
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeAll(
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.whenNotSyncing(() => {
      const fd = this.fd;
      // Only a destroy() while we waited for the background sync leaves no descriptor.
      if (fd === undefined) return callback(new Error('spool file was closed before its final fsync'));
      fsync(fd, (error) => callback(error ?? this.syncError));
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Never close the descriptor under a background fdatasync that has yet to start.
    this.whenNotSyncing(() => {
      const fd = this.fd;
      this.fd = undefined;
      if (fd === undefined) return callback(error);
      close(fd, (closeError) => callback(error ?? closeError));
    });
  }

  private whenNotSyncing(then: () => void): void {
    if (this.syncing) this.afterSync.push(then);
    else then();
  }

  private maybeWriteBack(fd: number, written: number): void {
    this.writtenSinceSync += written;
    if (this.writebackBytes <= 0 || this.syncing || this.writtenSinceSync < this.writebackBytes) return;
    this.writtenSinceSync = 0;
    this.syncing = true;
    fdatasync(fd, (error) => {
      this.syncing = false;
      if (error) this.syncError ??= error;
      const waiting = this.afterSync;
      this.afterSync = [];
      for (const next of waiting) next();
    });
  }

  private writeAll(buffers: Buffer[], callback: (error?: Error | null) => void): void {
    const fd = this.fd;
    if (fd === undefined) return callback(new Error('spool file is not open'));
    const total = buffers.reduce((sum, b) => sum + b.length, 0);
    writev(fd, buffers, (error, written) => {
      if (error) return callback(error);
      this.bytesWritten += written;
      this.maybeWriteBack(fd, written);
      if (written === total) return callback();
      // Short write (rare, e.g. signals): write what is left.
      const rest = Buffer.concat(buffers).subarray(written);
      this.writeAll([rest], callback);
    });
  }
}
