import path from 'node:path';
import { isValidUid } from '../dicom/uids.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { DeliveryOutcome, Destination, DicomObject } from './destination.js';
import { dicomObjectSource, readDicomObject } from './dicom-object-read.js';
import { folderFailure } from './folder-failure.js';

export interface PacsFolderDestinationOptions {
  name: string;
  /** Absolute (the config loader resolves it against the config file's folder). */
  path: string;
  logger: Logger;
}

interface CheckedObject {
  bytes: Buffer;
  studyInstanceUid: string;
  sopInstanceUid: string;
}

/**
 * A PACS stand-in, or the hand-over folder of one: each object lands as `<path>/<StudyInstanceUID>/<SOPInstanceUID>.dcm`,
 * written atomically. The same SOP Instance UID again replaces the file (identical bytes for the same object),
 * so a retried batch leaves no duplicates.
 */
export class PacsFolderDestination implements Destination<DicomObject> {
  readonly name: string;
  private stopped = false;

  constructor(private readonly options: PacsFolderDestinationOptions) {
    this.name = options.name;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    this.stopped = true;
  }

  async deliver(items: readonly DicomObject[]): Promise<DeliveryOutcome> {
    const { logger } = this.options;
    const folder = this.options.path;
    const refused: string[] = [];
    const accepted: CheckedObject[] = [];
    for (const [index, item] of items.entries()) {
      const checked = await checkObject(item, index);
      if (typeof checked === 'string') refused.push(checked);
      else accepted.push(checked);
    }
    for (const object of accepted) {
      if (this.stopped)
        return {
          kind: 'retry',
          cause: 'stopped',
          reason: `delivery to folder ${folder} was stopped (the gateway is shutting down)`,
        };
      try {
        await writeFileAtomic(path.join(folder, object.studyInstanceUid), `${object.sopInstanceUid}.dcm`, object.bytes);
      } catch (error) {
        const failure = folderFailure(error, folder);
        logger.warn('folder delivery failed', {
          event: 'EXPORT-6010',
          destination: this.name,
          sopInstanceUid: object.sopInstanceUid,
          why: failure.reason,
        });
        return { kind: 'retry', ...failure };
      }
    }
    if (refused.length > 0) {
      // The readable objects were written; the others would be refused again on every attempt.
      const reason = `${refused.length} of ${items.length} objects cannot go to ${folder}: ${refused.join('; ')}`;
      logger.warn('folder delivery parked', { event: 'EXPORT-6011', destination: this.name, why: reason });
      return { kind: 'parked', cause: 'invalid-object', reason };
    }
    logger.debug('delivered to folder', { destination: this.name, objects: accepted.length });
    return { kind: 'delivered' };
  }
}

/** The object's bytes and the UIDs that name its file, or why it cannot be written. */
async function checkObject(item: DicomObject, index: number): Promise<CheckedObject | string> {
  try {
    const { source, bytes, studyInstanceUid, sopInstanceUid } = await readDicomObject(item, index);
    // The UIDs become a folder and a file name: only digits and dots may get there (no `..`, no `/`).
    if (!isValidUid(studyInstanceUid)) return `${source}: no valid Study Instance UID`;
    if (!isValidUid(sopInstanceUid)) return `${source}: no valid SOP Instance UID`;
    return { bytes, studyInstanceUid, sopInstanceUid };
  } catch (error) {
    return `${dicomObjectSource(item, index)}: ${describeError(error)}`;
  }
}
