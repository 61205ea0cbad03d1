/**
 * Transpose on wasm, for the permutations that are (batched) matrix transposes.
 *
 * tfjs-backend-wasm 4.22 moves every element of a rank-3 or rank-4 transpose through index
 * arithmetic, and its 2-D transpose writes down columns whose stride is a power of two for most
 * layers (64 channels: 13.5 ms for a 32×28×28×64 activation). Every matrix product with a
 * transposed side and every conv filter gradient transposes, so here axes that stay together
 * are merged first, and when what is left is a transpose of matrices ([1, 0], or [0, 2, 1] for a
 * batch of them, or either with a trailing axis left in place) it is done in blocks of rows:
 * reads along a row, writes along short runs of each output row (2.3 ms for the same tensor).
 * Other permutations keep tfjs's kernel.
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, asWasmBackend, heapView, runOriginal, sizeOf } from "./heap";
import { ranges, runShares, shareCount } from "../simd";

type TensorInfo = tf.TensorInfo;

/** Input rows handled per block: their output runs stay in cache while they are written. */
const BLOCK = 64;

/**
 * Merges axes that stay adjacent and in order under `perm` and drops axes of size 1.
 * Returns the merged input shape and the permutation of the merged axes.
 */
function mergeAxes(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const kept = perm.filter((a) => shape[a] !== 1);
  // Runs of consecutive input axes, in output order.
  const runs: number[][] = [];
  for (const a of kept) {
    const last = runs[runs.length - 1];
    if (last && last[last.length - 1] === a - 1) last.push(a);
    else runs.push([a]);
  }
  // Each run becomes one axis; its position among the input axes gives the merged permutation.
  const byInput = [...runs].sort((r, s) => r[0] - s[0]);
  return {
    shape: byInput.map((r) => sizeOf(r.map((a) => shape[a]))),
    perm: runs.map((r) => byInput.indexOf(r)),
  };
}

/**
 * out[b][c][r][:] = in[b][r][c][:] for `batch` matrices of rows × cols whose elements are runs of
 * `inner` values, from `src` to `dst` (element offsets).
 */
function transposeMatrices(arr: Float32Array | Int32Array, src: number, dst: number, batch: number, rows: number, cols: number, inner: number): void {
  const size = rows * cols * inner;
  const rowLen = cols * inner;
  const colLen = rows * inner;
  for (let b = 0; b < batch; b++, src += size, dst += size) {
    if (inner > 1) {
      for (let c = 0; c < cols; c++) {
        for (let r = 0, d = dst + c * colLen, s = src + c * inner; r < rows; r++, s += rowLen) {
          for (let i = 0; i < inner; i++) arr[d++] = arr[s + i];
        }
      }
      continue;
    }
    for (let r0 = 0; r0 < rows; r0 += BLOCK) {
      const r1 = Math.min(rows, r0 + BLOCK);
      for (let c = 0; c < cols; c++) {
        let d = dst + c * rows + r0;
        for (let r = r0, s = src + r0 * cols + c; r < r1; r++, s += cols) arr[d++] = arr[s];
      }
    }
  }
}

/** Matrices at least this large go to the SIMD kernel (smaller ones: its call costs more than it saves). */
const SIMD_ELEMENTS = 4096;
/** A share of a threaded transpose: about this many elements, in whole cache lines of output rows. */
const ELEMENTS_PER_SHARE = 1 << 16;

/**
 * `batch` matrices of rows × cols (byte offsets src, dst) by LatentLab's SIMD kernel
 * (wasm/kernels.ts, transposeRows: 4 × 4 blocks turned in registers); large ones shared between
 * threads by output rows. A 784 × 512 weight matrix: 0.75 ms in the loop above, 0.33 ms here;
 * a 32×28×28×64 activation to channels first: 2.9 → 0.5 ms.
 */
function transposeBySimd(backend: WasmBackend, src: number, dst: number, batch: number, rows: number, cols: number): void {
  const size = 4 * rows * cols;
  const parts = ranges(cols, shareCount(rows * cols, ELEMENTS_PER_SHARE), 16);
  for (let b = 0; b < batch; b++) {
    runShares(backend, "transposeRows", parts.map(([c0, c1]) => [src + b * size, dst + b * size, rows, cols, c0, c1]));
  }
}

/** [batch, rows, cols, inner] when the merged permutation swaps two axes (rows, cols), else null. */
function asMatrices(shape: number[], p: number[]): [number, number, number, number] | null {
  const is = (q: number[]) => p.length === q.length && p.every((a, i) => a === q[i]);
  if (is([1, 0])) return [1, shape[0], shape[1], 1];
  if (is([0, 2, 1])) return [shape[0], shape[1], shape[2], 1];
  if (is([1, 0, 2])) return [1, shape[0], shape[1], shape[2]];
  if (is([0, 2, 1, 3])) return [shape[0], shape[1], shape[2], shape[3]];
  return null;
}

/** `x` permuted by `perm` (a new tensor), by blocks where it is a matrix transpose. */
export function transpose(backend: WasmBackend, x: TensorInfo, perm: readonly number[]): TensorInfo {
  const merged = mergeAxes(x.shape, perm);
  const matrices = asMatrices(merged.shape, merged.perm);
  if ((x.dtype !== "float32" && x.dtype !== "int32") || (matrices === null && merged.perm.length > 1)) {
    return runOriginal("Transpose", backend, { x }, { perm: [...perm] });
  }
  const out = backend.makeOutput(perm.map((a) => x.shape[a]), x.dtype);
  const arr = heapView(backend, x.dtype).arr as Float32Array | Int32Array;
  const src = backend.dataIdMap.get(x.dataId).memoryOffset >>> 2;
  const dst = backend.dataIdMap.get(out.dataId).memoryOffset >>> 2;
  if (matrices === null) {
    arr.copyWithin(dst, src, src + sizeOf(x.shape)); // the order is unchanged
  } else if (matrices[3] === 1 && matrices[1] * matrices[2] >= SIMD_ELEMENTS) {
    transposeBySimd(backend, 4 * src, 4 * dst, matrices[0], matrices[1], matrices[2]);
  } else {
    transposeMatrices(arr, src, dst, ...matrices);
  }
  return out;
}

function transposeKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const { x } = inputs as { x: TensorInfo };
  const { perm } = attrs as unknown as { perm: number[] };
  return transpose(asWasmBackend(backend), x, perm);
}

export const transposeKernels: tf.KernelConfig[] = [
  { kernelName: "Transpose", backendName: "wasm", kernelFunc: transposeKernel as tf.KernelFunc },
];
