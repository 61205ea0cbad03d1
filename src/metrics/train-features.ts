/**
 * Trains the feature networks of src/metrics/features.ts and writes their weights and cards:
 *
 *   npm run train:features                          (both, into src/metrics/weights)
 *   npm run train:features -- mnist --out DIR       (one, elsewhere)
 *
 * MNIST: the 8,500-digit train split, judged on the 1,500-digit test split. Fashion-MNIST: 20,000
 * of the 60,000 training images, judged on the 10,000 test images. Adam 1e-3 with a step decay,
 * batch 64, dropout 0.3, each image shifted at random by up to 2 pixels; the saved weights are a
 * moving average (decay 0.998) of the trained ones. Seeded: a re-run on the same backend re-creates
 * the same weights.
 */
import * as tf from "@tensorflow/tfjs";
import * as fs from "node:fs";
import * as path from "node:path";
import { ready } from "../backend/ready";
import { Dataset } from "../data/dataset";
import { fashionMnist, mnist } from "../data/mnist";
import { rng as makeRng } from "../random/rng";
import { FusedAdam } from "../train/adam";
import { FeatureCard, FeatureSet, buildClassifier, weightsDir } from "./features";

const SETTINGS: Record<FeatureSet, { epochs: number; load: () => [Dataset, Dataset] }> = {
  mnist: { epochs: 16, load: () => [mnist({ split: "train" }), mnist({ split: "test" })] },
  fashion: { epochs: 8, load: () => [fashionMnist({ split: "train", n: 20_000, seed: 0 }), fashionMnist({ split: "test" })] },
};

/** Each image shifted by up to 2 px in each direction (its own shift): pad to 32×32, crop 28×28. */
function shifted(x: tf.Tensor, offsets: Int32Array): tf.Tensor4D {
  return tf.tidy(() => {
    const n = x.shape[0];
    const padded = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]]) as tf.Tensor4D;
    const boxes = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) {
      const dy = offsets[2 * i];
      const dx = offsets[2 * i + 1];
      boxes.set([dy / 31, dx / 31, (dy + 27) / 31, (dx + 27) / 31], 4 * i);
    }
    const idx = tf.tensor1d(Int32Array.from({ length: n }, (_, i) => i), "int32");
    return tf.image.cropAndResize(padded, tf.tensor2d(boxes, [n, 4]), idx, [28, 28], "bilinear"); // exact at these integer offsets (wasm's "nearest" is off by one)
  });
}

function accuracy(net: (x: tf.Tensor) => tf.Tensor, data: Dataset): number {
  let correct = 0;
  for (let s = 0; s < data.size; s += 500) {
    const m = Math.min(500, data.size - s);
    correct += tf.tidy(() => {
      const pred = tf.argMax(net(data.x.slice(s, m)), 1);
      return tf.sum(tf.cast(tf.equal(pred, (data.labels as tf.Tensor1D).slice(s, m)), "int32")).dataSync()[0];
    });
  }
  return correct / data.size;
}

async function trainOne(set: FeatureSet, dir: string): Promise<FeatureCard> {
  const { epochs, load } = SETTINGS[set];
  const [train, test] = load();
  const seed = 0;
  const r = makeRng(seed).fork(`features-${set}`);
  const { features, head } = buildClassifier(r.fork("init"));
  const vars = [...features.variables().values(), ...head.variables().values()];
  const forward = (x: tf.Tensor, training = false) => head.apply(features.apply(x, { training }), { training });
  // A moving average of the weights (Polyak averaging) is what gets evaluated and saved.
  const average = vars.map((v) => tf.variable(v.clone(), false));
  const swap = () => vars.forEach((v, i) => tf.tidy(() => { const w = v.clone(); v.assign(average[i]); average[i].assign(w); }));
  const batch = 64;
  const steps = Math.floor(train.size / batch);
  const shifts = r.fork("shift");
  const t0 = Date.now();
  const opt = new FusedAdam(1e-3);
  for (let epoch = 0; epoch < epochs; epoch++) {
    opt.learningRate = 1e-3 * 0.5 ** Math.floor(epoch / 4); // halve every 4 epochs
    let loss = 0;
    for (const b of train.batches({ batchSize: batch, seed, epoch, dropLast: true })) {
      const offsets = Int32Array.from({ length: 2 * batch }, () => shifts.int(5));
      const out = tf.tidy(() => {
        const x = shifted(b.x, offsets);
        const y = tf.oneHot(b.labels as tf.Tensor1D, 10);
        return opt.minimize(() => tf.losses.softmaxCrossEntropy(y, forward(x, true)) as tf.Scalar, true, vars) as tf.Scalar;
      });
      tf.tidy(() => vars.forEach((v, i) => average[i].assign(tf.add(tf.mul(average[i], 0.998), tf.mul(v, 0.002)))));
      loss += out.dataSync()[0] / steps;
      out.dispose();
    }
    swap();
    const averaged = accuracy(forward, test);
    swap();
    process.stdout.write(`${set} epoch ${epoch + 1}/${epochs}: loss ${loss.toFixed(4)}, test accuracy ${(100 * accuracy(forward, test)).toFixed(2)}%, averaged weights ${(100 * averaged).toFixed(2)}% (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
  opt.dispose();
  swap(); // keep the averaged weights
  tf.dispose(average);
  const acc = accuracy(forward, test);
  // Weights: float32 back to back; the card records names, shapes and offsets.
  const entries: FeatureCard["variables"] = [];
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, v] of [...features.variables(), ...head.variables()]) {
    const data = v.dataSync() as Float32Array;
    chunks.push(Buffer.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
    entries.push({ name, shape: v.shape, offset });
    offset += data.byteLength;
  }
  const card: FeatureCard = {
    dataset: set,
    testAccuracy: Number(acc.toFixed(4)),
    testImages: test.size,
    trainImages: train.size,
    epochs,
    seed,
    trainedWith: `latentlab src/metrics/train-features.ts on ${tf.getBackend()}`,
    variables: entries,
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${set}-classifier.bin`), Buffer.concat(chunks));
  fs.writeFileSync(path.join(dir, `${set}-classifier.json`), JSON.stringify(card, null, 1) + "\n");
  features.dispose();
  head.dispose();
  return card;
}

async function main(): Promise<void> {
  await ready();
  const args = process.argv.slice(2);
  const at = args.indexOf("--out");
  const dir = at >= 0 ? path.resolve(args.splice(at, 2)[1]) : weightsDir();
  const asked = args as FeatureSet[];
  for (const set of asked.length ? asked : (["mnist", "fashion"] as FeatureSet[])) {
    if (!(set in SETTINGS)) throw new Error(`Unknown feature set "${set}"; use mnist or fashion.`);
    const card = await trainOne(set, dir);
    console.log(`${set}: held-out accuracy ${(100 * card.testAccuracy).toFixed(2)}% on ${card.testImages} images; weights in ${dir}`);
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
