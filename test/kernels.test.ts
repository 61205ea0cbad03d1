/**
 * Reference tests: every kernel LatentLab registers on wasm against tfjs's cpu backend, for
 * forward values and gradients, on odd sizes, strides, paddings and batch 1.
 * Tolerance: 1e-4 of the reference's largest magnitude (float32 sums in a different order).
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as tf from "@tensorflow/tfjs";
import { SimdKernels, byteOffset, deferred, fusedMultiplyAdd, kernelFile, pending, relaxedSimd, runShares, threadScratch } from "../src/backend/simd";
import { wasmThreads } from "../src/backend/threads";
import { SPIN_MS, awaitChange } from "../src/backend/simd-control";
import { Worker } from "worker_threads";
import { spawnSync } from "child_process";
import * as path from "path";
import { ADAM_KERNEL, FusedAdam } from "../src/train/adam";
import { LAYER_NORM, LAYER_NORM_GRAD } from "../src/backend/wasm-kernels/layernorm";
import { batchNorm, batchNormTrainOp, layerNormOp } from "../src/nn/layers";
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD } from "../src/backend/wasm-kernels/batchnorm";
import { fusedConv2d, fusedConv2dAdd, fusedMatMul } from "../src/nn/fused";
import { BERNOULLI_NLL, BERNOULLI_NLL_GRAD, LEAKY_RELU_GRAD } from "../src/backend/wasm-kernels/activation";
import { bernoulliNll } from "../src/models/vae/losses";
import { broadcastLayout } from "../src/backend/wasm-kernels/binary";
import { asWasmBackend, runOriginal } from "../src/backend/wasm-kernels/heap";
import { filterKept, keptFilterStats } from "../src/backend/wasm-kernels/winograd";
import { assertClose, bothBackends, data, on, sizeOf } from "./helpers";

const TOL = 1e-4;

before(bothBackends);

/** Values of f and of the gradients of sum(f · weights) with respect to every input. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: { shape: number[]; seed: number }[]) {
  return () => {
    const xs = inputs.map(({ shape, seed }) => tf.tensor(data(seed, sizeOf(shape)), shape));
    const y = f(...xs);
    const w = tf.tensor(data(999, y.size), y.shape);
    const grads = tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(...args), w)))(xs);
    return [y, ...grads];
  };
}

async function compare(
  name: string,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: { shape: number[]; seed: number }[],
  gradients = true,
) {
  const run = gradients
    ? valueAndGrads(f, inputs)
    : () => [f(...inputs.map(({ shape, seed }) => tf.tensor(data(seed, sizeOf(shape)), shape)))];
  const ref = await on("cpu", run);
  const got = await on("wasm", run);
  const labels = ["value", ...inputs.map((_, i) => `gradient ${i}`)];
  for (let i = 0; i < ref.length; i++) assertClose(got[i], ref[i], TOL, `${name} ${labels[i]}`);
}

describe("Conv2D gradients on wasm (Conv2DBackpropFilter, Conv2DBackpropInput)", () => {
  const cases: [number[], number[], number, "same" | "valid" | number][] = [
    [[1, 5, 5, 1], [3, 3, 1, 2], 1, "same"],
    [[2, 7, 9, 3], [3, 3, 3, 4], 2, "same"],
    [[3, 8, 8, 4], [4, 4, 4, 5], 2, "valid"],
    [[2, 6, 5, 2], [1, 1, 2, 3], 1, "valid"],
    [[1, 9, 7, 3], [5, 3, 3, 2], 3, "same"],
    [[2, 6, 6, 2], [3, 3, 2, 3], 1, 1],
    [[1, 5, 5, 3], [3, 3, 3, 2], 1, 3], // padding wider than the filter reaches: the input gradient's conv is cropped
    // Stride 1 (input gradient as a conv): uneven "same" padding, a non-square valid filter.
    [[2, 7, 6, 3], [4, 2, 3, 5], 1, "same"],
    [[3, 9, 8, 5], [2, 5, 5, 4], 1, "valid"],
    [[4, 28, 28, 1], [4, 4, 1, 16], 2, "same"],
    [[2, 14, 14, 16], [4, 4, 16, 32], 2, "same"],
    // 16 channels or more: the gradients run as forward convs (filter by conv, input by phases
    // when strided; LatentLab's direct kernel), on odd sizes, unused input rows (the filter gradient falls back), a filter
    // no larger than the stride, and a 1×1 stride-2 conv whose odd phases get no taps.
    [[2, 9, 7, 16], [3, 3, 16, 3], 2, "valid"],
    [[2, 10, 8, 16], [3, 3, 16, 2], 2, "valid"],
    [[1, 11, 9, 17], [5, 3, 17, 4], 3, "same"],
    [[2, 8, 8, 16], [2, 2, 16, 3], 2, "valid"],
    [[2, 9, 9, 16], [1, 1, 16, 4], 2, "valid"],
    // Larger: by convs; and (8 channels) by products that work through the batch in chunks
    // (10 images, then 1).
    [[5, 64, 64, 32], [5, 5, 32, 4], 1, "same"],
    [[11, 128, 128, 8], [5, 5, 8, 4], 2, "same"],
    // Output channels in eights: the filter gradient is LatentLab's SIMD
    // kernel, its input channels shared between threads (three fours here). Unused
    // input rows, a 1×1 stride-2 conv, padding wider than the filter, uneven "same" padding.
    [[2, 9, 7, 4], [3, 3, 4, 8], 2, "valid"],
    [[1, 11, 9, 8], [5, 3, 8, 16], 3, "same"],
    [[2, 9, 9, 16], [1, 1, 16, 8], 2, "valid"],
    [[1, 5, 5, 4], [3, 3, 4, 8], 1, 3],
    [[2, 8, 8, 12], [2, 2, 12, 8], 2, "valid"],
    [[3, 7, 6, 4], [4, 2, 4, 16], 1, "same"],
    // Input channels not in fours (a first layer's): the leftover ones go one at a time.
    [[2, 9, 7, 3], [3, 3, 3, 8], 2, "same"],
    [[2, 6, 6, 6], [3, 3, 6, 24], 1, "same"],
    // 1×1 stride-1 convs with output channels in eights: all three passes as SIMD products.
    [[2, 5, 6, 16], [1, 1, 16, 8], 1, "same"],
    [[3, 4, 4, 12], [1, 1, 12, 16], 1, "valid"],
    [[4, 30, 30, 8], [1, 1, 8, 16], 1, "same"], // 3600 pixels: the filter gradient's product goes along them in blocks
    // Images large enough that the batch goes by in blocks (of 1; of 2, then 1).
    [[3, 40, 40, 16], [3, 3, 16, 8], 1, "same"],
    [[3, 30, 30, 24], [3, 3, 24, 8], 2, "same"],
  ];
  for (const [x, w, s, pad] of cases) {
    it(`x [${x}] filter [${w}] stride ${s} pad ${pad}`, async () => {
      await compare("conv2d", (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad), [
        { shape: x, seed: 1 },
        { shape: w, seed: 2 },
      ]);
    });
  }
});

describe("3×3 stride-1 convs by Winograd on wasm (Conv2D, FusedConv2D, both gradients)", () => {
  // ci in fours and co in eights: forward and filter gradient by Winograd; the input gradient
  // too where ci is in eights. All three take F(4×4, 3×3) where it multiplies enough less than
  // F(2×2, 3×3) (chooseTile): 8×12, 10×6 valid → 8×4, 4×4 padded by 3 → 8×8, 28×28, and with
  // tiles past the edge 7×5, 9×9 valid → 7×7, 14×14; F(2×2) at 6×6, 5×5, 3×2 and 1×1. Odd sizes
  // (tiles past the edge), "valid" and explicit uneven pads, padding wider than the filter,
  // one-pixel images, batches of many tile blocks and shares, and output channels not in eights.
  const cases: [number[], number, "same" | "valid" | number | [[number, number], [number, number], [number, number], [number, number]]][] = [
    [[2, 6, 6, 8], 8, "same"],
    [[2, 8, 12, 8], 16, "same"],
    [[3, 10, 6, 12], 8, "valid"],
    [[3, 7, 5, 8], 16, "same"],
    [[2, 9, 9, 12], 8, "valid"],
    [[1, 5, 8, 8], 8, [[0, 0], [2, 0], [0, 1], [0, 0]]],
    [[1, 4, 4, 4], 8, 3],
    [[2, 1, 1, 8], 8, "same"],
    [[2, 3, 2, 4], 16, "same"],
    [[3, 5, 5, 8], 16, "same"],
    [[9, 14, 14, 16], 24, "same"],
    [[3, 28, 28, 32], 32, "same"],
    [[2, 14, 14, 128], 64, "same"],
    [[2, 6, 6, 32], 40, "same"], // F(2×2), its filter transforms in shares (1 280 channel pairs)
    // The filter gradient by F(4×4) too where the output is in fours: uneven explicit pads, many
    // tile blocks, output channels not in eights.
    [[1, 7, 6, 8], 8, [[0, 0], [1, 2], [2, 2], [0, 0]]],
    [[9, 16, 16, 16], 24, "same"],
    [[2, 8, 8, 4], 3, "same"],
    // Output channels not in eights (an output image's): the filter gradient pads dy with zero channels.
    // (1×1 filters here too: the fused forward as a SIMD product with bias and relu.)
    [[2, 9, 7, 8], 1, "same"],
    [[2, 6, 6, 4], 3, "valid"],
  ];
  type Case = (typeof cases)[number];
  const all: [Case[0], Case[1], Case[2], number][] = [
    ...cases.map(([x, co, pad]): [Case[0], Case[1], Case[2], number] => [x, co, pad, 3]),
    [[2, 5, 6, 16], 8, "same", 1],
    [[3, 4, 4, 12], 16, "valid", 1],
  ];
  for (const [x, co, pad, k] of all) {
    const w = [k, k, x[3], co];
    it(`x [${x}] filter [${w}] pad ${JSON.stringify(pad)}: conv2d`, async () => {
      await compare("conv2d", (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad), [
        { shape: x, seed: 5 },
        { shape: w, seed: 6 },
      ]);
    });
    if (typeof pad === "object") continue; // fused conv2d takes no explicit pads
    for (const activation of ["linear", "relu"] as const) {
      it(`x [${x}] filter [${w}] pad ${pad}: fused conv2d with bias, ${activation}`, async () => {
        await compare("fused conv2d", (a, b, bias) => tf.fused.conv2d({ x: a as tf.Tensor4D, filter: b as tf.Tensor4D, bias, strides: 1, pad, activation }), [
          { shape: x, seed: 7 },
          { shape: w, seed: 8 },
          { shape: [co], seed: 9 },
        ]);
      });
    }
  }
});

describe("Transformed filters kept between forward convs without a tape (a sampler's steps)", () => {
  it("keeps each filter's U once, gives the values it gave when made, frees it once the filter is disposed, and keeps nothing under a tape", async () => {
    await tf.setBackend("wasm");
    const backend = asWasmBackend(tf.backend()) as unknown as { numDataIds(): number };
    const x = tf.tensor(data(81, 2 * 14 * 14 * 16), [2, 14, 14, 16]) as tf.Tensor4D;
    const w = tf.tensor(data(82, 3 * 3 * 16 * 32), [3, 3, 16, 32]) as tf.Tensor4D;
    const wData = w.dataId as object;
    const first = tf.conv2d(x, w, 1, "same");
    assert.ok(filterKept(wData), "the first conv keeps w's U");
    const [kept, buffers] = [keptFilterStats(), backend.numDataIds()];
    const again = tf.conv2d(x, w, 1, "same");
    assert.deepEqual(keptFilterStats(), kept, "the second conv made no new U");
    assert.equal(backend.numDataIds(), buffers + 1, "only the second conv's output is new");
    const [a, b] = [first.dataSync(), again.dataSync()];
    for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `element ${i}: ${a[i]} vs ${b[i]}`);
    // Under a tape: U made for the call only.
    const w2 = tf.tensor(data(83, 3 * 3 * 16 * 32), [3, 3, 16, 32]) as tf.Tensor4D;
    const grad = tf.grad((f: tf.Tensor) => tf.sum(tf.conv2d(x, f as tf.Tensor4D, 1, "same")))(w2);
    assert.ok(!filterKept(w2.dataId as object), "nothing kept under a tape");
    assert.deepEqual(keptFilterStats(), kept);
    // A disposed filter's U goes when the next one is kept.
    w.dispose();
    const other = tf.conv2d(x, w2, 1, "same");
    assert.ok(!filterKept(wData) && filterKept(w2.dataId as object), "w's U freed, w2's kept");
    assert.equal(keptFilterStats().count, kept.count);
    // A variable given new values (as an optimizer step does) convolves with them, not a stale U.
    const v = tf.variable(tf.tensor(data(84, 3 * 3 * 16 * 32), [3, 3, 16, 32]), false);
    tf.conv2d(x, v as tf.Tensor4D, 1, "same").dispose();
    const [next, same] = [0, 1].map(() => tf.tensor(data(85, 3 * 3 * 16 * 32), [3, 3, 16, 32]) as tf.Tensor4D);
    v.assign(next);
    const [viaVariable, direct] = [tf.conv2d(x, v as tf.Tensor4D, 1, "same"), tf.conv2d(x, same, 1, "same")];
    const [c, d] = [viaVariable.dataSync(), direct.dataSync()];
    for (let i = 0; i < c.length; i++) assert.ok(Object.is(c[i], d[i]), `after assign, element ${i}: ${c[i]} vs ${d[i]}`);
    tf.dispose([first, again, grad, other, viaVariable, direct, v, next, same, w2, x]);
  });
});

describe("3×3 convs with a bias per image and an addend (fusedConv2dAdd: LatentLabConv2DAdd on wasm)", () => {
  // F(4×4) (28×28, 14×14 with tiles past the edge, 7×5) and F(2×2) (6×6) tiles; "valid" padding;
  // the bias per channel, per image, both, neither; with and without an addend.
  const cases: [number[], number, "same" | "valid", boolean, boolean, boolean][] = [
    [[3, 28, 28, 8], 16, "same", true, true, true],
    [[2, 14, 14, 16], 8, "same", true, true, false],
    [[2, 7, 5, 4], 8, "same", false, true, true],
    [[2, 6, 6, 8], 16, "same", true, false, true],
    [[2, 9, 8, 4], 8, "valid", false, false, true],
  ];
  for (const [x, co, pad, withBias, withImageBias, withAddend] of cases) {
    const [b, h, w] = x;
    const out = pad === "same" ? [b, h, w, co] : [b, h - 2, w - 2, co];
    it(`x [${x}] → ${co}, ${pad}${withBias ? ", bias" : ""}${withImageBias ? ", bias per image" : ""}${withAddend ? ", addend" : ""}: against conv and adds on cpu`, async () => {
      const inputs = [{ shape: x, seed: 71 }, { shape: [3, 3, x[3], co], seed: 72 }];
      if (withBias) inputs.push({ shape: [co], seed: 73 });
      if (withImageBias) inputs.push({ shape: [b, co], seed: 74 });
      if (withAddend) inputs.push({ shape: out, seed: 75 });
      await compare("fusedConv2dAdd", (...t) => {
        let i = 2;
        const bias = withBias ? t[i++] : null;
        const imageBias = withImageBias ? (t[i++] as tf.Tensor2D) : null;
        const addend = withAddend ? t[i++] : null;
        return fusedConv2dAdd(t[0] as tf.Tensor4D, t[1] as tf.Tensor4D, bias, imageBias, addend, 1, pad);
      }, inputs);
    });
  }
});

describe("Direct forward convs on wasm (strided, dilated, other filters: convForward)", () => {
  // Every forward conv that is neither 3×3 stride 1 (Winograd) nor 1×1 stride 1 (a product):
  // a DCGAN discriminator's and a U-Net's downsampling convs, a first layer's single channel,
  // an output layer's single channel, seven channels (padded to eight and cut back), dilation, explicit pads,
  // pixels that are not a multiple of four, threads sharing the pixels.
  const cases: [number[], number[], number | [number, number], "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]], number | [number, number]][] = [
    [[3, 14, 14, 6], [4, 4, 6, 32], 2, "same", 1], // input channels not in fours (in fours: by phases, below)
    [[2, 28, 28, 1], [4, 4, 1, 16], 2, "same", 1],
    [[2, 12, 12, 8], [3, 3, 8, 16], 2, "same", 1],
    [[3, 10, 10, 8], [3, 3, 8, 1], 1, "same", 2],
    [[2, 9, 11, 5], [3, 2, 5, 7], [2, 3], "valid", 1],
    [[2, 10, 10, 6], [3, 3, 6, 16], 1, [[0, 0], [2, 1], [0, 3], [0, 0]], [2, 2]],
    [[1, 7, 5, 3], [5, 5, 3, 8], 1, "same", 1],
    [[32, 14, 14, 32], [4, 4, 32, 20], 2, "same", 1], // 16 M multiply-adds: shared between threads
    // Up to four output channels one at a time (panelColumns): a U-Net's output conv, and four
    // and three channels with the pixels shared between threads.
    [[2, 14, 14, 32], [3, 3, 32, 1], 1, "same", 1],
    [[2, 6, 7, 4], [2, 2, 4, 4], 1, "valid", 1],
    [[40, 28, 28, 16], [3, 3, 16, 3], 1, "same", 1],
  ];
  for (const [x, w, s, pad, d] of cases) {
    const name = `x [${x}] filter [${w}] stride ${s} pad ${JSON.stringify(pad)} dilation ${d}`;
    it(`${name}: conv2d against cpu, and equal to tfjs's own wasm (XNNPACK) kernel to the bit (within float32 rounding where the kernels fuse multiply-adds)`, async () => {
      // tfjs has no gradient of a dilated conv: values only there.
      await compare("conv2d", (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad, "NHWC", d), [
        { shape: x, seed: 31 },
        { shape: w, seed: 32 },
      ], d === 1);
      await tf.setBackend("wasm");
      const [tx, tw, tb] = [x, w, [w[3]]].map((shape, i) => tf.tensor(data(33 + i, sizeOf(shape)), shape));
      const backend = asWasmBackend(tf.backend());
      const attrs = { strides: s, pad, dataFormat: "NHWC", dilations: d, dimRoundingMode: undefined };
      const pairs: [tf.Tensor, tf.Tensor][] = [
        [tf.conv2d(tx as tf.Tensor4D, tw as tf.Tensor4D, s, pad, "NHWC", d),
          tf.engine().makeTensorFromTensorInfo(runOriginal("Conv2D", backend, { x: tx, filter: tw }, attrs))],
      ];
      if (typeof pad === "string") {
        for (const activation of ["linear", "relu"] as const) {
          pairs.push([
            tf.fused.conv2d({ x: tx as tf.Tensor4D, filter: tw as tf.Tensor4D, bias: tb, strides: s, pad, dilations: d, activation }),
            tf.engine().makeTensorFromTensorInfo(runOriginal("FusedConv2D", backend, { x: tx, filter: tw, bias: tb }, { ...attrs, activation })),
          ]);
        }
      }
      for (const [ours, theirs] of pairs) {
        assert.deepEqual(ours.shape, theirs.shape);
        const [a, b] = [ours.dataSync(), theirs.dataSync()];
        if (!fusedMultiplyAdd()) {
          for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `${name} element ${i}: ${a[i]} vs ${b[i]}`);
        } else {
          // The same sums with one rounding per term where XNNPACK has two.
          let scale = 0;
          for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
          for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 2e-6 * scale, `${name} element ${i}: ${a[i]} vs ${b[i]} (scale ${scale})`);
        }
      }
      tf.dispose([tx, tw, tb, ...pairs.flat()]);
    });
  }
  it("fused with bias and relu, against cpu with gradients", async () => {
    for (const activation of ["linear", "relu"] as const) {
      await compare("fused conv2d", (a, b, bias) => tf.fused.conv2d({ x: a as tf.Tensor4D, filter: b as tf.Tensor4D, bias, strides: 2, pad: "same", activation }), [
        { shape: [3, 13, 13, 8], seed: 41 },
        { shape: [4, 4, 8, 16], seed: 42 },
        { shape: [16], seed: 43 },
      ]);
    }
  });
});

describe("4×4 stride-2 convs by Winograd over phases on wasm (Conv2D, FusedConv2D, both gradients, conv2dTranspose)", () => {
  // Input channels in fours and output channels in eights: all three passes by F(4×4, 2×2) over
  // the input's four phases (winograd-strided.ts). A DCGAN discriminator's layer, a first layer
  // of four channels, odd sizes (tiles past the edge), explicit uneven pads, "valid" padding
  // (and one whose last input row no tap reads: the input gradient keeps the other path), a
  // one-tile image, and a batch of many tile blocks per share.
  const cases: [number[], number, "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]]][] = [
    [[2, 14, 14, 64], 128, "same"],
    [[3, 28, 28, 4], 8, "same"],
    [[2, 13, 13, 8], 16, "same"],
    [[1, 9, 11, 4], 8, [[0, 0], [2, 1], [0, 3], [0, 0]]],
    [[2, 16, 16, 12], 24, "valid"],
    [[2, 15, 15, 8], 16, "valid"],
    [[1, 3, 3, 4], 8, "same"],
    [[48, 14, 14, 32], 64, "same"],
  ];
  for (const [x, co, pad] of cases) {
    const w = [4, 4, x[3], co];
    it(`x [${x}] filter [${w}] pad ${JSON.stringify(pad)}: conv2d`, async () => {
      await compare("conv2d", (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, pad), [
        { shape: x, seed: 51 },
        { shape: w, seed: 52 },
      ]);
    });
    if (typeof pad === "object") continue; // fused conv2d takes no explicit pads
    it(`x [${x}] filter [${w}] pad ${pad}: fused conv2d with bias and relu`, async () => {
      await compare("fused conv2d", (a, b, bias) => tf.fused.conv2d({ x: a as tf.Tensor4D, filter: b as tf.Tensor4D, bias, strides: 2, pad, activation: "relu" }), [
        { shape: x, seed: 53 },
        { shape: w, seed: 54 },
        { shape: [co], seed: 55 },
      ]);
    });
  }
  // Transposed: a DCGAN generator's layer and a U-Net's upsampling, both directions.
  for (const [x, w] of [[[2, 7, 7, 128], [4, 4, 64, 128]], [[2, 14, 14, 64], [4, 4, 32, 64]]]) {
    it(`conv2dTranspose x [${x}] filter [${w}] same`, async () => {
      const out: [number, number, number, number] = [x[0], 2 * x[1], 2 * x[2], w[2]];
      await compare("conv2dTranspose", (a, f) => tf.conv2dTranspose(a as tf.Tensor4D, f as tf.Tensor4D, out, 2, "same"), [
        { shape: x, seed: 56 },
        { shape: w, seed: 57 },
      ]);
    });
  }
});

describe("conv2dTranspose on wasm (forward is Conv2DBackpropInput)", () => {
  const cases: [number[], number[], number, "same" | "valid"][] = [
    [[2, 7, 7, 8], [4, 4, 4, 8], 2, "same"],
    [[1, 3, 4, 2], [3, 3, 3, 2], 2, "valid"],
    [[3, 5, 5, 3], [3, 3, 2, 3], 1, "same"],
    [[1, 4, 4, 1], [5, 5, 1, 1], 3, "valid"],
    [[2, 5, 5, 8], [4, 4, 16, 8], 2, "same"], // output channels in eights: LatentLab's SIMD kernel
    [[1, 4, 3, 4], [3, 3, 16, 4], 3, "valid"],
    [[2, 7, 7, 16], [4, 4, 8, 16], 2, "same"], // a DCGAN generator's layer, small
    [[3, 5, 6, 8], [3, 3, 24, 8], 3, "valid"], // three images, shared between threads
    [[1, 3, 5, 8], [5, 2, 8, 8], 1, "valid"],
    [[2, 4, 4, 3], [2, 2, 12, 3], 2, "same"], // 12 output channels: by product
  ];
  for (const [x, w, s, pad] of cases) {
    it(`x [${x}] filter [${w}] stride ${s} pad ${pad}`, async () => {
      const [b, h, wd] = x;
      const out: [number, number, number, number] =
        pad === "same" ? [b, h * s, wd * s, w[2]] : [b, (h - 1) * s + w[0], (wd - 1) * s + w[1], w[2]];
      await compare("conv2dTranspose", (a, f) => tf.conv2dTranspose(a as tf.Tensor4D, f as tf.Tensor4D, out, s, pad), [
        { shape: x, seed: 3 },
        { shape: w, seed: 4 },
      ]);
    });
  }
});

describe("BatchMatMul on wasm (transposed, batched, broadcast)", () => {
  // tfjs 4.22 cannot differentiate a product whose batch is broadcast (on any backend), so those
  // cases compare forward values only.
  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[1, 33], [33, 1], false, false],
    [[4, 17, 19], [4, 19, 23], false, false],
    [[4, 19, 17], [4, 23, 19], true, true],
    [[2, 3, 20, 16], [2, 3, 16, 24], false, false],
    [[2, 3, 20, 16], [2, 3, 24, 16], false, true],
    [[6, 20, 16], [16, 24], false, false],
    [[20, 16], [6, 16, 24], false, false],
    [[3, 2, 2], [3, 2, 2], false, true],
    // Large enough per matrix for the per-matrix XNNPACK path (≥ 32³ multiply-adds, inner ≥ 16).
    [[3, 40, 33], [3, 33, 36], false, false],
    [[2, 2, 33, 40], [2, 2, 36, 33], true, true],
    [[3, 40, 33], [33, 36], false, false],
    // Output columns in eights: LatentLab's SIMD kernel (rows not in fours, k of 1,
    // transposes, batches, a broadcast matrix on either side, rows shared between threads).
    [[7, 5], [5, 64], false, false],
    [[130, 1], [1, 72], false, false],
    [[33, 9], [80, 33], true, true],
    [[3, 13, 20], [3, 20, 64], false, false],
    [[2, 2, 20, 13], [2, 2, 64, 20], true, true],
    [[3, 13, 20], [20, 64], false, false],
    [[13, 20], [3, 20, 64], false, false],
    [[128, 100], [100, 136], false, false],
    // Over 64 columns with 16 or more rows a share: B copied in strips of eight (packB), its
    // last block of columns partial; transposed either side (a transposed B packed from where it
    // lies), a batch, rows shared between threads.
    [[37, 21], [21, 264], false, false],
    [[21, 40], [520, 21], true, true],
    [[2, 20, 9], [2, 9, 296], false, false],
    [[2, 20, 9], [2, 296, 9], false, true], // B's strips packed from Bᵀ, K not in fours
    [[64, 36], [264, 36], false, true],
    [[128, 300], [300, 512], false, false],
    // Shares split by columns in blocks of 64 (the last partial), then by rows; a transposed A
    // whose rows lie a multiple of 1 KB apart is copied in panels, not read in place.
    [[128, 784], [784, 200], false, false],
    [[128, 512], [128, 264], true, false],
    [[64, 256], [64, 72], true, false],
    // aᵀ times one column (a dense layer's weight gradient with one output): the row bᵀa by the
    // SIMD kernel when a's columns are in eights, else XNNPACK after a transpose.
    [[64, 40], [64, 1], true, false],
    [[64, 40], [1, 64], true, true],
    [[1, 33, 48], [1, 33, 1], true, false],
    [[30, 21], [30, 1], true, false],
    // An inner size past 2048: along K in blocks (matmulBlocked), transposed or not, batched.
    [[3000, 24], [3000, 16], true, false],
    [[5, 2500], [2500, 8], false, false],
    [[2, 2100, 12], [2, 2100, 16], true, false],
  ];
  for (const [a, b, ta, tb] of cases) {
    it(`[${a}] x [${b}] transposeA ${ta} transposeB ${tb}`, async () => {
      const broadcast = a.length !== b.length;
      await compare(
        "matMul",
        (x, y) => tf.matMul(x, y, ta, tb),
        [
          { shape: a, seed: 5 },
          { shape: b, seed: 6 },
        ],
        !broadcast,
      );
    });
  }
});

describe("_FusedMatMul on wasm (bias and activation, transposed)", () => {
  // 5 columns: XNNPACK; 64: LatentLab's SIMD kernel.
  for (const [ta, tb, n] of [[false, false, 5], [true, false, 5], [false, true, 5], [true, true, 5], [false, false, 64], [true, true, 64]] as const) {
    it(`transposeA ${ta} transposeB ${tb}, ${n} columns, bias, relu`, async () => {
      const a = ta ? [9, 6] : [6, 9];
      const b = tb ? [n, 9] : [9, n];
      await compare(
        "fused.matMul",
        (x, y, bias) =>
          tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, transposeA: ta, transposeB: tb, bias, activation: "relu" }),
        [
          { shape: a, seed: 7 },
          { shape: b, seed: 8 },
          { shape: [n], seed: 9 },
        ],
      );
    });
  }
});

describe("UnsortedSegmentSum on wasm (the gradient of gather / embeddings)", () => {
  it("gather gradient with repeated and unused ids", async () => {
    const ids = [0, 3, 3, 1, 6, 0, 3];
    const f = (table: tf.Tensor) => tf.gather(table, tf.tensor1d(ids, "int32"));
    await compare("gather", f, [{ shape: [7, 5], seed: 10 }]);
  });
  it("gather along other axes, of int32 values, and a batch of images", async () => {
    await compare("gather axis 1", (t) => tf.gather(t, tf.tensor1d([2, 0, 2], "int32"), 1), [{ shape: [4, 3, 5], seed: 25 }]);
    await compare("gather last axis", (t) => tf.gather(t, tf.tensor2d([[1, 0], [1, 1]], [2, 2], "int32"), 2), [{ shape: [3, 2, 2], seed: 26 }]);
    await compare("gather images", (t) => tf.gather(t, tf.tensor1d([19, 3, 3, 0, 7], "int32")), [{ shape: [20, 4, 4, 1], seed: 27 }], false);
    const ints = async (b: "cpu" | "wasm") => on(b, () => [tf.cast(tf.gather(tf.cast(tf.mul(tf.tensor(data(28, 60), [6, 10]), 1000), "int32"), tf.tensor1d([5, 1], "int32")), "float32")]);
    assertClose((await ints("wasm"))[0], (await ints("cpu"))[0], 0, "int32 gather");
    await tf.setBackend("wasm");
    const before = tf.memory().numTensors;
    assert.throws(() => tf.tidy(() => tf.gather(tf.zeros([3, 2]), tf.tensor1d([0, 3], "int32"))), /index value 3 is not in \[0, 2\]/);
    assert.equal(tf.memory().numTensors, before);
  });

  it("direct call, 3-d values, an out-of-range id dropped", async () => {
    const run = () => [
      tf.unsortedSegmentSum(tf.tensor(data(11, 6 * 2 * 3), [6, 2, 3]), tf.tensor1d([2, 0, 2, 9, 1, 0], "int32"), 4),
    ];
    const got = await on("wasm", run);
    // Reference by hand: the cpu backend rejects an out-of-range id, TensorFlow drops it.
    const x = data(11, 36);
    const expected = new Float32Array(4 * 6);
    [2, 0, 2, 9, 1, 0].forEach((s, r) => {
      if (s < 4) for (let i = 0; i < 6; i++) expected[s * 6 + i] += x[r * 6 + i];
    });
    assertClose(got[0], expected, 1e-6, "unsortedSegmentSum");
  });
});

describe("Sum, Mean and Tile on wasm", () => {
  const cases: [number[], number | number[], boolean][] = [
    [[4, 5, 6, 3], [0, 1, 2], false],
    [[4, 5, 6, 3], [1, 2], true],
    [[7, 9], 0, false],
    [[7, 9], 1, false],
    [[2, 3, 4], [0, 1, 2], false],
    [[1, 5, 5, 2], [0, 1, 2], true],
    [[3, 4, 5], [0, 2], false],
    // Many reduced rows into one or two output rows (bias gradients), and large ones: one output
    // row over 2¹⁹ elements is summed in shares of its rows (two; three, with an odd column count).
    [[50, 30, 5], [0, 1], false],
    [[2, 33, 40, 3], [1, 2], true],
    [[64, 32, 32, 8], [0, 1, 2], false],
    [[16, 40, 40, 33], [0, 1, 2], true],
    // Over 2¹⁹ elements with several outer rows: summed in shares of them (two threads here).
    [[9, 41, 36, 40], [1, 2], true],
  ];
  for (const [shape, axis, keep] of cases) {
    it(`sum and mean of [${shape}] over ${JSON.stringify(axis)}${keep ? " keeping dims" : ""}`, async () => {
      await compare("sum", (x) => tf.sum(x, axis, keep), [{ shape, seed: 12 }]);
      await compare("mean", (x) => tf.mean(x, axis, keep), [{ shape, seed: 13 }]);
    });
  }
  const tiles: [number[], number[]][] = [
    [[1, 1, 1, 5], [3, 4, 2, 1]],
    [[2, 3], [2, 2]],
    [[3], [4]],
    [[2, 1, 3], [1, 5, 2]],
  ];
  for (const [shape, reps] of tiles) {
    it(`tile [${shape}] by [${reps}] (float32, and int32 values)`, async () => {
      await compare("tile", (x) => tf.tile(x, reps), [{ shape, seed: 14 }]);
      const ints = async (b: "cpu" | "wasm") => on(b, () => [tf.cast(tf.tile(tf.cast(tf.mul(tf.tensor(data(15, sizeOf(shape)), shape), 100), "int32"), reps), "float32")]);
      assertClose((await ints("wasm"))[0], (await ints("cpu"))[0], 0, "int32 tile");
    });
  }
});

describe("Transpose on wasm (blocked matrix transposes)", () => {
  const cases: [number[], number[]][] = [
    [[4, 5, 6, 3], [3, 0, 1, 2]], // a conv activation channels-first: one [120, 3] transpose
    [[130, 70], [1, 0]], // more than one block of rows
    [[3, 4, 5], [0, 2, 1]], // a batch of matrices
    [[2, 3, 4, 5], [0, 1, 3, 2]],
    [[1, 5, 1, 3], [2, 3, 0, 1]], // size-1 axes dropped
    [[2, 1, 3], [1, 0, 2]], // only a size-1 axis moves: a copy
    [[2, 3, 4], [1, 0, 2]], // a matrix of runs of 4
    [[4, 5, 6, 3], [1, 2, 0, 3]], // [batch, pixels, channels] to [pixels, batch, channels]
    [[3, 4, 5, 6], [0, 2, 1, 3]],
    [[2, 3, 4], [2, 1, 0]], // not a matrix transpose: tfjs's kernel
    [[2, 3, 4, 5], [3, 1, 2, 0]],
    // 4096 elements or more per matrix: by SIMD (4 × 4 blocks; edges of rows and columns not in
    // fours, a batch, output rows shared between threads in runs of 16).
    [[3, 64, 70], [0, 2, 1]],
    [[2, 28, 28, 64], [3, 0, 1, 2]],
    [[601, 301], [1, 0]],
  ];
  for (const [shape, perm] of cases) {
    it(`[${shape}] by [${perm}] (float32, and int32 values)`, async () => {
      await compare("transpose", (x) => tf.transpose(x, perm), [{ shape, seed: 16 }]);
      const ints = async (b: "cpu" | "wasm") => on(b, () => [tf.cast(tf.transpose(tf.cast(tf.mul(tf.tensor(data(17, sizeOf(shape)), shape), 100), "int32"), perm), "float32")]);
      assertClose((await ints("wasm"))[0], (await ints("cpu"))[0], 0, "int32 transpose");
    });
  }
});

describe("Identity and same-dtype Cast on wasm share data", () => {
  it("clone and cast give the cpu backend's values and gradients", async () => {
    await compare("clone", (x) => tf.clone(x), [{ shape: [3, 4], seed: 18 }]);
    await compare("cast", (x) => tf.mul(tf.cast(x, "float32"), 2), [{ shape: [5, 2], seed: 19 }]);
    const ints = async (b: "cpu" | "wasm") => on(b, () => [tf.cast(tf.cast(tf.cast(tf.tensor(data(20, 12), [3, 4]), "int32"), "int32"), "float32")]);
    assertClose((await ints("wasm"))[0], (await ints("cpu"))[0], 0, "int32 casts");
  });

  it("a clone outlives its source, and the memory is freed with the last of them", async () => {
    await tf.setBackend("wasm");
    const before = tf.memory() as tf.MemoryInfo & { numDataBuffers: number };
    const x = tf.tensor([1, 2, 3, 4], [2, 2]);
    const y = tf.clone(x);
    const z = tf.cast(y, "float32");
    assert.equal((tf.memory() as typeof before).numDataBuffers, before.numDataBuffers + 1, "one buffer for three tensors");
    x.dispose();
    y.dispose();
    assert.deepEqual(Array.from(z.dataSync()), [1, 2, 3, 4]);
    z.dispose();
    const after = tf.memory() as typeof before;
    assert.equal(after.numDataBuffers, before.numDataBuffers);
    assert.equal(after.numBytes, before.numBytes);
  });
});

describe("LatentLabLayerNorm on wasm (layer norm + optional SiLU, one kernel each way)", () => {
  const cases: [number[], "linear" | "silu"][] = [
    [[2, 5, 7, 6], "silu"],
    [[2, 5, 7, 6], "linear"],
    [[3, 33], "silu"],
    [[4, 1, 1, 64], "linear"],
    [[1, 3, 128], "silu"],
    [[16, 16, 16, 32], "silu"], // large enough to share rows between threads
    [[8, 16, 16, 33], "linear"],
  ];
  for (const [shape, activation] of cases) {
    it(`[${shape}] ${activation} against tfjs ops on cpu`, async () => {
      const c = shape[shape.length - 1];
      // The kernel runs while a gradient is recorded, so the value is taken inside tf.grads.
      const run = () => {
        const xs = [shape, [c], [c]].map((s, i) => tf.tensor(data(21 + i, sizeOf(s)), s));
        let y: tf.Tensor | null = null;
        const grads = tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          y = tf.keep(layerNormOp(x, g, b, 1e-5, activation));
          return tf.sum(tf.mul(y, tf.tensor(data(999, sizeOf(shape)), shape)));
        })(xs);
        return [y as unknown as tf.Tensor, ...grads];
      };
      const ref = await on("cpu", run);
      const got = await on("wasm", run);
      ["value", "dx", "dgamma", "dbeta"].forEach((what, i) => assertClose(got[i], ref[i], TOL, `layerNorm ${activation} ${what}`));
    });
  }

  it("with σ(z) kept from the forward pass (as under a tape), gives the recomputing gradient's values to the bit", async () => {
    await tf.setBackend("wasm");
    for (const shape of [[2, 5, 7, 6], [16, 16, 16, 32]]) {
      const c = shape[shape.length - 1];
      const [x, g, b, dy] = [shape, [c], [c], shape].map((s, i) => tf.tensor(data(31 + i, sizeOf(s)), s));
      const attrs = { epsilon: 1e-5, silu: true };
      const [y, mean, rstd, sig] = tf.engine().runKernel(LAYER_NORM, { x, gamma: g, beta: b }, { ...attrs, keepSigmoid: true }) as tf.Tensor[];
      assert.deepEqual(sig.shape, shape);
      const kept = tf.engine().runKernel(LAYER_NORM_GRAD, { dy, x, gamma: g, beta: b, mean, rstd, sig }, attrs) as tf.Tensor[];
      const again = tf.engine().runKernel(LAYER_NORM_GRAD, { dy, x, gamma: g, beta: b, mean, rstd }, attrs) as tf.Tensor[];
      kept.forEach((t, i) => {
        const [p, q] = [t.dataSync(), again[i].dataSync()];
        for (let j = 0; j < p.length; j++) assert.ok(Object.is(p[j], q[j]), `[${shape}] output ${i} element ${j}: ${p[j]} vs ${q[j]}`);
      });
      tf.dispose([x, g, b, dy, y, mean, rstd, sig, ...kept, ...again]);
    }
  });

  it("is a kernel on wasm only (cpu runs the tfjs ops it is compared with), and keeps no tensor after a gradient", async () => {
    assert.ok(tf.getKernel(LAYER_NORM, "wasm") && tf.getKernel(LAYER_NORM_GRAD, "wasm"));
    assert.equal(tf.getKernel(LAYER_NORM, "cpu"), undefined);
    await tf.setBackend("wasm");
    const x = tf.tensor(data(24, 2 * 3 * 8), [2, 3, 8]);
    const g = tf.ones([8]);
    const b = tf.zeros([8]);
    const before = tf.memory().numTensors;
    const grads = tf.grads((a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(layerNormOp(a, gg, bb, 1e-5, "silu")))([x, g, b]);
    tf.dispose(grads);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, g, b]);
  });
});

describe("LatentLabBatchNormTrain on wasm (batch norm with the batch's moments + optional relu, one kernel each way)", () => {
  // Channels in fours; rows few, odd, and many (shares of the sums and of the passes); inputs
  // off zero (mean 3) so that the moments' arithmetic shows.
  const cases: [number[], "linear" | "relu"][] = [
    [[2, 5, 7, 8], "relu"],
    [[2, 5, 7, 8], "linear"],
    [[3, 4], "relu"],
    [[5, 1, 1, 64], "linear"],
    [[64, 14, 14, 64], "relu"], // a DCGAN generator's, at batch 64
    [[9, 17, 12], "relu"],
  ];
  for (const [shape, activation] of cases) {
    it(`[${shape}] ${activation} against tfjs's moments, batchNorm and relu on cpu (value, moments, gradients)`, async () => {
      const c = shape[shape.length - 1];
      const run = () => {
        const x = tf.add(tf.tensor(data(61, sizeOf(shape)), shape), 3);
        const [g, b] = [[c], [c]].map((s, i) => tf.tensor(data(62 + i, sizeOf(s)), s));
        let y: tf.Tensor | null = null;
        const stats: tf.Tensor[] = [];
        const grads = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => {
          y = tf.keep(batchNormTrainOp(xi, gi, bi, 1e-5, activation === "relu", (m, v) => stats.push(tf.keep(tf.clone(m)), tf.keep(tf.clone(v)))));
          return tf.sum(tf.mul(y, tf.tensor(data(999, sizeOf(shape)), shape)));
        })([x, g, b]);
        return [y as unknown as tf.Tensor, ...stats, ...grads];
      };
      const ref = await on("cpu", run);
      const got = await on("wasm", run);
      ["value", "mean", "variance", "dx", "dgamma", "dbeta"].forEach((what, i) => assertClose(got[i], ref[i], TOL, `batchNorm ${activation} ${what}`));
    });
  }

  it("the module's running averages and output in training and inference match cpu's; no tensor kept after a gradient", async () => {
    assert.ok(tf.getKernel(BATCH_NORM_TRAIN, "wasm") && tf.getKernel(BATCH_NORM_TRAIN_GRAD, "wasm"));
    const run = () => {
      const bn = batchNorm("bn", { features: 8, activation: "relu" });
      const x = tf.tensor(data(64, 4 * 3 * 3 * 8), [4, 3, 3, 8]);
      const train = [bn.apply(x, { training: true }), bn.apply(tf.mul(x, 2), { training: true })];
      const state = [...bn.state().values()].map((t) => tf.clone(t));
      const out = [...train, ...state, bn.apply(x)];
      bn.dispose();
      return out;
    };
    const ref = await on("cpu", run);
    const got = await on("wasm", run);
    got.forEach((g, i) => assertClose(g, ref[i], TOL, `batchNorm module output ${i}`));
    await tf.setBackend("wasm");
    const x = tf.tensor(data(65, 2 * 3 * 8), [2, 3, 8]);
    const g = tf.ones([8]);
    const b = tf.zeros([8]);
    const before = tf.memory().numTensors;
    const grads = tf.grads((a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(batchNormTrainOp(a, gg, bb, 1e-5, true, () => {})))([x, g, b]);
    tf.dispose(grads);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, g, b]);
  });

  it("channels not in fours run tfjs's ops (same values as cpu)", async () => {
    const run = () => {
      const x = tf.tensor(data(66, 5 * 6), [5, 6]);
      return [batchNormTrainOp(x, tf.ones([6]), tf.zeros([6]), 1e-3, true, () => {})];
    };
    assertClose((await on("wasm", run))[0], (await on("cpu", run))[0], TOL, "batchNorm, six channels");
  });
});

describe("Add, Sub, Multiply, RealDiv on wasm (rows by SIMD, one block of broadcast axes)", () => {
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ["Add", tf.add], ["Sub", tf.sub], ["Multiply", tf.mul], ["RealDiv", tf.div],
  ];
  const pairs: [number[], number[]][] = [
    [[5, 7], [7]], // a bias, rows with a tail after the fours
    [[128, 256], [256]],
    [[3, 4, 5, 8], [3, 1, 1, 8]], // per image and channel
    [[1, 1, 1, 8], [3, 4, 5, 8]], // statistics first (small − big)
    [[3, 4, 5, 6], [6]],
    [[128, 1], [128, 20]], // one number per row
    [[4, 1, 5], [4, 3, 5]],
    [[2, 3], [2, 3]],
    [[64, 64, 40], [64, 64, 40]], // same shape, shared between threads
    [[64, 64, 40], [64, 1, 40]], // broadcast, shared between threads
    [[64, 64, 40], []], // one number for all, shared between threads
    [[64, 64, 1], [64, 64, 40]], // one number per run of 40, shared between threads
    [[], [5, 7]], // a scalar
    [[4, 1], [1, 5]], // both sides broadcast: tfjs's kernel
    [[2, 3, 4], [3, 1]], // two blocks of broadcast axes: tfjs's kernel
  ];
  for (const [a, b] of pairs) {
    it(`[${a}] op [${b}]: equal to tfjs's own wasm kernel, and to cpu with gradients`, async () => {
      for (const [name, f] of ops) {
        const inputs = [{ shape: a, seed: 71 }, { shape: b, seed: 72 }];
        // Keep divisors away from 0 so the cpu comparison is about arithmetic, not poles.
        const g = name === "RealDiv" ? (x: tf.Tensor, y: tf.Tensor) => f(x, tf.add(tf.abs(y), 0.5)) : f;
        await compare(name, g, inputs);
        await tf.setBackend("wasm");
        const [ta, tb] = inputs.map(({ shape, seed }) => tf.tensor(data(seed, sizeOf(shape)), shape));
        const ours = f(ta, tb);
        const theirs = tf.engine().makeTensorFromTensorInfo(runOriginal(name, asWasmBackend(tf.backend()), { a: ta, b: tb }));
        assert.deepEqual(ours.shape, theirs.shape);
        const [x, y] = [ours.dataSync(), theirs.dataSync()];
        for (let i = 0; i < x.length; i++) assert.ok(Object.is(x[i], y[i]) || (Number.isNaN(x[i]) && Number.isNaN(y[i])), `${name} [${a}] [${b}] element ${i}: ${x[i]} vs ${y[i]}`);
        tf.dispose([ta, tb, ours, theirs]);
      }
    });
  }

  it("reads shapes as [rows, C] with small's row ⌊r / M⌋, or declines", () => {
    assert.deepEqual(broadcastLayout([3, 4, 5, 8], [3, 1, 1, 8]), { rows: 60, M: 20, C: 8 });
    assert.deepEqual(broadcastLayout([128, 256], [256]), { rows: 128, M: 128, C: 256 });
    assert.deepEqual(broadcastLayout([128, 20], [128, 1]), { rows: 2560, M: 20, C: 1 });
    assert.deepEqual(broadcastLayout([2, 3], [2, 3]), { rows: 1, M: 1, C: 6 });
    assert.deepEqual(broadcastLayout([64, 64, 40], [64, 64, 40]), { rows: 40, M: 1, C: 4096 });
    assert.equal(broadcastLayout([2, 3, 4], [3, 1]), null);
    assert.equal(broadcastLayout([4, 5], [4, 1, 5]), null);
  });

  it("int32 operands run tfjs's kernel", async () => {
    await tf.setBackend("wasm");
    const r = tf.add(tf.tensor([1, 2, 3], [3], "int32"), tf.tensor([10], [1], "int32"));
    assert.equal(r.dtype, "int32");
    assert.deepEqual([...r.dataSync()], [11, 12, 13]);
    r.dispose();
  });
});

describe("FusedBatchNorm on wasm (rows by SIMD)", () => {
  for (const [shape, eps] of [[[4, 5, 6, 8], 1e-3], [[3, 7], 1e-5], [[128, 14, 14, 12], 1e-3]] as [number[], number][]) {
    it(`[${shape}] ε ${eps}: tfjs's own wasm kernel to the bit, and cpu with gradients`, async () => {
      const c = shape[shape.length - 1];
      const norm = (x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, sc: tf.Tensor) => tf.batchNorm(x, m, tf.add(tf.abs(v), 0.1), o, sc, eps);
      const inputs = [{ shape, seed: 81 }, ...[82, 83, 84, 85].map((seed) => ({ shape: [c], seed }))];
      await compare("batchNorm", norm, inputs);
      await tf.setBackend("wasm");
      const [x, m, v, o, sc] = inputs.map(({ shape: s, seed }) => tf.tensor(data(seed, sizeOf(s)), s));
      const variance = tf.add(tf.abs(v), 0.1);
      const ours = tf.batchNorm(x, m, variance, o, sc, eps);
      const theirs = tf.engine().makeTensorFromTensorInfo(
        runOriginal("FusedBatchNorm", asWasmBackend(tf.backend()), { x, mean: m, variance, offset: o, scale: sc }, { varianceEpsilon: eps }),
      );
      const [a, b] = [ours.dataSync(), theirs.dataSync()];
      for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `element ${i}: ${a[i]} vs ${b[i]}`);
      tf.dispose([x, m, v, o, sc, variance, ours, theirs]);
    });
  }

  it("statistics that are not one per channel run tfjs's kernel", async () => {
    await tf.setBackend("wasm");
    const y = tf.batchNorm(tf.ones([2, 3]), tf.scalar(0.5), tf.scalar(4)); // ε 0.001 by default
    assert.deepEqual([...y.dataSync()].map((v) => +v.toFixed(5)), Array(6).fill(+(0.5 / Math.sqrt(4.001)).toFixed(5)));
    y.dispose();
  });
});

describe("Softplus on wasm (one SIMD pass)", () => {
  for (const shape of [[128, 28, 28, 1], [3, 7], [1]]) {
    it(`[${shape}]: value and gradient against cpu`, async () => {
      // Logits from −40 to 40 (data() is in [−1, 1)): both tails and the middle.
      await compare("softplus", (x) => tf.softplus(tf.mul(x, 40)), [{ shape, seed: 81 }]);
    });
  }
  it("is within 1e-6 of exact (float64) softplus everywhere (below −87, within float32's smallest normal), keeps NaN and ±∞", async () => {
    await tf.setBackend("wasm");
    const v = Float32Array.from({ length: 4001 }, (_, i) => (i - 2000) / 20);
    const got = tf.tidy(() => tf.softplus(tf.tensor(v)).dataSync());
    v.forEach((x, i) => {
      const exact = x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
      assert.ok(Math.abs(got[i] - exact) <= 1e-6 * exact + 2e-38, `softplus(${x}) = ${got[i]}, exact ${exact}`);
    });
    const special = tf.tidy(() => [...tf.softplus(tf.tensor([NaN, Infinity, -Infinity, 0])).dataSync()]);
    assert.ok(Number.isNaN(special[0]));
    assert.equal(special[1], Infinity);
    assert.ok(special[2] >= 0 && special[2] < 1e-30);
    assert.ok(Math.abs(special[3] - Math.LN2) < 1e-7);
  });
});

describe("The Bernoulli likelihood on wasm (LatentLabBernoulliNll and its gradient, one SIMD pass each way)", () => {
  // x in [0, 1), logits from −40 to 40: both of softplus's tails and the middle.
  const nll = (x: tf.Tensor, l: tf.Tensor) => bernoulliNll({ x: tf.div(tf.add(x, 1), 2), logits: tf.mul(l, 40) });
  for (const shape of [[128, 28, 28, 1], [3, 7], [2, 5, 3, 2], [1, 1]]) {
    it(`[${shape}]: per-example values and both gradients against tfjs's ops on cpu`, async () => {
      await compare("bernoulliNll", nll, [{ shape, seed: 83 }, { shape, seed: 84 }]);
    });
  }

  it("runs as one kernel each way on wasm, and as tfjs's ops where x broadcasts", async () => {
    await tf.setBackend("wasm");
    const x = tf.tensor(data(5, 6 * 16), [6, 16]);
    const l = tf.tensor(data(6, 6 * 16), [6, 16]);
    const kernelsOf = async (f: () => tf.Tensor) => (await tf.profile(() => f())).kernelNames;
    const step = () => tf.grad((t: tf.Tensor) => tf.sum(bernoulliNll({ x, logits: t })))(l);
    const names = await kernelsOf(step);
    assert.ok(names.includes(BERNOULLI_NLL) && names.includes(BERNOULLI_NLL_GRAD), names.join());
    assert.ok(!names.includes("Softplus") && !names.includes("Sigmoid"), names.join());
    const row = tf.slice(x, [0, 0], [1, 16]);
    const broadcast = await kernelsOf(() => bernoulliNll({ x: row, logits: l }));
    assert.ok(broadcast.includes("Softplus") && !broadcast.includes(BERNOULLI_NLL), broadcast.join());
    tf.dispose([x, l, row]);
  });

  it("a gradient of its gradient (tape on in the backward pass) matches cpu", async () => {
    const shape = [4, 9];
    const w = tf.tensor(data(7, 36), shape);
    const run = () => {
      const x = tf.tensor(data(8, 36), shape).add(1).div(2);
      const l = tf.tensor(data(9, 36), shape).mul(6);
      const dl = (t: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.sum(tf.square(bernoulliNll({ x, logits: u }))))(t);
      return [dl(l), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(dl(t), w)))(l)];
    };
    const [ref, got] = [await on("cpu", run), await on("wasm", run)];
    ref.forEach((r, i) => assertClose(got[i], r, TOL, i === 0 ? "gradient" : "gradient of the gradient"));
    w.dispose();
  });

  it("keeps no tensor after a training-like step", async () => {
    await tf.setBackend("wasm");
    const [x, l] = tf.tidy(() => [tf.tensor(data(10, 2 * 784), [2, 28, 28, 1]).add(1).div(2), tf.variable(tf.tensor(data(11, 2 * 784), [2, 28, 28, 1]))]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const { value, grads } = tf.variableGrads(() => tf.mean(bernoulliNll({ x, logits: l })) as tf.Scalar, [l]);
      tf.dispose([value, ...Object.values(grads)]);
    }
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, l]);
  });
});

describe("LeakyRelu on wasm (one SIMD pass each way)", () => {
  const cases: [number[], number][] = [
    [[3, 5, 7], 0.2], // a tail that is not in fours
    [[2, 4], 0.01],
    [[64, 14, 14, 16], 0.2], // large enough to be shared between threads
  ];
  for (const [shape, alpha] of cases) {
    it(`[${shape}] alpha ${alpha}: value and gradient against cpu`, async () => {
      await compare("leakyRelu", (x) => tf.leakyRelu(x, alpha), [{ shape, seed: 31 }]);
    });
  }

  it("is exact at 0 and keeps NaN, as the cpu kernel; int32 input runs tfjs's kernel", async () => {
    const run = () => {
      const x = tf.tensor([0, -0, NaN, -3, 2, Infinity, -Infinity]);
      const [y, dx] = [tf.leakyRelu(x, 0.5), tf.grad((t: tf.Tensor) => tf.sum(tf.leakyRelu(t, 0.5)))(x)];
      return [y, dx, tf.leakyRelu(tf.tensor([-4, 0, 5], [3], "int32"), 0.5)];
    };
    const ref = await on("cpu", run);
    const got = await on("wasm", run);
    for (let i = 0; i < ref.length; i++) assert.deepEqual([...got[i]], [...ref[i]]);
  });

  it("a gradient of its gradient (WGAN-GP's penalty) matches cpu: the backward pass keeps tfjs's ops while it is taped", async () => {
    assert.ok(tf.getKernel(LEAKY_RELU_GRAD, "wasm"));
    const run = () => {
      const x = tf.tensor(data(41, 6 * 5), [6, 5]);
      const w = tf.tensor(data(42, 5 * 4), [5, 4]);
      const penalty = (wv: tf.Tensor) => {
        const gx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(tf.leakyRelu(tf.matMul(xi, wv), 0.2), tf.leakyRelu(tf.matMul(xi, wv), 0.2))))(x);
        return tf.sum(tf.square(gx));
      };
      return [penalty(w), tf.grad(penalty)(w)];
    };
    const ref = await on("cpu", run);
    const got = await on("wasm", run);
    assertClose(got[0], ref[0], TOL, "penalty");
    assertClose(got[1], ref[1], TOL, "d penalty / dw");
  });
});

describe("fused conv and dense layers (nn/fused.ts): tfjs's values, a gradient per input", () => {
  const convCases: [number[], number[], number, "same" | "valid"][] = [
    [[2, 7, 7, 3], [3, 3, 3, 8], 1, "same"],
    [[3, 14, 14, 4], [4, 4, 4, 8], 2, "same"],
    [[2, 9, 8, 2], [4, 4, 2, 5], 2, "valid"],
  ];
  for (const [x, w, stride, pad] of convCases) {
    for (const withBias of [true, false]) {
      it(`conv [${x}] ⊛ [${w}] stride ${stride} ${pad}${withBias ? " + bias" : ""}: ours on wasm against tf.fused.conv2d on cpu`, async () => {
        const inputs = [{ shape: x, seed: 51 }, { shape: w, seed: 52 }, ...(withBias ? [{ shape: [w[3]], seed: 53 }] : [])];
        const ref = await on("cpu", valueAndGrads((xi, wi, b) => tf.fused.conv2d({ x: xi as tf.Tensor4D, filter: wi as tf.Tensor4D, strides: stride, pad, bias: b }), inputs));
        const got = await on("wasm", valueAndGrads((xi, wi, b) => fusedConv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, b ?? null, stride, pad, "linear"), inputs));
        for (let i = 0; i < ref.length; i++) assertClose(got[i], ref[i], TOL, `fusedConv2d output/gradient ${i}`);
      });
    }
  }

  for (const [m, k, n] of [[6, 9, 5], [13, 20, 64]]) {
    it(`dense [${m}, ${k}] · [${k}, ${n}] + bias: ours on wasm against tf.fused.matMul on cpu`, async () => {
      const inputs = [{ shape: [m, k], seed: 54 }, { shape: [k, n], seed: 55 }, { shape: [n], seed: 56 }];
      const ref = await on("cpu", valueAndGrads((a, b, c) => tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias: c }), inputs));
      const got = await on("wasm", valueAndGrads((a, b, c) => fusedMatMul(a as tf.Tensor2D, b as tf.Tensor2D, c, "linear"), inputs));
      for (let i = 0; i < ref.length; i++) assertClose(got[i], ref[i], TOL, `fusedMatMul output/gradient ${i}`);
    });
  }

  it("relu: fused with and without a tape, its gradient from the output; the registered gradients take relu (kernels run directly)", async () => {
    const x = { shape: [2, 6, 6, 3], seed: 57 };
    const w = { shape: [3, 3, 3, 8], seed: 58 };
    const b = { shape: [8], seed: 59 };
    const ref = await on("cpu", valueAndGrads((xi, wi, bi) => tf.relu(tf.add(tf.conv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, 1, "same"), bi)), [x, w, b]));
    for (const backend of ["cpu", "wasm"] as const) {
      const viaOp = await on(backend, valueAndGrads((xi, wi, bi) => fusedConv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, bi, 1, "same", "relu"), [x, w, b]));
      const attrs = { strides: [1, 1], pad: "same", dataFormat: "NHWC", dilations: [1, 1], activation: "relu" } as unknown as tf.NamedAttrMap;
      fusedConv2d(tf.zeros([1, 3, 3, 1]), tf.zeros([1, 1, 1, 1]), null, 1, "same", "linear").dispose(); // registers the gradients
      const direct = await on(backend, valueAndGrads((xi, wi, bi) => tf.engine().runKernel("FusedConv2D", { x: xi, filter: wi, bias: bi }, attrs) as tf.Tensor, [x, w, b]));
      for (let i = 0; i < ref.length; i++) {
        assertClose(viaOp[i], ref[i], TOL, `${backend} relu conv via the op, ${i}`);
        assertClose(direct[i], ref[i], TOL, `${backend} relu conv kernel and registered gradient, ${i}`);
      }
      const mm = { transposeA: false, transposeB: false, activation: "relu" } as unknown as tf.NamedAttrMap;
      const refMm = await on("cpu", valueAndGrads((a, c, d) => tf.relu(tf.add(tf.matMul(a, c), d)), [{ shape: [1, 5, 7], seed: 60 }, { shape: [1, 7, 8], seed: 61 }, { shape: [8], seed: 62 }]));
      const gotMm = await on(backend, valueAndGrads((a, c, d) => tf.engine().runKernel("_FusedMatMul", { a, b: c, bias: d }, mm) as tf.Tensor, [{ shape: [1, 5, 7], seed: 60 }, { shape: [1, 7, 8], seed: 61 }, { shape: [8], seed: 62 }]));
      for (let i = 0; i < refMm.length; i++) assertClose(gotMm[i], refMm[i], TOL, `${backend} relu product kernel and registered gradient, ${i}`);
    }
  });

  it("computes only the gradients backprop asks for (no input gradient for a first layer, no weight gradients of a frozen layer)", async () => {
    await tf.setBackend("wasm");
    const x = tf.tensor(data(63, 4 * 8 * 8 * 2), [4, 8, 8, 2]);
    const w = tf.variable(tf.tensor(data(64, 4 * 4 * 2 * 8), [4, 4, 2, 8]));
    const b = tf.variable(tf.zeros([8]));
    const kernelsOf = async (vars: tf.Variable[], input: tf.Tensor) => {
      const prof = await tf.profile(() => {
        const { value, grads } = tf.variableGrads(() => tf.sum(fusedConv2d(input as tf.Tensor4D, w as tf.Tensor4D, b, 2, "same", "linear")), vars);
        tf.dispose([value, ...Object.values(grads)]);
      });
      return prof.kernels.map((k) => k.name);
    };
    const weightsOnly = await kernelsOf([w, b], x);
    assert.ok(weightsOnly.includes("Conv2DBackpropFilter"), weightsOnly.join(","));
    assert.ok(!weightsOnly.includes("Conv2DBackpropInput"), `the images need no gradient: ${weightsOnly.join(",")}`);
    const xv = tf.variable(x);
    const inputOnly = await kernelsOf([xv], xv);
    assert.ok(inputOnly.includes("Conv2DBackpropInput") && !inputOnly.includes("Conv2DBackpropFilter"), inputOnly.join(","));
    const [a, m] = [tf.ones([3, 4]) as tf.Tensor2D, tf.ones([4, 8]) as tf.Tensor2D];
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => tf.sum(fusedMatMul(a, m, b, "linear")), [b]);
    tf.dispose([value, ...Object.values(grads)]);
    assert.equal(tf.memory().numTensors, before, "no tensor left behind");
    tf.dispose([x, w, b, xv, a, m]);
  });

  for (const activation of ["linear", "relu"] as const) {
    it(`a gradient of a gradient through a ${activation} conv layer (WGAN-GP's penalty) matches tfjs's fused conv on cpu`, async () => {
      const penaltyOf = (conv: (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor) => tf.Tensor) => () => {
        const x = tf.tensor(data(65, 2 * 6 * 6 * 2), [2, 6, 6, 2]) as tf.Tensor4D;
        const w = tf.tensor(data(66, 3 * 3 * 2 * 4), [3, 3, 2, 4]) as tf.Tensor4D;
        const b = tf.tensor(data(67, 4), [4]);
        const penalty = (wv: tf.Tensor, bv: tf.Tensor) => {
          const gx = tf.grad((xi: tf.Tensor) => tf.sum(tf.square(tf.leakyRelu(conv(xi as tf.Tensor4D, wv as tf.Tensor4D, bv), 0.2))))(x);
          return tf.sum(tf.square(gx));
        };
        return [penalty(w, b), ...tf.grads(penalty)([w, b])];
      };
      const ref = await on("cpu", penaltyOf((x, w, b) => tf.fused.conv2d({ x, filter: w, strides: 1, pad: "same", bias: b, activation })));
      const got = await on("wasm", penaltyOf((x, w, b) => fusedConv2d(x, w, b, 1, "same", activation)));
      ["penalty", "dw", "db"].forEach((what, i) => assertClose(got[i], ref[i], TOL, `second order ${what}`));
    });
  }
});

/** The ids of a wasm binary's sections (1 type, 2 import, 3 function, 5 memory, 6 global, 7 export, 8 start, 11 data …). */
function sectionIds(bytes: Uint8Array): number[] {
  const ids: number[] = [];
  let p = 8; // magic and version
  while (p < bytes.length) {
    const id = bytes[p++];
    let size = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[p++];
      size += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    ids.push(id);
    p += size;
  }
  return ids;
}

