import { finished } from 'node:stream/promises';
import { walkStoredDataset, MalformedDatasetError, type KeyAttributes } from '../dicom/dataset-walker.js';
import { buildPart10Header } from '../dicom/part10-header.js';
import { isValidUid } from '../dicom/uids.js';
import { describeError } from '../errors.js';
import type { IncomingInstance, IngestOutcome, IngestStart, InstanceSink } from './instance-sink.js';
import type { Logger } from '../logging/logger.js';
import type { JobStore } from './job-store.js';
import { isOutOfResources } from './out-of-resources.js';
import { Spool, SpoolFileWriter, type SpoolFileWriterOptions } from './spool.js';

export interface InstanceIngestOptions {
  spool: Spool;
  store: JobStore;
  logger: Logger;
  minFreeBytes: number;
  now?: () => number;
  /** Buffering and early writeback of the spool files; SpoolFileWriter's defaults when absent. */
  writer?: SpoolFileWriterOptions;
}

/**
 * The receive -> store hand-over. An instance counts as received only when its bytes are fsynced under
 * `studies/` and its row is committed; only then does the SCP answer Success.
 */
export class InstanceIngest implements InstanceSink {
  private readonly now: () => number;
  /**
   * The tail of the find -> rename -> record sequence per SOP Instance UID. That sequence now awaits the
   * rename's directory fsync, so two copies of one instance arriving at once on two associations could both
   * find no row and the second rename replace the file the first acknowledgement stands for; they take turns.
   */
  private readonly recording = new Map<string, Promise<void>>();

  constructor(private readonly options: InstanceIngestOptions) {
    this.now = options.now ?? Date.now;
  }

  begin(incoming: IncomingInstance): IngestStart {
    const free = this.options.spool.freeBytes();
    if (free < this.options.minFreeBytes) {
      return {
        kind: 'refused',
        reason: 'out-of-resources',
        message: `only ${Math.floor(free / 1048576)} MB free under ${this.options.spool.root}, below storage.minFreeDiskMB`,
      };
    }
    const header = buildPart10Header({
      sopClassUid: incoming.sopClassUid,
      sopInstanceUid: incoming.sopInstanceUid,
      transferSyntaxUid: incoming.transferSyntaxUid,
      sourceAeTitle: incoming.callingAe,
    });
    const filePath = this.options.spool.newIncomingPath();
    const writable = new SpoolFileWriter(filePath, header, this.options.writer);
    // A write or fsync error destroys the writer and is reported by complete() (finished() rejects with it);
    // this listener only keeps the 'error' event from being unhandled, which would end the process.
    writable.on('error', () => undefined);
    return {
      kind: 'transfer',
      transfer: {
        writable,
        complete: () => this.complete(incoming, writable, header.length),
        // The file is opened asynchronously: removing it before the writer has closed could race its
        // creation and leave it behind.
        abandon: () =>
          new Promise<void>((resolve) => {
            const discard = (): void => {
              this.options.spool.discard(filePath);
              resolve();
            };
            if (writable.closed) return discard();
            writable.once('close', discard);
            writable.destroy();
          }),
      },
    };
  }

  private async complete(
    incoming: IncomingInstance,
    writable: SpoolFileWriter,
    headerLength: number,
  ): Promise<IngestOutcome> {
    const { spool } = this.options;
    try {
      await finished(writable);
    } catch (error) {
      spool.discard(writable.filePath);
      return refusal(error, 'could not write the instance to disk');
    }
    const checked = this.check(incoming, writable.filePath, headerLength);
    if (checked.kind === 'refused') {
      spool.discard(writable.filePath);
      return checked;
    }
    return this.inTurn(incoming.sopInstanceUid, () =>
      this.record(incoming, writable, checked.attributes, checked.studyInstanceUid),
    );
  }

