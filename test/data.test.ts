import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import * as data from "../src/data";
import { ready } from "../src/backend/ready";
import { toBundle } from "../src/display/show";
import { expectNoLeak } from "../src/testing/memory";
import { encodePng } from "../src/views/png";

before(() => ready({ backend: "wasm", quiet: true }));

const toys = { ring8: data.ring8, grid25: data.grid25, moons: data.moons, circles: data.circles, spiral: data.spiral, checkerboard: data.checkerboard, pinwheel: data.pinwheel };

describe("2-D toys", () => {
  for (const [name, make] of Object.entries(toys)) {
    it(`${name} is deterministic under a seed and differs across seeds`, () => {
      const a = make({ n: 500, seed: 1 });
      const b = make({ n: 500, seed: 1 });
      const c = make({ n: 500, seed: 2 });
      assert.deepEqual(a.x.shape, [500, 2]);
      assert.deepEqual(a.x.dataSync(), b.x.dataSync());
      assert.notDeepEqual(a.x.dataSync(), c.x.dataSync());
      assert.equal(a.hash, b.hash);
      assert.notEqual(a.hash, c.hash);
      [a, b, c].forEach((d) => d.dispose());
    });
  }

  function modeStats(d: data.Dataset) {
    const xy = d.x.dataSync();
    const lab = (d.labels as tf.Tensor).dataSync();
    const k = (d.modes as number[][]).length;
    const sum = Array.from({ length: k }, () => [0, 0, 0]);
    const sq = Array.from({ length: k }, () => 0);
    for (let i = 0; i < lab.length; i++) {
      const m = lab[i];
      sum[m][0] += xy[2 * i];
      sum[m][1] += xy[2 * i + 1];
      sum[m][2] += 1;
    }
    const means = sum.map(([x, y, n]) => [x / n, y / n]);
    for (let i = 0; i < lab.length; i++) {
      const m = lab[i];
      sq[m] += (xy[2 * i] - means[m][0]) ** 2 + (xy[2 * i + 1] - means[m][1]) ** 2;
    }
    return { means, stds: sq.map((s, m) => Math.sqrt(s / (2 * sum[m][2]))), counts: sum.map((s) => s[2]) };
  }

  it("ring8 matches PacGAN: 8 means on the unit circle, std 0.01", () => {
    const d = data.ring8({ n: 40_000, seed: 3 });
    assert.equal(d.modeStd, 0.01);
    const { means, stds, counts } = modeStats(d);
    means.forEach(([x, y], k) => {
      assert.ok(Math.abs(x - Math.cos((2 * Math.PI * k) / 8)) < 0.001 && Math.abs(y - Math.sin((2 * Math.PI * k) / 8)) < 0.001, `mode ${k} at ${x},${y}`);
      assert.ok(Math.abs(stds[k] - 0.01) < 0.0005, `std ${stds[k]}`);
      assert.ok(counts[k] > 4500 && counts[k] < 5500, "modes are equally likely");
    });
    d.dispose();
  });

  it("grid25 matches PacGAN: means at {-4,-2,0,2,4}², std 0.05", () => {
    const d = data.grid25({ n: 50_000, seed: 4 });
    const { means, stds } = modeStats(d);
    means.forEach(([x, y], k) => {
      const [ex, ey] = (d.modes as number[][])[k];
      assert.ok([-4, -2, 0, 2, 4].includes(ex) && [-4, -2, 0, 2, 4].includes(ey));
      assert.ok(Math.abs(x - ex) < 0.01 && Math.abs(y - ey) < 0.01, `mode ${k}`);
      assert.ok(Math.abs(stds[k] - 0.05) < 0.004, `std ${stds[k]}`);
    });
    assert.equal(new Set((d.modes as number[][]).map((m) => m.join())).size, 25);
    d.dispose();
  });

  it("points() takes pairs or a flat list, and explains bad input", () => {
    const d = data.points([[0, 1], [2, 3]]);
    assert.deepEqual([...d.x.dataSync()], [0, 1, 2, 3]);
    d.dispose();
    assert.throws(() => data.points([[0, 1], [2]]), /\[x, y\] pairs; item 1/);
    assert.throws(() => data.points([1, 2, 3]), /even count/);
    assert.throws(() => data.points([]), /no points/);
    assert.throws(() => data.points([0, NaN]), /non-finite coordinate at point 0/);
  });

  it("rejects a bad n with a clear message", () => {
    assert.throws(() => data.ring8({ n: -5 }), /ring8: n must be a positive integer, got -5/);
    assert.throws(() => data.moons({ n: 2.5 }), /positive integer/);
  });
});

