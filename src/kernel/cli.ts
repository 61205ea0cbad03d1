/**
 * The `latentlab` command:
 *
 *   latentlab start [jupyter args…]      register the kernel and open Jupyter on notebooks/
 *   latentlab install [--prefix DIR]     register the kernel with Jupyter (kernelspec "latentlab")
 *   latentlab run NB.ipynb [--out F] [-p name=value …] [--allow-errors]
 *                                        execute a notebook headless (no Jupyter or Python)
 *   latentlab html NB.ipynb [--out F]    a self-contained HTML page (nbconvert) with interactive charts
 *   latentlab kernel CONNECTION_FILE     what Jupyter starts (not for people)
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ready } from "../backend/ready";
import { exportHtml } from "./html";
import { parseParameter, runFile } from "./runner";
import { KernelServer } from "./server";
import { Session, hostStderr } from "./session";
import { version } from "../version";

const PACKAGE_ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(PACKAGE_ROOT, "kernel", "cli.js");

const GET_JUPYTER =
  "Jupyter was not found. Install it with `pip install jupyterlab`, or on Debian/Ubuntu " +
  "`sudo apt-get install jupyter-notebook`. Without Jupyter you can still execute notebooks " +
  "headless: `npx latentlab run notebooks/<name>.ipynb`.";

function log(line: string): void {
  hostStderr(`latentlab: ${line}\n`);
}

/** How to run Jupyter here: `jupyter`, or Debian's through /usr/bin/python3 -m jupyter. */
export function findJupyter(): string[] | null {
  const candidates = [["jupyter"], ["/usr/bin/python3", "-m", "jupyter"], ["python3", "-m", "jupyter"]];
  for (const c of candidates) {
    const r = spawnSync(c[0], [...c.slice(1), "--data-dir"], { encoding: "utf8" });
    if (r.status === 0 && r.stdout.trim() !== "") return c;
  }
  return null;
}

function kernelSpecJson(): Record<string, unknown> {
  return {
    argv: [process.execPath, CLI, "kernel", "{connection_file}"],
    display_name: "LatentLab (TypeScript)",
    language: "typescript",
    interrupt_mode: "signal",
    metadata: { debugger: false },
  };
}

/**
 * Registers the kernelspec "latentlab": in the user's Jupyter data folder, or under
 * `--prefix DIR` (DIR/share/jupyter/kernels), as `jupyter kernelspec install` would.
 */
export function install(args: string[]): number {
  let kernels: string;
  const p = args.indexOf("--prefix");
  if (p >= 0) {
    if (!args[p + 1]) {
      log("install: --prefix needs a folder");
      return 2;
    }
    kernels = path.join(path.resolve(args[p + 1]), "share", "jupyter", "kernels");
  } else {
    const jupyter = findJupyter();
    if (!jupyter) {
      log(GET_JUPYTER);
      return 1;
    }
    const r = spawnSync(jupyter[0], [...jupyter.slice(1), "--data-dir"], { encoding: "utf8" });
    kernels = path.join(r.stdout.trim(), "kernels");
  }
  const spec = path.join(kernels, "latentlab");
  fs.mkdirSync(spec, { recursive: true });
  fs.writeFileSync(path.join(spec, "kernel.json"), JSON.stringify(kernelSpecJson(), null, 2) + "\n");
  for (const logo of ["logo-32x32.png", "logo-64x64.png"]) {
    const src = path.join(PACKAGE_ROOT, "kernel", logo);
    if (fs.existsSync(src)) fs.copyFileSync(src, path.join(spec, logo));
  }
  log(`kernel "latentlab" registered in ${spec}`);
  return 0;
}

/** `npm start`: registers the kernel and opens JupyterLab (or the classic Notebook) on notebooks/. */
export function start(args: string[]): number {
  const jupyter = findJupyter();
  if (!jupyter) {
    log(GET_JUPYTER);
    return 1;
  }
  if (install([]) !== 0) return 1;
  const has = (app: string) => spawnSync(jupyter[0], [...jupyter.slice(1), app, "--version"], { encoding: "utf8" }).status === 0;
  const app = has("lab") ? "lab" : has("notebook") ? "notebook" : null;
  if (!app) {
    log(`Jupyter is installed but has neither JupyterLab nor the Notebook. ${GET_JUPYTER}`);
    return 1;
  }
  const notebooks = path.join(PACKAGE_ROOT, "notebooks");
  log(`starting Jupyter ${app === "lab" ? "Lab" : "Notebook"} on ${notebooks}`);
  // Jupyter refuses to run as root unless told; containers often run as root.
  const root = typeof process.getuid === "function" && process.getuid() === 0 && !args.includes("--allow-root") ? ["--allow-root"] : [];
  const child = spawn(jupyter[0], [...jupyter.slice(1), app, `--notebook-dir=${notebooks}`, ...root, ...args], { stdio: "inherit" });
  child.on("exit", (code) => process.exit(code ?? 0));
  process.on("SIGINT", () => child.kill("SIGINT"));
  return -1; // still running
}