describe("LatentLab's SIMD module (wasm/kernels.ts) on tfjs's heap", () => {
  it("imports tfjs's memory and nothing else, and has no memory, globals, start or data of its own to write", () => {
    assert.ok(relaxedSimd(), `Node ${process.version} compiles the relaxed-SIMD build (with --experimental-wasm-relaxed-simd set by LatentLab where needed)`);
    for (const file of [false, true].flatMap((shared) => [kernelFile(shared, false), kernelFile(shared, true)])) {
      const bytes = new Uint8Array(fs.readFileSync(file));
      const ids = sectionIds(bytes);
      for (const [id, what] of [[5, "memory"], [6, "global"], [8, "start"], [11, "data"]] as const) {
        assert.ok(!ids.includes(id), `${file} has a ${what} section`);
      }
      const module = new WebAssembly.Module(bytes);
      assert.deepEqual(WebAssembly.Module.imports(module), [{ module: "env", name: "memory", kind: "memory" }]);
      assert.ok(WebAssembly.Module.exports(module).every((e) => e.kind === "function"));
    }
  });

  it("runs the fused multiply-add build unless LATENTLAB_FMA=0, and its products are as close to exact as the plain build's", () => {
    assert.equal(fusedMultiplyAdd(), process.env.LATENTLAB_FMA !== "0");
    // [128, 784] · [784, 64] on a memory of its own, by each build's matmul, against float64 sums.
    const [M, K, N] = [128, 784, 64];
    const a = data(71, M * K), b = data(72, K * N);
    const exact = new Float64Array(M * N);
    for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) exact[i * N + j] += a[i * K + k] * b[k * N + j];
    const errors = [false, true].map((fma) => {
      const memory = new WebAssembly.Memory({ initial: 32 });
      const kernels = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(kernelFile(false, fma))), { env: { memory } }).exports as unknown as SimdKernels;
      const heap = new Float32Array(memory.buffer);
      const [aAt, bAt, cAt, packAt] = [0, M * K, M * K + K * N, M * K + K * N + M * N];
      heap.set(a, aAt);
      heap.set(b, bAt);
      kernels.matmul(4 * aAt, K, 1, 4 * bAt, 4 * cAt, 0, N, K, 0, M, false, false, 4 * packAt, 0);
      let sum = 0, worst = 0;
      for (let i = 0; i < M * N; i++) {
        const e = Math.abs(heap[cAt + i] - exact[i]);
        sum += e;
        worst = Math.max(worst, e);
      }
      assert.ok(worst < 1e-4, `${fma ? "fused" : "plain"} build: worst error ${worst}`);
      return sum / (M * N);
    });
    assert.ok(errors[1] <= errors[0], `mean error fused ${errors[1]} vs plain ${errors[0]}`);
  });

  it("Adam gives the cpu kernel's values to the bit, on odd sizes and in parts, and leaves its inputs alone", async () => {
    const attrs = { lr: 0.01, beta1: 0.5, beta2: 0.9, epsilon: 1e-7, bc1: 1 - 0.5 ** 3, bc2: 1 - 0.9 ** 3 } as unknown as tf.NamedAttrMap;
    // [300, 331]: in parts shared between threads (3 of 33 100 elements, not in fours).
    for (const shape of [[1], [7], [3, 5], [1001], [300, 331]]) {
      const run = () => {
        const n = sizeOf(shape);
        const [value, m, grad] = [31, 32, 33].map((seed) => tf.tensor(data(seed, n), shape));
        const v = tf.abs(tf.tensor(data(34, n), shape));
        const outs = tf.engine().runKernel(ADAM_KERNEL, { value, m, v, grad }, attrs) as tf.Tensor[];
        return [...outs, value, m, v, grad];
      };
      new FusedAdam(0.01); // registers the kernel
      const ref = await on("cpu", run);
      const got = await on("wasm", run);
      ["w", "m", "v", "value in", "m in", "v in", "grad in"].forEach((what, i) => assertClose(got[i], ref[i], 0, `Adam [${shape}] ${what}`));
    }
  });
  it("FusedAdam updates in place where only the variables hold their data (same values); a held clone keeps its own; XNNPACK sees the new", async () => {
    await tf.setBackend("wasm");
    const backend = asWasmBackend(tf.backend());
    const x = tf.tensor(data(40, 4 * 64), [4, 64]) as tf.Tensor2D;
    // One output column: the forward product is tfjs's own (XNNPACK), which keeps packed weights by tensor id.
    const model = () => tf.tidy(() => ({ w: tf.variable(tf.tensor(data(41, 64), [64, 1])), b: tf.variable(tf.tensor([0.5])) }));
    const [ours, copied] = [model(), model()];
    const [opt, opt2] = [new FusedAdam(0.05), new FusedAdam(0.05)];
    const y = ({ w, b }: { w: tf.Variable; b: tf.Variable }) => fusedMatMul(x, w as tf.Tensor2D, b, "linear");
    const loss = (m: { w: tf.Variable; b: tf.Variable }) => () => tf.sum(tf.square(y(m))) as tf.Scalar;
    const offset = (t: tf.Tensor) => backend.dataIdMap.get(t.dataId).memoryOffset;
    for (let step = 0; step < 3; step++) {
      const at = [offset(ours.w), offset(ours.b)];
      const held = tf.clone(copied.w); // shares copied.w's data: its update must go to new memory
      const before = held.dataSync().slice();
      tf.tidy(() => { y(ours); }); // XNNPACK packs ours.w and ours.b
      tf.dispose([opt.minimize(loss(ours), true), opt2.minimize(loss(copied), true)] as tf.Tensor[]);
      assert.deepEqual([offset(ours.w), offset(ours.b)], at, "updated where the variables lie");
      assert.notEqual(offset(copied.w), offset(held), "a held clone's memory left alone");
      assert.deepEqual(held.dataSync(), before);
      assertClose(ours.w.dataSync(), copied.w.dataSync(), 0, `step ${step}: in place and not`);
      const copy = (t: tf.Tensor) => tf.tensor(t.dataSync(), t.shape) as tf.Variable;
      const fresh = tf.tidy(() => y({ w: copy(ours.w), b: copy(ours.b) }).dataSync());
      assertClose(tf.tidy(() => y(ours).dataSync()), fresh, 0, `step ${step}: the product with the updated weights`);
      held.dispose();
    }
    tf.dispose([x, ours.w, ours.b, copied.w, copied.b]);
    opt.dispose();
    opt2.dispose();
  });
  it("defers products inside `deferred` to the helpers: the same values to the bit, readers wait, inputs may go at once, nothing is left", async () => {
    await tf.setBackend("wasm");
    const backend = asWasmBackend(tf.backend());
    const dataIds = () => (backend as unknown as { numDataIds(): number }).numDataIds();
    const [tensors, ids] = [tf.memory().numTensors, dataIds()];
    // A VAE layer's weight gradient (aᵀ·b, shared out), a product one share does, a transposed b, one output column.
    const cases: [number, number, number, boolean, boolean][] = [[128, 784, 512, true, false], [64, 96, 40, false, false], [33, 70, 16, false, true], [256, 128, 1, true, false]];
    for (const [m, k, n, ta, tb] of cases) {
      const a = tf.tensor(data(m + 1, m * k), ta ? [k, m] : [m, k]);
      const b = tf.tensor(data(n + 2, k * n), tb ? [n, k] : [k, n]);
      const want = tf.matMul(a, b, ta, tb);
      const got = deferred(() => tf.matMul(a, b, ta, tb));
      if (wasmThreads() > 1) assert.ok(pending(got), `[${m}, ${k}]·[${k}, ${n}] was not left to the helpers`);
      tf.dispose([a, b]); // what it reads stays until it ends, even when its memory is asked for again
      const reuse = [tf.fill(ta ? [k, m] : [m, k], 7), tf.fill(tb ? [n, k] : [k, n], 7)];
      assertClose(got.dataSync(), want.dataSync(), 0, `[${m}, ${k}]·[${k}, ${n}] deferred`);
      assert.ok(!pending(got), "still listed as pending once read");
      tf.dispose([want, got, ...reuse]);
    }
    // More jobs than the pool has slots, half of them disposed unread (which waits for them too).
    const [x, y] = [tf.tensor(data(5, 96 * 200), [96, 200]), tf.tensor(data(6, 96 * 64), [96, 64])];
    const want = tf.matMul(x, y, true, false);
    const jobs = Array.from({ length: 20 }, () => deferred(() => tf.matMul(x, y, true, false)));
    jobs.forEach((t, i) => {
      if (i % 2 === 0) assertClose(t.dataSync(), want.dataSync(), 0, `job ${i} of 20`);
      t.dispose();
    });
    tf.dispose([x, y, want]);
    assert.equal(tf.memory().numTensors, tensors, "tensors left behind");
    assert.equal(dataIds(), ids, "heap blocks left behind (a job's hold on its inputs never let go)");
  });
  it("starts a deferred job that reads another's result only once that one has finished, on four threads (Adam after a weight gradient)", () => {
    // A fresh process with three helpers: two take the product's last shares while the third
    // looks for work; an update that started early would read a gradient half written.
    const src = (file: string) => JSON.stringify(path.resolve(__dirname, "..", "src", file));
    const script = `
      const lab = require(${src("index.js")});
      const tf = require("@tensorflow/tfjs");
      const { deferred } = require(${src("backend/simd.js")});
      const { ADAM_KERNEL, FusedAdam } = require(${src("train/adam.js")});
      const data = (seed, n) => { let s = seed; return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5); };
      (async () => {
        const info = await lab.ready({ backend: "wasm", quiet: true });
        new FusedAdam(0.01); // registers the kernel
        const attrs = { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, bc1: 0.1, bc2: 0.001 };
        const x = tf.tensor(data(1, 128 * 2048), [128, 2048]);
        const [w, m, v] = [3, 4, 5].map((seed) => tf.abs(tf.tensor(data(seed, 2048 * 1024), [2048, 1024])));
        // Two gradients in turn: a round's gradient often lands where the last one lay, which then
        // holds the other's values, not this one's.
        const gs = [2, 6].map((seed) => tf.tensor(data(seed, 128 * 1024), [128, 1024]));
        const wants = gs.map((g) => tf.engine().runKernel(ADAM_KERNEL, { value: w, m, v, grad: tf.matMul(x, g, true, false) }, attrs).map((t) => t.dataSync()));
        let differ = 0;
        for (let round = 0; round < 16; round++) {
          const [g, want] = [gs[round % 2], wants[round % 2]];
          const grad = deferred(() => tf.matMul(x, g, true, false));
          const got = deferred(() => tf.engine().runKernel(ADAM_KERNEL, { value: w, m, v, grad }, attrs));
          // Half the rounds asleep meanwhile (the helpers run both jobs on their own), half reading
          // at once (this thread finishes the product with them, running other deferred shares while it waits).
          if (round % 4 < 2) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 150);
          got.forEach((t, i) => { const d = t.dataSync(); for (let j = 0; j < d.length; j++) if (d[j] !== want[i][j]) differ++; });
          tf.dispose([grad, ...got]);
        }
        console.log(JSON.stringify({ threads: info.threads, differ }));
      })();`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 120_000, env: { ...process.env, LATENTLAB_WASM_THREADS: "4" } });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout.trim().split("\n").pop() as string) as { threads: number; differ: number };
    assert.equal(got.threads, 4);
    assert.equal(got.differ, 0, "values of an update that did not wait for its gradient");
  });
  it("FusedAdam gives the same values when its updates follow gradients the helpers still compute as when every gradient is ready", async () => {
    await tf.setBackend("wasm");
    const x = tf.tensor(data(50, 128 * 96), [128, 96]) as tf.Tensor2D;
    const model = () => tf.tidy(() => [tf.variable(tf.tensor(data(51, 96 * 64), [96, 64])), tf.variable(tf.tensor(data(52, 64), [64])), tf.variable(tf.tensor(data(53, 64 * 32), [64, 32]))]);
    const loss = ([w1, b1, w2]: tf.Variable[]) => () => tf.sum(tf.square(fusedMatMul(fusedMatMul(x, w1 as tf.Tensor2D, b1, "relu"), w2 as tf.Tensor2D, null, "linear"))) as tf.Scalar;
    const [deferredRun, plain] = [model(), model()];
    const [opt, opt2] = [new FusedAdam(0.01), new FusedAdam(0.01)];
    for (let step = 0; step < 3; step++) {
      tf.dispose(opt.minimize(loss(deferredRun), true) as tf.Tensor);
      // The same gradients, each read (so finished) before the updates: none follows a product still running.
      const { grads } = tf.variableGrads(loss(plain), plain);
      for (const g of Object.values(grads)) g.dataSync();
      opt2.applyGradients(grads);
      tf.dispose(Object.values(grads));
      deferredRun.forEach((v, i) => assertClose(v.dataSync(), plain[i].dataSync(), 0, `step ${step}, variable ${i}`));
    }
    tf.dispose([x, ...deferredRun, ...plain]);
    opt.dispose();
    opt2.dispose();
  });
  it("gives each thread its own scratch: a share's scratch argument is its thread's slot, nothing else is written", async () => {
    await tf.setBackend("wasm");
    const backend = asWasmBackend(tf.backend());
    const floats = 65536 - 6; // slots of 256 KB, 24 bytes of each left unused
    const scratch = threadScratch(backend, floats, 0);
    try {
      assert.equal(scratch.at % 64, 0);
      assert.equal(scratch.bytes, 4 * 65536);
      const first = byteOffset(backend, scratch.info);
      const end = first + 4 * sizeOf(scratch.info.shape);
      assert.ok(scratch.at >= first && scratch.at + wasmThreads() * scratch.bytes <= end);
      // Shares long enough (each zeroes its 256 KB) for every thread to take some: tried again
      // (for up to 2 s) while a helper is still starting or wakes late on a busy machine.
      let most = 0;
      for (let attempt = 0; attempt < 40 && most < wasmThreads(); attempt++) {
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50));
        new Uint8Array(backend.wasm.HEAPU8.buffer).fill(7, first, end);
        // Each share's scratch argument is given as 0: runShares puts the thread's slot in.
        runShares(backend, "zero", Array.from({ length: 64 }, () => [0, 4 * floats]), scratch);
        const bytes = new Uint8Array(backend.wasm.HEAPU8.buffer).slice(first, end);
        const used = new Set<number>();
        for (let i = 0; i < bytes.length; i++) {
          const at = first + i - scratch.at;
          const slot = Math.floor(at / scratch.bytes);
          const inSlot = at >= 0 && slot < wasmThreads() && at % scratch.bytes < 4 * floats;
          if (bytes[i] === 0) {
            assert.ok(inSlot, `byte ${at} from the first slot was written`);
            used.add(slot);
          } else {
            assert.equal(bytes[i], 7);
          }
        }
        for (const slot of used) {
          const from = scratch.at - first + slot * scratch.bytes;
          assert.ok(bytes.slice(from, from + 4 * floats).every((b) => b === 0), `slot ${slot} zeroed in part`);
        }
        most = Math.max(most, used.size);
      }
      assert.equal(most, wasmThreads(), "the threads did not each use their own slot");
    } finally {
      backend.disposeData(scratch.info.dataId);
    }
  });
  it("wakes helpers that have gone to sleep: jobs after a pause longer than the threads watch for (SPIN_MS) still share out", async () => {
    await tf.setBackend("wasm");
    const backend = asWasmBackend(tf.backend());
    const floats = 16384;
    const scratch = threadScratch(backend, floats, 0);
    try {
      const heap = () => new Float32Array(backend.wasm.HEAPU8.buffer);
      const slotsUsed = () => {
        const h = heap();
        let used = 0;
        for (let t = 0; t < wasmThreads(); t++) if (h[(scratch.at + t * scratch.bytes) / 4] === 0) used++;
        return used;
      };
      let most = 0;
      for (let attempt = 0; attempt < 40 && most < wasmThreads(); attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 10 * SPIN_MS + 5)); // every thread asleep
        heap().fill(7, scratch.at / 4, (scratch.at + wasmThreads() * scratch.bytes) / 4);
        runShares(backend, "zero", Array.from({ length: 64 }, () => [0, 4 * floats]), scratch);
        most = Math.max(most, slotsUsed());
      }
      assert.equal(most, wasmThreads(), "a sleeping helper never took a share");
    } finally {
      backend.disposeData(scratch.info.dataId);
    }
  });
  it("finishes every share of a job before it returns, over thousands of short jobs of changing sizes, some after the helpers fell asleep", async () => {
    await tf.setBackend("wasm");
    const backend = asWasmBackend(tf.backend());
    const run = 16384; // floats a share copies: long enough for a helper to be at work when the caller ends its own
    const [src, dst] = [tf.range(0, 21 * run, 1, "float32"), tf.zeros([13 * run])];
    try {
      const [srcAt, dstAt] = [src, dst].map((t) => byteOffset(backend, t));
      for (let job = 0; job < 2000; job++) {
        if (job % 500 === 499) await new Promise((resolve) => setTimeout(resolve, 10 * SPIN_MS + 5));
        const count = 1 + (job % 13);
        const shift = job % 8;
        // Share i copies src[run·(i + shift) …] to dst[run·i …].
        runShares(backend, "copyRows", Array.from({ length: count }, (_, i) => [srcAt + 4 * run * (i + shift), 0, dstAt + 4 * run * i, 0, 1, 4 * run]));
        const got = new Float32Array(backend.wasm.HEAPU8.buffer, dstAt, run * count);
        for (let i = 0; i < run * count; i++) {
          if (got[i] !== run * shift + i) assert.fail(`job ${job} (${count} shares): dst[${i}] = ${got[i]}, not ${run * shift + i}`);
        }
      }
    } finally {
      tf.dispose([src, dst]);
    }
  });
  it("awaitChange returns what a value became, after watching it or after sleeping until a notify", async () => {
    const ctl = new Int32Array(new SharedArrayBuffer(8));
    assert.equal(awaitChange(ctl, 0, 5), 0, "a value that already differs returns at once");
    // Another thread stores 7 well after SPIN_MS (its own start takes longer still).
    const source = `const { workerData } = require("worker_threads");
      const c = new Int32Array(workerData);
      const t = Date.now();
      while (Date.now() - t < 30);
      Atomics.store(c, 1, 7);
      Atomics.notify(c, 1);`;
    const worker = new Worker(source, { eval: true, workerData: ctl.buffer });
    const t0 = performance.now();
    assert.equal(awaitChange(ctl, 1, 0), 7);
    assert.ok(performance.now() - t0 >= 30, "returned before the store");
    await worker.terminate();
  });
});

