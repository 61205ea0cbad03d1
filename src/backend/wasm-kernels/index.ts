/**
 * Kernels LatentLab registers on tfjs-backend-wasm 4.22 so that every layer the model families
 * use trains there at full speed. Each one has a reference test against the cpu backend
 * (test/kernels.test.ts).
 *
 * | kernel               | stock wasm 4.22          | ours                                  |
 * |----------------------|--------------------------|---------------------------------------|
 * | Conv2D, FusedConv2D  | XNNPACK                  | 3×3 stride 1: Winograd F(4×4) or F(2×2, 3×3) (SIMD); 4×4 stride 2: F(4×4, 2×2) over the phases; 1×1: SIMD product; else direct (SIMD, XNNPACK's sums in its order) |
 * | Conv2DBackpropFilter | missing                  | 3×3 stride 1: Winograd F(4×4) or F(2×2, 3×3); 4×4 stride 2: F(4×4, 2×2); SIMD (co in eights); else a forward conv or im2col + product |
 * | Conv2DBackpropInput  | scalar loop              | 3×3 stride 1: Winograd; 4×4 stride 2: F(4×4, 2×2); 1×1: product; SIMD gather (ci in eights); else forward convs by phase or product + col2im |
 * | BatchMatMul          | scalar if transposed/batched | SIMD (N in eights; long K in cached blocks; aᵀ·column as a row); else explicit transpose, per-matrix XNNPACK |
 * | _FusedMatMul         | scalar if transposed     | SIMD with bias and relu; else explicit transpose, then XNNPACK |
 * | UnsortedSegmentSum   | missing (gather's gradient) | scatter-add on the heap            |
 * | GatherV2             | element by element       | one block copy per gathered slice     |
 * | Sum, Mean            | transpose first unless innermost | in-place block sums (float64, SIMD; threads over outer rows) |
 * | Tile                 | per-element index arithmetic | one copy, then block copies       |
 * | Transpose            | per-element index arithmetic; power-of-two strides | matrix transposes by 4×4 SIMD blocks (threads), small ones blocked in JS |
 * | Identity, Cast (same dtype) | a copy (the tape clones every saved tensor) | shared data, reference-counted |
 * | Concat, SplitV       | element by element in JS | one block copy per row and part (SIMD module; threads over 2 MB) |
 * | Add, Sub, Multiply, RealDiv | broadcasts element by element; same shapes on one thread | rows by SIMD (threads), one block of broadcast axes |
 * | FusedBatchNorm       | element by element, four wrapping indices | rows by SIMD (threads), same operations in order |
 * | LeakyRelu (+ its gradient) | element by element; gradient as 3 kernels | one SIMD pass each way (threads) |
 * | Softplus             | element by element, log(exp(x) + 1) in float32 | one SIMD pass (threads), max(x, 0) + log1p(e^−|x|) |
 * | LatentLabBernoulliNll(Grad) | (new) Σ softplus(ℓ) − x·ℓ per row as 4 ops, 8 with the gradient | one SIMD pass each way (threads), row sums in float64 |
 * | LatentLabLayerNorm(Grad) | (new) layer norm + optional SiLU as ~12 ops | one pass each way with its own sigmoid, keeps μ, 1/σ and (training with SiLU) σ(z) (SIMD, threads) |
 * | LatentLabBatchNormTrain(Grad) | (new) moments + batchNorm + relu as ~20 ops with the gradient | float64 channel sums in fixed shares, then one pass, each way (SIMD, threads) |
 * | LatentLabConv2DAdd   | (new) conv, then two adds | 3×3 Winograd adding a bias per image and a residual in its output pass |
 * | LatentLabAdamUpdate (train/adam.ts) | (new) ~13 ops per variable | one kernel per variable (SIMD; large ones shared between threads) |
 *
 * "SIMD" marks LatentLab's own wasm module (wasm/kernels.ts, loaded by src/backend/simd.ts): the
 * convolutions, products and layer norms there run on every wasm thread (a helper worker per
 * extra thread). XNNPACK itself runs on the calling thread alone (threads.ts: its pool's
 * spinning took a core from those helpers), so every forward conv is ours: Winograd
 * (winograd.ts) where it fits, else a direct conv (conv.ts, directForward) that sums as XNNPACK
 * does (its results to the bit in the build without fused multiply-add, see fusedMultiplyAdd in
 * simd.ts), at two threads' speed (a DCGAN discriminator's 4×4
 * stride-2 conv: 38 ms; XNNPACK 47–54 ms on two threads, 95 ms on one; those now go by F(4×4,
 * 2×2) where their channels allow, winograd-strided.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { convKernels } from "./conv";
import { matmulKernels } from "./matmul";
import { rememberOriginal } from "./heap";
import { reduceKernels } from "./reduce";
import { segmentKernels } from "./segment";
import { layerNormKernels } from "./layernorm";
import { shareKernels } from "./share";
import { transposeKernels } from "./transpose";
import { splitKernels } from "./split";
import { activationKernels, bernoulliNllGradient, leakyReluGradient } from "./activation";
import { binaryKernels } from "./binary";
import { batchNormKernels } from "./batchnorm";

export const wasmKernels: tf.KernelConfig[] = [...convKernels, ...matmulKernels, ...segmentKernels, ...reduceKernels, ...transposeKernels, ...shareKernels, ...layerNormKernels, ...splitKernels, ...activationKernels, ...binaryKernels, ...batchNormKernels];

let registered = false;

/** Registers LatentLab's wasm kernels (once; later calls do nothing). */
export function registerWasmKernels(): void {
  if (registered) return;
  for (const config of wasmKernels) {
    rememberOriginal(config.kernelName);
    const original = tf.getKernel(config.kernelName, "wasm");
    if (original) tf.unregisterKernel(config.kernelName, "wasm");
    // Keep the original's set-up (it binds the C++ function our kernel may still call).
    tf.registerKernel({ ...config, setupFunc: original?.setupFunc });
  }
  tf.registerGradient(leakyReluGradient);
  tf.registerGradient(bernoulliNllGradient);
  registered = true;
}

/** The names of the kernels LatentLab adds or replaces on wasm. */
export function wasmKernelNames(): string[] {
  return wasmKernels.map((k) => k.kernelName);
}
