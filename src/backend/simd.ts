/**
 * LatentLab's own SIMD kernels (wasm/kernels.ts, AssemblyScript), instantiated on the memory of
 * tfjs-backend-wasm so that they read and write tensors where they lie. `npm run build` compiles
 * them four times: for the threaded backend (shared memory) and for the single-threaded one, each
 * with and without relaxed SIMD's fused multiply-add (see fusedMultiplyAdd).
 *
 * Every pointer argument is a byte offset into that heap (`byteOffset`); scratch space is a
 * tensor the caller allocates and disposes.
 */
import * as fs from "fs";
import * as path from "path";
import * as v8 from "v8";
import * as tf from "@tensorflow/tfjs";
import { Worker } from "worker_threads";
import { TensorData, WasmBackend, heapF32 } from "./wasm-kernels/heap";
import { wasmThreads } from "./threads";
import { CONTROL_BYTES, HEADER, MAX_ARGS, MAX_SHARES, SLOT, SLOTS, argsBase, awaitChange, claim, claimOldest, firstShare, shareArgs, slotBase } from "./simd-control";

export interface SimdKernels {
  adam(w: number, m: number, v: number, g: number, ow: number, om: number, ov: number, n: number,
    lr: number, beta1: number, beta2: number, epsilon: number, bc1: number, bc2: number): void;
  sumMiddle(x: number, out: number, outer: number, reduce: number, inner: number, scale: number, acc: number): void;
  convFilterGrad(x: number, dy: number, dw: number, batch: number, H: number, W: number, ci: number, OH: number, OW: number, co: number,
    fh: number, fw: number, sh: number, sw: number, top: number, left: number, ci0: number, ci1: number, block: number): void;
  convInputGrad(dyp: number, wt: number, dx: number, H: number, W: number, ci: number, OH: number, OWp: number, co: number,
    fh: number, fw: number, sh: number, sw: number, top: number, left: number, padL: number, b0: number, b1: number): void;
  matmul(a: number, rowStride: number, colStride: number, b: number, c: number, bias: number,
    N: number, K: number, m0: number, m1: number, relu: boolean | number, acc: boolean | number, pack: number, packB: number): void;
  matmulPart(a: number, rowStride: number, colStride: number, b: number, c: number, bias: number,
    N: number, K: number, m0: number, m1: number, relu: boolean | number, acc: boolean | number, pack: number, packB: number, c0: number, c1: number): void;
  winogradConv(x: number, u: number, bias: number, y: number, scratch: number, H: number, W: number, ci: number, OH: number, OW: number, co: number,
    top: number, left: number, t0: number, t1: number, tb: number, relu: boolean | number, biasPerImage: boolean | number, addend: number): void;
  winogradFilter(g: number, u: number, ci: number, co: number, turn: boolean | number, a0: number, a1: number): void;
  winograd4Conv(x: number, u: number, bias: number, y: number, scratch: number, H: number, W: number, ci: number, OH: number, OW: number, co: number,
    top: number, left: number, t0: number, t1: number, tb: number, relu: boolean | number, biasPerImage: boolean | number, addend: number): void;
  winograd4Filter(g: number, u: number, ci: number, co: number, turn: boolean | number, tmp: number, a0: number, a1: number): void;
  winogradFilterGrad(x: number, dy: number, du: number, scratch: number, batch: number, H: number, W: number, ci: number, OH: number, OW: number, co: number,
    top: number, left: number, r0: number, r1: number, tb: number): void;
  winogradFilterGradOut(du: number, dg: number, ci: number, co: number): void;
  layerNormForward(x: number, y: number, gamma: number, beta: number, mean: number, rstd: number, r0: number, r1: number, c: number,
    eps: number, silu: boolean | number, consts: number, sig: number): void;
  layerNormBackward(dy: number, x: number, gamma: number, beta: number, mean: number, rstd: number, dx: number, acc: number, block: number,
    r0: number, r1: number, c: number, silu: boolean | number, consts: number, sig: number): void;
  leakyRelu(x: number, y: number, i0: number, i1: number, alpha: number): void;
  leakyReluGrad(x: number, dy: number, dx: number, i0: number, i1: number, alpha: number): void;
  matmulBlocked(a: number, rowStride: number, colStride: number, b: number, c: number, N: number, K: number, m0: number, m1: number, kBlock: number, pack: number): void;
  winograd4FilterGrad(x: number, dy: number, du: number, scratch: number, H: number, W: number, ci: number, OH: number, OW: number, co: number,
    top: number, left: number, t0: number, t1: number, tb: number): void;
  winograd4FilterGradOut(du: number, dg: number, ci: number, co: number, tmp: number, parts: number): void;
  batchNormRows(x: number, mean: number, variance: number, offset: number, scale: number, y: number, nf: number,
    eps: number, r0: number, r1: number, C: number): void;
  transposeRows(src: number, dst: number, rows: number, cols: number, c0: number, c1: number): void;
  convForward(x: number, g: number, bias: number, y: number, scratch: number, H: number, W: number, ci: number, OH: number, OW: number, co: number,
    KH: number, KW: number, sh: number, sw: number, dh: number, dw: number, top: number, left: number, p0: number, p1: number, relu: boolean | number): void;
  broadcastBinary(big: number, small: number, out: number, r0: number, r1: number, M: number, C: number, op: number, smallFirst: boolean | number): void;
  winograd42Conv(x: number, u: number, bias: number, y: number, scratch: number, H: number, W: number, c: number, P: number, top: number, left: number,
    OH2: number, OW2: number, OH: number, OW: number, co: number, Q: number, otop: number, oleft: number, t0: number, t1: number, tb: number, relu: boolean | number): void;
  winograd42Filter(g: number, u: number, K: number, N: number, turn: boolean | number, tmp: number, a0: number, a1: number): void;
  winograd42FilterGrad(x: number, dy: number, du: number, scratch: number, H: number, W: number, c: number, P: number, top: number, left: number,
    OH: number, OW: number, co: number, t0: number, t1: number, tb: number): void;
  winograd42FilterGradOut(du: number, dg: number, K: number, co: number, tmp: number, parts: number): void;
  batchNormStats(x: number, acc: number, r0: number, r1: number, C: number): void;
  batchNormApply(x: number, y: number, mean: number, scale: number, beta: number, r0: number, r1: number, C: number, relu: boolean | number): void;
  batchNormGradSums(dy: number, x: number, mean: number, scale: number, beta: number, rstd: number, acc: number, r0: number, r1: number, C: number, relu: boolean | number): void;
  batchNormGradApply(dy: number, x: number, dx: number, mean: number, scale: number, beta: number, k1: number, k2: number, k3: number,
    r0: number, r1: number, C: number, relu: boolean | number): void;
  softplus(x: number, y: number, i0: number, i1: number, consts: number): void;
  bernoulliNll(x: number, logits: number, out: number, r0: number, r1: number, n: number, consts: number): void;
  bernoulliNllGrad(x: number, logits: number, dy: number, dl: number, r0: number, r1: number, n: number, consts: number): void;
  col2im(col: number, dx: number, H: number, W: number, ci: number, OH: number, OW: number, fh: number, fw: number, sh: number, sw: number,
    top: number, left: number, b0: number, b1: number): void;
  zero(p: number, bytes: number): void;
  copyRows(src: number, srcStride: number, dst: number, dstStride: number, rows: number, bytes: number): void;
}

