/**
 * `lab.gan({ data })`: a generative adversarial network (Goodfellow et al. 2014) built for its
 * data — MLPs for 2-D points, a DCGAN for images — with a swappable loss.
 *
 *   const model = lab.gan({ data: lab.data.ring8(), seed: 0 });
 *   await model.step("D");            // move only the discriminator, and look
 *   await model.train({ steps: 2000 });
 *   model.evaluate()                  // modes captured, % high quality (ring8 / grid25)
 *
 * A step is `dSteps` discriminator updates then `gSteps` generator updates; `step("D")` or
 * `step("G")` moves one player. Images are mapped from the data's [0, 1] to [−1, 1] (the
 * generator ends in tanh) and back when sampling.
 */
import * as tf from "@tensorflow/tfjs";
import { Dataset } from "../../data/dataset";
import { mime } from "../../display/show";
import { MimeBundle } from "../../display/runtime";
import { gridDivergence, modeCoverage, ModeCoverage } from "../../metrics/points";
import { Module } from "../../nn/module";
import { Rng, Seed, rng as makeRng } from "../../random/rng";
import { adam } from "../../train/adam";
import { registerFamily } from "../../train/checkpoint";
import { Losses } from "../../train/history";
import { BaseConfig, Model, resolveConfig } from "../../train/model";
import { chart } from "../../views/figure";
import { gan2dFigure } from "../../views/gan2d";
import { gridPixels, imageGrid } from "../../views/images";
import { Animation, animation } from "../../views/gif";
import { GanLoss, GanLossName, PenaltyName, ganLosses, penalties } from "./losses";
import { convDiscriminator, convGenerator, mlpDiscriminator, mlpGenerator } from "./networks";

export interface GanConfig extends BaseConfig {
  /** Size of the latent noise z. */
  latentDim: number;
  /** Distribution of z: standard normal, or uniform on [−1, 1]. */
  prior: "normal" | "uniform";
  /** MLP width and depth (2-D data). */
  hidden: number;
  layers: number;
  /** Feature maps of the first conv layer (images); doubles per stage. */
  width: number;
  /** A built-in loss by name, or "custom" for a function passed as `loss`. */
  loss: GanLossName | "custom";
  /** Added to the discriminator's loss: WGAN-GP's gradient penalty or R1. */
  penalty: "none" | PenaltyName;
  /** λ for "gp" (10 in the paper), γ for "r1". */
  penaltyWeight: number;
  /** Adam learning rates and betas per network. */
  lrD: number;
  lrG: number;
  beta1: number;
  beta2: number;
  /** Updates per step of each player. */
  dSteps: number;
  gSteps: number;
  /** Decay of an exponential moving average of G's weights used for sampling; 0 = off. */
  ema: number;
}

const DEFAULTS: GanConfig = {
  seed: 0,
  batchSize: 256,
  latentDim: 2,
  prior: "normal",
  hidden: 64,
  layers: 3,
  width: 64,
  loss: "nonSaturating",
  penalty: "none",
  penaltyWeight: 10,
  lrD: 1e-3,
  lrG: 1e-3,
  beta1: 0.5,
  beta2: 0.999,
  dSteps: 1,
  gSteps: 1,
  ema: 0,
};

/** Presets; "images" is DCGAN-small's training setup. */
export const GAN_PRESETS: Record<string, Partial<GanConfig>> = {
  tiny: { batchSize: 32, hidden: 16, layers: 2, width: 8, latentDim: 8 },
  points: { ema: 0.99 },
  images: { batchSize: 64, latentDim: 64, lrD: 2e-4, lrG: 2e-4, ema: 0.999 },
  wgan: { loss: "wasserstein", penalty: "gp", penaltyWeight: 10, dSteps: 5, beta1: 0, beta2: 0.9, lrD: 1e-4, lrG: 1e-4 },
};

export interface GanOptions extends Partial<Omit<GanConfig, "loss">> {
  data: Dataset;
  /** A preset name: "tiny", "points", "images", "wgan". */
  preset?: string;
  /** A built-in loss by name, or your own function ({ realLogits, fakeLogits }) => { d, g }. */
  loss?: GanLossName | "custom" | GanLoss;
}

