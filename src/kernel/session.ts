/**
 * Runs notebook cells: the one execution path shared by the Jupyter kernel and the headless
 * runner (`latentlab run`).
 *
 * Compilation and evaluation are tslab's (its converter and executor, unmodified). This file
 * adds what a notebook needs around them: a cell's last value as a rich `execute_result`,
 * failures as `error` outputs with a name, message and traceback, display routed to the cell,
 * live outputs flushed at the end of a cell, and interrupts that stop LatentLab loops at a step
 * boundary before falling back to tslab's own interrupt.
 */
import * as path from "node:path";
import { format, inspect } from "node:util";
import { createConverter, isCompleteCode } from "tslab/dist/converter";
import { createExecutor, Executor } from "tslab/dist/executor";
import { printQuickInfo } from "tslab/dist/inspect";
import { DisplayRequest, InterruptedError, MimeBundle, runtime } from "../display/runtime";
import { toBundles } from "../display/show";
import { expandShorthand } from "./shorthand";

export interface CellError {
  ename: string;
  evalue: string;
  traceback: string[];
}

/** Where a cell's outputs go (iopub messages in the kernel, notebook outputs in the runner). */
export interface CellEvents {
  stream(name: "stdout" | "stderr", text: string): void;
  display(request: DisplayRequest): void;
  clear(wait: boolean): void;
  result(data: MimeBundle): void;
  error(error: CellError): void;
}

export interface CellOutcome {
  ok: boolean;
  error?: CellError;
}

/** The process's own stdout/stderr, kept before cells take them over (for the host's logs). */
export const hostStdout = process.stdout.write.bind(process.stdout);
export const hostStderr = process.stderr.write.bind(process.stderr);

/** How long a running cell gets, after an interrupt, to stop at a step boundary by itself. */
const INTERRUPT_GRACE_MS = 5000;

