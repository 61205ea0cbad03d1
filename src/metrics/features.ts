/**
 * The feature network behind LatentLab's image metrics: a small CNN classifier trained by this
 * project on MNIST (and one on Fashion-MNIST), its weights committed in src/metrics/weights
 * with the held-out accuracy they reached. Inception features mean nothing on 28×28 digits (the
 * FID authors say so); a network that knows digits does.
 *
 *   28×28×1 → conv 32 k3 → conv 64 k3 s2 → conv 64 k3 s2 → dropout 0.3 → dense 128 (the features)
 *   → dropout 0.3 → dense 10
 *
 * `npm run train:features` re-creates the weights (src/metrics/train-features.ts).
 */
import * as tf from "@tensorflow/tfjs";
import * as fs from "node:fs";
import * as path from "node:path";
import * as nn from "../nn";
import { Module } from "../nn/module";
import { Rng } from "../random/rng";

export type FeatureSet = "mnist" | "fashion";

export const FEATURE_DIM = 128;

/** The classifier; `features` ends at the 128-d ReLU layer, `head` maps it to 10 logits. */
export function buildClassifier(rng: Rng): { features: Module; head: Module } {
  const features = nn.sequential("features", [
    nn.conv2d("conv0", { inputs: 1, filters: 32, kernel: 3, activation: "relu", rng }),
    nn.conv2d("conv1", { inputs: 32, filters: 64, kernel: 3, stride: 2, activation: "relu", rng }),
    nn.conv2d("conv2", { inputs: 64, filters: 64, kernel: 3, stride: 2, activation: "relu", rng }),
    nn.flatten("flat"),
    nn.dropout("drop0", { rate: 0.3, rng }),
    nn.dense("fc", { inputs: 7 * 7 * 64, units: FEATURE_DIM, activation: "relu", rng }),
  ]);
  const head = nn.sequential("head", [nn.dropout("drop1", { rate: 0.3, rng }), nn.dense("logits", { inputs: FEATURE_DIM, units: 10, rng })]);
  return { features, head };
}

/** What is recorded beside the weights. */
export interface FeatureCard {
  dataset: FeatureSet;
  /** Held-out accuracy the weights reached, and on how many images. */
  testAccuracy: number;
  testImages: number;
  trainImages: number;
  epochs: number;
  seed: number;
  trainedWith: string;
  variables: { name: string; shape: number[]; offset: number }[];
}

export function weightsDir(): string {
  const root = path.dirname(require.resolve("latentlab/package.json"));
  return path.join(root, "src", "metrics", "weights");
}

const loaded = new Map<FeatureSet, { net: Module; card: FeatureCard }>();

/** The trained feature network for a dataset (loaded once, kept for the session). */
export function featureNetwork(set: FeatureSet): { net: Module; card: FeatureCard } {
  const cached = loaded.get(set);
  if (cached) return cached;
  const dir = weightsDir();
  const cardFile = path.join(dir, `${set}-classifier.json`);
  const binFile = path.join(dir, `${set}-classifier.bin`);
  if (!fs.existsSync(cardFile) || !fs.existsSync(binFile)) {
    throw new Error(`The ${set} feature network's weights are missing (${binFile}). Re-create them with \`npm run train:features -- ${set}\`.`);
  }
  const card: FeatureCard = JSON.parse(fs.readFileSync(cardFile, "utf8"));
  const bin = fs.readFileSync(binFile);
  const { features, head } = buildClassifier(new Rng("weights-follow"));
  const vars = new Map([...features.variables(), ...head.variables()]);
  for (const v of card.variables) {
    const target = vars.get(v.name);
    if (!target) throw new Error(`${binFile}: unknown variable ${v.name}.`);
    const size = v.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(new Uint8Array(bin.subarray(v.offset, v.offset + 4 * size)).buffer);
    const t = tf.tensor(values, v.shape);
    target.assign(t);
    t.dispose();
  }
  head.dispose();
  const entry = { net: features, card };
  loaded.set(set, entry);
  return entry;
}

/** 128-d features of images [n, 28, 28, 1] in [0, 1], in chunks (the caller disposes). */
export function featuresOf(images: tf.Tensor, set: FeatureSet = "mnist", chunk = 500): tf.Tensor2D {
  if (images.rank !== 4 || images.shape[1] !== 28 || images.shape[2] !== 28 || images.shape[3] !== 1) {
    throw new Error(`The ${set} feature network takes images shaped [n, 28, 28, 1] in [0, 1], got [${images.shape}].`);
  }
  const { net } = featureNetwork(set);
  const parts: tf.Tensor[] = [];
  for (let s = 0; s < images.shape[0]; s += chunk) {
    const m = Math.min(chunk, images.shape[0] - s);
    parts.push(tf.tidy(() => net.apply(images.slice(s, m))));
  }
  const out = tf.concat(parts, 0) as tf.Tensor2D;
  tf.dispose(parts);
  return out;
}
