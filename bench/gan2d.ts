/**
 * GAN mode coverage on 2-D mixtures, by the PacGAN/VEEGAN protocol, next to the published rows.
 *
 * Trains the default 2-D GAN (`lab.gan({ data })`, nothing tuned per dataset) on ring8 and grid25
 * for STEPS steps over 5 seeds, then scores 2,500 samples: modes captured (a mode with at least
 * one sample within 3 std), the share of high-quality samples (within 3 std of their nearest
 * mode), and the reverse KL of the mode histogram against uniform.
 *
 *   npm run bench -- gan2d            (STEPS=5000 SEEDS=5 by default)
 */
import * as lab from "latentlab";

const STEPS = Number(process.env.STEPS ?? 5000);
const SEEDS = Number(process.env.SEEDS ?? 5);

const PUBLISHED: Record<string, [string, number, number][]> = {
  ring8: [["plain GAN", 6.3, 98.2], ["PacGAN4", 7.8, 95.9]],
  grid25: [["plain GAN", 17.3, 94.8], ["PacGAN4", 24.8, 93.6], ["VEEGAN", 24.6, 40]],
};

async function main(): Promise<void> {
  const info = await lab.ready();
  console.log(`GAN mode coverage: default lab.gan, ${STEPS} steps, ${SEEDS} seeds, backend ${info.backend}\n`);
  for (const name of ["ring8", "grid25"] as const) {
    const rows: { modes: number; hq: number; kl: number; seconds: number }[] = [];
    for (let seed = 0; seed < SEEDS; seed++) {
      const data = name === "ring8" ? lab.data.ring8({ seed }) : lab.data.grid25({ seed });
      const model = lab.gan({ data, seed });
      const t = performance.now();
      await model.train({ steps: STEPS, live: false });
      const seconds = (performance.now() - t) / 1000;
      const e = model.evaluate({ seed: 1000 + seed });
      rows.push({ modes: e.modesCaptured, hq: 100 * e.highQuality, kl: e.reverseKL, seconds });
      console.log(`  ${name} seed ${seed}: ${e.modesCaptured}/${e.modes} modes, ${(100 * e.highQuality).toFixed(1)}% HQ, reverse KL ${e.reverseKL.toFixed(3)}, ${seconds.toFixed(1)} s`);
      model.dispose();
      data.dispose();
    }
    const mean = (k: "modes" | "hq" | "kl" | "seconds") => rows.reduce((a, r) => a + r[k], 0) / rows.length;
    const total = name === "ring8" ? 8 : 25;
    console.log(`\n  ${name}                     modes        high quality   reverse KL   s/run`);
    console.log(`  LatentLab (mean of ${SEEDS})      ${mean("modes").toFixed(1).padStart(4)}/${total}       ${mean("hq").toFixed(1).padStart(5)} %       ${mean("kl").toFixed(3)}       ${mean("seconds").toFixed(0)}`);
    for (const [who, modes, hq] of PUBLISHED[name]) {
      console.log(`  ${(who + " (published, 10)").padEnd(27)} ${modes.toFixed(1).padStart(4)}/${total}       ${hq.toFixed(1).padStart(5)} %`);
    }
    console.log("");
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
