import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { ready } from "../src/backend/ready";
import * as data from "../src/data";
import { vae } from "../src/models/vae";
import { klNormal, bernoulliNll, negativeElbo, VaeObjective } from "../src/models/vae/losses";
import { rng } from "../src/random/rng";
import { expectNoLeak, expectNoLeakPerIteration } from "../src/testing/memory";
import * as latent from "../src/views/latent";
import { toBundle } from "../src/display/show";
import { gan } from "../src/models/gan";

before(() => ready({ backend: "wasm", quiet: true }));

const digits = () => data.mnist({ split: "test", n: 96, seed: 0 });

describe("VAE losses", () => {
  it("the closed-form KL matches a Monte-Carlo estimate", () => {
    const mean = tf.tensor2d([[0.5, -1.2, 0.1]]);
    const logvar = tf.tensor2d([[-0.7, 0.4, 0.0]]);
    const closed = klNormal({ mean, logvar }).dataSync()[0];
    // KL = E_q[log q(z) − log p(z)], z = μ + σε
    const n = 200_000;
    const r = rng(1);
    const mu = mean.dataSync();
    const lv = logvar.dataSync();
    let sum = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < 3; j++) {
        const eps = r.normal1();
        const z = mu[j] + Math.exp(0.5 * lv[j]) * eps;
        sum += -0.5 * (eps * eps + lv[j]) + 0.5 * z * z; // log q − log p (2π terms cancel)
      }
    }
    const mc = sum / n;
    assert.ok(Math.abs(closed - mc) < 0.01, `closed form ${closed} vs Monte Carlo ${mc}`);
  });

  it("Bernoulli NLL is binary cross-entropy summed over pixels", () => {
    const x = tf.tensor2d([[1, 0, 0.5]]);
    const logits = tf.tensor2d([[2, -1, 0.3]]);
    const s = (t: number) => 1 / (1 + Math.exp(-t));
    const bce = -(Math.log(s(2)) + Math.log(1 - s(-1)) + 0.5 * Math.log(s(0.3)) + 0.5 * Math.log(1 - s(0.3)));
    assert.ok(Math.abs(bernoulliNll({ x, logits }).dataSync()[0] - bce) < 1e-5);
  });
});

describe("lab.vae", () => {
  it("trains (MLP and conv), reports reconstruction and KL, and leaks nothing per step", async () => {
    const d = digits();
    const m = vae({ data: d, preset: "tiny", seed: 0 });
    await expectNoLeakPerIteration(() => m.step(), { iterations: 10, label: "a VAE step" });
    const last = m.history.last();
    assert.ok(Math.abs(last.loss - (last.reconstruction + last.kl)) < 1e-3);
    const conv = vae({ data: d, preset: "tiny", architecture: "conv", seed: 0 });
    await expectNoLeakPerIteration(() => conv.step(), { iterations: 3, label: "a conv VAE step" });
    const first = m.history.losses.loss[0];
    await m.train({ steps: 40, live: false });
    assert.ok(m.history.recentMean(5).loss < first, "the loss falls");
    m.dispose();
    conv.dispose();
  });

  it("evaluates: the IWAE bound is at least the ELBO as a log-likelihood, and per-dimension KL adds up", async () => {
    const d = digits();
    const m = vae({ data: d, preset: "tiny", seed: 1 });
    await m.train({ steps: 30, live: false });
    const { result: e } = await expectNoLeak(() => m.evaluate(d, { k: 20, n: 64 }), "evaluate()");
    assert.ok(e.iwae <= e.negElbo + 1e-3, `IWAE ${e.iwae} vs −ELBO ${e.negElbo}`);
    assert.ok(Math.abs(e.klPerDimension.reduce((a, b) => a + b, 0) - e.kl) < 1e-3);
    assert.equal(e.klPerDimension.length, 2);
    assert.ok(e.negElbo > 50 && e.negElbo < 1000, `nats per image: ${e.negElbo}`);
    assert.ok(Number.isFinite(m.card().card.metrics["test −ELBO"]));
    m.dispose();
  });

  it("says which latent size it expects, and rejects bad options", () => {
    const d = digits();
    const m = vae({ data: d, latentDim: 2, hidden: [16], batchSize: 32, seed: 0 });
    assert.throws(() => m.decode(tf.zeros([16, 8])), /decode\(\) expects z shaped \[n, 2\] for this VAE, got \[16,8\]; it was built with latentDim 2/);
    assert.throws(() => m.encode(tf.zeros([2, 10])), /expects samples shaped \[n, 28,28,1\]/);
    assert.throws(() => vae({ data: data.ring8({ n: 64 }) }), /Bernoulli likelihood needs data in \[0, 1\]; ring8 spans/);
    assert.throws(() => vae({ data: d, latentDim: 0 }), /latentDim must be a positive integer, got 0/);
    const pts = vae({ data: data.ring8({ n: 64 }), likelihood: "gaussian", preset: "tiny" });
    assert.equal(pts.logScale?.shape.length, 0);
    pts.dispose();
    m.dispose();
  });

  it("takes a user-written objective (here β = 4 by hand) and reports its parts", async () => {
    const mine: VaeObjective = (inputs) => negativeElbo({ ...inputs, beta: 4 });
    const m = vae({ data: digits(), preset: "tiny", objective: mine, seed: 2 });
    const s = await m.step();
    assert.ok(Math.abs(s.loss - (s.reconstruction + 4 * s.kl)) < 1e-2);
    assert.equal(m.config.objective, "custom");
    m.dispose();
  });
});

describe("the latent-space toolkit", () => {
  it("draws maps, manifolds, interpolations, traversals, reconstructions and nearest neighbours without leaking", async () => {
    const d = digits();
    const two = vae({ data: d, preset: "tiny", seed: 3 });
    const twenty = vae({ data: d, preset: "tiny", latentDim: 20, seed: 3 });
    await two.train({ steps: 5, live: false });
    const x = d.x.slice(0, 4);
    const [a, b] = [x.slice(0, 1), x.slice(1, 1)];
    await expectNoLeak(() => {
      const views = [
        latent.map(two, d, { n: 50, thumbnails: 5 }),
        latent.map(twenty, d, { n: 50, thumbnails: 0 }),
        latent.map(twenty, d, { n: 50, method: "umap", thumbnails: 0 }),
        latent.manifold(two, { steps: 5 }),
        latent.interpolate(two, a, b, { steps: 4 }),
        latent.interpolate(twenty, a, b, { steps: 4, method: "spherical" }),
        latent.traverse(twenty, a, { dim: 3, steps: 5 }),
        latent.reconstructions(two, x),
        latent.nearest(x, d, { n: 3 }),
      ];
      for (const v of views) assert.ok(toBundle(v)["image/png"], "each view has a picture");
    }, "the toolkit", 0);
    const near = latent.nearest(x, d, { n: 3 });
    assert.deepEqual(near.distances.map((v) => Math.round(v * 1000)), [0, 0, 0], "training images are their own nearest neighbours");
    assert.match(String(toBundle(latent.map(twenty, d, { n: 40, thumbnails: 0 }))["text/plain"]), /latent map of 40/);
    assert.throws(() => latent.traverse(two, null, { dim: 5 }), /dim must be 0…1, got 5/);
    const g = gan({ data: d, preset: "tiny", seed: 0, batchSize: 8 });
    assert.ok(toBundle(latent.manifold(g, { steps: 3 }))["image/png"], "works with a GAN's generator");
    assert.throws(() => latent.map(g, d), /needs a model with an encoder/);
    tf.dispose([x, a, b]);
    [two, twenty, g].forEach((m) => m.dispose());
  });
});
