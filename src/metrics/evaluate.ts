/**
 * `lab.evaluate(model, data)`: is this model any good, and is it creating or copying?
 *
 * Images (28×28 grey): n generated samples against n held-out real images, in the feature
 * space of LatentLab's own classifier (src/metrics/features.ts): Fréchet distance, KID with its
 * standard error, precision and recall, and novelty (distances to the nearest training image).
 * Beside each number, the floor: the same measure for n *training* images against the same
 * held-out images, i.e. what a perfect model would score at this sample size.
 * Points: mode coverage (when the data is a known mixture), histogram KL/JS, MMD, with the floor.
 */
import * as tf from "@tensorflow/tfjs";
import { Dataset } from "../data/dataset";
import { fashionMnist, mnist } from "../data/mnist";
import { MimeBundle } from "../display/runtime";
import { mime } from "../display/show";
import { Seed, rng as makeRng } from "../random/rng";
import { FeatureSet, featureNetwork, featuresOf } from "./features";
import { frechetDistance, kid, novelty, precisionRecall } from "./images";
import { gridDivergence, mmd, modeCoverage } from "./points";

export interface EvaluateOptions {
  /** Samples on each side; default 1000 for images, 2500 for points. */
  n?: number;
  seed?: Seed;
  /** Held-out real data; default: the test split of MNIST / Fashion-MNIST when `data` is one. */
  test?: Dataset;
}

/** A model that can be evaluated: it samples, and may record metrics. */
export interface Samples {
  sample(options: { n: number; seed?: Seed }): tf.Tensor;
  recordMetric?(name: string, value: number): void;
}

export interface MetricRow {
  name: string;
  model: number;
  floor: number | null;
  better: "lower" | "higher" | "";
  note?: string;
}

export class Evaluation {
  constructor(
    readonly title: string,
    readonly rows: MetricRow[],
    readonly notes: string[],
  ) {}

  /** The model's value of a metric by name. */
  get(name: string): number {
    const r = this.rows.find((x) => x.name === name);
    if (!r) throw new Error(`No metric "${name}"; have ${this.rows.map((x) => x.name).join(", ")}.`);
    return r.model;
  }

  toJSON(): Record<string, { model: number; floor: number | null }> {
    return Object.fromEntries(this.rows.map((r) => [r.name, { model: r.model, floor: r.floor }]));
  }

  [mime](): MimeBundle {
    const f = (v: number | null) => (v === null ? "" : Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(Number.isInteger(v) ? 0 : 1) : v.toPrecision(3));
    const html =
      `<div><b>${this.title}</b><table><tr><th style="text-align:left">metric</th><th>model</th><th>floor (real vs real)</th><th>better</th></tr>` +
      this.rows.map((r) => `<tr><td style="text-align:left">${r.name}</td><td>${f(r.model)}</td><td>${f(r.floor)}</td><td>${r.better}</td></tr>`).join("") +
      `</table><small>${this.notes.join("<br>")}</small></div>`;
    const text = [
      this.title,
      `${"metric".padEnd(26)} ${"model".padStart(10)} ${"floor".padStart(10)}  better`,
      ...this.rows.map((r) => `${r.name.padEnd(26)} ${f(r.model).padStart(10)} ${f(r.floor).padStart(10)}  ${r.better}`),
      ...this.notes,
    ].join("\n");
    return { "text/html": html, "text/plain": text };
  }
}

function heldOutFor(data: Dataset, options: EvaluateOptions, n: number): Dataset {
  if (options.test) return options.test;
  const loader = data.recipe?.loader;
  const size = (data.recipe?.options.size as number | undefined) ?? 28;
  if (loader === "mnist") return mnist({ split: "test", size });
  if (loader === "fashionMnist") return fashionMnist({ split: "test", n: Math.min(10_000, Math.max(n, 1000)), seed: 1, size });
  throw new Error(`evaluate() needs held-out images to compare with: pass { test } (a dataset like ${data.name}).`);
}

function featureSetFor(data: Dataset): FeatureSet {
  return data.recipe?.loader === "fashionMnist" || /fashion/.test(data.name) ? "fashion" : "mnist";
}

function read(t: tf.Tensor): Float32Array {
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return v;
}

/** Images at another size are resized to the classifier's 28×28 (both sides, the same way). */
function to28(x: tf.Tensor): tf.Tensor {
  if (x.shape[1] === 28 && x.shape[2] === 28) return x;
  const out = tf.tidy(() => tf.clipByValue(tf.image.resizeBilinear(x as tf.Tensor4D, [28, 28], true), 0, 1));
  x.dispose();
  return out;
}

