/**
 * `lab.diffusion({ data })`: a denoising diffusion model (Ho et al. 2020) — or, with
 * `process: "flow"`, a flow-matching model (Lipman et al. 2023) — wired from separate parts:
 * a schedule (plain numbers), an objective (a pure loss), a denoiser (a network) and, at
 * sampling time, any sampler. Samples come from an exponential moving average of the weights.
 *
 *   const model = lab.diffusion({ data: lab.data.ring8(), schedule: "cosine", objective: "eps" });
 *   await model.train({ steps: 3000 });
 *   model.sample({ n: 500, sampler: lab.samplers.ddim({ steps: 20 }) })
 *   const path = model.sample({ n: 200, sampler: lab.samplers.ddpm({ steps: 100 }), trace: 10 });
 */
import * as tf from "@tensorflow/tfjs";
import { Dataset } from "../../data/dataset";
import { Parameters } from "../../nn/module";
import { Rng, Seed, rng as makeRng } from "../../random/rng";
import { adam } from "../../train/adam";
import { registerFamily } from "../../train/checkpoint";
import { Losses } from "../../train/history";
import { BaseConfig, Model, resolveConfig } from "../../train/model";
import { Chart, chart, palette } from "../../views/figure";
import { imageGrid } from "../../views/images";
import { Denoiser, mlpDenoiser, unet } from "./denoisers";
import { Objective, ObjectiveInputs, addNoise, interpolateFlow, objectives, toX0Eps } from "./process";
import { Schedule, ScheduleName, schedules } from "./schedules";
import { SamplerSpec, ddim, euler, sampleLoop } from "./samplers";
import { Trajectory } from "./trajectory";

export interface DiffusionConfig extends BaseConfig {
  /** "diffusion" (a noise schedule, DDPM/DDIM sampling) or "flow" (flow matching, Euler sampling). */
  process: "diffusion" | "flow";
  schedule: ScheduleName;
  /** Steps T of the schedule. */
  timesteps: number;
  /** What the denoiser predicts: "eps", "x0", "v" ("flow" for flow matching), or "custom". */
  objective: Objective | "custom";
  /** "mlp" for points, "unet" for images. */
  denoiser: "mlp" | "unet";
  /** MLP denoiser width and residual blocks. */
  hidden: number;
  blocks: number;
  /** U-Net widths at full and half resolution, and residual blocks per resolution. */
  widths: [number, number];
  unetBlocks: number;
  lr: number;
  /** Decay of the weights' moving average used for sampling (with warm-up); 0 = off. */
  ema: number;
}

const DEFAULTS: DiffusionConfig = {
  seed: 0,
  batchSize: 256,
  process: "diffusion",
  schedule: "cosine",
  timesteps: 1000,
  objective: "eps",
  denoiser: "mlp",
  hidden: 128,
  blocks: 3,
  widths: [32, 64],
  unetBlocks: 1,
  lr: 1e-3,
  ema: 0.999,
};

export const DIFFUSION_PRESETS: Record<string, Partial<DiffusionConfig>> = {
  tiny: { batchSize: 32, hidden: 16, blocks: 1, widths: [8, 16], timesteps: 100 },
  points: {},
  images: { denoiser: "unet", batchSize: 64, lr: 5e-4, ema: 0.999 },
  /**
   * The benchmark's DDPM workload: widths 32/64, two blocks per resolution, batch 128 (on wasm
   * ≈ 12 MB of heap per 28×28 image: 1.5 GB of the 4 GB heap).
   */
  bench: { denoiser: "unet", batchSize: 128, widths: [32, 64], unetBlocks: 2, schedule: "linear" },
  flow: { process: "flow", objective: "flow" },
};

export interface DiffusionOptions extends Partial<Omit<DiffusionConfig, "objective">> {
  data: Dataset;
  preset?: string;
  /** A built-in objective by name, or your own ({ prediction, x0, noise, alphaBar }) => loss, predicting ε. */
  objective?: Objective | ((inputs: ObjectiveInputs) => tf.Scalar);
}

export interface SampleOptions {
  n: number;
  /** Default: DDIM η = 0 with `steps` (50) for diffusion, Euler for flow. */
  sampler?: SamplerSpec;
  /** Shorthand for the default sampler's number of steps. */
  steps?: number;
  seed?: Seed;
  /** Use the raw weights instead of their moving average. */
  raw?: boolean;
}

