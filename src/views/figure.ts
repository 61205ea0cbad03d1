/**
 * Figures: one small description, two renderings.
 *
 * A `Figure` is plain data (traces, axes, title). `toPlotly` turns it into plotly figure JSON
 * for the front ends that draw it interactively (JupyterLab, VS Code); `toSvg` draws the same
 * figure as a static SVG, server-side, so a saved notebook shows it where no script runs
 * (GitHub, nbviewer, nbconvert). `chart(figure)` carries both in one MIME bundle.
 */
import { mime } from "../display/show";
import { MimeBundle } from "../display/runtime";
import { encodePng, pngDataUrl } from "./png";
import { staticImage } from "./raster";

export interface LineTrace {
  type: "line";
  name?: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: string;
  width?: number;
  dash?: boolean;
  opacity?: number;
}

export interface ScatterTrace {
  type: "scatter";
  name?: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: string;
  /** Per-point colour index into `palette` (e.g. class labels). */
  groups?: ArrayLike<number>;
  size?: number;
  opacity?: number;
  /** Hover text per point (interactive renderings only). */
  text?: string[];
}

/** A grid of values drawn as coloured cells over [x0, x1] × [y0, y1]. */
export interface HeatmapTrace {
  type: "heatmap";
  name?: string;
  z: number[][];
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  /** Two colours for the low and high ends; default blue → white → orange. */
  colors?: [string, string, string];
  zmin?: number;
  zmax?: number;
  opacity?: number;
}

/** Line segments with arrow heads, from (x, y) to (x + u, y + v). */
export interface ArrowTrace {
  type: "arrows";
  name?: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  u: ArrayLike<number>;
  v: ArrayLike<number>;
  color?: string;
}

