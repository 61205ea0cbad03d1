/**
 * The names Transformer: held-out negative log-likelihood in nats per character and the share of
 * generated names not in the training set, after STEPS training steps of the default model
 * (~205k parameters), next to makemore's figure (≈ 1.92 nats/char on 32k US names).
 *
 *   npm run bench -- transformer        (STEPS=2500)
 */
import * as lab from "latentlab";

const STEPS = Number(process.env.STEPS ?? 2500);

async function main(): Promise<void> {
  const info = await lab.ready();
  const train = lab.data.names();
  const test = lab.data.names({ split: "test" });
  const model = lab.transformer({ data: train, seed: 0 });
  const params = Object.values(model.parameterCounts()).reduce((a, b) => a + b, 0);
  console.log(`names Transformer · ${params.toLocaleString("en-US")} parameters · ${train.size} training / ${test.size} held-out names · backend ${info.backend}`);
  const t = performance.now();
  for (let done = 0; done < STEPS; done += 500) {
    await model.train({ steps: Math.min(500, STEPS - done), live: false });
    console.log(`  step ${model.stepCount}: held-out ${model.evaluate(test).nll.toFixed(3)} nats/char, train (last 100 steps) ${model.history.recentMean(100).loss.toFixed(3)}, ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  const { nll } = model.evaluate(test);
  const { novel } = model.novelty({ n: 1000, seed: 1 });
  console.log(`\n  LatentLab: ${nll.toFixed(3)} nats/char held-out after ${STEPS} steps (${((performance.now() - t) / 60000).toFixed(1)} min); ${(100 * novel).toFixed(1)}% of 1,000 samples are new names`);
  console.log(`  makemore Transformer (~200k parameters, 32,033 names): ≈ 1.92 nats/char  ·  aim here: ≤ 2.1`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
