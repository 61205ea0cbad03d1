/** The headless runner's pure parts: parameters, injection, and outputs (no Jupyter needed). */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ready } from "../src/backend/ready";
import { Notebook, parseParameter, readNotebook, runNotebook } from "../src/kernel/runner";
import { Session } from "../src/kernel/session";

before(() => ready({ backend: "wasm", quiet: true }));

function notebook(cells: { source: string; tags?: string[] }[]): Notebook {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: cells.map((c, i) => ({
      cell_type: "code",
      id: `c${i}`,
      metadata: c.tags ? { tags: c.tags } : {},
      source: c.source,
      outputs: [],
      execution_count: null,
    })),
  };
}

describe("latentlab run", () => {
  it("parses -p values as papermill does", () => {
    assert.deepEqual(parseParameter("steps=200"), ["steps", 200]);
    assert.deepEqual(parseParameter("quick=true"), ["quick", true]);
    assert.deepEqual(parseParameter("name=ring8"), ["name", "ring8"]);
    assert.deepEqual(parseParameter('sizes=[1,2]'), ["sizes", [1, 2]]);
    assert.throws(() => parseParameter("noequals"), /name=value/);
    assert.throws(() => parseParameter("2x=1"), /not a valid variable name/);
  });

  it("injects parameters after the tagged cell, fills counts, and stores values and errors", async () => {
    const session = new Session(process.cwd());
    const nb = notebook([
      { source: "let steps = 10;\nlet label = \"a\";", tags: ["parameters"] },
      { source: "steps * 2" },
      { source: "label" },
      { source: 'throw new RangeError("nope")' },
      { source: "steps + 1" },
    ]);
    const { notebook: out, failed } = await runNotebook(session, nb, { parameters: { steps: 50, label: "b" } });
    assert.equal(out.cells[1].metadata.tags?.[0], "injected-parameters");
    assert.deepEqual(out.cells.map((c) => c.execution_count), [1, 2, 3, 4, 5, null]);
    const text = (i: number) => (out.cells[i].outputs?.[0] as { data: Record<string, string> }).data["text/plain"];
    assert.equal(text(2), "100");
    assert.equal(text(3), "'b'");
    assert.equal(failed?.index, 4);
    assert.equal(failed?.error.ename, "RangeError");
    assert.deepEqual(out.cells[5].outputs, [], "cells after a failure do not run without --allow-errors");
    session.close();
  });

  it("lets a later cell use an earlier cell's variable in a shorthand property (tslab bug)", async () => {
    const session = new Session(process.cwd());
    const nb = notebook([
      { source: "let seed = 3;\nlet x = 1;" },
      { source: "const o = { seed, y: 2 };\nconst f = (a: { seed: number }) => a.seed;\n({ x = 5 } = { x: undefined });\n[o.seed, f({ seed }), x].join()" },
    ]);
    const { notebook: out, failed } = await runNotebook(session, nb);
    assert.equal(failed, undefined, JSON.stringify(out.cells[1].outputs));
    assert.equal((out.cells[1].outputs?.[0] as { data: Record<string, string> }).data["text/plain"], "'3,3,5'");
    session.close();
  });

  it("says clearly when a file is not a notebook", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ll-"));
    const bad = path.join(dir, "x.ipynb");
    fs.writeFileSync(bad, "{ nope");
    assert.throws(() => readNotebook(bad), /not valid JSON/);
    fs.writeFileSync(bad, JSON.stringify({ cells: [], nbformat: 3 }));
    assert.throws(() => readNotebook(bad), /not an nbformat 4 notebook/);
    assert.throws(() => readNotebook(path.join(dir, "missing.ipynb")), /Cannot read notebook .*ENOENT/);
  });
});