export class Diffusion extends Model<DiffusionConfig> {
  readonly family = "diffusion";
  readonly denoiser: Denoiser;
  /** The moving average of the denoiser's weights, used for sampling. */
  readonly emaDenoiser: Denoiser | null;
  readonly schedule: Schedule;
  readonly loss: (inputs: ObjectiveInputs) => tf.Scalar;
  /** The target the denoiser predicts (a custom loss is assumed to predict ε). */
  readonly predicts: Objective;
  private readonly opt: tf.Optimizer;
  private readonly noiseRng: Rng;
  private readonly isImage: boolean;
  private readonly center: tf.Tensor | null;
  private readonly scale: tf.Tensor | null;
  /** Bound on |x̂₀| in model space while sampling: 1 for images, the data's extent for points. */
  private readonly clipX0: number;

  constructor(config: DiffusionConfig, data: Dataset, loss: ((inputs: ObjectiveInputs) => tf.Scalar) | null) {
    super(config, data);
    if (data.kind === "text") throw new Error("lab.diffusion() trains on points or images; for text use lab.transformer().");
    this.isImage = data.kind === "images";
    this.schedule = schedules[config.schedule]({ steps: config.timesteps });
    this.predicts = config.process === "flow" ? "flow" : config.objective === "custom" ? "eps" : (config.objective as Objective);
    this.loss = loss ?? objectives[this.predicts];
    const init = this.rng.fork("init");
    const make = (r: Rng): Denoiser =>
      config.denoiser === "unet"
        ? unet({ channels: data.sampleShape[2], widths: config.widths, blocks: config.unetBlocks, rng: r })
        : mlpDenoiser({ dim: data.sampleShape.reduce((a, b) => a * b, 1), hidden: config.hidden, blocks: config.blocks, rng: r });
    if (config.denoiser === "unet" && !this.isImage) throw new Error('denoiser "unet" needs images; use "mlp" for points.');
    this.denoiser = make(init.fork("denoiser"));
    this.emaDenoiser = config.ema > 0 ? make(init.fork("denoiser")) : null;
    this.opt = adam(config.lr);
    this.noiseRng = this.rng.fork("noise");
    if (this.isImage) {
      this.center = null;
      this.scale = null;
      this.clipX0 = 1;
    } else {
      const { mean, variance } = tf.moments(data.x, 0);
      this.center = tf.keep(mean);
      this.scale = tf.keep(tf.sqrt(tf.add(variance, 1e-8)));
      variance.dispose();
      this.clipX0 = tf.tidy(() => tf.max(tf.abs(this.toModel(data.x))).dataSync()[0]) * 1.1;
    }
  }

  networks(): Record<string, Parameters> {
    return { denoiser: this.denoiser };
  }

  protected override extraVariables(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    if (this.emaDenoiser) for (const [k, v] of [...this.emaDenoiser.variables(), ...this.emaDenoiser.state()]) out.set(`ema/${k}`, v);
    return out;
  }

  protected optimizers(): Record<string, tf.Optimizer> {
    return { adam: this.opt };
  }

  protected streams(): Record<string, Rng> {
    return { noise: this.noiseRng };
  }

  /** Data space → model space: images to [−1, 1], points standardised. */
  toModel(x: tf.Tensor): tf.Tensor {
    return this.isImage ? tf.sub(tf.mul(x, 2), 1) : tf.div(tf.sub(x, this.center as tf.Tensor), this.scale as tf.Tensor);
  }

  /** Model space → data space. */
  toData(x: tf.Tensor): tf.Tensor {
    return this.isImage ? tf.clipByValue(tf.div(tf.add(x, 1), 2), 0, 1) : tf.add(tf.mul(x, this.scale as tf.Tensor), this.center as tf.Tensor);
  }

  protected trainStep(what?: string): Losses {
    if (what !== undefined) throw new Error("diffusion.step() takes no argument.");
    const B = this.config.batchSize;
    const { x, labels } = this.nextBatch();
    labels?.dispose();
    const flow = this.config.process === "flow";
    // Per-example time: an integer step 1…T (diffusion) or a uniform t (flow).
    const ts = Float32Array.from({ length: B }, () => (flow ? this.noiseRng.next() : this.noiseRng.int(this.config.timesteps) + 1));
    const level = flow ? ts : ts.map((t) => this.schedule.alphaBar[t - 1]);
    const tIn = tf.tensor1d(flow ? ts : ts.map((t) => t / this.config.timesteps));
    const levelT = tf.tensor1d(level);
    const noise = this.noiseRng.normal(x.shape);
    const x0 = tf.tidy(() => this.toModel(x));
    const xt = flow ? interpolateFlow(x0, levelT, noise) : addNoise(x0, levelT, noise);
    try {
      const { loss } = this.update(this.opt, () => this.loss({ prediction: this.denoiser.apply(xt, tIn, { training: true }), x0, noise, alphaBar: levelT }), [...this.denoiser.variables().values()], "loss");
      this.updateEma();
      return { loss };
    } finally {
      tf.dispose([x, x0, xt, noise, tIn, levelT]);
    }
  }

