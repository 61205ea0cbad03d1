/**
 * The trainer every family shares, exercised through the smallest GAN: determinism, resuming
 * from checkpoints, leaks, guards, interrupts, the live dashboard, run cards and comparisons.
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { ready } from "../src/backend/ready";
import * as data from "../src/data";
import { record } from "../src/display/show";
import { runtime, InterruptedError } from "../src/display/runtime";
import { gan } from "../src/models/gan";
import { GanLoss, nonSaturating } from "../src/models/gan/losses";
import { compare } from "../src/train/card";
import { loadModel } from "../src/train/checkpoint";
import { NonFiniteLossError } from "../src/train/optimize";
import { expectNoLeakPerIteration } from "../src/testing/memory";

before(() => ready({ backend: "wasm", quiet: true }));

const ring = () => data.ring8({ n: 512, seed: 0 });
const tiny = (seed = 0, extra = {}) => gan({ data: ring(), preset: "tiny", seed, ...extra });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "ll-ckpt-"));

function weights(m: ReturnType<typeof tiny>): number[] {
  return [...m.variables().values()].flatMap((v) => [...v.dataSync()]);
}

describe("one trainer for every family", () => {
  it("two runs with the same seed give identical loss histories; another seed differs", async () => {
    const a = tiny(1);
    const b = tiny(1);
    const c = tiny(2);
    await a.train({ steps: 30, live: false });
    await b.train({ steps: 30, live: false });
    await c.train({ steps: 30, live: false });
    assert.deepEqual(a.history.losses, b.history.losses);
    assert.notDeepEqual(a.history.losses.d, c.history.losses.d);
    assert.equal(a.history.length, 30);
    [a, b, c].forEach((m) => m.dispose());
  });

  it("step, steps and train are the same verbs on the same history", async () => {
    const m = tiny(3);
    const s = await m.step();
    assert.ok(Number.isFinite(s.d) && Number.isFinite(s.g));
    const seen: number[] = [];
    for await (const l of m.steps(3)) seen.push(l.step);
    assert.deepEqual(seen, [2, 3, 4]);
    const only = await m.step("D");
    assert.deepEqual(Object.keys(only), ["d"]);
    assert.ok(Number.isNaN(m.history.losses.g[4]), "a D-only step records no g");
    const summary = await m.train({ steps: 5, live: false });
    assert.equal(summary.steps, 5);
    assert.equal(m.stepCount, 10);
    await assert.rejects(m.step("X"), /takes "D", "G" or "both"/);
    await assert.rejects(m.train({}), /needs \{ steps: N \} or \{ epochs: N \}/);
    m.dispose();
  });

  it("save at step k, load, continue to n: the history of an uninterrupted n-step run", async () => {
    const straight = tiny(4);
    await straight.train({ steps: 24, live: false });
    const first = tiny(4);
    await first.train({ steps: 10, live: false });
    const dir = path.join(tmp(), "ckpt");
    await first.save(dir);
    first.dispose();
    const resumed = await loadModel(dir);
    assert.equal(resumed.stepCount, 10);
    await resumed.train({ steps: 14, live: false });
    assert.deepEqual(resumed.history.losses, straight.history.losses);
    assert.deepEqual(weights(resumed as never), weights(straight));
    resumed.dispose();
    straight.dispose();
  });

  it("leaks no tensor over 200 steps", async () => {
    const m = tiny(5);
    await expectNoLeakPerIteration(() => m.step(), { warmup: 3, iterations: 200, label: "a GAN step" });
    m.dispose();
  });

  it("a NaN from a user loss stops training, names the term and step, and keeps the last good weights", async () => {
    let calls = 0;
    const poisoned: GanLoss = (inputs) => {
      calls += 1;
      const l = nonSaturating(inputs);
      return calls >= 9 ? { d: tf.mul(l.d, NaN) as tf.Scalar, g: l.g } : l;
    };
    const m = tiny(6, { loss: poisoned });
    const saved: number[][] = [];
    await assert.rejects(
      (async () => {
        for (;;) {
          saved.push(weights(m));
          await m.step();
        }
      })(),
      (e: Error) => {
        assert.ok(e instanceof NonFiniteLossError);
        assert.match(e.message, /The loss "d" is NaN at step 5/);
        assert.match(e.message, /weights are those from the last good update/);
        return true;
      },
    );
    assert.equal(m.stepCount, 4, "the failed step is not counted");
    assert.deepEqual(weights(m), saved[saved.length - 1], "the NaN update was not applied");
    await assert.rejects(m.train({ steps: 3, live: false }), /NaN/);
    m.dispose();
  });

  it("stops at a step boundary when interrupted, keeping weights and history", async () => {
    const m = tiny(7);
    await m.train({ steps: 3, live: false });
    const controller = new AbortController();
    const rt = runtime();
    const saved = rt.signal;
    rt.signal = controller.signal;
    try {
      const run = m.train({ steps: 1000, live: false });
      setTimeout(() => controller.abort(), 30);
      await assert.rejects(run, (e: Error) => e instanceof InterruptedError && /Interrupted before step \d+/.test(e.message));
    } finally {
      rt.signal = saved;
    }
    const at = m.stepCount;
    assert.ok(at > 3 && at < 1003);
    assert.equal(m.history.length, at);
    await m.train({ steps: 2, live: false });
    assert.equal(m.stepCount, at + 2, "training continues");
    m.dispose();
  });
});

describe("checkpoints refuse what they cannot trust", () => {
  it("missing, partial, damaged and mismatched checkpoints get clear errors", async () => {
    const m = tiny(8);
    await m.train({ steps: 3, live: false });
    const root = tmp();
    const dir = path.join(root, "good");
    await m.save(dir);
    await assert.rejects(loadModel(path.join(root, "nope")), /No checkpoint at .*nope: the folder does not exist/);
    const partial = path.join(root, "partial");
    fs.cpSync(dir, partial, { recursive: true });
    const w = path.join(partial, "weights.bin");
    fs.truncateSync(w, fs.statSync(w).size - 8);
    await assert.rejects(loadModel(partial), /incomplete: weights.bin has \d+ bytes, expected \d+/);
    const damaged = path.join(root, "damaged");
    fs.cpSync(dir, damaged, { recursive: true });
    const buf = fs.readFileSync(path.join(damaged, "weights.bin"));
    buf[0] ^= 0xff;
    fs.writeFileSync(path.join(damaged, "weights.bin"), buf);
    await assert.rejects(loadModel(damaged), /damaged: weights.bin does not match its checksum/);
    const nomanifest = path.join(root, "nomanifest");
    fs.cpSync(dir, nomanifest, { recursive: true });
    fs.rmSync(path.join(nomanifest, "checkpoint.json"));
    await assert.rejects(loadModel(nomanifest), /not a complete checkpoint: checkpoint.json is missing/);
    const other = data.ring8({ n: 512, seed: 99 });
    await assert.rejects(loadModel(dir, { data: other }), /trained on "ring8" .* but the dataset given is "ring8" .* allowDataChange/);
    const ok = await loadModel(dir, { data: other, allowDataChange: true });
    ok.dispose();
    m.dispose();
  });

  it("saving over a checkpoint swaps it whole and leaves no temporary folders", async () => {
    const m = tiny(9);
    const root = tmp();
    const dir = path.join(root, "ckpt");
    await m.save(dir);
    await m.train({ steps: 2, live: false });
    await m.save(dir);
    assert.deepEqual(fs.readdirSync(root), ["ckpt"]);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, "checkpoint.json"), "utf8")).step, 2);
    m.dispose();
  });

  it("a custom loss must be passed again to load", async () => {
    const mine: GanLoss = (i) => nonSaturating(i);
    const m = tiny(10, { loss: mine });
    const dir = path.join(tmp(), "c");
    await m.save(dir);
    await assert.rejects(loadModel(dir), /custom loss; pass it again: lab.load\(dir, \{ loss: myLoss \}\)/);
    const again = await loadModel(dir, { loss: mine });
    again.dispose();
    m.dispose();
  });
});

describe("dashboards, run cards, comparisons", () => {
  it("train({ live: true }) shows one output and updates it in place, ending on a full frame", async () => {
    const rec = record();
    const m = tiny(11);
    try {
      await m.train({ steps: 40, live: true, every: 10 });
    } finally {
      rec.restore();
    }
    const displays = rec.outputs.filter((o) => o.kind === "display");
    const updates = rec.outputs.filter((o) => o.kind === "update");
    assert.equal(displays.length, 1);
    assert.ok(updates.length >= 1, "the final frame is an update");
    assert.ok(updates.every((u) => u.displayId === displays[0].displayId));
    const last = updates[updates.length - 1].data as Record<string, unknown>;
    assert.ok(last["application/vnd.plotly.v1+json"], "interactive chart");
    assert.equal(Buffer.from(String(last["image/png"]), "base64").subarray(1, 4).toString(), "PNG", "the final frame carries a PNG");
    const earlier = updates.slice(0, -1).concat(displays).map((u) => u.data as Record<string, unknown>);
    assert.ok(earlier.every((d) => String(d["image/svg+xml"]).startsWith("<svg")), "frames in flight carry a cheap SVG");
    assert.match(String(last["text/plain"]), /gan: 40 of 40 steps/);
    m.dispose();
  });

  it("the run card says what was run; compare puts runs side by side", async () => {
    const a = tiny(12);
    const b = tiny(12, { loss: "hinge" });
    await a.train({ steps: 5, live: false });
    await b.train({ steps: 5, live: false });
    const card = a.card().card;
    assert.equal(card.family, "gan");
    assert.equal(card.seed, 12);
    assert.equal(card.data.hash, a.data.hash);
    assert.equal(card.backend.name, "wasm");
    assert.equal(card.steps, 5);
    assert.match(card.versions["@tensorflow/tfjs"], /^4\.22/);
    assert.ok(Number.isFinite(card.finalLosses.d));
    const cmp = compare({ builtin: a, hinge: b });
    const { header, rows } = cmp.table();
    assert.deepEqual(rows.map((r) => r[0]), ["builtin", "hinge"]);
    assert.ok(header.includes("final d"));
    assert.equal(cmp.figures().length, 2, "one chart per loss term");
    a.dispose();
    b.dispose();
  });
});
