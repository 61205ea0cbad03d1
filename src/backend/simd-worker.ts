/**
 * A helper thread of LatentLab's SIMD kernels (see simd.ts, `SimdPool`): instantiates the
 * shared-memory build on tfjs-backend-wasm's heap, then, for as long as the process lives, takes
 * shares of the jobs posted in the control block (claim) and counts each one finished: the
 * caller's current job first, then deferred jobs oldest first (those that follow a job once it
 * has finished: `ready`). With nothing left it watches for
 * the next job a while before it sleeps (awaitChange).
 */
import * as fs from "fs";
import { workerData } from "worker_threads";
import { HEADER, SLOT, SLOTS, argsBase, awaitChange, claim, ready, slotBase } from "./simd-control";

interface Start {
  file: string;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  names: string[];
  index: number;
}

const { file, memory, control, names, index } = workerData as Start;
const kernels = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(file)), { env: { memory } }).exports;
const fns = names.map((n) => kernels[n] as (...a: number[]) => void);
const ctl = new Int32Array(control);
const args = new Float64Array(control);

/** Runs share i of the job in slot s (taken by claim, so the slot stays as it is until it is counted). */
function run(s: number, i: number): void {
  const base = slotBase(s);
  const width = ctl[base + SLOT.ARGS];
  const share = Array.from(args.subarray(argsBase(s) + i * width, argsBase(s) + (i + 1) * width));
  // This thread's own scratch, in place of the caller's (see threadScratch in simd.ts).
  const scratchArg = ctl[base + SLOT.SCRATCH_ARG];
  if (scratchArg >= 0) share[scratchArg] = (ctl[base + SLOT.SCRATCH_AT] >>> 0) + (index + 1) * (ctl[base + SLOT.SCRATCH_BYTES] >>> 0);
  try {
    fns[ctl[base + SLOT.FN]](...share);
  } catch {
    Atomics.store(ctl, base + SLOT.FAILED, 1);
  }
  Atomics.add(ctl, base + SLOT.COMPLETED, 1);
  Atomics.notify(ctl, base + SLOT.COMPLETED);
}

/** The tag of the job in the slot at `base` if it has a share left to take and may start (`ready`), else −1. */
function open(base: number): number {
  const next = Atomics.load(ctl, base + SLOT.NEXT);
  if (next < 0 || (next & 255) >= Atomics.load(ctl, base + SLOT.SHARES)) return -1;
  // Read after NEXT: fields of a later job in this slot make the claim below fail, whatever they say.
  return ready(ctl, base) ? next >>> 8 : -1;
}

/** A share of the caller's current job, else of the oldest deferred job that may start: [slot, share], or null. */
function take(): [number, number] | null {
  const urgent = Atomics.load(ctl, HEADER.URGENT);
  if (urgent >= 0) {
    const tag = open(slotBase(urgent));
    const i = tag >= 0 ? claim(ctl, slotBase(urgent), tag) : -1;
    if (i >= 0) return [urgent, i];
  }
  for (;;) {
    let [oldest, oldestJob, oldestTag] = [-1, 0, -1];
    for (let s = 0; s < SLOTS; s++) {
      const base = slotBase(s);
      const job = Atomics.load(ctl, base + SLOT.JOB);
      if (s === urgent || (oldest >= 0 && job - oldestJob >= 0)) continue;
      const tag = open(base);
      if (tag >= 0) [oldest, oldestJob, oldestTag] = [s, job, tag];
    }
    if (oldest < 0) return null;
    const i = claim(ctl, slotBase(oldest), oldestTag);
    if (i >= 0) return [oldest, i];
  }
}

let seen = 0;
for (;;) {
  // Read before looking: a job posted after this bumps SEQ, so the wait below returns at once.
  seen = Atomics.load(ctl, HEADER.SEQ);
  for (let got = take(); got; got = take()) run(got[0], got[1]);
  seen = awaitChange(ctl, HEADER.SEQ, seen);
}
