/**
 * GAN Lab in a notebook (Kahng et al. 2019): one 2-D figure with
 *
 *   - the discriminator's belief σ(D(x)) over the plane as a heatmap (orange = "real");
 *   - real samples (green) and generated samples (purple);
 *   - the generator's manifold: a grid of latent points carried through G, drawn as a warped mesh;
 *   - arrows at generated samples: the direction the generator's loss pushes each of them.
 *
 * A pure function of numbers: the model computes them, this draws them.
 */
import { Figure, LineTrace, Trace } from "./figure";

export interface Gan2dData {
  /** Real points, x0 y0 x1 y1 … */
  real: ArrayLike<number>;
  /** Generated points. */
  fake: ArrayLike<number>;
  /** σ(D) on a regular grid, rows from bottom (y0) to top (y1). */
  surface?: { z: number[][]; x0: number; x1: number; y0: number; y1: number };
  /** G applied to a k×k grid of latent points, row-major: k·k points (x, y pairs). */
  manifold?: { points: ArrayLike<number>; k: number };
  /** Arrows (at x, y, pointing u, v) showing where the generator moves samples. */
  arrows?: { x: ArrayLike<number>; y: ArrayLike<number>; u: ArrayLike<number>; v: ArrayLike<number> };
  title?: string;
  range?: { x: [number, number]; y: [number, number] };
}

const REAL = "#2ca02c";
const FAKE = "#9467bd";

function pairs(a: ArrayLike<number>): { x: Float32Array; y: Float32Array } {
  const n = Math.floor(a.length / 2);
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = a[2 * i];
    y[i] = a[2 * i + 1];
  }
  return { x, y };
}

/** The mesh of a k×k manifold as one line trace (NaN breaks between lines). */
function mesh(points: ArrayLike<number>, k: number): LineTrace {
  const xs: number[] = [];
  const ys: number[] = [];
  const at = (r: number, c: number) => 2 * (r * k + c);
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < k; c++) (xs.push(points[at(r, c)]), ys.push(points[at(r, c) + 1]));
    xs.push(NaN), ys.push(NaN);
  }
  for (let c = 0; c < k; c++) {
    for (let r = 0; r < k; r++) (xs.push(points[at(r, c)]), ys.push(points[at(r, c) + 1]));
    xs.push(NaN), ys.push(NaN);
  }
  return { type: "line", name: "G manifold", x: xs, y: ys, color: "#555", width: 0.7, opacity: 0.6 };
}

export function gan2dFigure(d: Gan2dData): Figure {
  const traces: Trace[] = [];
  if (d.surface) {
    traces.push({ type: "heatmap", name: "σ(D(x))", ...d.surface, zmin: 0, zmax: 1, colors: ["#8e6bbf", "#f7f7f7", "#e0a030"], opacity: 0.8 });
  }
  if (d.manifold) traces.push(mesh(d.manifold.points, d.manifold.k));
  const real = pairs(d.real);
  const fake = pairs(d.fake);
  traces.push({ type: "scatter", name: "real", x: real.x, y: real.y, color: REAL, size: 3, opacity: 0.7 });
  traces.push({ type: "scatter", name: "generated", x: fake.x, y: fake.y, color: FAKE, size: 3, opacity: 0.8 });
  if (d.arrows) traces.push({ type: "arrows", name: "G's gradient", ...d.arrows, color: "#333" });
  return {
    title: d.title,
    traces,
    square: true,
    width: 420,
    height: 420,
    xaxis: d.range ? { range: d.range.x } : undefined,
    yaxis: d.range ? { range: d.range.y } : undefined,
    showLegend: true,
  };
}
