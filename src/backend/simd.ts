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
import { Worker } from "worker_threads";
import { WasmBackend } from "./wasm-kernels/heap";
import { wasmThreads } from "./threads";

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
  convFilterGrad(x: number, dy: number, dw: number, batch: number, H: number, W: number, ci: number, OH: number, OW: number, co: number,
    fh: number, fw: number, sh: number, sw: number, top: number, left: number, ci0: number, ci1: number, block: number): void;
  copyRows(src: number, srcStride: number, dst: number, dstStride: number, rows: number, bytes: number): void;
}

type KernelName = keyof SimdKernels;
const NAMES: KernelName[] = ["adam", "sumMiddle", "layerNormStats", "layerNormAffine", "mulInPlace", "siluGrad", "layerNormGrad", "convFilterGrad", "copyRows"];
const MAX_ARGS = 32;

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

interface Helper {
  worker: Worker;
  ctl: Int32Array;
  args: Float64Array;
  seq: number;
}

/**
 * Threads for the SIMD kernels, on the threaded backend's shared heap: one helper per wasm
 * thread beyond the first (the calling thread does a share too). A call posts its arguments in
 * a helper's shared control block and wakes it with Atomics.notify; the caller then blocks in
 * Atomics.wait until each helper has finished. Helpers are unref'd: they never keep Node alive.
 */
class SimdPool {
  private helpers: Helper[] = [];

  constructor(file: string, memory: WebAssembly.Memory, count: number) {
    for (let i = 0; i < count; i++) {
      const control = new SharedArrayBuffer(16 + 8 * MAX_ARGS);
      const worker = new Worker(path.join(__dirname, "simd-worker.js"), { workerData: { file, memory, control, names: NAMES } });
      worker.unref();
      this.helpers.push({ worker, ctl: new Int32Array(control, 0, 4), args: new Float64Array(control, 16), seq: 0 });
    }
  }

  get threads(): number {
    return this.helpers.length + 1;
  }

  /** Runs `name` once per share, share 0 on this thread and the rest on helpers; returns when all are done. */
  run(kernels: SimdKernels, name: KernelName, shares: number[][]): void {
    const posted = this.helpers.slice(0, shares.length - 1);
    posted.forEach((h, i) => {
      const a = shares[i + 1];
      h.args.set(a);
      h.ctl[2] = NAMES.indexOf(name);
      h.ctl[3] = a.length;
      h.seq++;
      Atomics.store(h.ctl, 0, h.seq);
      Atomics.notify(h.ctl, 0);
    });
    (kernels[name] as (...a: number[]) => void)(...shares[0]);
    let failed = false;
    for (const h of posted) {
      for (let done = Atomics.load(h.ctl, 1); done !== h.seq; done = Atomics.load(h.ctl, 1)) Atomics.wait(h.ctl, 1, done);
      failed ||= h.ctl[2] === -2;
    }
    if (failed) throw new Error(`LatentLab's SIMD kernel ${name} failed on a helper thread.`);
  }
}

const pools = new WeakMap<WebAssembly.Memory, SimdPool | null>();

/**
 * Runs a SIMD kernel over `shares` (argument lists of independent parts of one job) on as many
 * threads as the wasm backend has, or one after another on one thread.
 */
export function runShares(backend: WasmBackend, name: KernelName, shares: number[][]): void {
  const kernels = simdKernels(backend);
  const memory = (backend.wasm.wasmMemory ?? backend.wasm.asm?.memory) as WebAssembly.Memory;
  let pool = pools.get(memory);
  if (pool === undefined) {
    const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
    pool = shared && wasmThreads() > 1 ? new SimdPool(simdFile(true), memory, wasmThreads() - 1) : null;
    pools.set(memory, pool);
  }
  if (!pool || shares.length === 1) {
    for (const share of shares) (kernels[name] as (...a: number[]) => void)(...share);
    return;
  }
  for (let i = 0; i < shares.length; i += pool.threads) pool.run(kernels, name, shares.slice(i, i + pool.threads));
}

/**
 * [start, end) ranges that split 0…n into `parts` nearly equal pieces whose starts are multiples
 * of `align` (empty pieces dropped).
 */
export function ranges(n: number, parts: number, align = 1): [number, number][] {
  const units = Math.ceil(n / align);
  const out: [number, number][] = [];
  for (let p = 0; p < parts; p++) {
    const a = Math.min(n, align * Math.floor((units * p) / parts));
    const b = Math.min(n, align * Math.floor((units * (p + 1)) / parts));
    if (b > a) out.push([a, b]);
  }
  return out;
}

/** How many threads `runShares` spreads a job over on this backend. */
export function simdThreads(): number {
  return wasmThreads();
}

/** A tensor's first byte in the heap (what the SIMD kernels take). */
export function byteOffset(backend: WasmBackend, info: tf.TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).memoryOffset;
}
