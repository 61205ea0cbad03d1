import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { rng } from "../src/random/rng";
import { ready } from "../src/backend/ready";

function draws(r: ReturnType<typeof rng>, n: number): number[] {
  return Array.from({ length: n }, () => r.next());
}

describe("lab.rng", () => {
  it("is deterministic under a seed and differs across seeds", () => {
    assert.deepEqual(draws(rng(1), 50), draws(rng(1), 50));
    assert.notDeepEqual(draws(rng(1), 50), draws(rng(2), 50));
    assert.deepEqual(draws(rng("exp-a"), 10), draws(rng("exp-a"), 10));
  });

  it("fork depends on the parent's key and the name, not on the parent's draws", () => {
    const a = rng(7);
    const b = rng(7);
    draws(b, 100); // b has drawn, a has not
    assert.deepEqual(draws(a.fork("D"), 20), draws(b.fork("D"), 20));
    assert.notDeepEqual(draws(a.fork("D"), 20), draws(a.fork("G"), 20));
    assert.notDeepEqual(draws(rng(7).fork("D"), 20), draws(rng(8).fork("D"), 20));
  });

  it("resumes exactly from a saved state, including a spare normal", () => {
    const r = rng(3);
    r.normal1(); // leaves a spare deviate
    const saved = JSON.parse(JSON.stringify(r.state()));
    const expected = [r.normal1(), r.normal1(), r.next()];
    const again = rng(3);
    again.setState(saved);
    assert.deepEqual([again.normal1(), again.normal1(), again.next()], expected);
    assert.throws(() => rng(4).setState(saved), /stream "3"/);
  });

  it("draws normals and uniforms with the right moments", () => {
    const r = rng(11);
    const n = new Float32Array(200_000);
    r.fillNormal(n, 2, 3);
    const mean = n.reduce((a, b) => a + b, 0) / n.length;
    const sd = Math.sqrt(n.reduce((a, b) => a + (b - mean) ** 2, 0) / n.length);
    assert.ok(Math.abs(mean - 2) < 0.03, `mean ${mean}`);
    assert.ok(Math.abs(sd - 3) < 0.03, `sd ${sd}`);
    const u = r.fillUniform(new Float32Array(100_000), -1, 1);
    assert.ok(u.every((x) => x >= -1 && x < 1));
    assert.ok(Math.abs(u.reduce((a, b) => a + b, 0) / u.length) < 0.01);
  });

  it("gives tfjs non-zero seeds (0 would mean unseeded)", () => {
    const r = rng(0);
    for (let i = 0; i < 10_000; i++) assert.ok(r.seed() > 0);
  });

  it("permutes every index exactly once", () => {
    const p = rng(5).permutation(1000);
    assert.deepEqual([...p].sort((a, b) => a - b), [...Array(1000).keys()]);
  });

  it("makes identical tensors on wasm and cpu from the same seed", async () => {
    await ready({ backend: "cpu", quiet: true });
    const a = rng(9).normal([4, 3]);
    const onCpu = a.dataSync().slice();
    a.dispose();
    await ready({ backend: "wasm", quiet: true });
    const b = rng(9).normal([4, 3]);
    assert.deepEqual(b.dataSync(), onCpu);
    b.dispose();
    assert.equal(tf.getBackend(), "wasm");
  });

  it("rejects seeds that are not integers, with a hint", () => {
    assert.throws(() => rng(1.5), /integer or string seed.*lab\.rng\(42\)/);
    assert.throws(() => rng(NaN), /integer or string seed/);
    assert.throws(() => rng(1).normal([2, -1]), /non-negative integers/);
  });
});
