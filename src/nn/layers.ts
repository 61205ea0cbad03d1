/**
 * Layers, each a small Module with seeded initialisation.
 *
 * Shapes are channels-last: dense takes [B, in]; conv layers take [B, H, W, C]; sequence
 * layers take [B, T, D]. Every initialiser draws from the `rng` it is given, so the same seed
 * builds the same network on every backend.
 */
import * as tf from "@tensorflow/tfjs";
import { LAYER_NORM, LAYER_NORM_GRAD } from "../backend/wasm-kernels/layernorm";
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD } from "../backend/wasm-kernels/batchnorm";
import { Rng } from "../random/rng";
import { Leaf, Module } from "./module";
import { fusedConv2d, fusedConv2dAdd, fusedMatMul } from "./fused";

export type Activation = "linear" | "relu" | "leakyRelu" | "tanh" | "sigmoid" | "silu" | "gelu";

const ACTIVATIONS: readonly Activation[] = ["linear", "relu", "leakyRelu", "tanh", "sigmoid", "silu", "gelu"];

/** Applies a named activation. leakyRelu uses slope 0.2 (the DCGAN value). */
export function activate(x: tf.Tensor, activation: Activation): tf.Tensor {
  switch (activation) {
    case "linear":
      return x;
    case "relu":
      return tf.relu(x);
    case "leakyRelu":
      return tf.leakyRelu(x, 0.2);
    case "tanh":
      return tf.tanh(x);
    case "sigmoid":
      return tf.sigmoid(x);
    case "silu":
      return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
    case "gelu":
      // x·σ(1.702x), the sigmoid approximation of GELU (Hendrycks & Gimpel 2016, §2): one
      // sigmoid instead of a cube and a tanh, and cheaper to differentiate.
      return tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(1.702, x))));
    default:
      throw new Error(`Unknown activation "${String(activation)}". Use one of: ${ACTIVATIONS.join(", ")}.`);
  }
}

function checkActivation(a: Activation | undefined): Activation {
  const act = a ?? "linear";
  if (!ACTIVATIONS.includes(act)) {
    throw new Error(`Unknown activation "${String(a)}". Use one of: ${ACTIVATIONS.join(", ")}.`);
  }
  return act;
}

function positiveInt(value: unknown, what: string): number {
  if (!Number.isInteger(value) || (value as number) <= 0) {
    throw new Error(`${what} must be a positive integer, got ${String(value)}.`);
  }
  return value as number;
}

/** Glorot/Xavier uniform: U(−l, l), l = sqrt(6 / (fanIn + fanOut)). */
function glorot(rng: Rng, shape: number[], fanIn: number, fanOut: number, scale = 1): tf.Variable {
  const limit = scale * Math.sqrt(6 / (fanIn + fanOut));
  const values = rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1)), -limit, limit);
  return variableOf(tf.tensor(values, shape));
}

/** A variable holding `init`'s values; `init` is disposed (tf.variable keeps its own copy). */
function variableOf(init: tf.Tensor, trainable = true): tf.Variable {
  const v = tf.variable(init, trainable);
  init.dispose();
  return v;
}

function zeros(shape: number[], trainable = true): tf.Variable {
  return variableOf(tf.zeros(shape), trainable);
}

function ones(shape: number[], trainable = true): tf.Variable {
  return variableOf(tf.ones(shape), trainable);
}

export interface DenseOptions {
  /** Input features. */
  inputs: number;
  /** Output features. */
  units: number;
  /** Applied after the bias; default "linear". */
  activation?: Activation;
  /** Add a bias; default true. */
  bias?: boolean;
  /** Multiplies the Glorot-uniform initial weights; default 1. A small value starts a classifier head near uniform. */
  initScale?: number;
  rng: Rng;
}

