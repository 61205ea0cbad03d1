/**
 * LatentLab's own SIMD kernels (wasm/kernels.ts, AssemblyScript), instantiated on the memory of
 * tfjs-backend-wasm so that they read and write tensors where they lie. `npm run build` compiles
 * them twice: for the threaded backend (shared memory) and for the single-threaded one.
 *
 * Every pointer argument is a byte offset into that heap (`byteOffset`); scratch space is a
 * tensor the caller allocates and disposes.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { WasmBackend } from "./wasm-kernels/heap";

export interface SimdKernels {
  adam(w: number, m: number, v: number, g: number, ow: number, om: number, ov: number, n: number,
    lr: number, beta1: number, beta2: number, epsilon: number, bc1: number, bc2: number): void;
  sumMiddle(x: number, out: number, outer: number, reduce: number, inner: number, scale: number, acc: number): void;
  layerNormStats(x: number, mean: number, rstd: number, rows: number, c: number, epsilon: number): void;
  layerNormAffine(x: number, out: number, gamma: number, beta: number, mean: number, rstd: number, rows: number, c: number): void;
  mulInPlace(y: number, s: number, n: number): void;
  siluGrad(dy: number, z: number, sig: number, out: number, n: number): void;
  layerNormGrad(dz: number, x: number, gamma: number, mean: number, rstd: number, dx: number, dgamma: number, dbeta: number,
    rows: number, c: number, acc: number): void;
}

/** Where `npm run build:wasm` writes the two builds. */
export function simdFile(shared: boolean): string {
  const root = path.dirname(require.resolve("latentlab/package.json"));
  return path.join(root, "dist", "wasm", shared ? "kernels-shared.wasm" : "kernels.wasm");
}

const instances = new WeakMap<WebAssembly.Memory, SimdKernels>();

/** The kernels bound to this backend's heap (compiled once per heap). */
export function simdKernels(backend: WasmBackend): SimdKernels {
  const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) {
    throw new Error("LatentLab's SIMD kernels cannot find tfjs-backend-wasm's memory; install the pinned @tensorflow/tfjs-backend-wasm (npm ci).");
  }
  const known = instances.get(memory);
  if (known) return known;
  const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
  const file = simdFile(shared);
  if (!fs.existsSync(file)) {
    throw new Error(`LatentLab's SIMD kernels are missing (${file}). Build them with \`npm run build\` in the latentlab folder.`);
  }
  const instance = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(file)), { env: { memory } });
  const kernels = instance.exports as unknown as SimdKernels;
  instances.set(memory, kernels);
  return kernels;
}

/** A tensor's first byte in the heap (what the SIMD kernels take). */
export function byteOffset(backend: WasmBackend, info: tf.TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).memoryOffset;
}
