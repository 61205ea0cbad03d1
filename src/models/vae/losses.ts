/**
 * The VAE's objective, as pure functions (Kingma & Welling 2014, eq. 10): the negative ELBO
 *
 *   −ELBO(x) = E_q(z|x)[−log p(x|z)] + KL(q(z|x) ‖ p(z))
 *
 * with q(z|x) = N(μ, diag σ²), p(z) = N(0, I). Every term is in nats per example (summed over
 * pixels and latent dimensions, averaged over the batch), so numbers compare with the
 * literature. Replace any of them: `lab.vae({ data, objective: myObjective })`.
 */
import * as tf from "@tensorflow/tfjs";
import { BERNOULLI_NLL } from "../../backend/wasm-kernels/activation";

/** Per-example sums over every axis but the first. */
function perExample(t: tf.Tensor): tf.Tensor1D {
  return t.rank === 1 ? (t as tf.Tensor1D) : (tf.sum(t, [...Array(t.rank).keys()].slice(1)) as tf.Tensor1D);
}

/**
 * −log p(x|z) for Bernoulli pixels given decoder logits ℓ, per example:
 * Σ softplus(ℓ) − x·ℓ  (binary cross-entropy, stable for any ℓ; x may be grey values in [0, 1]).
 * On wasm one kernel each way (BERNOULLI_NLL, backend/wasm-kernels/activation.ts: the same terms,
 * summed in float64); elsewhere, or for shapes that broadcast, these tfjs ops.
 */
export function bernoulliNll({ x, logits }: { x: tf.Tensor; logits: tf.Tensor }): tf.Tensor1D {
  return tf.tidy(() => {
    const fused = logits.rank >= 2 && logits.size > 0 && x.shape.join() === logits.shape.join()
      && x.dtype === "float32" && logits.dtype === "float32" && tf.getKernel(BERNOULLI_NLL, tf.getBackend()) !== undefined;
    if (fused) {
      const rows = [logits.shape[0], logits.size / logits.shape[0]];
      return tf.engine().runKernel(BERNOULLI_NLL, { x: tf.reshape(x, rows), logits: tf.reshape(logits, rows) }) as tf.Tensor1D;
    }
    return perExample(tf.sub(tf.softplus(logits), tf.mul(x, logits)));
  });
}

/**
 * −log p(x|z) for Gaussian pixels N(μ, s²) with one learned log-scale s per model, per example:
 * Σ ½((x − μ)/s)² + log s + ½ log 2π.
 */
export function gaussianNll({ x, mean, logScale }: { x: tf.Tensor; mean: tf.Tensor; logScale: tf.Tensor }): tf.Tensor1D {
  return tf.tidy(() => {
    const z = tf.div(tf.sub(x, mean), tf.exp(logScale));
    return perExample(tf.add(tf.add(tf.mul(0.5, tf.square(z)), logScale), 0.5 * Math.log(2 * Math.PI)));
  });
}

/** KL(N(μ, e^{logvar}) ‖ N(0, I)) per example and per dimension, in closed form: ½(μ² + σ² − log σ² − 1). */
export function klPerDimension({ mean, logvar }: { mean: tf.Tensor; logvar: tf.Tensor }): tf.Tensor2D {
  return tf.tidy(() => tf.mul(0.5, tf.sub(tf.add(tf.square(mean), tf.exp(logvar)), tf.add(logvar, 1))) as tf.Tensor2D);
}

/** KL(q(z|x) ‖ p(z)) per example. */
export function klNormal(q: { mean: tf.Tensor; logvar: tf.Tensor }): tf.Tensor1D {
  return tf.tidy(() => perExample(klPerDimension(q)));
}

/** What an objective receives: the batch, the encoder's q(z|x), the sample z and the decoder's output. */
export interface VaeLossInputs {
  /** The batch, in [0, 1]. */
  x: tf.Tensor;
  /** q(z|x): mean and log-variance, [batch, latentDim]. */
  mean: tf.Tensor;
  logvar: tf.Tensor;
  /** z = μ + σ·ε, [batch, latentDim]. */
  z: tf.Tensor;
  /** The decoder's output for z: logits (Bernoulli) or means (Gaussian), shaped like x. */
  decoded: tf.Tensor;
  /** The Gaussian likelihood's log-scale (a scalar variable), or null for Bernoulli. */
  logScale: tf.Tensor | null;
  /** β of β-VAE (Higgins et al. 2017): the weight of the KL term. */
  beta: number;
}

/** The loss to minimise and its parts (each a batch mean, in nats per example). */
export interface VaeLosses {
  loss: tf.Scalar;
  reconstruction: tf.Scalar;
  kl: tf.Scalar;
}

export type VaeObjective = (inputs: VaeLossInputs) => VaeLosses;

/** The β-weighted negative ELBO: reconstruction + β·KL (β = 1 is the plain VAE). */
export const negativeElbo: VaeObjective = ({ x, mean, logvar, decoded, logScale, beta }) =>
  tf.tidy(() => {
    const rec = logScale ? gaussianNll({ x, mean: decoded, logScale }) : bernoulliNll({ x, logits: decoded });
    const reconstruction = tf.mean(rec) as tf.Scalar;
    const kl = tf.mean(klNormal({ mean, logvar })) as tf.Scalar;
    return { loss: tf.add(reconstruction, tf.mul(beta, kl)) as tf.Scalar, reconstruction, kl };
  });