/** y = activation(x · W + b), x [B, inputs] → [B, units] (or [..., inputs] → [..., units]). */
export function dense(name: string, o: DenseOptions): Module {
  const inputs = positiveInt(o.inputs, `dense("${name}").inputs`);
  const units = positiveInt(o.units, `dense("${name}").units`);
  const act = checkActivation(o.activation);
  const initScale = o.initScale ?? 1;
  if (!(initScale > 0)) throw new Error(`dense("${name}").initScale must be a positive number, got ${initScale}.`);
  const kernel = glorot(o.rng.fork(name), [inputs, units], inputs, units, initScale);
  const bias = o.bias === false ? null : zeros([units]);
  const vars: Record<string, tf.Variable> = bias ? { kernel, bias } : { kernel };
  return new Leaf(name, vars, (x) =>
    tf.tidy(() => {
      if (x.shape[x.shape.length - 1] !== inputs) {
        throw new Error(`dense("${name}") expects inputs with ${inputs} features in the last axis, got shape [${x.shape}].`);
      }
      const flat = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, inputs]) as tf.Tensor2D;
      // Bias and ReLU fuse into the product; other activations follow it.
      const fusedAct = act === "relu" ? "relu" : "linear";
      let y: tf.Tensor = fusedMatMul(flat, kernel as tf.Tensor2D, bias, fusedAct);
      if (act !== fusedAct) y = activate(y, act);
      return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), units]);
    }),
  );
}

export type Padding = "same" | "valid";

export interface ConvOptions {
  /** Input channels. */
  inputs: number;
  /** Output channels. */
  filters: number;
  /** Square kernel size. */
  kernel: number;
  /** Stride; default 1. */
  stride?: number;
  /** Default "same". */
  padding?: Padding;
  activation?: Activation;
  bias?: boolean;
  rng: Rng;
}

function checkConv(name: string, kind: string, o: ConvOptions) {
  return {
    inputs: positiveInt(o.inputs, `${kind}("${name}").inputs`),
    filters: positiveInt(o.filters, `${kind}("${name}").filters`),
    kernel: positiveInt(o.kernel, `${kind}("${name}").kernel`),
    stride: positiveInt(o.stride ?? 1, `${kind}("${name}").stride`),
    padding: o.padding ?? "same",
    act: checkActivation(o.activation),
  };
}

function expectImage(x: tf.Tensor, channels: number, where: string): void {
  if (x.rank !== 4 || x.shape[3] !== channels) {
    throw new Error(`${where} expects images shaped [batch, height, width, ${channels}], got [${x.shape}].`);
  }
}

/** What `applyWith` adds to a conv's output before its activation. */
export interface ConvAddends {
  /** [batch, filters]: added to every pixel of its image (a U-Net's time embedding). */
  imageBias?: tf.Tensor;
  /** Shaped like the output (a residual). */
  residual?: tf.Tensor;
}

/** A conv layer that can also add to its output before its activation. */
export interface ConvModule extends Module {
  /**
   * activation(conv(x) + bias + imageBias + residual): on wasm one kernel for a 3×3 stride-1
   * conv with inputs in fours and filters in eights (each add otherwise a pass of its own).
   */
  applyWith(x: tf.Tensor, add: ConvAddends): tf.Tensor;
}

/** 2-D convolution, [B, H, W, inputs] → [B, H', W', filters]. */
export function conv2d(name: string, o: ConvOptions): ConvModule {
  const c = checkConv(name, "conv2d", o);
  const fanIn = c.kernel * c.kernel * c.inputs;
  const fanOut = c.kernel * c.kernel * c.filters;
  const kernel = glorot(o.rng.fork(name), [c.kernel, c.kernel, c.inputs, c.filters], fanIn, fanOut);
  const bias = o.bias === false ? null : zeros([c.filters]);
  const vars: Record<string, tf.Variable> = bias ? { kernel, bias } : { kernel };
  const leaf = new Leaf(name, vars, (x) =>
    tf.tidy(() => {
      expectImage(x, c.inputs, `conv2d("${name}")`);
      const fusedAct = c.act === "relu" ? "relu" : "linear";
      let y: tf.Tensor = fusedConv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, bias, c.stride, c.padding, fusedAct);
      if (c.act !== fusedAct) y = activate(y, c.act);
      return y;
    }),
  );
  const applyWith = (x: tf.Tensor, add: ConvAddends): tf.Tensor =>
    tf.tidy(() => {
      expectImage(x, c.inputs, `conv2d("${name}").applyWith`);
      const { imageBias, residual } = add;
      if (imageBias && (imageBias.rank !== 2 || imageBias.shape[0] !== x.shape[0] || imageBias.shape[1] !== c.filters)) {
        throw new Error(`conv2d("${name}").applyWith: imageBias must be [${x.shape[0]}, ${c.filters}] (one bias per image and filter), got [${imageBias.shape}].`);
      }
      const side = (n: number) => (c.padding === "same" ? Math.ceil(n / c.stride) : Math.floor((n - c.kernel) / c.stride) + 1);
      const out = [x.shape[0], side(x.shape[1] as number), side(x.shape[2] as number), c.filters];
      if (residual && residual.shape.join() !== out.join()) {
        throw new Error(`conv2d("${name}").applyWith: residual must be shaped like the output [${out}], got [${residual.shape}].`);
      }
      const y = fusedConv2dAdd(x as tf.Tensor4D, kernel as tf.Tensor4D, bias, (imageBias as tf.Tensor2D) ?? null, residual ?? null, c.stride, c.padding);
      return activate(y, c.act);
    });
  return Object.assign(leaf, { applyWith });
}

