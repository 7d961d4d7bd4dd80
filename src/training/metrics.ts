import type { TaskKind } from './losses.js';

export interface ClassMetrics {
  support: number;
  /** Single-label: share of this class's images predicted as it (recall); multi-label: binary accuracy at 0.5. */
  accuracy: number;
  precision?: number;
  /** Multi-label only: area under the ROC curve (undefined when only one label value occurs). */
  auc?: number;
}

export interface TaskMetrics {
  loss: number;
  /** Single-label: top-1 accuracy; multi-label: mean per-class binary accuracy at 0.5. */
  accuracy: number;
  perClass: Record<string, ClassMetrics>;
  /** Single-label only: rows = true class, columns = predicted class, in class order. */
  confusion?: number[][];
  /** Multi-label only: mean AUC over the classes where it is defined. */
  meanAuc?: number;
}

/**
 * Metrics from probabilities and targets, both [images][classes] row-major flat arrays, and the summed loss.
 */
export function taskMetrics(
  kind: TaskKind,
  classes: readonly string[],
  probabilities: Float32Array,
  targets: Float32Array,
  lossSum: number,
): TaskMetrics {
  const c = classes.length;
  const n = Math.floor(targets.length / c);
  const loss = n === 0 ? Number.NaN : lossSum / n;
  return kind === 'single-label'
    ? singleLabel(classes, probabilities, targets, n, loss)
    : multiLabel(classes, probabilities, targets, n, loss);
}

function singleLabel(
  classes: readonly string[],
  p: Float32Array,
  targets: Float32Array,
  n: number,
  loss: number,
): TaskMetrics {
  const c = classes.length;
  const confusion = classes.map(() => classes.map(() => 0));
  let correct = 0;
  for (let i = 0; i < n; i += 1) {
    const truth = argMax(targets, i * c, c);
    const predicted = argMax(p, i * c, c);
    const row = confusion[truth];
    if (row) row[predicted] = (row[predicted] ?? 0) + 1;
    if (truth === predicted) correct += 1;
  }
  const perClass: Record<string, ClassMetrics> = {};
  classes.forEach((name, k) => {
    const support = (confusion[k] ?? []).reduce((a, b) => a + b, 0);
    const predictedAs = confusion.reduce((a, row) => a + (row[k] ?? 0), 0);
    const hits = confusion[k]?.[k] ?? 0;
    perClass[name] = {
      support,
      accuracy: support ? hits / support : Number.NaN,
      precision: predictedAs ? hits / predictedAs : Number.NaN,
    };
  });
  return { loss, accuracy: n ? correct / n : Number.NaN, perClass, confusion };
}

function multiLabel(
  classes: readonly string[],
  p: Float32Array,
  targets: Float32Array,
  n: number,
  loss: number,
): TaskMetrics {
  const c = classes.length;
  const perClass: Record<string, ClassMetrics> = {};
  let accuracySum = 0;
  const aucs: number[] = [];
  classes.forEach((name, k) => {
    let right = 0;
    let positives = 0;
    const scores: Array<[number, number]> = [];
    for (let i = 0; i < n; i += 1) {
      const truth = (targets[i * c + k] ?? 0) >= 0.5;
      const score = p[i * c + k] ?? 0;
      if (truth === score >= 0.5) right += 1;
      if (truth) positives += 1;
      scores.push([score, truth ? 1 : 0]);
    }
    const accuracy = n ? right / n : Number.NaN;
    accuracySum += accuracy;
    const auc = rocAuc(scores, positives);
    if (auc !== undefined) aucs.push(auc);
    perClass[name] = { support: positives, accuracy, ...(auc === undefined ? {} : { auc }) };
  });
  const meanAuc = aucs.length ? aucs.reduce((a, b) => a + b, 0) / aucs.length : undefined;
  return { loss, accuracy: accuracySum / c, perClass, ...(meanAuc === undefined ? {} : { meanAuc }) };
}

/** Mann-Whitney form of the ROC AUC, ties counted half. */
export function rocAuc(scores: Array<[score: number, label: number]>, positives: number): number | undefined {
  const negatives = scores.length - positives;
  if (positives === 0 || negatives === 0) return undefined;
  const sorted = [...scores].sort((a, b) => a[0] - b[0]);
  let rankSum = 0;
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1]?.[0] === sorted[i]?.[0]) j += 1;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k += 1) if (sorted[k]?.[1] === 1) rankSum += averageRank;
    i = j + 1;
  }
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

function argMax(values: Float32Array, offset: number, count: number): number {
  let best = 0;
  for (let k = 1; k < count; k += 1)
    if ((values[offset + k] ?? -Infinity) > (values[offset + best] ?? -Infinity)) best = k;
  return best;
}
