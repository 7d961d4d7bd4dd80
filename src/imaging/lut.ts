// Lookup tables as DICOM stores them (Modality LUT and VOI LUT items, PS3.3 C.11.1 / C.11.2): a descriptor
// [entries, first input value mapped, bits per entry] and the entries. Inputs below the first mapped value take the
// first entry, inputs past the end take the last.

import type { DicomJson } from 'dcmjs';
import { numbers } from './dicom-values.js';

const LUT_DESCRIPTOR = '00283002';
const LUT_DATA = '00283006';

export interface Lut {
  firstMapped: number;
  /** Bits per entry: outputs lie in 0 .. 2^bits - 1. */
  bits: number;
  data: Uint16Array;
}

/**
 * Reads the LUT of a Modality or VOI LUT Sequence item. `signedInput`: whether the input values can be negative,
 * which decides how the "US or SS" first-mapped value is read. Returns a reason string for a malformed LUT.
 */
export function readLut(item: DicomJson, signedInput: boolean): Lut | string {
  const descriptor = numbers(item, LUT_DESCRIPTOR, 'uint16');
  const [rawEntries, rawFirst, bits] = descriptor;
  if (rawEntries === undefined || rawFirst === undefined || bits === undefined) {
    return `LUT Descriptor (0028,3002) has ${descriptor.length} of its 3 values`;
  }
  // 0 entries means 2^16 (the count does not fit in 16 bits).
  const entries = rawEntries === 0 ? 65536 : rawEntries;
  // A negative first value read through an unsigned path comes back as 32768..65535.
  const firstMapped = signedInput && rawFirst >= 32768 ? rawFirst - 65536 : rawFirst;
  if (!Number.isInteger(bits) || bits < 8 || bits > 16)
    return `LUT Descriptor gives ${bits} bits per entry (8..16 expected)`;
  const raw = numbers(item, LUT_DATA, 'uint16');
  let data: Uint16Array;
  if (raw.length >= entries) {
    data = Uint16Array.from(raw.slice(0, entries));
  } else if (bits === 8 && raw.length === Math.ceil(entries / 2)) {
    // 8-bit entries packed two per 16-bit word (an encoding some writers use for OW LUT Data).
    data = new Uint16Array(entries);
    for (let i = 0; i < entries; i++) data[i] = ((raw[i >> 1] ?? 0) >> (8 * (i & 1))) & 0xff;
  } else {
    return `LUT Data (0028,3006) has ${raw.length} entries, the descriptor promises ${entries}`;
  }
  // Some writers declare fewer bits than their entries use; trust the entries, as DCMTK does.
  let largest = 0;
  for (let i = 0; i < data.length; i++) largest = Math.max(largest, data[i] ?? 0);
  const usedBits = Math.max(bits, Math.ceil(Math.log2(largest + 1)));
  return { firstMapped, bits: usedBits, data };
}

/** The LUT output for an input value. */
export function lookup(lut: Lut, x: number): number {
  const last = lut.data.length - 1;
  const i = Math.round(x) - lut.firstMapped;
  return lut.data[i <= 0 ? 0 : i >= last ? last : i] ?? 0;
}
