/**
 * Denoisers: networks of (xₜ, t) → a prediction shaped like xₜ, with t in [0, 1] given per
 * example and fed through a sinusoidal embedding (Vaswani et al. 2017, §3.5; as in DDPM).
 *
 * - `mlpDenoiser` for 2-D points: x and the time embedding, projected and summed, then residual
 *   MLP blocks with SiLU.
 * - `unet` for images: a small U-Net (Ronneberger et al. 2015, as in DDPM) with two resolutions,
 *   residual blocks that add the time embedding, channel layer-norm, and skip connections.
 */
import * as tf from "@tensorflow/tfjs";
import * as nn from "../../nn";
import { Module, Parameters } from "../../nn/module";
import { Rng } from "../../random/rng";

export interface Denoiser extends Parameters {
  readonly name: string;
  /** xₜ [B, ...] and t [B] in [0, 1] → prediction [B, ...] (the caller disposes). */
  apply(x: tf.Tensor, t: tf.Tensor, options?: { training?: boolean }): tf.Tensor;
}

/** Sinusoidal embedding of t ∈ [0, 1] (scaled by 1000), [B] → [B, dim]. */
export function timeEmbedding(t: tf.Tensor, dim: number): tf.Tensor2D {
  return tf.tidy(() => {
    const half = dim / 2;
    const freqs = tf.tensor1d(Float32Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half)));
    const args = tf.mul(tf.reshape(tf.mul(t, 1000), [-1, 1]), tf.reshape(freqs, [1, half]));
    return tf.concat([tf.sin(args), tf.cos(args)], 1) as tf.Tensor2D;
  });
}

class Group implements Parameters {
  constructor(private readonly parts: Parameters[]) {}
  variables(): Map<string, tf.Variable> {
    return new Map(this.parts.flatMap((p) => [...p.variables()]));
  }
  state(): Map<string, tf.Variable> {
    return new Map(this.parts.flatMap((p) => [...p.state()]));
  }
  dispose(): void {
    this.parts.forEach((p) => p.dispose());
  }
}

export interface MlpDenoiserOptions {
  /** Data dimension (2 for points). */
  dim: number;
  hidden: number;
  blocks: number;
  rng: Rng;
}

/**
 * Sinusoidal features of each coordinate, [B, d] → [B, d·dim]: sin and cos of x·scale·fᵢ with
 * geometric frequencies fᵢ. An MLP fed raw coordinates learns sharp, many-moded fields slowly
 * (spectral bias; Tancik et al. 2020); fed these, it draws 25 tight modes instead of streaks.
 */
export function coordinateEmbedding(x: tf.Tensor, dim: number, scale = 25): tf.Tensor2D {
  return tf.tidy(() => {
    const half = dim / 2;
    const freqs = tf.tensor1d(Float32Array.from({ length: half }, (_, i) => scale * Math.exp((-Math.log(10000) * i) / half)));
    const d = x.shape[1] as number;
    const args = tf.mul(tf.reshape(x, [-1, d, 1]), tf.reshape(freqs, [1, 1, half])); // [B, d, half]
    return tf.reshape(tf.concat([tf.sin(args), tf.cos(args)], 2), [-1, d * dim]) as tf.Tensor2D;
  });
}

/** A residual MLP over (x, t) for low-dimensional data, x embedded by `coordinateEmbedding`. */
export function mlpDenoiser(o: MlpDenoiserOptions): Denoiser {
  const r = o.rng;
  const h = o.hidden;
  const tDim = 64;
  const xDim = 64; // features per coordinate
  const inX = nn.dense("in_x", { inputs: o.dim * xDim, units: h, rng: r });
  const inT = nn.dense("in_t", { inputs: tDim, units: h, activation: "silu", rng: r });
  const blocks = Array.from({ length: o.blocks }, (_, i) => [
    nn.dense(`block${i}_a`, { inputs: h, units: h, activation: "silu", rng: r }),
    nn.dense(`block${i}_b`, { inputs: h, units: h, rng: r }),
    nn.dense(`block${i}_t`, { inputs: h, units: h, rng: r }),
  ]);
  const out = nn.dense("out", { inputs: h, units: o.dim, rng: r });
  const all: Module[] = [inX, inT, ...blocks.flat(), out];
  const params = new Group(all.map((m) => nn.sequential("denoiser", [m])));
  return {
    name: "denoiser",
    variables: () => params.variables(),
    state: () => params.state(),
    dispose: () => params.dispose(),
    apply: (x, t) =>
      tf.tidy(() => {
        const temb = inT.apply(timeEmbedding(t, tDim));
        let hx = tf.add(inX.apply(coordinateEmbedding(x, xDim)), temb);
        for (const [a, b, tp] of blocks) hx = tf.add(hx, b.apply(a.apply(tf.add(nn.activate(hx, "silu"), tp.apply(temb)))));
        return out.apply(nn.activate(hx, "silu"));
      }),
  };
}

