import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ready } from "../src/backend/ready";
import * as data from "../src/data";
import { diffusion } from "../src/models/diffusion";
import { cosine, linear, sigmoid } from "../src/models/diffusion/schedules";
import { ddim, ddimStep, ddpm, ddpmStep, euler, sampleLoop, timesteps } from "../src/models/diffusion/samplers";
import { addNoise, objectives, toX0Eps } from "../src/models/diffusion/process";
import { rng } from "../src/random/rng";
import { expectNoLeak, expectNoLeakPerIteration } from "../src/testing/memory";
import { toBundle } from "../src/display/show";
import { assertClose } from "./helpers";

before(() => ready({ backend: "wasm", quiet: true }));

describe("schedules", () => {
  it("ᾱ decreases strictly from near 1 to near 0 for every schedule", () => {
    for (const s of [linear(), cosine(), sigmoid(), linear({ steps: 50 })]) {
      for (let t = 1; t < s.steps; t++) assert.ok(s.alphaBar[t] < s.alphaBar[t - 1], `${s.name} at ${t}`);
      assert.ok(s.alphaBar[0] > 0.95 && s.alphaBar[s.steps - 1] < 0.01, `${s.name}: ${s.alphaBar[0]} … ${s.alphaBar[s.steps - 1]}`);
      for (let t = 0; t < s.steps; t++) assert.ok(Math.abs(s.signal[t] ** 2 + s.noise[t] ** 2 - 1) < 1e-12);
    }
  });

  it("linear is DDPM's: β from 1e-4 to 0.02; cosine is Nichol & Dhariwal's f(t)/f(0)", () => {
    const l = linear();
    assert.ok(Math.abs(l.betas[0] - 1e-4) < 1e-12 && Math.abs(l.betas[999] - 0.02) < 1e-12);
    const c = cosine({ steps: 1000 });
    const f = (t: number) => Math.cos((((t / 1000 + 0.008) / 1.008) * Math.PI) / 2) ** 2;
    for (const t of [1, 10, 250, 500, 900]) assert.ok(Math.abs(c.alphaBar[t - 1] - f(t) / f(0)) < 1e-9, `t=${t}`);
    assert.throws(() => linear({ steps: 1 }), /steps must be an integer ≥ 2, got 1/);
    assert.ok(toBundle(c)["image/png"], "a schedule displays as a chart");
  });
});

describe("the forward process and objectives", () => {
  it("x̂₀ and ε̂ come back exactly from each objective's target", () => {
    const x0 = tf.tensor2d([[0.3, -1.2], [2, 0.5]]);
    const eps = tf.tensor2d([[-0.7, 0.1], [0.4, 1.5]]);
    const ab = tf.tensor1d([0.8, 0.3]);
    const xt = addNoise(x0, ab, eps);
    for (const obj of ["eps", "x0", "v"] as const) {
      const { target } = require("../src/models/diffusion/process");
      const back = toX0Eps(obj, target(obj, { x0, noise: eps, alphaBar: ab }), xt, ab);
      assertClose(back.x0.dataSync(), x0.dataSync(), 1e-5, `${obj} → x0`);
      assertClose(back.eps.dataSync(), eps.dataSync(), 1e-5, `${obj} → eps`);
      const zero = objectives[obj]({ prediction: target(obj, { x0, noise: eps, alphaBar: ab }), x0, noise: eps, alphaBar: ab });
      assert.ok(zero.dataSync()[0] < 1e-10);
    }
  });
});