  private async inTurn<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.recording.get(key) ?? Promise.resolve();
    const run = previous.then(work);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.recording.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.recording.get(key) === tail) this.recording.delete(key);
    }
  }

  private async record(
    incoming: IncomingInstance,
    writable: SpoolFileWriter,
    attributes: KeyAttributes,
    studyInstanceUid: string,
  ): Promise<IngestOutcome> {
    const { spool, store } = this.options;
    // Where the file is now: once renamed, a failed commit must remove it there, or it would be an orphan
    // under studies/ that no row (and so no retention) ever reaches.
    let location = writable.filePath;
    try {
      const existing = store.findInstance(incoming.sopInstanceUid);
      if (existing !== undefined) {
        // The copy we hold backs an earlier acknowledgement: keep it, drop this one.
        spool.discard(writable.filePath);
        return { kind: 'duplicate', studyInstanceUid: existing.studyInstanceUid, path: existing.path };
      }
      // Only once the rename is durable may the row that points at the final path be committed.
      const finalPath = await spool.commit(writable.filePath, studyInstanceUid, incoming.sopInstanceUid, () => {
        location = spool.finalPath(studyInstanceUid, incoming.sopInstanceUid);
      });
      const outcome = store.recordInstance({
        sopInstanceUid: incoming.sopInstanceUid,
        sopClassUid: incoming.sopClassUid,
        studyInstanceUid,
        seriesInstanceUid: attributes.seriesInstanceUid,
        transferSyntaxUid: incoming.transferSyntaxUid,
        path: finalPath,
        sizeBytes: writable.bytesWritten,
        callingAe: incoming.callingAe,
        calledAe: incoming.calledAe,
        sourceIp: incoming.sourceIp,
        associationId: incoming.associationId,
        attributes,
        receivedAt: this.now(),
      });
      if (outcome.kind === 'duplicate') {
        return { kind: 'duplicate', studyInstanceUid: outcome.storedUnderStudy, path: outcome.path };
      }
      if (outcome.studyReopened) {
        this.options.logger.info('late instance reopened a study that already had a job', {
          event: 'STORE-2010',
          studyInstanceUid,
          sopInstanceUid: incoming.sopInstanceUid,
          associationId: incoming.associationId,
        });
      }
      return { kind: 'stored', studyInstanceUid, path: finalPath };
    } catch (error) {
      spool.discard(location);
      const refused = refusal(error, 'could not record the instance');
      this.options.logger.error('instance not stored: nothing was acknowledged and its file is removed', {
        event: 'STORE-2011',
        associationId: incoming.associationId,
        sopInstanceUid: incoming.sopInstanceUid,
        studyInstanceUid,
        reason: refused.reason,
        error: describeError(error),
      });
      return refused;
    }
  }

  private check(
    incoming: IncomingInstance,
    filePath: string,
    headerLength: number,
  ): { kind: 'ok'; attributes: KeyAttributes; studyInstanceUid: string } | Extract<IngestOutcome, { kind: 'refused' }> {
    let walked;
    try {
      walked = walkStoredDataset(filePath, headerLength, incoming.transferSyntaxUid);
    } catch (error) {
      const message =
        error instanceof MalformedDatasetError ? error.message : `unreadable dataset: ${describeError(error)}`;
      return { kind: 'refused', reason: 'malformed', message };
    }
    const a = walked.attributes;
    const mismatch = (message: string) => ({ kind: 'refused', reason: 'mismatch', message }) as const;
    if (!isValidUid(incoming.sopInstanceUid)) return mismatch('no valid Affected SOP Instance UID in the command');
    if (a.sopInstanceUid === undefined) return mismatch('no SOP Instance UID (0008,0018) in the dataset');
    if (a.sopInstanceUid !== incoming.sopInstanceUid) {
      return mismatch(`SOP Instance UID differs from the command's: ${a.sopInstanceUid}`);
    }
    if (a.sopClassUid !== incoming.sopClassUid) {
      return mismatch(`SOP Class UID differs from the command's: ${a.sopClassUid ?? '(none)'}`);
    }
    if (!isValidUid(a.studyInstanceUid)) {
      return mismatch('no valid Study Instance UID (0020,000D) in the dataset');
    }
    if (!walked.hasPixelData) return mismatch('no Pixel Data (7FE0,0010) in the image');
    if (walked.textWarnings.length > 0) {
      // Text we could only read approximately (an unknown character set term): stored all the same, and said.
      // The warnings name terms and byte counts, never the text itself.
      this.options.logger.warn('instance text decoded with fallbacks', {
        event: 'STORE-2012',
        associationId: incoming.associationId,
        sopInstanceUid: incoming.sopInstanceUid,
        characterSet: walked.characterSet.join('\\'),
        warnings: walked.textWarnings.slice(0, 5),
      });
    }
    return { kind: 'ok', attributes: a, studyInstanceUid: a.studyInstanceUid };
  }
}

/**
 * A700 (out of resources) when the disk, a quota, memory or the SQLite file is full: the sender keeps the
 * image and sends it again later; anything else is a processing failure on our side.
 */
function refusal(error: unknown, what: string): Extract<IngestOutcome, { kind: 'refused' }> {
  if (isOutOfResources(error)) {
    return {
      kind: 'refused',
      reason: 'out-of-resources',
      message: `${what}: out of disk space or resources (${describeError(error)}); send it again later`,
    };
  }
  return { kind: 'refused', reason: 'internal', message: `${what}: ${describeError(error)}` };
}
