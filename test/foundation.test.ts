/**
 * The foundation's promise: a small conv + transposed-conv + batch-norm network trains on the
 * wasm backend, its gradients match the cpu backend, and nothing leaks.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import * as nn from "../src/nn";
import { rng } from "../src/random/rng";
import { expectNoLeakPerIteration } from "../src/testing/memory";
import { assertClose, bothBackends } from "./helpers";

before(bothBackends);

/** 12×12×1 → conv s2 → BN → ReLU → convT s2 → 12×12×1 (an autoencoder-shaped toy). */
function build(seed: number) {
  const r = rng(seed);
  return nn.sequential("net", [
    nn.conv2d("conv", { inputs: 1, filters: 8, kernel: 4, stride: 2, rng: r }),
    nn.batchNorm("bn", { features: 8 }),
    nn.activation("act", "relu"),
    nn.conv2dTranspose("deconv", { inputs: 8, filters: 1, kernel: 4, stride: 2, activation: "tanh", rng: r }),
  ]);
}

function batch(seed: number): tf.Tensor {
  return rng(seed).uniform([6, 12, 12, 1], -1, 1);
}

function loss(net: nn.Module, x: tf.Tensor): tf.Scalar {
  return tf.losses.meanSquaredError(x, net.apply(x, { training: true })) as tf.Scalar;
}

async function gradientsOn(backend: "wasm" | "cpu"): Promise<Map<string, Float32Array>> {
  await tf.setBackend(backend);
  const net = build(1);
  const x = batch(2);
  const vars = [...net.variables()];
  const { grads, value } = tf.variableGrads(() => loss(net, x), vars.map(([, v]) => v));
  const out = new Map<string, Float32Array>();
  for (const [name, v] of vars) out.set(name, grads[v.name].dataSync() as Float32Array);
  out.set("loss", value.dataSync() as Float32Array);
  tf.dispose([value, ...Object.values(grads), x]);
  net.dispose();
  return out;
}

describe("a conv + conv-transpose + batch-norm network on wasm", () => {
  it("has the cpu backend's gradients", async () => {
    const cpu = await gradientsOn("cpu");
    const wasm = await gradientsOn("wasm");
    assert.deepEqual([...wasm.keys()], [...cpu.keys()]);
    assert.ok(cpu.size >= 7, "conv, bn and deconv variables plus the loss");
    for (const [name, ref] of cpu) assertClose(wasm.get(name) as Float32Array, ref, 1e-4, name);
  });

  it("trains: the loss falls over 30 Adam steps, and no step leaks", async () => {
    await tf.setBackend("wasm");
    const net = build(3);
    const x = batch(4);
    const opt = tf.train.adam(0.01);
    const vars = [...net.variables().values()];
    const step = () => {
      const l = opt.minimize(() => loss(net, x), true, vars) as tf.Scalar;
      const v = l.dataSync()[0];
      l.dispose();
      return v;
    };
    const first = step();
    let last = first;
    await expectNoLeakPerIteration(() => (last = step()), { warmup: 1, iterations: 29, label: "a training step" });
    assert.ok(Number.isFinite(last) && last < 0.7 * first, `loss went from ${first} to ${last}`);
    opt.dispose();
    x.dispose();
    net.dispose();
  });

  it("gives identical losses on a re-run with the same seed", async () => {
    await tf.setBackend("wasm");
    const run = () => {
      const net = build(5);
      const x = batch(6);
      const opt = tf.train.adam(0.01);
      const vars = [...net.variables().values()];
      const losses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const l = opt.minimize(() => loss(net, x), true, vars) as tf.Scalar;
        losses.push(l.dataSync()[0]);
        l.dispose();
      }
      opt.dispose();
      x.dispose();
      net.dispose();
      return losses;
    };
    assert.deepEqual(run(), run());
  });
});
