import { GatewayError } from '../errors.js';

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** float32 view of the tensor's data (converted from F16/F64/BF16 where needed). */
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

const BYTES_PER_ELEMENT: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2 };
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/**
 * Reads the safetensors format (8-byte little-endian header length, JSON header, raw little-endian data),
 * the layout PyTorch checkpoints are converted to. Floating-point tensors only: a classifier's weights.
 */
export function readSafetensors(bytes: Uint8Array, source = 'safetensors file'): SafetensorsFile {
  const fail = (message: string) => new GatewayError('WEIGHTS_INVALID', `${source}: ${message}`);
  if (bytes.length < 8) throw fail('shorter than its 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length) {
    throw fail(`header length ${headerLength} does not fit the file (${bytes.length} bytes): not a safetensors file?`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  } catch {
    throw fail('header is not valid JSON: not a safetensors file?');
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (value ?? {}) as Record<string, string>;
      continue;
    }
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = String(info.dtype);
    const size = BYTES_PER_ELEMENT[dtype];
    if (size === undefined) throw fail(`tensor ${name} has dtype ${dtype}; only float tensors can be weights`);
    if (!Array.isArray(info.shape) || !Array.isArray(info.data_offsets) || info.data_offsets.length !== 2) {
      throw fail(`tensor ${name} has no valid shape/data_offsets`);
    }
    const shape = info.shape.map(Number);
    const [begin, end] = info.data_offsets.map(Number) as [number, number];
    const count = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * size || dataStart + end > bytes.length || begin < 0) {
      throw fail(
        `tensor ${name}: data_offsets [${begin}, ${end}] do not match shape [${shape.join(', ')}] or the file size`,
      );
    }
    tensors.set(name, { dtype, shape, data: toFloat32(bytes, dataStart + begin, count, dtype) });
  }
  return { tensors, metadata };
}

function toFloat32(bytes: Uint8Array, offset: number, count: number, dtype: string): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * (BYTES_PER_ELEMENT[dtype] ?? 4));
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      // Copy through a byte view: the data need not be 4-byte aligned in the file.
      new Uint8Array(out.buffer).set(bytes.subarray(offset, offset + count * 4));
      break;
    case 'F64':
      for (let i = 0; i < count; i += 1) out[i] = view.getFloat64(i * 8, true);
      break;
    case 'BF16':
      for (let i = 0; i < count; i += 1) out[i] = bf16(view.getUint16(i * 2, true));
      break;
    case 'F16':
      for (let i = 0; i < count; i += 1) out[i] = f16(view.getUint16(i * 2, true));
      break;
  }
  return out;
}

const scratch = new DataView(new ArrayBuffer(4));
function bf16(bits: number): number {
  scratch.setUint32(0, bits << 16);
  return scratch.getFloat32(0);
}

function f16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Writes F32 tensors as safetensors (used for the model's own exports and tests). */
export function writeSafetensors(
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  metadata: Record<string, string> = {},
): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.length * 4] };
    offset += t.data.length * 4;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    for (let i = 0; i < t.data.length; i += 1) out.writeFloatLE(t.data[i] ?? 0, pos + i * 4);
    pos += t.data.length * 4;
  }
  return out;
}