async function banner(): Promise<string> {
  const info = await ready({ quiet: true });
  const tslab = require("tslab/package.json").version;
  const ts = require("@tslab/typescript-for-tslab/package.json").version;
  return `LatentLab ${version} · backend ${info.backend}: ${info.reason} · tslab ${tslab}, TypeScript ${ts}, Node ${process.version}`;
}

/** What Jupyter runs: the kernel, serving the ports in the connection file. */
export async function kernel(args: string[]): Promise<number> {
  const file = args.find((a) => !a.startsWith("--")) ?? args[args.indexOf("--config-path") + 1];
  if (!file || !fs.existsSync(file)) {
    log("usage: latentlab kernel CONNECTION_FILE (Jupyter starts this; to use LatentLab run `npm start`)");
    return 2;
  }
  process.on("uncaughtException", (e) => log(`uncaught exception: ${e?.stack ?? String(e)}`));
  process.on("unhandledRejection", (e) => log(`unhandled rejection: ${(e as Error)?.stack ?? String(e)}`));
  const session = new Session(process.cwd());
  const text = await banner();
  log(text);
  const server = KernelServer.fromFile(file, session, { banner: text, implementationVersion: version, typescriptVersion: require("@tslab/typescript-for-tslab/package.json").version }, log);
  process.on("SIGINT", () => session.interrupt());
  process.on("SIGTERM", () => server.close());
  await server.start();
  return -1;
}

/** `latentlab run`: execute a notebook headless. */
export async function run(args: string[]): Promise<number> {
  let file: string | undefined;
  let out: string | undefined;
  let allowErrors = false;
  const parameters: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--out" || a === "-o") out = args[++i];
    else if (a === "-p" || a === "--parameter") {
      const [k, v] = parseParameter(args[++i] ?? "");
      parameters[k] = v;
    } else if (a === "--allow-errors") allowErrors = true;
    else if (a.startsWith("-")) {
      log(`run: unknown option ${a}`);
      return 2;
    } else file = a;
  }
  if (!file) {
    log("usage: latentlab run NOTEBOOK.ipynb [--out FILE] [-p name=value ...] [--allow-errors]");
    return 2;
  }
  await ready({ quiet: true });
  const started = Date.now();
  let current: Session | null = null;
  process.on("SIGINT", () => current?.interrupt());
  const result = await runFile(
    file,
    out,
    {
      parameters,
      allowErrors,
      onCell: (i, n, ok) => log(`${path.basename(file as string)} [${i}/${n}] ${ok ? "ok" : "FAILED"}`),
    },
    (dir) => (current = new Session(dir, "runner")),
  );
  (current as Session | null)?.close();
  const target = out ?? file;
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.failed) {
    const { index, error } = result.failed;
    log(`cell ${index + 1} of ${file} failed: ${error.ename}: ${error.evalue.split("\n")[0]} (outputs written to ${target}, ${seconds} s)`);
    return 1;
  }
  log(`ran ${file} in ${seconds} s; wrote ${target}`);
  return 0;
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  let code: number;
  try {
    switch (command) {
      case "start":
        code = start(rest);
        break;
      case "install":
        code = install(rest);
        break;
      case "kernel":
        code = await kernel(rest);
        break;
      case "run":
        code = await run(rest);
        break;
      case "html": {
        const jupyter = findJupyter();
        if (!jupyter) {
          log(GET_JUPYTER);
          code = 1;
          break;
        }
        const outAt = rest.indexOf("--out");
        const out = outAt >= 0 ? rest[outAt + 1] : undefined;
        const file = rest.find((a, i) => !a.startsWith("-") && (outAt < 0 || i !== outAt + 1));
        if (!file) {
          log("usage: latentlab html NOTEBOOK.ipynb [--out FILE.html]");
          code = 2;
          break;
        }
        log(`wrote ${exportHtml(file, out, jupyter)}`);
        code = 0;
        break;
      }
      case "--version":
      case "version":
        hostStderr(`${version}\n`);
        code = 0;
        break;
      default:
        log(
          "commands: start (open Jupyter with the LatentLab kernel), install (register the kernel), " +
            "run NOTEBOOK.ipynb [--out FILE] [-p name=value ...] [--allow-errors] (execute headless), " +
            "html NOTEBOOK.ipynb [--out FILE.html] (a self-contained page with interactive charts, via nbconvert)",
        );
        code = command ? 2 : 0;
    }
  } catch (e) {
    log(e instanceof Error ? e.message : String(e));
    code = 1;
  }
  if (code >= 0) process.exit(code);
}
