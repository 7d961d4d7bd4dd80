import type { IngestOutcome } from '../store/instance-sink.js';

/** C-STORE response statuses (PS3.4 B.2.3) we send, with why. */
export const StoreStatus = {
  Success: 0x0000,
  /** Refused: Out of Resources: the disk is below its floor; the sender should retry later. */
  OutOfResources: 0xa700,
  /** Error: Data Set does not match SOP Class: UIDs missing or disagreeing with the command. */
  DataSetDoesNotMatchSopClass: 0xa900,
  /** Error: Cannot understand: the dataset cannot be parsed (truncated, garbled). */
  CannotUnderstand: 0xc000,
  /** Failure: Processing failure: our own disk or database failed. */
  ProcessingFailure: 0x0110,
} as const;

export function statusForOutcome(outcome: IngestOutcome): number {
  if (outcome.kind !== 'refused') return StoreStatus.Success;
  switch (outcome.reason) {
    case 'out-of-resources':
      return StoreStatus.OutOfResources;
    case 'mismatch':
      return StoreStatus.DataSetDoesNotMatchSopClass;
    case 'malformed':
      return StoreStatus.CannotUnderstand;
    case 'internal':
      return StoreStatus.ProcessingFailure;
  }
}

/** Error Comment (0000,0902) is LO: at most 64 characters. */
export function errorComment(message: string): string {
  return message.length <= 64 ? message : `${message.slice(0, 61)}...`;
}
