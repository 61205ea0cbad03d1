/**
 * Choosing the tensor backend: `await lab.ready()`.
 *
 * In `auto` mode the first that loads wins: tfjs-node-gpu (CUDA), tfjs-node (native CPU),
 * wasm (XNNPACK + SIMD, with LatentLab's training kernels), cpu (plain JavaScript, ~30× slower
 * than wasm). The native packages are optional: they are used when installed and loadable,
 * and never required. `LATENTLAB_BACKEND` or `lab.ready({ backend })` overrides the choice.
 */
import * as tf from "@tensorflow/tfjs";
import * as os from "node:os";
import { registerMissingGradients } from "./gradients";
import { MAX_WASM_THREADS, useWasmThreads, wasmThreads } from "./threads";
import { registerWasmKernels } from "./wasm-kernels";
import { asWasmBackend, guardHeap } from "./wasm-kernels/heap";
import { fusedMultiplyAdd } from "./simd";

/** What a user may ask for. `tensorflow` is tfjs-node or tfjs-node-gpu, whichever loads. */
export type BackendRequest = "auto" | "tensorflow" | "wasm" | "cpu";

export interface ReadyOptions {
  /** Which backend to use; default `LATENTLAB_BACKEND`, else "auto". */
  backend?: BackendRequest;
  /** Do not print the one-line choice to stderr (the kernel prints its own banner). */
  quiet?: boolean;
  /**
   * Threads for the wasm backend (tfjs-backend-wasm's threaded SIMD build when more than 1);
   * default LATENTLAB_WASM_THREADS, else one per core up to 4 (see defaultWasmThreads). Fixed at
   * the backend's first start.
   */
  threads?: number;
}

export interface BackendInfo {
  /** The tfjs backend now in use. */
  backend: "tensorflow" | "wasm" | "cpu";
  /** Why it was chosen, in words, including what was tried and not found. */
  reason: string;
  /** For `tensorflow`: which native package loaded. */
  nativePackage?: "@tensorflow/tfjs-node-gpu" | "@tensorflow/tfjs-node";
  /** For `wasm`: the threads its operators run on. */
  threads?: number;
}

const REQUESTS: readonly BackendRequest[] = ["auto", "tensorflow", "wasm", "cpu"];
const NATIVE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"] as const;
const INSTALL_NATIVE =
  "To add a native backend on a machine with internet access: npm install @tensorflow/tfjs-node " +
  "(native CPU), or npm install @tensorflow/tfjs-node-gpu (needs CUDA 11.2 and cuDNN 8.1); see environment.md.";

let current: BackendInfo | null = null;
let announced = false;
let pending: Promise<BackendInfo> | null = null;

type Probe = { ok: true } | { ok: false; why: string };

function shortError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0].slice(0, 160);
}

/** Loads one native package if it is installed; says why not otherwise. */
function loadNative(pkg: (typeof NATIVE_PACKAGES)[number]): Probe {
  try {
    require.resolve(pkg);
  } catch {
    return { ok: false, why: `${pkg} is not installed` };
  }
  try {
    require(pkg);
    return { ok: true };
  } catch (e) {
    return { ok: false, why: `${pkg} is installed but failed to load (${shortError(e)})` };
  }
}

async function tryNative(): Promise<{ info: BackendInfo } | { why: string }> {
  const reasons: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    const probe = loadNative(pkg);
    if (!probe.ok) {
      reasons.push(probe.why);
      continue;
    }
    if (await tf.setBackend("tensorflow")) {
      const what = pkg === "@tensorflow/tfjs-node-gpu" ? "native TensorFlow with CUDA" : "native TensorFlow on the CPU";
      return { info: { backend: "tensorflow", nativePackage: pkg, reason: `${pkg} loaded (${what})` } };
    }
    reasons.push(`${pkg} loaded but its backend did not initialise`);
  }
  return { why: reasons.join("; ") };
}

/**
 * One wasm thread per core, up to 4 (the most the threaded build's pool is sized for). On the
 * 2-core reference machine two threads train conv models 1.3–1.6× faster than one (DCGAN, DDPM)
 * and a small MLP-VAE 1.4–1.6× (after warm-up; bench/RESULTS.md); losses are identical (LatentLab's kernels split
 * work by output or by fixed shares, so no sum changes order with the threads; XNNPACK runs on
 * one thread, see threads.ts).
 */
export function defaultWasmThreads(): number {
  const cores = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(MAX_WASM_THREADS, cores));
}

function wantedThreads(options: ReadyOptions): number {
  const fromEnv = process.env.LATENTLAB_WASM_THREADS;
  const raw = options.threads ?? (fromEnv && fromEnv.trim() !== "" ? Number(fromEnv) : defaultWasmThreads());
  if (!Number.isInteger(raw) || raw < 1) {
    throw new Error(`wasm threads must be a whole number ≥ 1 (from ${options.threads !== undefined ? "lab.ready({ threads })" : "LATENTLAB_WASM_THREADS"}), got ${String(raw)}.`);
  }
  return raw;
}

