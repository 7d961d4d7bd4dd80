import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkModelDirectory, loadModel } from '../../src/inference/model-loader.js';
import { manifestSchema, placeholderFields, readManifest } from '../../src/inference/model-manifest.js';
import { tinyModelDir } from '../helpers/tiny-densenet.js';

const MODELS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../models');

function template(name: string): unknown {
  return JSON.parse(readFileSync(path.join(MODELS_DIR, name, 'manifest.template.json'), 'utf8'));
}

test('a placeholder anywhere in the manifest is refused, naming each field', (t) => {
  const dir = tinyModelDir({
    version: 'FILL: the site version',
    weights: { file: 'weights.safetensors', format: 'safetensors', sha256: 'FILL: sha256sum weights.safetensors' },
  });
  const error = t.throws(() => readManifest(dir));
  t.is((error as { code?: string }).code, 'MODEL_PLACEHOLDER');
  t.regex(error.message, /version still holds the template's placeholder 'FILL: the site version'/);
  t.regex(error.message, /weights\.sha256 still holds the template's placeholder 'FILL: sha256sum/);
});

test('a placeholder inside a list is found too', (t) => {
  t.deepEqual(placeholderFields({ classes: ['COVID-19', '  FILL: a class'] }), [
    { field: 'classes.1', text: '  FILL: a class' },
  ]);
  t.deepEqual(placeholderFields({ description: 'a model whose notes say FILL: later' }), []);
});

test('model check and the workers refuse a placeholder the same way (through checkModelDirectory)', (t) => {
  const dir = tinyModelDir({ intendedUse: 'FILL: the intended use' });
  for (const load of [checkModelDirectory, loadModel]) {
    const error = t.throws(() => load(dir));
    t.is((error as { code?: string }).code, 'MODEL_PLACEHOLDER');
    t.regex(error.message, /intendedUse/);
  }
});

for (const [name, blocks] of [
  ['densenet201-covid', [6, 12, 48, 32]],
  ['densenet121-covid', [6, 12, 24, 16]],
] as const) {
  test(`the ${name} template is refused for its placeholders and valid once they are filled`, (t) => {
    const raw = template(name) as Record<string, unknown>;
    const fields = placeholderFields(raw).map((p) => p.field);
    t.deepEqual(fields, ['version', 'modelUid', 'weights.sha256', 'intendedUse']);
    const filled = {
      ...raw,
      version: '2021.1',
      modelUid: '2.25.329800735698586629295641978511506172918',
      weights: { ...(raw.weights as object), sha256: 'ab'.repeat(32) },
      intendedUse: 'Research use only.',
    };
    const parsed = manifestSchema.safeParse(filled);
    t.true(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
    if (parsed.success) t.deepEqual(parsed.data.architecture.blockConfig, [...blocks]);
  });
}