type KernelName = keyof SimdKernels;
type TensorInfo = tf.TensorInfo;
const NAMES: KernelName[] = ["adam", "sumMiddle", "convFilterGrad", "convInputGrad", "matmul",
  "winogradConv", "winogradFilter", "winograd4Conv", "winograd4Filter", "layerNormForward", "layerNormBackward", "winogradFilterGrad", "winogradFilterGradOut", "zero", "copyRows",
  "leakyRelu", "leakyReluGrad", "broadcastBinary", "matmulBlocked", "winograd4FilterGrad", "winograd4FilterGradOut",
  "batchNormRows", "transposeRows", "convForward", "winograd42Conv", "winograd42Filter", "winograd42FilterGrad", "winograd42FilterGradOut",
  "batchNormStats", "batchNormApply", "batchNormGradSums", "batchNormGradApply", "softplus", "col2im", "matmulPart",
  "bernoulliNll", "bernoulliNllGrad"];

const RELAXED_FLAG = "--experimental-wasm-relaxed-simd";
let fused: boolean | undefined;

/**
 * Whether the kernels are the build with relaxed SIMD, whose products accumulate by fused
 * multiply-add (one rounding where a multiply then an add had two; 20–35 % faster products on
 * this machine's 128-bit lanes, which issue two fused operations a cycle where a separate multiply
 * and add shared three ports). Node 20's V8 has relaxed SIMD behind RELAXED_FLAG, set here before
 * the first kernel module is compiled (V8 flags are the process's, so helper threads see it);
 * later engines have it on by default. LATENTLAB_FMA=0 picks the build without it, whose results
 * are those of a multiply and an add on any machine; with it, a machine whose CPU lacks FMA
 * (x86-64 before 2013) has V8 multiply and add, so its numbers differ from others' in the last
 * bits. Decided once per process.
 */
