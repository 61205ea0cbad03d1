/**
 * `lab.vae({ data })`: a variational autoencoder (Kingma & Welling 2014).
 *
 * The encoder maps x to q(z|x) = N(μ, σ²); a sample z = μ + σ·ε (the reparameterisation trick)
 * goes through the decoder to the parameters of p(x|z); training minimises the negative ELBO,
 * reported as its two parts, reconstruction and KL, in nats per example.
 *
 *   const vae = lab.vae({ data: lab.data.mnist(), latentDim: 2 });
 *   await vae.train({ epochs: 10 });
 *   vae.evaluate(lab.data.mnist({ split: "test" }))   // −ELBO and an IWAE bound, nats/image
 *   lab.latent.map(vae, test)                         // the latent space, coloured by label
 */
import * as tf from "@tensorflow/tfjs";
import { Dataset } from "../../data/dataset";
import * as nn from "../../nn";
import { Module } from "../../nn/module";
import { Rng, Seed, rng as makeRng } from "../../random/rng";
import { adam } from "../../train/adam";
import { registerFamily } from "../../train/checkpoint";
import { Losses } from "../../train/history";
import { BaseConfig, Model, resolveConfig } from "../../train/model";
import { imageGrid } from "../../views/images";
import { VaeObjective, bernoulliNll, gaussianNll, klPerDimension, negativeElbo } from "./losses";

export interface VaeConfig extends BaseConfig {
  /** Size of z: 2 to draw the latent space, 20+ for quality. */
  latentDim: number;
  /** "mlp" (784-512-256 by default) or "conv" (two stride-2 convolutions each way). */
  architecture: "mlp" | "conv";
  /** Hidden widths of the MLP encoder (the decoder mirrors them). */
  hidden: number[];
  /** Channels of the conv encoder's two layers (the decoder mirrors them). */
  channels: [number, number];
  /** p(x|z): Bernoulli (binary cross-entropy, for pixels in [0, 1]) or Gaussian (learned scale). */
  likelihood: "bernoulli" | "gaussian";
  /** Weight of the KL term (β-VAE; 1 = the plain VAE). */
  beta: number;
  /** Adam learning rate. */
  lr: number;
  /** "elbo" (built in) or "custom" for a function passed as `objective`. */
  objective: "elbo" | "custom";
}

const DEFAULTS: VaeConfig = {
  seed: 0,
  batchSize: 128,
  latentDim: 20,
  architecture: "mlp",
  hidden: [512, 256],
  channels: [32, 64],
  likelihood: "bernoulli",
  beta: 1,
  lr: 1e-3,
  objective: "elbo",
};

export const VAE_PRESETS: Record<string, Partial<VaeConfig>> = {
  tiny: { batchSize: 16, latentDim: 2, hidden: [32], channels: [4, 8] },
  /** The benchmark's MLP-VAE: 784-512-256, latent 20, mirror decoder, BCE + KL. */
  mlp: {},
  /** A 2-d latent space you can draw. */
  "2d": { latentDim: 2 },
  conv: { architecture: "conv" },
};

export interface VaeOptions extends Partial<Omit<VaeConfig, "objective">> {
  data: Dataset;
  preset?: string;
  /** Your own objective ({ x, mean, logvar, z, decoded, logScale, beta }) => { loss, reconstruction, kl }. */
  objective?: VaeObjective | "elbo";
}

export class Vae extends Model<VaeConfig> {
  readonly family = "vae";
  readonly encoder: Module;
  readonly decoder: Module;
  readonly objective: VaeObjective;
  /** log s of the Gaussian likelihood (null for Bernoulli). */
  readonly logScale: tf.Variable | null;
  private readonly opt: tf.Optimizer;
  private readonly noise: Rng;
  private readonly sampleShape: number[];

  constructor(config: VaeConfig, data: Dataset, objective: VaeObjective) {
    super(config, data);
    if (data.kind === "text") throw new Error("lab.vae() trains on images or points; for text use lab.transformer().");
    this.objective = objective;
    this.sampleShape = data.sampleShape;
    const init = this.rng.fork("init");
    const nets = config.architecture === "conv" ? this.convNets(init) : this.mlpNets(init);
    this.encoder = nets.encoder;
    this.decoder = nets.decoder;
    this.logScale = config.likelihood === "gaussian" ? tf.variable(tf.scalar(0), true) : null;
    this.opt = adam(config.lr);
    this.noise = this.rng.fork("noise");
  }

