/**
 * The latent-space toolkit, for any model with an encoder (`encode(x) → { mean }`) and a decoder
 * (`decode(z)`), such as a VAE, or a generator from a latent prior (`generate(z)`, a GAN):
 *
 *   lab.latent.map(vae, test)              // encoded test set coloured by label (PCA/UMAP past 2-d)
 *   lab.latent.manifold(vae)               // decoded grid over two latent dimensions
 *   lab.latent.interpolate(vae, a, b)      // linear or spherical, between two encoded images
 *   lab.latent.traverse(vae, x, { dim })   // one dimension swept, the others fixed
 *   lab.latent.reconstructions(vae, x)     // originals above reconstructions
 *   lab.latent.nearest(samples, train)     // each sample beside its closest training image
 */
import * as tf from "@tensorflow/tfjs";
import { UMAP } from "umap-js";
import { Dataset } from "../data/dataset";
import { Seed, rng as makeRng } from "../random/rng";
import { Chart, Trace, chart } from "./figure";
import { ImageGrid, gridPixels, imageGrid } from "./images";
import { encodePng } from "./png";

/** What the toolkit needs of a model; VAEs have all of it, GANs the decoding half. */
export interface LatentModel {
  config: { latentDim: number };
  encode?(x: tf.Tensor): { mean: tf.Tensor; logvar: tf.Tensor };
  decode?(z: tf.Tensor): tf.Tensor;
  generate?(z: tf.Tensor): tf.Tensor;
}

function decoder(model: LatentModel): (z: tf.Tensor) => tf.Tensor {
  if (model.decode) return (z) => model.decode!(z);
  if (model.generate) return (z) => model.generate!(z);
  throw new Error("This model has no decoder or generator to draw latent points with.");
}

function encoder(model: LatentModel, what: string): (x: tf.Tensor) => tf.Tensor {
  if (!model.encode) throw new Error(`${what} needs a model with an encoder (a VAE); this model only generates.`);
  return (x) => {
    const { mean, logvar } = model.encode!(x);
    logvar.dispose();
    return mean;
  };
}

/** The top two principal axes of rows of `x` ([n, d]), by power iteration on the covariance. */
export function pca2(x: Float32Array, n: number, d: number): { coords: Float32Array; explained: [number, number] } {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) {
      const va = x[i * d + a] - mean[a];
      for (let b = a; b < d; b++) cov[a * d + b] += (va * (x[i * d + b] - mean[b])) / (n - 1);
    }
  }
  for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) cov[a * d + b] = cov[b * d + a];
  let total = 0;
  for (let a = 0; a < d; a++) total += cov[a * d + a];
  const axes: Float64Array[] = [];
  const values: number[] = [];
  for (let c = 0; c < 2; c++) {
    let v = new Float64Array(d).map((_, i) => 1 / Math.sqrt(d) + i * 1e-3);
    let lambda = 0;
    for (let it = 0; it < 200; it++) {
      const w = new Float64Array(d);
      for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) w[a] += cov[a * d + b] * v[b];
      for (const u of axes) {
        const dot = w.reduce((s, wi, i) => s + wi * u[i], 0);
        for (let i = 0; i < d; i++) w[i] -= dot * u[i];
      }
      lambda = Math.hypot(...w);
      if (lambda === 0) break;
      v = w.map((wi) => wi / lambda);
    }
    axes.push(v);
    values.push(lambda);
  }
  const coords = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 2; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (x[i * d + j] - mean[j]) * axes[c][j];
      coords[2 * i + c] = s;
    }
  }
  return { coords, explained: [values[0] / (total || 1), values[1] / (total || 1)] };
}

export interface MapOptions {
  /** Points to encode; default 2000. */
  n?: number;
  /** How to draw more than 2 latent dimensions: "pca" (default), or "umap" (umap-js). */
  method?: "pca" | "umap";
  /** Thumbnails of the images drawn at their latent positions; default 60. */
  thumbnails?: number;
  seed?: Seed;
}

/**
 * The encoded data in latent space, coloured by label: the latent itself when it is 2-d, else
 * its first two principal components or a UMAP embedding. Hovering a point (interactive
 * renderings) names its label and index; thumbnails show what lives where.
 */