describe("batching", () => {
  it("covers every sample once per epoch, reshuffles per epoch, and leaks nothing", async () => {
    const d = data.moons({ n: 103, seed: 0 });
    const seen: number[] = [];
    await expectNoLeak(() => {
      for (const b of d.batches({ batchSize: 10, seed: 5 })) {
        assert.equal(b.x.shape[0], b.indices.length);
        seen.push(...b.indices);
      }
    }, "one epoch of batches");
    assert.equal(seen.length, 103);
    assert.deepEqual([...seen].sort((a, b) => a - b), [...Array(103).keys()]);
    const e0 = [...d.order({ seed: 5, epoch: 0 })];
    const e1 = [...d.order({ seed: 5, epoch: 1 })];
    assert.notDeepEqual(e0, e1);
    assert.deepEqual(e0, [...d.order({ seed: 5, epoch: 0 })], "an epoch's order is a function of seed and epoch");
    d.dispose();
  });

  it("drops the last partial batch when asked, resumes mid-epoch, and disposes on break", async () => {
    const d = data.circles({ n: 25, seed: 0 });
    assert.equal([...d.batches({ batchSize: 10, dropLast: true })].length, 2);
    const all = [...d.batches({ batchSize: 10, seed: 1 })].map((b) => [...b.indices]);
    const resumed = [...d.batches({ batchSize: 10, seed: 1, startBatch: 1 })].map((b) => [...b.indices]);
    assert.deepEqual(resumed, all.slice(1));
    await expectNoLeak(() => {
      for (const b of d.batches({ batchSize: 4, seed: 1 })) {
        if (b.batch === 2) break;
      }
    }, "a loop that breaks early");
    const b = d.batches({ batchSize: 10, seed: 1 }).next().value as data.Batch;
    assert.equal(b.labels?.dtype, "int32");
    assert.throws(() => [...d.batches({ batchSize: 0 })], /batchSize.*positive integer, got 0/);
    assert.throws(() => [...d.batches({ batchSize: 50, dropLast: true })], /larger than circles's 25 samples/);
    d.dispose();
  });
});

describe("MNIST and Fashion-MNIST", () => {
  it("MNIST: fixed split, shapes, range and label counts", () => {
    const train = data.mnist();
    const test = data.mnist({ split: "test" });
    assert.deepEqual(train.x.shape, [8500, 28, 28, 1]);
    assert.deepEqual(test.x.shape, [1500, 28, 28, 1]);
    for (const d of [train, test]) {
      assert.equal(tf.min(d.x).dataSync()[0], 0);
      assert.equal(tf.max(d.x).dataSync()[0], 1);
      const counts = tf.bincount(d.labels as tf.Tensor1D, [], 10).dataSync();
      assert.ok(counts.every((c) => c > 100), `every digit present: ${counts}`);
    }
    const trainCounts = [...tf.bincount(train.labels as tf.Tensor1D, [], 10).dataSync()];
    assert.deepEqual(trainCounts, [851, 958, 842, 877, 833, 734, 862, 910, 802, 831]);
    assert.notEqual(train.hash, test.hash);
    const sub = data.mnist({ n: 100, seed: 3 });
    assert.deepEqual(sub.x.shape, [100, 28, 28, 1]);
    assert.throws(() => data.mnist({ n: 20_000 }), /n = 20000 is more than the 8500 samples available/);
    assert.throws(() => data.mnist({ n: -1 }), /n must be a positive integer, got -1/);
    assert.throws(() => data.mnist({ split: "validation" as never }), /split must be "train", "test" or "all"/);
    [train, test, sub].forEach((d) => d.dispose());
  });

  it("Fashion-MNIST: 60,000 + 10,000 from Debian's package, or a clear error naming the apt-get command", () => {
    const installed = fs.existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
    if (!installed && process.env.LATENTLAB_REQUIRE_JUPYTER !== "1") {
      assert.throws(() => data.fashionMnist(), /sudo apt-get install dataset-fashion-mnist/);
      return;
    }
    const test = data.fashionMnist({ split: "test" });
    assert.deepEqual(test.x.shape, [10_000, 28, 28, 1]);
    assert.equal(tf.max(test.x).dataSync()[0], 1);
    assert.equal(tf.min(test.x).dataSync()[0], 0);
    assert.deepEqual([...tf.bincount(test.labels as tf.Tensor1D, [], 10).dataSync()], Array(10).fill(1000));
    assert.equal(test.classes?.[9], "Ankle boot");
    const sub = data.fashionMnist({ split: "train", n: 600, seed: 1 });
    assert.deepEqual(sub.x.shape, [600, 28, 28, 1]);
    assert.throws(() => data.fashionMnist({ split: "test", n: 10_001 }), /more than the 10000 samples/);
    [test, sub].forEach((d) => d.dispose());
    const saved = process.env.LATENTLAB_FASHION_MNIST_DIR;
    process.env.LATENTLAB_FASHION_MNIST_DIR = "/nonexistent";
    try {
      assert.throws(() => data.fashionMnist(), /not installed.*apt-get install dataset-fashion-mnist.*never downloads/);
    } finally {
      if (saved === undefined) delete process.env.LATENTLAB_FASHION_MNIST_DIR;
      else process.env.LATENTLAB_FASHION_MNIST_DIR = saved;
    }
  });
});

describe("imageFolder", () => {
  function png(width: number, height: number, rgb: [number, number, number]): Buffer {
    const px = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) px.set([...rgb, 255], 4 * i);
    return encodePng(px, width, height);
  }

  it("reads, resizes and converts images, with sub-folders as classes", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ll-img-"));
    fs.mkdirSync(path.join(dir, "cats"));
    fs.mkdirSync(path.join(dir, "dogs"));
    fs.writeFileSync(path.join(dir, "cats", "a.png"), png(20, 10, [255, 0, 0]));
    fs.writeFileSync(path.join(dir, "dogs", "b.png"), png(7, 7, [0, 0, 255]));
    const rgb = await data.imageFolder(dir, { size: 8 });
    assert.deepEqual(rgb.x.shape, [2, 8, 8, 3]);
    assert.deepEqual(rgb.classes, ["cats", "dogs"]);
    assert.deepEqual([...(rgb.labels as tf.Tensor).dataSync()], [0, 1]);
    assert.deepEqual([...rgb.x.slice([0, 0, 0, 0], [1, 1, 1, 3]).dataSync()], [1, 0, 0]);
    const grey = await data.imageFolder(dir, { size: 4, channels: 1 });
    assert.deepEqual(grey.x.shape, [2, 4, 4, 1]);
    assert.ok(Math.abs(grey.x.dataSync()[0] - 0.299) < 0.01);
    rgb.dispose();
    grey.dispose();
  });

  it("skips non-images with one counted warning, and names a corrupt file", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ll-mixed-"));
    fs.writeFileSync(path.join(dir, "ok.png"), png(5, 5, [10, 20, 30]));
    fs.writeFileSync(path.join(dir, "notes.txt"), "hello");
    fs.writeFileSync(path.join(dir, "data.csv"), "1,2");
    const warnings: string[] = [];
    const d = await data.imageFolder(dir, { size: 5, warn: (m) => warnings.push(m) });
    assert.equal(d.size, 1);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /skipped 2 file\(s\) that are not images/);
    d.dispose();
    const full = png(16, 16, [1, 2, 3]);
    fs.writeFileSync(path.join(dir, "truncated.png"), full.subarray(0, Math.floor(full.length / 2)));
    await assert.rejects(data.imageFolder(dir, { warn: () => {} }), /cannot decode .*truncated\.png/);
  });

  it("names the path of a missing or empty folder, and rejects bad options", async () => {
    await assert.rejects(data.imageFolder("/no/such/folder"), /the folder \/no\/such\/folder does not exist/);
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "ll-empty-"));
    await assert.rejects(data.imageFolder(empty), new RegExp(`${empty} holds no images`));
    await assert.rejects(data.imageFolder(empty, { size: 0 }), /size must be an integer from 1 to 1024, got 0/);
    await assert.rejects(data.imageFolder(empty, { channels: 2 as never }), /channels must be 1 \(grey\) or 3 \(RGB\), got 2/);
  });
});

