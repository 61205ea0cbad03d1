/**
 * Memory checks: tfjs tensors live until disposed, so every loop in LatentLab is tested for
 * leaks with these helpers (and users can test their own code the same way).
 *
 *   await lab.testing.expectNoLeak(() => model.step(), "model.step()");
 *   await lab.testing.expectNoLeakPerIteration(() => model.step(), { iterations: 20 });
 */
import * as tf from "@tensorflow/tfjs";

export interface LeakReport {
  /** Tensors alive before and after. */
  before: number;
  after: number;
  /** after − before. */
  leaked: number;
}

function check(label: string, before: number, after: number, allowed: number): LeakReport {
  const leaked = after - before;
  if (leaked > allowed) {
    throw new Error(
      `${label} leaked ${leaked} tensor${leaked === 1 ? "" : "s"} ` +
        `(tf.memory().numTensors went from ${before} to ${after}${allowed ? `, ${allowed} allowed` : ""}). ` +
        `Wrap intermediate work in tf.tidy() or dispose what you create.`,
    );
  }
  return { before, after, leaked };
}

/**
 * Runs `fn` once and throws if it leaves more tensors alive than before (plus `allowed`, for a
 * function that returns tensors on purpose).
 */
export async function expectNoLeak<T>(
  fn: () => T | Promise<T>,
  label = "the function",
  allowed = 0,
): Promise<{ result: T } & LeakReport> {
  const before = tf.memory().numTensors;
  const result = await fn();
  const report = check(label, before, tf.memory().numTensors, allowed);
  return { result, ...report };
}

export interface PerIterationOptions {
  /** Calls that may allocate lasting state first (optimizer slots, caches). Default 2. */
  warmup?: number;
  /** Calls that must together leave the tensor count unchanged. Default 10. */
  iterations?: number;
  /** Name used in the error message. */
  label?: string;
}

/**
 * Calls `fn` `warmup` times, then `iterations` more times, and throws if the later calls
 * changed the number of live tensors: the check every training step and sampler passes.
 */
export async function expectNoLeakPerIteration(
  fn: (i: number) => unknown | Promise<unknown>,
  options: PerIterationOptions = {},
): Promise<LeakReport> {
  const { warmup = 2, iterations = 10, label = "each iteration" } = options;
  let i = 0;
  for (; i < warmup; i++) await fn(i);
  const before = tf.memory().numTensors;
  for (let j = 0; j < iterations; j++, i++) await fn(i);
  return check(`${label} (over ${iterations} calls)`, before, tf.memory().numTensors, 0);
}
