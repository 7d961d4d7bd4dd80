import { randomUUID } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  statfsSync,
  unlinkSync,
  close,
  fsync,
  open,
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

  constructor(readonly root: string) {
    this.incomingDir = path.join(root, 'incoming');
    this.studiesDir = path.join(root, 'studies');
  }

  /** Creates the folders and removes partial transfers a crash left behind; returns how many. */
  open(): number {
    mkdirSync(this.incomingDir, { recursive: true });
    mkdirSync(this.studiesDir, { recursive: true });
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

  /** Moves a complete, fsynced transfer to its place and makes the rename itself durable. */
  commit(incomingPath: string, studyInstanceUid: string, sopInstanceUid: string): string {
    const target = this.finalPath(studyInstanceUid, sopInstanceUid);
    const studyDir = path.dirname(target);
    const created = mkdirSync(studyDir, { recursive: true }) !== undefined;
    renameSync(incomingPath, target);
    syncDirectory(studyDir);
    if (created) syncDirectory(this.studiesDir);
    return target;
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

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A file sink for one C-STORE: writes the Part 10 header, then the dataset bytes as they arrive from the
 * network, and fsyncs before it reports `finish`. Nothing is parsed or copied on the way.
 */
export class SpoolFileWriter extends Writable {
  private fd: number | undefined;
  bytesWritten = 0;

  constructor(
    readonly filePath: string,
    private readonly header: Buffer,
  ) {
    super({ highWaterMark: 1024 * 1024 });
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
    if (this.fd === undefined) return callback();
    fsync(this.fd, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return callback(error);
    close(fd, (closeError) => callback(error ?? closeError));
  }

  private writeAll(buffers: Buffer[], callback: (error?: Error | null) => void): void {
    const fd = this.fd;
    if (fd === undefined) return callback(new Error('spool file is not open'));
    const total = buffers.reduce((sum, b) => sum + b.length, 0);
    writev(fd, buffers, (error, written) => {
      if (error) return callback(error);
      this.bytesWritten += written;
      if (written === total) return callback();
      // Short write (rare, e.g. signals): write what is left.
      const rest = Buffer.concat(buffers).subarray(written);
      this.writeAll([rest], callback);
    });
  }
}