function evaluateImages(model: Samples, data: Dataset, options: EvaluateOptions): Evaluation {
  const c = data.sampleShape[2];
  if (c !== 1) throw new Error(`Image metrics use a grey (1-channel) classifier; ${data.name} has samples [${data.sampleShape}].`);
  const test = heldOutFor(data, options, options.n ?? 1000);
  const n = Math.min(options.n ?? 1000, data.size, test.size);
  const r = makeRng(options.seed ?? 0).fork("evaluate");
  const set = featureSetFor(data);
  const { card } = featureNetwork(set);
  const d = 128;
  const gen = to28(model.sample({ n, seed: r.seed() }));
  const trainX = to28(data.sample(n, r.fork("train")));
  const testX = to28(test.sample(n, r.fork("test")));
  const fGen = read(featuresOf(gen, set));
  const fTrain = read(featuresOf(trainX, set));
  const fTest = read(featuresOf(testX, set));
  tf.dispose([gen, trainX, testX]);
  const fd = frechetDistance(fGen, fTest, d);
  const fdFloor = frechetDistance(fTrain, fTest, d);
  const k = kid(fGen, fTest, d, r.fork("kid"));
  const kFloor = kid(fTrain, fTest, d, r.fork("kid-floor"));
  const m = Math.min(n, 1000);
  const pr = precisionRecall(fTest.subarray(0, m * d), fGen.subarray(0, m * d), d);
  const prFloor = precisionRecall(fTest.subarray(0, m * d), fTrain.subarray(0, m * d), d);
  const nov = novelty(fGen.subarray(0, m * d), fTrain, fTest.subarray(0, m * d), d);
  const rows: MetricRow[] = [
    { name: "Fréchet distance", model: fd, floor: fdFloor, better: "lower" },
    { name: "KID ×1000", model: 1000 * k.value, floor: 1000 * kFloor.value, better: "lower", note: `± ${(1000 * k.stderr).toFixed(2)}` },
    { name: "precision", model: pr.precision, floor: prFloor.precision, better: "higher" },
    { name: "recall", model: pr.recall, floor: prFloor.recall, better: "higher" },
    { name: "memorised share", model: nov.memorised, floor: 0.05, better: "lower" },
    { name: "median nearest-train distance", model: nov.medianNearest, floor: nov.heldOutMedianNearest, better: "" },
  ];
  for (const row of rows) model.recordMetric?.(row.name, row.model);
  return new Evaluation(
    `${n} samples vs ${n} held-out ${test.name} images, in the features of LatentLab's ${set} classifier (held-out accuracy ${(100 * card.testAccuracy).toFixed(1)}%)`,
    rows,
    [
      `Floor: ${n} training images vs the same held-out images — what a perfect model scores at this sample size. KID ± ${(1000 * k.stderr).toFixed(2)} (standard error over ${k.subsets} subsets of ${k.subsetSize}).`,
      `Precision/recall with k = ${pr.k} on ${m} per side. "Memorised": samples nearer a training image than 95 % of held-out images are (5 % for fresh data).`,
      "These numbers compare only with others from the same feature network and sample size; they are not Inception FIDs.",
    ],
  );
}

function evaluatePoints(model: Samples, data: Dataset, options: EvaluateOptions): Evaluation {
  const n = options.n ?? 2500;
  const r = makeRng(options.seed ?? 0).fork("evaluate");
  const fake = read(model.sample({ n, seed: r.seed() }));
  const real = read(data.sample(Math.min(n, data.size), r.fork("real")));
  const fresh = read(data.sample(Math.min(n, data.size), r.fork("fresh")));
  const rows: MetricRow[] = [];
  if (data.modes && data.modeStd) {
    const c = modeCoverage(fake, data.modes, data.modeStd);
    const f = modeCoverage(fresh, data.modes, data.modeStd);
    rows.push(
      { name: "modes captured", model: c.modesCaptured, floor: f.modesCaptured, better: "higher" },
      { name: "high quality share", model: c.highQuality, floor: f.highQuality, better: "higher" },
      { name: "reverse KL (nats)", model: c.reverseKL, floor: f.reverseKL, better: "lower" },
    );
  }
  const g = gridDivergence(real, fake);
  const gf = gridDivergence(real, fresh);
  const scale = Math.max(1e-6, (data.range[1] - data.range[0]) / 10);
  const m = Math.min(n, 1000);
  rows.push(
    { name: "grid KL (nats)", model: g.kl, floor: gf.kl, better: "lower" },
    { name: "grid JS (nats)", model: g.js, floor: gf.js, better: "lower" },
    { name: `MMD² (σ=${scale.toPrecision(2)})`, model: mmd(real.subarray(0, 2 * m), fake.subarray(0, 2 * m), scale), floor: mmd(real.subarray(0, 2 * m), fresh.subarray(0, 2 * m), scale), better: "lower" },
  );
  for (const row of rows) model.recordMetric?.(row.name, row.model);
  return new Evaluation(`${n} samples vs ${data.name}`, rows, ["Floor: a fresh sample of the data scored the same way."]);
}

/** Evaluates a model's samples against its data; displays a compact table with floors. */
export function evaluate(model: Samples, data: Dataset, options: EvaluateOptions = {}): Evaluation {
  if (!model || typeof model.sample !== "function") throw new Error("evaluate() needs a model that can sample({ n, seed }).");
  if (data.kind === "images") return evaluateImages(model, data, options);
  if (data.kind === "points") return evaluatePoints(model, data, options);
  throw new Error(`evaluate() handles images and points; for text, use the model's own evaluation (novelty, NLL).`);
}