/** A raster picture (e.g. a sample grid) placed over [x0, x1] × [y0, y1]. */
export interface ImageTrace {
  type: "image";
  name?: string;
  /** PNG bytes. */
  png: Buffer;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

export type Trace = LineTrace | ScatterTrace | HeatmapTrace | ArrowTrace | ImageTrace;

export interface Axis {
  title?: string;
  range?: [number, number];
  log?: boolean;
}

export interface Figure {
  title?: string;
  traces: Trace[];
  xaxis?: Axis;
  yaxis?: Axis;
  width?: number;
  height?: number;
  /** Equal scale on both axes (2-D data). */
  square?: boolean;
  showLegend?: boolean;
  /** No axes, ticks or grid (pictures). */
  hideAxes?: boolean;
}

export const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

const arr = (a: ArrayLike<number>) => Array.from(a, (v) => (Number.isFinite(v) ? Number(v.toPrecision(6)) : null));

/** Plotly figure JSON (application/vnd.plotly.v1+json). */
export function toPlotly(fig: Figure): { data: unknown[]; layout: Record<string, unknown> } {
  const data = fig.traces.map((t, i) => {
    switch (t.type) {
      case "line":
        return {
          type: "scatter", mode: "lines", name: t.name, x: arr(t.x), y: arr(t.y),
          line: { color: t.color ?? palette[i % palette.length], width: t.width ?? 1.5, dash: t.dash ? "dash" : "solid" },
          opacity: t.opacity ?? 1,
        };
      case "scatter":
        return {
          type: "scattergl", mode: "markers", name: t.name, x: arr(t.x), y: arr(t.y), text: t.text,
          hoverinfo: t.text ? "text" : undefined,
          marker: {
            size: t.size ?? 4,
            opacity: t.opacity ?? 0.8,
            color: t.groups ? Array.from(t.groups, (g) => palette[g % palette.length]) : t.color ?? palette[i % palette.length],
          },
        };
      case "heatmap": {
        const ny = t.z.length;
        const nx = t.z[0]?.length ?? 0;
        const c = t.colors ?? DIVERGING;
        return {
          type: "heatmap", name: t.name, z: t.z.map(arr),
          x0: t.x0 + (t.x1 - t.x0) / (2 * nx), dx: (t.x1 - t.x0) / nx,
          y0: t.y0 + (t.y1 - t.y0) / (2 * ny), dy: (t.y1 - t.y0) / ny,
          zmin: t.zmin, zmax: t.zmax, opacity: t.opacity ?? 1, showscale: false,
          colorscale: [[0, c[0]], [0.5, c[1]], [1, c[2]]],
        };
      }
      case "image":
        return {
          type: "image", name: t.name, source: `data:image/png;base64,${t.png.toString("base64")}`,
          x0: t.x0, y0: t.y1, dx: 1, dy: 1, hoverinfo: "skip",
        };
      case "arrows": {
        const xs: (number | null)[] = [];
        const ys: (number | null)[] = [];
        for (let k = 0; k < t.x.length; k++) {
          xs.push(t.x[k], t.x[k] + t.u[k], null);
          ys.push(t.y[k], t.y[k] + t.v[k], null);
        }
        return { type: "scatter", mode: "lines", name: t.name, x: xs, y: ys, line: { color: t.color ?? "#444", width: 1 } };
      }
    }
  });
  const axis = (a: Axis | undefined) => ({
    title: a?.title ? { text: a.title } : undefined,
    range: a?.range ? (a.log ? a.range.map((v) => Math.log10(v)) : a.range) : undefined,
    type: a?.log ? "log" : undefined,
    zeroline: false,
    visible: fig.hideAxes ? false : undefined,
  });
  return {
    data,
    layout: {
      title: fig.title ? { text: fig.title } : undefined,
      width: fig.width ?? 640,
      height: fig.height ?? 400,
      xaxis: axis(fig.xaxis),
      yaxis: { ...axis(fig.yaxis), ...(fig.square ? { scaleanchor: "x", scaleratio: 1 } : {}) },
      showlegend: fig.showLegend ?? fig.traces.filter((t) => t.name).length > 1,
      margin: { l: 60, r: 20, t: fig.title ? 40 : 20, b: 50 },
      template: "plotly_white",
    },
  };
}

const DIVERGING: [string, string, string] = ["#3b6fb6", "#f7f7f7", "#e08a2e"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Round numbers for axis ticks: ~n ticks covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  // At most 50 ticks, and stop if the step is below the numbers' precision (v + step === v).
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && out.length < 50; v += step) {
    out.push(Number(v.toPrecision(12)));
    if (v + step === v) break;
  }
  return out;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

function extent(fig: Figure, axis: "x" | "y"): [number, number] {
  const given = axis === "x" ? fig.xaxis?.range : fig.yaxis?.range;
  if (given) return given;
  let lo = Infinity;
  let hi = -Infinity;
  const see = (v: number) => {
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  };
  for (const t of fig.traces) {
    if (t.type === "heatmap" || t.type === "image") {
      see(axis === "x" ? t.x0 : t.y0);
      see(axis === "x" ? t.x1 : t.y1);
    } else {
      const vs = axis === "x" ? t.x : t.y;
      for (let i = 0; i < vs.length; i++) see(vs[i]);
      if (t.type === "arrows") {
        const ds = axis === "x" ? t.u : t.v;
        for (let i = 0; i < vs.length; i++) see(vs[i] + ds[i]);
      }
    }
  }
  if (!Number.isFinite(lo)) return [0, 1];
  // A range at the numbers' precision (one loss value drawn twice, say) gets a visible width.
  if (hi - lo <= 1e-9 * Math.max(1, Math.abs(lo), Math.abs(hi))) {
    const c = (lo + hi) / 2;
    const d = Math.max(Math.abs(c) * 0.05, 1e-3);
    return [c - d, c + d];
  }
  const pad = (hi - lo) * 0.04;
  return [lo - pad, hi + pad];
}

function lerpColor(a: string, b: string, t: number): [number, number, number] {
  const pa = [1, 3, 5].map((i) => parseInt(a.slice(i, i + 2), 16));
  const pb = [1, 3, 5].map((i) => parseInt(b.slice(i, i + 2), 16));
  return pa.map((v, i) => Math.round(v + (pb[i] - v) * t)) as [number, number, number];
}

let svgCounter = 0;

/** A static SVG of the figure (what GitHub and nbviewer show). */
export function toSvg(fig: Figure, heatmapPng?: (t: HeatmapTrace) => string): string {
  const W = fig.width ?? 640;
  const H = fig.height ?? 400;
  const m = fig.hideAxes ? { l: 8, r: 8, t: fig.title ? 30 : 8, b: 8 } : { l: 60, r: 20, t: fig.title ? 34 : 14, b: 46 };
  const id = `f${(svgCounter = (svgCounter + 1) % 1e9)}`; // unique ids when pictures are nested
  let [x0, x1] = extent(fig, "x");
  let [y0, y1] = extent(fig, "y");
  const xlog = fig.xaxis?.log ?? false;
  const ylog = fig.yaxis?.log ?? false;
  const tx = (v: number) => (xlog ? Math.log10(Math.max(v, 1e-12)) : v);
  const ty = (v: number) => (ylog ? Math.log10(Math.max(v, 1e-12)) : v);
  [x0, x1] = [tx(Math.max(x0, xlog ? 1e-12 : x0)), tx(x1)];
  [y0, y1] = [ty(Math.max(y0, ylog ? 1e-12 : y0)), ty(y1)];
  let pw = W - m.l - m.r;
  let ph = H - m.t - m.b;
  if (fig.square) {
    const s = Math.min(pw / (x1 - x0), ph / (y1 - y0));
    pw = s * (x1 - x0);
    ph = s * (y1 - y0);
  }
  const X = (v: number) => m.l + ((tx(v) - x0) / (x1 - x0)) * pw;
  const Y = (v: number) => m.t + ph - ((ty(v) - y0) / (y1 - y0)) * ph;
  // A square plot shrinks one side; the picture shrinks with it.
  const SW = Math.round(m.l + pw + m.r);
  const SH = Math.round(m.t + ph + m.b);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${SW}" height="${SH}" viewBox="0 0 ${SW} ${SH}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${SW}" height="${SH}" fill="white"/>`);
  out.push(`<defs><clipPath id="${id}c"><rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}"/></clipPath>` +
    `<marker id="${id}h" viewBox="0 0 6 6" refX="5" refY="3" markerWidth="5" markerHeight="5" orient="auto"><path d="M0,0L6,3L0,6z" fill="#444"/></marker></defs>`);
  if (fig.title) out.push(`<text x="${m.l + pw / 2}" y="20" text-anchor="middle" font-size="14">${esc(fig.title)}</text>`);
  // Grid and ticks.
  const xt = niceTicks(x0, x1, Math.max(3, Math.round(pw / 90)));
  const yt = niceTicks(y0, y1, Math.max(3, Math.round(ph / 60)));
  for (const v of fig.hideAxes ? [] : xt) {
    const px = m.l + ((v - x0) / (x1 - x0)) * pw;
    out.push(`<line x1="${px.toFixed(1)}" y1="${m.t}" x2="${px.toFixed(1)}" y2="${m.t + ph}" stroke="#eee"/>`);
    out.push(`<text x="${px.toFixed(1)}" y="${m.t + ph + 15}" text-anchor="middle" fill="#444">${fmt(xlog ? 10 ** v : v)}</text>`);
  }
  for (const v of fig.hideAxes ? [] : yt) {
    const py = m.t + ph - ((v - y0) / (y1 - y0)) * ph;
    out.push(`<line x1="${m.l}" y1="${py.toFixed(1)}" x2="${m.l + pw}" y2="${py.toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 6}" y="${(py + 4).toFixed(1)}" text-anchor="end" fill="#444">${fmt(ylog ? 10 ** v : v)}</text>`);
  }
  out.push(`<g clip-path="url(#${id}c)">`);
  fig.traces.forEach((t, i) => {
    const color = (t as { color?: string }).color ?? palette[i % palette.length];
    if (t.type === "image") {
      const [ix0, ix1, iy0, iy1] = [X(t.x0), X(t.x1), Y(t.y1), Y(t.y0)];
      out.push(`<image x="${ix0.toFixed(1)}" y="${iy0.toFixed(1)}" width="${(ix1 - ix0).toFixed(1)}" height="${(iy1 - iy0).toFixed(1)}" preserveAspectRatio="xMidYMid meet" href="${pngDataUrl(t.png)}" image-rendering="optimizeSpeed" style="image-rendering:pixelated"/>`);
    } else if (t.type === "heatmap") {
      const href = heatmapPng ? heatmapPng(t) : null;
      const [hx0, hx1, hy0, hy1] = [X(t.x0), X(t.x1), Y(t.y1), Y(t.y0)];
      if (href) {
        out.push(`<image x="${hx0.toFixed(1)}" y="${hy0.toFixed(1)}" width="${(hx1 - hx0).toFixed(1)}" height="${(hy1 - hy0).toFixed(1)}" preserveAspectRatio="none" opacity="${t.opacity ?? 1}" href="${href}" image-rendering="optimizeSpeed" style="image-rendering:pixelated"/>`);
      } else {
        const ny = t.z.length;
        const nx = t.z[0]?.length ?? 0;
        const [lo, hi] = zRange(t);
        const c = t.colors ?? DIVERGING;
        const cw = (hx1 - hx0) / nx;
        const ch = (hy1 - hy0) / ny;
        for (let r = 0; r < ny; r++) {
          for (let k = 0; k < nx; k++) {
            const rgb = colorAt(c, (t.z[r][k] - lo) / (hi - lo || 1));
            out.push(`<rect x="${(hx0 + k * cw).toFixed(1)}" y="${(hy1 - (r + 1) * ch).toFixed(1)}" width="${(cw + 0.5).toFixed(1)}" height="${(ch + 0.5).toFixed(1)}" fill="rgb(${rgb})" opacity="${t.opacity ?? 1}"/>`);
          }
        }
      }
    } else if (t.type === "line") {
      const pts: string[] = [];
      const segments: string[] = [];
      for (let k = 0; k < t.x.length; k++) {
        if (Number.isFinite(t.x[k]) && Number.isFinite(t.y[k])) pts.push(`${X(t.x[k]).toFixed(1)},${Y(t.y[k]).toFixed(1)}`);
        else if (pts.length) segments.push(pts.splice(0).join(" "));
      }
      if (pts.length) segments.push(pts.join(" "));
      for (const s of segments) {
        out.push(`<polyline points="${s}" fill="none" stroke="${color}" stroke-width="${t.width ?? 1.5}" opacity="${t.opacity ?? 1}"${t.dash ? ' stroke-dasharray="5,3"' : ""}/>`);
      }
    } else if (t.type === "scatter") {
      const r = (t.size ?? 4) / 2;
      const parts: string[] = [];
      for (let k = 0; k < t.x.length; k++) {
        if (!Number.isFinite(t.x[k]) || !Number.isFinite(t.y[k])) continue;
        const c = t.groups ? palette[t.groups[k] % palette.length] : color;
        parts.push(`<circle cx="${X(t.x[k]).toFixed(1)}" cy="${Y(t.y[k]).toFixed(1)}" r="${r}" fill="${c}"/>`);
      }
      out.push(`<g opacity="${t.opacity ?? 0.8}">${parts.join("")}</g>`);
    } else if (t.type === "arrows") {
      const parts: string[] = [];
      for (let k = 0; k < t.x.length; k++) {
        parts.push(`<line x1="${X(t.x[k]).toFixed(1)}" y1="${Y(t.y[k]).toFixed(1)}" x2="${X(t.x[k] + t.u[k]).toFixed(1)}" y2="${Y(t.y[k] + t.v[k]).toFixed(1)}"/>`);
      }
      out.push(`<g stroke="${color}" stroke-width="1" marker-end="url(#${id}h)">${parts.join("")}</g>`);
    }
  });
  out.push(`</g>`);
  if (!fig.hideAxes) out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  if (fig.xaxis?.title) out.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 34}" text-anchor="middle">${esc(fig.xaxis.title)}</text>`);
  if (fig.yaxis?.title) out.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(fig.yaxis.title)}</text>`);
  // Legend.
  const named = fig.traces.map((t, i) => ({ t, i })).filter(({ t }) => t.name && t.type !== "heatmap" && t.type !== "image");
  if ((fig.showLegend ?? named.length > 1) && named.length > 0) {
    const boxW = 12 + 7 * Math.max(...named.map(({ t }) => (t.name as string).length)) + 14;
    out.push(`<rect x="${m.l + pw - 124}" y="${m.t + 2}" width="${boxW}" height="${named.length * 15 + 6}" fill="white" opacity="0.8"/>`);
    named.forEach(({ t, i }, row) => {
      const color = (t as { color?: string }).color ?? palette[i % palette.length];
      const ly = m.t + 12 + row * 15;
      out.push(`<rect x="${m.l + pw - 120}" y="${ly - 8}" width="10" height="10" fill="${color}"/><text x="${m.l + pw - 106}" y="${ly + 1}">${esc(t.name as string)}</text>`);
    });
  }
  out.push(`</svg>`);
  return out.join("");
}

/** Figures side by side as one plotly figure (each in its own pair of axes). */
export function toPlotlyRow(figs: Figure[], title?: string): { data: unknown[]; layout: Record<string, unknown> } {
  const total = figs.reduce((a, f) => a + (f.width ?? 640), 0);
  const data: unknown[] = [];
  const layout: Record<string, unknown> = {
    width: total,
    height: Math.max(...figs.map((f) => f.height ?? 400)),
    title: title ? { text: title } : undefined,
    margin: { l: 60, r: 20, t: title ? 50 : 30, b: 50 },
    template: "plotly_white",
    showlegend: true,
    annotations: [] as unknown[],
  };
  let left = 0;
  figs.forEach((f, j) => {
    const one = toPlotly(f);
    const ax = j === 0 ? "" : String(j + 1);
    for (const t of one.data) data.push({ ...(t as object), xaxis: `x${ax}`, yaxis: `y${ax}`, showlegend: j === 0 && (t as { name?: string }).name ? true : false });
    const w = (f.width ?? 640) / total;
    const gap = j < figs.length - 1 ? 0.06 : 0;
    const xa = { ...(one.layout.xaxis as object), domain: [left, left + w - gap], anchor: `y${ax}` };
    const ya = { ...(one.layout.yaxis as object), anchor: `x${ax}`, ...(f.square ? { scaleanchor: `x${ax}` } : {}) };
    layout[`xaxis${ax}`] = xa;
    layout[`yaxis${ax}`] = ya;
    if (f.title) (layout.annotations as unknown[]).push({ text: f.title, xref: "paper", yref: "paper", x: left + (w - gap) / 2, y: 1.04, showarrow: false, xanchor: "center" });
    left += w;
  });
  return { data, layout };
}

/** Figures side by side as one SVG, under an optional title line and above an optional caption. */
export function toSvgRow(figs: Figure[], title?: string, caption?: string): string {
  const parts = figs.map((f) => toSvg(f, heatmapDataUrl));
  const sizes = parts.map((p) => {
    const m = /width="(\d+)" height="(\d+)"/.exec(p);
    return m ? [Number(m[1]), Number(m[2])] : [640, 400];
  });
  const top = title ? 24 : 0;
  const W = sizes.reduce((a, s) => a + s[0], 0);
  // Wrap the caption at about 7 px per character.
  const lines: string[] = [];
  for (const word of (caption ?? "").split(" ")) {
    if (lines.length && (lines[lines.length - 1] + " " + word).length * 7 < W - 16) lines[lines.length - 1] += " " + word;
    else if (word) lines.push(word);
  }
  const H = Math.max(...sizes.map((s) => s[1])) + top + lines.length * 16 + (lines.length ? 8 : 0);
  let x = 0;
  const body = parts.map((p, j) => {
    const placed = p.replace("<svg ", `<svg x="${x}" y="${top}" `);
    x += sizes[j][0];
    return placed;
  });
  const head = title ? `<text x="8" y="17" font-family="sans-serif" font-size="13">${esc(title)}</text>` : "";
  const base = Math.max(...sizes.map((s) => s[1])) + top;
  const foot = lines.map((l, i) => `<text x="8" y="${base + 14 + 16 * i}" font-family="sans-serif" font-size="12">${esc(l)}</text>`).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><rect width="${W}" height="${H}" fill="white"/>${head}${body.join("")}${foot}</svg>`;
}

