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
import { HEADER, SLOT, awaitChange, claimOldest, claimReady, shareArgs, slotBase } from "./simd-control";

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

/** Runs share i of the job in slot s (taken by a claim, so the slot stays as it is until it is counted). */
function run(s: number, i: number): void {
  const base = slotBase(s);
  try {
    fns[ctl[base + SLOT.FN]](...shareArgs(ctl, args, s, i, index + 1));
  } catch {
    Atomics.store(ctl, base + SLOT.FAILED, 1);
  }
  Atomics.add(ctl, base + SLOT.COMPLETED, 1);
  Atomics.notify(ctl, base + SLOT.COMPLETED);
}

/** A share of the caller's current job, else of the oldest deferred job that may start: [slot, share], or null. */
function take(): [number, number] | null {
  const urgent = Atomics.load(ctl, HEADER.URGENT);
  const i = urgent >= 0 ? claimReady(ctl, urgent) : -1;
  return i >= 0 ? [urgent, i] : claimOldest(ctl, urgent);
}

let seen = 0;
for (;;) {
  // Read before looking: a job posted after this bumps SEQ, so the wait below returns at once.
  seen = Atomics.load(ctl, HEADER.SEQ);
  for (let got = take(); got; got = take()) run(got[0], got[1]);
  seen = awaitChange(ctl, HEADER.SEQ, seen);
}
