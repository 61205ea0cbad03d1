/**
 * Adam (Kingma & Ba 2015, Algorithm 1) with each variable's update fused into one kernel.
 *
 * tfjs's AdamOptimizer spends about 13 tensor ops per variable per step; on small networks
 * (a 2-D GAN's MLPs) that dispatch, not arithmetic, is most of the step. This optimizer does
 * the same arithmetic in one kernel per variable on wasm (SIMD) and cpu, and falls back to tensor ops
 * elsewhere. Its state (iterations, then first moments, then second moments) has the same
 * layout as tfjs's, so checkpoints are interchangeable.
 *
 *   m ← β₁m + (1−β₁)g        v ← β₂v + (1−β₂)g²
 *   w ← w − lr · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)
 *
 * in float32, as tfjs and PyTorch compute it, the last line as w − α·m / (√v · s + ε) with
 * α = lr / (1−β₁ᵗ) and s = 1 / √(1−β₂ᵗ) (PyTorch's form, one division per parameter). Float64
 * with three divisions had made it the slowest kernel of a VAE step after its products.
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, asWasmBackend, sizeOf } from "../backend/wasm-kernels/heap";
import { byteOffset, deferred, deferredOffset, mayDefer, ranges, runShares, shareCount } from "../backend/simd";

export const ADAM_KERNEL = "LatentLabAdamUpdate";

interface AdamAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** 1 − β₁ᵗ and 1 − β₂ᵗ for this step. */
  bc1: number;
  bc2: number;
  /**
   * The caller assigns the outputs to the variables that value, m and v are, before anything
   * else runs (FusedAdam): the wasm kernel may then write into their memory (see mayOverwrite),
   * which leaves value, m and v themselves empty.
   */
  inPlace?: boolean;
}

/**
 * The update on plain arrays (the cpu backend's kernel; wasm's is the same float32 arithmetic in
 * SIMD, adam in wasm/kernels.ts): every operation rounded to float32 as the SIMD lanes round it.
 */
function adamLoop(
  w: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array,
  ow: Float32Array, om: Float32Array, ov: Float32Array,
  a: AdamAttrs,
): void {
  const f = Math.fround;
  const [b1, b2, c1, c2] = [f(a.beta1), f(a.beta2), f(1 - a.beta1), f(1 - a.beta2)];
  const [alpha, s, e] = [f(a.lr / a.bc1), f(1 / Math.sqrt(a.bc2)), f(a.epsilon)];
  for (let i = 0; i < g.length; i++) {
    const gi = g[i];
    const mi = f(f(b1 * m[i]) + f(c1 * gi));
    const vi = f(f(b2 * v[i]) + f(f(c2 * gi) * gi));
    om[i] = mi;
    ov[i] = vi;
    ow[i] = w[i] - f(f(alpha * mi) / f(f(f(Math.sqrt(vi)) * s) + e));
  }
}

/** A variable this large is updated in parts of about this many elements, on every wasm thread. */
const ELEMENTS_PER_PART = 1 << 15;

/**
 * Whether the update may be written into the variable's and the moments' own memory: nothing
 * else holds their data (between steps only the variables do; a clone or a reshape of a weight
 * shares its data, and then the update goes to new memory, as tfjs's kernels would).
 */
function mayOverwrite(backend: WasmBackend, value: tf.TensorInfo, m: tf.TensorInfo, v: tf.TensorInfo, grad: tf.TensorInfo): boolean {
  const ids = [value, m, v, grad].map((t) => t.dataId);
  return new Set(ids).size === 4 && ids.slice(0, 3).every((id) => backend.refCount(id) === 1);
}

/**
 * t's memory, which the update is about to overwrite, as a new tensor: tfjs's own C++ kernels
 * keep what they derive from a tensor by its id (XNNPACK's packed weights for a product with one
 * output column, say) until that id is disposed, so new values need a new id. The old id is
 * disposed in C++ now, dropping what was kept for it, and its data left owning no memory
 * (offset 0, which the wasm backend's free ignores) until the variable's assign disposes it.
 */
function handOver(backend: WasmBackend, t: tf.TensorInfo): tf.TensorInfo {
  const data = backend.dataIdMap.get(t.dataId);
  const out = backend.makeOutput(t.shape, "float32", data.memoryOffset);
  backend.wasm.tfjs.disposeData(data.id);
  data.memoryOffset = 0;
  return out;
}

/**
 * Where it may (mayOverwrite), the update writes into the memory it reads: nothing to allocate,
 * and no output memory read into the cache before it is written. A VAE step (1.08 M parameters,
 * two threads), medians of six alternating runs: 12.97 → 12.41 ms.
 */
