import * as tf from '@tensorflow/tfjs';

/** The two kinds of task in the twice transfer: NIH-style findings (multi-label) and the 3 target classes. */
export type TaskKind = 'single-label' | 'multi-label';

/**
 * Mean loss over the batch. `targets` [batch, classes]: one-hot for single-label (softmax cross-entropy),
 * multi-hot for multi-label (per-class sigmoid binary cross-entropy, averaged over classes as PyTorch's
 * BCEWithLogitsLoss does). Written from primitive ops: wasm has no LogSoftmax kernel.
 */
export function taskLoss(kind: TaskKind, logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    if (kind === 'single-label') {
      const logSumExp = tf.logSumExp(logits, 1);
      return tf.mean(tf.sub(logSumExp, tf.sum(tf.mul(logits, targets), 1))) as tf.Scalar;
    }
    // softplus(x) - x*z == -z log(sigmoid x) - (1 - z) log(1 - sigmoid x), stable for large |x|.
    return tf.mean(tf.sub(tf.softplus(logits), tf.mul(logits, targets))) as tf.Scalar;
  });
}

/** Per-class probabilities from logits: softmax across classes, or independent sigmoids. */
export function taskProbabilities(kind: TaskKind, logits: tf.Tensor2D): tf.Tensor2D {
  return kind === 'single-label' ? tf.softmax(logits) : tf.sigmoid(logits);
}
