/**
 * GAN losses: pure functions of the discriminator's logits on real and generated samples,
 * returning the discriminator's loss `d` and the generator's loss `g`.
 *
 * A loss you write yourself has the same shape and goes in the same slot:
 *
 *   const myLoss: lab.GanLoss = ({ realLogits, fakeLogits }) => ({
 *     d: tf.mean(tf.softplus(tf.neg(realLogits))).add(tf.mean(tf.softplus(fakeLogits))),
 *     g: tf.mean(tf.softplus(tf.neg(fakeLogits))),
 *   });
 *   lab.gan({ data, loss: myLoss });
 *
 * Logits are the discriminator's raw outputs D(x) ∈ ℝ, shape [batch, 1]; σ is the sigmoid.
 * With softplus(t) = log(1 + eᵗ): −log σ(t) = softplus(−t) and −log(1 − σ(t)) = softplus(t).
 */
import * as tf from "@tensorflow/tfjs";

export interface GanLossInputs {
  /** D(x) on a batch of real samples, [batch, 1]. */
  realLogits: tf.Tensor;
  /** D(G(z)) on a batch of generated samples, [batch, 1]. */
  fakeLogits: tf.Tensor;
}

export interface GanLosses {
  /** Minimised by the discriminator. */
  d: tf.Scalar;
  /** Minimised by the generator. */
  g: tf.Scalar;
}

/** A GAN loss: both players' losses from the two batches of logits. */
export type GanLoss = ((inputs: GanLossInputs) => GanLosses) & {
  /** False when `g` ignores realLogits (lets the generator's step skip a forward pass on real data). */
  usesRealInG?: boolean;
};

const mean = (t: tf.Tensor) => tf.mean(t) as tf.Scalar;

/**
 * The original minimax game (Goodfellow et al. 2014, eq. 1):
 * d = −E log σ(D(x)) − E log(1 − σ(D(G(z)))),  g = E log(1 − σ(D(G(z)))) (saturates early on).
 */
export const minimax: GanLoss = Object.assign(
  ({ realLogits, fakeLogits }: GanLossInputs): GanLosses => ({
    d: tf.add(mean(tf.softplus(tf.neg(realLogits))), mean(tf.softplus(fakeLogits))) as tf.Scalar,
    g: tf.neg(mean(tf.softplus(fakeLogits))) as tf.Scalar,
  }),
  { usesRealInG: false },
);

/** The non-saturating variant (Goodfellow et al. 2014, §3): the same d, g = −E log σ(D(G(z))). */
export const nonSaturating: GanLoss = Object.assign(
  ({ realLogits, fakeLogits }: GanLossInputs): GanLosses => ({
    d: tf.add(mean(tf.softplus(tf.neg(realLogits))), mean(tf.softplus(fakeLogits))) as tf.Scalar,
    g: mean(tf.softplus(tf.neg(fakeLogits))),
  }),
  { usesRealInG: false },
);

/** Least squares (LSGAN, Mao et al. 2017, eq. 9 with a=0, b=c=1): d = ½E(D(x)−1)² + ½E D(G(z))², g = ½E(D(G(z))−1)². */
export const leastSquares: GanLoss = Object.assign(
  ({ realLogits, fakeLogits }: GanLossInputs): GanLosses => ({
    d: tf.mul(0.5, tf.add(mean(tf.square(tf.sub(realLogits, 1))), mean(tf.square(fakeLogits)))) as tf.Scalar,
    g: tf.mul(0.5, mean(tf.square(tf.sub(fakeLogits, 1)))) as tf.Scalar,
  }),
  { usesRealInG: false },
);

/** Hinge (Lim & Ye 2017; SAGAN): d = E max(0, 1 − D(x)) + E max(0, 1 + D(G(z))), g = −E D(G(z)). */
export const hinge: GanLoss = Object.assign(
  ({ realLogits, fakeLogits }: GanLossInputs): GanLosses => ({
    d: tf.add(mean(tf.relu(tf.sub(1, realLogits))), mean(tf.relu(tf.add(1, fakeLogits)))) as tf.Scalar,
    g: tf.neg(mean(fakeLogits)) as tf.Scalar,
  }),
  { usesRealInG: false },
);

/** Wasserstein (Arjovsky et al. 2017): d = E D(G(z)) − E D(x), g = −E D(G(z)). Pair it with a gradient penalty. */
export const wasserstein: GanLoss = Object.assign(
  ({ realLogits, fakeLogits }: GanLossInputs): GanLosses => ({
    d: tf.sub(mean(fakeLogits), mean(realLogits)) as tf.Scalar,
    g: tf.neg(mean(fakeLogits)) as tf.Scalar,
  }),
  { usesRealInG: false },
);

export const ganLosses = { minimax, nonSaturating, leastSquares, hinge, wasserstein };
export type GanLossName = keyof typeof ganLosses;

/** What a penalty needs: the discriminator as a function, and the batches. */
export interface PenaltyInputs {
  discriminator: (x: tf.Tensor) => tf.Tensor;
  real: tf.Tensor;
  fake: tf.Tensor;
  /** Uniform [0, 1) per sample, shape [batch] (WGAN-GP's interpolation weights). */
  mix: tf.Tensor;
}

/** Per-sample gradient norms ‖∂ΣD/∂x‖ at x ([batch]). */
function gradNorms(discriminator: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor): tf.Tensor {
  const g = tf.grad((input: tf.Tensor) => tf.sum(discriminator(input)))(x);
  const axes = [...Array(x.rank).keys()].slice(1);
  return tf.sqrt(tf.add(tf.sum(tf.square(g), axes), 1e-12));
}

/**
 * WGAN-GP's gradient penalty (Gulrajani et al. 2017, eq. 3): E (‖∇D(x̂)‖ − 1)² at
 * x̂ = εx + (1 − ε)G(z), ε ~ U[0, 1]. Add λ·penalty (λ = 10) to the discriminator's loss.
 */
export function gradientPenalty({ discriminator, real, fake, mix }: PenaltyInputs): tf.Scalar {
  return tf.tidy(() => {
    const shape = [real.shape[0], ...real.shape.slice(1).map(() => 1)];
    const eps = tf.reshape(mix, shape);
    const xhat = tf.add(tf.mul(eps, real), tf.mul(tf.sub(1, eps), fake));
    return tf.mean(tf.square(tf.sub(gradNorms(discriminator, xhat), 1))) as tf.Scalar;
  });
}

/**
 * R1 (Mescheder et al. 2018, eq. 9): ½ E ‖∇D(x)‖² on real data. Add γ·penalty to the
 * discriminator's loss (the ½ is included here).
 */
export function r1({ discriminator, real }: PenaltyInputs): tf.Scalar {
  return tf.tidy(() => {
    const g = tf.grad((input: tf.Tensor) => tf.sum(discriminator(input)))(real);
    const axes = [...Array(real.rank).keys()].slice(1);
    return tf.mul(0.5, tf.mean(tf.sum(tf.square(g), axes))) as tf.Scalar;
  });
}

export const penalties = { gp: gradientPenalty, r1 };
export type PenaltyName = keyof typeof penalties;
