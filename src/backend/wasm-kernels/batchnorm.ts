/**
 * FusedBatchNorm (tf.batchNorm) on wasm over rows of channels, by SIMD and shared between threads.
 *
 * tfjs-backend-wasm 4.22 walks every element with four wrapping indices (13 ms for a DCGAN
 * generator's 128×14×14×64 activations). Here each row of C channels is one SIMD pass with the
 * same float32 operations in the same order (wasm/kernels.ts, batchNormRows), so the output is
 * that kernel's to the bit. Other layouts (statistics not one per channel, a missing offset or
 * scale) keep tfjs's kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, asWasmBackend, disposeAll, floatOffset, heapF32, runOriginal, sizeOf } from "./heap";
import { byteOffset, heapTables, lineSlots, passRanges, ranges, runShares, shareCount, slotSums } from "../simd";

type TensorInfo = tf.TensorInfo;

const ROWS_PER_SHARE = 4096;

function fusedBatchNorm({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x, mean, variance, offset, scale } = inputs as Record<string, TensorInfo | undefined> as {
    x: TensorInfo; mean: TensorInfo; variance: TensorInfo; offset?: TensorInfo; scale?: TensorInfo;
  };
  const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
  const C = x.shape[x.shape.length - 1] ?? 1;
  const perChannel = (t?: TensorInfo) => t !== undefined && t.dtype === "float32" && sizeOf(t.shape) === C;
  if (x.dtype !== "float32" || x.shape.length === 0 || ![mean, variance, offset, scale].every(perChannel)) {
    return runOriginal("FusedBatchNorm", backend, inputs as Record<string, TensorInfo>, attrs as Record<string, unknown>);
  }
  const y = backend.makeOutput(x.shape, "float32");
  const rows = sizeOf(x.shape) / C;
  if (rows === 0) return y;
  const parts = ranges(rows, shareCount(rows, ROWS_PER_SHARE));
  const nf = backend.makeOutput([parts.length * C], "float32"); // √(variance + ε), one copy per share
  const at = (t: TensorInfo) => byteOffset(backend, t);
  const shares = parts.map(([r0, r1], i) => [
    at(x), at(mean), at(variance), at(offset as TensorInfo), at(scale as TensorInfo), at(y), at(nf) + 4 * C * i, varianceEpsilon, r0, r1, C,
  ]);
  runShares(backend, "batchNormRows", shares);
  disposeAll(backend, nf);
  return y;
}

// ---- Training: the batch's statistics, then relu if asked, one kernel each way ----
//
// Built from tfjs ops (moments, then batchNorm, then relu), a DCGAN generator's 128×14×14×64
// norm + relu took 5 ms forward and ~16 ms with its gradient, in about twenty element-wise
// kernels. Here (wasm/kernels.ts, batchNormStats … batchNormGradApply):
//
//   forward    per-channel float64 sums Σx, Σx² (shares of rows, summed in order), then one pass
//              y = (x − μ)·s + β (then max(·, 0)), s = γ/√(σ² + ε), σ² = Σx²/n − μ² (biased, as
//              tf.moments)
//   gradient   float64 sums Σdz, Σdz·x̂, then one pass dx = k1·dz + k2·(x − μ) + k3 (see there)
//
// Outputs: y, μ and σ² (the module keeps running averages of both); the gradient recomputes z's
// sign for relu from x, μ and σ², with the forward pass's own arithmetic.

export const BATCH_NORM_TRAIN = "LatentLabBatchNormTrain";
export const BATCH_NORM_TRAIN_GRAD = "LatentLabBatchNormTrainGrad";

export interface BatchNormTrainAttrs {
  epsilon: number;
  relu: boolean;
}

/** Rows per share of the sums: fixed by the row count alone, so results never depend on the thread count. */
const SUM_ROWS_PER_SHARE = 2048;

/**
 * Per-channel float64 sums over the rows by `kernel` (shares of SUM_ROWS_PER_SHARE rows, each
 * into its own slot, combined in order): the first C and the second C of each slot.
 */
function channelSums(backend: WasmBackend, rows: number, C: number, share: (acc: number, r0: number, r1: number) => number[], kernel: "batchNormStats" | "batchNormGradSums"): [Float64Array, Float64Array] {
  const parts = ranges(rows, shareCount(rows, SUM_ROWS_PER_SHARE));
  const slots = lineSlots(backend, parts.length, 4 * C);
  new Uint8Array(backend.wasm.HEAPU8.buffer, slots.at, parts.length * slots.bytes).fill(0);
  runShares(backend, kernel, parts.map(([r0, r1], i) => share(slots.at + slots.bytes * i, r0, r1)));
  const sums: [Float64Array, Float64Array] = [slotSums(backend, slots, parts.length, 0, C), slotSums(backend, slots, parts.length, C, C)];
  disposeAll(backend, slots.info);
  return sums;
}

