import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/inference/backend.js';
import { batchStatisticsNorm } from '../../src/training/batch-norm.js';
import { trainableConv2d } from '../../src/training/conv-gradients.js';
import { trainableMaxPool } from '../../src/training/max-pool.js';

// Relative error as the largest absolute difference over the largest reference magnitude.
async function relativeError(ours: tf.Tensor, reference: tf.Tensor): Promise<number> {
  const [a, b] = await Promise.all([ours.data(), reference.data()]);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i += 1) {
    diff = Math.max(diff, Math.abs((a[i] ?? Number.NaN) - (b[i] ?? 0)));
    scale = Math.max(scale, Math.abs(b[i] ?? 0));
  }
  return a.length === b.length ? diff / scale : Number.POSITIVE_INFINITY;
}

const GEOMETRIES = [
  { kernel: 3, stride: 1, padding: 'same' as const, size: 9, cin: 5, cout: 4 },
  { kernel: 1, stride: 1, padding: 'valid' as const, size: 8, cin: 6, cout: 3 },
  { kernel: 7, stride: 2, padding: 'valid' as const, size: 22, cin: 3, cout: 4 },
  { kernel: 7, stride: 2, padding: 'valid' as const, size: 23, cin: 3, cout: 2 },
  { kernel: 3, stride: 2, padding: 'same' as const, size: 10, cin: 2, cout: 3 },
  { kernel: 2, stride: 1, padding: 'same' as const, size: 7, cin: 2, cout: 2 },
];

/** Gradients of sum(conv(x, w) * r) with respect to x and w: ours, and tf.grads through tfjs' own kernels. */
function gradients(g: (typeof GEOMETRIES)[number], useOurs: boolean): tf.Tensor[] {
  const x = tf.randomNormal([2, g.size, g.size, g.cin], 0, 1, 'float32', 11);
  const w = tf.randomNormal([g.kernel, g.kernel, g.cin, g.cout], 0, 1, 'float32', 12);
  const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, g.stride, g.padding);
  const r = tf.randomNormal(y.shape, 0, 1, 'float32', 13);
  const f = (a: tf.Tensor, b: tf.Tensor) => {
    const out = useOurs
      ? trainableConv2d(a as tf.Tensor4D, b as tf.Tensor4D, { stride: g.stride, padding: g.padding })
      : tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, g.stride, g.padding);
    return tf.sum(tf.mul(out, r));
  };
  const result = tf.grads(f)([x, w]);
  tf.dispose([x, w, y, r]);
  return result;
}

for (const g of GEOMETRIES) {
  const name = `${g.kernel}x${g.kernel}/${g.stride} ${g.padding} on ${g.size}x${g.size}`;
  test.serial(`conv gradients (dx and dW) equal tf.grad's on the cpu backend: ${name}`, async (t) => {
    await selectBackend('cpu');
    const [dxOurs, dwOurs] = gradients(g, true) as [tf.Tensor, tf.Tensor];
    const [dxRef, dwRef] = gradients(g, false) as [tf.Tensor, tf.Tensor];
    t.deepEqual(dxOurs.shape, dxRef.shape);
    t.deepEqual(dwOurs.shape, dwRef.shape);
    const ex = await relativeError(dxOurs, dxRef);
    const ew = await relativeError(dwOurs, dwRef);
    t.log(`dx ${ex.toExponential(2)}, dW ${ew.toExponential(2)}`);
    t.true(ex < 1e-4);
    t.true(ew < 1e-4);
    tf.dispose([dxOurs, dwOurs, dxRef, dwRef]);
  });

  test.serial(
    `on wasm (which lacks Conv2DBackpropFilter) the same gradients come out as on cpu: ${name}`,
    async (t) => {
      await selectBackend('cpu');
      const reference = await Promise.all(
        gradients(g, false).map(async (x) => ({ shape: x.shape, data: await x.data() })),
      );
      await selectBackend('wasm');
      t.throws(
        () => gradients(g, false),
        undefined,
        'tfjs-backend-wasm now has Conv2DBackpropFilter: the workaround may be unnecessary',
      );
      const ours = gradients(g, true);
      for (const [i, o] of ours.entries()) {
        const ref = reference[i];
        if (ref === undefined) return t.fail();
        const e = await relativeError(o, tf.tensor(ref.data, ref.shape));
        t.true(e < 1e-4, `gradient ${i}: ${e}`);
      }
      tf.dispose(ours);
    },
  );
}