describe("samplers", () => {
  it("one DDIM step with η = 0 against a hand-derived scalar computation", () => {
    // x̂₀ = 0.5, ε̂ = −0.3, ᾱₜ = 0.6 → ᾱₚ = 0.9:  xₚ = √0.9·0.5 + √(1 − 0.9)·(−0.3)
    const out = ddimStep({ x0: tf.scalar(0.5), eps: tf.scalar(-0.3), alphaBar: 0.6, alphaBarPrev: 0.9, eta: 0, noise: null }).dataSync()[0];
    assert.ok(Math.abs(out - (Math.sqrt(0.9) * 0.5 + Math.sqrt(0.1) * -0.3)) < 1e-6, `${out}`);
  });

  it("the DDPM posterior step equals DDIM with η = 1 (Song et al. 2021, §4.1)", () => {
    const x0 = tf.tensor1d([0.4, -0.9, 1.3]);
    const eps = tf.tensor1d([1.1, 0.2, -0.5]);
    const [ab, abPrev] = [0.35, 0.7];
    const xt = tf.add(tf.mul(Math.sqrt(ab), x0), tf.mul(Math.sqrt(1 - ab), eps));
    const z = tf.tensor1d([0.3, -1.0, 0.6]);
    const a = ddpmStep({ xt, x0, alphaBar: ab, alphaBarPrev: abPrev, noise: z }).dataSync();
    const b = ddimStep({ x0, eps, alphaBar: ab, alphaBarPrev: abPrev, eta: 1, noise: z }).dataSync();
    assertClose(a, b, 1e-5, "DDPM vs DDIM η=1");
  });

  it("timesteps are evenly spaced from T down to 1", () => {
    assert.deepEqual(timesteps(1000, 4).map((s) => s.t), [1000, 667, 334, 1]);
    assert.deepEqual(timesteps(10, 10).map((s) => s.prev), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    assert.throws(() => timesteps(100, 200), /cannot take 200 steps on a schedule of 100/);
  });

  const c = 0.7; // point-mass data at c: the ideal ε̂ is (xₜ − √ᾱ·c)/√(1 − ᾱ)
  const s = cosine({ steps: 200 });
  const pointMass = (x: tf.Tensor, t: tf.Tensor) => {
    const ab = tf.tensor1d(Array.from(t.dataSync(), (u) => s.alphaBar[Math.round(u * 200) - 1]));
    return tf.div(tf.sub(x, tf.mul(tf.reshape(tf.sqrt(ab), [-1, 1]), c)), tf.reshape(tf.sqrt(tf.sub(1, ab)), [-1, 1]));
  };

  for (const sampler of [ddim({ steps: 7 }), ddim({ steps: 30, eta: 0.5 }), ddpm({ steps: 200 }), ddpm({ steps: 13 })]) {
    it(`${sampler.name} lands exactly on point-mass data with the ideal denoiser, leaking nothing per step`, async () => {
      const r = rng(1);
      const { result: out } = await expectNoLeak(
        () => sampleLoop({ sampler, alphaBar: s.alphaBar, predicts: "eps", denoise: pointMass, start: r.normal([5, 1]), noise: (shape) => r.normal(shape) }),
        "a sampling run",
        1,
      );
      assertClose(out.dataSync(), [c, c, c, c, c], 1e-4, sampler.name);
      out.dispose();
    });
  }

  it("Euler on the ideal flow velocity lands on the point mass", () => {
    const r = rng(2);
    const velocity = (x: tf.Tensor, t: tf.Tensor) => tf.div(tf.sub(x, c), tf.reshape(t, [-1, 1])); // (xₜ − c)/t
    const out = sampleLoop({ sampler: euler({ steps: 5 }), alphaBar: s.alphaBar, predicts: "flow", denoise: velocity, start: r.normal([4, 1]), noise: () => tf.zeros([1]) });
    assertClose(out.dataSync(), [c, c, c, c], 1e-5, "Euler");
    out.dispose();
  });

  it("DDIM η = 0 on Gaussian data matches the closed-form product of its linear steps", () => {
    // Data N(0, v): E[x₀|xₜ] = k·xₜ with k = √ᾱ·v/(ᾱ·v + 1 − ᾱ), so each DDIM step multiplies x by
    // √ᾱₚ·k + √(1 − ᾱₚ)·(1 − √ᾱ·k)/√(1 − ᾱ); the result is x_T times their product.
    const v = 0.25;
    const T = 200;
    const gaussian = (x: tf.Tensor, t: tf.Tensor) => {
      const ab = Array.from(t.dataSync(), (u) => s.alphaBar[Math.round(u * T) - 1]);
      const k = ab.map((a) => (Math.sqrt(a) * v) / (a * v + 1 - a));
      const x0 = tf.mul(x, tf.reshape(tf.tensor1d(k), [-1, 1]));
      const abT = tf.reshape(tf.tensor1d(ab), [-1, 1]);
      return tf.div(tf.sub(x, tf.mul(tf.sqrt(abT), x0)), tf.sqrt(tf.sub(1, abT)));
    };
    const start = [1.5, -0.4, 2.2];
    const out = sampleLoop({ sampler: ddim({ steps: 20 }), alphaBar: s.alphaBar, predicts: "eps", denoise: gaussian, start: tf.tensor2d(start, [3, 1]), noise: (sh) => tf.zeros(sh) });
    let factor = 1;
    for (const { t, prev } of timesteps(T, 20)) {
      const a = s.alphaBar[t - 1];
      const ap = prev === 0 ? 1 : s.alphaBar[prev - 1];
      const k = (Math.sqrt(a) * v) / (a * v + 1 - a);
      factor *= Math.sqrt(ap) * k + (Math.sqrt(1 - ap) * (1 - Math.sqrt(a) * k)) / Math.sqrt(1 - a);
    }
    assertClose(out.dataSync(), start.map((x) => x * factor), 1e-4, "closed form");
    out.dispose();
  });
});

describe("lab.diffusion", () => {
  it("trains on points and images, flow too, without leaking per step or per sampling run", async () => {
    const pts = diffusion({ data: data.ring8({ n: 256 }), preset: "tiny", seed: 0 });
    await expectNoLeakPerIteration(() => pts.step(), { iterations: 10, label: "a diffusion step" });
    await expectNoLeakPerIteration(() => pts.sample({ n: 8, steps: 5 }).dispose(), { iterations: 3, label: "a sampling run" });
    const flow = diffusion({ data: data.moons({ n: 256 }), preset: "tiny", process: "flow", seed: 0 });
    await expectNoLeakPerIteration(() => flow.step(), { iterations: 5, label: "a flow step" });
    assert.throws(() => flow.sample({ n: 4, sampler: ddim() }), /samples with lab.samplers.euler/);
    const img = diffusion({ data: data.mnist({ split: "test", n: 64 }), preset: "tiny", denoiser: "unet", batchSize: 8, seed: 0 });
    await expectNoLeakPerIteration(() => img.step(), { warmup: 1, iterations: 2, label: "a U-Net step" });
    const x = img.sample({ n: 2, steps: 3 });
    assert.deepEqual(x.shape, [2, 28, 28, 1]);
    assert.ok(x.dataSync().every((v) => v >= 0 && v <= 1));
    x.dispose();
    [pts, flow, img].forEach((m) => m.dispose());
  });

  it("traces trajectories and draws them: strips and GIFs for images, paths and fields for points", async () => {
    const pts = diffusion({ data: data.ring8({ n: 256 }), preset: "tiny", seed: 1 });
    await pts.train({ steps: 3, live: false });
    const path = await expectNoLeak(() => pts.trace({ n: 20, sampler: ddpm({ steps: 30 }), frames: 5 }), "trace()", 1);
    assert.equal(path.result.xt.length, path.result.steps.length);
    assert.equal(path.result.steps[path.result.steps.length - 1], 30);
    assert.ok(toBundle(path.result.paths())["image/png"]);
    assert.ok(toBundle(pts.vectorField({ t: 0.2 }))["image/png"]);
    path.result.dispose();
    const img = diffusion({ data: data.mnist({ split: "test", n: 32 }), preset: "tiny", denoiser: "unet", batchSize: 8, seed: 1 });
    const tr = img.trace({ n: 3, steps: 4, frames: 4 });
    assert.ok(toBundle(tr.strip())["image/png"]);
    assert.equal(Buffer.from(String(toBundle(tr.gif())["image/gif"]), "base64").subarray(0, 3).toString(), "GIF");
    tr.dispose();
    [pts, img].forEach((m) => m.dispose());
  });

  it("explains bad options", () => {
    const d = data.ring8({ n: 64 });
    assert.throws(() => diffusion({ data: d, schedule: "quadratic" as never, batchSize: 16 }), /Unknown schedule "quadratic". Schedules: linear, cosine, sigmoid/);
    assert.throws(() => diffusion({ data: d, objective: "score" as never, batchSize: 16 }), /Unknown objective "score"/);
    assert.throws(() => diffusion({ data: d, denoiser: "unet", batchSize: 16 }), /"unet" needs images/);
  });
});