  private mlpNets(r: Rng): { encoder: Module; decoder: Module } {
    const d = this.sampleShape.reduce((a, b) => a * b, 1);
    const enc: Module[] = [nn.flatten("flat")];
    let inputs = d;
    this.config.hidden.forEach((units, i) => {
      enc.push(nn.dense(`fc${i}`, { inputs, units, activation: "relu", rng: r.fork("enc") }));
      inputs = units;
    });
    enc.push(nn.dense("q", { inputs, units: 2 * this.config.latentDim, rng: r.fork("enc") }));
    const dec: Module[] = [];
    inputs = this.config.latentDim;
    [...this.config.hidden].reverse().forEach((units, i) => {
      dec.push(nn.dense(`fc${i}`, { inputs, units, activation: "relu", rng: r.fork("dec") }));
      inputs = units;
    });
    dec.push(nn.dense("out", { inputs, units: d, rng: r.fork("dec") }));
    dec.push(nn.reshape("image", this.sampleShape));
    return { encoder: nn.sequential("encoder", enc), decoder: nn.sequential("decoder", dec) };
  }

  private convNets(r: Rng): { encoder: Module; decoder: Module } {
    if (this.data.kind !== "images") throw new Error('architecture "conv" needs images; use "mlp" for points.');
    const [h, w, c] = this.sampleShape;
    if (h % 4 !== 0 || w % 4 !== 0) throw new Error(`A conv VAE needs image sides divisible by 4, got ${h}×${w}. Resize the images.`);
    const [c1, c2] = this.config.channels;
    const enc = nn.sequential("encoder", [
      nn.conv2d("conv0", { inputs: c, filters: c1, kernel: 4, stride: 2, activation: "relu", rng: r }),
      nn.conv2d("conv1", { inputs: c1, filters: c2, kernel: 4, stride: 2, activation: "relu", rng: r }),
      nn.flatten("flat"),
      nn.dense("q", { inputs: (h / 4) * (w / 4) * c2, units: 2 * this.config.latentDim, rng: r }),
    ]);
    const dec = nn.sequential("decoder", [
      nn.dense("fc", { inputs: this.config.latentDim, units: (h / 4) * (w / 4) * c2, activation: "relu", rng: r }),
      nn.reshape("grid", [h / 4, w / 4, c2]),
      nn.conv2dTranspose("up0", { inputs: c2, filters: c1, kernel: 4, stride: 2, activation: "relu", rng: r }),
      nn.conv2dTranspose("out", { inputs: c1, filters: c, kernel: 4, stride: 2, rng: r }),
    ]);
    return { encoder: enc, decoder: dec };
  }

  networks(): Record<string, Module> {
    return { encoder: this.encoder, decoder: this.decoder };
  }

  protected override extraVariables(): Map<string, tf.Variable> {
    return new Map(this.logScale ? [["likelihood/logScale", this.logScale]] : []);
  }

  protected optimizers(): Record<string, tf.Optimizer> {
    return { adam: this.opt };
  }

  protected streams(): Record<string, Rng> {
    return { noise: this.noise };
  }

  private checkImages(x: tf.Tensor, what: string): void {
    if (x.shape.slice(1).join() !== this.sampleShape.join()) {
      throw new Error(`${what} expects samples shaped [n, ${this.sampleShape}] (like ${this.data.name}), got [${x.shape}].`);
    }
  }

  /** q(z|x): mean and log-variance [n, latentDim] (the caller disposes both). */
  encode(x: tf.Tensor, training = false): { mean: tf.Tensor2D; logvar: tf.Tensor2D } {
    this.checkImages(x, "encode()");
    return tf.tidy(() => {
      const q = this.encoder.apply(x, { training });
      const [mean, logvar] = tf.split(q, 2, 1) as tf.Tensor2D[];
      return { mean, logvar };
    }) as { mean: tf.Tensor2D; logvar: tf.Tensor2D };
  }

  private decodeRaw(z: tf.Tensor, training = false): tf.Tensor {
    return this.decoder.apply(z, { training });
  }

  /** The decoder's mean image for z [n, latentDim], in the data's space (the caller disposes). */
  decode(z: tf.Tensor): tf.Tensor {
    const d = this.config.latentDim;
    if (z.rank !== 2 || z.shape[1] !== d) {
      throw new Error(`decode() expects z shaped [n, ${d}] for this VAE, got [${z.shape}]; it was built with latentDim ${d}.`);
    }
    return tf.tidy(() => {
      const out = this.decodeRaw(z);
      return this.config.likelihood === "bernoulli" ? tf.sigmoid(out) : out;
    });
  }

