/**
 * Samplers: update rules from xₜ to the next, less noisy x, given the denoiser's x̂₀ and ε̂.
 * Each rule is a pure function of its inputs (noise included), so it can be checked by hand.
 *
 *   lab.samplers.ddpm({ steps: 1000 })        ancestral sampling (Ho et al. 2020, algorithm 2)
 *   lab.samplers.ddim({ steps: 50, eta: 0 })  DDIM (Song et al. 2021, eq. 12); η = 1 is DDPM-like
 *   lab.samplers.euler({ steps: 50 })         Euler steps along a flow-matching model's velocity
 */
import * as tf from "@tensorflow/tfjs";
import { Objective, toX0Eps } from "./process";

export interface SamplerSpec {
  kind: "ddpm" | "ddim" | "euler";
  /** Number of denoising steps (any number ≤ the schedule's T for diffusion). */
  steps: number;
  /** DDIM's η: 0 deterministic, 1 as stochastic as DDPM. */
  eta: number;
  name: string;
}

function checkSteps(steps: unknown, where: string): number {
  if (!Number.isInteger(steps) || (steps as number) < 1) throw new Error(`${where}: steps must be a positive integer, got ${String(steps)}.`);
  return steps as number;
}

export function ddpm(options: { steps?: number } = {}): SamplerSpec {
  const steps = checkSteps(options.steps ?? 1000, "samplers.ddpm()");
  return { kind: "ddpm", steps, eta: 1, name: `DDPM, ${steps} steps` };
}

export function ddim(options: { steps?: number; eta?: number } = {}): SamplerSpec {
  const steps = checkSteps(options.steps ?? 50, "samplers.ddim()");
  const eta = options.eta ?? 0;
  if (!(eta >= 0 && eta <= 1)) throw new Error(`samplers.ddim(): eta must be in [0, 1], got ${eta}.`);
  return { kind: "ddim", steps, eta, name: `DDIM η=${eta}, ${steps} steps` };
}

export function euler(options: { steps?: number } = {}): SamplerSpec {
  const steps = checkSteps(options.steps ?? 50, "samplers.euler()");
  return { kind: "euler", steps, eta: 0, name: `Euler, ${steps} steps` };
}

export const samplers = { ddpm, ddim, euler };

/** Evenly spaced timesteps T…1 (1-based), `steps` of them, each followed by the next (0 after the last). */
export function timesteps(T: number, steps: number): { t: number; prev: number }[] {
  if (steps > T) throw new Error(`A sampler cannot take ${steps} steps on a schedule of ${T}.`);
  const ts = Array.from({ length: steps }, (_, i) => Math.round(T - (i * (T - 1)) / Math.max(steps - 1, 1)));
  if (steps === 1) ts[0] = T;
  return ts.map((t, i) => ({ t, prev: i + 1 < steps ? ts[i + 1] : 0 }));
}

/** Flow-matching times 1…0 in `steps` equal steps. */
export function flowTimes(steps: number): { t: number; prev: number }[] {
  return Array.from({ length: steps }, (_, i) => ({ t: 1 - i / steps, prev: 1 - (i + 1) / steps }));
}

/**
 * One DDIM step (Song et al. 2021, eq. 12), from ᾱₜ to ᾱₚ (ᾱₚ = 1 at the end):
 *   σ = η·√((1 − ᾱₚ)/(1 − ᾱₜ))·√(1 − ᾱₜ/ᾱₚ)
 *   xₚ = √ᾱₚ·x̂₀ + √(1 − ᾱₚ − σ²)·ε̂ + σ·z
 */
export function ddimStep(a: { x0: tf.Tensor; eps: tf.Tensor; alphaBar: number; alphaBarPrev: number; eta: number; noise: tf.Tensor | null }): tf.Tensor {
  const { x0, eps, alphaBar, alphaBarPrev, eta, noise } = a;
  const sigma = eta * Math.sqrt((1 - alphaBarPrev) / (1 - alphaBar)) * Math.sqrt(Math.max(0, 1 - alphaBar / alphaBarPrev));
  const dir = Math.sqrt(Math.max(0, 1 - alphaBarPrev - sigma * sigma));
  return tf.tidy(() => {
    let x = tf.add(tf.mul(Math.sqrt(alphaBarPrev), x0), tf.mul(dir, eps));
    if (sigma > 0 && noise) x = tf.add(x, tf.mul(sigma, noise));
    return x;
  });
}