/** Per-channel r = 1/√(σ² + ε) and s = γ·r as float32, from σ² and γ in the heap: the same numbers both ways. */
function normScale(heap: Float32Array, variance: number, gamma: number, C: number, epsilon: number): { rstd: Float32Array; scale: Float32Array } {
  const rstd = new Float32Array(C);
  const scale = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    rstd[c] = 1 / Math.sqrt(heap[variance + c] + epsilon);
    scale[c] = heap[gamma + c] * rstd[c];
  }
  return { rstd, scale };
}

function batchNormTrain({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo[] {
  const backend = asWasmBackend(anyBackend);
  const at = (t: TensorInfo) => byteOffset(backend, t);
  const { x, gamma, beta } = inputs as Record<string, TensorInfo>;
  const { epsilon, relu } = attrs as unknown as BatchNormTrainAttrs;
  const C = x.shape[x.shape.length - 1];
  const rows = sizeOf(x.shape) / C;
  const y = backend.makeOutput(x.shape, "float32");
  const mean = backend.makeOutput([C], "float32");
  const variance = backend.makeOutput([C], "float32");
  const [s1, s2] = channelSums(backend, rows, C, (acc, r0, r1) => [at(x), acc, r0, r1, C], "batchNormStats");
  const heap = heapF32(backend);
  const [m, v] = [floatOffset(backend, mean), floatOffset(backend, variance)];
  for (let c = 0; c < C; c++) {
    const mu = s1[c] / rows;
    heap[m + c] = mu;
    heap[v + c] = Math.max(0, s2[c] / rows - mu * mu);
  }
  const { scale } = normScale(heap, v, floatOffset(backend, gamma), C, epsilon);
  const k = heapTables(backend, [scale]);
  runShares(backend, "batchNormApply", passRanges(rows, C).map(([r0, r1]) => [at(x), at(y), at(mean), k.at[0], at(beta), r0, r1, C, relu ? 1 : 0]));
  disposeAll(backend, k.info);
  return [y, mean, variance];
}

function batchNormTrainGrad({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo[] {
  const backend = asWasmBackend(anyBackend);
  const at = (t: TensorInfo) => byteOffset(backend, t);
  const { dy, x, gamma, beta, mean, variance } = inputs as Record<string, TensorInfo>;
  const { epsilon, relu } = attrs as unknown as BatchNormTrainAttrs;
  const C = x.shape[x.shape.length - 1];
  const rows = sizeOf(x.shape) / C;
  const { rstd, scale } = normScale(heapF32(backend), floatOffset(backend, variance), floatOffset(backend, gamma), C, epsilon);
  const sk = heapTables(backend, [scale, rstd]);
  const [sdz, sdzx] = channelSums(backend, rows, C, (acc, r0, r1) => [at(dy), at(x), at(mean), sk.at[0], at(beta), sk.at[1], acc, r0, r1, C, relu ? 1 : 0], "batchNormGradSums");
  const dx = backend.makeOutput(x.shape, "float32");
  const dgamma = backend.makeOutput([C], "float32");
  const dbeta = backend.makeOutput([C], "float32");
  const [k1, k2, k3] = [new Float32Array(C), new Float32Array(C), new Float32Array(C)];
  const heap = heapF32(backend);
  const [dg, db] = [floatOffset(backend, dgamma), floatOffset(backend, dbeta)];
  for (let c = 0; c < C; c++) {
    heap[dg + c] = sdzx[c];
    heap[db + c] = sdz[c];
    k1[c] = scale[c];
    k2[c] = (-scale[c] * rstd[c] * sdzx[c]) / rows;
    k3[c] = (-scale[c] * sdz[c]) / rows;
  }
  const k = heapTables(backend, [k1, k2, k3]);
  runShares(backend, "batchNormGradApply", passRanges(rows, C).map(([r0, r1]) => [
    at(dy), at(x), at(dx), at(mean), sk.at[0], at(beta), k.at[0], k.at[1], k.at[2], r0, r1, C, relu ? 1 : 0,
  ]));
  disposeAll(backend, sk.info, k.info);
  return [dx, dgamma, dbeta];
}

export const batchNormKernels: tf.KernelConfig[] = [
  { kernelName: "FusedBatchNorm", backendName: "wasm", kernelFunc: fusedBatchNorm as unknown as tf.KernelFunc },
  { kernelName: BATCH_NORM_TRAIN, backendName: "wasm", kernelFunc: batchNormTrain as unknown as tf.KernelFunc },
  { kernelName: BATCH_NORM_TRAIN_GRAD, backendName: "wasm", kernelFunc: batchNormTrainGrad as unknown as tf.KernelFunc },
];
