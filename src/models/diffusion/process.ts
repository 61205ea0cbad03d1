/**
 * The forward process and the training objectives, as pure functions.
 *
 * Diffusion (Ho et al. 2020): xₜ = √ᾱₜ·x₀ + √(1 − ᾱₜ)·ε, ε ~ N(0, I). A denoiser sees (xₜ, t) and
 * predicts one of three equivalent targets — the noise ε (DDPM), the clean x₀, or the velocity
 * v = √ᾱₜ·ε − √(1 − ᾱₜ)·x₀ (Salimans & Ho 2022, §4) — and any of them gives back both x̂₀ and ε̂.
 *
 * Flow matching (Lipman et al. 2023; rectified flow, Liu et al. 2023): xₜ = (1 − t)·x₀ + t·ε for
 * t ∈ [0, 1], and the denoiser predicts the velocity u = ε − x₀ of that straight path.
 */
import * as tf from "@tensorflow/tfjs";

/** Reshapes per-example values [B] to broadcast against x [B, ...]. */
export function perExample(values: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.reshape(values, [x.shape[0], ...x.shape.slice(1).map(() => 1)]);
}

/** xₜ = √ᾱ·x₀ + √(1 − ᾱ)·ε, with ᾱ given per example ([B]). */
export function addNoise(x0: tf.Tensor, alphaBar: tf.Tensor, noise: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const a = perExample(alphaBar, x0);
    return tf.add(tf.mul(tf.sqrt(a), x0), tf.mul(tf.sqrt(tf.sub(1, a)), noise));
  });
}

/** xₜ = (1 − t)·x₀ + t·ε for flow matching, with t per example ([B], in [0, 1]). */
export function interpolateFlow(x0: tf.Tensor, t: tf.Tensor, noise: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const s = perExample(t, x0);
    return tf.add(tf.mul(tf.sub(1, s), x0), tf.mul(s, noise));
  });
}

export type Objective = "eps" | "x0" | "v" | "flow";

/** What an objective receives: the denoiser's prediction and everything the target is made of. */
export interface ObjectiveInputs {
  prediction: tf.Tensor;
  x0: tf.Tensor;
  noise: tf.Tensor;
  /** ᾱ per example [B] (diffusion), or t per example [B] (flow). */
  alphaBar: tf.Tensor;
}

/** The regression target of each objective. */
export function target(objective: Objective, { x0, noise, alphaBar }: Omit<ObjectiveInputs, "prediction">): tf.Tensor {
  return tf.tidy(() => {
    switch (objective) {
      case "eps":
        return noise.clone();
      case "x0":
        return x0.clone();
      case "v": {
        const a = perExample(alphaBar, x0);
        return tf.sub(tf.mul(tf.sqrt(a), noise), tf.mul(tf.sqrt(tf.sub(1, a)), x0));
      }
      case "flow":
        return tf.sub(noise, x0);
    }
  });
}

/** Mean squared error against the objective's target (the simple loss of Ho et al. 2020, eq. 14). */
export function objectiveLoss(objective: Objective): (inputs: ObjectiveInputs) => tf.Scalar {
  return (inputs) => tf.tidy(() => tf.mean(tf.square(tf.sub(inputs.prediction, target(objective, inputs)))) as tf.Scalar);
}

export const objectives = {
  /** Predict the noise ε (Ho et al. 2020). */
  eps: objectiveLoss("eps"),
  /** Predict the clean sample x₀. */
  x0: objectiveLoss("x0"),
  /** Predict the velocity v = √ᾱ·ε − √(1 − ᾱ)·x₀ (Salimans & Ho 2022). */
  v: objectiveLoss("v"),
  /** Predict the flow-matching velocity ε − x₀ (Lipman et al. 2023). */
  flow: objectiveLoss("flow"),
};

/**
 * x̂₀ and ε̂ from a prediction at xₜ. `level` is ᾱ per example (diffusion objectives) or t per
 * example (flow).
 */
export function toX0Eps(objective: Objective, prediction: tf.Tensor, xt: tf.Tensor, level: tf.Tensor): { x0: tf.Tensor; eps: tf.Tensor } {
  return tf.tidy(() => {
    const a = perExample(level, xt);
    if (objective === "flow") {
      // xₜ = (1−t)x₀ + tε and u = ε − x₀  ⇒  x₀ = xₜ − t·u,  ε = xₜ + (1−t)·u
      return { x0: tf.sub(xt, tf.mul(a, prediction)), eps: tf.add(xt, tf.mul(tf.sub(1, a), prediction)) };
    }
    const sa = tf.sqrt(a);
    const sn = tf.sqrt(tf.sub(1, a));
    switch (objective) {
      case "eps":
        return { x0: tf.div(tf.sub(xt, tf.mul(sn, prediction)), sa), eps: prediction.clone() };
      case "x0":
        return { x0: prediction.clone(), eps: tf.div(tf.sub(xt, tf.mul(sa, prediction)), sn) };
      case "v":
        return { x0: tf.sub(tf.mul(sa, xt), tf.mul(sn, prediction)), eps: tf.add(tf.mul(sn, xt), tf.mul(sa, prediction)) };
    }
  });
}
