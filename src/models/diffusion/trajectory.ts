/**
 * A sampling run you can look inside: xₜ and the predicted x̂₀ at chosen steps.
 *
 *   const path = model.trace({ n: 16, sampler: lab.samplers.ddpm({ steps: 100 }), frames: 10 });
 *   path.strip()   // images: one row per sample, one column per recorded step
 *   path.gif()     // images: the denoising as an animation
 *   path.paths()   // points: particle trajectories from noise to data
 */
import * as tf from "@tensorflow/tfjs";
import { MimeBundle } from "../../display/runtime";
import { mime } from "../../display/show";
import { Chart, LineTrace, chart, palette } from "../../views/figure";
import { Animation, animation } from "../../views/gif";
import { ImageGrid, gridPixels, imageGrid } from "../../views/images";

export class Trajectory {
  constructor(
    /** The final samples, in data space (dispose when done). */
    readonly samples: tf.Tensor,
    /** Which sampling step (1-based) each frame was taken after. */
    readonly steps: number[],
    /** xₜ after each recorded step, in data space. */
    readonly xt: Float32Array[],
    /** The denoiser's x̂₀ at each recorded step, in data space. */
    readonly x0: Float32Array[],
    readonly shape: number[],
    readonly isImage: boolean,
    readonly sampler: string,
  ) {}

  /** Images: rows of samples, columns of recorded steps (xₜ, or x̂₀ with `which: "x0"`). */
  strip(options: { rows?: number; which?: "xt" | "x0" } = {}): ImageGrid {
    if (!this.isImage) throw new Error("strip() is for images; for points use paths().");
    const frames = options.which === "x0" ? this.x0 : this.xt;
    const [n, h, w, c] = this.shape;
    const rows = Math.min(options.rows ?? 6, n);
    const size = h * w * c;
    const all = new Float32Array(rows * frames.length * size);
    for (let r = 0; r < rows; r++) for (let f = 0; f < frames.length; f++) all.set(frames[f].subarray(r * size, (r + 1) * size), (r * frames.length + f) * size);
    const t = tf.tensor4d(all, [rows * frames.length, h, w, c]);
    const grid = imageGrid(t, { cols: frames.length, title: `${options.which === "x0" ? "predicted x̂₀" : "xₜ"} after steps ${this.steps.join(", ")} (${this.sampler})` });
    t.dispose();
    return grid;
  }

  /** Images: the denoising of the first samples as a looping GIF. */
  gif(options: { n?: number; fps?: number; which?: "xt" | "x0" } = {}): Animation {
    if (!this.isImage) throw new Error("gif() is for images; for points use paths().");
    const frames = options.which === "x0" ? this.x0 : this.xt;
    const [, h, w, c] = this.shape;
    const n = Math.min(options.n ?? 16, this.shape[0]);
    const pics = frames.map((f) => gridPixels(f.subarray(0, n * h * w * c), [n, h, w, c], { cols: Math.ceil(Math.sqrt(n)) }));
    return animation(pics, { fps: options.fps ?? 4, title: `denoising, ${frames.length} frames (${this.sampler})` });
  }

  /** Points: each particle's path from noise to data, and where it ends. */
  paths(options: { n?: number } = {}): Chart {
    if (this.isImage) throw new Error("paths() is for 2-D points; for images use strip() or gif().");
    const n = Math.min(options.n ?? 60, this.shape[0]);
    const traces: LineTrace[] = [];
    for (let i = 0; i < n; i++) {
      traces.push({ type: "line", x: this.xt.map((f) => f[2 * i]), y: this.xt.map((f) => f[2 * i + 1]), color: palette[i % palette.length], width: 1, opacity: 0.6 });
    }
    const last = this.xt[this.xt.length - 1];
    const m = last.length / 2;
    return chart(
      {
        title: `particle paths (${this.sampler})`,
        traces: [
          ...traces,
          { type: "scatter", name: "samples", x: Float32Array.from({ length: m }, (_, i) => last[2 * i]), y: Float32Array.from({ length: m }, (_, i) => last[2 * i + 1]), color: "#333", size: 3, opacity: 0.7 },
        ],
        square: true,
        width: 440,
        height: 440,
        showLegend: false,
      },
      `${n} particle paths over ${this.steps.length} recorded steps`,
    );
  }

  dispose(): void {
    this.samples.dispose();
  }

  [mime](): MimeBundle {
    return (this.isImage ? this.strip() : this.paths())[mime]() as MimeBundle;
  }
}
