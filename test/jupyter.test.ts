/**
 * The kernel through real Jupyter clients (Python): the official conformance suite
 * (jupyter_kernel_test), nbconvert --execute, interrupts, and message signing.
 *
 * They need Debian's Jupyter (`apt-get install jupyter-notebook jupyter-client
 * jupyter-nbconvert python3-nbclient python3-jupyter-kernel-test`), driven by /usr/bin/python3
 * (or LATENTLAB_PYTHON). Where it is missing these tests skip and say so, unless
 * LATENTLAB_REQUIRE_JUPYTER=1 (as in CI), where missing Jupyter is a failure.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..", "..");
const PYTHON = process.env.LATENTLAB_PYTHON ?? "/usr/bin/python3";
const INSTALL = "apt-get install jupyter-notebook jupyter-client jupyter-nbconvert python3-nbclient python3-jupyter-kernel-test";

function jupyterMissing(): string | false {
  const r = spawnSync(PYTHON, ["-c", "import jupyter_client, nbformat, nbconvert, nbclient, jupyter_kernel_test"], { encoding: "utf8" });
  if (r.status === 0) return false;
  const why = `Jupyter for ${PYTHON} is missing (${INSTALL})`;
  if (process.env.LATENTLAB_REQUIRE_JUPYTER === "1") throw new Error(why);
  return why;
}

/** Registers the kernel under a temporary prefix, so tests never touch the user's Jupyter. */
function jupyterEnv(): NodeJS.ProcessEnv {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), "latentlab-jupyter-"));
  const r = spawnSync(process.execPath, [path.join(ROOT, "kernel", "cli.js"), "install", "--prefix", prefix], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return { ...process.env, JUPYTER_PATH: path.join(prefix, "share", "jupyter"), PYTHONUNBUFFERED: "1" };
}

function runPython(file: string, env: NodeJS.ProcessEnv): void {
  const r = spawnSync(PYTHON, [path.join(ROOT, "test", "kernel", file), "-v"], { encoding: "utf8", env, cwd: ROOT, timeout: 600_000 });
  const summary = (r.stderr.match(/^Ran \d+ tests?.*$/m)?.[0] ?? "") + " " + (r.stderr.match(/^(OK|FAILED).*$/m)?.[0] ?? "");
  assert.equal(r.status, 0, `${file} failed:\n${r.stdout}\n${r.stderr}`);
  process.stdout.write(`# ${file}: ${summary.trim()}\n`);
}

describe("the latentlab kernel under real Jupyter clients", () => {
  const missing = jupyterMissing();
  const env = missing ? {} : jupyterEnv();

  it("passes every applicable jupyter_kernel_test conformance test", { skip: missing }, () => {
    runPython("test_conformance.py", env);
  });

  it("runs under nbconvert, interrupts at a step boundary, and drops badly signed messages", { skip: missing }, () => {
    runPython("test_protocol.py", env);
  });
});