export class Gan extends Model<GanConfig> {
  readonly family = "gan";
  readonly G: Module;
  readonly D: Module;
  /** The generator whose weights are the moving average (when config.ema > 0). */
  readonly Gema: Module | null;
  readonly lossFn: GanLoss;
  private readonly optD: tf.Optimizer;
  private readonly optG: tf.Optimizer;
  private readonly noise: Rng;
  private readonly penaltyRng: Rng;
  private readonly fixedNoise: tf.Tensor;
  private readonly frames: { rgba: Uint8Array; width: number; height: number; step: number }[] = [];
  private readonly isImage: boolean;
  /** Points are standardised per axis for the networks (mean 0, std 1) and mapped back for samples. */
  private readonly center: tf.Tensor | null;
  private readonly scale: tf.Tensor | null;

  constructor(config: GanConfig, data: Dataset, loss: GanLoss) {
    super(config, data);
    this.isImage = data.kind === "images";
    if (data.kind === "text") throw new Error("lab.gan() trains on points or images; for text use lab.transformer().");
    this.lossFn = loss;
    if (this.isImage) {
      this.center = null;
      this.scale = null;
    } else {
      const { mean, variance } = tf.moments(data.x, 0);
      this.center = tf.keep(mean);
      this.scale = tf.keep(tf.sqrt(tf.add(variance, 1e-8)));
      variance.dispose();
    }
    const init = this.rng.fork("init");
    const [, h, , c] = data.x.shape;
    const make = (r: Rng) =>
      this.isImage
        ? convGenerator({ latentDim: config.latentDim, size: h, channels: c, width: config.width }, r)
        : mlpGenerator({ latentDim: config.latentDim, hidden: config.hidden, layers: config.layers }, r);
    this.G = make(init.fork("G"));
    this.D = this.isImage
      ? convDiscriminator({ latentDim: config.latentDim, size: h, channels: c, width: config.width }, init.fork("D"))
      : mlpDiscriminator({ latentDim: config.latentDim, hidden: config.hidden, layers: config.layers }, init.fork("D"));
    this.Gema = config.ema > 0 ? make(init.fork("G")) : null; // same initial weights as G
    this.optD = adam(config.lrD, config.beta1, config.beta2);
    this.optG = adam(config.lrG, config.beta1, config.beta2);
    this.noise = this.rng.fork("noise");
    this.penaltyRng = this.rng.fork("penalty");
    this.fixedNoise = tf.keep(this.prior(this.rng.fork("preview"), this.isImage ? 36 : 1000));
  }

  networks(): Record<string, Module> {
    return { G: this.G, D: this.D };
  }

  /** The EMA copy of G is saved with the model but is not a network of its own. */
  protected override extraVariables(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    if (!this.Gema) return out;
    for (const [k, v] of [...this.Gema.variables(), ...this.Gema.state()]) out.set(`ema/${k}`, v);
    return out;
  }

  protected optimizers(): Record<string, tf.Optimizer> {
    return { D: this.optD, G: this.optG };
  }

  protected streams(): Record<string, Rng> {
    return { noise: this.noise, penalty: this.penaltyRng };
  }

  /** z ~ prior, [n, latentDim]. */
  private prior(r: Rng, n: number): tf.Tensor {
    return this.config.prior === "uniform" ? r.uniform([n, this.config.latentDim], -1, 1) : r.normal([n, this.config.latentDim]);
  }

  /** Data space → model space (images: [0, 1] → [−1, 1]; points: standardised). */
  private toModel(x: tf.Tensor): tf.Tensor {
    return this.isImage ? tf.sub(tf.mul(x, 2), 1) : tf.div(tf.sub(x, this.center as tf.Tensor), this.scale as tf.Tensor);
  }

  /** Model space → data space. */
  private toData(x: tf.Tensor): tf.Tensor {
    return this.isImage ? tf.div(tf.add(x, 1), 2) : tf.add(tf.mul(x, this.scale as tf.Tensor), this.center as tf.Tensor);
  }

  protected trainStep(what = "both"): Losses {
    if (what !== "both" && what !== "D" && what !== "G") {
      throw new Error(`gan.step() takes "D", "G" or "both" (default), got ${JSON.stringify(what)}.`);
    }
    const losses: Losses = {};
    if (what !== "G") for (let i = 0; i < this.config.dSteps; i++) Object.assign(losses, this.updateD());
    if (what !== "D") for (let i = 0; i < this.config.gSteps; i++) Object.assign(losses, this.updateG());
    return losses;
  }

