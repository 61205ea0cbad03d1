/**
 * A dataset: samples as one tensor, optional integer labels, the value range stated, a name
 * and a content hash for run cards, and seeded batching.
 *
 *   const data = lab.data.ring8({ n: 10_000, seed: 0 });
 *   for (const { x } of data.batches({ batchSize: 256, seed: 1 })) { … }  // x is disposed for you
 *
 * Batching is a pure function of (seed, epoch): epoch e visits every sample once, in the order
 * of a permutation drawn from `rng(seed).fork("epoch-e")`, so training can resume mid-epoch.
 */
import * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";
import { MimeBundle } from "../display/runtime";
import { mime } from "../display/show";
import { Rng, Seed, rng as makeRng } from "../random/rng";
import { chart, palette } from "../views/figure";
import { imageGrid } from "../views/images";

export type DatasetKind = "points" | "images" | "text";

export interface BatchOptions {
  /** Examples per batch. */
  batchSize: number;
  /** Seed of the shuffling; default 0. */
  seed?: Seed;
  /** Shuffle each epoch; default true. */
  shuffle?: boolean;
  /** Drop a last, smaller batch; default false. */
  dropLast?: boolean;
  /** Which epoch's order to use; default 0. */
  epoch?: number;
  /** Start at this batch of the epoch (to resume); default 0. */
  startBatch?: number;
}

export interface Batch {
  /** The batch's samples [b, ...]. Disposed when the next batch is taken or the loop ends. */
  x: tf.Tensor;
  /** Their labels [b] (int32), when the dataset has labels. */
  labels: tf.Tensor1D | null;
  /** Which samples these are. */
  indices: Int32Array;
  /** Position: epoch and batch number within it. */
  epoch: number;
  batch: number;
}

/** What a text dataset knows about its characters. */
export interface Vocabulary {
  /** Token strings by id; id 0 is "." and marks both the start and the end of a string. */
  tokens: string[];
  size: number;
  encode(s: string): number[];
  decode(ids: ArrayLike<number>): string;
}

export interface DatasetInit {
  name: string;
  kind: DatasetKind;
  x: tf.Tensor;
  labels?: tf.Tensor1D | null;
  range: [number, number];
  /** Class names by label. */
  classes?: string[];
  /** Where this came from, in words (shown in run cards). */
  source: string;
  /** For toys: the mixture's means and standard deviation (used by mode-coverage metrics). */
  modes?: number[][];
  modeStd?: number;
  /** For text. */
  strings?: string[];
  vocab?: Vocabulary;
  /** How to rebuild it: the loader's name under lab.data and its options (for checkpoints). */
  recipe?: { loader: string; options: Record<string, unknown> };
}

function positiveInt(v: unknown, what: string): number {
  if (!Number.isInteger(v) || (v as number) <= 0) throw new Error(`${what} must be a positive integer, got ${String(v)}.`);
  return v as number;
}

export class Dataset {
  readonly name: string;
  readonly kind: DatasetKind;
  /** All samples: [n, 2] points, [n, h, w, c] images, or [n, length] int32 token ids. */
  readonly x: tf.Tensor;
  readonly labels: tf.Tensor1D | null;
  /** The range sample values lie in (images: [0, 1]). */
  readonly range: [number, number];
  readonly classes?: string[];
  readonly source: string;
  readonly modes?: number[][];
  readonly modeStd?: number;
  readonly strings?: string[];
  readonly vocab?: Vocabulary;
  readonly recipe?: { loader: string; options: Record<string, unknown> };
  private cachedHash: string | null = null;

  constructor(init: DatasetInit) {
    this.name = init.name;
    this.kind = init.kind;
    this.x = init.x;
    this.labels = init.labels ?? null;
    this.range = init.range;
    this.classes = init.classes;
    this.source = init.source;
    this.modes = init.modes;
    this.modeStd = init.modeStd;
    this.strings = init.strings;
    this.vocab = init.vocab;
    this.recipe = init.recipe;
    if (this.labels && this.labels.shape[0] !== this.x.shape[0]) {
      throw new Error(`${this.name}: ${this.x.shape[0]} samples but ${this.labels.shape[0]} labels.`);
    }
  }

  /** Number of samples. */
  get size(): number {
    return this.x.shape[0];
  }

  /** Shape of one sample. */
  get sampleShape(): number[] {
    return this.x.shape.slice(1);
  }

  /** SHA-256 of the samples, labels and name: two datasets with the same hash hold the same data. */
  get hash(): string {
    if (this.cachedHash === null) {
      const h = createHash("sha256");
      h.update(`${this.name}|${this.x.shape}|${this.x.dtype}|`);
      const xs = this.x.dataSync();
      h.update(Buffer.from(xs.buffer, xs.byteOffset, xs.byteLength));
      if (this.labels) {
        const ls = this.labels.dataSync();
        h.update(Buffer.from(ls.buffer, ls.byteOffset, ls.byteLength));
      }
      this.cachedHash = h.digest("hex");
    }
    return this.cachedHash;
  }