export function fusedMultiplyAdd(): boolean {
  if (fused !== undefined) return fused;
  const fromEnv = (process.env.LATENTLAB_FMA ?? "").trim();
  if (fromEnv !== "" && fromEnv !== "0" && fromEnv !== "1") {
    throw new Error(`LATENTLAB_FMA is "${fromEnv}"; use 1 for the kernels with fused multiply-add (the default where the engine has relaxed SIMD) or 0 for those without.`);
  }
  fused = fromEnv !== "0" && relaxedSimd();
  if (!fused && fromEnv === "1") {
    throw new Error(`LATENTLAB_FMA=1 asks for fused multiply-add, but this engine (Node ${process.version}) does not run relaxed SIMD even with ${RELAXED_FLAG}; unset it to use the kernels without.`);
  }
  return fused;
}

/** Whether this engine validates the relaxed-SIMD build, with RELAXED_FLAG set first where it needs it. */
export function relaxedSimd(): boolean {
  const file = kernelFile(false, true);
  if (!fs.existsSync(file)) return false;
  const bytes = fs.readFileSync(file);
  if (WebAssembly.validate(bytes)) return true;
  v8.setFlagsFromString(RELAXED_FLAG);
  return WebAssembly.validate(bytes);
}

/** One of the four builds of wasm/kernels.ts (see fusedMultiplyAdd). */
export function kernelFile(shared: boolean, fma: boolean): string {
  const root = path.dirname(require.resolve("latentlab/package.json"));
  return path.join(root, "dist", "wasm", `kernels${fma ? "-fma" : ""}${shared ? "-shared" : ""}.wasm`);
}

