import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ready } from "../src/backend/ready";
import * as data from "../src/data";
import { gan } from "../src/models/gan";
import * as L from "../src/models/gan/losses";
import { modeCoverage, gridDivergence, mmd } from "../src/metrics/points";
import { expectNoLeakPerIteration } from "../src/testing/memory";
import { adam } from "../src/train/adam";
import { toBundle } from "../src/display/show";
import { assertClose, on } from "./helpers";

before(() => ready({ backend: "wasm", quiet: true }));

const real = [2, -1, 0.5];
const fake = [-3, 0, 1];
const sp = (t: number) => Math.log1p(Math.exp(t));
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
const sig = (t: number) => 1 / (1 + Math.exp(-t));

function run(loss: L.GanLoss): { d: number; g: number } {
  return tf.tidy(() => {
    const out = loss({ realLogits: tf.tensor2d(real, [3, 1]), fakeLogits: tf.tensor2d(fake, [3, 1]) });
    return { d: out.d.dataSync()[0], g: out.g.dataSync()[0] };
  });
}

describe("GAN losses against hand-computed values", () => {
  const cases: [string, L.GanLoss, number, number][] = [
    ["minimax", L.minimax, -mean(real.map((t) => Math.log(sig(t)))) - mean(fake.map((t) => Math.log(1 - sig(t)))), mean(fake.map((t) => Math.log(1 - sig(t))))],
    ["nonSaturating", L.nonSaturating, mean(real.map((t) => sp(-t))) + mean(fake.map(sp)), -mean(fake.map((t) => Math.log(sig(t))))],
    ["leastSquares", L.leastSquares, 0.5 * mean(real.map((t) => (t - 1) ** 2)) + 0.5 * mean(fake.map((t) => t * t)), 0.5 * mean(fake.map((t) => (t - 1) ** 2))],
    ["hinge", L.hinge, mean(real.map((t) => Math.max(0, 1 - t))) + mean(fake.map((t) => Math.max(0, 1 + t))), -mean(fake)],
    ["wasserstein", L.wasserstein, mean(fake) - mean(real), -mean(fake)],
  ];
  for (const [name, loss, d, g] of cases) {
    it(name, () => {
      const got = run(loss);
      assert.ok(Math.abs(got.d - d) < 1e-5, `${name} d: ${got.d} vs ${d}`);
      assert.ok(Math.abs(got.g - g) < 1e-5, `${name} g: ${got.g} vs ${g}`);
    });
  }
});

describe("penalties", () => {
  // A fixed discriminator D(x) = tanh(x·W1) · w2, with known weights.
  const W1v = [[0.7, -1.2, 0.3], [0.4, 0.9, -0.8]];
  const w2v = [[1.5], [-0.6], [0.9]];
  const D = (x: tf.Tensor) => tf.matMul(tf.tanh(tf.matMul(x, tf.tensor2d(W1v))), tf.tensor2d(w2v));
  const Dnum = (p: number[]) => tf.tidy(() => D(tf.tensor2d([p], [1, 2])).dataSync()[0]);
  const pts = [[0.3, -0.2], [1.1, 0.5], [-0.7, 0.8]];

  function numericGradNorm(p: number[]): number {
    const h = 1e-3;
    const gx = (Dnum([p[0] + h, p[1]]) - Dnum([p[0] - h, p[1]])) / (2 * h);
    const gy = (Dnum([p[0], p[1] + h]) - Dnum([p[0], p[1] - h])) / (2 * h);
    return Math.hypot(gx, gy);
  }

  it("the gradient penalty matches a finite-difference estimate", () => {
    const realT = tf.tensor2d(pts);
    const fakeT = tf.tensor2d(pts.map(([x, y]) => [-y, x]));
    const mix = tf.tensor1d([0.25, 0.5, 0.9]);
    const got = L.gradientPenalty({ discriminator: D, real: realT, fake: fakeT, mix }).dataSync()[0];
    const eps = [0.25, 0.5, 0.9];
    const expected = mean(pts.map((p, i) => {
      const f = [-p[1], p[0]];
      const xh = [eps[i] * p[0] + (1 - eps[i]) * f[0], eps[i] * p[1] + (1 - eps[i]) * f[1]];
      return (numericGradNorm(xh) - 1) ** 2;
    }));
    assert.ok(Math.abs(got - expected) < 1e-3 * Math.max(1, expected), `${got} vs ${expected}`);
    const r1 = L.r1({ discriminator: D, real: realT, fake: fakeT, mix }).dataSync()[0];
    const r1Expected = 0.5 * mean(pts.map((p) => numericGradNorm(p) ** 2));
    assert.ok(Math.abs(r1 - r1Expected) < 1e-3 * Math.max(1, r1Expected), `${r1} vs ${r1Expected}`);
  });

  it("its gradient with respect to D's weights matches finite differences (double backprop)", () => {
    const realT = tf.tensor2d(pts);
    const fakeT = tf.tensor2d(pts.map(([x, y]) => [y, -x]));
    const mix = tf.tensor1d([0.1, 0.6, 0.3]);
    const w = tf.variable(tf.tensor2d(W1v));
    const Dw = (x: tf.Tensor) => tf.matMul(tf.tanh(tf.matMul(x, w)), tf.tensor2d(w2v));
    const penalty = () => L.gradientPenalty({ discriminator: Dw, real: realT, fake: fakeT, mix });
    const { grads } = tf.variableGrads(penalty as () => tf.Scalar, [w]);
    const auto = grads[w.name].dataSync();
    const base = Float32Array.from(W1v.flat());
    const h = 1e-2;
    for (let i = 0; i < base.length; i++) {
      const bump = (d: number) => {
        const v = Float32Array.from(base);
        v[i] += d;
        w.assign(tf.tensor2d(v, [2, 3]));
        return penalty().dataSync()[0];
      };
      const numeric = (bump(h) - bump(-h)) / (2 * h);
      assert.ok(Math.abs(auto[i] - numeric) < 2e-2 * Math.max(1, Math.abs(numeric)), `weight ${i}: ${auto[i]} vs ${numeric}`);
    }
  });
});

