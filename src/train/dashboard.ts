/**
 * The live training dashboard: one output, updated in place, with loss curves (raw and
 * smoothed, one colour per loss term), progress (steps/s, ETA) and the model's own preview
 * (a sample grid, or a 2-D view) refreshed every N steps.
 *
 * Frames are only rendered when the throttled live output is about to send one, so the cost
 * is a few renders per second whatever the step rate; `stats` says what it cost.
 */
import { MimeBundle } from "../display/runtime";
import { Live, live, mime } from "../display/show";
import { Figure, LineTrace, palette, toPlotlyRow, toSvgRow } from "../views/figure";
import { ImageGrid } from "../views/images";
import { staticImage } from "../views/raster";
import { History } from "./history";

/** The parts of a model the dashboard reads. */
export interface Watched {
  readonly family: string;
  readonly history: History;
  readonly stepCount: number;
  preview(): unknown;
}

const MAX_POINTS = 600;

/** Loss curves from a history: raw (faint) and smoothed, per term. */
export function lossFigure(history: History, title = "losses"): Figure {
  const n = history.length;
  const stride = Math.max(1, Math.ceil(n / MAX_POINTS));
  const idx: number[] = [];
  for (let i = 0; i < n; i += stride) idx.push(i);
  if (n > 0 && idx[idx.length - 1] !== n - 1) idx.push(n - 1);
  const xs = idx.map((i) => history.steps[i]);
  const traces: LineTrace[] = [];
  history.terms.forEach((term, k) => {
    const color = palette[k % palette.length];
    const raw = history.losses[term];
    const smooth = history.smoothed(term);
    traces.push({ type: "line", x: xs, y: idx.map((i) => raw[i]), color, opacity: 0.25, width: 1 });
    traces.push({ type: "line", name: term, x: xs, y: idx.map((i) => smooth[i]), color, width: 2 });
  });
  return { title, traces, xaxis: { title: "step" }, yaxis: { title: "loss" }, width: 520, height: 360, showLegend: true };
}

/** A preview as a figure panel: figures as they are, image grids as a picture, text as a caption. */
export function previewFigure(preview: unknown): Figure | string | null {
  if (typeof preview === "string") return preview;
  if (preview && typeof preview === "object" && "figure" in preview) return (preview as { figure: Figure }).figure;
  if (preview instanceof ImageGrid) {
    const scale = Math.min(1, 360 / preview.width, 320 / preview.height);
    return {
      title: preview.description.split(" (")[0],
      traces: [{ type: "image", png: preview.png, x0: 0, x1: preview.width, y0: 0, y1: preview.height }],
      xaxis: { range: [0, preview.width] },
      yaxis: { range: [0, preview.height] },
      hideAxes: true,
      square: true,
      width: Math.round(preview.width * scale) + 16,
      height: Math.round(preview.height * scale) + 40,
    };
  }
  return null;
}

/**
 * A loss chart and a preview side by side, as one displayable bundle. Frames in flight carry
 * SVG (cheap to make); the final frame, the one a saved notebook keeps, carries a PNG.
 */
export function dashboardBundle(history: History, preview: Figure | string | null, status: string, final = true): MimeBundle {
  const caption = typeof preview === "string" ? preview : undefined;
  const figs = [lossFigure(history), ...(preview && typeof preview !== "string" ? [preview] : [])];
  const svg = toSvgRow(figs, status, caption);
  return {
    "application/vnd.plotly.v1+json": toPlotlyRow(figs, caption ? `${status}<br>${caption}` : status),
    ...(final ? staticImage(svg) : { "image/svg+xml": svg }),
    "text/plain": caption ? `${status}\n${caption}` : status,
  };
}

function seconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export class Dashboard {
  private readonly out: Live;
  private readonly started = performance.now();
  private readonly firstStep: number;
  private panel: Figure | string | null = null;
  private panelStep = -1;
  private wantPanel = true;
  private done = 0;
  /** What the dashboard cost: frames rendered and milliseconds spent rendering them. */
  readonly stats = { frames: 0, renderMs: 0, previews: 0, previewMs: 0 };

  constructor(
    private readonly model: Watched,
    private readonly total: number,
    private readonly every: number,
  ) {
    this.firstStep = model.stepCount;
    this.out = live({ minIntervalMs: 500 });
  }

  /** Called after each step; `done` counts the steps of this run. */
  tick(done: number): void {
    this.done = done;
    if (done % this.every === 0) this.wantPanel = true;
    this.out.update(() => this.frame(false));
  }

  /** Sends the final frame (with a fresh preview) and stops updating. */
  close(done: number): void {
    this.done = done;
    this.wantPanel = true;
    this.out.update(() => this.frame(true));
    this.out.close();
  }

  private status(final: boolean): string {
    const elapsed = (performance.now() - this.started) / 1000;
    const rate = this.done / Math.max(elapsed, 1e-9);
    const eta = (this.total - this.done) / Math.max(rate, 1e-9);
    const last = this.model.history.recentMean(20);
    const losses = Object.entries(last).map(([k, v]) => `${k} ${v.toPrecision(3)}`).join(" · ");
    const head = final
      ? `${this.model.family}: ${this.done} of ${this.total} steps in ${seconds(elapsed)} (step ${this.model.stepCount})`
      : `${this.model.family}: step ${this.done}/${this.total} · ${rate.toFixed(1)} steps/s · ETA ${seconds(eta)}`;
    return `${head} · ${losses}`;
  }

  private frame(final: boolean): { [mime](): MimeBundle } {
    const t0 = performance.now();
    if (this.wantPanel && this.model.stepCount !== this.panelStep) {
      const p0 = performance.now();
      this.panel = previewFigure(this.model.preview());
      this.stats.previews += 1;
      this.stats.previewMs += performance.now() - p0;
      this.panelStep = this.model.stepCount;
      this.wantPanel = false;
    }
    const bundle = dashboardBundle(this.model.history, this.panel, this.status(final), final);
    this.stats.frames += 1;
    this.stats.renderMs += performance.now() - t0;
    return { [mime]: () => bundle };
  }

  /** Steps of this run so far. */
  get steps(): number {
    return this.model.stepCount - this.firstStep;
  }
}
