import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { ready } from "../src/backend/ready";
import * as data from "../src/data";
import { rng } from "../src/random/rng";
import { frechetDistance, kid, novelty, precisionRecall, symmetricEigen, textNovelty } from "../src/metrics/images";
import { evaluate } from "../src/metrics/evaluate";
import { featureNetwork, featuresOf } from "../src/metrics/features";
import { gan } from "../src/models/gan";
import { vae } from "../src/models/vae";
import { expectNoLeak } from "../src/testing/memory";

before(() => ready({ backend: "wasm", quiet: true }));

function gaussian(seed: number, n: number, d: number, shift = 0, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * d }, (_, i) => shift * (i % d === 0 ? 1 : 0) + scale * r.normal1());
}

describe("image distances", () => {
  it("the eigen-decomposition reconstructs a symmetric matrix", () => {
    const a = Float64Array.from([4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2]);
    const { values, vectors } = symmetricEigen(a, 3);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += vectors[i * 3 + k] * values[k] * vectors[j * 3 + k];
      assert.ok(Math.abs(s - a[i * 3 + j]) < 1e-9);
    }
  });

  it("Fréchet distance: ~0 for a set against itself, and grows with an injected shift as ‖Δμ‖²", () => {
    const a = gaussian(1, 2000, 8);
    assert.ok(frechetDistance(a, a, 8) < 1e-6);
    const b = gaussian(2, 2000, 8);
    const same = frechetDistance(a, b, 8);
    const shifted = frechetDistance(a, gaussian(2, 2000, 8, 3), 8);
    assert.ok(same < 0.1, `two samples of one distribution: ${same}`);
    assert.ok(Math.abs(shifted - 9) < 0.5, `a shift of 3 along one axis adds 9: ${shifted}`);
    assert.ok(frechetDistance(a, gaussian(2, 2000, 8, 1), 8) < shifted);
    const wider = frechetDistance(a, gaussian(3, 2000, 8, 0, 2), 8); // tr(Σ1+Σ2−2(Σ1Σ2)^½) = 8(1+4−4) = 8
    assert.ok(Math.abs(wider - 8) < 0.6, `scale 2 in 8 dims: ${wider}`);
  });

  it("KID is unbiased: ~0 for two samples of one distribution, positive when they differ", () => {
    const r = rng(5);
    const same = kid(gaussian(1, 600, 8), gaussian(2, 600, 8), 8, r, { subsets: 8, subsetSize: 200 });
    assert.ok(Math.abs(same.value) < 3 * same.stderr + 1e-3, `${same.value} ± ${same.stderr}`);
    const diff = kid(gaussian(1, 600, 8), gaussian(2, 600, 8, 2), 8, r, { subsets: 8, subsetSize: 200 });
    assert.ok(diff.value > 10 * diff.stderr && diff.value > 0.05);
  });

  it("precision and recall behave on constructed cases", () => {
    const real = gaussian(1, 400, 4);
    // Real points from one corner only (first coordinate above 1): realistic, but not diverse.
    // (A random subset would score high recall too: its k-NN balls grow as it thins out.)
    const corner: number[] = [];
    for (let i = 0; i < 400; i++) if (real[i * 4] > 1) corner.push(...real.slice(i * 4, i * 4 + 4));
    const pr = precisionRecall(real, corner, 4);
    assert.equal(pr.precision, 1, "a part of the real data is all realistic");
    assert.ok(pr.recall < 0.5, `but covers little of it: ${pr.recall}`);
    const whole = precisionRecall(real, gaussian(3, 400, 4), 4);
    assert.ok(whole.recall > 0.8 && whole.precision > 0.8, `a fresh sample of the same distribution: ${JSON.stringify(whole)}`);
    const far = precisionRecall(real, gaussian(2, 400, 4, 50), 4);
    assert.equal(far.precision, 0);
    assert.equal(far.recall, 0);
  });

  it("novelty tells copying from creating", () => {
    const train = gaussian(1, 500, 4);
    const held = gaussian(2, 300, 4);
    const copies = novelty(train.slice(0, 200 * 4), train, held, 4);
    const fresh = novelty(gaussian(3, 300, 4), train, held, 4);
    assert.equal(copies.memorised, 1);
    assert.equal(copies.medianNearest, 0);
    assert.ok(fresh.memorised < 0.15, `fresh samples: ${fresh.memorised}`);
    assert.equal(textNovelty(["anna", "zed", "bob"], ["anna", "bob", "carl"]), 1 / 3);
  });
});

describe("the feature network", () => {
  it("loads committed weights that classify held-out MNIST at the recorded accuracy", () => {
    const { card } = featureNetwork("mnist");
    assert.ok(card.testAccuracy >= 0.98, `recorded accuracy ${card.testAccuracy}`);
    const test = data.mnist({ split: "test" });
    const f = featuresOf(test.x.slice(0, 10));
    assert.deepEqual(f.shape, [10, 128]);
    f.dispose();
    test.dispose();
  });

  it("its training script re-creates weights of the recorded accuracy", { timeout: 900_000 }, () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "ll-features-"));
    const root = path.resolve(__dirname, "..", "..");
    const r = spawnSync(process.execPath, [path.join(root, "dist", "metrics", "train-features.js"), "mnist", "--out", out], { encoding: "utf8", timeout: 900_000 });
    assert.equal(r.status, 0, r.stderr);
    const made = JSON.parse(fs.readFileSync(path.join(out, "mnist-classifier.json"), "utf8"));
    const committed = featureNetwork("mnist").card;
    process.stdout.write(`# re-trained: ${(100 * made.testAccuracy).toFixed(2)}%, committed: ${(100 * committed.testAccuracy).toFixed(2)}%\n`);
    assert.ok(Math.abs(made.testAccuracy - committed.testAccuracy) <= 0.005, `${made.testAccuracy} vs ${committed.testAccuracy}`);
  });
});

describe("lab.evaluate", () => {
  it("reports image metrics with their real-vs-real floor, without leaking", async () => {
    const train = data.mnist({ n: 600, seed: 0 });
    const test = data.mnist({ split: "test", n: 300 });
    const m = vae({ data: train, preset: "tiny", seed: 0 });
    await m.train({ steps: 20, live: false });
    const { result: e } = await expectNoLeak(() => evaluate(m, train, { n: 200, test }), "evaluate()");
    const fd = e.rows.find((r) => r.name === "Fréchet distance")!;
    assert.ok(fd.floor !== null && fd.model > fd.floor, `an untrained model is worse than the floor: ${fd.model} vs ${fd.floor}`);
    assert.ok(e.get("precision") >= 0 && e.get("recall") <= 1);
    assert.match(String((e as never as { [k: symbol]: () => Record<string, string> })[Symbol.for("latentlab.mime")]()["text/plain"]), /floor/);
    assert.ok(Number.isFinite(m.card().card.metrics["Fréchet distance"]));
    m.dispose();
  });

  it("reports 2-D metrics for a GAN on ring8", async () => {
    const d = data.ring8({ n: 1024 });
    const g = gan({ data: d, preset: "tiny", seed: 0 });
    await g.train({ steps: 10, live: false });
    const e = evaluate(g, d, { n: 500 });
    assert.equal(e.rows.find((r) => r.name === "modes captured")?.floor, 8, "fresh data captures every mode");
    assert.ok(e.get("grid JS (nats)") > e.rows.find((r) => r.name === "grid JS (nats)")!.floor!);
    assert.throws(() => evaluate({} as never, d), /needs a model that can sample/);
    g.dispose();
  });
});
