/**
 * Animations: frames (RGBA pictures of one size) as a looping GIF (gifenc), e.g. a GAN's
 * fixed-noise samples over training, or a diffusion model denoising.
 */
import { GIFEncoder, applyPalette, quantize } from "gifenc";
import { MimeBundle } from "../display/runtime";
import { mime } from "../display/show";

export interface Frame {
  rgba: Uint8Array;
  width: number;
  height: number;
}

export class Animation {
  constructor(
    readonly gif: Uint8Array,
    readonly frames: number,
    readonly description: string,
  ) {}

  [mime](): MimeBundle {
    return { "image/gif": Buffer.from(this.gif).toString("base64"), "text/plain": `Animation: ${this.description}` };
  }
}

/** Encodes frames as a looping GIF; a shared palette keeps colours steady between frames. */
export function animation(frames: Frame[], options: { fps?: number; title?: string } = {}): Animation {
  if (frames.length === 0) throw new Error("animation() needs at least one frame.");
  const { width, height } = frames[0];
  frames.forEach((f, i) => {
    if (f.width !== width || f.height !== height) throw new Error(`Frame ${i} is ${f.width}×${f.height}; frame 0 is ${width}×${height}. All frames must match.`);
  });
  // One palette from a sample of every frame's pixels.
  const sample = new Uint8Array(Math.min(frames.length, 16) * width * height * 4);
  const step = Math.max(1, Math.floor(frames.length / 16));
  for (let i = 0, k = 0; i < frames.length && k < 16; i += step, k++) sample.set(frames[i].rgba, k * width * height * 4);
  const palette = quantize(sample, 256);
  const gif = GIFEncoder();
  const delay = Math.round(1000 / (options.fps ?? 4));
  for (const f of frames) gif.writeFrame(applyPalette(f.rgba, palette), width, height, { palette, delay });
  gif.finish();
  return new Animation(gif.bytes(), frames.length, options.title ?? `${frames.length} frames`);
}
