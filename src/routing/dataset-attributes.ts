import dcmjs from 'dcmjs';
import { readFileSync } from 'node:fs';
import { GatewayError, describeError } from '../errors.js';

/**
 * Attribute values of a stored instance for routing, by tag. Parsing stops at Pixel Data: rules look
 * at the header only, and a 10 MB image is not decoded to route it.
 */
export function readDatasetAttributes(path: string): (tag: string) => readonly string[] | undefined {
  let dict: Record<string, { vr: string; Value?: unknown[] }>;
  try {
    const bytes = readFileSync(path);
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    dict = dcmjs.data.DicomMessage.readFile(buffer, { untilTag: '7FE00010', includeUntilTagValue: false, ignoreErrors: true }).dict;
  } catch (error) {
    throw new GatewayError('DATASET_UNREADABLE', `cannot read the attributes of ${path}: ${describeError(error)}`);
  }
  return (tag) => {
    const element = dict[tag];
    if (element === undefined) return undefined;
    return (element.Value ?? []).map(valueToString);
  };
}

function valueToString(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object' && 'Alphabetic' in value) return String((value as { Alphabetic?: unknown }).Alphabetic ?? '');
  if (typeof value === 'object') return '';
  return String(value).trim();
}
