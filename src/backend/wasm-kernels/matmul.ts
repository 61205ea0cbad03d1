/**
 * Matrix products on wasm.
 *
 * tfjs-backend-wasm 4.22 sends a product to XNNPACK only when neither side is transposed and
 * the batch is 1; everything else (every gradient of a dense layer, every attention product)
 * runs a scalar triple loop at ~1 GFLOP/s. Where the output has columns in eights, products run
 * in LatentLab's SIMD kernel (simdMatMul); the rest transpose explicitly (a memory pass, far
 * cheaper than the product) and run batched products one matrix at a time through XNNPACK,
 * addressing each matrix of the batch in place on the heap.
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, asWasmBackend, disposeAll, heapWindow, runOriginal, sizeOf } from "./heap";
import { transpose } from "./transpose";
import { byteOffset, mayDefer, ranges, runShares, simdKernels, threadScratch } from "../simd";
import { wasmThreads } from "../threads";

type TensorInfo = tf.TensorInfo;

/**
 * Below this many multiply-adds per matrix (or an inner size under 16), tfjs's scalar loop beats
 * XNNPACK's per-product set-up. Measured on [B, M, K, N]: 256×16×16×16 scalar 2.6 ms vs 8.4 ms,
 * 64×32×32×32 scalar 2.6 ms vs 1.3 ms, 32×64×32×64 scalar 5.7 ms vs 2.1 ms.
 */
const MIN_MACS_PER_MATRIX = 32 * 32 * 32;
const MIN_INNER = 16;

let cBatchMatMul: ((...args: unknown[]) => void) | null = null;

function swapLastTwo(rank: number): number[] {
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return perm;
}

/** `x` with its last two axes swapped, materialised (a new tensor the caller disposes). */
function transposeLastTwo(backend: WasmBackend, x: TensorInfo): TensorInfo {
  return transpose(backend, x, swapLastTwo(x.shape.length));
}

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

/**
 * out[i] = a[i] @ b[i] for rank-3 a [batchA, M, K], b [batchB, K, N], with batchA and batchB
 * equal or 1. Each product runs through XNNPACK on windows of the heap.
 */
function batchedXnn(backend: WasmBackend, a: TensorInfo, b: TensorInfo): TensorInfo {
  const [batchA, m, k] = a.shape;
  const [batchB, , n] = b.shape;
  const batch = Math.max(batchA, batchB);
  const out = backend.makeOutput([batch, m, n], "float32");
  if (cBatchMatMul === null) {
    cBatchMatMul = backend.wasm.cwrap("BatchMatMul", null, [
      "number", "array", "number", "number", "array", "number", "number", "number", "number",
    ]);
  }
  const aBase = backend.dataIdMap.get(a.dataId).memoryOffset;
  const bBase = backend.dataIdMap.get(b.dataId).memoryOffset;
  const outBase = backend.dataIdMap.get(out.dataId).memoryOffset;
  const aShape = shapeBytes([1, m, k]);
  const bShape = shapeBytes([1, k, n]);
  for (let i = 0; i < batch; i++) {
    const ai = heapWindow(backend, aBase + (batchA === 1 ? 0 : i * m * k * 4), m * k);
    const bi = heapWindow(backend, bBase + (batchB === 1 ? 0 : i * k * n * 4), k * n);
    const oi = heapWindow(backend, outBase + i * m * n * 4, m * n);
    cBatchMatMul(ai.id, aShape, 3, bi.id, bShape, 3, false, false, oi.id);
    ai.release();
    bi.release();
    oi.release();
  }
  return out;
}

/**
 * Products (and direct convs, conv.ts) smaller than this many multiply-adds run on the calling
 * thread alone: waking a helper costs more than it saves (and tfjs's threaded XNNPACK took
 * 0.99 ms for a VAE encoder's [128, 256] × [256, 40], which one thread of ours does in well
 * under a tenth of that).
 */