export function zRange(t: HeatmapTrace): [number, number] {
  if (t.zmin !== undefined && t.zmax !== undefined) return [t.zmin, t.zmax];
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of t.z) for (const v of row) if (Number.isFinite(v)) ((lo = Math.min(lo, v)), (hi = Math.max(hi, v)));
  return [t.zmin ?? lo, t.zmax ?? hi];
}

/** Colour at t ∈ [0, 1] on a three-stop scale. */
export function colorAt(c: [string, string, string], t: number): [number, number, number] {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0.5));
  return u < 0.5 ? lerpColor(c[0], c[1], u * 2) : lerpColor(c[1], c[2], (u - 0.5) * 2);
}

/** A figure that displays itself: plotly JSON for interactive front ends, a PNG everywhere else. */
export class Chart {
  constructor(readonly figure: Figure, private readonly summary = "") {}

  [mime](): MimeBundle {
    return {
      "application/vnd.plotly.v1+json": toPlotly(this.figure),
      ...staticImage(this.svg()),
      "text/plain": this.summary || `Chart${this.figure.title ? `: ${this.figure.title}` : ""} (${this.figure.traces.length} traces)`,
    };
  }

  /** The static picture as SVG. */
  svg(): string {
    return toSvg(this.figure, heatmapDataUrl);
  }
}

/** A displayable chart of `figure`, with `summary` as its text form. */
export function chart(figure: Figure, summary?: string): Chart {
  return new Chart(figure, summary);
}

/** A heatmap as a small PNG (one pixel per cell), embedded in the SVG instead of rects. */
function heatmapDataUrl(t: HeatmapTrace): string {
  const ny = t.z.length;
  const nx = t.z[0]?.length ?? 0;
  const [lo, hi] = zRange(t);
  const c = t.colors ?? DIVERGING;
  const rgba = new Uint8Array(nx * ny * 4);
  for (let r = 0; r < ny; r++) {
    for (let k = 0; k < nx; k++) {
      const [R, G, B] = colorAt(c, (t.z[r][k] - lo) / (hi - lo || 1));
      const o = ((ny - 1 - r) * nx + k) * 4; // row 0 of z is the bottom (lowest y)
      rgba[o] = R;
      rgba[o + 1] = G;
      rgba[o + 2] = B;
      rgba[o + 3] = 255;
    }
  }
  return pngDataUrl(encodePng(rgba, nx, ny));
}
