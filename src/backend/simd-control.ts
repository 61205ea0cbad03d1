/**
 * The SIMD thread pool's shared control block (simd.ts, `SimdPool`; simd-worker.ts): Int32
 * header, then the jobs' arguments as float64s. Kept apart so that a helper thread loads it
 * without tfjs.
 *   [SEQ]    bumped by the caller to start a job (helpers wait on it)
 *   [NEXT]   the next share to take (Atomics.add)
 *   [SHARES] shares in this job, [FN] the kernel's index in the name list, [ARGS] arguments per share
 *   [FAILED] set if a share threw on a helper, [DONE + h] the last job helper h finished
 *   [SCRATCH_ARG] the argument that is a thread's own scratch (−1: none), [SCRATCH_AT] where
 *   thread 0's starts and [SCRATCH_BYTES] its size (helper h's is the (h + 1)th; unsigned)
 */
export const CONTROL = { SEQ: 0, NEXT: 1, SHARES: 2, FN: 3, ARGS: 4, FAILED: 5, SCRATCH_ARG: 6, SCRATCH_AT: 7, SCRATCH_BYTES: 8, DONE: 9 } as const;
export const HEADER_INTS = 16;