describe("names", () => {
  it("has a character vocabulary with '.' as the boundary, and disjoint splits", () => {
    const train = data.names();
    const test = data.names({ split: "test" });
    const vocab = train.vocab as data.Vocabulary;
    assert.equal(vocab.tokens[0], ".");
    assert.equal(vocab.decode(vocab.encode("emma")), "emma");
    const train0 = (train.strings as string[])[0];
    const row = [...train.x.slice([0, 0], [1, train.x.shape[1] as number]).dataSync()];
    assert.deepEqual(row.slice(0, train0.length + 2), [0, ...vocab.encode(train0), 0]);
    const trainSet = new Set(train.strings);
    assert.ok((test.strings as string[]).every((s) => !trainSet.has(s)));
    assert.ok(train.size > 7000 && test.size > 700);
    assert.throws(() => vocab.encode("zoë"), /"ë" .* is not in the vocabulary/);
    train.dispose();
    test.dispose();
  });
});

describe("datasets display themselves", () => {
  it("points as a chart with a static image, images as a PNG grid, text as lines", () => {
    const pts = data.ring8({ n: 100 });
    const b = toBundle(pts);
    assert.ok(b["application/vnd.plotly.v1+json"]);
    assert.equal(Buffer.from(String(b["image/png"]), "base64").subarray(1, 4).toString(), "PNG");
    const img = data.mnist({ split: "test", n: 40 });
    assert.ok(Buffer.from(String(toBundle(img)["image/png"]), "base64").subarray(1, 4).toString() === "PNG");
    const txt = data.names({ n: 20 });
    assert.match(String(toBundle(txt)["text/plain"]), /names-train-20: 20 text/);
    [pts, img, txt].forEach((d) => d.dispose());
  });
});

describe("figures", () => {
  it("draw ranges at the numbers' precision without hanging (one loss value, twice)", async () => {
    const { toSvg, niceTicks } = await import("../src/views/figure");
    const svg = toSvg({ traces: [{ type: "line", x: [1], y: [3.610405445098877] }, { type: "line", x: [1], y: [3.6104054450988774] }] });
    assert.match(svg, /^<svg/);
    assert.ok(niceTicks(3.6104054450988770, 3.6104054450988774, 5).length <= 50);
  });
});