/**
 * Transposed 2-D convolution (the upsampling layer of DCGAN generators),
 * [B, H, W, inputs] → [B, H·stride, W·stride, filters] with "same" padding,
 * or [B, (H−1)·stride + kernel, …] with "valid".
 */
export function conv2dTranspose(name: string, o: ConvOptions): Module {
  const c = checkConv(name, "conv2dTranspose", o);
  const fanIn = c.kernel * c.kernel * c.inputs;
  const fanOut = c.kernel * c.kernel * c.filters;
  // tfjs stores a transposed conv's filter as [k, k, outChannels, inChannels].
  const kernel = glorot(o.rng.fork(name), [c.kernel, c.kernel, c.filters, c.inputs], fanIn, fanOut);
  const bias = o.bias === false ? null : zeros([c.filters]);
  const vars: Record<string, tf.Variable> = bias ? { kernel, bias } : { kernel };
  return new Leaf(name, vars, (x) =>
    tf.tidy(() => {
      expectImage(x, c.inputs, `conv2dTranspose("${name}")`);
      const [b, h, w] = x.shape;
      const out =
        c.padding === "same"
          ? [b, h * c.stride, w * c.stride, c.filters]
          : [b, (h - 1) * c.stride + c.kernel, (w - 1) * c.stride + c.kernel, c.filters];
      let y: tf.Tensor = tf.conv2dTranspose(
        x as tf.Tensor4D,
        kernel as tf.Tensor4D,
        out as [number, number, number, number],
        c.stride,
        c.padding,
      );
      if (bias) y = tf.add(y, bias);
      return activate(y, c.act);
    }),
  );
}

export interface NormOptions {
  /** Size of the normalised (last) axis. */
  features: number;
  /** Added to the variance; default 1e-5. */
  epsilon?: number;
}

export interface BatchNormOptions extends NormOptions {
  /** Weight of the old running statistics per update; default 0.9. */
  momentum?: number;
  /** Applied to the output: "linear" (default) or "relu", fused into the norm's kernel on wasm. */
  activation?: "linear" | "relu";
}

/**
 * A norm as one kernel and one gradient kernel (LatentLab's on wasm): `kernel` gives
 * [y, ...saved] from { x, gamma, beta } (what its gradient needs, named `stats`), and
 * `gradKernel` [dx, dgamma, dbeta] from { dy, x, gamma, beta, ...saved }. `seen` gets the first
 * two saved while they live. Without a tape the kernel runs alone with `attrs`; with one, with
 * `tapeAttrs` (default `attrs`), as an op with that gradient.
 */