export function map(model: LatentModel, data: Dataset, options: MapOptions = {}): Chart {
  const enc = encoder(model, "latent.map()");
  const n = Math.min(options.n ?? 2000, data.size);
  const r = makeRng(options.seed ?? 0).fork("latent-map");
  const idx = r.permutation(data.size).subarray(0, n);
  const { x, labels } = data.take(idx);
  const z = enc(x);
  const d = z.shape[1] as number;
  const zs = z.dataSync() as Float32Array;
  const lab = labels ? Int32Array.from(labels.dataSync()) : null;
  tf.dispose([x, z, labels].filter(Boolean) as tf.Tensor[]);
  let coords: Float32Array;
  let axes: [string, string];
  if (d === 2) {
    coords = zs;
    axes = ["z₁", "z₂"];
  } else if (options.method === "umap") {
    const umap = new UMAP({ nComponents: 2, nNeighbors: 15, minDist: 0.1, random: () => r.next() });
    const rows = Array.from({ length: n }, (_, i) => Array.from(zs.subarray(i * d, (i + 1) * d)));
    const emb = umap.fit(rows);
    coords = Float32Array.from(emb.flat());
    axes = ["UMAP 1", "UMAP 2"];
  } else {
    const p = pca2(zs, n, d);
    coords = p.coords;
    axes = [`PC 1 (${(100 * p.explained[0]).toFixed(0)}% of variance)`, `PC 2 (${(100 * p.explained[1]).toFixed(0)}%)`];
  }
  const traces: Trace[] = [];
  const xs = Float32Array.from({ length: n }, (_, i) => coords[2 * i]);
  const ys = Float32Array.from({ length: n }, (_, i) => coords[2 * i + 1]);
  const text = Array.from({ length: n }, (_, i) => `${lab ? `label ${data.classes?.[lab[i]] ?? lab[i]} · ` : ""}#${idx[i]}`);
  // Thumbnails: small images placed at their latent positions, under the points.
  const thumbs = data.kind === "images" ? Math.min(options.thumbnails ?? 60, n) : 0;
  if (thumbs > 0) {
    const span = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys)) || 1;
    const size = span / 22;
    const { x: imgs, labels: l2 } = data.take(idx.subarray(0, thumbs));
    l2?.dispose();
    const [, h, w, c] = imgs.shape;
    const values = imgs.dataSync();
    imgs.dispose();
    for (let i = 0; i < thumbs; i++) {
      const px = gridPixels(values.subarray(i * h * w * c, (i + 1) * h * w * c), [1, h, w, c], { scale: 1, range: data.range as [number, number] });
      traces.push({ type: "image", png: encodePng(px.rgba, px.width, px.height), x0: xs[i] - size / 2, x1: xs[i] + size / 2, y0: ys[i] - size / 2, y1: ys[i] + size / 2 });
    }
  }
  traces.push({ type: "scatter", name: data.name, x: xs, y: ys, groups: lab ?? undefined, size: 4, opacity: 0.6, text });
  return chart(
    { title: `${data.name} in latent space (${d}-d${d > 2 ? `, ${options.method === "umap" ? "UMAP" : "PCA"}` : ""})`, traces, xaxis: { title: axes[0] }, yaxis: { title: axes[1] }, width: 560, height: 520, showLegend: false },
    `latent map of ${n} encoded samples of ${data.name}`,
  );
}

export interface ManifoldOptions {
  /** The two latent dimensions to sweep; default [0, 1]. */
  dims?: [number, number];
  /** Sweep ±range (in standard deviations of the prior); default 2.5. */
  range?: number;
  /** Images per side; default 15. */
  steps?: number;
}

/** The decoded manifold: a steps×steps grid of images over two latent dimensions (others 0). */
export function manifold(model: LatentModel, options: ManifoldOptions = {}): ImageGrid {
  const dec = decoder(model);
  const d = model.config.latentDim;
  const [a, b] = options.dims ?? [0, Math.min(1, d - 1)];
  const range = options.range ?? 2.5;
  const k = options.steps ?? 15;
  const z = new Float32Array(k * k * d);
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < k; c++) {
      z[(r * k + c) * d + a] = -range + (2 * range * c) / (k - 1);
      if (b !== a) z[(r * k + c) * d + b] = range - (2 * range * r) / (k - 1);
    }
  }
  const out = tf.tidy(() => dec(tf.tensor2d(z, [k * k, d])));
  const grid = imageGrid(out, { cols: k, gap: 0, scale: 1, title: `decoded grid over z${a + 1} (left→right) and z${b + 1} (bottom→top), ±${range}` });
  out.dispose();
  return grid;
}

/** Spherical interpolation (Shoemake 1985; White 2016 for latent spaces). */
function slerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  const na = Math.hypot(...a);
  const nb = Math.hypot(...b);
  const cos = Math.min(1, Math.max(-1, a.reduce((s, v, i) => s + v * b[i], 0) / (na * nb || 1)));
  const omega = Math.acos(cos);
  if (omega < 1e-6) return a.map((v, i) => v + t * (b[i] - v));
  const s = Math.sin(omega);
  return a.map((v, i) => (Math.sin((1 - t) * omega) / s) * v + (Math.sin(t * omega) / s) * b[i]);
}

/** Latent codes of two images (encoded means) or two given codes. */
function codes(model: LatentModel, a: tf.Tensor, b: tf.Tensor): [Float32Array, Float32Array] {
  const d = model.config.latentDim;
  const one = (t: tf.Tensor): Float32Array => {
    if (t.rank === 2 && t.shape[1] === d && t.shape[0] === 1) return t.dataSync() as Float32Array;
    if (t.rank === 1 && t.shape[0] === d) return t.dataSync() as Float32Array;
    const x = t.rank === 3 ? t.expandDims(0) : t;
    const m = encoder(model, "latent.interpolate() between images")(x);
    const v = m.dataSync() as Float32Array;
    tf.dispose([m, ...(x !== t ? [x] : [])]);
    return v;
  };
  return [one(a), one(b)];
}