/** A residual block: LN → SiLU → conv3 → + time → LN → SiLU → conv3, plus a (projected) skip. */
function resBlock(name: string, cin: number, cout: number, tDim: number, r: Rng) {
  const norm1 = nn.layerNorm(`${name}_norm1`, { features: cin, activation: "silu" });
  const conv1 = nn.conv2d(`${name}_conv1`, { inputs: cin, filters: cout, kernel: 3, rng: r });
  const time = nn.dense(`${name}_time`, { inputs: tDim, units: cout, rng: r });
  const norm2 = nn.layerNorm(`${name}_norm2`, { features: cout, activation: "silu" });
  const conv2 = nn.conv2d(`${name}_conv2`, { inputs: cout, filters: cout, kernel: 3, rng: r });
  const skip = cin === cout ? null : nn.conv2d(`${name}_skip`, { inputs: cin, filters: cout, kernel: 1, rng: r });
  const parts: Module[] = [norm1, conv1, time, norm2, conv2, ...(skip ? [skip] : [])];
  return {
    parts,
    apply(x: tf.Tensor, temb: tf.Tensor): tf.Tensor {
      return tf.tidy(() => {
        // The time embedding and the skip are added in the convs' output passes (conv2d's applyWith).
        const h = conv1.applyWith(norm1.apply(x), { imageBias: time.apply(temb) });
        return conv2.applyWith(norm2.apply(h), { residual: skip ? skip.apply(x) : x });
      });
    },
  };
}

export interface UnetOptions {
  /** Image channels. */
  channels: number;
  /** Feature maps at full and half resolution. */
  widths: [number, number];
  /** Residual blocks per resolution on the way down (and up). */
  blocks: number;
  rng: Rng;
}

/** A two-resolution U-Net over images whose sides are even. */
export function unet(o: UnetOptions): Denoiser {
  const r = o.rng;
  const [c1, c2] = o.widths;
  const tDim = 4 * c1;
  const t0 = nn.dense("time0", { inputs: c1, units: tDim, activation: "silu", rng: r });
  const t1 = nn.dense("time1", { inputs: tDim, units: tDim, rng: r });
  const inConv = nn.conv2d("in", { inputs: o.channels, filters: c1, kernel: 3, rng: r });
  const down1 = Array.from({ length: o.blocks }, (_, i) => resBlock(`down1_${i}`, c1, c1, tDim, r));
  const downsample = nn.conv2d("downsample", { inputs: c1, filters: c2, kernel: 3, stride: 2, rng: r });
  const down2 = Array.from({ length: o.blocks }, (_, i) => resBlock(`down2_${i}`, c2, c2, tDim, r));
  const mid = resBlock("mid", c2, c2, tDim, r);
  const up2 = Array.from({ length: o.blocks }, (_, i) => resBlock(`up2_${i}`, 2 * c2, c2, tDim, r));
  const upsample = nn.conv2dTranspose("upsample", { inputs: c2, filters: c1, kernel: 4, stride: 2, rng: r });
  const up1 = Array.from({ length: o.blocks }, (_, i) => resBlock(`up1_${i}`, 2 * c1, c1, tDim, r));
  const outNorm = nn.layerNorm("out_norm", { features: c1, activation: "silu" });
  const outConv = nn.conv2d("out", { inputs: c1, filters: o.channels, kernel: 3, rng: r });
  const modules: Module[] = [t0, t1, inConv, downsample, upsample, outNorm, outConv, ...[...down1, ...down2, mid, ...up2, ...up1].flatMap((b) => b.parts)];
  const params = new Group(modules.map((m) => nn.sequential("unet", [m])));
  return {
    name: "unet",
    variables: () => params.variables(),
    state: () => params.state(),
    dispose: () => params.dispose(),
    apply: (x, t) =>
      tf.tidy(() => {
        if (x.rank !== 4 || (x.shape[1] as number) % 2 !== 0 || (x.shape[2] as number) % 2 !== 0) {
          throw new Error(`The U-Net takes images [B, H, W, C] with even H and W, got [${x.shape}].`);
        }
        const temb = t1.apply(t0.apply(timeEmbedding(t, c1)));
        let h = inConv.apply(x);
        const skips1: tf.Tensor[] = [];
        for (const b of down1) skips1.push((h = b.apply(h, temb)));
        h = downsample.apply(h);
        const skips2: tf.Tensor[] = [];
        for (const b of down2) skips2.push((h = b.apply(h, temb)));
        h = mid.apply(h, temb);
        for (const b of up2) h = b.apply(tf.concat([h, skips2.pop() as tf.Tensor], 3), temb);
        h = upsample.apply(h);
        for (const b of up1) h = b.apply(tf.concat([h, skips1.pop() as tf.Tensor], 3), temb);
        return outConv.apply(outNorm.apply(h));
      }),
  };
}
