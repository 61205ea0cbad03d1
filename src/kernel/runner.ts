/**
 * `latentlab run NOTEBOOK.ipynb [--out FILE] [-p name=value …]`: executes a notebook top to
 * bottom on the kernel's own execution path (no Jupyter, no Python), the way papermill does:
 * parameters go into a cell injected after the one tagged `parameters`, execution counts are
 * filled, every output is stored (rich bundles, the last state of live outputs, errors with
 * tracebacks), and the result is an nbformat 4 notebook.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { CellError, CellEvents, Session, hostStderr } from "./session";
import { MimeBundle } from "../display/runtime";

export interface NotebookCell {
  cell_type: "code" | "markdown" | "raw";
  id?: string;
  metadata: Record<string, unknown> & { tags?: string[] };
  source: string | string[];
  outputs?: Output[];
  execution_count?: number | null;
}

export interface Notebook {
  nbformat: number;
  nbformat_minor: number;
  metadata: Record<string, unknown>;
  cells: NotebookCell[];
}

export type Output =
  | { output_type: "stream"; name: "stdout" | "stderr"; text: string }
  | { output_type: "display_data"; data: MimeBundle; metadata: Record<string, unknown> }
  | { output_type: "execute_result"; data: MimeBundle; metadata: Record<string, unknown>; execution_count: number }
  | ({ output_type: "error" } & CellError);

export interface RunOptions {
  /** Parameter values, injected after the cell tagged `parameters`. */
  parameters?: Record<string, unknown>;
  /** Keep going after a failing cell (its error is stored); default false. */
  allowErrors?: boolean;
  /** Called after each code cell (progress). */
  onCell?: (index: number, total: number, ok: boolean) => void;
}

export interface RunResult {
  notebook: Notebook;
  /** The first failing cell, if any: its index among all cells and its error. */
  failed?: { index: number; error: CellError };
}

export const KERNELSPEC = { name: "latentlab", display_name: "LatentLab (TypeScript)", language: "typescript" };

function sourceText(cell: NotebookCell): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

/** A value as a TypeScript literal for the injected-parameters cell. */
function literal(value: unknown): string {
  return JSON.stringify(value);
}

