/**
 * The SIMD thread pool's shared control block (simd.ts, `SimdPool`; simd-worker.ts): an Int32
 * header, SLOTS job slots of Int32s, then each slot's share arguments as float64s. Kept apart so
 * that a helper thread loads it without tfjs.
 *
 * Header:
 *   [SEQ]     bumped by the caller whenever it posts a job (helpers sleep on it)
 *   [URGENT]  the slot of the job the caller is running now and waits for (−1: none); helpers
 *             take its shares before any other's
 * A slot (at slotBase(s)):
 *   [NEXT]    the job's tag (its number's low 22 bits) × 256 + the next share to take (see
 *             `claim`); −1 while the slot is empty or being written
 *   [SHARES] shares in the job, [FN] the kernel's index in the name list, [ARGS] arguments per
 *   share, [FAILED] set if a share threw on a helper, [COMPLETED] shares finished,
 *   [SCRATCH_ARG] the argument that is a thread's own scratch (−1: none), [SCRATCH_AT] where
 *   thread 0's starts and [SCRATCH_BYTES] its size (helper h's is the (h + 1)th; unsigned),
 *   [JOB] the job's number (helpers take older deferred jobs first)
 *   [AFTER_SLOT], [AFTER_JOB] the slot and number of a job whose shares must all be finished
 *   before this one's start (AFTER_SLOT −1: none; see `ready`)
 */
export const HEADER = { SEQ: 0, URGENT: 1 } as const;
export const SLOT = {
  NEXT: 0, SHARES: 1, FN: 2, ARGS: 3, FAILED: 4, SCRATCH_ARG: 5, SCRATCH_AT: 6, SCRATCH_BYTES: 7, COMPLETED: 8, JOB: 9, AFTER_SLOT: 10, AFTER_JOB: 11,
} as const;
export const HEADER_INTS = 16;
export const SLOT_INTS = 16;

/** Jobs posted and not yet finished at a time (one the caller runs, the rest deferred). */
export const SLOTS = 32;
/** Shares in one job, and arguments in one share. */
export const MAX_SHARES = 64;
export const MAX_ARGS = 24;

/** Bytes of the control block. */
export const CONTROL_BYTES = 4 * (HEADER_INTS + SLOTS * SLOT_INTS) + 8 * SLOTS * MAX_SHARES * MAX_ARGS;

/** Index in the Int32 view of slot s's first field. */
export function slotBase(s: number): number {
  return HEADER_INTS + s * SLOT_INTS;
}

/** Index in the Float64 view (over the whole block) of slot s's first argument. */
export function argsBase(s: number): number {
  return (4 * (HEADER_INTS + SLOTS * SLOT_INTS)) / 8 + s * MAX_SHARES * MAX_ARGS;
}

/** NEXT's value before the first share of job number `job` is taken. */
export function firstShare(job: number): number {
  return (job & 0x3fffff) * 256;
}

/**
 * Takes the next share of the job in the slot at `base`, if it has one left: its index, or −1.
 * A compare-and-swap on NEXT, whose tag names the job: a thread that read a job's share count
 * and then lost the slot to the next job (the caller sets NEXT to −1 before it writes a job and
 * to the new job's first share after) fails the swap and takes nothing. With `tag`, only a share
 * of the job of that tag (what NEXT held when the thread looked at the job). A share taken is
 * one the caller waits for before it writes the slot again.
 */
export function claim(ctl: Int32Array, base: number, tag = -1): number {
  for (;;) {
    const next = Atomics.load(ctl, base + SLOT.NEXT);
    if (next < 0 || (tag >= 0 && next >>> 8 !== tag)) return -1;
    const i = next & 255;
    if (i >= Atomics.load(ctl, base + SLOT.SHARES)) return -1;
    if (Atomics.compareExchange(ctl, base + SLOT.NEXT, next, next + 1) === next) return i;
  }
}

/**
 * Whether the job in the slot at `base` may be started: it follows no job, or the job it follows
 * has finished every share (or has ended and left its slot to a job of another number).
 */
export function ready(ctl: Int32Array, base: number): boolean {
  const after = Atomics.load(ctl, base + SLOT.AFTER_SLOT);
  if (after < 0) return true;
  const first = slotBase(after);
  return Atomics.load(ctl, first + SLOT.JOB) !== Atomics.load(ctl, base + SLOT.AFTER_JOB)
    || Atomics.load(ctl, first + SLOT.COMPLETED) >= Atomics.load(ctl, first + SLOT.SHARES);
}

/** The tag of the job in the slot at `base` if it has a share left to take and may start (`ready`), else −1. */
function openTag(ctl: Int32Array, base: number): number {
  const next = Atomics.load(ctl, base + SLOT.NEXT);
  if (next < 0 || (next & 255) >= Atomics.load(ctl, base + SLOT.SHARES)) return -1;
  // Read after NEXT: fields of a later job in this slot make the claim below fail, whatever they say.
  return ready(ctl, base) ? next >>> 8 : -1;
}

/**
 * Takes a share of the job in slot `s` if it may start (`ready`): its index, or −1. For a helper
 * the caller's current job; `claimOldest` for the rest.
 */
export function claimReady(ctl: Int32Array, s: number): number {
  const tag = openTag(ctl, slotBase(s));
  return tag >= 0 ? claim(ctl, slotBase(s), tag) : -1;
}

/**
 * Takes a share of the oldest job that has one left and may start, other than in slot `skip`:
 * [slot, share], or null. What helpers do after the caller's current job, and what the caller
 * does while it waits for a helper's share.
 */
export function claimOldest(ctl: Int32Array, skip: number): [number, number] | null {
  for (;;) {
    let [oldest, oldestJob, oldestTag] = [-1, 0, -1];
    for (let s = 0; s < SLOTS; s++) {
      const base = slotBase(s);
      const job = Atomics.load(ctl, base + SLOT.JOB);
      if (s === skip || (oldest >= 0 && job - oldestJob >= 0)) continue;
      const tag = openTag(ctl, base);
      if (tag >= 0) [oldest, oldestJob, oldestTag] = [s, job, tag];
    }
    if (oldest < 0) return null;
    const i = claim(ctl, slotBase(oldest), oldestTag);
    if (i >= 0) return [oldest, i];
  }
}

/**
 * The arguments of share i of the job in slot s, as thread `thread` runs it (0: the caller, h + 1:
 * helper h): its own scratch in place of the caller's (see threadScratch in simd.ts).
 */
export function shareArgs(ctl: Int32Array, args: Float64Array, s: number, i: number, thread: number): number[] {
  const base = slotBase(s);
  const width = ctl[base + SLOT.ARGS];
  const at = argsBase(s) + i * width;
  const share = Array.from(args.subarray(at, at + width));
  const scratchArg = ctl[base + SLOT.SCRATCH_ARG];
  if (scratchArg >= 0) share[scratchArg] = (ctl[base + SLOT.SCRATCH_AT] >>> 0) + thread * (ctl[base + SLOT.SCRATCH_BYTES] >>> 0);
  return share;
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
