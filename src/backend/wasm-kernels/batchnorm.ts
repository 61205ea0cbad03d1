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
import { asWasmBackend, disposeAll, runOriginal, sizeOf } from "./heap";
import { byteOffset, ranges, runShares, shareCount } from "../simd";

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

export const batchNormKernels: tf.KernelConfig[] = [
  { kernelName: "FusedBatchNorm", backendName: "wasm", kernelFunc: fusedBatchNorm as unknown as tf.KernelFunc },
];
