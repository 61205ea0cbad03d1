/**
 * What every model family shares: the training verbs, history, guards, checkpoints and run
 * cards. A family supplies one training step and its parts (networks, optimizers, random
 * streams, a picture of its progress); this class supplies the rest, the same for all.
 *
 *   await model.step();                               // one step; its losses as plain numbers
 *   for await (const s of model.steps(100)) { … }     // step by step, between your own code
 *   await model.train({ steps: 2000, live: true });   // with a dashboard that updates in place
 *
 * Training stops cleanly at a step boundary when the cell is interrupted, when a loss turns
 * NaN or infinite (the offending update is not applied), and it warns when the number of live
 * tensors keeps growing. Everything it learns stays on the model: the next cell can continue.
 */
import * as tf from "@tensorflow/tfjs";
import { Dataset } from "../data/dataset";
import { InterruptedError, MimeBundle, runtime } from "../display/runtime";
import { mime } from "../display/show";
import { Parameters, countParams } from "../nn/module";
import { Rng, rng as makeRng } from "../random/rng";
import { Card, runCard } from "./card";
import { saveModel } from "./checkpoint";
import { Dashboard } from "./dashboard";
import { History, Losses } from "./history";
import { LossOutput, NonFiniteLossError, minimize } from "./optimize";
import { BatchStream } from "./stream";

export interface TrainOptions {
  /** Number of steps to run (or use `epochs`). */
  steps?: number;
  /** Number of passes over the data (rounded to whole steps). */
  epochs?: number;
  /** Show a live dashboard (loss curves, progress, samples); default true inside a notebook. */
  live?: boolean;
  /** Refresh the dashboard's samples panel every this many steps; default about 20 times a run. */
  every?: number;
}

/** What `train()` returns: plain numbers, shown as one line in a notebook. */
export interface TrainSummary {
  steps: number;
  /** Seconds inside training steps. */
  seconds: number;
  /** Wall-clock seconds of the whole call (steps, dashboard, yielding). */
  wallSeconds: number;
  stepsPerSecond: number;
  losses: Losses;
  /** What the live dashboard cost, when there was one. */
  dashboard?: { frames: number; renderMs: number; previews: number; previewMs: number };
}

/** Config every family shares. */
export interface BaseConfig {
  /** Seed of every random draw the model makes (initial weights, batches, noise). */
  seed: number;
  /** Examples per training step. */
  batchSize: number;
}

/** Watches the live tensor count across steps and reports steady growth once. */
class LeakWatch {
  private counts: number[] = [];
  reported = false;

  /** Returns a warning when the count grew at every one of the last 20 steps (after warm-up). */
  observe(step: number, count: number): string | null {
    this.counts.push(count);
    if (this.counts.length > 21) this.counts.shift();
    if (this.reported || step < 5 || this.counts.length < 21) return null;
    for (let i = 1; i < this.counts.length; i++) if (this.counts[i] <= this.counts[i - 1]) return null;
    this.reported = true;
    const grew = this.counts[this.counts.length - 1] - this.counts[0];
    return (
      `Possible tensor leak: the number of live tensors grew at each of the last 20 steps (+${grew}, now ${count}). ` +
      `A loss or step function is creating tensors it does not dispose; wrap it in tf.tidy().`
    );
  }
}

export abstract class Model<C extends BaseConfig = BaseConfig> {
  /** The family's name, e.g. "gan" (used by checkpoints to rebuild the model). */
  abstract readonly family: string;
  readonly config: Readonly<C>;
  readonly data: Dataset;
  readonly history = new History();
  /** Steps taken so far. */
  stepCount = 0;
  /** Seconds spent inside steps so far. */
  trainSeconds = 0;
  /** Warnings raised during training (also printed once). */
  readonly warnings: string[] = [];
  /** The random stream all of the model's randomness forks from. */
  protected readonly rng: Rng;
  protected readonly stream: BatchStream;
  private readonly leaks = new LeakWatch();
  private disposed = false;

  constructor(config: C, data: Dataset) {
    this.config = Object.freeze({ ...config });
    this.data = data;
    this.rng = makeRng(config.seed);
    this.stream = new BatchStream(data, config.batchSize, config.seed);
  }

  // ----- what a family provides -------------------------------------------------------------

  /** One training step (one or more optimizer updates); returns named losses. */
  protected abstract trainStep(what?: string): Losses;
  /** The model's networks by name. */
  abstract networks(): Record<string, Parameters>;
  /** The optimizers by name (their state is checkpointed). */
  protected abstract optimizers(): Record<string, tf.Optimizer>;
  /** Random streams the model draws from during training, by name (checkpointed). */
  protected abstract streams(): Record<string, Rng>;
  /** A picture of the model now, for the dashboard (sample grid, 2-D view). */
  abstract preview(): unknown;
  /** Extra variables that are neither network weights nor optimizer state (e.g. EMA copies). */
  protected extraVariables(): Map<string, tf.Variable> {
    return new Map();
  }

