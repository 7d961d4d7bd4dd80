import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

export const optimiserSchema = z
  .object({
    name: z.enum(['adam', 'sgd']).default('adam'),
    learningRate: z.number().positive().default(1e-3),
    /** SGD momentum (PyTorch's definition, no dampening). */
    momentum: z.number().min(0).max(0.999).default(0.9),
    /** L2 penalty added to the gradient, as PyTorch's `weight_decay` (not AdamW's decoupled decay). */
    weightDecay: z.number().min(0).default(0),
    /** Per-epoch learning rate: constant, or a cosine from learningRate down to 1% of it at the last epoch. */
    schedule: z.enum(['constant', 'cosine']).default('constant'),
    beta1: z.number().min(0).max(0.9999).default(0.9),
    beta2: z.number().min(0).max(0.99999).default(0.999),
    epsilon: z.number().positive().default(1e-8),
  })
  .strict();

export type OptimiserSpec = z.infer<typeof optimiserSchema>;

/**
 * Adam and SGD with momentum, with PyTorch's update rules (torch.optim.Adam / SGD), written out in tf ops
 * so that the learning rate can change per epoch and weight decay means what it means in PyTorch.
 */
export class Optimiser {
  private readonly slots = new Map<tf.Variable, tf.Variable[]>();
  private step = 0;
  learningRate: number;

  constructor(readonly spec: OptimiserSpec) {
    this.learningRate = spec.learningRate;
  }

  /** The learning rate of `epoch` (0-based) of `epochs` under the schedule. */
  learningRateAt(epoch: number, epochs: number): number {
    if (this.spec.schedule === 'constant' || epochs <= 1) return this.spec.learningRate;
    const floor = this.spec.learningRate * 0.01;
    return floor + ((this.spec.learningRate - floor) * (1 + Math.cos((Math.PI * epoch) / (epochs - 1)))) / 2;
  }

  /** One update of each variable with its gradient (same order). */
  apply(variables: readonly tf.Variable[], gradients: readonly tf.Tensor[]): void {
    this.step += 1;
    const { name, momentum, weightDecay, beta1, beta2, epsilon } = this.spec;
    const lr = this.learningRate;
    tf.tidy(() => {
      variables.forEach((v, i) => {
        let g = gradients[i];
        if (g === undefined) return;
        if (weightDecay > 0) g = tf.add(g, tf.mul(v, weightDecay));
        if (name === 'sgd') {
          if (momentum === 0) {
            v.assign(tf.sub(v, tf.mul(g, lr)));
            return;
          }
          const [buffer] = this.slotsOf(v, 1, this.step === 1 ? g : undefined) as [tf.Variable];
          if (this.step > 1) buffer.assign(tf.add(tf.mul(buffer, momentum), g));
          v.assign(tf.sub(v, tf.mul(buffer, lr)));
          return;
        }
        const [m, s] = this.slotsOf(v, 2) as [tf.Variable, tf.Variable];
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        s.assign(tf.add(tf.mul(s, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const mHat = tf.div(m, 1 - beta1 ** this.step);
        const sHat = tf.div(s, 1 - beta2 ** this.step);
        v.assign(tf.sub(v, tf.mul(tf.div(mHat, tf.add(tf.sqrt(sHat), epsilon)), lr)));
      });
    });
  }

  dispose(): void {
    for (const slots of this.slots.values()) tf.dispose(slots);
    this.slots.clear();
  }

  private slotsOf(v: tf.Variable, count: number, initial?: tf.Tensor): tf.Variable[] {
    let slots = this.slots.get(v);
    if (!slots) {
      slots = Array.from({ length: count }, () => tf.variable(initial ? initial.clone() : tf.zerosLike(v), false));
      this.slots.set(v, slots);
    }
    return slots;
  }
}
