// Reading a DICOM object handed to a PACS destination (a file or bytes in memory): its bytes and the UIDs that
// destinations key it by. The folder and STOW-RS destinations read objects this one way.

import { readFile } from 'node:fs/promises';
import { walkDatasetBuffer } from '../dicom/dataset-walker.js';
import { parsePart10Header } from '../dicom/part10-header.js';
import type { DicomObject } from './destination.js';

export interface ReadDicomObject {
  /** The file's path, or the object's label (or its position in the batch), for messages. */
  source: string;
  bytes: Buffer;
  studyInstanceUid: string | undefined;
  sopInstanceUid: string | undefined;
}

/** Reads the object at `index` of a batch; throws when it is not a readable Part 10 object. */
export async function readDicomObject(item: DicomObject, index: number): Promise<ReadDicomObject> {
  const source = 'path' in item ? item.path : (item.label ?? `object #${index + 1}`);
  const bytes =
    'path' in item
      ? await readFile(item.path)
      : Buffer.from(item.bytes.buffer, item.bytes.byteOffset, item.bytes.byteLength);
  const { transferSyntaxUid, datasetOffset } = parsePart10Header(bytes, source);
  const { attributes } = walkDatasetBuffer(bytes.subarray(datasetOffset), transferSyntaxUid);
  return { source, bytes, studyInstanceUid: attributes.studyInstanceUid, sopInstanceUid: attributes.sopInstanceUid };
}

/** The name an object goes by in messages, without reading it. */
export function dicomObjectSource(item: DicomObject, index: number): string {
  return 'path' in item ? item.path : (item.label ?? `object #${index + 1}`);
}
