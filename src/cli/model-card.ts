import { expectedParameters } from '../inference/densenet-architecture.js';
import type { CheckedModel } from '../inference/model-loader.js';

/** What `cxr-gateway model check DIR` prints about a verified model directory. */
export function formatModelCard(model: CheckedModel): string {
  const m = model.manifest;
  const a = m.architecture;
  const parameters = expectedParameters(a)
    .filter((p) => !p.name.includes('running_'))
    .reduce((sum, p) => sum + p.shape.reduce((x, y) => x * y, 1), 0);
  const p = m.preprocessing;
  return [
    `model        ${m.name} ${m.version}`,
    `model UID    ${m.modelUid}`,
    `architecture DenseNet growth ${a.growthRate}, blocks (${a.blockConfig.join(', ')}), init ${a.numInitFeatures}, bn_size ${a.bnSize}; ${parameters.toLocaleString('en-US')} parameters`,
    `classes      ${m.classes.map((c, i) => `${i}: ${c}`).join(', ')}`,
    `input        ${p.inputSize}x${p.inputSize}, ${p.channels} channel(s), resize ${p.resize}, ${
      p.scaling === 'bitsStored'
        ? 'scaling bitsStored (v / (2^BitsStored - 1), no window)'
        : `window ${p.window} (percentiles ${p.percentiles.join('-')})`
    }`,
    `normalise    mean [${p.mean.join(', ')}], std [${p.std.join(', ')}]`,
    `weights      ${m.weights.file} (${m.weights.format}), sha256 ${model.sha256} verified, ${model.weights.size} tensors checked`,
    `intended use ${m.intendedUse}`,
    ...(m.description ? [`description  ${m.description}`] : []),
  ]
    .join('\n')
    .concat('\n');
}
