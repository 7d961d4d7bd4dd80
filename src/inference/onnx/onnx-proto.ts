// A writer for the few ONNX protobuf messages a model needs (onnx/onnx.proto, proto2): ModelProto, GraphProto,
// NodeProto, AttributeProto, TensorProto, ValueInfoProto. We only ever write models, never read them, so a
// ~100-line encoder replaces a protobuf runtime; ONNX Runtime itself is the reader that checks what we write.
// Repeated numbers are written unpacked (proto2's default), which every protobuf parser accepts.

/** TensorProto.DataType values we use. */
export const ONNX_DATA_TYPE = { float32: 1, int32: 6, int64: 7, bool: 9 } as const;
export type OnnxElementType = keyof typeof ONNX_DATA_TYPE;

/** AttributeProto.AttributeType values. */
const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

/** One protobuf message under construction: a list of encoded pieces, concatenated once at the end. */
export class ProtoMessage {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  varint(field: number, value: number | bigint): this {
    this.key(field, 0);
    this.rawVarint(BigInt.asUintN(64, BigInt(value)));
    return this;
  }

  fixed32Float(field: number, value: number): this {
    this.key(field, 5);
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2);
    this.rawVarint(BigInt(value.byteLength));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  message(field: number, value: ProtoMessage): this {
    return this.bytes(field, value.finish());
  }

  finish(): Uint8Array {
    return Buffer.concat(this.parts, this.length);
  }

  private key(field: number, wireType: number): void {
    this.rawVarint(BigInt((field << 3) | wireType));
  }

  private rawVarint(value: bigint): void {
    const out: number[] = [];
    let v = value;
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      out.push(byte);
    } while (v !== 0n);
    this.push(Uint8Array.from(out));
  }

  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.byteLength;
  }
}

export type TensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array;

/** TensorProto with raw_data (little-endian, as ONNX requires; so is every platform Node runs on). */
export function tensorProto(
  name: string,
  type: OnnxElementType,
  dims: readonly number[],
  data: TensorData,
): ProtoMessage {
  const m = new ProtoMessage();
  for (const d of dims) m.varint(1, d);
  m.varint(2, ONNX_DATA_TYPE[type]);
  m.string(8, name);
  m.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return m;
}

/** A node attribute, tagged with its ONNX type (1.0 as a float and 1 as an int are different attributes). */
export type OnnxAttribute =
  | { f: number }
  | { i: number }
  | { s: string }
  | { floats: readonly number[] }
  | { ints: readonly number[] }
  | { t: { type: OnnxElementType; dims: readonly number[]; data: TensorData } };

export function attributeProto(name: string, value: OnnxAttribute): ProtoMessage {
  const m = new ProtoMessage().string(1, name);
  if ('f' in value) return m.fixed32Float(2, value.f).varint(20, ATTRIBUTE_TYPE.FLOAT);
  if ('i' in value) return m.varint(3, value.i).varint(20, ATTRIBUTE_TYPE.INT);
  if ('s' in value) return m.bytes(4, Buffer.from(value.s, 'utf8')).varint(20, ATTRIBUTE_TYPE.STRING);
  if ('t' in value)
    return m.message(5, tensorProto('', value.t.type, value.t.dims, value.t.data)).varint(20, ATTRIBUTE_TYPE.TENSOR);
  if ('floats' in value) {
    for (const f of value.floats) m.fixed32Float(7, f);
    return m.varint(20, ATTRIBUTE_TYPE.FLOATS);
  }
  for (const i of value.ints) m.varint(8, i);
  return m.varint(20, ATTRIBUTE_TYPE.INTS);
}

export function nodeProto(
  name: string,
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: Readonly<Record<string, OnnxAttribute>>,
): ProtoMessage {
  const m = new ProtoMessage();
  for (const i of inputs) m.string(1, i);
  for (const o of outputs) m.string(2, o);
  m.string(3, name).string(4, opType);
  for (const [key, value] of Object.entries(attributes)) m.message(5, attributeProto(key, value));
  return m;
}

/** ValueInfoProto of a tensor; a string dimension is symbolic (e.g. 'N' for the batch). */
export function valueInfoProto(
  name: string,
  type: OnnxElementType,
  dims: ReadonlyArray<number | string>,
): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of dims) {
    const dim = new ProtoMessage();
    if (typeof d === 'number') dim.varint(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoMessage().varint(1, ONNX_DATA_TYPE[type]).message(2, shape);
  const typeProto = new ProtoMessage().message(1, tensorType);
  return new ProtoMessage().string(1, name).message(2, typeProto);
}