function normKernels(
  kernel: string, gradKernel: string, stats: string[], x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, attrs: tf.NamedAttrMap,
  seen: (a: tf.Tensor, b: tf.Tensor) => void = () => {}, tapeAttrs: tf.NamedAttrMap = attrs,
): tf.Tensor {
  if (!tf.engine().isTapeOn()) {
    const [y, ...rest] = tf.engine().runKernel(kernel, { x, gamma, beta }, attrs) as tf.Tensor[];
    seen(rest[0], rest[1]);
    tf.dispose(rest);
    return y;
  }
  const op = tf.customGrad(((xi: tf.Tensor, g: tf.Tensor, bt: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, ...rest] = tf.engine().runKernel(kernel, { x: xi, gamma: g, beta: bt }, tapeAttrs) as tf.Tensor[];
    seen(rest[0], rest[1]);
    save([xi, g, bt, ...rest]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, sb, ...kept] = saved;
        const named = Object.fromEntries(stats.map((name, i) => [name, kept[i]]));
        return tf.engine().runKernel(gradKernel, { dy, x: sx, gamma: sg, beta: sb, ...named }, tapeAttrs) as tf.Tensor[];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x, gamma, beta);
}

/**
 * γ·(x − μ)/√(σ² + ε) + β with the batch's moments over every axis but the last (then relu if
 * asked); `stats` is called with μ and σ² (which live until it returns). On wasm, for channels in
 * fours: one kernel and one gradient kernel (backend/wasm-kernels/batchnorm.ts; a DCGAN
 * generator's 128×14×14×64 norm + relu with its gradient took ~16 ms in tfjs ops). Elsewhere
 * tfjs's moments, batchNorm and relu.
 */
export function batchNormTrainOp(
  x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number, relu: boolean, stats: (mean: tf.Tensor, variance: tf.Tensor) => void,
): tf.Tensor {
  const features = x.shape[x.shape.length - 1] as number;
  const fused = tf.getKernel(BATCH_NORM_TRAIN, tf.getBackend()) !== undefined && x.dtype === "float32" && features % 4 === 0;
  if (!fused) {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, [...Array(x.rank - 1).keys()]);
      stats(mean, variance);
      const z = tf.batchNorm(x, mean, variance, beta, gamma, epsilon);
      return relu ? tf.relu(z) : z;
    });
  }
  const attrs = { epsilon, relu } as unknown as tf.NamedAttrMap;
  return normKernels(BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD, ["mean", "variance"], x, gamma, beta, attrs, stats);
}

/**
 * Batch normalisation over every axis but the last (Ioffe & Szegedy 2015), then relu if asked.
 * In training it uses the batch's moments and updates running averages; otherwise it uses those
 * averages.
 */
export function batchNorm(name: string, o: BatchNormOptions): Module {
  const features = positiveInt(o.features, `batchNorm("${name}").features`);
  const eps = o.epsilon ?? 1e-5;
  const momentum = o.momentum ?? 0.9;
  const activation = o.activation ?? "linear";
  if (activation !== "linear" && activation !== "relu") {
    throw new Error(`batchNorm("${name}").activation must be "linear" or "relu", got ${JSON.stringify(activation)}.`);
  }
  const relu = activation === "relu";
  const gamma = ones([features]);
  const beta = zeros([features]);
  const movingMean = zeros([features], false);
  const movingVar = ones([features], false);
  return new Leaf(
    name,
    { gamma, beta },
    (x, training) =>
      tf.tidy(() => {
        if (x.shape[x.shape.length - 1] !== features) {
          throw new Error(`batchNorm("${name}") expects ${features} features in the last axis, got shape [${x.shape}].`);
        }
        if (!training) {
          const z = tf.batchNorm(x, movingMean, movingVar, beta, gamma, eps);
          return relu ? tf.relu(z) : z;
        }
        // Running statistics are state: they do not feed the output, so no gradient reaches them.
        return batchNormTrainOp(x, gamma, beta, eps, relu, (mean, variance) => {
          movingMean.assign(tf.add(tf.mul(movingMean, momentum), tf.mul(mean, 1 - momentum)));
          movingVar.assign(tf.add(tf.mul(movingVar, momentum), tf.mul(variance, 1 - momentum)));
        });
      }),
    { movingMean, movingVar },
  );
}

export interface LayerNormOptions extends NormOptions {
  /** Applied to the output: "linear" (default) or "silu", fused into the norm's kernel on wasm. */
  activation?: "linear" | "silu";
}

/**
 * γ·(x − μ)/σ + β over the last axis, then SiLU if asked. On wasm: one kernel and one gradient
 * kernel (backend/wasm-kernels/layernorm.ts), which keep only μ and 1/σ for the gradient instead
 * of five full-size intermediates, and make one pass over the data each way (a 128×28×28×32
 * norm + SiLU: 4.7 ms, 15 ms in tfjs ops). Other backends: the same arithmetic in tfjs ops.
 */
