import test from 'ava';
import { OnnxGraphBuilder } from '../../src/inference/onnx/onnx-graph.js';
import { loadOnnxRuntime, openOnnxSession, type OnnxTensor } from '../../src/inference/onnx/onnx-session.js';

// The graph builder and protobuf writer, read back by ONNX Runtime itself: every attribute type and initializer
// element type must arrive as written, or the session would fail or compute something else.

async function runCpu(model: Uint8Array, feeds: Record<string, OnnxTensor> = {}): Promise<Record<string, OnnxTensor>> {
  const { session } = await openOnnxSession(model, { executionProviders: ['cpu'], allowSoftwareGpu: false });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** An output's values as a plain array (numbers, or bigints for int64); empty when the output is missing. */
function list(t: OnnxTensor | undefined): Array<number | bigint> {
  return t === undefined ? [] : Array.from<number | bigint>(t.data);
}

function floats(values: number[], dims: number[]): OnnxTensor {
  return { type: 'float32', data: Float32Array.from(values), dims };
}

test('a hand-checked Conv + ReduceSum gives the numbers worked out by hand', async (t) => {
  const g = new OnnxGraphBuilder('conv_sum');
  const x = g.input('x', 'float32', [1, 1, 3, 3]);
  // 2x2 kernel [[1, 0], [0, -1]] (x[i][j] - x[i+1][j+1]), bias 10, no padding: a 2x2 output.
  const w = g.constant(Float32Array.of(1, 0, 0, -1), [1, 1, 2, 2], 'w');
  const conv = g.node('Conv', [x, w, g.floats([10], 'b')], { kernel_shape: { ints: [2, 2] } });
  const sum = g.node('ReduceSum', [conv, g.int64s([2, 3])], { keepdims: { i: 0 } });
  g.output('conv', 'float32', [1, 1, 2, 2], conv);
  g.output('sum', 'float32', [1, 1], sum);
  // x = 1..9 row by row: every output is x[i][j] - x[i+1][j+1] + 10 = -4 + 10 = 6, their sum 24.
  const out = await runCpu(g.toBytes(), { x: floats([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]) });
  t.deepEqual(list(out['conv']), [6, 6, 6, 6]);
  t.deepEqual(out['conv']?.dims, [1, 1, 2, 2]);
  t.deepEqual(list(out['sum']), [24]);
});

test('every attribute type reaches ONNX Runtime as written: f, i, s, floats, ints, t', async (t) => {
  const g = new OnnxGraphBuilder('attributes');
  const x = g.input('x', 'float32', [1, 4]);
  // f: LeakyRelu's alpha.
  g.output('leaky', 'float32', [1, 4], g.node('LeakyRelu', [x], { alpha: { f: 0.25 } }));
  // i and ints: Transpose's perm, then Flatten's axis.
  const transposed = g.node('Transpose', [x], { perm: { ints: [1, 0] } });
  g.output('flat', 'float32', [4, 1], g.node('Flatten', [transposed], { axis: { i: 1 } }));
  // s: Pad's mode (reflect: [a b c d] padded by 2 on the left is [c b a b c d]).
  g.output('reflected', 'float32', [1, 6], g.node('Pad', [x, g.int64s([0, 2, 0, 0])], { mode: { s: 'reflect' } }));
  // floats: Constant's value_floats; t: Constant's value (an int64 tensor).
  g.output('listed', 'float32', [3], g.node('Constant', [], { value_floats: { floats: [0.5, -1.5, 3] } }));
  const tensor = { type: 'int64' as const, dims: [2, 1], data: BigInt64Array.of(-7n, 9007199254740993n) };
  g.output('tensor', 'int64', [2, 1], g.node('Constant', [], { value: { t: tensor } }));
  const out = await runCpu(g.toBytes(), { x: floats([-4, -1, 2, 3], [1, 4]) });
  t.deepEqual(list(out['leaky']), [-1, -0.25, 2, 3]);
  t.deepEqual(out['flat']?.dims, [4, 1]);
  t.deepEqual(list(out['flat']), [-4, -1, 2, 3]);
  t.deepEqual(list(out['reflected']), [2, -1, -4, -1, 2, 3]);
  t.deepEqual(list(out['listed']), [0.5, -1.5, 3]);
  t.is(out['tensor']?.type, 'int64');
  // 2^53 + 1 is not a double: the value went through as a 64-bit integer, not via a JavaScript number.
  t.deepEqual(list(out['tensor']), [-7n, 9007199254740993n]);
});

test('initializers of every element type: float32, int32, int64 and bool', async (t) => {
  const g = new OnnxGraphBuilder('initializers');
  const x = g.input('x', 'float32', [2, 3]);
  const f = g.constant(Float32Array.of(1.5, -2.5, 0.125), [3], 'f');
  const i32 = g.constant(Int32Array.of(-65536, 0, 16777215), [3], 'i32');
  const mask = g.constant(Uint8Array.of(1, 0, 1), [3], 'mask');
  const added = g.node('Add', [x, f]);
  g.output('added', 'float32', [2, 3], added);
  g.output('i32_cast', 'float32', [3], g.node('Cast', [i32], { to: { i: 1 } }));
  g.output('masked', 'float32', [2, 3], g.node('Where', [mask, added, g.scalar(0)]));
  // int64: Reshape's shape [3, 2].
  g.output('reshaped', 'float32', [3, 2], g.node('Reshape', [x, g.int64s([3, 2])]));
  const out = await runCpu(g.toBytes(), { x: floats([0, 1, 2, 3, 4, 5], [2, 3]) });
  t.deepEqual(list(out['added']), [1.5, -1.5, 2.125, 4.5, 1.5, 5.125]);
  t.deepEqual(list(out['i32_cast']), [-65536, 0, 16777215]);
  t.deepEqual(list(out['masked']), [1.5, 0, 2.125, 4.5, 0, 5.125]);
  t.deepEqual(out['reshaped']?.dims, [3, 2]);
});

test('a symbolic batch dimension takes any batch size in one session', async (t) => {
  const g = new OnnxGraphBuilder('batch');
  const x = g.input('x', 'float32', ['N', 2]);
  g.output('y', 'float32', ['N', 2], g.node('Mul', [x, g.scalar(3)]));
  const { ort } = await loadOnnxRuntime();
  const raw = await ort.InferenceSession.create(g.toBytes());
  t.deepEqual((raw.inputMetadata[0] as { shape?: unknown }).shape, ['N', 2]);
  await raw.release();
  const { session } = await openOnnxSession(g.toBytes(), { executionProviders: ['cpu'], allowSoftwareGpu: false });
  for (const n of [1, 3]) {
    const out = await session.run({
      x: floats(
        Array.from({ length: 2 * n }, (_, i) => i),
        [n, 2],
      ),
    });
    t.deepEqual(out['y']?.dims, [n, 2]);
    t.deepEqual(
      list(out['y']),
      Array.from({ length: 2 * n }, (_, i) => 3 * i),
    );
  }
  await session.release();
});

test('names are unique per hint, shared scalars are one initializer, and a taken input name is refused', (t) => {
  const g = new OnnxGraphBuilder('names');
  const x = g.input('x', 'float32', [1]);
  const a = g.node('Relu', [x], {}, 'act');
  const b = g.node('Relu', [a], {}, 'act');
  const c = g.node('Relu', [b], {}, 'act_1');
  t.is(new Set([a, b, c]).size, 3);
  const [values, indices] = g.nodeN('TopK', [x, g.int64s([1])], 2, {}, 'top');
  t.not(values, indices);
  t.is(g.scalar(0.5), g.scalar(0.5));
  t.not(g.scalar(0), g.scalar(-0));
  t.throws(() => g.input('x', 'float32', [1]), { message: /name x is already taken/ });
  t.throws(() => g.input(a, 'float32', [1]), { message: /already taken/ });
});

test('a constant whose data does not fill its shape is refused', (t) => {
  const g = new OnnxGraphBuilder('lengths');
  t.throws(() => g.constant(new Float32Array(5), [2, 3], 'w'), { message: /constant w: 5 values for shape \[2, 3\]/ });
  t.throws(() => g.constant(new Float32Array(2), [], 'scalar'), { message: /2 values for shape \[\]/ });
  t.notThrows(() => g.constant(new Float32Array(1), [], 'scalar'));
});
