/** Shared helpers for the test suite. */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { ready } from "../src/backend/ready";

/** Initialises both backends the reference tests compare (wasm with our kernels, and cpu). */
export async function bothBackends(): Promise<void> {
  await ready({ backend: "cpu", quiet: true });
  await ready({ backend: "wasm", quiet: true });
}

/** Runs `fn` on the named backend and returns plain arrays of every tensor it returns. */
export async function on(backend: "wasm" | "cpu", fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const out = tf.tidy(fn);
  const data = out.map((t) => t.dataSync() as Float32Array);
  tf.dispose(out);
  return data;
}

/** Asserts two arrays agree within `tol` relative to the reference's largest magnitude. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(
    worst <= tol * scale,
    `${what}: max |difference| ${worst.toExponential(3)} at ${at} (got ${actual[at]}, expected ${expected[at]}) exceeds ${tol} × ${scale.toFixed(3)}`,
  );
}

/** Deterministic test data in [-1, 1). */
export function data(seed: number, size: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

export function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