  private updateD(): Losses {
    const batch = this.nextBatch();
    const n = this.config.batchSize;
    const z = this.prior(this.noise, n);
    const mix = this.config.penalty === "gp" ? this.penaltyRng.uniform([n]) : null;
    const real = tf.tidy(() => this.toModel(batch.x));
    const fake = tf.tidy(() => this.G.apply(z, { training: true }));
    tf.dispose([batch.x, batch.labels, z].filter(Boolean) as tf.Tensor[]);
    const D = (x: tf.Tensor) => this.D.apply(x, { training: true });
    try {
      const dVars = [...this.D.variables().values()];
      const penaltyName = this.config.penalty;
      const { loss, terms } = this.update(this.optD, () => {
        // One pass of D over real and generated samples together (half the ops of two passes).
        const logits = D(tf.concat([real, fake], 0));
        const [realLogits, fakeLogits] = tf.split(logits, 2, 0);
        const { d } = this.lossFn({ realLogits, fakeLogits });
        if (penaltyName === "none") return { loss: d };
        const p = penalties[penaltyName]({ discriminator: D, real, fake, mix: mix ?? tf.zeros([n]) });
        return { loss: tf.add(d, tf.mul(this.config.penaltyWeight, p)) as tf.Scalar, terms: { [penaltyName]: p } };
      }, dVars, "d");
      return { d: loss, ...terms };
    } finally {
      tf.dispose([real, fake, ...(mix ? [mix] : [])]);
    }
  }

  private updateG(): Losses {
    const n = this.config.batchSize;
    const z = this.prior(this.noise, n);
    let realLogits: tf.Tensor | null = null;
    if (this.lossFn.usesRealInG !== false) {
      const batch = this.nextBatch();
      realLogits = tf.tidy(() => this.D.apply(this.toModel(batch.x), { training: true }));
      tf.dispose([batch.x, batch.labels].filter(Boolean) as tf.Tensor[]);
    }
    try {
      const gVars = [...this.G.variables().values()];
      const { loss } = this.update(this.optG, () => {
        const fakeLogits = this.D.apply(this.G.apply(z, { training: true }), { training: true });
        return this.lossFn({ realLogits: realLogits ?? tf.zerosLike(fakeLogits), fakeLogits }).g;
      }, gVars, "g");
      this.updateEma();
      return { g: loss };
    } finally {
      tf.dispose([z, ...(realLogits ? [realLogits] : [])]);
    }
  }

  /**
   * Gema ← d·Gema + (1 − d)·G, with d = min(ema, (1 + t) / (10 + t)) after t generator updates,
   * so the average follows G closely at first (as TensorFlow's ExponentialMovingAverage does
   * with num_updates); its batch-norm statistics follow G's.
   */
  private updateEma(): void {
    if (!this.Gema) return;
    const t = this.optG.iterations; // generator updates so far (restored with the optimizer's state)
    const decay = Math.min(this.config.ema, (1 + t) / (10 + t));
    const src = [...this.G.variables().values(), ...this.G.state().values()];
    const dst = [...this.Gema.variables().values(), ...this.Gema.state().values()];
    tf.tidy(() => dst.forEach((v, i) => v.assign(i < this.G.variables().size ? tf.add(tf.mul(v, decay), tf.mul(src[i], 1 - decay)) : src[i])));
  }

  /** The generator used for samples: the EMA copy when enabled. */
  get sampler(): Module {
    return this.Gema ?? this.G;
  }

  /** Generates from given noise z [n, latentDim], in data space (the caller disposes). */
  generate(z: tf.Tensor): tf.Tensor {
    if (z.rank !== 2 || z.shape[1] !== this.config.latentDim) {
      throw new Error(`generate() expects z shaped [n, ${this.config.latentDim}] (this GAN's latentDim), got [${z.shape}].`);
    }
    return tf.tidy(() => this.toData(this.sampler.apply(z)));
  }

  /** `n` samples in data space (images in [0, 1]); the caller disposes. */
  sample(options: { n: number; seed?: Seed }): tf.Tensor {
    const { n, seed = 0 } = options;
    if (!Number.isInteger(n) || n <= 0) throw new Error(`sample({ n }) needs a positive integer n, got ${String(n)}.`);
    const z = this.prior(makeRng(seed).fork("sample"), n);
    const out = this.generate(z);
    z.dispose();
    return out;
  }

