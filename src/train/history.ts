/**
 * A model's training history: every step's losses and when it finished, plus metrics taken
 * now and then. Plain numbers, serialisable as JSON, plottable as is.
 */

export type Losses = Record<string, number>;

export interface HistoryJSON {
  steps: number[];
  seconds: number[];
  losses: Record<string, number[]>;
  metrics: Record<string, { step: number; value: number }[]>;
}

export class History {
  /** The step number of each entry (1-based). */
  readonly steps: number[] = [];
  /** Training time in seconds when each step finished (excluding time between `train` calls). */
  readonly seconds: number[] = [];
  /** One array per loss term, aligned with `steps` (NaN where a step did not report the term). */
  readonly losses: Record<string, number[]> = {};
  /** Metrics by name: sparse (step, value) pairs. */
  readonly metrics: Record<string, { step: number; value: number }[]> = {};

  get length(): number {
    return this.steps.length;
  }

  /** Names of every loss term seen so far. */
  get terms(): string[] {
    return Object.keys(this.losses);
  }

  record(step: number, seconds: number, losses: Losses): void {
    const n = this.steps.length;
    this.steps.push(step);
    this.seconds.push(seconds);
    for (const [k, v] of Object.entries(losses)) {
      if (!this.losses[k]) this.losses[k] = new Array(n).fill(NaN);
    }
    for (const k of Object.keys(this.losses)) this.losses[k].push(k in losses ? losses[k] : NaN);
  }

  recordMetric(name: string, step: number, value: number): void {
    (this.metrics[name] ??= []).push({ step, value });
  }

  /** The last value of each loss term. */
  last(): Losses {
    const out: Losses = {};
    for (const [k, v] of Object.entries(this.losses)) out[k] = v[v.length - 1];
    return out;
  }

  /** Exponential moving average of a term (bias-corrected), as drawn on the dashboard. */
  smoothed(term: string, weight = 0.95): number[] {
    const v = this.losses[term] ?? [];
    const out: number[] = [];
    let avg = 0;
    let norm = 0;
    for (const x of v) {
      if (Number.isFinite(x)) {
        avg = weight * avg + (1 - weight) * x;
        norm = weight * norm + (1 - weight);
      }
      out.push(norm > 0 ? avg / norm : NaN);
    }
    return out;
  }

  /** Mean of each term over the last `n` steps. */
  recentMean(n = 50): Losses {
    const out: Losses = {};
    for (const [k, v] of Object.entries(this.losses)) {
      const tail = v.slice(-n).filter(Number.isFinite);
      out[k] = tail.length ? tail.reduce((a, b) => a + b, 0) / tail.length : NaN;
    }
    return out;
  }

  toJSON(): HistoryJSON {
    return { steps: this.steps, seconds: this.seconds, losses: this.losses, metrics: this.metrics };
  }

  /** Replaces this history's contents with a saved one (in place). */
  load(json: HistoryJSON): this {
    this.steps.length = 0;
    this.seconds.length = 0;
    for (const k of Object.keys(this.losses)) delete this.losses[k];
    for (const k of Object.keys(this.metrics)) delete this.metrics[k];
    this.steps.push(...json.steps);
    this.seconds.push(...json.seconds);
    for (const [k, v] of Object.entries(json.losses)) this.losses[k] = v.map((x) => (x === null ? NaN : x));
    for (const [k, v] of Object.entries(json.metrics ?? {})) this.metrics[k] = [...v];
    return this;
  }

  static fromJSON(json: HistoryJSON): History {
    return new History().load(json);
  }
}
