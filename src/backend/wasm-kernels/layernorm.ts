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
 * The loops are LatentLab's SIMD kernels (wasm/kernels.ts), on one thread (sharing their rows with
 * a helper thread did not make a U-Net step faster); the sigmoids are tfjs-backend-wasm's own (XNNPACK, vectorised and threaded).
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, asWasmBackend, disposeAll, runOriginal, sizeOf } from "./heap";
import { byteOffset, simdKernels } from "../simd";

type TensorInfo = tf.TensorInfo;

export const LAYER_NORM = "LatentLabLayerNorm";
export const LAYER_NORM_GRAD = "LatentLabLayerNormGrad";

export interface LayerNormAttrs {
  epsilon: number;
  silu: boolean;
}

/** σ(z) as a new tensor (tfjs's vectorised kernel). */
function sigmoidOf(backend: WasmBackend, z: TensorInfo): TensorInfo {
  return runOriginal("Sigmoid", backend, { x: z });
}

function layerNorm({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo[] {
  const backend = asWasmBackend(anyBackend);
  const simd = simdKernels(backend);
  const at = (t: TensorInfo) => byteOffset(backend, t);
  const { x, gamma, beta } = inputs as Record<string, TensorInfo>;
  const { epsilon, silu } = attrs as unknown as LayerNormAttrs;
  const c = x.shape[x.shape.length - 1];
  const n = sizeOf(x.shape);
  const rows = n / c;
  const y = backend.makeOutput(x.shape, "float32");
  const mean = backend.makeOutput([rows], "float32");
  const rstd = backend.makeOutput([rows], "float32");
  simd.layerNormStats(at(x), at(mean), at(rstd), rows, c, epsilon);
  simd.layerNormAffine(at(x), at(y), at(gamma), at(beta), at(mean), at(rstd), rows, c);
  if (silu) {
    const s = sigmoidOf(backend, y);
    simd.mulInPlace(at(y), at(s), n);
    disposeAll(backend, s);
  }
  return [y, mean, rstd];
}

function layerNormGrad({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo[] {
  const backend = asWasmBackend(anyBackend);
  const simd = simdKernels(backend);
  const at = (t: TensorInfo) => byteOffset(backend, t);
  const { dy, x, gamma, beta, mean, rstd } = inputs as Record<string, TensorInfo>;
  const { silu } = attrs as unknown as LayerNormAttrs;
  const c = x.shape[x.shape.length - 1];
  const n = sizeOf(x.shape);
  const rows = n / c;
  const dx = backend.makeOutput(x.shape, "float32");
  const dgamma = backend.makeOutput([c], "float32");
  const dbeta = backend.makeOutput([c], "float32");
  // dz: dy itself, or for silu dy·σ(z)·(1 + z·(1 − σ(z))) written into dx's memory.
  let dz = dy;
  if (silu) {
    const z = backend.makeOutput(x.shape, "float32");
    simd.layerNormAffine(at(x), at(z), at(gamma), at(beta), at(mean), at(rstd), rows, c);
    const s = sigmoidOf(backend, z);
    simd.siluGrad(at(dy), at(z), at(s), at(dx), n);
    disposeAll(backend, z, s);
    dz = dx;
  }
  const acc = backend.makeOutput([4 * c], "float32"); // dγ and dβ as 2c float64 sums
  simd.layerNormGrad(at(dz), at(x), at(gamma), at(mean), at(rstd), at(dx), at(dgamma), at(dbeta), rows, c, at(acc));
  disposeAll(backend, acc);
  return [dx, dgamma, dbeta];
}

export const layerNormKernels: tf.KernelConfig[] = [
  { kernelName: LAYER_NORM, backendName: "wasm", kernelFunc: layerNorm as unknown as tf.KernelFunc },
  { kernelName: LAYER_NORM_GRAD, backendName: "wasm", kernelFunc: layerNormGrad as unknown as tf.KernelFunc },
];
