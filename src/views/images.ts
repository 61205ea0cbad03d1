/**
 * Image grids: a batch of images [n, h, w, c] as one PNG, for samples, reconstructions,
 * interpolations and datasets. Values are mapped from `range` (default [0, 1]) to 0–255; small
 * images are enlarged with nearest-neighbour pixels so that 28×28 digits stay crisp.
 */
import * as tf from "@tensorflow/tfjs";
import { mime } from "../display/show";
import { MimeBundle } from "../display/runtime";
import { encodePng } from "./png";

export interface GridOptions {
  /** Images per row; default ⌈√n⌉. */
  cols?: number;
  /** Value range mapped to black…white; default [0, 1]. Values outside are clipped. */
  range?: [number, number];
  /** Pixel magnification; default 2 for images up to 32 px, else 1. */
  scale?: number;
  /** Gap between images in output pixels; default 2. */
  gap?: number;
  /** Text description (text/plain). */
  title?: string;
}

export interface Pixels {
  rgba: Uint8Array;
  width: number;
  height: number;
}

/** Lays out images (values [n·h·w·c], c = 1 or 3) as one RGBA picture. */
export function gridPixels(values: ArrayLike<number>, shape: [number, number, number, number], options: GridOptions = {}): Pixels {
  const [n, h, w, c] = shape;
  if (c !== 1 && c !== 3 && c !== 4) throw new Error(`An image grid needs 1, 3 or 4 channels, got ${c} (shape [${shape}]).`);
  const cols = Math.max(1, Math.min(n, options.cols ?? Math.ceil(Math.sqrt(n))));
  const rows = Math.max(1, Math.ceil(n / cols));
  const s = options.scale ?? (Math.max(h, w) <= 32 ? 2 : 1);
  const gap = options.gap ?? 2;
  const [lo, hi] = options.range ?? [0, 1];
  const width = cols * w * s + (cols - 1) * gap;
  const height = rows * h * s + (rows - 1) * gap;
  const rgba = new Uint8Array(width * height * 4).fill(255);
  const span = hi - lo || 1;
  for (let i = 0; i < n; i++) {
    const ox = (i % cols) * (w * s + gap);
    const oy = Math.floor(i / cols) * (h * s + gap);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const src = ((i * h + y) * w + x) * c;
        const px = [0, 0, 0];
        for (let k = 0; k < 3; k++) {
          const v = values[src + (c === 1 ? 0 : k)];
          px[k] = Number.isFinite(v) ? Math.round(Math.min(1, Math.max(0, (v - lo) / span)) * 255) : 255;
        }
        for (let dy = 0; dy < s; dy++) {
          let o = ((oy + y * s + dy) * width + ox + x * s) * 4;
          for (let dx = 0; dx < s; dx++, o += 4) {
            rgba[o] = px[0];
            rgba[o + 1] = px[1];
            rgba[o + 2] = px[2];
            rgba[o + 3] = 255;
          }
        }
      }
    }
  }
  return { rgba, width, height };
}

/** A grid of images that displays itself as a PNG. */
export class ImageGrid {
  constructor(
    readonly png: Buffer,
    readonly width: number,
    readonly height: number,
    readonly description: string,
  ) {}

  [mime](): MimeBundle {
    return { "image/png": this.png.toString("base64"), "text/plain": this.description };
  }
}

function asImages(x: tf.Tensor): tf.Tensor4D {
  if (x.rank === 4) return x as tf.Tensor4D;
  if (x.rank === 3) return x.expandDims(0) as tf.Tensor4D;
  throw new Error(`imageGrid() expects images shaped [n, height, width, channels] or [height, width, channels], got [${x.shape}].`);
}

/** Draws a batch of images as one grid (reads the tensor; does not dispose it). */
export function imageGrid(x: tf.Tensor, options: GridOptions = {}): ImageGrid {
  const images = asImages(x);
  const shape = images.shape as [number, number, number, number];
  const values = images.dataSync();
  if (images !== x) images.dispose();
  const { rgba, width, height } = gridPixels(values, shape, options);
  const [lo, hi] = options.range ?? [0, 1];
  const what = options.title ?? `${shape[0]} image${shape[0] === 1 ? "" : "s"} ${shape[1]}×${shape[2]}×${shape[3]}`;
  return new ImageGrid(encodePng(rgba, width, height), width, height, `${what} (values ${lo}…${hi})`);
}