/** Images decoded along the path from a to b (images, or latent codes), linear or spherical. */
export function interpolate(model: LatentModel, a: tf.Tensor, b: tf.Tensor, options: { steps?: number; method?: "linear" | "spherical" } = {}): ImageGrid {
  const dec = decoder(model);
  const steps = options.steps ?? 10;
  const method = options.method ?? "linear";
  const [za, zb] = codes(model, a, b);
  const d = za.length;
  const path = new Float32Array(steps * d);
  for (let i = 0; i < steps; i++) {
    const t = i / (steps - 1);
    path.set(method === "spherical" ? slerp(za, zb, t) : za.map((v, j) => v + t * (zb[j] - v)), i * d);
  }
  const out = tf.tidy(() => dec(tf.tensor2d(path, [steps, d])));
  const grid = imageGrid(out, { cols: steps, title: `${method} interpolation, ${steps} steps` });
  out.dispose();
  return grid;
}

/** One latent dimension swept over ±range around x's code (or 0), the others fixed. */
export function traverse(model: LatentModel, x: tf.Tensor | null, options: { dim: number; range?: number; steps?: number }): ImageGrid {
  const dec = decoder(model);
  const d = model.config.latentDim;
  const { dim, range = 3, steps = 11 } = options;
  if (!Number.isInteger(dim) || dim < 0 || dim >= d) throw new Error(`traverse(): dim must be 0…${d - 1}, got ${String(dim)}.`);
  const base = x ? codes(model, x, x)[0] : new Float32Array(d);
  const z = new Float32Array(steps * d);
  for (let i = 0; i < steps; i++) {
    z.set(base, i * d);
    z[i * d + dim] = base[dim] - range + (2 * range * i) / (steps - 1);
  }
  const out = tf.tidy(() => dec(tf.tensor2d(z, [steps, d])));
  const grid = imageGrid(out, { cols: steps, title: `z${dim + 1} from ${(base[dim] - range).toFixed(1)} to ${(base[dim] + range).toFixed(1)}` });
  out.dispose();
  return grid;
}

/** Originals (top row) above their reconstructions (bottom row). */
export function reconstructions(model: LatentModel & { reconstruct(x: tf.Tensor): tf.Tensor }, x: tf.Tensor): ImageGrid {
  const rec = model.reconstruct(x);
  const both = tf.concat([x, rec], 0);
  const grid = imageGrid(both, { cols: x.shape[0], title: `top: ${x.shape[0]} originals · bottom: reconstructions` });
  tf.dispose([rec, both]);
  return grid;
}

/** Squared distances ‖a_i − b_j‖² between rows (flattened), [na, nb], via ‖a‖² − 2a·b + ‖b‖². */
export function squaredDistances(a: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => {
    const fa = tf.reshape(a, [a.shape[0], -1]);
    const fb = tf.reshape(b, [b.shape[0], -1]);
    const d = tf.add(tf.sub(tf.sum(tf.square(fa), 1, true), tf.mul(2, tf.matMul(fa, fb, false, true))), tf.sum(tf.square(fb), 1));
    return tf.relu(d) as tf.Tensor2D;
  });
}

/** Each sample (top) beside its nearest training example (bottom), with the pixel distances. */
export function nearest(samples: tf.Tensor, train: Dataset, options: { n?: number } = {}): ImageGrid & { distances: number[] } {
  const n = Math.min(options.n ?? 8, samples.shape[0]);
  const few = samples.slice(0, n);
  let best = new Float32Array(n).fill(Infinity);
  const bestIdx = new Int32Array(n);
  const chunk = 2000;
  for (let s = 0; s < train.size; s += chunk) {
    const m = Math.min(chunk, train.size - s);
    const part = train.x.slice(s, m);
    const d2 = squaredDistances(few, part);
    const v = d2.dataSync();
    tf.dispose([part, d2]);
    for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) if (v[i * m + j] < best[i]) ((best[i] = v[i * m + j]), (bestIdx[i] = s + j));
  }
  const { x: neighbours, labels } = train.take(bestIdx);
  labels?.dispose();
  const pairs = tf.concat([few, neighbours], 0);
  // The search's |a|² + |b|² − 2a·b loses digits to cancellation (an image's distance to itself
  // came out 0.003): the chosen pairs' distances are measured directly.
  const direct = tf.tidy(() => tf.sqrt(tf.sum(tf.square(tf.sub(tf.reshape(few, [n, -1]), tf.reshape(neighbours, [n, -1]))), 1)));
  const distances = Array.from(direct.dataSync());
  direct.dispose();
  const grid = imageGrid(pairs, { cols: n, range: train.range as [number, number], title: `top: samples · bottom: nearest of ${train.size} training images (L2 ${distances.map((d) => d.toFixed(1)).join(", ")})` });
  tf.dispose([few, neighbours, pairs]);
  return Object.assign(grid, { distances });
}
