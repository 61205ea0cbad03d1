/**
 * A helper thread of LatentLab's SIMD kernels (see simd.ts, `SimdPool`): instantiates the
 * shared-memory build on tfjs-backend-wasm's heap, then for each job posted in the control block
 * takes shares until none is left (claim), counting each one finished, for as long as the
 * process lives. Between jobs it watches for the next one a while before it sleeps (awaitChange).
 */
import * as fs from "fs";
import { workerData } from "worker_threads";
import { CONTROL, HEADER_INTS, awaitChange, claim } from "./simd-control";

interface Start {
  file: string;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  names: string[];
  index: number;
}

const { SEQ, SHARES, FN, ARGS, FAILED, SCRATCH_ARG, SCRATCH_AT, SCRATCH_BYTES, COMPLETED } = CONTROL;

const { file, memory, control, names, index } = workerData as Start;
const kernels = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(file)), { env: { memory } }).exports;
const fns = names.map((n) => kernels[n] as (...a: number[]) => void);
const ctl = new Int32Array(control, 0, HEADER_INTS);
const args = new Float64Array(control, 4 * HEADER_INTS);

let seen = 0;
for (;;) {
  seen = awaitChange(ctl, SEQ, seen);
  // Read before any share is taken; `claim` fails if they were another job's (see claim).
  const fn = fns[ctl[FN]];
  const width = ctl[ARGS];
  const shares = ctl[SHARES];
  // This thread's own scratch, in place of the caller's (see threadScratch in simd.ts).
  const scratchArg = ctl[SCRATCH_ARG];
  const scratch = (ctl[SCRATCH_AT] >>> 0) + (index + 1) * (ctl[SCRATCH_BYTES] >>> 0);
  for (let i = claim(ctl, seen, shares); i >= 0; i = claim(ctl, seen, shares)) {
    try {
      const share = Array.from(args.subarray(i * width, (i + 1) * width));
      if (scratchArg >= 0) share[scratchArg] = scratch;
      fn(...share);
    } catch {
      Atomics.store(ctl, FAILED, 1);
    }
    Atomics.add(ctl, COMPLETED, 1);
    Atomics.notify(ctl, COMPLETED);
  }
}
