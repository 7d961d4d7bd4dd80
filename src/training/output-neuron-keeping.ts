import { GatewayError } from '../errors.js';
import type { HostTensor } from '../inference/weight-import.js';
import { freshClassifier } from './kaiming-init.js';
import type { SeededRandom } from './random.js';

export interface KeptNeuron {
  /** Class in the new task and its output index. */
  target: string;
  targetIndex: number;
  /** The previous task's class whose output neuron (weight row and bias) it starts from. */
  source: string;
  sourceIndex: number;
}

export interface NewHead {
  weight: HostTensor;
  bias: HostTensor;
  kept: KeptNeuron[];
}

/**
 * Output neuron keeping (the seed paper's twice transfer): the new task's classifier starts as a fresh
 * head, except that each class also present in the previous task's labels takes that class's output
 * neuron over unchanged (its row of weights and its bias). Classes are matched by name ignoring case
 * and '_' vs ' ' (NIH 'Pneumonia' -> 'pneumonia'), or through `map` (new class -> previous class).
 * With `keep` false every row is fresh: the comparison the training report makes.
 */
export function keepOutputNeurons(
  previous: { weight: HostTensor; bias: HostTensor; classes: readonly string[] },
  classes: readonly string[],
  random: SeededRandom,
  options: { keep: boolean; map?: Readonly<Record<string, string>> } = { keep: true },
): NewHead {
  const [previousClasses, features] = previous.weight.shape as [number, number];
  if (previousClasses !== previous.classes.length) {
    throw new GatewayError(
      'WEIGHTS_MISMATCH',
      `previous head has ${previousClasses} outputs but ${previous.classes.length} class names`,
    );
  }
  // Fresh rows for every class first, so that the random stream (and so the fresh rows) does not depend
  // on which rows are kept.
  const head = freshClassifier(classes.length, features, random);
  const kept: KeptNeuron[] = [];
  if (!options.keep) return { ...head, kept };
  const normalise = (name: string) => name.toLowerCase().replace(/_/g, ' ').trim();
  const previousIndex = new Map(previous.classes.map((c, i) => [normalise(c), i]));
  classes.forEach((target, targetIndex) => {
    const mapped = options.map?.[target];
    const sourceIndex = previousIndex.get(normalise(mapped ?? target));
    if (sourceIndex === undefined) {
      if (mapped !== undefined) {
        throw new GatewayError(
          'TRAINING_CONFIG_INVALID',
          `outputNeuronMap maps '${target}' to '${mapped}', which the previous stage does not have (${previous.classes.join(', ')})`,
        );
      }
      return;
    }
    head.weight.data.set(
      previous.weight.data.subarray(sourceIndex * features, (sourceIndex + 1) * features),
      targetIndex * features,
    );
    head.bias.data[targetIndex] = previous.bias.data[sourceIndex] ?? 0;
    kept.push({ target, targetIndex, source: previous.classes[sourceIndex] ?? '', sourceIndex });
  });
  return { ...head, kept };
}