/**
 * One ancestral DDPM step (Ho et al. 2020, eqs. 6–7), from ᾱₜ to ᾱₚ with β = 1 − ᾱₜ/ᾱₚ:
 *   μ̃ = (√ᾱₚ·β / (1 − ᾱₜ))·x̂₀ + (√(1 − β)·(1 − ᾱₚ) / (1 − ᾱₜ))·xₜ,   σ² = β·(1 − ᾱₚ)/(1 − ᾱₜ)
 *   xₚ = μ̃ + σ·z
 */
export function ddpmStep(a: { xt: tf.Tensor; x0: tf.Tensor; alphaBar: number; alphaBarPrev: number; noise: tf.Tensor | null }): tf.Tensor {
  const { xt, x0, alphaBar, alphaBarPrev, noise } = a;
  const beta = 1 - alphaBar / alphaBarPrev;
  const c0 = (Math.sqrt(alphaBarPrev) * beta) / (1 - alphaBar);
  const ct = (Math.sqrt(1 - beta) * (1 - alphaBarPrev)) / (1 - alphaBar);
  const sigma = Math.sqrt((beta * (1 - alphaBarPrev)) / (1 - alphaBar));
  return tf.tidy(() => {
    let x = tf.add(tf.mul(c0, x0), tf.mul(ct, xt));
    if (sigma > 0 && noise) x = tf.add(x, tf.mul(sigma, noise));
    return x;
  });
}

/** One Euler step of dx/dt = v from t to tₚ: xₚ = xₜ − (t − tₚ)·v. */
export function eulerStep(a: { xt: tf.Tensor; velocity: tf.Tensor; t: number; tPrev: number }): tf.Tensor {
  return tf.tidy(() => tf.sub(a.xt, tf.mul(a.t - a.tPrev, a.velocity)));
}

export interface LoopInputs {
  sampler: SamplerSpec;
  /** The diffusion schedule (ignored by Euler, which uses flow times). */
  alphaBar: ArrayLike<number>;
  /** What the denoiser predicts. */
  predicts: Objective;
  /** The denoiser: xₜ and the time input [n] (t/T, or t for flow) → prediction. */
  denoise: (x: tf.Tensor, t: tf.Tensor) => tf.Tensor;
  /** x_T: the starting noise (disposed by the loop). */
  start: tf.Tensor;
  /** Draws the noise of stochastic steps. */
  noise: (shape: number[]) => tf.Tensor;
  /** Called after each step with its index, the step count, xₜ and x̂₀ (valid during the call). */
  record?: (i: number, total: number, xt: tf.Tensor, x0: tf.Tensor) => void;
  /**
   * Clip x̂₀ to [−c, c] before each update (DDPM clips images to [−1, 1]): at high noise x̂₀ =
   * (xₜ − √(1−ᾱ)·ε̂)/√ᾱ divides small errors by a tiny √ᾱ, and a deterministic sampler carries
   * them to the end. ε̂ is recomputed from the clipped x̂₀ so the two stay consistent.
   */
  clipX0?: number;
}

/** The sampling loop shared by every sampler: from x_T to x₀, one rule per step. */
export function sampleLoop(o: LoopInputs): tf.Tensor {
  const T = o.alphaBar.length;
  const flow = o.sampler.kind === "euler";
  const plan = flow ? flowTimes(o.sampler.steps) : timesteps(T, o.sampler.steps);
  const n = o.start.shape[0];
  let x = o.start;
  plan.forEach(({ t, prev }, i) => {
    const level = flow ? t : o.alphaBar[t - 1];
    const next = tf.tidy(() => {
      const pred = o.denoise(x, tf.fill([n], flow ? t : t / T));
      let { x0, eps } = toX0Eps(o.predicts, pred, x, tf.fill([n], level));
      if (o.clipX0 !== undefined && !flow) {
        x0 = tf.clipByValue(x0, -o.clipX0, o.clipX0);
        eps = tf.div(tf.sub(x, tf.mul(Math.sqrt(level), x0)), Math.sqrt(1 - level));
      }
      let out: tf.Tensor;
      if (flow) out = eulerStep({ xt: x, velocity: pred, t, tPrev: prev });
      else {
        const alphaBarPrev = prev === 0 ? 1 : o.alphaBar[prev - 1];
        const z = prev === 0 ? null : o.noise(x.shape);
        out =
          o.sampler.kind === "ddpm"
            ? ddpmStep({ xt: x, x0, alphaBar: level, alphaBarPrev, noise: z })
            : ddimStep({ x0, eps, alphaBar: level, alphaBarPrev, eta: o.sampler.eta, noise: z });
      }
      o.record?.(i, plan.length, out, x0);
      return out;
    });
    x.dispose();
    x = next;
  });
  return x;
}
