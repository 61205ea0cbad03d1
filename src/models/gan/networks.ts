/**
 * The generator and discriminator a GAN builds for its data:
 *
 * - 2-D points: MLPs. G: z → [hidden]×layers (ReLU) → 2. D: 2 → [hidden]×layers (LeakyReLU 0.2) → 1.
 * - images: DCGAN (Radford et al. 2016), sized to the image. For 28×28×1 this is exactly the
 *   benchmark's DCGAN-small: G z → dense 7·7·128 → convT 64 k4 s2 → BN → ReLU → convT 1 k4 s2
 *   → tanh; D conv 64 k4 s2 → LeakyReLU → conv 128 k4 s2 → LeakyReLU → dense 1. Larger
 *   images (32, 64, … px) add a stride-2 layer per doubling.
 */
import * as nn from "../../nn";
import { Module } from "../../nn/module";
import { Rng } from "../../random/rng";

export interface MlpSizes {
  latentDim: number;
  hidden: number;
  layers: number;
}

export function mlpGenerator(s: MlpSizes, rng: Rng): Module {
  const layers: Module[] = [];
  let inputs = s.latentDim;
  for (let i = 0; i < s.layers; i++) {
    layers.push(nn.dense(`fc${i}`, { inputs, units: s.hidden, activation: "relu", rng }));
    inputs = s.hidden;
  }
  layers.push(nn.dense("out", { inputs, units: 2, rng }));
  return nn.sequential("G", layers);
}

export function mlpDiscriminator(s: MlpSizes, rng: Rng): Module {
  const layers: Module[] = [];
  let inputs = 2;
  for (let i = 0; i < s.layers; i++) {
    layers.push(nn.dense(`fc${i}`, { inputs, units: s.hidden, activation: "leakyRelu", rng }));
    inputs = s.hidden;
  }
  layers.push(nn.dense("out", { inputs, units: 1, rng }));
  return nn.sequential("D", layers);
}

export interface ConvSizes {
  latentDim: number;
  /** Image side (28, or 4·2ᵏ / 7·2ᵏ). */
  size: number;
  channels: number;
  /** Feature maps of the first discriminator layer (64 for DCGAN-small). */
  width: number;
}

/** Stride-2 stages and the starting side: 28 = 7·2², 32 = 4·2³, 64 = 4·2⁴. */
export function stages(size: number): { start: number; ups: number } {
  for (const start of [7, 4, 5, 3]) {
    let s = size;
    let ups = 0;
    while (s > start && s % 2 === 0) {
      s /= 2;
      ups += 1;
    }
    if (s === start && ups >= 1) return { start, ups };
  }
  throw new Error(`A DCGAN needs an image side of 7·2ᵏ or 4·2ᵏ (28, 32, 56, 64, …); got ${size}. Resize the images (imageFolder({ size: 32 })).`);
}

export function convGenerator(s: ConvSizes, rng: Rng): Module {
  const { start, ups } = stages(s.size);
  const top = s.width * 2 ** (ups - 1); // channels at the smallest resolution
  const layers: Module[] = [
    nn.dense("fc", { inputs: s.latentDim, units: start * start * top, rng }),
    nn.reshape("grid", [start, start, top]),
  ];
  let ch = top;
  for (let i = 0; i < ups - 1; i++) {
    layers.push(nn.conv2dTranspose(`up${i}`, { inputs: ch, filters: ch / 2, kernel: 4, stride: 2, rng }));
    layers.push(nn.batchNorm(`bn${i}`, { features: ch / 2, activation: "relu" })); // one kernel each way on wasm
    ch /= 2;
  }
  layers.push(nn.conv2dTranspose("out", { inputs: ch, filters: s.channels, kernel: 4, stride: 2, activation: "tanh", rng }));
  return nn.sequential("G", layers);
}

export function convDiscriminator(s: ConvSizes, rng: Rng): Module {
  const { start, ups } = stages(s.size);
  const layers: Module[] = [];
  let ch = s.channels;
  let width = s.width;
  for (let i = 0; i < ups; i++) {
    layers.push(nn.conv2d(`conv${i}`, { inputs: ch, filters: width, kernel: 4, stride: 2, activation: "leakyRelu", rng }));
    ch = width;
    width *= 2;
  }
  layers.push(nn.flatten("flat"));
  layers.push(nn.dense("out", { inputs: start * start * ch, units: 1, rng }));
  return nn.sequential("D", layers);
}
