/**
 * `latentlab html NB.ipynb [--out FILE.html]`: an executed notebook as one self-contained HTML
 * page, through Jupyter's nbconvert with LatentLab's template (kernel/nbconvert/latentlab): every
 * chart interactive (plotly.js, from the npm package plotly.js-dist-min, inlined once), every
 * picture embedded. Without JavaScript the charts show their static PNG.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..", "..");
const PRIORITY = [
  "application/vnd.plotly.v1+json",
  "application/vnd.jupyter.widget-view+json",
  "application/javascript",
  "text/html",
  "text/markdown",
  "image/png",
  "image/gif",
  "image/svg+xml",
  "text/latex",
  "image/jpeg",
  "text/plain",
];

/** Renders `notebook` to `out` (default: beside it, .html); returns the output path. */
export function exportHtml(notebook: string, out: string | undefined, jupyter: string[]): string {
  const input = path.resolve(notebook);
  if (!fs.existsSync(input)) throw new Error(`No notebook at ${input}.`);
  const target = path.resolve(out ?? input.replace(/\.ipynb$/, "") + ".html");
  const args = [
    ...jupyter.slice(1),
    "nbconvert",
    "--to",
    "html",
    "--template",
    "latentlab",
    `--TemplateExporter.extra_template_basedirs=${path.join(ROOT, "kernel", "nbconvert")}`,
    `--NbConvertBase.display_data_priority=${JSON.stringify(PRIORITY)}`,
    "--output-dir",
    path.dirname(target),
    "--output",
    path.basename(target, ".html"),
    input,
  ];
  const r = spawnSync(jupyter[0], args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`nbconvert failed:\n${r.stderr}`);
  const plotly = fs.readFileSync(require.resolve("plotly.js-dist-min/plotly.min.js"), "utf8");
  const html = fs.readFileSync(target, "utf8").replace("<!-- latentlab:plotly.js -->", () => `<script>${plotly}</script>`);
  fs.writeFileSync(target, html);
  return target;
}
