/**
 * Seeded randomness for everything LatentLab does.
 *
 * tfjs seeds are per call and stateless (the same seed gives the same tensor every time, and
 * seed 0 means "unseeded"), so LatentLab keeps its own generator: `lab.rng(seed)` is a
 * xoshiro128** stream (Blackman & Vigna, 2018) that draws numbers, shuffles, fills tensors, and
 * hands tfjs a fresh non-zero seed whenever a tfjs op wants one.
 *
 *   const rng = lab.rng(42);
 *   const d = rng.fork("discriminator");   // its draws never shift the generator's
 *   const z = rng.normal([16, 2]);          // a tf.Tensor, reproducible
 *
 * `fork(name)` depends only on the parent's key and the name, not on how much the parent has
 * drawn, so adding a draw in one component never changes another component's numbers.
 */
import * as tf from "@tensorflow/tfjs";

/** The serialisable state of a stream: enough to resume it exactly (checkpoints use it). */
export interface RngState {
  /** The path of seeds and fork names this stream was made from, e.g. "42/discriminator". */
  key: string;
  /** The four 32-bit words of xoshiro128**. */
  words: [number, number, number, number];
  /** A second normal deviate left over from the last Box–Muller pair, or null. */
  spare: number | null;
}

/** A seed as users give it: an integer, or a string (hashed). `42` and `"42"` are the same stream. */
export type Seed = number | string;

/** 32-bit FNV-1a, used to turn keys into seeds. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32: expands one 32-bit seed into well-mixed words for the xoshiro state. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function checkSeed(seed: unknown): Seed {
  if (typeof seed === "string") return seed;
  if (typeof seed !== "number" || !Number.isFinite(seed) || !Number.isInteger(seed)) {
    throw new Error(
      `rng() expects an integer or string seed, got ${String(seed)}. ` +
        `Pass a whole number such as lab.rng(42).`,
    );
  }
  return seed;
}

function checkShape(shape: readonly number[], where: string): number {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`${where} expects a shape of non-negative integers, got [${String(shape)}].`);
  }
  return shape.reduce((a, b) => a * b, 1);
}

/** A seeded random stream. Make one with `lab.rng(seed)`. */
export class Rng {
  readonly key: string;
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  /** Use `lab.rng(seed)`; the key is the seed (or the fork path) as text. */
  constructor(key: string) {
    this.key = key;
    const mix = splitmix32(fnv1a(this.key));
    this.s0 = mix();
    this.s1 = mix();
    this.s2 = mix();
    this.s3 = mix();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** A child stream named `name`; the same parent key and name always give the same child. */
  fork(name: string): Rng {
    if (typeof name !== "string" || name.length === 0) {
      throw new Error(`rng.fork(name) expects a non-empty string, got ${String(name)}.`);
    }
    return new Rng(`${this.key}/${name}`);
  }

  /** The next 32-bit unsigned integer (xoshiro128**). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform number in [0, 1) with 32 bits of randomness. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A uniform number in [low, high). */
  uniform1(low = 0, high = 1): number {
    return low + (high - low) * this.next();
  }

  /** A standard normal number (Box–Muller, caching the second deviate). */
  normal1(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** An integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) {
      throw new Error(`rng.int(n) expects a positive integer n, got ${String(n)}.`);
    }
    return Math.floor(this.next() * n);
  }

  /** A fresh non-zero seed for a tfjs op that takes one (tfjs treats 0 as "unseeded"). */
  seed(): number {
    let s = 0;
    while (s === 0) s = this.nextUint32() & 0x7fffffff;
    return s;
  }

  /** A random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return out;
  }

  /** Fills a Float32Array with standard normals scaled by `std` and shifted by `mean`. */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal1();
    return out;
  }

  /** Fills a Float32Array with uniforms in [low, high). */
  fillUniform(out: Float32Array, low = 0, high = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = low + (high - low) * this.next();
    return out;
  }

  /** A tensor of normals N(mean, std²), shaped `shape`. */
  normal(shape: number[], mean = 0, std = 1): tf.Tensor {
    const size = checkShape(shape, "rng.normal(shape)");
    return tf.tensor(this.fillNormal(new Float32Array(size), mean, std), shape, "float32");
  }

  /** A tensor of uniforms in [low, high), shaped `shape`. */
  uniform(shape: number[], low = 0, high = 1): tf.Tensor {
    const size = checkShape(shape, "rng.uniform(shape)");
    return tf.tensor(this.fillUniform(new Float32Array(size), low, high), shape, "float32");
  }

  /** The stream's exact position, for checkpoints. */
  state(): RngState {
    return { key: this.key, words: [this.s0, this.s1, this.s2, this.s3], spare: this.spare };
  }

  /** Moves this stream to a saved position (from `state()`). */
  setState(state: RngState): void {
    if (state.key !== this.key) {
      throw new Error(
        `rng.setState() got the state of stream "${state.key}", but this stream is "${this.key}". ` +
          `Restore a state into the stream it was taken from.`,
      );
    }
    [this.s0, this.s1, this.s2, this.s3] = state.words.map((w) => w | 0) as [number, number, number, number];
    this.spare = state.spare;
  }

  /** A stream restored from a saved state. */
  static fromState(state: RngState): Rng {
    const r = new Rng(state.key);
    r.setState(state);
    return r;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A seeded random stream: `lab.rng(42)`, or `lab.rng("experiment-a")`. */
export function rng(seed: Seed): Rng {
  return new Rng(String(checkSeed(seed)));
}

/** Accepts what users pass as `seed` or `rng` in any config and returns a stream. */
export function toRng(seedOrRng: Seed | Rng | undefined, fallbackName: string): Rng {
  if (seedOrRng instanceof Rng) return seedOrRng;
  if (seedOrRng === undefined) {
    throw new Error(
      `${fallbackName} needs a seed or an rng, so that its results can be reproduced. ` +
        `Pass { seed: 0 } (any integer) or { rng: lab.rng(0) }.`,
    );
  }
  return new Rng(String(checkSeed(seedOrRng)));
}
