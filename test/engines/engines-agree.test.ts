// The two engines check each other through the one interface, on the tiny fixture model directory: the same
// logits (and PyTorch's, from the committed fixture) and the same relevance maps for every composite, on ONNX
// Runtime's CPU provider and on its WebGPU provider over Mesa lavapipe (a software adapter, allowed for tests).
import test from 'ava';
import type { InferenceEngine } from '../../src/engines/engine.js';
import { createOnnxEngine } from '../../src/engines/onnx-engine.js';
import { createTfjsEngine } from '../../src/engines/tfjs-engine.js';
import { GatewayError } from '../../src/errors.js';
import type { OnnxExecutionProvider } from '../../src/inference/onnx/onnx-types.js';
import { COMPOSITE_NAMES } from '../../src/lrp/composites.js';
import { fixtureTensor, maxAbs, maxAbsDiff, nchwToNhwc, tinyModelDir } from '../helpers/tiny-densenet.js';
import { nanModelDir } from './nan-model.js';

const modelDir = tinyModelDir();

/** The fixture's two preprocessed images, NHWC, one Float32Array each. */
function fixtureImages(): Float32Array[] {
  const x = nchwToNhwc(fixtureTensor('tiny-io.safetensors', 'input'));
  const per = x.data.length / x.shape[0];
  return [x.data.slice(0, per), x.data.slice(per, 2 * per)];
}

const torchLogits = fixtureTensor('tiny-io.safetensors', 'logits').data;

for (const provider of ['cpu', 'webgpu'] as const satisfies readonly OnnxExecutionProvider[]) {
  const onnx = (composite: (typeof COMPOSITE_NAMES)[number]) =>
    createOnnxEngine({
      modelDir,
      executionProviders: [provider],
      intraOpThreads: 2,
      allowSoftwareGpu: true,
      lrp: { composite },
    });

  test.serial(`ONNX Runtime (${provider}) gives the TF.js engine's and PyTorch's logits to 1e-4`, async (t) => {
    const tfjs = await createTfjsEngine({ modelDir, backend: 'cpu', allowSoftwareGpu: false, lrp: {} });
    t.teardown(() => tfjs.dispose());
    const ort = await onnx('isnet');
    t.teardown(() => ort.dispose());
    t.is(ort.info.device, provider);
    const inputs = fixtureImages();
    const a = (await ort.classify(inputs)).flat();
    const b = (await tfjs.classify(inputs)).flat();
    t.log(
      `logits: ONNX vs TF.js ${maxAbsDiff(a, b).toExponential(2)}, vs PyTorch ${maxAbsDiff(a, torchLogits).toExponential(2)}`,
    );
    t.true(maxAbsDiff(a, b) <= 1e-4);
    t.true(maxAbsDiff(a, torchLogits) <= 1e-4);
  });

  for (const composite of COMPOSITE_NAMES) {
    test.serial(`ONNX Runtime (${provider}) explains like the TF.js engine: ${composite}`, async (t) => {
      const tfjs: InferenceEngine = await createTfjsEngine({
        modelDir,
        backend: 'cpu',
        allowSoftwareGpu: false,
        lrp: { composite },
      });
      t.teardown(() => tfjs.dispose());
      const ort = await onnx(composite);
      t.teardown(() => ort.dispose());
      const inputs = fixtureImages();
      let worst = 0;
      for (const target of ['predicted', 'all', 1] as const) {
        const expected = await tfjs.explain(inputs, target);
        const got = await ort.explain(inputs, target);
        t.deepEqual(
          got.map((perImage) => perImage.map((e) => e.targetIndex)),
          expected.map((perImage) => perImage.map((e) => e.targetIndex)),
        );
        expected.forEach((perImage, i) =>
          perImage.forEach((e, k) => {
            const g = got[i]?.[k];
            if (g === undefined) return t.fail(`image ${i}, explanation ${k} missing`);
            const scale = maxAbs(e.relevance);
            const error = maxAbsDiff(g.relevance, e.relevance) / scale;
            worst = Math.max(worst, error);
            t.true(error <= 1e-4, `${target} image ${i} class ${e.targetClass}: ${error.toExponential(2)} of max abs`);
            t.true(maxAbsDiff(g.logits, e.logits) <= 1e-4);
            t.like(g, { targetClass: e.targetClass, composite, size: e.size });
            t.deepEqual(g.parameters, e.parameters);
            // Conservation as the TF.js engine has it: the same share absorbed by biases and stabilisers.
            t.true(Math.abs(g.relevanceSum - e.relevanceSum) <= 1e-4 * Math.max(1, Math.abs(e.logit)));
          }),
        );
      }
      t.log(`maps: worst difference ${worst.toExponential(2)} of the map's max abs value`);
    });
  }

  test.serial(
    `ONNX Runtime (${provider}): a map that is not finite is LRP_NOT_FINITE, never an explanation`,
    async (t) => {
      const ort = await createOnnxEngine({
        modelDir: nanModelDir(),
        executionProviders: [provider],
        intraOpThreads: 2,
        allowSoftwareGpu: true,
        lrp: {},
      });
      t.teardown(() => ort.dispose());
      const error = await t.throwsAsync(ort.explain(fixtureImages(), 'predicted'));
      t.true(error instanceof GatewayError);
      t.is((error as GatewayError).code, 'LRP_NOT_FINITE');
    },
  );
}

test.serial(
  'both engines refuse a class the model lacks with EXPLAIN_TARGET_UNKNOWN, and share the device they report',
  async (t) => {
    const tfjs = await createTfjsEngine({ modelDir, backend: 'cpu', allowSoftwareGpu: false, lrp: {} });
    t.teardown(() => tfjs.dispose());
    const ort = await createOnnxEngine({
      modelDir,
      executionProviders: ['cpu'],
      intraOpThreads: 1,
      allowSoftwareGpu: false,
      lrp: {},
    });
    t.teardown(() => ort.dispose());
    t.like(ort.info, { engine: 'onnxruntime', device: 'cpu', details: { threads: '1' } });
    for (const engine of [tfjs, ort]) {
      for (const target of ['fracture', 3]) {
        const error = await t.throwsAsync(engine.explain(fixtureImages(), target));
        t.is((error as GatewayError).code, 'EXPLAIN_TARGET_UNKNOWN', `${engine.info.engine}: ${target}`);
      }
    }
    t.deepEqual(await ort.classify([]), []);
    t.deepEqual(await ort.explain([], 'predicted'), []);
  },
);