  private updateEma(): void {
    if (!this.emaDenoiser) return;
    const t = this.opt.iterations;
    const decay = Math.min(this.config.ema, (1 + t) / (10 + t));
    const src = [...this.denoiser.variables().values()];
    const dst = [...this.emaDenoiser.variables().values()];
    tf.tidy(() => dst.forEach((v, i) => v.assign(tf.add(tf.mul(v, decay), tf.mul(src[i], 1 - decay)))));
  }

  private resolveSampler(o: SampleOptions): SamplerSpec {
    const s = o.sampler ?? (this.config.process === "flow" ? euler({ steps: o.steps ?? 50 }) : ddim({ steps: o.steps ?? 50 }));
    if (this.config.process === "flow" && s.kind !== "euler") throw new Error(`A flow-matching model samples with lab.samplers.euler(), not ${s.kind}.`);
    if (this.config.process === "diffusion" && s.kind === "euler") throw new Error("A diffusion model samples with lab.samplers.ddpm() or ddim(); euler() is for process: \"flow\".");
    return s;
  }

  /** Runs a sampler, calling `record` with (step index, xₜ, x̂₀) in model space after each step. */
  private run(o: SampleOptions, record?: (i: number, total: number, xt: tf.Tensor, x0: tf.Tensor) => void): tf.Tensor {
    const { n, seed = 0 } = o;
    if (!Number.isInteger(n) || n <= 0) throw new Error(`sample({ n }) needs a positive integer n, got ${String(n)}.`);
    const sampler = this.resolveSampler(o);
    const net = o.raw || !this.emaDenoiser ? this.denoiser : this.emaDenoiser;
    const r = makeRng(seed).fork("sample");
    const x = sampleLoop({
      sampler,
      alphaBar: this.schedule.alphaBar,
      predicts: this.predicts,
      denoise: (xt, t) => net.apply(xt, t),
      start: r.normal([n, ...this.data.sampleShape]),
      noise: (shape) => r.normal(shape),
      record,
      clipX0: this.clipX0,
    });
    const out = tf.tidy(() => this.toData(x));
    x.dispose();
    return out;
  }

  /** n samples in data space (images in [0, 1]); the caller disposes. */
  sample(options: SampleOptions): tf.Tensor {
    return this.run(options);
  }

  /**
   * Samples with their trajectory: xₜ and the predicted x̂₀ after `frames` evenly spaced steps
   * (and the last), in data space.
   */
  trace(options: SampleOptions & { frames?: number }): Trajectory {
    const frames = options.frames ?? 10;
    const steps: number[] = [];
    const xt: Float32Array[] = [];
    const x0: Float32Array[] = [];
    let shape: number[] = [];
    const samples = this.run(options, (i, total, x, x0hat) => {
      const keep = i === total - 1 || i % Math.max(1, Math.round(total / frames)) === 0;
      if (!keep) return;
      steps.push(i + 1);
      const d = tf.tidy(() => [this.toData(x), this.toData(x0hat)]);
      xt.push(d[0].dataSync() as Float32Array);
      x0.push(d[1].dataSync() as Float32Array);
      shape = d[0].shape;
      tf.dispose(d);
    });
    return new Trajectory(samples, steps, xt, x0, shape, this.isImage, this.resolveSampler(options).name);
  }

