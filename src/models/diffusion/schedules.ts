/**
 * Noise schedules: plain tables of numbers, plottable without any network.
 *
 * A schedule of T steps fixes, for t = 1…T, the variance βₜ added at step t and what follows:
 * αₜ = 1 − βₜ, ᾱₜ = Πₛ≤ₜ αₛ (Ho et al. 2020, eq. 4), the signal level √ᾱₜ and the noise level
 * √(1 − ᾱₜ) of xₜ = √ᾱₜ·x₀ + √(1 − ᾱₜ)·ε. Index 0 of every array is t = 1.
 *
 *   const s = lab.schedules.cosine({ steps: 1000 });
 *   s.alphaBar[999]      // ≈ 0: x_T is almost pure noise
 *   s                    // displays as a chart of signal and noise levels
 */
import { MimeBundle } from "../../display/runtime";
import { mime } from "../../display/show";
import { chart } from "../../views/figure";

export interface Schedule {
  name: string;
  /** Number of steps T. */
  steps: number;
  betas: Float64Array;
  alphas: Float64Array;
  alphaBar: Float64Array;
  /** √ᾱₜ: how much of x₀ is left in xₜ. */
  signal: Float64Array;
  /** √(1 − ᾱₜ): how much noise. */
  noise: Float64Array;
  /** log of the signal-to-noise ratio ᾱₜ / (1 − ᾱₜ). */
  logSnr: Float64Array;
}

function checkSteps(steps: unknown, where: string): number {
  if (!Number.isInteger(steps) || (steps as number) < 2) throw new Error(`${where}: steps must be an integer ≥ 2, got ${String(steps)}.`);
  return steps as number;
}

/** A schedule's tables, displayed as a chart of its signal and noise levels. */
export class ScheduleTable implements Schedule {
  readonly steps: number;
  readonly alphas: Float64Array;
  readonly alphaBar: Float64Array;
  readonly signal: Float64Array;
  readonly noise: Float64Array;
  readonly logSnr: Float64Array;

  constructor(
    readonly name: string,
    readonly betas: Float64Array,
  ) {
    const T = betas.length;
    this.steps = T;
    this.alphas = betas.map((b) => 1 - b);
    this.alphaBar = new Float64Array(T);
    let prod = 1;
    for (let t = 0; t < T; t++) this.alphaBar[t] = prod *= this.alphas[t];
    this.signal = this.alphaBar.map(Math.sqrt);
    this.noise = this.alphaBar.map((a) => Math.sqrt(1 - a));
    this.logSnr = this.alphaBar.map((a) => Math.log(a / (1 - a)));
  }

  [mime](): MimeBundle {
    return scheduleChart(this)[mime]() as MimeBundle;
  }
}

/** Fills every derived table from betas. */
export function fromBetas(name: string, betas: Float64Array): ScheduleTable {
  return new ScheduleTable(name, betas);
}

/** DDPM's linear schedule (Ho et al. 2020, §4): β from 10⁻⁴ to 0.02 over 1000 steps, scaled for other T. */
export function linear(options: { steps?: number; betaStart?: number; betaEnd?: number } = {}) {
  const T = checkSteps(options.steps ?? 1000, "schedules.linear()");
  const scale = 1000 / T;
  const b0 = options.betaStart ?? 1e-4 * scale;
  const b1 = options.betaEnd ?? 0.02 * scale;
  return fromBetas("linear", Float64Array.from({ length: T }, (_, i) => b0 + ((b1 - b0) * i) / (T - 1)));
}

/**
 * The cosine schedule (Nichol & Dhariwal 2021, eq. 17): ᾱₜ = f(t)/f(0), f(t) = cos²(((t/T + s)/(1 + s))·π/2),
 * s = 0.008, with βₜ = 1 − ᾱₜ/ᾱₜ₋₁ clipped to 0.999.
 */
export function cosine(options: { steps?: number; offset?: number } = {}) {
  const T = checkSteps(options.steps ?? 1000, "schedules.cosine()");
  const s = options.offset ?? 0.008;
  const f = (t: number) => Math.cos((((t / T + s) / (1 + s)) * Math.PI) / 2) ** 2;
  return fromBetas("cosine", Float64Array.from({ length: T }, (_, i) => Math.min(0.999, 1 - f(i + 1) / f(i))));
}

/**
 * A sigmoid schedule (Chen 2023, "On the importance of noise scheduling", algorithm 1 with
 * start −3, end 3, τ = 1): ᾱ(t) = (σ(end/τ) − σ((t(end − start) + start)/τ)) / (σ(end/τ) − σ(start/τ)),
 * βₜ clipped to 0.999.
 */
export function sigmoid(options: { steps?: number; start?: number; end?: number; tau?: number } = {}) {
  const T = checkSteps(options.steps ?? 1000, "schedules.sigmoid()");
  const { start = -3, end = 3, tau = 1 } = options;
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const vEnd = sig(end / tau);
  const vStart = sig(start / tau);
  const ab = (u: number) => (vEnd - sig((u * (end - start) + start) / tau)) / (vEnd - vStart);
  return fromBetas("sigmoid", Float64Array.from({ length: T }, (_, i) => Math.min(0.999, Math.max(1e-8, 1 - ab((i + 1) / T) / ab(i / T)))));
}

export const schedules = { linear, cosine, sigmoid };
export type ScheduleName = keyof typeof schedules;

/** Signal and noise levels (and ᾱ) against t, for one or several schedules. */
export function scheduleChart(...list: Schedule[]) {
  const traces = list.flatMap((s, i) => {
    const x = Array.from({ length: s.steps }, (_, k) => k + 1);
    const dash = i > 0;
    return [
      { type: "line" as const, name: `${s.name}: signal √ᾱ`, x, y: s.signal, color: "#1f77b4", dash, width: 2 },
      { type: "line" as const, name: `${s.name}: noise √(1−ᾱ)`, x, y: s.noise, color: "#ff7f0e", dash, width: 2 },
    ];
  });
  return chart(
    { title: `noise schedule${list.length > 1 ? "s" : ""}: ${list.map((s) => `${s.name} (T = ${s.steps})`).join(", ")}`, traces, xaxis: { title: "step t" }, yaxis: { title: "level", range: [0, 1.02] }, width: 560, height: 320 },
    list.map((s) => `${s.name} schedule, T = ${s.steps}: ᾱ from ${s.alphaBar[0].toPrecision(4)} to ${s.alphaBar[s.steps - 1].toPrecision(3)}`).join("\n"),
  );
}
