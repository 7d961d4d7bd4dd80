// Typed reads from a dcmjs data set (DicomJson keyed by 8-hex-digit tags). dcmjs hands back numbers for US/SS/IS/DS
// in explicit VR, but strings or raw ArrayBuffers where the VR was implicit or ambiguous ("US or SS", "US or OW"),
// so every accessor accepts each of those shapes.

import type { DicomJson } from 'dcmjs';

export function values(ds: DicomJson, tag: string): unknown[] {
  return ds[tag]?.Value ?? [];
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** All numeric values of an attribute (binary-encoded ones read as little-endian 16-bit words when `binary16`). */
export function numbers(ds: DicomJson, tag: string, binary?: 'uint16' | 'int16'): number[] {
  const out: number[] = [];
  for (const v of values(ds, tag)) {
    if (v instanceof ArrayBuffer && binary) {
      const words = Math.floor(v.byteLength / 2);
      const view = new DataView(v);
      for (let i = 0; i < words; i++)
        out.push(binary === 'int16' ? view.getInt16(2 * i, true) : view.getUint16(2 * i, true));
      continue;
    }
    const n = toNumber(v);
    if (n !== undefined) out.push(n);
  }
  return out;
}

export function firstNumber(ds: DicomJson, tag: string): number | undefined {
  return numbers(ds, tag, 'uint16')[0];
}

export function firstString(ds: DicomJson, tag: string): string | undefined {
  const v = values(ds, tag)[0];
  if (typeof v !== 'string') return undefined;
  const s = v.replace(/[\0 ]+$/, '').trim();
  return s === '' ? undefined : s;
}

/** Items of a sequence attribute (dcmjs gives each item as a DicomJson). */
export function sequenceItems(ds: DicomJson, tag: string): DicomJson[] {
  return values(ds, tag).filter(
    (v): v is DicomJson => typeof v === 'object' && v !== null && !(v instanceof ArrayBuffer),
  );
}

export function has(ds: DicomJson, tag: string): boolean {
  return ds[tag] !== undefined;
}