export const PARALLEL_MACS = 1 << 24;

/**
 * Products with a longer inner size run along it in blocks of K_BLOCK (matmulBlocked): a 1×1
 * conv's filter gradient over a U-Net batch (K = 100 352 pixels, [64, 32] out) took 39 ms
 * reading its operands from memory once per four output rows.
 */
const BLOCKED_K = 2048;
const K_BLOCK = 128;

/**
 * Products with more columns than this, and at least PACK_B_ROWS rows of A in each share, copy B
 * in strips first (packB in wasm/kernels.ts, matmul): a VAE's [128, 784] · [784, 512] on one
 * thread 4.6 → 2.8 ms, a VAE step on two threads 28.3 → 23.0 ms. With fewer rows the copy costs
 * about what it saves. Packed from 72 columns (before: from 264): on an AMD EPYC,
 * [128, 512] · [512, 256] on two threads 0.76 → 0.46 ms, [128, 512] · [512, 128] on one 0.53 →
 * 0.40 ms, a VAE step 17.2 → 16.3 ms (medians of five alternating runs); with 64 columns
 * [128, 256] · [256, 64] was slower.
 */
const PACK_B_COLUMNS = 64;
const PACK_B_ROWS = 16;

/** Columns in one of the product kernel's blocks of B (256 bytes; matmulPart in wasm/kernels.ts). */
const COLUMN_BLOCK = 64;

/**
 * a·b (+ bias, then relu if asked) by LatentLab's SIMD kernel (wasm/kernels.ts, matmul), for
 * float32 products with N a multiple of 8 whose batches are equal or one of them 1; null for
 * anything else. A transposed a is read in place; a transposed b is packed from where it lies,
 * or laid out [K, N] first where B is not packed.
 * XNNPACK packs its right-hand side on every call, and in training that side (the weights, or
 * an activation in a gradient) is new every call.
 */
