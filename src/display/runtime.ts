/**
 * The contract between LatentLab's library and whatever runs it (the kernel, the headless
 * runner, a plain Node script, a test).
 *
 * It lives on `globalThis` so that the launcher and every copy of the library share one: the
 * launcher installs a display sink (which becomes `display_data` / `update_display_data`
 * messages) and an interrupt signal (which the stop button aborts, and which training loops
 * check between steps). Outside a kernel the sink prints text and nothing interrupts.
 */

/** A Jupyter MIME bundle: MIME type → content (strings, base64 for binary, JSON for plotly). */
export type MimeBundle = Record<string, unknown>;

export interface DisplayRequest {
  data: MimeBundle;
  metadata?: Record<string, unknown>;
  /** Present for outputs that can be updated in place later. */
  displayId?: string;
  /** Replace the output with this displayId instead of adding one. */
  update?: boolean;
}

/** Where displays go. The kernel and the headless runner install one; tests record. */
export interface DisplaySink {
  display(request: DisplayRequest): void;
  /** Clears the cell's output (`wait`: once the next output arrives). */
  clear(wait: boolean): void;
}

export interface Runtime {
  sink: DisplaySink;
  /** Aborted when the user interrupts the running cell; renewed for every cell. */
  signal: AbortSignal;
  /** Name of what is running LatentLab: "node", "kernel" or "runner". */
  host: string;
  /** Called at the end of every cell, so live outputs send their last frame. */
  endOfCell: Set<() => void>;
}

const KEY = Symbol.for("latentlab.runtime");

/** Prints the text/plain part of every display: what a plain Node script sees. */
export const consoleSink: DisplaySink = {
  display({ data, update }) {
    if (update) return;
    const text = data["text/plain"];
    if (typeof text === "string") process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  },
  clear() {},
};

/** The shared runtime (created on first use with the console sink). */
export function runtime(): Runtime {
  const g = globalThis as unknown as Record<symbol, Runtime | undefined>;
  let rt = g[KEY];
  if (!rt) {
    rt = { sink: consoleSink, signal: new AbortController().signal, host: "node", endOfCell: new Set() };
    g[KEY] = rt;
  }
  return rt;
}

/** Thrown by LatentLab loops that stop because the user interrupted the cell. */
export class InterruptedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Interrupted";
  }
}

/** True once the user has pressed stop on the running cell. */
export function interrupted(): boolean {
  return runtime().signal.aborted;
}
