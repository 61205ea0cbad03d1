/**
 * Both cores for the wasm backend: tfjs-backend-wasm's threaded SIMD build, in Node.
 *
 * tfjs-backend-wasm 4.22 never uses its threaded build in Node (its feature check returns false
 * there) and, when forced, hands Emscripten blob: URLs that Node's worker_threads cannot load.
 * Here we start the threaded module ourselves: the worker script is written to a file, the main
 * script is given by path, and the result is registered as the "wasm" backend with the stock
 * kernels (and LatentLab's).
 *
 * The threads are LatentLab's: its kernels (simd.ts) share their work between the calling thread
 * and helpers of their own, and XNNPACK runs on the calling thread alone. XNNPACK's pthreadpool
 * spins for a while after each operator before it sleeps; on two cores that spinning thread took
 * a core from LatentLab's helper (a VAE step: 5.5 ms of the pool thread's CPU, 7 ms of the main
 * thread waiting on the helper, for ~30 small operators a step), and a VAE step ran 1.0–1.35×
 * as fast with XNNPACK on one thread (five A/B pairs, median 1.3×). Every conv a workload spends
 * its time in is LatentLab's (the direct conv in conv.ts took XNNPACK's strided ones, to the
 * bit); XNNPACK keeps small element-wise ops and products with columns not in eights.
 *
 * The threaded build is what gives those helpers a shared heap to work on; Emscripten's own
 * pthread workers (it preloads 8) stay idle.
 */
import * as tf from "@tensorflow/tfjs";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: unknown[]) => unknown;
  PThread: { runningWorkers: unknown[]; unusedWorkers?: unknown[]; terminateAllThreads(): void };
  tfjs: Record<string, (...a: unknown[]) => unknown>;
}

let started: number | null = null;

/** The most wasm threads LatentLab starts (its kernels' helpers; the cap tfjs-backend-wasm's threaded build had). */
export const MAX_WASM_THREADS = 4;

/** Threads the wasm backend runs with: 1 unless `useWasmThreads` succeeded. */
export function wasmThreads(): number {
  return started ?? 1;
}

/**
 * Replaces the (not yet initialised) "wasm" backend with tfjs-backend-wasm's threaded SIMD
 * build running `threads` threads. Returns the thread count it got.
 */
export async function useWasmThreads(threads: number): Promise<number> {
  if (started !== null) return started;
  if (tf.findBackendFactory("wasm") && (tf.engine() as unknown as { registry: Record<string, unknown> }).registry.wasm) {
    throw new Error("The wasm backend is already running; choose its threads before its first use (restart the kernel to change them).");
  }
  const wasmPkg = require("@tensorflow/tfjs-backend-wasm") as { BackendWasm: new (m: unknown) => tf.KernelBackend; setThreadsCount(n: number): void };
  const base = path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json"));
  const version: string = require("@tensorflow/tfjs-backend-wasm/package.json").version;
  const factory = require(path.join(base, "wasm-out", "tfjs-backend-wasm-threaded-simd.js")) as (config: object) => Promise<ThreadedModule>;
  const { wasmWorkerContents } = require(path.join(base, "wasm-out", "tfjs-backend-wasm-threaded-simd.worker.js")) as { wasmWorkerContents: string };
  // The worker source is stored as a template string; tfjs escapes its newlines the same way.
  const workerFile = path.join(os.tmpdir(), `latentlab-tfjs-wasm-${version}-worker.js`);
  const worker = wasmWorkerContents.replace(/\n/g, "\\n");
  if (!fs.existsSync(workerFile) || fs.readFileSync(workerFile, "utf8") !== worker) fs.writeFileSync(workerFile, worker);
  const wanted = Math.max(1, Math.min(MAX_WASM_THREADS, Math.floor(threads)));
  const module = await factory({
    locateFile: (p: string) => (p.endsWith(".worker.js") ? workerFile : path.join(base, "dist", p)),
    mainScriptUrlOrBlob: path.join(base, "wasm-out", "tfjs-backend-wasm-threaded-simd.js"),
  });
  module.tfjs = {
    init: module.cwrap("init", null, []),
    initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
    getThreadsCount: module.cwrap("get_threads_count", "number", []),
    registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
    disposeData: module.cwrap("dispose_data", null, ["number"]),
    dispose: module.cwrap("dispose", null, []),
  };
  tf.removeBackend("wasm");
  wasmPkg.setThreadsCount(1); // XNNPACK on the calling thread (see above)
  const backend = new wasmPkg.BackendWasm(module);
  // Emscripten's workers must not keep Node running once the script or kernel is done.
  for (const w of [...module.PThread.runningWorkers, ...(module.PThread.unusedWorkers ?? [])]) {
    (w as { unref?: () => void }).unref?.();
  }
  tf.registerBackend("wasm", () => backend, 2);
  started = wanted;
  return started;
}
