/**
 * LeakyReLU and its gradient, softplus, and the Bernoulli likelihood from logits with its
 * gradient, on wasm, each one SIMD pass shared between threads.
 *
 * tfjs-backend-wasm 4.22's LeakyRelu runs element by element (11 ms for a DCGAN discriminator's
 * 256×14×14×64 activations), and tfjs's gradient is three kernels — `greater(x, 0)`, `mul(dy, α)`
 * and `where` — each another full pass (a DCGAN step spent ~75 ms in these). The gradient here
 * is one kernel, dx = x > 0 ? dy : α·dy, used whenever the backward pass is not itself being
 * recorded; a gradient of a gradient (WGAN-GP, R1) keeps tfjs's differentiable ops.
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, asWasmBackend, disposeAll, runOriginal, sizeOf } from "./heap";
import { byteOffset, heapTables, passRanges, ranges, runShares, shareCount } from "../simd";
import { SIGMOID_CONSTS } from "./layernorm";

type TensorInfo = tf.TensorInfo;

export const LEAKY_RELU_GRAD = "LatentLabLeakyReluGrad";

/** Elements per share of an element-wise pass. */
const ELEMENTS_PER_SHARE = 1 << 16;

function elementShares(n: number): [number, number][] {
  return ranges(n, shareCount(n, ELEMENTS_PER_SHARE), 4);
}

function leakyRelu({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x } = inputs as { x: TensorInfo };
  const { alpha } = attrs as unknown as { alpha: number };
  if (x.dtype !== "float32") return runOriginal("LeakyRelu", backend, { x }, { alpha });
  const y = backend.makeOutput(x.shape, "float32");
  const n = sizeOf(x.shape);
  if (n === 0) return y;
  const [px, py] = [byteOffset(backend, x), byteOffset(backend, y)];
  runShares(backend, "leakyRelu", elementShares(n).map(([i0, i1]) => [px, py, i0, i1, alpha]));
  return y;
}

function leakyReluGrad({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { alpha } = attrs as unknown as { alpha: number };
  const dx = backend.makeOutput(x.shape, "float32");
  const n = sizeOf(x.shape);
  if (n === 0) return dx;
  const [px, pdy, pdx] = [byteOffset(backend, x), byteOffset(backend, dy), byteOffset(backend, dx)];
  runShares(backend, "leakyReluGrad", elementShares(n).map(([i0, i1]) => [px, pdy, pdx, i0, i1, alpha]));
  return dx;
}

/**
 * LeakyRelu's gradient for every backend: one kernel where the backend has it and the backward
 * pass is not being taped, else tfjs's own ops (which a second-order gradient can differentiate).
 */
export const leakyReluGradient: tf.GradConfig = {
  kernelName: "LeakyRelu",
  inputsToSave: ["x"],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const { alpha } = attrs as unknown as { alpha: number };
    const g = dy as tf.Tensor;
    const fused = x.dtype === "float32" && g.dtype === "float32" && !tf.engine().isTapeOn() && tf.getKernel(LEAKY_RELU_GRAD, tf.getBackend()) !== undefined;
    if (fused) return { x: () => tf.engine().runKernel(LEAKY_RELU_GRAD, { x, dy: g }, { alpha }) as tf.Tensor };
    return { x: () => tf.where(tf.greater(x, 0), g, tf.mul(g, alpha)) };
  },
};

/**
 * exp4's constants (SIGMOID_CONSTS) and then softplus's series coefficients 2/(2j + 1), each as
 * four lanes (wasm/kernels.ts, softplus).
 */
const SOFTPLUS_CONSTS = (() => {
  const table = new Float32Array(SIGMOID_CONSTS.length + 7 * 4);
  table.set(SIGMOID_CONSTS);
  for (let j = 0; j < 7; j++) table.fill(2 / (2 * j + 1), SIGMOID_CONSTS.length + 4 * j, SIGMOID_CONSTS.length + 4 * j + 4);
  return table;
})();

/**
 * softplus(x) = max(x, 0) + log(1 + e^−|x|) in one SIMD pass (a VAE's Bernoulli likelihood takes
 * it of every pixel's logit: tfjs-backend-wasm's element-by-element kernel spent 1.5–1.7 ms on a
 * batch of 128 MNIST images, ~8 % of a VAE step). Within ~1e-7 of the exact value (tests against
 * the cpu backend). Its gradient stays tfjs's (dy·σ(x)).
 */
