/**
 * 2-D toy distributions, generated from a seed.
 *
 * ring8 and grid25 are exactly the PacGAN/VEEGAN benchmark mixtures (REFERENCES.md): 8
 * Gaussians on the unit circle with std 0.01, and 25 Gaussians at {−4,−2,0,2,4}² with std
 * 0.05. Their means (`modes`) and std (`modeStd`) travel with the dataset for the mode-coverage
 * metrics. The others follow scikit-learn (moons, circles) and FFJORD (spiral, checkerboard,
 * pinwheel).
 */
import * as tf from "@tensorflow/tfjs";
import { Rng, Seed, rng as makeRng } from "../random/rng";
import { Dataset, checkCount } from "./dataset";

export interface ToyOptions {
  /** Number of points; default 10,000. */
  n?: number;
  /** Default 0. */
  seed?: Seed;
}

export interface NoisyToyOptions extends ToyOptions {
  /** Std of Gaussian noise added to each coordinate. */
  noise?: number;
}

const DEFAULT_N = 10_000;

function count(options: ToyOptions, what: string): number {
  return checkCount(options.n ?? DEFAULT_N, Number.MAX_SAFE_INTEGER, what);
}

function build(
  name: string,
  n: number,
  seed: Seed,
  fill: (r: Rng, i: number) => [number, number, number],
  extra: { modes?: number[][]; modeStd?: number; classes?: string[]; source: string; options?: Record<string, unknown> },
): Dataset {
  const r = makeRng(seed).fork(name);
  const xy = new Float32Array(2 * n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const [x, y, label] = fill(r, i);
    xy[2 * i] = x;
    xy[2 * i + 1] = y;
    labels[i] = label;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of xy) ((lo = Math.min(lo, v)), (hi = Math.max(hi, v)));
  const { options, ...rest } = extra;
  return new Dataset({
    name,
    kind: "points",
    x: tf.tensor2d(xy, [n, 2]),
    labels: extra.classes ? tf.tensor1d(labels, "int32") : null,
    range: [lo, hi],
    ...rest,
    recipe: { loader: name, options: { ...options, n, seed } },
  });
}

/** 8 Gaussians on the unit circle, std 0.01 (PacGAN/VEEGAN). Labels are the mode index. */
export function ring8(options: ToyOptions = {}): Dataset {
  const modes = Array.from({ length: 8 }, (_, k) => [Math.cos((2 * Math.PI * k) / 8), Math.sin((2 * Math.PI * k) / 8)]);
  const std = 0.01;
  return build("ring8", count(options, "ring8"), options.seed ?? 0, (r) => {
    const k = r.int(8);
    return [modes[k][0] + std * r.normal1(), modes[k][1] + std * r.normal1(), k];
  }, { modes, modeStd: std, classes: modes.map((_, k) => `mode ${k}`), source: "8 Gaussians on the unit circle, std 0.01 (PacGAN)" });
}

/** 25 Gaussians at {−4,−2,0,2,4}², std 0.05 (PacGAN/VEEGAN). Labels are the mode index. */
export function grid25(options: ToyOptions = {}): Dataset {
  const modes: number[][] = [];
  for (const a of [-4, -2, 0, 2, 4]) for (const b of [-4, -2, 0, 2, 4]) modes.push([a, b]);
  const std = 0.05;
  return build("grid25", count(options, "grid25"), options.seed ?? 0, (r) => {
    const k = r.int(25);
    return [modes[k][0] + std * r.normal1(), modes[k][1] + std * r.normal1(), k];
  }, { modes, modeStd: std, classes: modes.map((_, k) => `mode ${k}`), source: "5×5 Gaussians at {−4,−2,0,2,4}², std 0.05 (PacGAN)" });
}

/** Two interleaving half circles (scikit-learn's make_moons); noise default 0.05. */
export function moons(options: NoisyToyOptions = {}): Dataset {
  const noise = options.noise ?? 0.05;
  return build("moons", count(options, "moons"), options.seed ?? 0, (r) => {
    const upper = r.int(2);
    const t = Math.PI * r.next();
    const [x, y] = upper ? [Math.cos(t), Math.sin(t)] : [1 - Math.cos(t), 0.5 - Math.sin(t)];
    return [x + noise * r.normal1(), y + noise * r.normal1(), upper ? 0 : 1];
  }, { classes: ["upper", "lower"], source: `two moons, noise ${noise}`, options: { noise } });
}