test.serial('max and average pool gradients exist on wasm and equal the cpu ones', async (t) => {
  const run = () =>
    tf.tidy(() => {
      const x = tf.randomNormal([2, 9, 9, 3], 0, 1, 'float32', 21);
      const r = tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 22);
      const r2 = tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 23);
      const f = (a: tf.Tensor) =>
        tf.add(
          tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, 3, 2, 'valid'), r)),
          tf.sum(tf.mul(tf.avgPool(tf.slice(a, [0, 0, 0, 0], [2, 8, 8, 3]) as tf.Tensor4D, 2, 2, 'valid'), r2)),
        );
      return tf.grad(f)(x);
    });
  await selectBackend('cpu');
  const cpu = run();
  const cpuData = { data: await cpu.data(), shape: cpu.shape };
  await selectBackend('wasm');
  const wasm = run();
  const e = await relativeError(wasm, tf.tensor(cpuData.data, cpuData.shape));
  t.log(`pool gradients wasm vs cpu: ${e.toExponential(2)}`);
  t.true(e < 1e-5);
  tf.dispose([wasm]);
});

test.serial(
  'our max pool gradient (argmax + scatter) equals tf.grad on cpu; on wasm it agrees wherever the winner is unique',
  async (t) => {
    // The pool's input in a DenseNet is a ReLU output: ties are zeros, where the ReLU passes no gradient back,
    // so the gradient with respect to the pre-ReLU values does not depend on which zero "won". wasm's
    // MaxPoolWithArgmax picks the last of tied maxima (cpu the first): compare through the ReLU there.
    const z = () => tf.randomNormal([2, 11, 11, 3], 0, 1, 'float32', 41);
    const r = () => tf.randomNormal([2, 5, 5, 6], 0, 1, 'float32', 42);
    // Channels 0-2 see ReLU(z) (ties at zero), channels 3-5 see z itself (windows entirely below zero).
    const run = (pool: (a: tf.Tensor4D) => tf.Tensor4D) =>
      tf.tidy(() => {
        const rr = r();
        return tf.grad((a: tf.Tensor) => tf.sum(tf.mul(pool(tf.concat([tf.relu(a), a], 3) as tf.Tensor4D), rr)))(z());
      });
    await selectBackend('cpu');
    const reference = run((a) => tf.maxPool(a, 3, 2, 'valid'));
    // Summation order of overlapping windows may differ in the last bit; a wrong winner would be an O(1) error.
    t.true(
      (await relativeError(
        run((a) => trainableMaxPool(a, 3, 2)),
        reference,
      )) < 1e-6,
    );
    const referenceData = { data: await reference.data(), shape: reference.shape };
    await selectBackend('wasm');
    t.true(
      (await relativeError(
        run((a) => trainableMaxPool(a, 3, 2)),
        tf.tensor(referenceData.data, referenceData.shape),
      )) < 1e-6,
    );
  },
);

test.serial(
  'batch-statistics BatchNorm: value and gradients (x, gamma, beta) equal autodiff through tf.moments on cpu',
  async (t) => {
    await selectBackend('cpu');
    const x = tf.add(tf.mul(tf.randomNormal([3, 5, 4, 6], 0, 1, 'float32', 51), 2), 0.7) as tf.Tensor4D;
    const gamma = tf.randomNormal([6], 1, 0.2, 'float32', 52) as tf.Tensor1D;
    const beta = tf.randomNormal([6], 0, 0.2, 'float32', 53) as tf.Tensor1D;
    const r = tf.randomNormal([3, 5, 4, 6], 0, 1, 'float32', 54);
    let statistics: number[] = [];
    const ours = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.sum(
        tf.mul(
          batchStatisticsNorm(
            a as tf.Tensor4D,
            g as tf.Tensor1D,
            b as tf.Tensor1D,
            (m, v) => (statistics = [...m.dataSync(), ...v.dataSync()]),
          ),
          r,
        ),
      );
    const reference = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, [0, 1, 2]);
      return tf.sum(tf.mul(tf.add(tf.mul(tf.div(tf.sub(a, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b), r));
    };
    const [ov, og] = [ours(x, gamma, beta), tf.grads(ours)([x, gamma, beta])];
    const [rv, rg] = [reference(x, gamma, beta), tf.grads(reference)([x, gamma, beta])];
    t.true((await relativeError(ov, rv)) < 1e-5);
    for (let i = 0; i < 3; i += 1) {
      const e = await relativeError(og[i] as tf.Tensor, rg[i] as tf.Tensor);
      t.true(e < 1e-4, `gradient ${i}: ${e}`);
    }
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    t.true((await relativeError(tf.tensor(statistics), tf.concat([mean, variance]))) < 1e-5);
  },
);