describe("lab.gan", () => {
  it("trains with a user-written loss, and leaks nothing per step (MLP and DCGAN)", async () => {
    const mine: L.GanLoss = ({ realLogits, fakeLogits }) => ({
      d: tf.add(tf.mean(tf.softplus(tf.neg(realLogits))), tf.mean(tf.softplus(fakeLogits))) as tf.Scalar,
      g: tf.mean(tf.softplus(tf.neg(fakeLogits))) as tf.Scalar,
    });
    const points = gan({ data: data.ring8({ n: 256 }), preset: "tiny", loss: mine, seed: 1 });
    await expectNoLeakPerIteration(() => points.step(), { iterations: 20, label: "an MLP GAN step" });
    assert.equal(points.config.loss, "custom");
    const digits = data.mnist({ split: "test", n: 64 });
    const dcgan = gan({ data: digits, preset: "tiny", seed: 1, batchSize: 8, ema: 0.9 });
    await expectNoLeakPerIteration(() => dcgan.step(), { iterations: 5, label: "a DCGAN step" });
    const s = dcgan.sample({ n: 4, seed: 0 });
    assert.deepEqual(s.shape, [4, 28, 28, 1]);
    const v = s.dataSync();
    assert.ok(v.every((x) => x >= 0 && x <= 1), "samples are in the data's [0, 1]");
    s.dispose();
    points.dispose();
    dcgan.dispose();
  });

  it("every built-in loss and both penalties train a step without leaking", async () => {
    for (const loss of ["minimax", "nonSaturating", "leastSquares", "hinge", "wasserstein"] as const) {
      for (const penalty of ["none", "gp", "r1"] as const) {
        const m = gan({ data: data.ring8({ n: 128 }), preset: "tiny", loss, penalty, seed: 2 });
        await expectNoLeakPerIteration(() => m.step(), { warmup: 1, iterations: 2, label: `${loss}+${penalty}` });
        const last = m.history.last();
        assert.ok(Number.isFinite(last.d) && Number.isFinite(last.g), `${loss}+${penalty}`);
        if (penalty !== "none") assert.ok(Number.isFinite(last[penalty]), "the penalty is reported");
        m.dispose();
      }
    }
  });

  it("explains bad options", () => {
    const d = data.ring8({ n: 64 });
    assert.throws(() => gan({} as never), /needs \{ data \}/);
    assert.throws(() => gan({ data: d, loss: "bce" as never }), /Unknown GAN loss "bce". Built in: minimax, nonSaturating/);
    assert.throws(() => gan({ data: d, preset: "huge" }), /unknown preset "huge". Presets: tiny/);
    assert.throws(() => gan({ data: d, learningRate: 1 } as never), /unknown option "learningRate"/);
    assert.throws(() => gan({ data: d, batchSize: 1000 }), /batchSize 1000 is larger than ring8's 64 samples/);
    const m = gan({ data: d, preset: "tiny" });
    assert.throws(() => m.generate(tf.zeros([3, 2])), /expects z shaped \[n, 8\] \(this GAN's latentDim\), got \[3,2\]/);
    m.dispose();
  });

  it("shows the GAN Lab view for 2-D data, and a GIF of image samples over training", async () => {
    const m = gan({ data: data.grid25({ n: 256 }), preset: "tiny", seed: 3 });
    await m.train({ steps: 2, live: false });
    const view = m.view2d();
    const b = toBundle(view);
    assert.equal(Buffer.from(String(b["image/png"]), "base64").subarray(1, 4).toString(), "PNG");
    const svg = view.svg();
    assert.ok(svg.includes("<image"), "the discriminator surface");
    assert.ok(svg.includes("marker-end"), "gradient arrows");
    assert.ok(svg.includes("G manifold"));
    const plot = b["application/vnd.plotly.v1+json"] as { data: { type: string }[] };
    assert.deepEqual([...new Set(plot.data.map((t) => t.type))].sort(), ["heatmap", "scatter", "scattergl"]);
    m.dispose();
    const g = gan({ data: data.mnist({ split: "test", n: 32 }), preset: "tiny", batchSize: 8, seed: 0 });
    g.preview();
    await g.step();
    g.preview();
    const gif = toBundle(g.evolution());
    assert.equal(Buffer.from(String(gif["image/gif"]), "base64").subarray(0, 6).toString(), "GIF89a");
    g.dispose();
  });
});

describe("2-D metrics", () => {
  it("mode coverage follows the PacGAN protocol", () => {
    const modes = [[0, 0], [1, 0], [0, 1]];
    const xy = [0, 0.02, 1.01, 0, 0.5, 0.5, 0, 0.99];
    const c = modeCoverage(xy, modes, 0.01);
    assert.equal(c.modesCaptured, 3);
    assert.equal(c.highQuality, 0.75);
    assert.ok(Math.abs(c.reverseKL) < 1e-12, "one HQ sample on each of 3 modes is uniform");
    const collapsed = modeCoverage([0, 0, 0, 0.001, 0.002, 0], modes, 0.01);
    assert.equal(collapsed.modesCaptured, 1);
    assert.ok(Math.abs(collapsed.reverseKL - Math.log(3)) < 1e-9);
  });

  it("grid KL/JS are ~0 for the same distribution and large for disjoint ones; MMD likewise", () => {
    const a = data.ring8({ n: 4000, seed: 1 }).x.dataSync();
    const b = data.ring8({ n: 4000, seed: 2 }).x.dataSync();
    const c = data.grid25({ n: 4000, seed: 1 }).x.dataSync();
    const same = gridDivergence(a, b);
    const diff = gridDivergence(a, c);
    assert.ok(same.js < 0.02 && diff.js > 0.5, `${same.js} ${diff.js}`);
    assert.ok(Math.abs(mmd(a.slice(0, 800), b.slice(0, 800), 0.5)) < 0.01);
    assert.ok(mmd(a.slice(0, 800), c.slice(0, 800), 0.5) > 0.1);
  });
});

describe("fused Adam", () => {
  it("matches tf.train.adam on the cpu backend, on wasm and cpu, and round-trips its state", async () => {
    const run = (make: () => tf.Optimizer) => () => {
      const w = tf.variable(tf.tensor2d([[0.5, -1], [2, 0.1]]));
      const opt = make();
      for (let i = 0; i < 5; i++) opt.minimize(() => tf.sum(tf.square(tf.sub(tf.matMul(w, w), tf.eye(2)))) as tf.Scalar, false, [w]);
      const out = w.clone();
      w.dispose();
      opt.dispose();
      return [out];
    };
    const ref = await on("cpu", run(() => tf.train.adam(0.05, 0.5, 0.9)));
    const cpu = await on("cpu", run(() => adam(0.05, 0.5, 0.9)));
    const wasm = await on("wasm", run(() => adam(0.05, 0.5, 0.9)));
    assertClose(cpu[0], ref[0], 1e-5, "fused Adam on cpu vs tf.train.adam");
    assertClose(wasm[0], ref[0], 1e-5, "fused Adam on wasm vs tf.train.adam");
    const opt = adam(0.1);
    const w = tf.variable(tf.ones([3]));
    opt.minimize(() => tf.sum(tf.square(w)) as tf.Scalar, false, [w]);
    const state = await opt.getWeights();
    assert.equal(state.length, 3, "iterations, m, v");
    const again = adam(0.1);
    await again.setWeights(state.map((s) => ({ name: s.name, tensor: s.tensor.clone() })));
    assert.equal(again.iterations, 1);
  });
});
