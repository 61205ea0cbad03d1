/**
 * Add, Sub, Mul and RealDiv on float32 tensors on wasm where one side is the output's shape and
 * the other is that shape or broadcasts along one block of axes: a bias over a batch
 * ([B, C] + [C]), per-image channels over pixels ([B, H, W, C] + [B, 1, 1, C]), batch-norm
 * statistics ([1, 1, 1, C] · [B, H, W, C]), one number per row ([B, 1] · [B, D]).
 *
 * tfjs-backend-wasm 4.22 computes a broadcast element by element through index arithmetic (a
 * VAE's [128, 256] + [256] bias took 1.8 ms, 30× the memory pass it is) and a same-shape op on
 * one thread. Here each is one SIMD pass over rows, shared between threads for large tensors.
 * Each output element is the same single float32 operation as tfjs's, so results are identical.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasmBackend, runOriginal, sizeOf } from "./heap";
import { byteOffset, ranges, runShares, shareCount } from "../simd";

type TensorInfo = tf.TensorInfo;

const OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 } as const;
type OpName = keyof typeof OPS;

/** Elements per share: an op under twice this runs whole on the calling thread (waking a helper costs more). */
const ELEMENTS_PER_SHARE = 1 << 16;

/**
 * `small` against `big` (the output's shape) as rows: [A, M, C] with small [A, C] read for all
 * M rows between (M = 1 when the shapes are equal); null when small varies along more than one
 * block of axes, or the shapes do not broadcast that way.
 */
export function broadcastLayout(big: number[], small: number[]): { rows: number; M: number; C: number } | null {
  if (small.length > big.length) return null;
  const s = [...Array(big.length - small.length).fill(1), ...small];
  if (s.some((d, i) => d !== big[i] && d !== 1)) return null;
  const n = sizeOf(big);
  if (s.every((d, i) => d === big[i])) {
    // Same shape: rows of a size that divides the whole, long enough for the SIMD loop.
    const C = [4096, 1024, 256, 64, 16, 4].find((c) => n % c === 0) ?? n;
    return { rows: n / C, M: 1, C };
  }
  // Axes where small is broadcast (size 1 in small, more in big) must form one block.
  const kinds = big.map((d, i) => (d === 1 ? "" : s[i] === d ? "s" : "b")).join("");
  const m = /^(s*)(b+)(s*)$/.exec(kinds);
  if (!m) return null;
  const real = big.filter((d) => d !== 1);
  const A = sizeOf(real.slice(0, m[1].length));
  const M = sizeOf(real.slice(m[1].length, m[1].length + m[2].length));
  const C = sizeOf(real.slice(m[1].length + m[2].length));
  return { rows: A * M, M, C };
}

function binary(name: OpName): tf.KernelFunc {
  return (({ inputs, backend: anyBackend }: Parameters<tf.KernelFunc>[0]): TensorInfo => {
    const backend = asWasmBackend(anyBackend);
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    if (a.dtype === "float32" && b.dtype === "float32") {
      const aBig = sizeOf(a.shape) >= sizeOf(b.shape);
      const [big, small] = aBig ? [a, b] : [b, a];
      const layout = sizeOf(big.shape) > 0 ? broadcastLayout(big.shape, small.shape) : null;
      // Ranks may differ ([C] against [B, C]): the output is big's shape.
      if (layout) {
        const out = backend.makeOutput(big.shape, "float32");
        const { rows, M, C } = layout;
        const n = rows * C;
        const parts = shareCount(n, ELEMENTS_PER_SHARE);
        const [pb, ps, po] = [big, small, out].map((t) => byteOffset(backend, t));
        const shares = ranges(rows, parts).map(([r0, r1]) => [pb, ps, po, r0, r1, M, C, OPS[name], aBig ? 0 : 1]);
        runShares(backend, "broadcastBinary", shares);
        return out;
      }
    }
    return runOriginal(name, backend, { a, b });
  }) as unknown as tf.KernelFunc;
}

export const binaryKernels: tf.KernelConfig[] = (Object.keys(OPS) as OpName[]).map((name) => ({
  kernelName: name,
  backendName: "wasm",
  kernelFunc: binary(name),
}));
