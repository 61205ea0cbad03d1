/**
 * A thread of LatentLab's SIMD kernels (see simd.ts, `SimdPool`): instantiates the shared-memory
 * build on tfjs-backend-wasm's heap, then runs one kernel call per request posted in its control
 * block, for as long as the process lives.
 */
import * as fs from "fs";
import { workerData } from "worker_threads";

interface Start {
  file: string;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  names: string[];
}

const { file, memory, control, names } = workerData as Start;
const kernels = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(file)), { env: { memory } }).exports;
const fns = names.map((n) => kernels[n] as (...a: number[]) => void);
const ctl = new Int32Array(control, 0, 4);
const args = new Float64Array(control, 16);

let seen = 0;
for (;;) {
  Atomics.wait(ctl, 0, seen);
  seen = Atomics.load(ctl, 0);
  try {
    fns[ctl[2]](...Array.from(args.subarray(0, ctl[3])));
    ctl[2] = -1;
  } catch {
    ctl[2] = -2; // tells the caller it failed
  }
  Atomics.store(ctl, 1, seen);
  Atomics.notify(ctl, 1);
}