  /** What the dashboard shows: the GAN Lab view for points, a fixed-noise sample grid for images. */
  preview(): unknown {
    if (!this.isImage) return this.view2d();
    const x = this.generate(this.fixedNoise);
    const values = x.dataSync();
    const shape = x.shape as [number, number, number, number];
    x.dispose();
    const px = gridPixels(values, shape, { cols: 6 });
    if (this.frames.length < 200) this.frames.push({ ...px, step: this.stepCount });
    return imageGrid(tf.tensor(values, shape), { cols: 6, title: `samples from fixed noise, step ${this.stepCount}` });
  }

  /** A GIF of the fixed-noise sample grid over training (one frame per dashboard refresh). */
  evolution(options: { fps?: number } = {}): Animation {
    if (this.frames.length === 0) throw new Error("No frames yet: train with { live: true } (each dashboard refresh adds a frame), or call model.preview().");
    return animation(this.frames, { fps: options.fps ?? 4, title: `${this.frames.length} frames, steps ${this.frames[0].step}–${this.frames[this.frames.length - 1].step}` });
  }

  /** The GAN Lab figure: D's surface, real and generated samples, G's manifold, G's gradient arrows. */
  view2d(options: { n?: number; resolution?: number } = {}): ReturnType<typeof chart> {
    if (this.isImage) throw new Error("view2d() is for 2-D data; for images use sample() and lab.imageGrid().");
    const n = options.n ?? 500;
    const res = options.resolution ?? 40;
    const [lo, hi] = this.data.range;
    const pad = (hi - lo) * 0.15;
    const box = { x: [lo - pad, hi + pad] as [number, number], y: [lo - pad, hi + pad] as [number, number] };
    let real!: Float32Array, fake!: Float32Array, prob!: Float32Array, manifold!: Float32Array, grad!: Float32Array;
    const k = 15;
    // Numbers only inside tidy (returning a chart from tidy would make tfjs walk every array).
    tf.tidy(() => {
      real = this.data.sample(Math.min(n, this.data.size), makeRng(this.stepCount).fork("view")).dataSync() as Float32Array;
      fake = this.toData(this.sampler.apply(this.fixedNoise.slice(0, Math.min(n, this.fixedNoise.shape[0])))).dataSync() as Float32Array;
      // D's belief on a grid.
      const grid = new Float32Array(2 * res * res);
      for (let r = 0; r < res; r++) {
        for (let c = 0; c < res; c++) {
          grid[2 * (r * res + c)] = box.x[0] + ((c + 0.5) / res) * (box.x[1] - box.x[0]);
          grid[2 * (r * res + c) + 1] = box.y[0] + ((r + 0.5) / res) * (box.y[1] - box.y[0]);
        }
      }
      prob = tf.sigmoid(this.D.apply(this.toModel(tf.tensor2d(grid, [res * res, 2])))).dataSync() as Float32Array;
      // G's manifold over the first two latent dimensions.
      const span = this.config.prior === "uniform" ? 1 : 2;
      const dim = this.config.latentDim;
      const lat = new Float32Array(k * k * dim);
      for (let r = 0; r < k; r++) {
        for (let c = 0; c < k; c++) {
          lat[(r * k + c) * dim] = -span + (2 * span * c) / (k - 1);
          if (dim > 1) lat[(r * k + c) * dim + 1] = -span + (2 * span * r) / (k - 1);
        }
      }
      manifold = this.toData(this.sampler.apply(tf.tensor2d(lat, [k * k, dim]))).dataSync() as Float32Array;
      // Where the generator's loss pushes the first 60 generated samples: −∂g/∂x.
      const m = Math.min(60, fake.length / 2);
      const pts = tf.tensor2d(fake.slice(0, 2 * m), [m, 2]);
      grad = tf.grad((x: tf.Tensor) => this.lossFn({ realLogits: tf.zeros([m, 1]), fakeLogits: this.D.apply(this.toModel(x)) }).g)(pts).dataSync() as Float32Array;
    });
    const z2d: number[][] = [];
    for (let r = 0; r < res; r++) z2d.push(Array.from(prob.subarray(r * res, (r + 1) * res)));
    const m = grad.length / 2;
    let maxLen = 1e-12;
    for (let i = 0; i < m; i++) maxLen = Math.max(maxLen, Math.hypot(grad[2 * i], grad[2 * i + 1]));
    const scale = (0.08 * (box.x[1] - box.x[0])) / maxLen;
    const arrows = {
      x: Float32Array.from({ length: m }, (_, i) => fake[2 * i]),
      y: Float32Array.from({ length: m }, (_, i) => fake[2 * i + 1]),
      u: Float32Array.from({ length: m }, (_, i) => -grad[2 * i] * scale),
      v: Float32Array.from({ length: m }, (_, i) => -grad[2 * i + 1] * scale),
    };
    const fig = gan2dFigure({
      real,
      fake,
      surface: { z: z2d, x0: box.x[0], x1: box.x[1], y0: box.y[0], y1: box.y[1] },
      manifold: { points: manifold, k },
      arrows,
      range: box,
      title: `${this.data.name}, step ${this.stepCount}`,
    });
    return chart(fig, `GAN Lab view of ${this.data.name} at step ${this.stepCount}`);
  }

