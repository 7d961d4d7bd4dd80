import test, { type ExecutionContext } from 'ava';
import * as tf from '@tensorflow/tfjs';
import type { PreprocessingSpec } from '../../src/imaging/preprocessing-spec.js';
import { selectBackend } from '../../src/inference/backend.js';
import { buildForwardModel } from '../../src/inference/onnx/densenet-graph.js';
import { openOnnxSession, type OnnxModelSession, type OnnxTensor } from '../../src/inference/onnx/onnx-session.js';
import type { OnnxExecutionProvider } from '../../src/inference/onnx/onnx-types.js';
import { checkDenseNetWeights } from '../../src/inference/weight-import.js';
import {
  TINY_ARCHITECTURE,
  fixture,
  fixtureTensor,
  maxAbs,
  maxAbsDiff,
  nchwToNhwc,
  tinyInput,
  tinyNetwork,
} from '../helpers/tiny-densenet.js';

// The ONNX forward graph against the two references it must equal: PyTorch's logits for the fixture input
// (tools/make_densenet_fixture.py) and the TF.js DenseNet on its cpu backend, on ONNX Runtime's CPU provider
// and on its WebGPU provider. Where there is no GPU, WebGPU runs on Mesa's lavapipe (see webgpu.test.ts for
// what it needs); a missing lavapipe FAILS these tests, CXR_SKIP_WEBGPU=1 skips them on purpose.

const TOLERANCE = 1e-4;
const skipWebGpu = process.env['CXR_SKIP_WEBGPU'] === '1';

const WEIGHTS = checkDenseNetWeights(fixture('tiny.safetensors'), TINY_ARCHITECTURE, 'tiny');
/** The fixture input NHWC: 2 images, 64x64, 3 channels. */
const INPUT = nchwToNhwc(fixtureTensor('tiny-io.safetensors', 'input'));
const [, SIZE, , CHANNELS] = INPUT.shape;
const PIXELS = SIZE * SIZE * CHANNELS;
const TORCH_LOGITS = fixtureTensor('tiny-io.safetensors', 'logits').data;
const CLASSES = TINY_ARCHITECTURE.numClasses;

function preprocessing(channels: 1 | 3): PreprocessingSpec {
  return {
    inputSize: SIZE,
    resize: 'pad',
    padValue: 0,
    channels,
    window: 'dicom',
    percentiles: [0.5, 99.5],
    mean: [0.485, 0.456, 0.406].slice(0, channels),
    std: [0.229, 0.224, 0.225].slice(0, channels),
  };
}

const sessions = new Map<string, Promise<OnnxModelSession>>();

/** One session per provider and channel count, shared by the tests (a model is built and loaded once). */
function sessionFor(provider: OnnxExecutionProvider, channels: 1 | 3): Promise<OnnxModelSession> {
  const key = `${provider}/${channels}`;
  let session = sessions.get(key);
  if (session === undefined) {
    const model = buildForwardModel({
      architecture: TINY_ARCHITECTURE,
      weights: WEIGHTS,
      preprocessing: preprocessing(channels),
    });
    session = openOnnxSession(model, { executionProviders: [provider], allowSoftwareGpu: true }).then(
      ({ session: s, selection }) => {
        if (selection.provider !== provider) throw new Error(`asked for ${provider}, got ${selection.provider}`);
        return s;
      },
    );
    sessions.set(key, session);
  }
  return session;
}

/** The session, or a failed test saying what a missing WebGPU needs. */
async function open(
  t: ExecutionContext,
  provider: OnnxExecutionProvider,
  channels: 1 | 3,
): Promise<OnnxModelSession | undefined> {
  try {
    return await sessionFor(provider, channels);
  } catch (error) {
    t.fail(
      `ONNX Runtime could not open the forward graph on ${provider} (${error instanceof Error ? error.message : String(error)})` +
        (provider === 'webgpu'
          ? '. Without a GPU, WebGPU needs Mesa 25 lavapipe (apt-get install -t bookworm-backports ' +
            'mesa-vulkan-drivers, as .ci/run does) and the optional npm package webgpu; CXR_SKIP_WEBGPU=1 skips on purpose'
          : ''),
    );
    return undefined;
  }
}

async function logits(session: OnnxModelSession, images: Float32Array, batch: number, channels = 3) {
  const out = await session.run({
    input: { type: 'float32', data: images, dims: [batch, SIZE, SIZE, channels] } satisfies OnnxTensor,
  });
  const result = out['logits'];
  if (result === undefined) throw new Error('the forward graph gave no logits');
  return result;
}

/** Images `indices` of the fixture input, as one NHWC batch. */
function batchOf(indices: number[]): Float32Array {
  const out = new Float32Array(indices.length * PIXELS);
  indices.forEach((image, i) => out.set(INPUT.data.subarray(image * PIXELS, (image + 1) * PIXELS), i * PIXELS));
  return out;
}

let tfjsLogits: Promise<Float32Array> | undefined;

/** The TF.js DenseNet's logits on its cpu backend, computed once. */
function tfjsReference(): Promise<Float32Array> {
  tfjsLogits ??= (async () => {
    await selectBackend('cpu');
    const net = tinyNetwork('tiny.safetensors');
    const x = tinyInput();
    const y = net.logits(x);
    const data = (await y.data()) as Float32Array;
    tf.dispose([x, y]);
    net.dispose();
    return data;
  })();
  return tfjsLogits;
}