export function layerNormOp(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number, activation: "linear" | "silu" = "linear"): tf.Tensor {
  const silu = activation === "silu";
  const attrs = { epsilon, silu } as unknown as tf.NamedAttrMap;
  if (tf.getKernel(LAYER_NORM, tf.getBackend()) === undefined) {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon)));
      const z = tf.add(tf.mul(normed, gamma), beta);
      return silu ? activate(z, "silu") : z;
    });
  }
  // Recording a gradient, the kernel also keeps σ(z) for it (LayerNormAttrs.keepSigmoid).
  const tapeAttrs = { epsilon, silu, keepSigmoid: silu } as unknown as tf.NamedAttrMap;
  return normKernels(LAYER_NORM, LAYER_NORM_GRAD, silu ? ["mean", "rstd", "sig"] : ["mean", "rstd"], x, gamma, beta, attrs, undefined, tapeAttrs);
}

/** Layer normalisation over the last axis (Ba et al. 2016), optionally followed by SiLU. */
export function layerNorm(name: string, o: LayerNormOptions): Module {
  const features = positiveInt(o.features, `layerNorm("${name}").features`);
  const eps = o.epsilon ?? 1e-5;
  const activation = o.activation ?? "linear";
  if (activation !== "linear" && activation !== "silu") {
    throw new Error(`layerNorm("${name}").activation must be "linear" or "silu", got ${JSON.stringify(activation)}.`);
  }
  const gamma = ones([features]);
  const beta = zeros([features]);
  return new Leaf(name, { gamma, beta }, (x) => {
    if (x.shape[x.shape.length - 1] !== features) {
      throw new Error(`layerNorm("${name}") expects ${features} features in the last axis, got shape [${x.shape}].`);
    }
    return layerNormOp(x, gamma, beta, eps, activation);
  });
}

export interface EmbeddingOptions {
  /** Number of tokens. */
  vocab: number;
  /** Vector size. */
  dim: number;
  rng: Rng;
}

/** A lookup table: int32 ids [B, T] → [B, T, dim]. Initialised N(0, 0.02²) as in GPT-2. */
export function embedding(name: string, o: EmbeddingOptions): Module {
  const vocab = positiveInt(o.vocab, `embedding("${name}").vocab`);
  const dim = positiveInt(o.dim, `embedding("${name}").dim`);
  const table = variableOf(o.rng.fork(name).normal([vocab, dim], 0, 0.02));
  return new Leaf(name, { table }, (ids) =>
    tf.tidy(() => {
      if (ids.dtype !== "int32") throw new Error(`embedding("${name}") expects int32 token ids, got ${ids.dtype}.`);
      const flat = tf.reshape(ids, [-1]);
      return tf.reshape(tf.gather(table, flat), [...ids.shape, dim]);
    }),
  );
}

/** A named activation as a layer. */
export function activation(name: string, act: Activation): Module {
  const a = checkActivation(act);
  return new Leaf(name, {}, (x) => activate(x, a));
}

/** Reshape every example to `shape` (batch axis kept). */
export function reshape(name: string, shape: number[]): Module {
  return new Leaf(name, {}, (x) => tf.reshape(x, [x.shape[0], ...shape]));
}

/** Flatten every example to a vector. */
export function flatten(name: string): Module {
  return new Leaf(name, {}, (x) => tf.reshape(x, [x.shape[0], -1]));
}

/**
 * Dropout (Srivastava et al. 2014): in training, zeroes each value with probability `rate` and
 * scales the rest by 1/(1 − rate); otherwise the identity. Masks come from `rng`, one fresh tfjs
 * seed per call, so a run is reproducible from its seed.
 */
export function dropout(name: string, o: { rate: number; rng: Rng }): Module {
  if (!(o.rate >= 0 && o.rate < 1)) throw new Error(`dropout("${name}").rate must be in [0, 1), got ${o.rate}.`);
  const r = o.rng.fork(name);
  return new Leaf(name, {}, (x, training) => (training && o.rate > 0 ? tf.dropout(x, o.rate, undefined, r.seed()) : x));
}
