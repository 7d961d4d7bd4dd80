import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/inference/backend.js';
import { Optimiser, optimiserSchema } from '../../src/training/optimiser.js';

test.before(async () => {
  await selectBackend('cpu');
});

test('Adam follows torch.optim.Adam: three steps on a fixed gradient match the closed form', async (t) => {
  const v = tf.variable(tf.tensor1d([1, -2]));
  const g = tf.tensor1d([0.5, -1]);
  const o = new Optimiser(optimiserSchema.parse({ name: 'adam', learningRate: 0.1, weightDecay: 0.01 }));
  const expected = [1, -2];
  const m = [0, 0];
  const s = [0, 0];
  for (let step = 1; step <= 3; step += 1) {
    o.apply([v], [g]);
    for (let i = 0; i < 2; i += 1) {
      const grad = [0.5, -1][i]! + 0.01 * expected[i]!;
      m[i] = 0.9 * m[i]! + 0.1 * grad;
      s[i] = 0.999 * s[i]! + 0.001 * grad * grad;
      expected[i] =
        expected[i]! - (0.1 * (m[i]! / (1 - 0.9 ** step))) / (Math.sqrt(s[i]! / (1 - 0.999 ** step)) + 1e-8);
    }
  }
  const got = await v.data();
  t.true(Math.abs(got[0]! - expected[0]!) < 1e-5 && Math.abs(got[1]! - expected[1]!) < 1e-5, `${got} vs ${expected}`);
  o.dispose();
  tf.dispose([v, g]);
});

test('SGD with momentum follows torch.optim.SGD (first step plain, then v = mu v + g)', async (t) => {
  const v = tf.variable(tf.scalar(1));
  const o = new Optimiser(optimiserSchema.parse({ name: 'sgd', learningRate: 0.1, momentum: 0.9 }));
  o.apply([v], [tf.scalar(1)]);
  o.apply([v], [tf.scalar(1)]);
  // step 1: buf 1, w 0.9; step 2: buf 1.9, w 0.71
  t.true(Math.abs((await v.data())[0]! - 0.71) < 1e-6);
  o.dispose();
  v.dispose();
});

test('the cosine schedule runs from the learning rate to 1% of it', (t) => {
  const o = new Optimiser(optimiserSchema.parse({ learningRate: 1, schedule: 'cosine' }));
  t.is(o.learningRateAt(0, 5), 1);
  t.true(Math.abs(o.learningRateAt(4, 5) - 0.01) < 1e-12);
  t.true(Math.abs(o.learningRateAt(2, 5) - 0.505) < 1e-12);
});
