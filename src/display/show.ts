/**
 * `lab.show(x)` and `lab.live()`: the only way LatentLab (and a user's cell) puts rich output
 * in a notebook.
 *
 * Anything can be shown. An object that implements the display protocol — a method under the
 * symbol `lab.mime` returning a MIME bundle — shows that bundle; LatentLab's own objects (image
 * batches, charts, models, datasets) all do. Other values show as text.
 *
 *   class Note { [lab.mime]() { return { "text/markdown": "**hello**", "text/plain": "hello" }; } }
 *   lab.show(new Note());
 */
import { inspect } from "node:util";
import { MimeBundle, runtime } from "./runtime";

/** The display protocol: `[lab.mime](): MimeBundle`. Shared across copies of the library. */
export const mime: unique symbol = Symbol.for("latentlab.mime") as never;

/**
 * Something that renders itself as a MIME bundle — or as several, shown as consecutive outputs
 * (e.g. a chart and a table).
 */
export interface Displayable {
  [mime](): MimeBundle | MimeBundle[];
}

export function isDisplayable(x: unknown): x is Displayable {
  return x !== null && (typeof x === "object" || typeof x === "function") && typeof (x as Displayable)[mime] === "function";
}

/** Renders any value as MIME bundles (each always with text/plain); usually one. */
export function toBundles(x: unknown): MimeBundle[] {
  if (isDisplayable(x)) {
    const out = x[mime]();
    return (Array.isArray(out) ? out : [out]).map((b) => {
      const bundle = { ...b };
      if (typeof bundle["text/plain"] !== "string") bundle["text/plain"] = inspect(x, { depth: 1 });
      return bundle;
    });
  }
  if (isTensorLike(x)) return [{ "text/plain": x.toString() }];
  if (typeof x === "string") return [{ "text/plain": x }];
  return [{ "text/plain": inspect(x, { depth: 2, maxArrayLength: 20 }) }];
}

/** The first (usually only) bundle of `x`. */
export function toBundle(x: unknown): MimeBundle {
  return toBundles(x)[0];
}

function isTensorLike(x: unknown): x is { toString(): string } {
  return x !== null && typeof x === "object" && "dataId" in x && "shape" in x && "dtype" in x && typeof (x as { dataSync?: unknown }).dataSync === "function";
}

/** Shows `x` as rich output: one output with every MIME type it has (or several, for composites). */
export function show(x: unknown): void {
  for (const data of toBundles(x)) runtime().sink.display({ data });
}

/** Clears the cell's output; with `wait`, only when the next output arrives (no flicker). */
export function clearOutput(wait = false): void {
  runtime().sink.clear(wait);
}

let nextId = 0;
function newDisplayId(): string {
  nextId += 1;
  return `latentlab-${process.pid.toString(36)}-${Date.now().toString(36)}-${nextId}`;
}

export interface LiveOptions {
  /** Least time between two updates sent to the front end, in ms; default 250. */
  minIntervalMs?: number;
  /** Most bytes per second this output may send (the notebook server drops >1 MB/s); default 400 kB. */
  maxBytesPerSecond?: number;
}

/** A value, or a function producing it (rendered only when an update is actually sent). */
export type LiveValue = unknown | (() => unknown);

/** One output that updates in place. */
export interface Live {
  readonly displayId: string;
  /** Replaces the output with `x` (throttled: a skipped update is sent later if it is the last). */
  update(x: LiveValue): void;
  /** Sends the pending update now, if any. */
  flush(): void;
  /** Sends the last pending update and stops the timer; further updates are ignored. */
  close(): void;
}

function bundleSize(b: MimeBundle): number {
  let n = 0;
  for (const v of Object.values(b)) n += typeof v === "string" ? v.length : JSON.stringify(v).length;
  return n;
}

class LiveOutput implements Live {
  readonly displayId = newDisplayId();
  private shown = false;
  private closed = false;
  private pending: { value: LiveValue } | null = null;
  private nextAllowed = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly minInterval: number;
  private readonly maxRate: number;
  private readonly onCellEnd = () => this.close();

  constructor(options: LiveOptions) {
    this.minInterval = options.minIntervalMs ?? 250;
    this.maxRate = options.maxBytesPerSecond ?? 400_000;
    runtime().endOfCell.add(this.onCellEnd);
  }

  update(x: LiveValue): void {
    if (this.closed) return;
    this.pending = { value: x };
    const wait = this.nextAllowed - Date.now();
    if (wait <= 0 && this.timer === null) this.flush();
    else if (this.timer === null) this.timer = setTimeout(() => ((this.timer = null), this.flush()), Math.max(wait, 0));
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.pending) return;
    const value = this.pending.value;
    this.pending = null;
    const data = toBundle(typeof value === "function" ? (value as () => unknown)() : value);
    runtime().sink.display({ data, displayId: this.displayId, update: this.shown });
    this.shown = true;
    // Space the next update so that this output stays under its byte rate.
    this.nextAllowed = Date.now() + Math.max(this.minInterval, (1000 * bundleSize(data)) / this.maxRate);
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    runtime().endOfCell.delete(this.onCellEnd);
  }
}

/** An output that `update(x)` replaces in place; safe to update every training step. */
export function live(options: LiveOptions = {}): Live {
  return new LiveOutput(options);
}

/** What a recording sink has seen. */
export interface Recorded {
  kind: "display" | "update" | "clear";
  data?: MimeBundle;
  displayId?: string;
}

/** Replaces the sink with one that records (for tests); `restore()` puts the old one back. */
export function record(): { outputs: Recorded[]; restore(): void } {
  const rt = runtime();
  const previous = rt.sink;
  const outputs: Recorded[] = [];
  rt.sink = {
    display: ({ data, displayId, update }) => outputs.push({ kind: update ? "update" : "display", data, displayId }),
    clear: () => outputs.push({ kind: "clear" }),
  };
  return { outputs, restore: () => void (rt.sink = previous) };
}
