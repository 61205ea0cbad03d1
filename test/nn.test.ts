import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import * as nn from "../src/nn";
import { rng } from "../src/random/rng";
import { expectNoLeak } from "../src/testing/memory";
import { assertClose, bothBackends, on } from "./helpers";

before(bothBackends);

describe("nn layers", () => {
  it("map shapes as documented", async () => {
    await tf.setBackend("wasm");
    const r = rng(0);
    const cases: [nn.Module, tf.Tensor, number[]][] = [
      [nn.dense("d", { inputs: 3, units: 5, rng: r }), tf.zeros([2, 3]), [2, 5]],
      [nn.dense("d3", { inputs: 3, units: 5, rng: r }), tf.zeros([2, 4, 3]), [2, 4, 5]],
      [nn.conv2d("c", { inputs: 1, filters: 4, kernel: 3, stride: 2, rng: r }), tf.zeros([2, 9, 9, 1]), [2, 5, 5, 4]],
      [nn.conv2dTranspose("t", { inputs: 4, filters: 2, kernel: 4, stride: 2, rng: r }), tf.zeros([2, 7, 7, 4]), [2, 14, 14, 2]],
      [nn.conv2dTranspose("v", { inputs: 4, filters: 2, kernel: 3, stride: 2, padding: "valid", rng: r }), tf.zeros([1, 4, 4, 4]), [1, 9, 9, 2]],
      [nn.layerNorm("ln", { features: 6 }), tf.zeros([2, 3, 6]), [2, 3, 6]],
      [nn.embedding("e", { vocab: 10, dim: 4, rng: r }), tf.zeros([2, 3], "int32"), [2, 3, 4]],
    ];
    for (const [layer, x, shape] of cases) {
      const y = layer.apply(x);
      assert.deepEqual(y.shape, shape, layer.name);
      tf.dispose([x, y]);
      layer.dispose();
    }
  });

  it("say what shape they expected when given the wrong one", async () => {
    await tf.setBackend("wasm");
    const r = rng(0);
    const d = nn.dense("enc", { inputs: 784, units: 8, rng: r });
    const x = tf.zeros([2, 10]);
    assert.throws(() => d.apply(x), /dense\("enc"\) expects inputs with 784 features.*\[2,10\]/);
    const c = nn.conv2d("c", { inputs: 3, filters: 4, kernel: 3, rng: r });
    assert.throws(() => c.apply(x), /conv2d\("c"\) expects images shaped \[batch, height, width, 3\], got \[2,10\]/);
    assert.throws(() => nn.dense("bad", { inputs: 0, units: 2, rng: r }), /inputs must be a positive integer, got 0/);
    assert.throws(() => nn.activation("a", "swish" as nn.Activation), /Unknown activation "swish"/);
    assert.throws(() => nn.sequential("s", [d, d]), /two layers named "enc"/);
    x.dispose();
    d.dispose();
    c.dispose();
  });

  it("initialise identically from the same seed on every backend", async () => {
    const make = () => {
      const net = nn.sequential("g", [
        nn.dense("a", { inputs: 4, units: 8, activation: "gelu", rng: rng(12) }),
        nn.dense("b", { inputs: 8, units: 2, activation: "silu", rng: rng(12) }),
      ]);
      const y = net.apply(tf.ones([3, 4]));
      const vals = [...net.variables().values()].map((v) => v.clone());
      net.dispose();
      return [y, ...vals];
    };
    const cpu = await on("cpu", make);
    const wasm = await on("wasm", make);
    cpu.forEach((ref, i) => assertClose(wasm[i], ref, 1e-5, `tensor ${i}`));
  });

  it("batch norm updates its running statistics only in training, and leaks nothing", async () => {
    await tf.setBackend("wasm");
    const bn = nn.batchNorm("bn", { features: 2 });
    const x = tf.tensor2d([[1, 10], [3, 30]]);
    await expectNoLeak(() => tf.dispose(bn.apply(x)), "inference");
    assert.deepEqual([...bn.state().get("bn/movingMean")!.dataSync()], [0, 0]);
    await expectNoLeak(() => tf.dispose(bn.apply(x, { training: true })), "training");
    const mean = [...bn.state().get("bn/movingMean")!.dataSync()];
    assertClose(mean, [0.2, 2], 1e-6, "moving mean after one update (momentum 0.9)");
    x.dispose();
    bn.dispose();
  });

  it("batch norm with relu in one kernel (channels in fours) leaks nothing in training, with or without a gradient", async () => {
    await tf.setBackend("wasm");
    const bn = nn.batchNorm("bn", { features: 8, activation: "relu" });
    const x = tf.randomNormal([3, 4, 4, 8], 0, 1, "float32", 5);
    await expectNoLeak(() => tf.dispose(bn.apply(x, { training: true })), "training, no gradient");
    await expectNoLeak(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(bn.apply(x, { training: true })));
      tf.dispose([value, ...Object.values(grads)]);
    }, "training with a gradient");
    assert.ok([...bn.apply(x).dataSync()].every((v) => v >= 0), "relu after the norm");
    assert.throws(() => nn.batchNorm("b2", { features: 8, activation: "tanh" as "relu" }), /activation must be "linear" or "relu"/);
    x.dispose();
    bn.dispose();
  });

  it("conv2d's applyWith adds a bias per image and a residual as separate adds would, and says what shape it expected", async () => {
    const make = () => {
      const conv = nn.conv2d("c", { inputs: 4, filters: 8, kernel: 3, rng: rng(2) });
      const x = tf.randomNormal([2, 6, 5, 4], 0, 1, "float32", 6);
      const t = tf.randomNormal([2, 8], 0, 1, "float32", 7);
      const r = tf.randomNormal([2, 6, 5, 8], 0, 1, "float32", 8);
      const fused = conv.applyWith(x, { imageBias: t, residual: r });
      const separate = tf.add(tf.add(conv.apply(x), tf.reshape(t, [2, 1, 1, 8])), r);
      assert.throws(() => conv.applyWith(x, { imageBias: tf.zeros([2, 4]) }), /imageBias must be \[2, 8\]/);
      assert.throws(() => conv.applyWith(x, { residual: tf.zeros([2, 6, 6, 8]) }), /residual must be shaped like the output \[2,6,5,8\]/);
      // Strided (the conv, then the adds), "valid" padding: the output's shape [2, 2, 2, 8].
      const strided = nn.conv2d("s", { inputs: 4, filters: 8, kernel: 3, stride: 2, padding: "valid", rng: rng(3) });
      const r2 = tf.randomNormal([2, 2, 2, 8], 0, 1, "float32", 9);
      const stridedFused = strided.applyWith(x, { imageBias: t, residual: r2 });
      const stridedSeparate = tf.add(tf.add(strided.apply(x), tf.reshape(t, [2, 1, 1, 8])), r2);
      assert.throws(() => strided.applyWith(x, { residual: r }), /residual must be shaped like the output \[2,2,2,8\]/);
      conv.dispose();
      strided.dispose();
      return [fused, separate, stridedFused, stridedSeparate];
    };
    for (const backend of ["wasm", "cpu"] as const) {
      const [fused, separate, stridedFused, stridedSeparate] = await on(backend, make);
      assertClose(fused, separate, 1e-5, `applyWith on ${backend}`);
      assertClose(stridedFused, stridedSeparate, 1e-5, `strided applyWith on ${backend}`);
    }
  });

  it("count parameters and name variables by path", () => {
    const r = rng(1);
    const net = nn.sequential("G", [nn.dense("fc", { inputs: 64, units: 10, rng: r }), nn.batchNorm("bn", { features: 10 })]);
    assert.equal(nn.countParams(net), 64 * 10 + 10 + 10 + 10);
    assert.deepEqual([...net.variables().keys()], ["G/fc/kernel", "G/fc/bias", "G/bn/gamma", "G/bn/beta"]);
    assert.deepEqual([...net.state().keys()], ["G/bn/movingMean", "G/bn/movingVar"]);
    net.dispose();
  });
});
