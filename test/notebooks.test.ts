/**
 * Example tests: every notebook in notebooks/ runs top to bottom in quick mode through the
 * headless runner (the kernel's own execution path), and every chart it shows carries a static
 * picture. The committed notebooks are not touched: outputs go to a temporary folder.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..", "..");
const NOTEBOOKS = path.join(ROOT, "notebooks");
const out = fs.mkdtempSync(path.join(os.tmpdir(), "ll-nb-"));

interface Output {
  output_type: string;
  data?: Record<string, unknown>;
  ename?: string;
}

describe("every notebook runs in quick mode", () => {
  const files = fs.readdirSync(NOTEBOOKS).filter((f) => f.endsWith(".ipynb")).sort();
  it("there are notebooks", () => assert.ok(files.length >= 3, files.join(", ")));
  for (const file of files) {
    it(file, () => {
      const target = path.join(out, file);
      const r = spawnSync(process.execPath, [path.join(ROOT, "kernel", "cli.js"), "run", path.join(NOTEBOOKS, file), "--out", target, "-p", "quick=true"], {
        encoding: "utf8",
        timeout: 600_000,
      });
      assert.equal(r.status, 0, `${file} failed:\n${r.stderr.slice(-3000)}`);
      const nb = JSON.parse(fs.readFileSync(target, "utf8"));
      const code = nb.cells.filter((c: { cell_type: string }) => c.cell_type === "code");
      assert.ok(code.every((c: { execution_count: number | null }) => Number.isInteger(c.execution_count)), "every code cell has an execution count");
      const outputs: Output[] = code.flatMap((c: { outputs: Output[] }) => c.outputs);
      assert.ok(!outputs.some((o) => o.output_type === "error"), "no cell failed");
      for (const o of outputs) {
        if (o.data?.["application/vnd.plotly.v1+json"]) assert.ok(o.data["image/png"], "every interactive chart carries a static PNG");
      }
      assert.ok(outputs.some((o) => o.data?.["image/png"]), "the notebook shows at least one picture");
    });
  }
});

describe("the reproducible experiment", () => {
  it("gives identical numbers on two runs with the same parameters", () => {
    const file = path.join(NOTEBOOKS, "reproducible-experiment.ipynb");
    const run = (i: number) => {
      const target = path.join(out, `repro-${i}.ipynb`);
      const r = spawnSync(process.execPath, [path.join(ROOT, "kernel", "cli.js"), "run", file, "--out", target, "-p", "quick=true", "-p", "seed=3"], { encoding: "utf8", timeout: 600_000 });
      assert.equal(r.status, 0, r.stderr.slice(-2000));
      const nb = JSON.parse(fs.readFileSync(target, "utf8"));
      const cells = nb.cells.filter((c: { metadata: { tags?: string[] } }) => (c.metadata.tags ?? []).includes("deterministic"));
      return JSON.stringify(cells.map((c: { outputs: Output[] }) => c.outputs));
    };
    const first = run(1);
    assert.match(first, /test −ELBO: \d+\.\d{6} nats/);
    assert.equal(run(2), first);
  });
});