  /** The order in which epoch `epoch` visits the samples. */
  order(options: { seed?: Seed; shuffle?: boolean; epoch?: number } = {}): Int32Array {
    const { seed = 0, shuffle = true, epoch = 0 } = options;
    if (!shuffle) return Int32Array.from({ length: this.size }, (_, i) => i);
    return makeRng(seed).fork(`epoch-${epoch}`).permutation(this.size);
  }

  /** Number of batches in one epoch. */
  batchesPerEpoch(batchSize: number, dropLast = false): number {
    return dropLast ? Math.floor(this.size / batchSize) : Math.ceil(this.size / batchSize);
  }

  /**
   * One epoch of batches. Each batch's tensors are disposed when the next batch is taken, or
   * when the loop ends (also on `break`); keep what you need with `tf.keep` or `clone()`.
   */
  *batches(options: BatchOptions): Generator<Batch, void, undefined> {
    const batchSize = positiveInt(options.batchSize, "batches({ batchSize })");
    const { dropLast = false, epoch = 0, startBatch = 0 } = options;
    if (batchSize > this.size && dropLast) {
      throw new Error(`batchSize ${batchSize} is larger than ${this.name}'s ${this.size} samples, and dropLast leaves no batch.`);
    }
    const order = this.order(options);
    const count = this.batchesPerEpoch(batchSize, dropLast);
    let current: Batch | null = null;
    try {
      for (let b = startBatch; b < count; b++) {
        const indices = order.subarray(b * batchSize, Math.min((b + 1) * batchSize, this.size));
        if (current) tf.dispose([current.x, current.labels].filter(Boolean) as tf.Tensor[]);
        current = { ...this.take(indices), indices, epoch, batch: b };
        yield current;
      }
    } finally {
      if (current) tf.dispose([current.x, current.labels].filter(Boolean) as tf.Tensor[]);
    }
  }

  /** The samples (and labels) at `indices`, as new tensors the caller owns. */
  take(indices: ArrayLike<number>): { x: tf.Tensor; labels: tf.Tensor1D | null } {
    for (let i = 0; i < indices.length; i++) {
      const k = indices[i];
      if (!Number.isInteger(k) || k < 0 || k >= this.size) {
        throw new Error(`${this.name} has samples 0…${this.size - 1}; index ${k} is out of range.`);
      }
    }
    const idx = tf.tensor1d(Int32Array.from(indices), "int32");
    const x = tf.gather(this.x, idx);
    const labels = this.labels ? (tf.gather(this.labels, idx) as tf.Tensor1D) : null;
    idx.dispose();
    return { x, labels };
  }

  /** `n` random samples (without replacement), as a tensor the caller owns. */
  sample(n: number, seed: Seed | Rng = 0): tf.Tensor {
    positiveInt(n, "sample(n)");
    if (n > this.size) throw new Error(`sample(${n}) asks for more than ${this.name}'s ${this.size} samples.`);
    const r = seed instanceof Rng ? seed : makeRng(seed);
    const { x, labels } = this.take(r.permutation(this.size).subarray(0, n));
    labels?.dispose();
    return x;
  }

  /** Frees the dataset's tensors. */
  dispose(): void {
    this.x.dispose();
    this.labels?.dispose();
  }

  /** One line for run cards and summaries. */
  describe(): string {
    const labels = this.classes ? `, ${this.classes.length} classes` : "";
    const range = this.range.map((v) => Number(v.toPrecision(4))).join(", ");
    return `${this.name}: ${this.size} ${this.kind} of shape [${this.sampleShape}] in [${range}]${labels} (${this.source})`;
  }

  [mime](): MimeBundle {
    if (this.kind === "points") {
      const n = Math.min(this.size, 2000);
      const pts = this.x.slice([0, 0], [n, 2]);
      const xy = pts.dataSync();
      pts.dispose();
      const labels = this.labels ? this.labels.slice(0, n).dataSync() : undefined;
      const fig = chart(
        {
          title: this.name,
          traces: [{
            type: "scatter",
            x: Float32Array.from({ length: n }, (_, i) => xy[2 * i]),
            y: Float32Array.from({ length: n }, (_, i) => xy[2 * i + 1]),
            groups: labels,
            color: palette[0],
            size: 3,
          }],
          square: true,
          width: 420,
          height: 420,
        },
        this.describe(),
      );
      return fig[mime]();
    }
    if (this.kind === "images") {
      // Evenly spaced samples, so that a dataset sorted by class shows every class.
      const n = Math.min(this.size, 32);
      const step = Math.floor(this.size / n);
      const { x, labels } = this.take(Int32Array.from({ length: n }, (_, i) => i * step));
      labels?.dispose();
      const grid = imageGrid(x, { cols: 16, range: this.range, title: this.describe() });
      x.dispose();
      return grid[mime]();
    }
    const lines = (this.strings ?? []).slice(0, 12).join("\n");
    return { "text/plain": `${this.describe()}\n${lines}\n…` };
  }
}

/** Checks the `n` a user asked for against what a source holds. */
export function checkCount(n: number | undefined, available: number, what: string): number {
  if (n === undefined) return available;
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${what}: n must be a positive integer, got ${String(n)}.`);
  if (n > available) throw new Error(`${what}: n = ${n} is more than the ${available} samples available; use n ≤ ${available}.`);
  return n;
}