export function simdMatMul(
  backend: WasmBackend, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean,
  bias: TensorInfo | undefined, relu: boolean,
): TensorInfo | null {
  if (a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length < 2 || b.shape.length < 2) return null;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  const sameOuter = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
  const [m, k] = transposeA ? a.shape.slice(-2).reverse() : a.shape.slice(-2);
  const n = b.shape[b.shape.length - (transposeB ? 2 : 1)];
  if (n % 8 !== 0 || !(sameOuter || batchA === 1 || batchB === 1) || (bias && sizeOf(bias.shape) !== n)) return null;
  const outShape = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB).concat([m, n]);
  const batch = Math.max(batchA, batchB);
  const parallel = m * n * k * batch >= PARALLEL_MACS;
  const blocked = k > BLOCKED_K && !bias && !relu;
  // A long K streams both operands from memory in each share: one share per thread then.
  const parts = parallel ? Math.max(1, Math.ceil(((blocked ? 1 : 2) * wasmThreads()) / batch)) : 1;
  // Shares split the columns first, in the kernel's blocks (each packs only its own part of B),
  // up to twice `parts`; then the rows, if fewer than `parts` column shares remain.
  const columnParts = blocked || !parallel ? 1 : Math.min(Math.ceil(n / COLUMN_BLOCK), 2 * parts);
  const columns = ranges(n, columnParts, COLUMN_BLOCK);
  const rows = ranges(m, Math.ceil(parts / columns.length), 4);
  // B's rows more than PACK_B_COLUMNS floats apart are read as packed strips (matmul in
  // wasm/kernels.ts), where enough of A's rows use them; a transposed B is packed from where it lies.
  const packB = !blocked && n > PACK_B_COLUMNS && rows.length > 0 && Math.min(...rows.map(([m0, m1]) => m1 - m0)) >= PACK_B_ROWS;
  const bb = transposeB && !packB ? transposeLastTwo(backend, b) : b;
  const out = backend.makeOutput(outShape, "float32");
  if (sizeOf(outShape) > 0) {
    const simd = simdKernels(backend);
    const [aAt, bAt, outAt] = [a, bb, out].map((t) => byteOffset(backend, t));
    const shares: number[][] = [];
    for (let i = 0; i < batch; i++) {
      const aI = aAt + (batchA === 1 ? 0 : 4 * i * m * k);
      const [rowStride, colStride] = transposeA ? [1, m] : [k, 1];
      const [bI, cI] = [bAt + (batchB === 1 ? 0 : 4 * i * k * n), outAt + 4 * i * m * n];
      for (const [c0, c1] of columns) {
        for (const [m0, m1] of rows) {
          shares.push(
            blocked
              ? [aI, rowStride, colStride, bI, cI, n, k, m0, m1, K_BLOCK, 0]
              : [aI, rowStride, colStride, bI, cI, bias ? byteOffset(backend, bias) : 0, n, k, m0, m1, relu ? 1 : 0, 0, 0, packB ? (transposeB ? 2 : 1) : 0, c0, c1],
          );
        }
      }
    }
    const kernel = blocked ? "matmulBlocked" : "matmulPart";
    // Each thread's copy of four rows of A, and of B's strips (see matmul in wasm/kernels.ts).
    const pack = threadScratch(backend, blocked ? 4 * K_BLOCK : (packB ? 68 : 4) * k, blocked ? 10 : 12);
    if (mayDefer(backend)) {
      // Left to the helpers (see `deferred`): what it reads stays allocated until it ends.
      runShares(backend, kernel, shares, pack, { reads: [a, bb, ...(bias ? [bias] : []), pack.info], writes: [out] });
    } else if (!parallel) {
      for (const share of shares) {
        share[pack.arg] = pack.at;
        (simd[kernel] as (...x: number[]) => void)(...share);
      }
    } else {
      runShares(backend, kernel, shares, pack);
    }
    disposeAll(backend, pack.info);
  }
  if (bb !== b) disposeAll(backend, bb);
  return out;
}

/**
 * aᵀ·b for one matrix a [K, M] and one column b [K, 1] (a dense layer's weight gradient when it
 * has one output) as the row bᵀ·a [1, M]: a column and a row share their memory, so this is the
 * SIMD product with nothing transposed (XNNPACK after an explicit transpose of a took 8.6 ms for
 * a DCGAN discriminator's 256 × 6272). Null where that does not apply.
 */
function columnBySimd(backend: WasmBackend, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): TensorInfo | null {
  if (!transposeA || sizeOf(a.shape.slice(0, -2)) !== 1 || sizeOf(b.shape.slice(0, -2)) !== 1) return null;
  const [k, m] = a.shape.slice(-2);
  if (b.shape[b.shape.length - (transposeB ? 2 : 1)] !== 1) return null;
  const row = { ...b, shape: [1, k] };
  const out = simdMatMul(backend, row, { ...a, shape: [k, m] }, false, false, undefined, false);
  if (out) out.shape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, 1];
  return out;
}