function softplus({ inputs, backend: anyBackend }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype !== "float32") return runOriginal("Softplus", backend, { x }, {});
  const y = backend.makeOutput(x.shape, "float32");
  const n = sizeOf(x.shape);
  if (n === 0) return y;
  const consts = heapTables(backend, [SOFTPLUS_CONSTS]);
  const [px, py] = [byteOffset(backend, x), byteOffset(backend, y)];
  runShares(backend, "softplus", elementShares(n).map(([i0, i1]) => [px, py, i0, i1, consts.at[0]]));
  disposeAll(backend, consts.info);
  return y;
}

export const BERNOULLI_NLL = "LatentLabBernoulliNll";
export const BERNOULLI_NLL_GRAD = "LatentLabBernoulliNllGrad";

/**
 * Runs `name` over the rows of the last axis of `like` (n floats each) in row shares: each share's
 * arguments are `pointers`, then its rows r0, r1, then n and the address of `table` on the heap.
 */
function rowPass(backend: WasmBackend, name: "bernoulliNll" | "bernoulliNllGrad", table: Float32Array, like: TensorInfo, pointers: number[]): void {
  const n = like.shape[like.shape.length - 1];
  const rows = sizeOf(like.shape) / n;
  if (rows === 0) return;
  const consts = heapTables(backend, [table]);
  runShares(backend, name, passRanges(rows, n).map(([r0, r1]) => [...pointers, r0, r1, n, consts.at[0]]));
  disposeAll(backend, consts.info);
}

/**
 * The Bernoulli negative log-likelihood of x given logits ℓ, per row of the last axis:
 * Σ softplus(ℓ) − x·ℓ (a VAE's binary cross-entropy per example, src/models/vae/losses.ts), in
 * one pass that keeps nothing but the sums. As tfjs ops it was eight kernels with its gradient,
 * ~1 ms of a VAE step. Each term rounds as softplus, mul and sub do; rows sum in float64.
 */
function bernoulliNll({ inputs, backend: anyBackend }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x, logits } = inputs as { x: TensorInfo; logits: TensorInfo };
  const out = backend.makeOutput(logits.shape.slice(0, -1), "float32");
  rowPass(backend, "bernoulliNll", SOFTPLUS_CONSTS, logits, [x, logits, out].map((t) => byteOffset(backend, t)));
  return out;
}

/** Its gradient with respect to the logits: dℓ = dy·(σ(ℓ) − x), dy one value per row. */
function bernoulliNllGrad({ inputs, backend: anyBackend }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x, logits, dy } = inputs as { x: TensorInfo; logits: TensorInfo; dy: TensorInfo };
  const dl = backend.makeOutput(logits.shape, "float32");
  rowPass(backend, "bernoulliNllGrad", SIGMOID_CONSTS, logits, [x, logits, dy, dl].map((t) => byteOffset(backend, t)));
  return dl;
}

/**
 * BERNOULLI_NLL's gradient for every backend that has the kernel: dℓ = dy·(σ(ℓ) − x) as one
 * kernel while the backward pass is not being taped, else as tfjs ops (differentiable again);
 * dx = −dy·ℓ (data rarely needs it).
 */
export const bernoulliNllGradient: tf.GradConfig = {
  kernelName: BERNOULLI_NLL,
  inputsToSave: ["x", "logits"],
  gradFunc: (dy, saved) => {
    const [x, logits] = saved;
    const g = dy as tf.Tensor;
    const perRow = () => tf.expandDims(g, -1);
    const fused = !tf.engine().isTapeOn() && tf.getKernel(BERNOULLI_NLL_GRAD, tf.getBackend()) !== undefined;
    const dLogits = () =>
      fused ? (tf.engine().runKernel(BERNOULLI_NLL_GRAD, { x, logits, dy: g }) as tf.Tensor) : tf.mul(tf.sub(tf.sigmoid(logits), x), perRow());
    return { logits: dLogits, x: () => tf.mul(tf.neg(logits), perRow()) };
  },
};

export const activationKernels: tf.KernelConfig[] = [
  { kernelName: "Softplus", backendName: "wasm", kernelFunc: softplus as unknown as tf.KernelFunc },
  { kernelName: BERNOULLI_NLL, backendName: "wasm", kernelFunc: bernoulliNll as unknown as tf.KernelFunc },
  { kernelName: BERNOULLI_NLL_GRAD, backendName: "wasm", kernelFunc: bernoulliNllGrad as unknown as tf.KernelFunc },
  { kernelName: "LeakyRelu", backendName: "wasm", kernelFunc: leakyRelu as unknown as tf.KernelFunc },
  { kernelName: LEAKY_RELU_GRAD, backendName: "wasm", kernelFunc: leakyReluGrad as unknown as tf.KernelFunc },
];
