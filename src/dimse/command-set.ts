/**
 * Just enough of a DIMSE command set (PS3.7 9.3, 6.3.1: group 0000, always implicit VR little endian) to tell
 * whether a C-STORE-RQ data set follows. dcmjs-dimse still parses every command properly; StoreBypass only
 * needs this to know which data PDVs it may take off the library's path, and checks that the library agrees.
 */

export const C_STORE_RQ = 0x0001;
/** (0000,0800) CommandDataSetType value that means "no data set" (PS3.7 E.1). */
export const NO_DATA_SET = 0x0101;

const COMMAND_FIELD = 0x0100;
const COMMAND_DATA_SET_TYPE = 0x0800;

export interface CommandSummary {
  /** (0000,0100), undefined when absent. */
  commandField: number | undefined;
  /**
   * Whether a data set follows. Like dcmjs-dimse's `hasDataset()`, anything but 0x0101 (absent included)
   * announces one.
   */
  hasDataset: boolean;
}

/**
 * Reads CommandField and CommandDataSetType from a whole command set. Returns undefined when the bytes are
 * not a well-formed run of group 0000 elements; the caller then leaves the message to dcmjs-dimse.
 */
export function summariseCommand(bytes: Buffer): CommandSummary | undefined {
  let commandField: number | undefined;
  let dataSetType: number | undefined;
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 8 > bytes.length) return undefined;
    const group = bytes.readUInt16LE(offset);
    const element = bytes.readUInt16LE(offset + 2);
    const length = bytes.readUInt32LE(offset + 4);
    const value = offset + 8;
    if (group !== 0x0000 || length > bytes.length - value) return undefined;
    if (element === COMMAND_FIELD || element === COMMAND_DATA_SET_TYPE) {
      if (length !== 2) return undefined;
      if (element === COMMAND_FIELD) commandField = bytes.readUInt16LE(value);
      else dataSetType = bytes.readUInt16LE(value);
    }
    offset = value + length;
  }
  return { commandField, hasDataset: dataSetType !== NO_DATA_SET };
}
