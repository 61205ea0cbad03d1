/**
 * Sum and Mean over leading or middle axes, and Tile, on wasm.
 *
 * tfjs-backend-wasm 4.22 reduces only innermost axes: to sum a conv's output over
 * [batch, height, width] (every bias gradient, every batch-norm statistic) it first transposes
 * the whole tensor. Here a contiguous block of reduced axes is summed in place as
 * [outer, reduced, inner] (accumulating in float64); innermost reductions keep tfjs's kernel.
 * Its Tile (batch norm's gradient broadcasts with it) walks every output element through index
 * arithmetic; here the input is copied once and each axis is filled by block copies.
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, asWasmBackend, disposeAll, heapF32, heapView, runOriginal, sizeOf } from "./heap";
import { byteOffset, lineSlots, ranges, runShares, shareCount, slotSums, threadScratch } from "../simd";

/** Elements per share of a sum: one under twice this runs on the calling thread. */
const ELEMENTS_PER_SHARE = 1 << 18;

type TensorInfo = tf.TensorInfo;

/** The reduced axes as [outer, reduce, inner] sizes when they are one contiguous block. */
function blockOf(shape: number[], axis: number | number[] | null): [number, number, number] | null {
  const axes = [...new Set(tf.util.parseAxisParam(axis ?? null as unknown as number, shape))].sort((a, b) => a - b);
  if (axes.length === 0) return null;
  for (let i = 1; i < axes.length; i++) if (axes[i] !== axes[i - 1] + 1) return null;
  const first = axes[0];
  const last = axes[axes.length - 1];
  return [sizeOf(shape.slice(0, first)), sizeOf(shape.slice(first, last + 1)), sizeOf(shape.slice(last + 1))];
}

function reduceShape(shape: number[], axis: number | number[] | null, keepDims: boolean): number[] {
  const axes = new Set(tf.util.parseAxisParam(axis ?? null as unknown as number, shape));
  return keepDims ? shape.map((d, i) => (axes.has(i) ? 1 : d)) : shape.filter((_, i) => !axes.has(i));
}

function makeReduce(name: "Sum" | "Mean"): tf.KernelFunc {
  return (({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo => {
    const backend = asWasmBackend(anyBackend);
    const { x } = inputs as { x: TensorInfo };
    const { axis, keepDims } = attrs as unknown as { axis: number | number[] | null; keepDims: boolean };
    const block = x.dtype === "float32" ? blockOf(x.shape, axis) : null;
    if (!block || block[2] === 1 || sizeOf(x.shape) === 0) {
      return runOriginal(name, backend, { x }, attrs as Record<string, unknown>);
    }
    const [outer, reduce, inner] = block;
    const out = backend.makeOutput(reduceShape(x.shape, axis, keepDims), "float32");
    const scale = name === "Mean" ? 1 / reduce : 1;
    const [xAt, outAt] = [x, out].map((t) => byteOffset(backend, t));
    if (outer === 1 && reduce * inner >= 2 * ELEMENTS_PER_SHARE) {
      sumRowShares(backend, xAt, outAt, reduce, inner, scale);
      return out;
    }
    // Shares of whole outer rows where there are several (a [B, H, W, C] sum over H and W, B at a
    // time): each column still sums row after row, so results never depend on the split.
    const parts = ranges(outer, shareCount(outer * reduce * inner, ELEMENTS_PER_SHARE));
    const shares = parts.map(([o0, o1]) => [xAt + 4 * o0 * reduce * inner, outAt + 4 * o0 * inner, o1 - o0, reduce, inner, scale, 0]);
    const acc = threadScratch(backend, 2 * inner, 6); // float64 sums
    runShares(backend, "sumMiddle", shares, acc);
    disposeAll(backend, acc.info);
    return out;
  }) as unknown as tf.KernelFunc;
}

/** Most shares of one outer row's rows (a fixed split, whatever the thread count). */
const MAX_ROW_SHARES = 4;

/**
 * One outer row, [reduce, inner] summed over its rows (every bias gradient: a [B, H, W, C]
 * tensor over B, H and W): in shares of rows, each column's float64 sum of a share's rows in
 * order, the shares' sums added in order after, then rounded to float32. (Shares of columns
 * were 5× slower: each read part of every cache line.) 128×28×28 over B, H, W, 32 columns, from
 * memory: 1.7 ms on one thread.
 */
function sumRowShares(backend: WasmBackend, xAt: number, outAt: number, reduce: number, inner: number, scale: number): void {
  const parts = ranges(reduce, shareCount(reduce * inner, ELEMENTS_PER_SHARE, MAX_ROW_SHARES));
  // Each share's float64 sums on cache lines of their own.
  const acc = lineSlots(backend, parts.length, 2 * inner);
  const shares = parts.map(([r0, r1], i) => [xAt + 4 * r0 * inner, 0, 1, r1 - r0, inner, 1, acc.at + acc.bytes * i]);
  runShares(backend, "sumMiddle", shares);
  const sums = slotSums(backend, acc, parts.length, 0, inner);
  const out = heapF32(backend);
  for (let i = 0; i < inner; i++) out[outAt / 4 + i] = sums[i] * scale;
  disposeAll(backend, acc.info);
}

function tile({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x } = inputs as { x: TensorInfo };
  const { reps } = attrs as unknown as { reps: number[] };
  if (!["float32", "int32", "bool"].includes(x.dtype)) return runOriginal("Tile", backend, { x }, attrs as Record<string, unknown>);
  const shape = x.shape;
  const outShape = shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (sizeOf(outShape) === 0) return out;
  const { arr, shift } = heapView(backend, x.dtype);
  const src0 = backend.dataIdMap.get(x.dataId).memoryOffset >>> shift;
  const dst0 = backend.dataIdMap.get(out.dataId).memoryOffset >>> shift;
  const rank = shape.length;
  // Elements in one output block from axis k inward.
  const outBlock = new Array(rank + 1).fill(1);
  const inBlock = new Array(rank + 1).fill(1);
  for (let k = rank - 1; k >= 0; k--) {
    outBlock[k] = outBlock[k + 1] * outShape[k];
    inBlock[k] = inBlock[k + 1] * shape[k];
  }
  // Fills the output block at `dst` (axes k…) from the input block at `src`.
  const fill = (k: number, src: number, dst: number): void => {
    if (k === rank) {
      arr[dst] = arr[src];
      return;
    }
    if (k === rank - 1) {
      const n = shape[k];
      for (let i = 0; i < n; i++) arr[dst + i] = arr[src + i];
    } else {
      for (let i = 0; i < shape[k]; i++) fill(k + 1, src + i * inBlock[k + 1], dst + i * outBlock[k + 1]);
    }
    const once = shape[k] * outBlock[k + 1];
    for (let r = 1; r < reps[k]; r++) arr.copyWithin(dst + r * once, dst, dst + once);
  };
  fill(0, src0, dst0);
  return out;
}

export const reduceKernels: tf.KernelConfig[] = [
  { kernelName: "Sum", backendName: "wasm", kernelFunc: makeReduce("Sum") },
  { kernelName: "Mean", backendName: "wasm", kernelFunc: makeReduce("Mean") },
  { kernelName: "Tile", backendName: "wasm", kernelFunc: tile as unknown as tf.KernelFunc },
];