/** Where `npm run build:wasm` writes the build this process runs (see fusedMultiplyAdd). */
export function simdFile(shared: boolean): string {
  return kernelFile(shared, fusedMultiplyAdd());
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

/**
 * A job the caller posted and does not wait for (see `deferred`): its slot, the tensors its
 * shares write (a reader waits for them: `watchReads`) and those they read (held until it ends).
 */
interface DeferredJob {
  slot: number;
  /** Its number among the jobs posted (helpers take lower ones first). */
  order: number;
  shares: number;
  name: KernelName;
  writes: object[];
  reads: object[];
  /** A deferred job that writes one of `reads`: this one starts once that one has finished. */
  after: DeferredJob | null;
}

/**
 * Threads for the SIMD kernels, on the threaded backend's shared heap: helpers for the wasm
 * threads beyond the first, the calling thread working too. A job is a list of shares (argument
 * lists for independent parts of the output); every thread takes the next share until none is
 * left, so a thread the machine slows down takes fewer. The caller wakes the helpers with
 * Atomics.notify and waits until every share is finished, never for a helper that took none (one
 * asleep took up to ~2 ms to wake on a virtual machine, after the caller had run every share);
 * both sides watch a while before they sleep (awaitChange in simd-control.ts). Helpers are
 * unref'd: they never keep Node alive.
 *
 * A deferred job (`post`) is left to the helpers while the caller goes on: it lies in a slot of
 * its own until a thread reads what it writes, which finishes it first (the caller then takes
 * its remaining shares). Helpers take the caller's current job's shares before a deferred one's.
 */
class SimdPool {
  private readonly workers: Worker[] = [];
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private job = 0;
  /** The deferred job in each slot (null: none; the caller's own current job is not listed). */
  private readonly slots: (DeferredJob | null)[] = Array(SLOTS).fill(null);
  /** Deferred jobs by each tensor (dataId) they write. */
  readonly writers = new Map<object, DeferredJob>();

  constructor(file: string, memory: WebAssembly.Memory, count: number, private readonly backend: WasmBackend) {
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    this.ctl = new Int32Array(control);
    this.args = new Float64Array(control);
    this.ctl[HEADER.URGENT] = -1;
    for (let s = 0; s < SLOTS; s++) this.ctl[slotBase(s) + SLOT.NEXT] = -1;
    for (let i = 0; i < count; i++) {
      const worker = new Worker(path.join(__dirname, "simd-worker.js"), { workerData: { file, memory, control, names: NAMES, index: i } });
      worker.unref();
      this.workers.push(worker);
    }
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /** Runs `name` once per share (at most MAX_SHARES), on this thread and the helpers; returns when all are done. */
  run(kernels: SimdKernels, name: KernelName, shares: number[][], scratch?: ThreadScratch): void {
    const slot = this.write(name, shares, scratch, true, null);
    try {
      this.finish(kernels, slot, shares.length, name);
    } finally {
      Atomics.store(this.ctl, HEADER.URGENT, -1);
      Atomics.store(this.ctl, slotBase(slot) + SLOT.NEXT, -1);
    }
  }

  /**
   * Posts `name`'s shares for the helpers and returns at once. Until the job ends, the tensors in
   * `reads` stay allocated (a reference each) and using one of `writes` waits for it (`settle`).
   * Where a deferred job still writes one of `reads`, this one starts after it (after the latest
   * of them; earlier ones are ended first).
   */
  post(name: KernelName, shares: number[][], scratch: ThreadScratch | undefined, reads: TensorInfo[], writes: TensorInfo[]): void {
    const before = reads.map((t) => this.writers.get(t.dataId)).filter((j): j is DeferredJob => j !== undefined);
    const after = before.reduce<DeferredJob | null>((a, b) => (a && a.order - b.order > 0 ? a : b), null);
    for (const job of before) if (job !== after) this.settle(job);
    const slot = this.write(name, shares, scratch, false, after);
    const job: DeferredJob = { slot, order: this.job, shares: shares.length, name, writes: writes.map((t) => t.dataId), reads: reads.map((t) => t.dataId), after };
    for (const dataId of job.reads) this.backend.incRef(dataId);
    for (const dataId of job.writes) this.writers.set(dataId, job);
    this.slots[slot] = job;
  }

  /** Ends every deferred job, oldest first. */
  settleAll(): void {
    for (let job = this.oldest(); job; job = this.oldest()) this.settle(job);
  }

  /** The deferred job posted first of those not ended, or null. */
  private oldest(): DeferredJob | null {
    return this.slots.reduce<DeferredJob | null>((a, b) => (b && (!a || b.order - a.order < 0) ? b : a), null);
  }

  /**
   * Ends a deferred job (and first the one it follows): this thread takes what is left of it and
   * waits for the rest, then lets its tensors go.
   */
  settle(job: DeferredJob): void {
    if (this.slots[job.slot] !== job) return;
    if (job.after) this.settle(job.after);
    for (const dataId of job.writes) this.writers.delete(dataId);
    try {
      this.finish(simdKernels(this.backend), job.slot, job.shares, job.name);
      this.wakeFollowers(job);
    } finally {
      this.slots[job.slot] = null;
      Atomics.store(this.ctl, slotBase(job.slot) + SLOT.NEXT, -1);
      for (const dataId of job.reads) this.backend.disposeData(dataId);
    }
  }

  /** Writes a job into a free slot (ending the oldest deferred job if none is) and wakes the helpers. */
  private write(name: KernelName, shares: number[][], scratch: ThreadScratch | undefined, urgent: boolean, after: DeferredJob | null): number {
    const { ctl, args } = this;
    const width = shares[0].length;
    if (width > MAX_ARGS || shares.length > MAX_SHARES) throw new Error(`SimdPool: at most ${MAX_SHARES} shares of ${MAX_ARGS} arguments, got ${shares.length} of ${width}.`);
    let slot = this.freeSlot();
    if (slot < 0) {
      // The oldest (`after`, if it is the oldest, ends with it: what follows it starts later anyway).
      this.settle(this.oldest()!);
      slot = this.freeSlot();
    }
    const base = slotBase(slot);
    const at = argsBase(slot);
    shares.forEach((share, i) => args.set(share, at + i * width));
    ctl[base + SLOT.SHARES] = shares.length;
    ctl[base + SLOT.FN] = NAMES.indexOf(name);
    ctl[base + SLOT.ARGS] = width;
    ctl[base + SLOT.FAILED] = 0;
    ctl[base + SLOT.SCRATCH_ARG] = scratch ? scratch.arg : -1;
    ctl[base + SLOT.SCRATCH_AT] = scratch ? scratch.at | 0 : 0;
    ctl[base + SLOT.SCRATCH_BYTES] = scratch ? scratch.bytes | 0 : 0;
    ctl[base + SLOT.COMPLETED] = 0;
    const pending = after !== null && this.slots[after.slot] === after;
    ctl[base + SLOT.AFTER_SLOT] = pending ? after.slot : -1;
    ctl[base + SLOT.AFTER_JOB] = pending ? ctl[slotBase(after.slot) + SLOT.JOB] : 0;
    const job = (this.job = (this.job + 1) | 0);
    ctl[base + SLOT.JOB] = job;
    if (urgent) Atomics.store(ctl, HEADER.URGENT, slot);
    // Open: NEXT was −1 while the slot was written (a helper still looking at its last job takes nothing).
    Atomics.store(ctl, base + SLOT.NEXT, firstShare(job));
    Atomics.add(ctl, HEADER.SEQ, 1);
    Atomics.notify(ctl, HEADER.SEQ);
    return slot;
  }

  /** A slot with no job in it (deferred jobs whose shares have all finished are ended first), or −1. */
  private freeSlot(): number {
    let free = -1;
    for (let s = 0; s < SLOTS; s++) {
      const job = this.slots[s];
      if (job && Atomics.load(this.ctl, slotBase(s) + SLOT.COMPLETED) === job.shares) this.settle(job);
      if (free < 0 && !this.slots[s]) free = s;
    }
    return free;
  }

  /**
   * Takes the slot's remaining shares on this thread, then waits for those the helpers took,
   * running shares of deferred jobs meanwhile (one at a time, looking again after each).
   */
  private finish(kernels: SimdKernels, slot: number, count: number, name: KernelName): void {
    const base = slotBase(slot);
    let mine = 0;
    let failure: unknown = null;
    for (let i = claim(this.ctl, base); i >= 0; i = claim(this.ctl, base), mine++) {
      try {
        this.runHere(kernels, slot, i);
      } catch (e) {
        failure ??= e; // thrown once the helpers' shares are done: the slot is written again after
      }
    }
    // Only the shares a helper took are waited for: one that wakes late finds none left.
    let completed = Atomics.add(this.ctl, base + SLOT.COMPLETED, mine) + mine;
    while (completed < count) {
      if (this.helpDeferred(kernels)) completed = Atomics.load(this.ctl, base + SLOT.COMPLETED);
      else completed = awaitChange(this.ctl, base + SLOT.COMPLETED, completed);
    }
    if (failure !== null) throw failure;
    if (this.ctl[base + SLOT.FAILED]) throw new Error(`LatentLab's SIMD kernel ${name} failed on another thread.`);
  }

  /** Runs a share of the oldest deferred job that has one left and may start, if any (a throw marks that job failed); whether it did. */
  private helpDeferred(kernels: SimdKernels): boolean {
    const got = claimOldest(this.ctl, -1);
    if (!got) return false;
    const [slot, i] = got;
    const base = slotBase(slot);
    try {
      this.runHere(kernels, slot, i);
    } catch {
      Atomics.store(this.ctl, base + SLOT.FAILED, 1);
    }
    const completed = Atomics.add(this.ctl, base + SLOT.COMPLETED, 1) + 1;
    const job = this.slots[slot];
    if (job && completed === job.shares) this.wakeFollowers(job);
    return true;
  }

  /** Wakes the helpers if a deferred job follows `job` (which this thread has just finished): they slept finding it not ready. */
  private wakeFollowers(job: DeferredJob): void {
    if (!this.slots.some((j) => j !== null && j.after === job)) return;
    Atomics.add(this.ctl, HEADER.SEQ, 1);
    Atomics.notify(this.ctl, HEADER.SEQ);
  }

  /** Runs share i of the job in `slot` on this thread, with thread 0's scratch. */
  private runHere(kernels: SimdKernels, slot: number, i: number): void {
    (kernels[NAMES[this.ctl[slotBase(slot) + SLOT.FN]]] as (...a: number[]) => void)(...shareArgs(this.ctl, this.args, slot, i, 0));
  }
}

const pools = new WeakMap<WebAssembly.Memory, SimdPool | null>();
/** The pools made (one per threaded heap). */
const made: SimdPool[] = [];

/** The pool on this backend's heap (made on first use, with its read guard), or null on one thread. */
function poolOf(backend: WasmBackend): SimdPool | null {
  const memory = (backend.wasm.wasmMemory ?? backend.wasm.asm?.memory) as WebAssembly.Memory;
  let pool = pools.get(memory);
  if (pool === undefined) {
    const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
    pool = shared && wasmThreads() > 1 ? new SimdPool(simdFile(true), memory, wasmThreads() - 1, backend) : null;
    if (pool) {
      watchReads(backend, pool);
      made.push(pool);
    }
    pools.set(memory, pool);
  }
  return pool;
}

/** The backend's own lookups (which never wait), by data map. */
const lookups = new WeakMap<object, (dataId: object) => TensorData>();

/**
 * Makes every use of a tensor that a deferred job writes wait for that job: tfjs-backend-wasm
 * and LatentLab's kernels alike find a tensor's memory through the backend's `dataIdMap.get`
 * (its kernels, readSync, disposeData), so that one lookup is where the wait goes. Counting
 * references touches no data: `incRef` and `refCount` never wait, nor does a `disposeData`
 * that leaves other references (a variable assigned a deferred result, then the result disposed).
 */
function watchReads(backend: WasmBackend, pool: SimdPool): void {
  const map = backend.dataIdMap;
  const get = map.get.bind(map);
  lookups.set(map, get);
  map.get = (dataId: object) => {
    if (pool.writers.size > 0) {
      const job = pool.writers.get(dataId);
      if (job) pool.settle(job);
    }
    return get(dataId);
  };
  backend.incRef = (dataId: object) => {
    const data = map.has(dataId) ? get(dataId) : undefined;
    if (data) data.refCount++;
  };
  backend.refCount = (dataId: object) => (map.has(dataId) ? get(dataId).refCount : 0);
  const dispose = backend.disposeData.bind(backend);
  backend.disposeData = (dataId: object, force = false) => {
    if (!force && pool.writers.has(dataId) && get(dataId).refCount > 1) {
      get(dataId).refCount--;
      return false;
    }
    return dispose(dataId, force);
  };
}

/**
 * Where t lies (as byteOffset) without waiting for a deferred job that writes it: only for the
 * arguments of a job posted next with t among its reads, which then starts after that one.
 */
export function deferredOffset(backend: WasmBackend, t: TensorInfo): number {
  const get = lookups.get(backend.dataIdMap);
  return (get ? get(t.dataId) : backend.dataIdMap.get(t.dataId)).memoryOffset;
}

/**
 * Waits for every job LatentLab's helper threads still run for earlier work (weight gradients
 * and weight updates are left to them: `deferred`), this thread joining in. Nothing needs it to
 * be right — whatever uses a result waits for it — but a timing should end with it.
 */
export function settle(): void {
  for (const pool of made) pool.settleAll();
}

/** Whether a deferred job still writes t (reading it would wait). */
export function pending(t: TensorInfo): boolean {
  return made.some((pool) => pool.writers.has(t.dataId));
}

let deferring = 0;

/**
 * Runs `f`, letting the SIMD products it starts end later (products whose result is not needed
 * at once, such as a weight's gradient): the helpers work on them while this thread goes on, and
 * whatever uses a result waits for it first. Results are the same either way.
 */
export function deferred<T>(f: () => T): T {
  deferring++;
  try {
    return f();
  } finally {
    deferring--;
  }
}

/** Whether a kernel may defer its SIMD job (inside `deferred`, with helper threads). */
export function mayDefer(backend: WasmBackend): boolean {
  return deferring > 0 && poolOf(backend) !== null;
}

/**
 * Runs a SIMD kernel over `shares` (argument lists, all of one length, for independent parts of
 * one job's output) on as many threads as the wasm backend has, or one after another on one
 * thread. Which thread runs a share never changes a result. With `scratch`, that argument of
 * each share is the running thread's own scratch (see threadScratch). With `defer` (where
 * mayDefer), the job is left to the helpers and this returns at once; `defer.reads` are the
 * tensors its shares read (scratch included), `defer.writes` those they write.
 */
export function runShares(
  backend: WasmBackend, name: KernelName, shares: number[][], scratch?: ThreadScratch, defer?: { reads: TensorInfo[]; writes: TensorInfo[] },
): void {
  const kernels = simdKernels(backend);
  const pool = poolOf(backend);
  // Thread 0's scratch; a helper puts its own in (SimdPool).
  if (scratch) for (const share of shares) share[scratch.arg] = scratch.at;
  if (pool && defer && shares.length <= MAX_SHARES) {
    pool.post(name, shares, scratch, defer.reads, defer.writes);
    return;
  }
  // Run now: what it reads must be finished (its offsets may come from deferredOffset).
  if (pool && defer) for (const t of defer.reads) backend.dataIdMap.get(t.dataId);
  if (!pool || shares.length === 1) {
    for (const share of shares) (kernels[name] as (...a: number[]) => void)(...share);
    return;
  }
  for (let i = 0; i < shares.length; i += MAX_SHARES) pool.run(kernels, name, shares.slice(i, i + MAX_SHARES), scratch);
}

/**
 * Scratch space for each thread that runs a job's shares, as one tensor (the caller disposes
 * `info`): `floats` floats each, 64-byte aligned (no cache line of two threads). Passed to
 * runShares, it replaces argument `arg` of every share with the running thread's own, so a
 * thread reuses the scratch still in its cache, where a share's own scratch moved from core to
 * core with the shares (the Winograd conv of 128×28×28 32 → 32 channels on two threads: 10.1 →
 * 9.0 ms in a bare pool of two, 10.1 → 9.8 ms inside tfjs).
 */
export interface ThreadScratch {
  info: tf.TensorInfo;
  arg: number;
  at: number;
  bytes: number;
}

export function threadScratch(backend: WasmBackend, floats: number, arg: number): ThreadScratch {
  return { ...lineSlots(backend, wasmThreads(), floats), arg };
}

/**
 * `count` slots of `floats` floats each, as one tensor (the caller disposes `info`): slot i at
 * at + i·bytes, each starting a cache line (64 bytes) of its own, so that threads writing
 * neighbouring slots never share a line.
 */
export function lineSlots(backend: WasmBackend, count: number, floats: number): { info: tf.TensorInfo; at: number; bytes: number } {
  const bytes = 64 * Math.ceil((4 * floats) / 64);
  const info = backend.makeOutput([(count * bytes + 64) / 4], "float32");
  return { info, at: 64 * Math.ceil(byteOffset(backend, info) / 64), bytes };
}

/**
 * Shares' float64 partial sums combined in a fixed order: column i is the sum, slot after slot
 * from 0, of the float64 at index first + i of each of `count` slots (slot p at at + p·bytes,
 * as lineSlots lays them out).
 */
export function slotSums(backend: WasmBackend, slots: { at: number; bytes: number }, count: number, first: number, columns: number): Float64Array {
  const values = new Float64Array(backend.wasm.HEAPU8.buffer, slots.at, (count * slots.bytes) / 8);
  const slot = slots.bytes / 8;
  const sums = new Float64Array(columns);
  for (let i = 0; i < columns; i++) {
    let s = 0;
    for (let p = 0; p < count; p++) s += values[p * slot + first + i];
    sums[i] = s;
  }
  return sums;
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

/**
 * Scratch for `count` shares of `floats` floats each, as one tensor (the caller disposes `info`):
 * share i's starts at `at(i)`, 16-byte aligned (the SIMD kernels load and store whole vectors),
 * each rounded up to whole vectors.
 */
export function scratchFor(backend: WasmBackend, count: number, floats: number): { info: tf.TensorInfo; at(i: number): number } {
  const each = 4 * Math.ceil(floats / 4);
  const info = backend.makeOutput([count * each + 4], "float32");
  const base = 16 * Math.ceil(byteOffset(backend, info) / 16);
  return { info, at: (i) => base + 4 * each * i };
}

/**
 * Float32 tables copied into one scratch tensor (the caller disposes `info`), table i 16-byte
 * aligned at `at[i]`: the constants a SIMD kernel reads, since the module has no data of its own.
 */
export function heapTables(backend: WasmBackend, tables: Float32Array[]): { info: tf.TensorInfo; at: number[] } {
  const scratch = scratchFor(backend, tables.length, Math.max(...tables.map((t) => t.length)));
  const heap = heapF32(backend);
  tables.forEach((t, i) => heap.set(t, scratch.at(i) / 4));
  return { info: scratch.info, at: tables.map((_, i) => scratch.at(i)) };
}

/**
 * How many shares a job of `items` takes: one per `perItems` (at least one, at most
 * `maxShares`). Fixed by the job's size alone, never by the thread count, so that shares that
 * sum in a fixed order give the same result on any number of threads.
 */
export function shareCount(items: number, perItems: number, maxShares = 16): number {
  return Math.min(maxShares, Math.max(1, Math.floor(items / perItems)));
}

/**
 * Shares of `rows` rows of `floatsPerRow` for a pass that sums nothing across rows (so they may
 * follow the thread count): about 32 K floats each, up to four per thread. Cut by a fixed row
 * count instead, a sampler's 16×14×14×64 layer norm + SiLU (3 136 rows) ran as one share on one
 * thread: 0.42 → 0.32 ms on two.
 */
export function passRanges(rows: number, floatsPerRow: number): [number, number][] {
  return ranges(rows, Math.max(1, Math.min(4 * wasmThreads(), Math.floor((rows * floatsPerRow) / PASS_SHARE_FLOATS))));
}

const PASS_SHARE_FLOATS = 1 << 15;

/** A tensor's first byte in the heap (what the SIMD kernels take). */
export function byteOffset(backend: WasmBackend, info: tf.TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).memoryOffset;
}