  /** x → q(z|x) → its mean → decoded: what the model keeps of x. */
  reconstruct(x: tf.Tensor): tf.Tensor {
    const { mean, logvar } = this.encode(x);
    const out = this.decode(mean);
    tf.dispose([mean, logvar]);
    return out;
  }

  /** n samples: z ~ N(0, I), decoded to mean images (the caller disposes). */
  sample(options: { n: number; seed?: Seed }): tf.Tensor {
    const { n, seed = 0 } = options;
    if (!Number.isInteger(n) || n <= 0) throw new Error(`sample({ n }) needs a positive integer n, got ${String(n)}.`);
    const z = makeRng(seed).fork("sample").normal([n, this.config.latentDim]);
    const out = this.decode(z);
    z.dispose();
    return out;
  }

  protected trainStep(what?: string): Losses {
    if (what !== undefined) throw new Error("vae.step() takes no argument.");
    const { x, labels } = this.nextBatch();
    labels?.dispose();
    const eps = this.noise.normal([this.config.batchSize, this.config.latentDim]);
    const vars = [...this.encoder.variables().values(), ...this.decoder.variables().values(), ...(this.logScale ? [this.logScale] : [])];
    try {
      const { loss, terms } = this.update(this.opt, () => {
        const { mean, logvar } = this.encode(x, true);
        const z = tf.add(mean, tf.mul(tf.exp(tf.mul(0.5, logvar)), eps));
        const decoded = this.decodeRaw(z, true);
        const out = this.objective({ x, mean, logvar, z, decoded, logScale: this.logScale, beta: this.config.beta });
        return { loss: out.loss, terms: { reconstruction: out.reconstruction, kl: out.kl } };
      }, vars, "loss");
      return { loss, ...terms };
    } finally {
      tf.dispose([x, eps]);
    }
  }

  /** −log p(x|z) per example for decoder output `decoded`. */
  private nll(x: tf.Tensor, decoded: tf.Tensor): tf.Tensor1D {
    return this.logScale ? gaussianNll({ x, mean: decoded, logScale: this.logScale }) : bernoulliNll({ x, logits: decoded });
  }

  /**
   * How good is it, on held-out data: the negative ELBO (reconstruction + KL) and the
   * importance-weighted bound with k samples (Burda et al. 2016), both in nats per example;
   * log p(x) ≥ IWAE bound ≥ ELBO, so `iwae` ≤ `negElbo` as a negative log-likelihood. Also the
   * KL of each latent dimension (a dimension is active when its KL exceeds 0.01 nats).
   */
  evaluate(data: Dataset, options: { k?: number; batchSize?: number; seed?: Seed; n?: number } = {}): VaeEvaluation {
    if (data.sampleShape.join() !== this.sampleShape.join()) {
      throw new Error(`evaluate() expects a dataset of samples shaped [${this.sampleShape}] (like ${this.data.name}); ${data.name} has [${data.sampleShape}].`);
    }
    const k = options.k ?? 50;
    const n = Math.min(options.n ?? data.size, data.size);
    const batch = Math.max(1, Math.floor((options.batchSize ?? 2000) / k));
    const r = makeRng(options.seed ?? 0).fork("evaluate");
    let rec = 0, kl = 0, iwae = 0;
    const klDims = new Float64Array(this.config.latentDim);
    const d = this.config.latentDim;
    for (let start = 0; start < n; start += batch) {
      const size = Math.min(batch, n - start);
      const { x, labels } = data.take(Int32Array.from({ length: size }, (_, i) => start + i));
      labels?.dispose();
      const eps = r.normal([size * k, d]);
      const [recB, klB, iwaeB, klDimB] = tf.tidy(() => {
        const { mean, logvar } = this.encode(x);
        // ELBO with one sample per example (the first of the k).
        const std = tf.exp(tf.mul(0.5, logvar));
        const klPer = klPerDimension({ mean, logvar });
        // k samples per example: [size·k, d], example-major.
        const rep = (t: tf.Tensor) => tf.reshape(tf.tile(tf.expandDims(t, 1), [1, k, 1]), [size * k, d]);
        const z = tf.add(rep(mean), tf.mul(rep(std), eps));
        const xRep = tf.reshape(tf.tile(tf.expandDims(x, 1), [1, k, ...x.shape.slice(1).map(() => 1)]), [size * k, ...x.shape.slice(1)]);
        const logPxz = tf.neg(this.nll(xRep, this.decodeRaw(z))); // [size·k]
        const logPz = tf.mul(-0.5, tf.sum(tf.add(tf.square(z), Math.log(2 * Math.PI)), 1));
        const logQ = tf.mul(-0.5, tf.sum(tf.add(tf.add(tf.square(eps), Math.log(2 * Math.PI)), rep(logvar)), 1));
        const logW = tf.reshape(tf.sub(tf.add(logPxz, logPz), logQ), [size, k]);
        const bound = tf.sub(tf.logSumExp(logW, 1), Math.log(k)); // log p(x) ≥ this
        const recFirst = tf.neg(tf.reshape(logPxz, [size, k]).slice([0, 0], [size, 1]));
        return [tf.sum(recFirst), tf.sum(klPer), tf.neg(tf.sum(bound)), tf.sum(klPer, 0)];
      });
      rec += recB.dataSync()[0];
      kl += klB.dataSync()[0];
      iwae += iwaeB.dataSync()[0];
      const kd = klDimB.dataSync();
      for (let j = 0; j < d; j++) klDims[j] += kd[j];
      tf.dispose([x, eps, recB, klB, iwaeB, klDimB]);
    }
    const perDim = Array.from(klDims, (v) => v / n);
    const result: VaeEvaluation = {
      negElbo: (rec + kl) / n,
      reconstruction: rec / n,
      kl: kl / n,
      iwae: iwae / n,
      k,
      n,
      klPerDimension: perDim,
      activeDimensions: perDim.filter((v) => v > 0.01).length,
    };
    this.recordMetric("test −ELBO", result.negElbo);
    this.recordMetric(`test IWAE (k=${k})`, result.iwae);
    return result;
  }

