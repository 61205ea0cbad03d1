/**
 * Run cards and comparing runs.
 *
 * `model.card()` says what was run and how it went — config, seed, dataset (name and content
 * hash), backend, package versions, steps, wall time, final losses, latest metrics — so that a
 * number in a notebook can be traced to the run that produced it. `lab.compare([a, b])` overlays
 * the loss curves of several runs and tabulates their numbers: the loss lab's view.
 */
import { backendInfo } from "../backend/ready";
import { version } from "../version";
import { MimeBundle } from "../display/runtime";
import { mime } from "../display/show";
import { Figure, LineTrace, palette, toPlotlyRow, toSvgRow } from "../views/figure";
import { staticImage } from "../views/raster";
import { History, Losses } from "./history";
import type { Model } from "./model";

export interface RunCard {
  family: string;
  config: Record<string, unknown>;
  seed: number;
  data: { name: string; hash: string; size: number; source: string };
  backend: { name: string; reason: string };
  versions: Record<string, string>;
  steps: number;
  epochs: number;
  trainSeconds: number;
  /** Mean of the last 50 steps' losses (less noisy than the last step). */
  finalLosses: Losses;
  /** The latest value of each metric. */
  metrics: Record<string, number>;
  warnings: string[];
  created: string;
}

function versionOf(pkg: string): string {
  try {
    return require(`${pkg}/package.json`).version;
  } catch {
    return "not installed";
  }
}

/** The packages a run's numbers depend on. */
export function versions(): Record<string, string> {
  return {
    latentlab: version,
    "@tensorflow/tfjs": versionOf("@tensorflow/tfjs-core"),
    "@tensorflow/tfjs-backend-wasm": versionOf("@tensorflow/tfjs-backend-wasm"),
    node: process.version,
  };
}

export function runCard(model: Model): RunCard {
  const b = backendInfo();
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(model.history.metrics)) if (v.length) metrics[k] = v[v.length - 1].value;
  return {
    family: model.family,
    config: { ...model.config } as Record<string, unknown>,
    seed: model.config.seed,
    data: { name: model.data.name, hash: model.data.hash, size: model.data.size, source: model.data.source },
    backend: { name: b?.backend ?? "none", reason: b?.reason ?? "" },
    versions: versions(),
    steps: model.stepCount,
    epochs: Number(model.epochs.toFixed(4)),
    trainSeconds: Number(model.trainSeconds.toFixed(3)),
    finalLosses: model.history.recentMean(50),
    metrics,
    warnings: [...model.warnings],
    created: new Date().toISOString(),
  };
}

function fmt(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** A run card that displays itself as a table. */
export class Card {
  constructor(readonly card: RunCard) {}

  toJSON(): RunCard {
    return this.card;
  }

  rows(): [string, string][] {
    const c = this.card;
    return [
      ["family", c.family],
      ["data", `${c.data.name} (${c.data.size} samples, hash ${c.data.hash.slice(0, 12)}…)`],
      ["seed", String(c.seed)],
      ["backend", `${c.backend.name}`],
      ["steps", `${c.steps} (${c.epochs} epochs) in ${c.trainSeconds.toFixed(1)} s`],
      ...Object.entries(c.finalLosses).map(([k, v]) => [`final ${k}`, fmt(v)] as [string, string]),
      ...Object.entries(c.metrics).map(([k, v]) => [k, fmt(v)] as [string, string]),
      ["config", Object.entries(c.config).map(([k, v]) => `${k}=${fmt(v)}`).join(", ")],
      ["versions", Object.entries(c.versions).map(([k, v]) => `${k} ${v}`).join(", ")],
    ];
  }

  [mime](): MimeBundle {
    const rows = this.rows();
    const html = rows.map(([k, v]) => `<tr><th style="text-align:left">${k}</th><td style="text-align:left">${v.replace(/</g, "&lt;")}</td></tr>`).join("");
    return {
      "text/html": `<table>${html}</table>`,
      "text/plain": rows.map(([k, v]) => `${k.padEnd(12)} ${v}`).join("\n"),
      "application/json": this.card,
    };
  }
}

/** Something with a history and a name: a model, or a saved history with a label. */
export interface Run {
  label?: string;
  history: History;
  card?: RunCard;
}

/** Several runs side by side: loss curves overlaid per term, and a table of their numbers. */
export class Comparison {
  constructor(readonly runs: { label: string; history: History; card: RunCard | null }[]) {}

  figures(): Figure[] {
    const terms = [...new Set(this.runs.flatMap((r) => r.history.terms))];
    return terms.map((term) => {
      const traces: LineTrace[] = this.runs.map((r, i) => ({
        type: "line",
        name: r.label,
        x: r.history.steps,
        y: r.history.losses[term] ? r.history.smoothed(term) : [],
        color: palette[i % palette.length],
        width: 2,
      }));
      return { title: `loss ${term} (smoothed)`, traces, xaxis: { title: "step" }, yaxis: { title: term }, width: 460, height: 320, showLegend: true };
    });
  }

  table(): { header: string[]; rows: string[][] } {
    const terms = [...new Set(this.runs.flatMap((r) => r.history.terms))];
    const metrics = [...new Set(this.runs.flatMap((r) => Object.keys(r.card?.metrics ?? {})))];
    const header = ["run", "steps", "seconds", ...terms.map((t) => `final ${t}`), ...metrics];
    const rows = this.runs.map((r) => {
      const last = r.history.recentMean(50);
      return [
        r.label,
        String(r.history.length ? r.history.steps[r.history.length - 1] : 0),
        r.history.length ? r.history.seconds[r.history.length - 1].toFixed(1) : "0",
        ...terms.map((t) => fmt(last[t])),
        ...metrics.map((m) => (r.card && m in r.card.metrics ? fmt(r.card.metrics[m]) : "")),
      ];
    });
    return { header, rows };
  }

  [mime](): MimeBundle[] {
    const figs = this.figures();
    const { header, rows } = this.table();
    const html = `<table><tr>${header.map((h) => `<th>${h}</th>`).join("")}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")}</table>`;
    const text = [header, ...rows].map((r) => r.map((c) => c.padEnd(14)).join(" ")).join("\n");
    return [
      { "application/vnd.plotly.v1+json": toPlotlyRow(figs), ...staticImage(toSvgRow(figs)), "text/plain": `loss curves of ${this.runs.length} runs` },
      { "text/html": html, "text/plain": text },
    ];
  }
}

/** Puts runs side by side: `lab.compare([modelA, modelB])` or `lab.compare({ mine: a, builtin: b })`. */
export function compare(runs: (Model | Run)[] | Record<string, Model | Run>): Comparison {
  const entries: [string | undefined, Model | Run][] = Array.isArray(runs) ? runs.map((r) => [undefined, r]) : Object.entries(runs);
  if (entries.length === 0) throw new Error("compare() needs at least one run.");
  return new Comparison(
    entries.map(([key, r], i) => {
      const isModel = typeof (r as Model).card === "function";
      const card = isModel ? runCard(r as Model) : ((r as Run).card ?? null);
      const label = key ?? (r as Run).label ?? (isModel ? `${(r as Model).family} #${i + 1}` : `run ${i + 1}`);
      return { label, history: r.history, card };
    }),
  );
}
