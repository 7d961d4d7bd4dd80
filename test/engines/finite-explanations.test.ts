// Specification of the one check both engines make before an explanation leaves them: NaN or infinity in a
// relevance map (or its logit) is LRP_NOT_FINITE, never a map to draw.
import test from 'ava';
import { createTfjsEngine } from '../../src/engines/tfjs-engine.js';
import { assertFiniteExplanations } from '../../src/engines/finite-explanations.js';
import { GatewayError } from '../../src/errors.js';
import type { Explanation } from '../../src/lrp/explanation.js';
import { fixtureTensor, nchwToNhwc } from '../helpers/tiny-densenet.js';
import { nanModelDir } from './nan-model.js';

function explanation(relevance: number[], logit = 1): Explanation {
  return {
    targetIndex: 0,
    targetClass: 'COVID-19',
    logit,
    logits: [logit, 0, 0],
    relevance: Float32Array.from(relevance),
    size: 2,
    relevanceSum: relevance.reduce((a, b) => a + b, 0),
    absorbedShare: 0,
    composite: 'epsilon',
    parameters: { epsilon: 0, gamma: 0.25, alpha: 2, beta: 1 },
  };
}

test('finite explanations pass through unchanged', (t) => {
  const batch = [[explanation([0.25, 0.25, 0.25, 0.25])], [explanation([1, -1, 0, 1])]];
  t.is(assertFiniteExplanations(batch), batch);
});

for (const [what, value] of [
  ['NaN', Number.NaN],
  ['infinity', Number.POSITIVE_INFINITY],
  ['minus infinity', Number.NEGATIVE_INFINITY],
] as const) {
  test(`${what} anywhere in a map is LRP_NOT_FINITE, naming the image, class and pixel`, (t) => {
    const batch = [[explanation([0.25, 0.25, 0.25, 0.25])], [explanation([1, -1, value, 1])]];
    const error = t.throws(() => assertFiniteExplanations(batch));
    t.true(error instanceof GatewayError);
    t.is((error as GatewayError).code, 'LRP_NOT_FINITE');
    t.regex(
      error?.message ?? '',
      /epsilon explanation of COVID-19 for image 2 of the batch: 1 of 4 relevance values are not finite \(the first, [-A-Za-z]+, at index 2\)/,
    );
  });
}

test('a logit that is not finite is LRP_NOT_FINITE too', (t) => {
  const error = t.throws(() => assertFiniteExplanations([[explanation([0, 0, 0, 0], Number.NaN)]]));
  t.is((error as GatewayError).code, 'LRP_NOT_FINITE');
  t.regex(error?.message ?? '', /its logit is NaN/);
});

test('the TF.js engine refuses to return an explanation of weights that make NaN', async (t) => {
  const engine = await createTfjsEngine({ modelDir: nanModelDir(), backend: 'cpu', allowSoftwareGpu: false, lrp: {} });
  t.teardown(() => engine.dispose());
  const x = nchwToNhwc(fixtureTensor('tiny-io.safetensors', 'input'));
  const error = await t.throwsAsync(engine.explain([x.data.slice(0, x.data.length / 2)], 'predicted'));
  t.is((error as GatewayError).code, 'LRP_NOT_FINITE');
});
