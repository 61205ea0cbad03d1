import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ready } from "../src/backend/ready";
import * as data from "../src/data";
import { transformer, Transformer } from "../src/models/transformer";
import { rng } from "../src/random/rng";
import { expectNoLeak, expectNoLeakPerIteration } from "../src/testing/memory";
import { toBundle } from "../src/display/show";

before(() => ready({ backend: "wasm", quiet: true }));

const names = () => data.names({ n: 256, seed: 0 });

describe("lab.transformer", () => {
  it("is causal: changing a later token never changes earlier outputs", () => {
    const m = transformer({ data: names(), preset: "tiny", seed: 0 });
    const a = [0, 5, 9, 12, 3, 7];
    const b = [0, 5, 9, 1, 20, 2];
    const out = (ids: number[]) => tf.tidy(() => m.net.forward(tf.tensor2d([ids], [1, ids.length], "int32")).dataSync());
    const la = out(a);
    const lb = out(b);
    const V = m.vocab.size;
    for (let t = 0; t < 3; t++) for (let k = 0; k < V; k++) assert.equal(la[t * V + k], lb[t * V + k], `position ${t}`);
    assert.notEqual(la[3 * V], lb[3 * V], "position 3 sees the changed token");
    m.dispose();
  });

  it("trains without leaking, and generates deterministically under a seed with no leak per token", async () => {
    const d = names();
    const m = transformer({ data: d, preset: "tiny", seed: 1 });
    await expectNoLeakPerIteration(() => m.step(), { iterations: 10, label: "a Transformer step" });
    const first = m.generate({ n: 6, seed: 3 });
    assert.deepEqual(m.generate({ n: 6, seed: 3 }), first);
    assert.notDeepEqual(m.generate({ n: 6, seed: 4 }), first);
    await expectNoLeak(() => m.generate({ n: 4, seed: 5, maxLength: 8 }), "generating 8 tokens for 4 sequences");
    await expectNoLeakPerIteration((i) => m.generate({ n: 2, seed: i, maxLength: 1 + (i % 3) }), { iterations: 6, label: "each generated token" });
    m.dispose();
  });

  it("approaches greedy decoding as the temperature goes to 0", () => {
    const logits = Float32Array.from([0.1, 2.0, 1.9, -1]);
    const r = rng(0);
    const greedy = Transformer.pick(logits, { n: 1, temperature: 0 }, r);
    assert.equal(greedy, 1);
    const draws = (t: number) => Array.from({ length: 2000 }, () => Transformer.pick(logits, { n: 1, temperature: t }, r));
    const share = (xs: number[]) => xs.filter((x) => x === 1).length / xs.length;
    assert.ok(share(draws(1)) < 0.55);
    assert.ok(share(draws(0.05)) > 0.85, `${share(draws(0.05))}`);
    assert.equal(share(draws(0.001)), 1);
    assert.deepEqual(new Set(Array.from({ length: 500 }, () => Transformer.pick(logits, { n: 1, topK: 2 }, r))), new Set([1, 2]), "top-k keeps the k most likely");
    assert.deepEqual(new Set(Array.from({ length: 500 }, () => Transformer.pick(logits, { n: 1, topP: 0.4 }, r))), new Set([1]), "top-p keeps the nucleus");
  });

  it("learns: held-out loss falls well below the uniform baseline, with attention maps and step-by-step views", async () => {
    const d = data.names({ n: 1024, seed: 0 });
    const test = data.names({ split: "test", n: 256 });
    const m = transformer({ data: d, preset: "tiny", seed: 2, batchSize: 32 });
    const before = m.evaluate(test).nll;
    await m.train({ steps: 150, live: false });
    const after = m.evaluate(test).nll;
    assert.ok(Math.abs(before - Math.log(m.vocab.size)) < 0.3, `untrained ≈ log V: ${before}`);
    assert.ok(after < before - 0.5, `${before} → ${after}`);
    assert.ok(toBundle(m.attention("emma"))["image/png"]);
    const steps = m.explainGeneration({ seed: 1 });
    assert.ok(steps.rows.length >= 1 && steps.rows[0].top.length === 5);
    assert.match(String(toBundle(steps)["text/html"]), /step by step/);
    const nov = m.novelty({ n: 20, seed: 0 });
    assert.ok(nov.novel >= 0 && nov.novel <= 1);
    m.dispose();
  });

  it("trains on images as pixel strings", async () => {
    const px = data.pixelStrings(data.mnist({ split: "test", n: 64 }), { size: 8 });
    assert.equal((px.strings as string[])[0].length, 64);
    const m = transformer({ data: px, preset: "tiny", seed: 0, batchSize: 8 });
    await m.train({ steps: 2, live: false });
    const imgs = data.stringsToImages(m.generate({ n: 2, seed: 0 }), 8);
    assert.deepEqual(imgs.shape, [2, 8, 8, 1]);
    imgs.dispose();
    m.dispose();
  });

  it("explains bad input", () => {
    assert.throws(() => transformer({ data: data.ring8({ n: 64 }) }), /trains on text datasets/);
    const m = transformer({ data: names(), preset: "tiny" });
    assert.throws(() => m.net.forward(tf.zeros([1, 3])), /int32 token ids/);
    assert.throws(() => m.net.forward(tf.zeros([1, 40], "int32")), /longer than this model's context \(16\)/);
    assert.throws(() => m.generate({ n: 2, temperature: -1 }), /temperature must be ≥ 0/);
    m.dispose();
  });
});