  // ----- helpers for families ----------------------------------------------------------------

  /** One guarded optimizer update (the loss is checked before the gradients are applied). */
  protected update(optimizer: tf.Optimizer, f: () => LossOutput | tf.Scalar, vars: tf.Variable[], name: string) {
    return minimize(optimizer, f, vars, name, this.stepCount + 1);
  }

  /** The next training batch (the caller disposes it). */
  protected nextBatch(): { x: tf.Tensor; labels: tf.Tensor1D | null } {
    return this.stream.next();
  }

  // ----- the verbs ---------------------------------------------------------------------------

  /** Runs one training step and returns its losses. */
  async step(what?: string): Promise<Losses> {
    return this.stepSync(what);
  }

  private stepSync(what?: string): Losses {
    this.assertAlive();
    if (runtime().signal.aborted) {
      throw new InterruptedError(
        `Interrupted before step ${this.stepCount + 1}. The model keeps its weights, optimizer state and history; continue with model.train(...).`,
      );
    }
    const t0 = performance.now();
    let losses: Losses;
    try {
      losses = this.trainStep(what);
    } finally {
      this.trainSeconds += (performance.now() - t0) / 1000;
    }
    this.stepCount += 1;
    this.history.record(this.stepCount, this.trainSeconds, losses);
    const leak = this.leaks.observe(this.stepCount, tf.memory().numTensors);
    if (leak) this.warn(leak);
    return losses;
  }

  /** Steps one at a time: `for await (const losses of model.steps(100)) { … }`. */
  async *steps(n: number, what?: string): AsyncGenerator<Losses & { step: number }, void, undefined> {
    checkCount(n, "steps(n)");
    for (let i = 0; i < n; i++) {
      const losses = this.stepSync(what);
      yield { ...losses, step: this.stepCount };
      await yieldToEventLoop();
    }
  }

  /** Trains for `steps` (or `epochs`), optionally with a live dashboard; resumable from the next cell. */
  async train(options: TrainOptions = {}): Promise<TrainSummary> {
    this.assertAlive();
    const total = this.stepsFor(options);
    const live = options.live ?? runtime().host !== "node";
    const dashboard = live ? new Dashboard(this, total, options.every ?? Math.max(1, Math.round(total / 20))) : null;
    const start = { step: this.stepCount, seconds: this.trainSeconds, wall: performance.now() };
    let done = 0;
    try {
      for (; done < total; done++) {
        this.stepSync();
        dashboard?.tick(done + 1);
        await yieldToEventLoop();
      }
    } catch (e) {
      if (e instanceof NonFiniteLossError) this.warn(e.message);
      throw e;
    } finally {
      dashboard?.close(done);
    }
    const seconds = this.trainSeconds - start.seconds;
    const wallSeconds = (performance.now() - start.wall) / 1000;
    const summary: TrainSummary = {
      steps: done,
      seconds,
      wallSeconds,
      stepsPerSecond: done / Math.max(wallSeconds, 1e-9),
      losses: this.history.recentMean(Math.min(50, done)),
      dashboard: dashboard ? { ...dashboard.stats } : undefined,
    };
    return Object.defineProperty(summary, mime, { value: () => summaryBundle(this, summary), enumerable: false });
  }

  private stepsFor(options: TrainOptions): number {
    if (options.steps !== undefined && options.epochs !== undefined) {
      throw new Error("train() takes steps or epochs, not both.");
    }
    if (options.epochs !== undefined) {
      if (!(options.epochs > 0)) throw new Error(`train({ epochs }) must be positive, got ${options.epochs}.`);
      return Math.max(1, Math.round(options.epochs * this.stream.perEpoch));
    }
    if (options.steps === undefined) throw new Error("train() needs { steps: N } or { epochs: N }.");
    return checkCount(options.steps, "train({ steps })");
  }

  /** Epochs completed, as a fraction. */
  get epochs(): number {
    return this.stream.epochs;
  }

  protected warn(message: string): void {
    this.warnings.push(message);
    process.stderr.write(`Warning: ${message}\n`);
  }

  // ----- cards and checkpoints -------------------------------------------------------------------

  /** What was run and how it went (config, seed, data hash, backend, versions, losses, metrics). */
  card(): Card {
    return new Card(runCard(this));
  }

  /** Saves weights, optimizer state, step, random streams, config and history to a folder. */
  async save(dir: string): Promise<string> {
    this.assertAlive();
    return saveModel(this, dir);
  }

  /** Records a metric in the history (and so in the run card). */
  recordMetric(name: string, value: number): void {
    this.history.recordMetric(name, this.stepCount, value);
  }