describe("Concat and SplitV on wasm (block copies)", () => {
  const cases: [number[], number, number[]][] = [
    [[2, 3, 4, 6], 3, [2, 4]],
    [[2, 3, 4, 6], 1, [1, 0, 2]],
    [[5, 7], 0, [3, 2]],
    [[3, 5], 1, [1, 1, 3]],
    [[4, 9], -1, [4, 5]],
    // 2.5 MB: copied in shares, by two threads where there are two.
    [[25, 28, 28, 36], 3, [12, 24]],
  ];
  for (const [shape, axis, sizes] of cases) {
    it(`split [${shape}] into ${JSON.stringify(sizes)} along ${axis}, and concat back (values and gradients)`, async () => {
      const w = sizes.map((_, i) => i + 1);
      await compare("split", (x) => tf.addN(tf.split(x, sizes, axis).map((p, i) => tf.mul(tf.sum(p), w[i]))), [{ shape, seed: 41 }]);
      const parts = sizes.map((s, i) => ({ shape: shape.map((d, k) => (k === (axis + shape.length) % shape.length ? s : d)), seed: 42 + i }));
      await compare("concat", (...xs) => tf.concat(xs, axis), parts);
    });
  }
  it("int32 and bool values", async () => {
    const run = () => {
      const ints = tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32");
      const bools = tf.tensor2d([[1, 0, 1], [0, 0, 1]], [2, 3], "bool");
      const [a, b] = tf.split(ints, [1, 2], 1);
      const [c, d] = tf.split(bools, [2, 1], 1);
      return [tf.cast(tf.concat([b, a], 1), "float32"), tf.cast(tf.concat([d, c], 1), "float32"), tf.cast(tf.concat([ints, ints], 0), "float32")];
    };
    const ref = await on("cpu", run);
    const got = await on("wasm", run);
    ref.forEach((r, i) => assertClose(got[i], r, 0, `dtype case ${i}`));
  });
});