  /**
   * Sample quality on 2-D mixtures (ring8, grid25): modes captured, share of high-quality
   * samples and reverse KL (PacGAN protocol), and GAN Lab's histogram KL/JS. Recorded as metrics.
   */
  evaluate(options: { n?: number; seed?: Seed } = {}): ModeCoverage & { kl: number; js: number } {
    if (this.isImage) throw new Error("evaluate() on a GAN measures 2-D mode coverage; for images use lab.evaluate(model, data).");
    const n = options.n ?? 2500;
    const x = this.sample({ n, seed: options.seed ?? 12345 });
    const fake = x.dataSync();
    x.dispose();
    const realT = this.data.sample(Math.min(n, this.data.size), 777);
    const real = realT.dataSync();
    realT.dispose();
    const { kl, js } = gridDivergence(real, fake);
    const coverage = this.data.modes
      ? modeCoverage(fake, this.data.modes, this.data.modeStd as number)
      : { modesCaptured: NaN, modes: 0, highQuality: NaN, reverseKL: NaN, histogram: [], nearest: [], samples: n };
    if (this.data.modes) {
      this.recordMetric("modesCaptured", coverage.modesCaptured);
      this.recordMetric("highQuality", coverage.highQuality);
      this.recordMetric("reverseKL", coverage.reverseKL);
    }
    this.recordMetric("gridKL", kl);
    this.recordMetric("gridJS", js);
    return { ...coverage, kl, js };
  }

  override dispose(): void {
    tf.dispose([this.fixedNoise, ...(this.center ? [this.center, this.scale as tf.Tensor] : [])]);
    super.dispose();
  }

  override [mime](): MimeBundle {
    return super[mime]() as MimeBundle;
  }
}

function resolveLoss(loss: GanOptions["loss"]): { name: GanLossName | "custom"; fn: GanLoss } {
  if (typeof loss === "function") return { name: "custom", fn: loss };
  const name = loss ?? "nonSaturating";
  if (name === "custom") throw new Error('loss "custom" needs the function itself: lab.gan({ data, loss: myLoss }).');
  if (!(name in ganLosses)) {
    throw new Error(`Unknown GAN loss "${String(name)}". Built in: ${Object.keys(ganLosses).join(", ")}; or pass your own function.`);
  }
  return { name, fn: ganLosses[name] };
}

/** Builds a GAN for `data`: MLPs for 2-D points, a DCGAN for images. */
export function gan(options: GanOptions): Gan {
  if (!options || !(options.data instanceof Dataset)) {
    throw new Error("lab.gan() needs { data }: a dataset such as lab.data.ring8() or lab.data.mnist().");
  }
  const preset = options.preset ?? (options.data.kind === "images" ? "images" : "points");
  const { name, fn } = resolveLoss(options.loss);
  const config = resolveConfig("lab.gan()", DEFAULTS, GAN_PRESETS, { ...options, loss: name, preset });
  if (!["none", "gp", "r1"].includes(config.penalty)) throw new Error(`penalty must be "none", "gp" or "r1", got "${config.penalty}".`);
  if (!["normal", "uniform"].includes(config.prior)) throw new Error(`prior must be "normal" or "uniform", got "${config.prior}".`);
  if (!(config.ema >= 0 && config.ema < 1)) throw new Error(`ema must be in [0, 1), got ${config.ema}.`);
  return new Gan(config, options.data, fn);
}

registerFamily("gan", (config, data, extras) => {
  const c = config as unknown as GanConfig;
  if (c.loss === "custom" && typeof extras?.loss !== "function") {
    throw new Error("This GAN was trained with a custom loss; pass it again: lab.load(dir, { loss: myLoss }).");
  }
  return new Gan(c, data, c.loss === "custom" ? (extras?.loss as GanLoss) : ganLosses[c.loss as GanLossName]);
});
