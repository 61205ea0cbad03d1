/**
 * Layer normalisation over the last axis, optionally followed by SiLU, as one kernel and one
 * gradient kernel on wasm (the op that uses them is `layerNormOp` in nn/fused.ts).
 *
 * Built from tfjs ops, a U-Net's norm + SiLU is about twelve element-wise kernels, and the tape
 * keeps five full-size intermediates of each (x − mean, the normalised x, its scaled and shifted
 * versions, the sigmoid): at 28×28 most of a training step's heap. Here the forward pass keeps
 * nothing but the per-row mean and 1/σ, and the gradient recomputes the rest:
 *
 *   x̂ = (x − μ)·r,  z = γ·x̂ + β,  y = z (linear) or z·σ(z) (silu)
 *   dz = dy (linear) or dy·σ(z)·(1 + z·(1 − σ(z))) (silu)
 *   dγ = Σ_rows dz·x̂,  dβ = Σ_rows dz,  dx = r·(g − mean(g) − x̂·mean(g·x̂)) with g = dz·γ
 *
 * The loops run over the heap; the sigmoids are tfjs-backend-wasm's own (XNNPACK, vectorised).
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, asWasmBackend, disposeAll, floatOffset, heapF32, runOriginal, sizeOf } from "./heap";

type TensorInfo = tf.TensorInfo;

export const LAYER_NORM = "LatentLabLayerNorm";
export const LAYER_NORM_GRAD = "LatentLabLayerNormGrad";

export interface LayerNormAttrs {
  epsilon: number;
  silu: boolean;
}

/** z = γ·(x − μ)·r + β for every row, into `out` (element offsets into the heap). */
function affine(heap: Float32Array, x: number, out: number, g: number, b: number, mean: number, rstd: number, rows: number, c: number): void {
  for (let r = 0, o = 0; r < rows; r++, o += c) {
    const m = heap[mean + r];
    const s = heap[rstd + r];
    for (let i = 0; i < c; i++) heap[out + o + i] = (heap[x + o + i] - m) * s * heap[g + i] + heap[b + i];
  }
}

/** σ(z) as a new tensor (tfjs's vectorised kernel). */
function sigmoidOf(backend: WasmBackend, z: TensorInfo): TensorInfo {
  return runOriginal("Sigmoid", backend, { x: z });
}

function layerNorm({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo[] {
  const backend = asWasmBackend(anyBackend);
  const { x, gamma, beta } = inputs as Record<string, TensorInfo>;
  const { epsilon, silu } = attrs as unknown as LayerNormAttrs;
  const c = x.shape[x.shape.length - 1];
  const rows = sizeOf(x.shape) / c;
  const y = backend.makeOutput(x.shape, "float32");
  const mean = backend.makeOutput([rows], "float32");
  const rstd = backend.makeOutput([rows], "float32");
  let heap = heapF32(backend);
  const xo = floatOffset(backend, x);
  const mo = floatOffset(backend, mean);
  const ro = floatOffset(backend, rstd);
  for (let r = 0, o = xo; r < rows; r++, o += c) {
    let sum = 0;
    for (let i = 0; i < c; i++) sum += heap[o + i];
    const m = sum / c;
    let sq = 0;
    for (let i = 0; i < c; i++) {
      const d = heap[o + i] - m;
      sq += d * d;
    }
    heap[mo + r] = m;
    heap[ro + r] = 1 / Math.sqrt(sq / c + epsilon);
  }
  const yo = floatOffset(backend, y);
  affine(heap, xo, yo, floatOffset(backend, gamma), floatOffset(backend, beta), mo, ro, rows, c);
  if (silu) {
    const s = sigmoidOf(backend, y);
    heap = heapF32(backend);
    const so = floatOffset(backend, s);
    const n = rows * c;
    for (let i = 0; i < n; i++) heap[yo + i] *= heap[so + i];
    disposeAll(backend, s);
  }
  return [y, mean, rstd];
}

function layerNormGrad({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo[] {
  const backend = asWasmBackend(anyBackend);
  const { dy, x, gamma, beta, mean, rstd } = inputs as Record<string, TensorInfo>;
  const { silu } = attrs as unknown as LayerNormAttrs;
  const c = x.shape[x.shape.length - 1];
  const n = sizeOf(x.shape);
  const rows = n / c;
  const dx = backend.makeOutput(x.shape, "float32");
  const dgamma = backend.makeOutput([c], "float32");
  const dbeta = backend.makeOutput([c], "float32");
  // dz: dy itself, or dy·σ'(z)-ish for silu, written into dx's memory (read again row by row).
  let dzo = floatOffset(backend, dy);
  if (silu) {
    const z = backend.makeOutput(x.shape, "float32");
    affine(heapF32(backend), floatOffset(backend, x), floatOffset(backend, z), floatOffset(backend, gamma), floatOffset(backend, beta), floatOffset(backend, mean), floatOffset(backend, rstd), rows, c);
    const s = sigmoidOf(backend, z);
    const heap = heapF32(backend);
    const zo = floatOffset(backend, z);
    const so = floatOffset(backend, s);
    const dyo = floatOffset(backend, dy);
    dzo = floatOffset(backend, dx);
    for (let i = 0; i < n; i++) {
      const si = heap[so + i];
      heap[dzo + i] = heap[dyo + i] * si * (1 + heap[zo + i] * (1 - si));
    }
    disposeAll(backend, z, s);
  }
  const heap = heapF32(backend);
  const xo = floatOffset(backend, x);
  const go = floatOffset(backend, gamma);
  const mo = floatOffset(backend, mean);
  const ro = floatOffset(backend, rstd);
  const dxo = floatOffset(backend, dx);
  const dg = new Float64Array(c);
  const db = new Float64Array(c);
  for (let r = 0, o = 0; r < rows; r++, o += c) {
    const m = heap[mo + r];
    const s = heap[ro + r];
    let sumG = 0;
    let sumGX = 0;
    for (let i = 0; i < c; i++) {
      const dz = heap[dzo + o + i];
      const xh = (heap[xo + o + i] - m) * s;
      dg[i] += dz * xh;
      db[i] += dz;
      const g = dz * heap[go + i];
      sumG += g;
      sumGX += g * xh;
    }
    const meanG = sumG / c;
    const meanGX = sumGX / c;
    for (let i = 0; i < c; i++) {
      const xh = (heap[xo + o + i] - m) * s;
      heap[dxo + o + i] = s * (heap[dzo + o + i] * heap[go + i] - meanG - xh * meanGX);
    }
  }
  const dgo = floatOffset(backend, dgamma);
  const dbo = floatOffset(backend, dbeta);
  for (let i = 0; i < c; i++) {
    heap[dgo + i] = dg[i];
    heap[dbo + i] = db[i];
  }
  return [dx, dgamma, dbeta];
}

export const layerNormKernels: tf.KernelConfig[] = [
  { kernelName: LAYER_NORM, backendName: "wasm", kernelFunc: layerNorm as unknown as tf.KernelFunc },
  { kernelName: LAYER_NORM_GRAD, backendName: "wasm", kernelFunc: layerNormGrad as unknown as tf.KernelFunc },
];
