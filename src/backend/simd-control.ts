/**
 * The SIMD thread pool's shared control block (simd.ts, `SimdPool`; simd-worker.ts): Int32
 * header, then the jobs' arguments as float64s. Kept apart so that a helper thread loads it
 * without tfjs.
 *   [SEQ]    bumped by the caller to start a job (helpers wait on it)
 *   [NEXT]   the job's tag (its SEQ's low 22 bits) × 256 + the next share to take (see `claim`);
 *            −1 while the caller writes a job
 *   [SHARES] shares in this job, [FN] the kernel's index in the name list, [ARGS] arguments per share
 *   [FAILED] set if a share threw on a helper, [COMPLETED] shares of this job finished
 *   [SCRATCH_ARG] the argument that is a thread's own scratch (−1: none), [SCRATCH_AT] where
 *   thread 0's starts and [SCRATCH_BYTES] its size (helper h's is the (h + 1)th; unsigned)
 */
export const CONTROL = { SEQ: 0, NEXT: 1, SHARES: 2, FN: 3, ARGS: 4, FAILED: 5, SCRATCH_ARG: 6, SCRATCH_AT: 7, SCRATCH_BYTES: 8, COMPLETED: 9 } as const;
export const HEADER_INTS = 16;

/** NEXT's value before the first share of job `seq` is taken. */
export function firstShare(seq: number): number {
  return (seq & 0x3fffff) * 256;
}

/**
 * Takes the next share of job `seq`, if it is still the job posted and has one left: its index,
 * or −1. A compare-and-swap on NEXT, so a helper that wakes after the job ended (the caller ran
 * every share, saw them completed and may be writing the next job's arguments) takes nothing,
 * whatever it read: the caller sets NEXT to −1 before it writes a job and to the job's first
 * share after, and a share taken is one the caller waits for before it writes again.
 */
export function claim(ctl: Int32Array, seq: number, shares: number): number {
  const first = firstShare(seq);
  for (;;) {
    const next = Atomics.load(ctl, CONTROL.NEXT);
    const i = next - first;
    if (i < 0 || i >= shares) return -1;
    if (Atomics.compareExchange(ctl, CONTROL.NEXT, next, next + 1) === next) return i;
  }
}

/**
 * How long (ms) a thread of the pool watches for its next event before it sleeps in
 * Atomics.wait: a helper after a job ends (the next job), the caller while helpers finish theirs.
 * Waking from Atomics.wait took 50–80 µs on the reference machine (a virtual one), so a job of
 * two shares that did nothing cost 55–80 µs, 2–8 µs with both watching. A sampler's step (a
 * U-Net at batch 16, ~100 jobs) ran 11 % faster, a VAE step 5 %; 5 ms of watching did no better
 * than 1. A watching helper takes no core that LatentLab's work needs: XNNPACK runs on the
 * calling thread alone (threads.ts).
 */
export const SPIN_MS = 1;

/**
 * Waits until ctl[index] is no longer `value` and returns what it became: watching it for
 * SPIN_MS, then sleeping in Atomics.wait (woken by the Atomics.notify that follows each store).
 */
export function awaitChange(ctl: Int32Array, index: number, value: number): number {
  const until = performance.now() + SPIN_MS;
  let now = Atomics.load(ctl, index);
  // The clock (~50 ns a read) every 256 loads.
  for (let i = 1; now === value && ((i & 255) !== 0 || performance.now() < until); i++) now = Atomics.load(ctl, index);
  while (now === value) {
    Atomics.wait(ctl, index, value);
    now = Atomics.load(ctl, index);
  }
  return now;
}
