import test from 'ava';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { checkModelDirectory, loadModel } from '../../src/inference/model-loader.js';
import { readSafetensors } from '../../src/inference/safetensors.js';
import { DenseNetLrp } from '../../src/lrp/densenet-lrp.js';
import { modelUidFromSha256 } from '../../src/training/model-writer.js';
import { parseTrainingConfig } from '../../src/training/training-config.js';
import { INTERMEDIATE_FILE, runTwiceTransfer, type TrainingRecord } from '../../src/training/twice-transfer.js';
import { writePngDataset } from './png-dataset.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'twice-transfer-'));
writePngDataset(path.join(root, 'target'), 8, 32, 1);
writePngDataset(path.join(root, 'findings'), 8, 32, 2);

function config(output: string, keepOutputNeurons: boolean) {
  const training = {
    epochs: 2,
    batchSize: 6,
    maxStepsPerEpoch: 2,
    validationSplit: 0.25,
    optimiser: { learningRate: 0.01 },
    recalibrationBatches: 2,
  };
  return parseTrainingConfig(
    {
      seed: 7,
      backend: 'wasm',
      output,
      cacheMegabytes: 16,
      model: {
        name: 'tiny-twice-transfer',
        architecture: { growthRate: 8, blockConfig: [2, 2, 2], numInitFeatures: 16 },
        preprocessing: { inputSize: 32 },
        intendedUse: 'Test model. Not for diagnostic use.',
      },
      intermediate: {
        data: { format: 'labels-csv', dir: 'findings', labelColumn: 'findings', labelMap: { 'No Finding': [] } },
        training,
      },
      target: { data: { format: 'labels-csv', dir: 'target' }, keepOutputNeurons, training },
    },
    root,
    'test config',
  );
}

test.serial(
  'a tiny twice-transfer run writes a model the gateway loads and explains; the kept Pneumonia neuron starts as the stage-2 one',
  async (t) => {
    const records: TrainingRecord[] = [];
    const outcome = await runTwiceTransfer(config(path.join(root, 'kept'), true), { onRecord: (r) => records.push(r) });

    // Stages ran with per-epoch metrics, and the log says where the weights came from.
    t.deepEqual(
      outcome.stages.map((s) => [s.stage, s.epochs.length]),
      [
        ['intermediate', 2],
        ['target', 2],
      ],
    );
    const init = records.find((r) => r.type === 'init');
    t.is(init?.type === 'init' ? init.source : undefined, 'kaiming');
    const epochs = records.filter((r) => r.type === 'epoch');
    t.is(epochs.length, 4);
    for (const e of epochs) if (e.type === 'epoch') t.true(Number.isFinite(e.train.loss) && e.validation !== undefined);
    for (const f of ['manifest.json', 'weights.safetensors', 'training-log.jsonl', 'metrics.json', INTERMEDIATE_FILE])
      t.true(existsSync(path.join(outcome.dir, f)), f);
    t.is(readFileSync(path.join(outcome.dir, 'training-log.jsonl'), 'utf8').trim().split('\n').length, records.length);

    // Output neuron keeping: the target head's pneumonia row and bias are the stage-2 Pneumonia ones, bit for bit.
    t.deepEqual(
      outcome.kept.map((k) => [k.target, k.source]),
      [['pneumonia', 'Pneumonia']],
    );
    const stage2 = readSafetensors(readFileSync(path.join(outcome.dir, INTERMEDIATE_FILE)));
    t.deepEqual(JSON.parse(stage2.metadata['classes'] ?? '[]')[6], 'Pneumonia');
    const w2 = stage2.tensors.get('classifier.weight');
    const b2 = stage2.tensors.get('classifier.bias');
    const head = outcome.heads.find((h) => h.stage === 'target');
    if (!w2 || !b2 || !head) return t.fail();
    const features = head.weight.shape[1] ?? 0;
    const row = (data: Float32Array, i: number) => Array.from(data.subarray(i * features, (i + 1) * features));
    t.deepEqual(row(head.weight.data, 1), row(w2.data, 6));
    t.is(head.bias.data[1], b2.data[6]);
    for (const fresh of [0, 2]) {
      for (let k = 0; k < 14; k += 1) t.notDeepEqual(row(head.weight.data, fresh), row(w2.data, k));
    }

    // The directory is a model like any other: checksum, UID from the weights, inference and LRP unchanged.
    const checked = checkModelDirectory(outcome.dir);
    t.is(checked.manifest.modelUid, modelUidFromSha256(checked.sha256));
    t.deepEqual(checked.manifest.classes, ['COVID-19', 'pneumonia', 'normal']);
    const model = loadModel(outcome.dir);
    const lrp = new DenseNetLrp(model.network, model.manifest.classes, model.manifest.preprocessing);
    const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const [explanation] = (await lrp.explain(x))[0] ?? [];
    t.true(
      explanation !== undefined &&
        Number.isFinite(explanation.relevanceSum) &&
        explanation.relevance.length === 32 * 32,
    );
    lrp.dispose();
    model.network.dispose();
    x.dispose();
  },
);

test.serial(
  'without output neuron keeping every target row starts fresh, and the same seed gives the same stage 2',
  async (t) => {
    const outcome = await runTwiceTransfer(config(path.join(root, 'fresh'), false));
    t.deepEqual(outcome.kept, []);
    const a = readFileSync(path.join(root, 'kept', INTERMEDIATE_FILE));
    const b = readFileSync(path.join(outcome.dir, INTERMEDIATE_FILE));
    t.true(a.equals(b), 'stage 2 is deterministic for a seed, so the comparison isolates the head');
    const stage2 = readSafetensors(b).tensors.get('classifier.weight');
    const head = outcome.heads.find((h) => h.stage === 'target');
    if (!stage2 || !head) return t.fail();
    const f = head.weight.shape[1] ?? 0;
    t.notDeepEqual(Array.from(head.weight.data.subarray(f, 2 * f)), Array.from(stage2.data.subarray(6 * f, 7 * f)));
  },
);

test.serial('refuses to write into a folder that holds something', async (t) => {
  await t.throwsAsync(runTwiceTransfer(config(path.join(root, 'kept'), true)), { message: /not empty/ });
});
