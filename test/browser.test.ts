/**
 * Seen as a user sees it: every committed, executed notebook rendered to HTML by Jupyter's
 * nbconvert (`latentlab html`, LatentLab's template) and opened in headless Chromium. The
 * interactive charts must draw, the pictures must show, and a screenshot of each page is saved
 * to build/screenshots/ (CI's artifacts). Also: every chart in a saved notebook carries a static
 * PNG, so it renders on GitHub where no script runs.
 *
 * Needs Debian's chromium and Jupyter; skips (saying so) without them, unless
 * LATENTLAB_REQUIRE_JUPYTER=1 (CI), where their absence is a failure.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..", "..");
const NOTEBOOKS = path.join(ROOT, "notebooks");
const SHOTS = path.join(ROOT, "build", "screenshots");
const CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

interface Output {
  output_type: string;
  data?: Record<string, unknown>;
}

function missing(): string | false {
  const c = spawnSync("chromium", ["--version"], { encoding: "utf8" });
  const j = spawnSync("/usr/bin/python3", ["-c", "import nbconvert"], { encoding: "utf8" });
  if (c.status === 0 && j.status === 0) return false;
  const why = `${c.status !== 0 ? "chromium" : "nbconvert"} is not installed (apt-get install chromium jupyter-nbconvert)`;
  if (process.env.LATENTLAB_REQUIRE_JUPYTER === "1") throw new Error(why);
  return why;
}

const notebooks = fs.readdirSync(NOTEBOOKS).filter((f) => f.endsWith(".ipynb")).sort();
const outputsOf = (file: string): Output[] =>
  JSON.parse(fs.readFileSync(path.join(NOTEBOOKS, file), "utf8"))
    .cells.filter((c: { cell_type: string }) => c.cell_type === "code")
    .flatMap((c: { outputs: Output[] }) => c.outputs);

describe("saved notebooks render where scripts do not run", () => {
  for (const file of notebooks) {
    it(`${file}: committed with outputs, every chart carrying a static PNG`, () => {
      const outs = outputsOf(file);
      assert.ok(outs.length > 0, "saved with outputs");
      const charts = outs.filter((o) => o.data?.["application/vnd.plotly.v1+json"]);
      assert.ok(charts.every((o) => typeof o.data?.["image/png"] === "string"), "a PNG beside every plotly chart");
      assert.ok(!outs.some((o) => o.output_type === "error"), "no cell failed in the committed run");
    });
  }
});

describe("notebooks in a browser", () => {
  const skip = missing();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ll-html-"));
  for (const file of notebooks) {
    it(`${file}: charts draw and pictures show in Chromium`, { skip, timeout: 300_000 }, () => {
      const html = path.join(dir, file.replace(/\.ipynb$/, ".html"));
      const r = spawnSync(process.execPath, [path.join(ROOT, "kernel", "cli.js"), "html", path.join(NOTEBOOKS, file), "--out", html], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ll-chromium-"));
      const dom = spawnSync(CHROMIUM[0], [...CHROMIUM.slice(1), `--user-data-dir=${profile}`, "--virtual-time-budget=20000", "--dump-dom", `file://${html}`], { encoding: "utf8", maxBuffer: 256 * 2 ** 20, timeout: 120_000 }).stdout;
      const outs = outputsOf(file);
      const charts = outs.filter((o) => o.data?.["application/vnd.plotly.v1+json"]).length;
      const pictures = outs.filter((o) => !o.data?.["application/vnd.plotly.v1+json"] && (o.data?.["image/png"] || o.data?.["image/gif"])).length;
      const drawn = (dom.match(/latentlab-chart js-plotly-plot/g) ?? []).length;
      const shown = (dom.match(/<img src="data:image\/(png|gif);base64,/g) ?? []).length;
      assert.equal(drawn, charts, `${charts} interactive charts in the notebook, ${drawn} drawn by plotly.js`);
      assert.ok(shown >= pictures, `${pictures} pictures in the notebook, ${shown} in the page`);
      fs.mkdirSync(SHOTS, { recursive: true });
      const shot = path.join(SHOTS, file.replace(/\.ipynb$/, ".png"));
      spawnSync(CHROMIUM[0], [...CHROMIUM.slice(1), `--user-data-dir=${profile}`, "--virtual-time-budget=20000", "--window-size=1100,3000", `--screenshot=${shot}`, `file://${html}`], { timeout: 120_000 });
      assert.ok(fs.existsSync(shot) && fs.statSync(shot).size > 10_000, "a screenshot was saved");
      process.stdout.write(`# screenshot: ${path.relative(ROOT, shot)} (${charts} charts drawn, ${pictures} pictures)\n`);
      fs.rmSync(profile, { recursive: true, force: true });
    });
  }
});