  /** The direction the model moves points at a grid of positions, at noise level t ∈ (0, 1]. */
  vectorField(options: { t?: number; resolution?: number } = {}): Chart {
    if (this.isImage) throw new Error("vectorField() is for 2-D data.");
    const t = options.t ?? 0.1;
    const res = options.resolution ?? 20;
    const [lo, hi] = this.data.range;
    const pad = (hi - lo) * 0.1;
    const grid = new Float32Array(2 * res * res);
    for (let r = 0; r < res; r++) for (let c = 0; c < res; c++) {
      grid[2 * (r * res + c)] = lo - pad + ((c + 0.5) / res) * (hi - lo + 2 * pad);
      grid[2 * (r * res + c) + 1] = lo - pad + ((r + 0.5) / res) * (hi - lo + 2 * pad);
    }
    const flow = this.config.process === "flow";
    const step = Math.max(1, Math.round(t * this.config.timesteps));
    const dir = tf.tidy(() => {
      const x = this.toModel(tf.tensor2d(grid, [res * res, 2]));
      const n = res * res;
      const net = this.emaDenoiser ?? this.denoiser;
      const level = flow ? t : this.schedule.alphaBar[step - 1];
      const pred = net.apply(x, tf.fill([n], flow ? t : step / this.config.timesteps));
      const { x0 } = toX0Eps(this.predicts, pred, x, tf.fill([n], level));
      // Towards the predicted clean point, in data space.
      return tf.sub(this.toData(x0), this.toData(x)).dataSync();
    });
    let maxLen = 1e-12;
    for (let i = 0; i < res * res; i++) maxLen = Math.max(maxLen, Math.hypot(dir[2 * i], dir[2 * i + 1]));
    const s = (0.9 * (hi - lo + 2 * pad)) / res / maxLen;
    const realT = this.data.sample(Math.min(500, this.data.size), 3);
    const real = realT.dataSync();
    realT.dispose();
    return chart(
      {
        title: `where the model moves points at t = ${t} (${flow ? "flow" : `step ${step}`})`,
        traces: [
          { type: "scatter", name: "data", x: Float32Array.from({ length: real.length / 2 }, (_, i) => real[2 * i]), y: Float32Array.from({ length: real.length / 2 }, (_, i) => real[2 * i + 1]), color: palette[2], size: 3, opacity: 0.4 },
          { type: "arrows", name: "x̂₀ − x", x: Float32Array.from({ length: res * res }, (_, i) => grid[2 * i]), y: Float32Array.from({ length: res * res }, (_, i) => grid[2 * i + 1]), u: Float32Array.from({ length: res * res }, (_, i) => dir[2 * i] * s), v: Float32Array.from({ length: res * res }, (_, i) => dir[2 * i + 1] * s) },
        ],
        square: true,
        width: 440,
        height: 440,
      },
      `vector field at t = ${t}`,
    );
  }

  preview(): unknown {
    if (this.isImage) {
      const x = this.sample({ n: 36, steps: 25, seed: 0 });
      const g = imageGrid(x, { cols: 6, title: `DDIM samples (25 steps), step ${this.stepCount}` });
      x.dispose();
      return g;
    }
    const x = this.sample({ n: 500, steps: 20, seed: 0 });
    const fake = x.dataSync();
    x.dispose();
    const realT = this.data.sample(Math.min(500, this.data.size), 1);
    const real = realT.dataSync();
    realT.dispose();
    const half = (a: ArrayLike<number>, k: number) => Float32Array.from({ length: a.length / 2 }, (_, i) => a[2 * i + k]);
    return chart({
      title: `${this.data.name}, step ${this.stepCount}`,
      traces: [
        { type: "scatter", name: "data", x: half(real, 0), y: half(real, 1), color: palette[2], size: 3, opacity: 0.5 },
        { type: "scatter", name: "samples (DDIM 20)", x: half(fake, 0), y: half(fake, 1), color: palette[4], size: 3 },
      ],
      square: true,
      width: 420,
      height: 420,
    });
  }

  override dispose(): void {
    tf.dispose([...(this.center ? [this.center, this.scale as tf.Tensor] : [])]);
    this.emaDenoiser?.dispose();
    super.dispose();
  }
}

export function diffusion(options: DiffusionOptions): Diffusion {
  if (!options || !(options.data instanceof Dataset)) {
    throw new Error("lab.diffusion() needs { data }: a dataset such as lab.data.ring8() or lab.data.mnist().");
  }
  const custom = typeof options.objective === "function" ? options.objective : null;
  const preset = options.preset ?? (options.data.kind === "images" ? "images" : options.process === "flow" ? "flow" : "points");
  const config = resolveConfig("lab.diffusion()", DEFAULTS, DIFFUSION_PRESETS, { ...options, objective: custom ? "custom" : (options.objective as Objective | undefined), preset });
  if (!(config.schedule in schedules)) throw new Error(`Unknown schedule "${config.schedule}". Schedules: ${Object.keys(schedules).join(", ")}.`);
  if (!["eps", "x0", "v", "flow", "custom"].includes(config.objective)) throw new Error(`Unknown objective "${config.objective}". Objectives: eps, x0, v (diffusion), flow, or a function.`);
  if (config.process === "flow" && config.objective !== "flow" && config.objective !== "custom") config.objective = "flow";
  if (config.process === "diffusion" && config.objective === "flow") throw new Error('objective "flow" needs process: "flow".');
  return new Diffusion(config, options.data, custom);
}

registerFamily("diffusion", (config, data, extras) => {
  const c = config as unknown as DiffusionConfig;
  if (c.objective === "custom" && typeof extras?.loss !== "function") {
    throw new Error("This model was trained with a custom objective; pass it again: lab.load(dir, { loss: myObjective }).");
  }
  return new Diffusion(c, data, c.objective === "custom" ? (extras.loss as (i: ObjectiveInputs) => tf.Scalar) : null);
});
