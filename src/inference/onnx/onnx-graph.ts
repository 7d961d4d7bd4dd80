// Builds an ONNX model node by node in TypeScript, so that a hospital needs no Python to turn a model directory
// into ONNX graphs: the forward pass (densenet-graph.ts) and each LRP composite (lrp/onnx-lrp-graph.ts) are
// emitted through this one builder at model load.

import {
  nodeProto,
  ProtoMessage,
  tensorProto,
  valueInfoProto,
  type OnnxAttribute,
  type OnnxElementType,
  type TensorData,
} from './onnx-proto.js';

export type { OnnxAttribute, OnnxElementType, TensorData };

/** The ai.onnx operator set every graph we emit is written against. */
export const ONNX_OPSET = 17;
/** IR version 8 goes with opset 17 (onnx/docs/Versioning.md). */
const IR_VERSION = 8;

interface Initializer {
  name: string;
  type: OnnxElementType;
  dims: number[];
  data: TensorData;
}

/**
 * One graph under construction. Every method returns the name of the tensor it made; names are unique
 * (`hint` + a counter), so callers never have to invent them. Inputs and outputs are declared with
 * their element type and shape; a string dimension is symbolic ('N' for a dynamic batch).
 */
export class OnnxGraphBuilder {
  private readonly nodes: ProtoMessage[] = [];
  private readonly initializers: Initializer[] = [];
  private readonly inputs: ProtoMessage[] = [];
  private readonly outputs: ProtoMessage[] = [];
  /** Every tensor name given out, and per hint how many times it was asked for. */
  private readonly taken = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly scalars = new Map<string, string>();

  constructor(readonly name: string) {}

  /** A graph input; returns its name (exactly `name`). */
  input(name: string, type: OnnxElementType, dims: ReadonlyArray<number | string>): string {
    this.claim(name);
    this.inputs.push(valueInfoProto(name, type, dims));
    return name;
  }

  /** Declares tensor `value` as graph output `name` (an Identity node renames it when the names differ). */
  output(name: string, type: OnnxElementType, dims: ReadonlyArray<number | string>, value: string): void {
    if (value !== name) {
      this.claim(name);
      this.nodes.push(nodeProto(`${name}_identity`, 'Identity', [value], [name], {}));
    }
    this.outputs.push(valueInfoProto(name, type, dims));
  }

  /** A constant tensor (weights, shapes), stored as an initializer. */
  constant(data: TensorData, dims: readonly number[], hint = 'const'): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (expected !== data.length)
      throw new Error(`constant ${hint}: ${data.length} values for shape [${dims.join(', ')}]`);
    const name = this.unique(hint);
    this.initializers.push({ name, type: elementTypeOf(data), dims: [...dims], data });
    return name;
  }

  /** A float32 constant of shape [values.length] (or [] for `scalar`). */
  floats(values: readonly number[], hint = 'floats'): string {
    return this.constant(Float32Array.from(values), [values.length], hint);
  }

  /** An int64 constant of shape [values.length]: axes, shapes, pads, starts/ends. */
  int64s(values: readonly number[], hint = 'ints'): string {
    return this.constant(BigInt64Array.from(values.map((v) => BigInt(v))), [values.length], hint);
  }

  /** A float32 scalar (shape []), shared between uses of the same value. */
  scalar(value: number): string {
    const key = Object.is(value, -0) ? '-0' : String(value);
    const known = this.scalars.get(key);
    if (known !== undefined) return known;
    const name = this.constant(Float32Array.of(value), [], 'scalar');
    this.scalars.set(key, name);
    return name;
  }

  /** One node with one output; returns the output's name. An input '' is an omitted optional input. */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Readonly<Record<string, OnnxAttribute>> = {},
    hint?: string,
  ): string {
    return this.nodeN(opType, inputs, 1, attributes, hint)[0] as string;
  }

  /** One node with `outputs` outputs (e.g. MaxPool's values and indices); returns their names. */
  nodeN(
    opType: string,
    inputs: readonly string[],
    outputs: number,
    attributes: Readonly<Record<string, OnnxAttribute>> = {},
    hint?: string,
  ): string[] {
    const base = this.unique(hint ?? opType.toLowerCase());
    const names = Array.from({ length: outputs }, (_, i) => (i === 0 ? base : this.unique(`${base}_${i}`)));
    this.nodes.push(nodeProto(base, opType, inputs, names, attributes));
    return names;
  }

  /** The serialized ModelProto, ready for an InferenceSession. */
  toBytes(): Uint8Array {
    const graph = new ProtoMessage();
    for (const n of this.nodes) graph.message(1, n);
    graph.string(2, this.name);
    for (const i of this.initializers) graph.message(5, tensorProto(i.name, i.type, i.dims, i.data));
    for (const i of this.inputs) graph.message(11, i);
    for (const o of this.outputs) graph.message(12, o);
    const opset = new ProtoMessage().string(1, '').varint(2, ONNX_OPSET);
    return new ProtoMessage()
      .varint(1, IR_VERSION)
      .string(2, 'cxr-gateway')
      .message(7, graph)
      .message(8, opset)
      .finish();
  }

  /** How many nodes so far (for logs and tests). */
  get nodeCount(): number {
    return this.nodes.length;
  }

  private unique(hint: string): string {
    let n = this.counters.get(hint) ?? 0;
    let name = n === 0 ? hint : `${hint}_${n}`;
    while (this.taken.has(name)) {
      n += 1;
      name = `${hint}_${n}`;
    }
    this.counters.set(hint, n + 1);
    this.taken.add(name);
    return name;
  }

  private claim(name: string): void {
    if (this.taken.has(name)) throw new Error(`ONNX graph ${this.name}: the name ${name} is already taken`);
    this.taken.add(name);
  }
}

function elementTypeOf(data: TensorData): OnnxElementType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return 'bool';
}