/** Parses `-p name=value`: numbers and booleans become numbers and booleans, JSON stays JSON. */
export function parseParameter(arg: string): [string, unknown] {
  const eq = arg.indexOf("=");
  if (eq <= 0) throw new Error(`-p expects name=value, got "${arg}".`);
  const name = arg.slice(0, eq).trim();
  if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new Error(`-p ${arg}: "${name}" is not a valid variable name.`);
  const raw = arg.slice(eq + 1);
  if (raw === "true" || raw === "false") return [name, raw === "true"];
  if (raw.trim() !== "" && Number.isFinite(Number(raw))) return [name, Number(raw)];
  if (/^[[{"]/.test(raw)) {
    try {
      return [name, JSON.parse(raw)];
    } catch {
      /* a plain string after all */
    }
  }
  return [name, raw];
}

export function readNotebook(file: string): Notebook {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`Cannot read notebook ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}.`);
  }
  let nb: Notebook;
  try {
    nb = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not a notebook: it is not valid JSON.`);
  }
  if (!nb || !Array.isArray(nb.cells) || nb.nbformat !== 4) {
    throw new Error(`${file} is not an nbformat 4 notebook (no "cells" list, or nbformat is not 4).`);
  }
  return nb;
}

/** Injects parameters the way papermill does; returns the injected cell's index. */
function injectParameters(nb: Notebook, parameters: Record<string, unknown>, warn: (s: string) => void): void {
  const names = Object.keys(parameters);
  if (names.length === 0) return;
  const at = nb.cells.findIndex((c) => c.cell_type === "code" && (c.metadata?.tags ?? []).includes("parameters"));
  if (at < 0) warn("No cell is tagged `parameters`; the parameters go into a cell at the top.");
  else {
    const declared = sourceText(nb.cells[at]);
    for (const n of names) {
      if (!new RegExp(`\\b${n}\\b`).test(declared)) warn(`Parameter "${n}" does not appear in the parameters cell.`);
    }
  }
  // Drop a cell injected by an earlier run, so parameters do not pile up.
  const old = nb.cells.findIndex((c) => (c.metadata?.tags ?? []).includes("injected-parameters"));
  if (old >= 0) nb.cells.splice(old, 1);
  const insertAt = at < 0 ? 0 : (old >= 0 && old < at ? at - 1 : at) + 1;
  nb.cells.splice(insertAt, 0, {
    cell_type: "code",
    id: `injected-parameters`,
    metadata: { tags: ["injected-parameters"] },
    source: ["// Parameters\n", ...names.map((n) => `let ${n} = ${literal(parameters[n])};\n`)],
    outputs: [],
    execution_count: null,
  });
}

/** Executes every code cell of `nb` in order (mutating it) and returns it. */
export async function runNotebook(session: Session, nb: Notebook, options: RunOptions = {}): Promise<RunResult> {
  const warn = (s: string) => void hostStderr(`latentlab run: ${s}\n`);
  injectParameters(nb, options.parameters ?? {}, warn);
  nb.metadata = {
    ...nb.metadata,
    kernelspec: KERNELSPEC,
    language_info: { name: "typescript", file_extension: ".ts", mimetype: "text/typescript" },
  };
  for (const cell of nb.cells) {
    if (cell.cell_type === "code") {
      cell.outputs = [];
      cell.execution_count = null;
    }
  }
  /** Where each display id was shown, so updates rewrite those outputs in place. */
  const shown = new Map<string, { cell: NotebookCell; output: Output }[]>();
  let count = 0;
  let failed: RunResult["failed"];
  const codeCells = nb.cells.filter((c) => c.cell_type === "code").length;
  let done = 0;

  for (let index = 0; index < nb.cells.length; index++) {
    const cell = nb.cells[index];
    if (cell.cell_type !== "code") continue;
    const outputs: Output[] = (cell.outputs = []);
    let clearOnNext = false;
    const add = (o: Output) => {
      if (clearOnNext) {
        outputs.length = 0;
        clearOnNext = false;
      }
      const last = outputs[outputs.length - 1];
      if (o.output_type === "stream" && last?.output_type === "stream" && last.name === o.name) last.text += o.text;
      else outputs.push(o);
    };
    count += 1;
    cell.execution_count = count;
    const events: CellEvents = {
      stream: (name, text) => add({ output_type: "stream", name, text }),
      display: ({ data, metadata, displayId, update }) => {
        if (update && displayId) {
          for (const place of shown.get(displayId) ?? []) {
            if (place.output.output_type === "display_data") place.output.data = data;
          }
          return;
        }
        const o: Output = { output_type: "display_data", data, metadata: metadata ?? {} };
        add(o);
        if (displayId) shown.set(displayId, [...(shown.get(displayId) ?? []), { cell, output: o }]);
      },
      clear: (wait) => {
        if (wait) clearOnNext = true;
        else outputs.length = 0;
      },
      result: (data) => add({ output_type: "execute_result", data, metadata: {}, execution_count: count }),
      error: (e) => add({ output_type: "error", ...e }),
    };
    const outcome = await session.execute(sourceText(cell), events);
    done += 1;
    options.onCell?.(done, codeCells, outcome.ok);
    if (!outcome.ok) {
      failed ??= { index, error: outcome.error as CellError };
      if (!options.allowErrors) break;
    }
  }
  for (const cell of nb.cells) {
    if (cell.cell_type === "code") cell.outputs = (cell.outputs ?? []).map(encodeOutput);
  }
  return { notebook: nb, failed };
}

/** Binary data as base64, as nbformat stores it. */
function encodeOutput(o: Output): Output {
  if (o.output_type !== "display_data" && o.output_type !== "execute_result") return o;
  const data: MimeBundle = {};
  for (const [k, v] of Object.entries(o.data)) data[k] = v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v;
  return { ...o, data };
}

/** Runs a notebook file with cells resolving imports from its own folder, and writes the result. */
export async function runFile(
  file: string,
  out: string | undefined,
  options: RunOptions,
  makeSession: (rootDir: string) => Session,
): Promise<RunResult> {
  const input = path.resolve(file);
  const nb = readNotebook(input);
  const dir = path.dirname(input);
  const previous = process.cwd();
  process.chdir(dir);
  let result: RunResult;
  const session = makeSession(dir);
  try {
    result = await runNotebook(session, nb, options);
  } finally {
    process.chdir(previous);
  }
  const target = path.resolve(out ?? input);
  const tmp = `${target}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(result.notebook, null, 1) + "\n");
  fs.renameSync(tmp, target);
  return result;
}