function wasmAdam({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const backend = asWasmBackend(anyBackend);
  const { value, m, v, grad } = inputs as Record<string, tf.TensorInfo>;
  // Deferred (FusedAdam): a gradient that a deferred product still computes is not waited for;
  // the update starts once that product has finished.
  const defer = mayDefer(backend);
  const reads = [...[value, m, v].map((t) => byteOffset(backend, t)), defer ? deferredOffset(backend, grad) : byteOffset(backend, grad)];
  const inPlace = (attrs as unknown as AdamAttrs).inPlace && mayOverwrite(backend, value, m, v, grad);
  const outputs = inPlace ? [value, m, v].map((t) => handOver(backend, t)) : [0, 1, 2].map(() => backend.makeOutput(value.shape, "float32"));
  const { lr, beta1, beta2, epsilon, bc1, bc2 } = attrs as unknown as AdamAttrs;
  const n = sizeOf(grad.shape);
  const pointers = [...reads, ...outputs.map((t) => byteOffset(backend, t))];
  // Large variables in parts shared between threads (element-wise, so the parts never change a value).
  const parts = ranges(n, shareCount(n, ELEMENTS_PER_PART), 4);
  const shares = parts.map(([i0, i1]) => [...pointers.map((p) => p + 4 * i0), i1 - i0, lr, beta1, beta2, epsilon, bc1, bc2]);
  runShares(backend, "adam", shares, undefined, defer ? { reads: inPlace ? [grad] : [value, m, v, grad], writes: outputs } : undefined);
  return outputs;
}

function cpuAdam({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo[] {
  const cpu = backend as unknown as {
    data: { get(id: object): { values: Float32Array } };
    makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
  };
  const { value, m, v, grad } = inputs as Record<string, tf.TensorInfo>;
  const get = (t: tf.TensorInfo) => cpu.data.get(t.dataId).values;
  const n = grad.shape.reduce((a, b) => a * b, 1);
  const ow = new Float32Array(n);
  const om = new Float32Array(n);
  const ov = new Float32Array(n);
  adamLoop(get(value), get(m), get(v), get(grad), ow, om, ov, attrs as unknown as AdamAttrs);
  return [cpu.makeTensorInfo(value.shape, "float32", ow), cpu.makeTensorInfo(value.shape, "float32", om), cpu.makeTensorInfo(value.shape, "float32", ov)];
}

let registered = false;
function registerAdamKernels(): void {
  if (registered) return;
  tf.registerKernel({ kernelName: ADAM_KERNEL, backendName: "wasm", kernelFunc: wasmAdam as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: ADAM_KERNEL, backendName: "cpu", kernelFunc: cpuAdam as unknown as tf.KernelFunc });
  registered = true;
}

interface Slot {
  originalName: string;
  variable: tf.Variable;
}

export class FusedAdam extends tf.Optimizer {
  static get className(): string {
    return "Adam";
  }

  private m: Slot[] = [];
  private v: Slot[] = [];

  constructor(
    /** May be changed between steps (a schedule). */
    public learningRate: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-7,
  ) {
    super();
    registerAdamKernels();
  }

  applyGradients(variableGradients: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]): void {
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    const t = this.iterations + 1;
    const attrs: AdamAttrs = {
      lr: this.learningRate,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
      bc1: 1 - this.beta1 ** t,
      bc2: 1 - this.beta2 ** t,
      inPlace: true,
    };
    const fused = tf.getKernel(ADAM_KERNEL, tf.getBackend()) !== undefined;
    const registered = tf.engine().registeredVariables;
    names.forEach((name, i) => {
      const value = registered[name];
      const grad = Array.isArray(variableGradients) ? variableGradients[i].tensor : variableGradients[name];
      this.m[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      this.v[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      if (grad == null) return;
      const m = this.m[i].variable;
      const v = this.v[i].variable;
      if (fused) {
        // On wasm with helper threads the update is theirs: whatever uses the new values waits for it.
        const [w2, m2, v2] = deferred(() => tf.engine().runKernel(ADAM_KERNEL, { value, m, v, grad }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[]);
        value.assign(w2);
        m.assign(m2);
        v.assign(v2);
        tf.dispose([w2, m2, v2]);
      } else {
        tf.tidy(() => {
          const m2 = tf.add(tf.mul(m, this.beta1), tf.mul(grad, 1 - this.beta1));
          const v2 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(grad), 1 - this.beta2));
          const step = tf.div(tf.div(m2, attrs.bc1), tf.add(tf.sqrt(tf.div(v2, attrs.bc2)), this.epsilon));
          m.assign(m2);
          v.assign(v2);
          value.assign(tf.sub(value, tf.mul(step, this.learningRate)));
        });
      }
    });
    this.incrementIterations();
  }

  override dispose(): void {
    tf.dispose([...this.m, ...this.v].map((s) => s.variable));
    this.m = [];
    this.v = [];
  }

  override async getWeights(): Promise<{ name: string; tensor: tf.Tensor }[]> {
    return [await this.saveIterations(), ...[...this.m, ...this.v].map((s) => ({ name: s.originalName, tensor: s.variable }))];
  }

  override async setWeights(weightValues: { name: string; tensor: tf.Tensor }[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    tf.dispose([...this.m, ...this.v].map((s) => s.variable));
    const half = rest.length / 2;
    this.m = rest.slice(0, half).map((w) => ({ originalName: w.name, variable: w.tensor.variable(false) }));
    this.v = rest.slice(half).map((w) => ({ originalName: w.name, variable: w.tensor.variable(false) }));
  }

  getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }
}

/** Adam with fused updates; the same hyper-parameters as tf.train.adam (ε = 1e-7, the float32 backends' default). */
export function adam(learningRate: number, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7): FusedAdam {
  return new FusedAdam(learningRate, beta1, beta2, epsilon);
}
