/**
 * Diffusion and flow matching on 2-D mixtures: modes captured and % high-quality samples
 * (PacGAN protocol, 2,500 samples), for the default `lab.diffusion({ data })` on ring8 and grid25,
 * sampled with DDIM (η = 0, 50 steps) and DDPM (1000 steps), plus flow matching with 50 Euler
 * steps. The aim: all modes and ≥ 90 % high quality.
 *
 *   npm run bench -- diffusion2d        (STEPS=4000 SEEDS=3)
 */
import * as lab from "latentlab";

const STEPS = Number(process.env.STEPS ?? 4000);
const SEEDS = Number(process.env.SEEDS ?? 3);

async function main(): Promise<void> {
  const info = await lab.ready();
  console.log(`2-D diffusion: default lab.diffusion, ${STEPS} training steps, ${SEEDS} seeds, backend ${info.backend}\n`);
  for (const name of ["ring8", "grid25"] as const) {
    const rows: Record<string, { modes: number[]; hq: number[] }> = {};
    let seconds = 0;
    for (let seed = 0; seed < SEEDS; seed++) {
      const data = name === "ring8" ? lab.data.ring8({ seed }) : lab.data.grid25({ seed });
      for (const process of ["diffusion", "flow"] as const) {
        const model = lab.diffusion({ data, seed, process });
        const t = performance.now();
        await model.train({ steps: STEPS, live: false });
        seconds += (performance.now() - t) / 1000;
        const samplers = process === "flow" ? [lab.samplers.euler({ steps: 50 })] : [lab.samplers.ddim({ steps: 50 }), lab.samplers.ddpm({ steps: 1000 })];
        for (const sampler of samplers) {
          const e = lab.evaluate({ sample: (o) => model.sample({ ...o, sampler }) }, data, { n: 2500, seed: 100 + seed });
          const key = `${process === "flow" ? "flow matching, " : ""}${sampler.name}`;
          rows[key] ??= { modes: [], hq: [] };
          rows[key].modes.push(e.get("modes captured"));
          rows[key].hq.push(100 * e.get("high quality share"));
        }
        model.dispose();
      }
      data.dispose();
    }
    const total = name === "ring8" ? 8 : 25;
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    console.log(`  ${name}: ${(seconds / (2 * SEEDS)).toFixed(0)} s per training run`);
    for (const [k, r] of Object.entries(rows)) {
      console.log(`    ${k.padEnd(34)} ${mean(r.modes).toFixed(1).padStart(5)}/${total} modes   ${mean(r.hq).toFixed(1).padStart(5)} % high quality   (per seed: ${r.hq.map((x) => x.toFixed(0)).join(", ")})`);
    }
    console.log("");
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
