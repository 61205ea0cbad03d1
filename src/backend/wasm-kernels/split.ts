/**
 * Concat and SplitV on wasm as block copies.
 *
 * A U-Net joins each skip connection to the upsampled path along the channel axis, and the tape
 * splits the gradient back apart. tfjs-backend-wasm 4.22 does both element by element in
 * JavaScript (SplitV slices each part; Concat rebuilds every row): 11 ms to split a
 * 32×28×28×64 gradient in two. Along any axis both are, with the tensor seen as
 * [outer, axis·inner], one copy per outer row and part (copyRows, wasm/kernels.ts), the rows
 * of a large one shared between threads.
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, asWasmBackend, runOriginal, sizeOf } from "./heap";
import { byteOffset, ranges, runShares, shareCount } from "../simd";

type TensorInfo = tf.TensorInfo;

const BYTES: Partial<Record<tf.DataType, number>> = { float32: 4, int32: 4, bool: 1 };

/** Bytes a share copies: a copy under twice this runs whole on the calling thread. */
const BYTES_PER_SHARE = 1 << 20;

/** `rows` rows of `bytes` bytes from src to dst (each with its own stride), in shares for the threads. */
function copyRows(backend: WasmBackend, src: number, srcStride: number, dst: number, dstStride: number, rows: number, bytes: number): void {
  const shares = ranges(rows, shareCount(rows * bytes, BYTES_PER_SHARE));
  runShares(backend, "copyRows", shares.map(([r0, r1]) => [src + r0 * srcStride, srcStride, dst + r0 * dstStride, dstStride, r1 - r0, bytes]));
}

function splitV({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo[] {
  const backend = asWasmBackend(anyBackend);
  const { x } = inputs as { x: TensorInfo };
  const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
  const bytes = BYTES[x.dtype];
  if (!bytes) return runOriginal("SplitV", backend, { x }, attrs as Record<string, unknown>) as unknown as TensorInfo[];
  const ax = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax) as number[];
  const outer = sizeOf(x.shape.slice(0, ax));
  const inner = sizeOf(x.shape.slice(ax + 1)) * bytes;
  const rowBytes = x.shape[ax] * inner;
  let at = 0;
  return sizes.map((s) => {
    const out = backend.makeOutput(x.shape.map((d, i) => (i === ax ? s : d)), x.dtype);
    if (s > 0 && outer > 0 && inner > 0) copyRows(backend, byteOffset(backend, x) + at * inner, rowBytes, byteOffset(backend, out), s * inner, outer, s * inner);
    at += s;
    return out;
  });
}

function concat({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const parts = inputs as unknown as TensorInfo[];
  const { axis } = attrs as unknown as { axis: number };
  const dtype = parts[0].dtype;
  const bytes = BYTES[dtype];
  if (!bytes || parts.some((p) => p.dtype !== dtype)) {
    return runOriginal("Concat", backend, inputs as unknown as Record<string, TensorInfo>, attrs as Record<string, unknown>);
  }
  const ax = tf.util.parseAxisParam(axis, parts[0].shape)[0];
  const outShape = tf.backend_util.computeOutShape(parts.map((p) => p.shape), ax);
  const out = backend.makeOutput(outShape, dtype);
  const outer = sizeOf(outShape.slice(0, ax));
  const inner = sizeOf(outShape.slice(ax + 1)) * bytes;
  const rowBytes = outShape[ax] * inner;
  let at = 0;
  for (const p of parts) {
    const s = p.shape[ax];
    if (s > 0 && outer > 0 && inner > 0) copyRows(backend, byteOffset(backend, p), s * inner, byteOffset(backend, out) + at * inner, rowBytes, outer, s * inner);
    at += s;
  }
  return out;
}

export const splitKernels: tf.KernelConfig[] = [
  { kernelName: "SplitV", backendName: "wasm", kernelFunc: splitV as unknown as tf.KernelFunc },
  { kernelName: "Concat", backendName: "wasm", kernelFunc: concat as unknown as tf.KernelFunc },
];