function relativeError(ours: ArrayLike<number>, theirs: ArrayLike<number>): number {
  return maxAbsDiff(ours, theirs) / maxAbs(theirs);
}

for (const provider of ['cpu', 'webgpu'] as const) {
  const run = provider === 'webgpu' ? (skipWebGpu ? test.serial.skip : test.serial) : test;

  run(`${provider}: the forward graph's logits equal PyTorch's and the TF.js DenseNet's within 1e-4`, async (t) => {
    const reference = await tfjsReference();
    const session = await open(t, provider, 3);
    if (session === undefined) return;
    const out = await logits(session, INPUT.data, 2);
    t.deepEqual(out.dims, [2, CLASSES]);
    t.is(out.type, 'float32');
    const ours = out.data as Float32Array;
    const vsTorch = relativeError(ours, TORCH_LOGITS);
    const vsTfjs = relativeError(ours, reference);
    t.log(
      `${provider}: max |ONNX - torch| / max |logit| ${vsTorch.toExponential(2)}, vs TF.js ${vsTfjs.toExponential(2)}`,
    );
    t.true(vsTorch <= TOLERANCE, `vs torch: ${vsTorch}`);
    t.true(vsTfjs <= TOLERANCE, `vs TF.js: ${vsTfjs}`);
  });

  run(`${provider}: batches of 1 and 3 from one session give each image's logits`, async (t) => {
    const session = await open(t, provider, 3);
    if (session === undefined) return;
    const expected = (image: number) => TORCH_LOGITS.subarray(image * CLASSES, (image + 1) * CLASSES);
    for (const image of [0, 1]) {
      const one = await logits(session, batchOf([image]), 1);
      t.deepEqual(one.dims, [1, CLASSES]);
      t.true(relativeError(one.data as Float32Array, expected(image)) <= TOLERANCE, `batch 1, image ${image}`);
    }
    const order = [1, 0, 1];
    const three = await logits(session, batchOf(order), 3);
    t.deepEqual(three.dims, [3, CLASSES]);
    order.forEach((image, row) => {
      const got = (three.data as Float32Array).subarray(row * CLASSES, (row + 1) * CLASSES);
      t.true(relativeError(got, expected(image)) <= TOLERANCE, `batch 3, row ${row} (image ${image})`);
    });
  });

  run(`${provider}: a 1-channel model gives the logits of its 3-channel replica`, async (t) => {
    const grey = await open(t, provider, 1);
    const rgb = await open(t, provider, 3);
    if (grey === undefined || rgb === undefined) return;
    // The fixture's first channel as the grey image, and that image copied into three channels.
    const greyImages = new Float32Array(2 * SIZE * SIZE);
    const replica = new Float32Array(2 * PIXELS);
    for (let p = 0; p < greyImages.length; p += 1) {
      const v = INPUT.data[p * CHANNELS] ?? 0;
      greyImages[p] = v;
      replica.fill(v, p * 3, p * 3 + 3);
    }
    const fromGrey = await logits(grey, greyImages, 2, 1);
    const fromRgb = await logits(rgb, replica, 2);
    t.deepEqual(fromGrey.dims, [2, CLASSES]);
    const error = relativeError(fromGrey.data as Float32Array, fromRgb.data as Float32Array);
    t.log(`${provider}: 1-channel vs replica ${error.toExponential(2)}`);
    t.true(error <= 1e-6, `1-channel vs replica: ${error}`);
    // Not the same as the 3-channel fixture input: the test would pass vacuously if the channels were ignored.
    t.true(relativeError(fromGrey.data as Float32Array, TORCH_LOGITS) > 1e-3);
  });
}

test("cpu: an input size with odd feature maps (70: 35, 18, 9, 4) gives the TF.js DenseNet's logits", async (t) => {
  // Odd sizes are where the pooling rounding of the two engines could differ (torchvision floors, ceil_mode 0).
  const size = 70;
  const images = Float32Array.from({ length: 2 * size * size * 3 }, (_, i) => Math.sin(i * 0.37) * 2);
  await selectBackend('cpu');
  const net = tinyNetwork('tiny.safetensors');
  const x = tf.tensor4d(images, [2, size, size, 3]);
  const y = net.logits(x);
  const reference = (await y.data()) as Float32Array;
  tf.dispose([x, y]);
  net.dispose();
  const model = buildForwardModel({
    architecture: TINY_ARCHITECTURE,
    weights: WEIGHTS,
    preprocessing: { ...preprocessing(3), inputSize: size },
  });
  const { session } = await openOnnxSession(model, { executionProviders: ['cpu'], allowSoftwareGpu: false });
  const out = await session.run({ input: { type: 'float32', data: images, dims: [2, size, size, 3] } });
  await session.release();
  const error = relativeError(out['logits']?.data as Float32Array, reference);
  t.log(`size ${size}: max |ONNX - TF.js| / max |logit| ${error.toExponential(2)}`);
  t.true(error <= TOLERANCE, `${error}`);
});

test.after.always(async () => {
  for (const session of sessions.values()) await (await session.catch(() => undefined))?.release();
});
