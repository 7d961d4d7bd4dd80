import type { ReceivedInstance } from '../../src/store/job-store.js';

let n = 0;

/**
 * A received DX instance as the job store records it (no file behind it unless `over.path` names one): study
 * `studyInstanceUid`, received at `receivedAt`, a new SOP Instance UID unless `over` gives one.
 */
export function receivedInstance(
  studyInstanceUid: string,
  receivedAt: number,
  over: Partial<ReceivedInstance> = {},
): ReceivedInstance {
  const sopInstanceUid = over.sopInstanceUid ?? `1.2.826.${(n += 1)}`;
  return {
    sopInstanceUid,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
    studyInstanceUid,
    seriesInstanceUid: '1.2.3.9',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    path: `/spool/${studyInstanceUid}/${sopInstanceUid}.dcm`,
    sizeBytes: 100,
    callingAe: 'DX1',
    calledAe: 'CXR_GATEWAY',
    sourceIp: '127.0.0.1',
    associationId: 'a1',
    attributes: { modality: 'DX' },
    receivedAt,
    ...over,
  };
}
