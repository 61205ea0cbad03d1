/**
 * Layer normalisation over the last axis, optionally followed by SiLU, as one kernel and one
 * gradient kernel on wasm (the op that uses them is `layerNormOp` in nn/layers.ts).
 *
 * Built from tfjs ops, a U-Net's norm + SiLU is about twelve element-wise kernels, and the tape
 * keeps five full-size intermediates of each (x − mean, the normalised x, its scaled and shifted
 * versions, the sigmoid): at 28×28 most of a training step's heap. Here the forward pass keeps
 * the per-row mean and 1/σ and, with SiLU under a tape, σ(z) (keepSigmoid: recomputing it was
 * most of the gradient's work; a DDPM training step 4 % faster for 218 MB more heap at batch
 * 128), and the gradient recomputes the rest:
 *
 *   x̂ = (x − μ)·r,  z = γ·x̂ + β,  y = z (linear) or z·σ(z) (silu)
 *   dz = dy (linear) or dy·σ(z)·(1 + z·(1 − σ(z))) (silu)
 *   dγ = Σ_rows dz·x̂,  dβ = Σ_rows dz,  dx = r·(g − mean(g) − x̂·mean(g·x̂)) with g = dz·γ
 *
 * Each way is one SIMD kernel (wasm/kernels.ts, layerNormForward and layerNormBackward) in
 * float32 lanes with its own sigmoid (e^x to ~1e-7), reading each row once from memory; rows are
 * shared between threads.
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, asWasmBackend, disposeAll, floatOffset, heapF32, sizeOf } from "./heap";
import { byteOffset, heapTables, lineSlots, passRanges, ranges, runShares, shareCount, slotSums } from "../simd";

type TensorInfo = tf.TensorInfo;

export const LAYER_NORM = "LatentLabLayerNorm";
export const LAYER_NORM_GRAD = "LatentLabLayerNormGrad";

export interface LayerNormAttrs {
  epsilon: number;
  silu: boolean;
  /**
   * With silu, the forward pass also outputs σ(z) (x's shape) and the gradient takes it as
   * `sig`, reading it where it recomputed it (the sigmoid was most of the gradient's work; a
   * 28×28 U-Net's norms keep ≈ 1.7 MB more per image). Same values either way.
   */
  keepSigmoid?: boolean;
}

/**
 * Rows per share: a share's rows are one job for a thread (see runShares). The gradient's shares
 * are cut by row count alone, never by thread count, so its dγ and dβ (summed share by share, in
 * order) do not depend on how many threads ran.
 */
const ROWS_PER_SHARE = 2048;

function shareRanges(rows: number): [number, number][] {
  return ranges(rows, shareCount(rows, ROWS_PER_SHARE));
}

/** The constants of the SIMD sigmoid (wasm/kernels.ts, sigmoid4 and exp4), in its order, each as four lanes. */
export const SIGMOID_CONSTS = (() => {
  const table = new Float32Array(13 * 4);
  const values = [-87, 87, Math.LOG2E, 12582912, 0.693359375, -2.1219444e-4, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 0.5, 1];
  values.forEach((v, i) => table.fill(v, 4 * i, 4 * i + 4));
  new Int32Array(table.buffer, 48 * 4, 4).fill(127 - 0x4b400000);
  return table;
})();

/** A tensor holding SIGMOID_CONSTS (the caller disposes it) and the 16-byte-aligned address of the table in it. */
function sigmoidConsts(backend: WasmBackend): { info: TensorInfo; at: number } {
  const table = heapTables(backend, [SIGMOID_CONSTS]);
  return { info: table.info, at: table.at[0] };
}

function layerNorm({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo[] {
  const backend = asWasmBackend(anyBackend);
  const at = (t: TensorInfo) => byteOffset(backend, t);
  const { x, gamma, beta } = inputs as Record<string, TensorInfo>;
  const { epsilon, silu, keepSigmoid } = attrs as unknown as LayerNormAttrs;
  const c = x.shape[x.shape.length - 1];
  const rows = sizeOf(x.shape) / c;
  const y = backend.makeOutput(x.shape, "float32");
  const mean = backend.makeOutput([rows], "float32");
  const rstd = backend.makeOutput([rows], "float32");
  const sig = silu && keepSigmoid ? backend.makeOutput(x.shape, "float32") : null;
  const consts = sigmoidConsts(backend);
  const shares = passRanges(rows, c).map(([r0, r1]) => [
    at(x), at(y), at(gamma), at(beta), at(mean), at(rstd), r0, r1, c, epsilon, silu ? 1 : 0, consts.at, sig ? at(sig) : 0,
  ]);
  runShares(backend, "layerNormForward", shares);
  disposeAll(backend, consts.info);
  return sig ? [y, mean, rstd, sig] : [y, mean, rstd];
}

function layerNormGrad({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo[] {
  const backend = asWasmBackend(anyBackend);
  const at = (t: TensorInfo) => byteOffset(backend, t);
  const { dy, x, gamma, beta, mean, rstd, sig } = inputs as Record<string, TensorInfo | undefined> as Record<string, TensorInfo> & { sig?: TensorInfo };
  const { silu } = attrs as unknown as LayerNormAttrs;
  const c = x.shape[x.shape.length - 1];
  const rows = sizeOf(x.shape) / c;
  const dx = backend.makeOutput(x.shape, "float32");
  const dgamma = backend.makeOutput([c], "float32");
  const dbeta = backend.makeOutput([c], "float32");
  const parts = shareRanges(rows);
  // Per share: 2c float64 sums (dγ, dβ), then 2c float32 block sums (each c rounded up to fours)
  // and 128 floats of per-row means (see layerNormBackward).
  const cPad = 4 * Math.ceil(c / 4);
  const perShare = 4 * c + 2 * cPad + 128;
  const consts = sigmoidConsts(backend);
  // A cache line of its own for each share's sums and block (shares run on different threads).
  const scratch = lineSlots(backend, parts.length, perShare);
  new Uint8Array(backend.wasm.HEAPU8.buffer, scratch.at, parts.length * scratch.bytes).fill(0);
  const shares = parts.map(([r0, r1], i) => {
    const acc = scratch.at + scratch.bytes * i;
    return [at(dy), at(x), at(gamma), at(beta), at(mean), at(rstd), at(dx), acc, acc + 16 * c, r0, r1, c, silu ? 1 : 0, consts.at, silu && sig ? at(sig) : 0];
  });
  runShares(backend, "layerNormBackward", shares);
  const heap = heapF32(backend);
  heap.set(slotSums(backend, scratch, parts.length, 0, c), floatOffset(backend, dgamma));
  heap.set(slotSums(backend, scratch, parts.length, c, c), floatOffset(backend, dbeta));
  disposeAll(backend, scratch.info, consts.info);
  return [dx, dgamma, dbeta];
}

export const layerNormKernels: tf.KernelConfig[] = [
  { kernelName: LAYER_NORM, backendName: "wasm", kernelFunc: layerNorm as unknown as tf.KernelFunc },
  { kernelName: LAYER_NORM_GRAD, backendName: "wasm", kernelFunc: layerNormGrad as unknown as tf.KernelFunc },
];