/** BatchMatMul: LatentLab's SIMD kernel, or transposes made explicit and batches split into XNNPACK products. */
function batchMatMul({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
  if (a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length < 2 || b.shape.length < 2) {
    return runOriginal("BatchMatMul", backend, { a, b }, { transposeA, transposeB });
  }
  const bySimd = simdMatMul(backend, a, b, transposeA, transposeB, undefined, false) ?? columnBySimd(backend, a, b, transposeA, transposeB);
  if (bySimd) return bySimd;
  const temps: TensorInfo[] = [];
  let aa = a;
  let bb = b;
  if (transposeA) temps.push((aa = transposeLastTwo(backend, a)));
  if (transposeB) temps.push((bb = transposeLastTwo(backend, b)));

  const outerA = aa.shape.slice(0, -2);
  const outerB = bb.shape.slice(0, -2);
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  const [m, k] = aa.shape.slice(-2);
  const n = bb.shape[bb.shape.length - 1];
  const outShape = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB).concat([m, n]);
  const sameOuter = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);

  let out: TensorInfo;
  const batched = (batchA > 1 || batchB > 1) && (sameOuter || batchA === 1 || batchB === 1);
  if (batched && m * k * n >= MIN_MACS_PER_MATRIX && k >= MIN_INNER) {
    out = batchedXnn(backend, { ...aa, shape: [batchA, m, k] }, { ...bb, shape: [batchB, k, n] });
  } else {
    // One matrix each (XNNPACK inside tfjs), tiny matrices, or a genuine outer broadcast.
    out = runOriginal("BatchMatMul", backend, { a: aa, b: bb }, { transposeA: false, transposeB: false });
  }
  disposeAll(backend, ...temps);
  out.shape = outShape;
  return out;
}

/** A rank-2 operand as a batch of one (tfjs's own kernels take rank 3): a view, nothing copied. */
function asBatch(x: TensorInfo): TensorInfo {
  return x.shape.length === 2 ? { ...x, shape: [1, ...x.shape] } : x;
}

/**
 * _FusedMatMul (product + bias + activation): LatentLab's SIMD kernel for linear and relu, or
 * transposes made explicit so XNNPACK runs it. Unlike tfjs's, it takes matrices of rank 2 as
 * well as batches (rank 3), and gives a result of the same rank.
 */
function fusedMatMul({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const given = inputs as Record<string, TensorInfo | undefined> as { a: TensorInfo; b: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
  const { transposeA, transposeB, activation } = attrs as unknown as { transposeA: boolean; transposeB: boolean; activation?: string };
  const act = activation ?? "linear";
  if ((act === "linear" || act === "relu") && !given.preluActivationWeights) {
    const bySimd = simdMatMul(backend, given.a, given.b, transposeA, transposeB, given.bias, act === "relu");
    if (bySimd) return bySimd;
  }
  const matrices = given.a.shape.length === 2 && given.b.shape.length === 2;
  const out = fusedByXnn(backend, { ...given, a: asBatch(given.a), b: asBatch(given.b) }, attrs);
  if (matrices) out.shape = out.shape.slice(1);
  return out;
}

/** Whether the current backend's _FusedMatMul is LatentLab's (which takes rank-2 operands as they are). */
export function takesMatrices(): boolean {
  return tf.getKernel("_FusedMatMul", tf.getBackend())?.kernelFunc === (fusedMatMul as unknown as tf.KernelFunc);
}

/** _FusedMatMul by tfjs's kernel (XNNPACK), transposes made explicit. */
function fusedByXnn(backend: WasmBackend, inputs: Record<string, TensorInfo | undefined>, attrs: Parameters<tf.KernelFunc>[0]["attrs"]): TensorInfo {
  const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
  if (!transposeA && !transposeB) return runOriginal("_FusedMatMul", backend, inputs as Record<string, TensorInfo>, attrs as Record<string, unknown>);
  const temps: TensorInfo[] = [];
  let aa = a;
  let bb = b;
  if (transposeA) temps.push((aa = transposeLastTwo(backend, a)));
  if (transposeB) temps.push((bb = transposeLastTwo(backend, b)));
  const out = runOriginal(
    "_FusedMatMul",
    backend,
    { ...(inputs as Record<string, TensorInfo>), a: aa, b: bb },
    { ...(attrs as Record<string, unknown>), transposeA: false, transposeB: false },
  );
  disposeAll(backend, ...temps);
  return out;
}

export const matmulKernels: tf.KernelConfig[] = [
  { kernelName: "BatchMatMul", backendName: "wasm", kernelFunc: batchMatMul as tf.KernelFunc },
  { kernelName: "_FusedMatMul", backendName: "wasm", kernelFunc: fusedMatMul as tf.KernelFunc },
];