  // ----- parts, for checkpoints and summaries -------------------------------------------------

  /** Every saved variable by path: network weights, network state, and extras. */
  variables(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const net of Object.values(this.networks())) {
      for (const [k, v] of net.variables()) out.set(k, v);
      for (const [k, v] of net.state()) out.set(k, v);
    }
    for (const [k, v] of this.extraVariables()) out.set(k, v);
    return out;
  }

  /** Trainable parameters per network. */
  parameterCounts(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.networks()).map(([k, m]) => [k, countParams(m)]));
  }

  /** @internal for checkpoints */
  _optimizers(): Record<string, tf.Optimizer> {
    return this.optimizers();
  }

  /** @internal for checkpoints */
  _streams(): Record<string, Rng> {
    return { ...this.streams() };
  }

  /** @internal for checkpoints */
  _batchStream(): BatchStream {
    return this.stream;
  }

  /** Frees every tensor the model owns (not its dataset). */
  dispose(): void {
    if (this.disposed) return;
    for (const net of Object.values(this.networks())) net.dispose();
    for (const v of this.extraVariables().values()) if (!v.isDisposed) v.dispose();
    for (const opt of Object.values(this.optimizers())) opt.dispose();
    this.disposed = true;
  }

  protected assertAlive(): void {
    if (this.disposed) throw new Error(`This ${this.family} model was disposed; build a new one or load a checkpoint.`);
  }

  /** A one-paragraph summary. */
  describe(): string {
    const params = Object.entries(this.parameterCounts()).map(([k, n]) => `${k} ${n.toLocaleString("en-US")}`).join(", ");
    const last = this.history.length ? ` · last losses ${formatLosses(this.history.last())}` : "";
    return `${this.family} on ${this.data.name} · parameters: ${params} · ${this.stepCount} steps (${this.epochs.toFixed(2)} epochs)${last}`;
  }

  [mime](): MimeBundle {
    const rows = Object.entries(this.parameterCounts()).map(([k, n]) => `<tr><td>${k}</td><td style="text-align:right">${n.toLocaleString("en-US")}</td></tr>`);
    const cfg = Object.entries(this.config).map(([k, v]) => `<tr><td>${k}</td><td><code>${escapeHtml(JSON.stringify(v))}</code></td></tr>`);
    return {
      "text/html":
        `<div><b>${this.family}</b> on <b>${escapeHtml(this.data.name)}</b> — ${this.stepCount} steps` +
        `<table><tr><th>network</th><th>parameters</th></tr>${rows.join("")}</table>` +
        `<details><summary>config</summary><table>${cfg.join("")}</table></details></div>`,
      "text/plain": this.describe(),
    };
  }
}

function summaryBundle(model: Model, s: TrainSummary): MimeBundle {
  const dash = s.dashboard ? ` · dashboard ${((100 * (s.dashboard.renderMs + s.dashboard.previewMs)) / 1000 / Math.max(s.wallSeconds, 1e-9)).toFixed(1)}% of the time` : "";
  const text =
    `trained ${s.steps} steps in ${s.wallSeconds.toFixed(1)} s (${s.stepsPerSecond.toFixed(1)} steps/s), now at step ${model.stepCount}` +
    ` · mean of the last ${Math.min(50, s.steps)}: ${formatLosses(s.losses)}${dash}`;
  return { "text/plain": text };
}

export function formatLosses(l: Losses): string {
  return Object.entries(l).map(([k, v]) => `${k} ${Number.isFinite(v) ? v.toPrecision(4) : v}`).join(", ");
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function checkCount(n: unknown, what: string): number {
  if (!Number.isInteger(n) || (n as number) < 0) throw new Error(`${what} needs a whole number ≥ 0, got ${String(n)}.`);
  return n as number;
}

/** Lets timers, interrupts and display updates run between steps. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Merges a preset and user options over defaults, rejecting unknown keys. */
export function resolveConfig<T extends object>(
  family: string,
  defaults: T,
  presets: Record<string, Partial<T>>,
  options: Partial<T> & { preset?: string },
): T {
  const { preset, ...rest } = options as Partial<T> & { preset?: string };
  if (preset !== undefined && !(preset in presets)) {
    throw new Error(`${family}: unknown preset "${preset}". Presets: ${Object.keys(presets).join(", ")}.`);
  }
  for (const key of Object.keys(rest)) {
    if (!(key in defaults) && key !== "data") {
      throw new Error(`${family}: unknown option "${key}". Options: ${Object.keys(defaults).join(", ")}.`);
    }
  }
  const merged = { ...defaults, ...(preset ? presets[preset] : {}) } as Record<string, unknown>;
  for (const [k, v] of Object.entries(rest)) if (v !== undefined && k !== "data") merged[k] = v;
  return merged as T;
}
