/**
 * One optimizer update with a guard: the loss is computed and checked before the gradients are
 * applied, so a NaN or infinite loss never reaches the weights.
 */
import * as tf from "@tensorflow/tfjs";

/** Thrown when a loss term is NaN or infinite; the update it belonged to was not applied. */
export class NonFiniteLossError extends Error {
  constructor(
    readonly term: string,
    readonly value: number,
    readonly step: number,
  ) {
    super(
      `The loss "${term}" is ${value} at step ${step}, so training stopped before applying that update. ` +
        `The weights are those from the last good update. Check the loss function (log of 0? division by 0?) or lower the learning rate.`,
    );
    this.name = "NonFiniteLoss";
  }
}

/** What a loss function hands back: the scalar to minimise, and named parts to report. */
export interface LossOutput {
  loss: tf.Scalar;
  /** Extra scalars to report (e.g. reconstruction and KL); not differentiated separately. */
  terms?: Record<string, tf.Scalar>;
}

export interface Update {
  loss: number;
  terms: Record<string, number>;
}

/**
 * Minimises `f` over `vars` with `optimizer`: one step. `name` labels the loss in errors and
 * history; `step` is the step number used in messages.
 */
export function minimize(
  optimizer: tf.Optimizer,
  f: () => LossOutput | tf.Scalar,
  vars: tf.Variable[],
  name: string,
  step: number,
): Update {
  let kept: Record<string, tf.Scalar> = {};
  const { value, grads } = tf.variableGrads(() => {
    const out = f();
    const loss = out instanceof tf.Tensor ? out : out.loss;
    if (!(loss instanceof tf.Tensor) || loss.rank !== 0) {
      const got = loss instanceof tf.Tensor ? `a tensor of shape [${loss.shape}]` : String(loss);
      throw new Error(`The loss "${name}" must be a scalar tensor, got ${got}. Reduce it with tf.mean() or tf.sum().`);
    }
    if (!(out instanceof tf.Tensor)) {
      kept = {};
      for (const [k, t] of Object.entries(out.terms ?? {})) kept[k] = tf.keep(t);
    }
    return loss;
  }, vars);
  const terms: Record<string, number> = {};
  for (const [k, t] of Object.entries(kept)) {
    terms[k] = t.dataSync()[0];
    t.dispose();
  }
  const loss = value.dataSync()[0];
  value.dispose();
  for (const [k, v] of [[name, loss], ...Object.entries(terms)] as [string, number][]) {
    if (!Number.isFinite(v)) {
      tf.dispose(grads);
      throw new NonFiniteLossError(k, v, step);
    }
  }
  optimizer.applyGradients(grads);
  tf.dispose(grads);
  return { loss, terms };
}
