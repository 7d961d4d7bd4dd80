// Stored samples -> modality values. Bits outside Bits Stored (overlays in the high bits, garbage) are masked off,
// signed values are sign-extended from bit Bits Stored - 1, then Rescale Slope/Intercept or the Modality LUT applies.
// For 8- and 16-bit samples the whole chain (and the padding test) is tabulated once per image: a 65536-entry table
// is cheaper than the per-pixel arithmetic on a 5-megapixel radiograph.

import type { ModalityTransform } from './decoded-image.js';
import { lookup } from './lut.js';

export interface SampleRule {
  bitsStored: number;
  /** High Bit + 1 - Bits Stored: how far the stored bits sit above bit 0 (0 for every compressed syntax). */
  shift: number;
  signed: boolean;
}

export interface StoredSamples {
  bytes: Uint8Array;
  bytesPerSample: 1 | 2 | 4;
  littleEndian: boolean;
}

/** The stored value a raw sample (or a padding value in either VR) stands for. */
export function storedValue(raw: number, rule: SampleRule): number {
  if (rule.bitsStored >= 32) return rule.signed ? (raw >>> rule.shift) | 0 : raw >>> rule.shift;
  const v = (raw >>> rule.shift) & (2 ** rule.bitsStored - 1);
  if (!rule.signed) return v;
  const sign = 2 ** (rule.bitsStored - 1);
  return (v ^ sign) - sign;
}

function modalityValue(v: number, transform: ModalityTransform): number {
  return transform.kind === 'lut' ? lookup(transform.lut, v) : v * transform.slope + transform.intercept;
}

export interface ModalityImage {
  values: Float32Array;
  padding: Uint8Array | undefined;
}

/**
 * `count` modality values from stored samples. `padding`: Pixel Padding Value and Range Limit as read from the
 * file; both ends go through the same mask and sign rule as the pixels, so "US" and "SS" encodings of -1 agree.
 */
export function toModalityValues(
  samples: StoredSamples,
  count: number,
  rule: SampleRule,
  transform: ModalityTransform,
  padding: [number, number] | undefined,
): ModalityImage {
  const values = new Float32Array(count);
  const mask = padding ? new Uint8Array(count) : undefined;
  let padLo = 0;
  let padHi = -1;
  if (padding) {
    const a = storedValue(padding[0], rule);
    const b = storedValue(padding[1], rule);
    padLo = Math.min(a, b);
    padHi = Math.max(a, b);
  }

  if (samples.bytesPerSample === 4) {
    const raw = words32(samples, count);
    for (let i = 0; i < count; i++) {
      const v = storedValue(raw[i] ?? 0, rule);
      values[i] = modalityValue(v, transform);
      if (mask && v >= padLo && v <= padHi) mask[i] = 1;
    }
    return { values, padding: mask };
  }

  const raw = samples.bytesPerSample === 1 ? samples.bytes.subarray(0, count) : words16(samples, count);
  const size = samples.bytesPerSample === 1 ? 256 : 65536;
  const table = new Float32Array(size);
  const padTable = new Uint8Array(size);
  for (let r = 0; r < size; r++) {
    const v = storedValue(r, rule);
    table[r] = modalityValue(v, transform);
    if (v >= padLo && v <= padHi) padTable[r] = 1;
  }
  for (let i = 0; i < count; i++) values[i] = table[raw[i] ?? 0] ?? 0;
  if (mask) for (let i = 0; i < count; i++) mask[i] = padTable[raw[i] ?? 0] ?? 0;
  return { values, padding: mask };
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** 16-bit samples in host order (little-endian hosts: a view when aligned, else a copy; big-endian data swapped). */
function words16(s: StoredSamples, count: number): Uint16Array {
  const bytes = s.bytes.subarray(0, count * 2);
  if (s.littleEndian === HOST_LITTLE_ENDIAN && bytes.byteOffset % 2 === 0)
    return new Uint16Array(bytes.buffer, bytes.byteOffset, count);
  const out = new Uint16Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[i] = view.getUint16(2 * i, s.littleEndian);
  return out;
}

function words32(s: StoredSamples, count: number): Uint32Array {
  const bytes = s.bytes.subarray(0, count * 4);
  if (s.littleEndian === HOST_LITTLE_ENDIAN && bytes.byteOffset % 4 === 0)
    return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
  const out = new Uint32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[i] = view.getUint32(4 * i, s.littleEndian);
  return out;
}