/** Two concentric circles, radii 1 and 0.5 (scikit-learn's make_circles); noise default 0.03. */
export function circles(options: NoisyToyOptions = {}): Dataset {
  const noise = options.noise ?? 0.03;
  return build("circles", count(options, "circles"), options.seed ?? 0, (r) => {
    const inner = r.int(2);
    const t = 2 * Math.PI * r.next();
    const rad = inner ? 0.5 : 1;
    return [rad * Math.cos(t) + noise * r.normal1(), rad * Math.sin(t) + noise * r.normal1(), inner];
  }, { classes: ["outer", "inner"], source: `two circles, radii 1 and 0.5, noise ${noise}`, options: { noise } });
}

/** Two interleaved spiral arms (FFJORD's 2spirals); noise default 0.1. */
export function spiral(options: NoisyToyOptions = {}): Dataset {
  const noise = options.noise ?? 0.1;
  return build("spiral", count(options, "spiral"), options.seed ?? 0, (r) => {
    const arm = r.int(2);
    const t = Math.sqrt(r.next()) * 3 * Math.PI; // radians along the arm
    const s = arm ? -1 : 1;
    return [(s * -Math.cos(t) * t) / 3 + noise * r.normal1(), (s * Math.sin(t) * t) / 3 + noise * r.normal1(), arm];
  }, { classes: ["arm 0", "arm 1"], source: `two spiral arms, noise ${noise} (FFJORD)`, options: { noise } });
}

/** Uniform on the black squares of a 4×4 checkerboard over [−4, 4]² (FFJORD). */
export function checkerboard(options: ToyOptions = {}): Dataset {
  return build("checkerboard", count(options, "checkerboard"), options.seed ?? 0, (r) => {
    const x1 = 4 * r.next() - 2;
    const x2 = r.next() - 2 * r.int(2) + (Math.floor(x1) & 1);
    return [2 * x1, 2 * x2, 0];
  }, { source: "checkerboard on [−4, 4]² (FFJORD)" });
}

/** Five curved arms (Johnson et al. 2016, as in FFJORD). Labels are the arm. */
export function pinwheel(options: ToyOptions = {}): Dataset {
  const arms = 5;
  const radialStd = 0.3;
  const tangentialStd = 0.1;
  const rate = 0.25;
  return build("pinwheel", count(options, "pinwheel"), options.seed ?? 0, (r) => {
    const k = r.int(arms);
    const a = radialStd * r.normal1() + 1;
    const b = tangentialStd * r.normal1();
    const angle = (2 * Math.PI * k) / arms + rate * Math.exp(a);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    return [2 * (c * a - s * b), 2 * (s * a + c * b), k];
  }, { classes: Array.from({ length: arms }, (_, k) => `arm ${k}`), source: "pinwheel, 5 arms (Johnson et al. 2016)" });
}

/** A distribution you made up or drew: `[[x, y], …]` (or a flat [x0, y0, x1, y1, …]). */
export function points(values: ArrayLike<number> | number[][], options: { name?: string } = {}): Dataset {
  const rows = Array.isArray(values) && Array.isArray(values[0]) ? (values as number[][]) : null;
  let flat: Float32Array;
  if (rows) {
    rows.forEach((p, i) => {
      if (!Array.isArray(p) || p.length !== 2) throw new Error(`points() expects [x, y] pairs; item ${i} is ${JSON.stringify(p)}.`);
    });
    flat = Float32Array.from(rows.flat());
  } else {
    flat = Float32Array.from(values as ArrayLike<number>);
    if (flat.length % 2 !== 0) throw new Error(`points() got ${flat.length} numbers; a flat list needs x, y pairs (an even count).`);
  }
  if (flat.length === 0) throw new Error("points() got no points.");
  const bad = flat.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`points() got a non-finite coordinate at point ${Math.floor(bad / 2)}.`);
  const n = flat.length / 2;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of flat) ((lo = Math.min(lo, v)), (hi = Math.max(hi, v)));
  return new Dataset({ name: options.name ?? "points", kind: "points", x: tf.tensor2d(flat, [n, 2]), range: [lo, hi], source: `${n} points given by the user` });
}