  preview(): unknown {
    if (this.data.kind !== "images") return null;
    const x = this.sample({ n: 36, seed: 0 });
    const grid = imageGrid(x, { cols: 6, title: `samples, step ${this.stepCount}` });
    x.dispose();
    return grid;
  }

  override dispose(): void {
    this.logScale?.dispose();
    super.dispose();
  }
}

export interface VaeEvaluation {
  /** Negative ELBO, nats per example (one z sample per example). */
  negElbo: number;
  reconstruction: number;
  kl: number;
  /** Negative importance-weighted bound, nats per example: a tighter estimate of −log p(x). */
  iwae: number;
  k: number;
  n: number;
  klPerDimension: number[];
  activeDimensions: number;
}

/** Builds a VAE for `data`: an MLP by default, or convolutions with `architecture: "conv"`. */
export function vae(options: VaeOptions): Vae {
  if (!options || !(options.data instanceof Dataset)) {
    throw new Error("lab.vae() needs { data }: a dataset such as lab.data.mnist().");
  }
  const custom = typeof options.objective === "function" ? options.objective : null;
  const config = resolveConfig("lab.vae()", DEFAULTS, VAE_PRESETS, { ...options, objective: custom ? "custom" : "elbo" });
  if (!["bernoulli", "gaussian"].includes(config.likelihood)) throw new Error(`likelihood must be "bernoulli" or "gaussian", got "${config.likelihood}".`);
  if (config.likelihood === "bernoulli" && (options.data.range[0] < 0 || options.data.range[1] > 1)) {
    throw new Error(`A Bernoulli likelihood needs data in [0, 1]; ${options.data.name} spans [${options.data.range}]. Use likelihood: "gaussian".`);
  }
  if (!Number.isInteger(config.latentDim) || config.latentDim < 1) throw new Error(`latentDim must be a positive integer, got ${config.latentDim}.`);
  if (!(config.beta >= 0)) throw new Error(`beta must be ≥ 0, got ${config.beta}.`);
  return new Vae(config, options.data, custom ?? negativeElbo);
}

registerFamily("vae", (config, data, extras) => {
  const c = config as unknown as VaeConfig;
  if (c.objective === "custom" && typeof extras?.loss !== "function") {
    throw new Error("This VAE was trained with a custom objective; pass it again: lab.load(dir, { loss: myObjective }).");
  }
  return new Vae(c, data, c.objective === "custom" ? (extras.loss as VaeObjective) : negativeElbo);
});