async function tryWasm(threads: number): Promise<{ info: BackendInfo } | { why: string }> {
  try {
    require("@tensorflow/tfjs-backend-wasm");
  } catch (e) {
    return { why: `@tensorflow/tfjs-backend-wasm failed to load (${shortError(e)})` };
  }
  let threadNote = "";
  if (threads > 1) {
    try {
      threadNote = `, ${await useWasmThreads(threads)} threads`;
    } catch (e) {
      threadNote = ` (single-threaded: the threaded build did not start: ${shortError(e)})`;
    }
  }
  registerWasmKernels();
  if (!(await tf.setBackend("wasm"))) return { why: "the wasm backend did not initialise" };
  guardHeap(asWasmBackend(tf.backend()));
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
  return {
    info: {
      backend: "wasm",
      threads: wasmThreads(),
      reason: `WebAssembly with XNNPACK${simd ? " and SIMD" : " (no SIMD)"}${threadNote}, plus LatentLab's training kernels${fusedMultiplyAdd() ? " (relaxed SIMD, fused multiply-add)" : ""}`,
    },
  };
}

async function useCpu(): Promise<BackendInfo> {
  await tf.setBackend("cpu");
  return { backend: "cpu", reason: "plain JavaScript (about 30x slower than wasm for training)" };
}

function requested(options: ReadyOptions): BackendRequest {
  const fromEnv = process.env.LATENTLAB_BACKEND;
  const raw = options.backend ?? (fromEnv && fromEnv.trim() !== "" ? fromEnv.trim() : "auto");
  if (!REQUESTS.includes(raw as BackendRequest)) {
    const source = options.backend !== undefined ? "lab.ready({ backend })" : "LATENTLAB_BACKEND";
    throw new Error(`${source} is "${raw}", which is not a backend. Use one of: ${REQUESTS.join(", ")}.`);
  }
  return raw as BackendRequest;
}

async function choose(want: BackendRequest, threads: number): Promise<BackendInfo> {
  if (want === "cpu") return { ...(await useCpu()), reason: "asked for: plain JavaScript backend" };
  if (want === "wasm") {
    const w = await tryWasm(threads);
    if ("info" in w) return { ...w.info, reason: `asked for: ${w.info.reason}` };
    throw new Error(`The wasm backend is not available: ${w.why}. Available here: cpu. Reinstall with npm ci.`);
  }
  if (want === "tensorflow") {
    const n = await tryNative();
    if ("info" in n) return { ...n.info, reason: `asked for: ${n.info.reason}` };
    throw new Error(`The tensorflow backend is not available: ${n.why}. Available here: wasm, cpu. ${INSTALL_NATIVE}`);
  }
  // auto: native, then wasm, then cpu.
  const n = await tryNative();
  if ("info" in n) return n.info;
  const w = await tryWasm(threads);
  if ("info" in w) return { ...w.info, reason: `${w.info.reason}; no native backend (${n.why})` };
  const cpu = await useCpu();
  return { ...cpu, reason: `${cpu.reason}; no native backend (${n.why}); ${w.why}` };
}

/**
 * Chooses and initialises the tensor backend. Safe to call often: once a backend is chosen,
 * later calls that ask for nothing different return it at once.
 */
export async function ready(options: ReadyOptions = {}): Promise<BackendInfo> {
  const want = requested(options);
  const satisfied = () => current !== null && (want === "auto" || current.backend === want);
  if (pending) await pending.catch(() => undefined);
  if (satisfied()) return current as BackendInfo;
  silenceCpuGreeting();
  registerMissingGradients();
  pending = choose(want, wantedThreads(options));
  try {
    current = await pending;
  } finally {
    pending = null;
  }
  if (!options.quiet && !announced) {
    announced = true;
    process.stderr.write(`latentlab: backend ${current.backend} (${current.reason})\n`);
  }
  return current;
}

/**
 * tfjs's cpu backend greets Node users once with advice to install tfjs-node; LatentLab has
 * already chosen (and said which backend and why), so the greeting is noise in a notebook.
 */
function silenceCpuGreeting(): void {
  const cpu = tf.findBackend("cpu") as unknown as { firstUse?: boolean } | null;
  if (cpu && "firstUse" in cpu) cpu.firstUse = false;
}

/** The backend chosen by `ready()`, or null before it has run. */
export function backendInfo(): BackendInfo | null {
  return current;
}

/** Throws a clear error if no backend has been chosen yet (for synchronous entry points). */
export function assertReady(where: string): void {
  if (!current || tf.getBackend() !== current.backend) {
    throw new Error(`${where} needs a tensor backend: run \`await lab.ready()\` first (the LatentLab kernel does this for you).`);
  }
}