const NOT_STACK = /node_modules[\\/]tslab[\\/]|node:internal|\(node:|at new Promise \(<anonymous>\)/;

function errorFrom(e: unknown, interruptedByUser: boolean): CellError {
  if (e instanceof Error) {
    const interruptedNow = interruptedByUser && (e instanceof InterruptedError || /Interrupted/.test(e.message));
    const lines = (e.stack ?? `${e.name}: ${e.message}`).split("\n");
    const header = `${e.name}: ${e.message}`;
    const frames = lines.filter((l) => /^\s+at /.test(l) && !NOT_STACK.test(l));
    return {
      ename: interruptedNow ? "Interrupted" : e.name || "Error",
      evalue: e.message,
      traceback: [header, ...frames],
    };
  }
  return { ename: "Error", evalue: String(e), traceback: [`Thrown value: ${format(e)}`] };
}

export class Session {
  private readonly executor: Executor;
  private readonly converters: { node: ReturnType<typeof createConverter>; browser: ReturnType<typeof createConverter> | null };
  private events: CellEvents | null = null;
  private controller = new AbortController();
  private running: Promise<unknown> | null = null;
  private interruptedByUser = false;
  private diagnostics: string[] = [];
  private thrown: unknown[] = [];
  private lastValue: { value: unknown } | null = null;

  /** `rootDir`: where cells resolve imports (the notebook's folder); `host`: "kernel" or "runner". */
  constructor(
    readonly rootDir: string = process.cwd(),
    readonly host: "kernel" | "runner" = "kernel",
  ) {
    const node = createConverter({ isJS: false, isBrowser: false });
    this.converters = { node, browser: null };
    const convs = {
      node,
      get browser() {
        throw new Error("Browser cells (//%browser) are not supported by the LatentLab kernel.");
      },
      close: () => node.close(),
    };
    this.executor = createExecutor(path.resolve(rootDir), convs as never, {
      log: (value: unknown) => void (this.lastValue = { value }),
      error: (first: unknown, ...rest: unknown[]) => {
        if (typeof first === "string" && first.startsWith("%s%d:%d - %s")) this.diagnostics.push(format(first, ...rest));
        else this.thrown.push(first);
      },
    });
    this.routeProcessOutput();
  }

  /** stdout/stderr (console.log in cells, and background output) go to the latest cell. */
  private routeProcessOutput(): void {
    const route = (name: "stdout" | "stderr") =>
      ((chunk: string | Uint8Array, encoding?: unknown, cb?: unknown) => {
        const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
        this.events?.stream(name, text);
        const done = typeof encoding === "function" ? encoding : cb;
        if (typeof done === "function") done();
        return true;
      }) as typeof process.stdout.write;
    process.stdout.write = route("stdout");
    process.stderr.write = route("stderr");
  }

  /** Runs one cell. Resolves when it has finished (or been interrupted); never rejects. */
  async execute(code: string, events: CellEvents): Promise<CellOutcome> {
    this.events = events;
    this.diagnostics = [];
    this.thrown = [];
    this.lastValue = null;
    this.interruptedByUser = false;
    this.controller = new AbortController();
    const rt = runtime();
    rt.host = this.host;
    rt.signal = this.controller.signal;
    rt.sink = { display: (r) => this.events?.display(r), clear: (w) => this.events?.clear(w) };
    bridgeTslabDisplay((r) => this.events?.display(r));

    let ok = false;
    const run = this.executor.execute(expandShorthand(code));
    this.running = run;
    try {
      ok = await run;
    } catch (e) {
      this.thrown.push(e);
    } finally {
      this.running = null;
    }
    for (const flush of [...rt.endOfCell]) {
      try {
        flush();
      } catch (e) {
        this.thrown.push(e);
      }
    }
    if (ok && this.thrown.length === 0) {
      const last = this.lastValue as { value: unknown } | null; // set by the executor's console.log
      if (last) {
        try {
          // A cell's value shows like a REPL's: strings quoted, so "1" and 1 differ.
          const value = last.value;
          const bundles = typeof value === "string" ? [{ "text/plain": inspect(value) }] : toBundles(value);
          if (bundles.length === 1) events.result(bundles[0]);
          else for (const data of bundles) events.display({ data });
        } catch (e) {
          const error = errorFrom(e, false);
          events.error(error);
          return { ok: false, error };
        }
      }
      return { ok: true };
    }
    const error: CellError =
      this.diagnostics.length > 0
        ? { ename: "TypeScriptError", evalue: this.diagnostics.join("\n"), traceback: this.diagnostics }
        : this.thrown.length > 0
          ? errorFrom(this.thrown[0], this.interruptedByUser)
          : { ename: "Error", evalue: "the cell failed", traceback: ["the cell failed"] };
    events.error(error);
    return { ok: false, error };
  }

  /**
   * Interrupts the running cell: LatentLab loops see the signal and stop at the next step
   * boundary; if the cell is still running after a grace period, tslab abandons its await.
   */
  interrupt(): void {
    if (!this.running) return;
    this.interruptedByUser = true;
    this.controller.abort();
    const running = this.running;
    const timer = setTimeout(() => {
      if (this.running === running) this.executor.interrupt();
    }, INTERRUPT_GRACE_MS);
    running.finally(() => clearTimeout(timer)).catch(() => undefined);
  }

  get busy(): boolean {
    return this.running !== null;
  }

  complete(code: string, cursor: number): { matches: string[]; cursor_start: number; cursor_end: number } {
    const info = this.executor.complete(code, cursor);
    return { matches: info.candidates, cursor_start: info.start, cursor_end: info.end };
  }

  inspect(code: string, cursor: number): { found: boolean; text: string } {
    const info = this.executor.inspect(code, cursor);
    return info ? { found: true, text: printQuickInfo(info) } : { found: false, text: "" };
  }

  isComplete(code: string): { status: "complete" | "incomplete"; indent?: string } {
    const r = isCompleteCode(code);
    return r.completed ? { status: "complete" } : { status: "incomplete", indent: r.indent ?? "" };
  }

  /** Frees tslab's compiler and gives stdout/stderr back to the process. */
  close(): void {
    this.executor.close();
    process.stdout.write = hostStdout as typeof process.stdout.write;
    process.stderr.write = hostStderr as typeof process.stderr.write;
    this.events = null;
  }
}

/** Makes tslab's own `display` API (import * as tslab from "tslab") reach the same cell. */
function bridgeTslabDisplay(send: (r: DisplayRequest) => void): void {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const jupyter = require("tslab/dist/jupyter") as { lastWriteDisplayData: unknown };
  jupyter.lastWriteDisplayData = (
    msg: { data: MimeBundle; metadata?: Record<string, unknown>; transient?: { display_id?: string } },
    update: boolean,
  ) => send({ data: msg.data, metadata: msg.metadata, displayId: msg.transient?.display_id, update });
}
