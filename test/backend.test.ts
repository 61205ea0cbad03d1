import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import * as fs from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { ready } from "../src/backend/ready";
import { wasmKernelNames } from "../src/backend/wasm-kernels";

function nativeInstalled(): boolean {
  try {
    require.resolve("@tensorflow/tfjs-node");
    return true;
  } catch {
    return false;
  }
}

describe("lab.ready", () => {
  it("chooses wasm when asked, with a reason, and registers the training kernels", async () => {
    const info = await ready({ backend: "wasm", quiet: true });
    assert.equal(info.backend, "wasm");
    assert.match(info.reason, /XNNPACK/);
    assert.equal(tf.getBackend(), "wasm");
    for (const k of ["Conv2DBackpropFilter", "Conv2DBackpropInput", "BatchMatMul", "UnsortedSegmentSum"]) {
      assert.ok(wasmKernelNames().includes(k));
      assert.ok(tf.getKernel(k, "wasm"), `${k} registered`);
    }
  });

  it("switches to cpu and back", async () => {
    assert.equal((await ready({ backend: "cpu", quiet: true })).backend, "cpu");
    assert.equal(tf.getBackend(), "cpu");
    assert.equal((await ready({ backend: "wasm", quiet: true })).backend, "wasm");
  });

  it("auto keeps the backend already chosen", async () => {
    await ready({ backend: "wasm", quiet: true });
    assert.equal((await ready({ quiet: true })).backend, "wasm");
  });

  it("uses tensorflow when installed, else says what is available and how to add it", async () => {
    if (nativeInstalled()) {
      assert.equal((await ready({ backend: "tensorflow", quiet: true })).backend, "tensorflow");
      await ready({ backend: "wasm", quiet: true });
      return;
    }
    await assert.rejects(ready({ backend: "tensorflow", quiet: true }), (e: Error) => {
      assert.match(e.message, /tensorflow backend is not available/);
      assert.match(e.message, /@tensorflow\/tfjs-node is not installed/);
      assert.match(e.message, /Available here: wasm, cpu/);
      assert.match(e.message, /npm install @tensorflow\/tfjs-node/);
      return true;
    });
    assert.equal(tf.getBackend(), "wasm", "a failed request leaves the current backend in place");
  });

  it("rejects an unknown LATENTLAB_BACKEND, naming the choices", async () => {
    const saved = process.env.LATENTLAB_BACKEND;
    process.env.LATENTLAB_BACKEND = "webgpu";
    try {
      await assert.rejects(ready({ quiet: true }), /LATENTLAB_BACKEND is "webgpu".*auto, tensorflow, wasm, cpu/);
      process.env.LATENTLAB_BACKEND = "cpu";
      assert.equal((await ready({ quiet: true })).backend, "cpu");
    } finally {
      if (saved === undefined) delete process.env.LATENTLAB_BACKEND;
      else process.env.LATENTLAB_BACKEND = saved;
      await ready({ backend: "wasm", quiet: true });
    }
  });

  it("runs the wasm backend on one thread per core by default (up to 4), or as asked: same losses as 1 thread, XNNPACK on one, and the process still exits; LATENTLAB_FMA=0 runs the kernels without fused multiply-adds", () => {
    // A fresh process each (the thread count is fixed when the backend starts); a DCGAN-shaped
    // model so that the convolutions are large enough for LatentLab's kernels to split them, then
    // a U-Net. XNNPACK stays on the calling thread (its spinning pool took a core from ours).
    const script = `
      const lab = require(${JSON.stringify(path.resolve(__dirname, "..", "src", "index.js"))});
      (async () => {
        const info = await lab.ready({ backend: "wasm", quiet: true });
        const m = lab.gan({ data: lab.data.mnist({ n: 256, seed: 0 }), batchSize: 32, seed: 0 });
        const losses = [];
        for (let i = 0; i < 3; i++) losses.push((await m.step()).d);
        m.dispose();
        // A U-Net: layer norms, skip concats and bias sums, whose SIMD kernels share rows between threads.
        const d = lab.diffusion({ data: lab.data.mnist({ n: 64, seed: 0 }), preset: "bench", batchSize: 8, seed: 0 });
        for (let i = 0; i < 2; i++) losses.push((await d.step()).loss);
        d.dispose();
        const xnnpack = require("@tensorflow/tfjs-backend-wasm").getThreadsCount();
        console.log(JSON.stringify({ reason: info.reason, threads: info.threads, xnnpack, losses }));
      })();`;
    const run = (threads: string | null, fma = "") => {
      const env = { ...process.env, LATENTLAB_WASM_THREADS: threads ?? "", LATENTLAB_FMA: fma };
      const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 120_000, env });
      assert.equal(r.status, 0, `LATENTLAB_WASM_THREADS=${threads}: exit ${r.status} ${r.signal ?? ""} (a pool that keeps Node alive ends in the timeout)\n${r.stderr}`);
      return JSON.parse(r.stdout.trim().split("\n").pop() as string) as { reason: string; threads: number; xnnpack: number; losses: number[] };
    };
    const one = run("1");
    const two = run("2");
    const byDefault = run(null);
    assert.match(two.reason, /2 threads/);
    assert.equal(two.threads, 2);
    assert.equal(two.xnnpack, 1);
    assert.doesNotMatch(one.reason, /threads/);
    assert.equal(one.threads, 1);
    assert.equal(byDefault.threads, Math.min(4, os.availableParallelism()));
    assert.deepEqual(two.losses, one.losses);
    assert.deepEqual(byDefault.losses, one.losses);
    // LATENTLAB_FMA=0: the kernels without fused multiply-adds, whose sums round twice a term.
    const plain = run("2", "0");
    assert.match(two.reason, /fused multiply-add/);
    assert.doesNotMatch(plain.reason, /fused/);
    plain.losses.forEach((loss, i) => assert.ok(Math.abs(loss - one.losses[i]) < 1e-3 * Math.abs(loss), `loss ${i}: ${loss} without FMA, ${one.losses[i]} with`));
    if (/\bfma\b/.test(fs.existsSync("/proc/cpuinfo") ? fs.readFileSync("/proc/cpuinfo", "utf8") : "")) assert.notDeepEqual(plain.losses, one.losses);
  });
  it("rejects a LATENTLAB_FMA that is neither 0 nor 1, saying what each means", () => {
    const script = `require(${JSON.stringify(path.resolve(__dirname, "..", "src", "index.js"))}).ready({ backend: "wasm", quiet: true }).then(() => console.log("started"), (e) => console.log(e.message));`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 60_000, env: { ...process.env, LATENTLAB_FMA: "yes" } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /LATENTLAB_FMA is "yes"; use 1 for the kernels with fused multiply-add .* or 0 for those without/);
  });
  it("turns a full wasm heap into a clear error, and the backend keeps working", () => {
    // A fresh process: the heap grows to WebAssembly's 4 GB limit and never shrinks.
    const script = `
      const lab = require(${JSON.stringify(path.resolve(__dirname, "..", "src", "index.js"))});
      const tf = require("@tensorflow/tfjs");
      (async () => {
        await lab.ready({ backend: "wasm", quiet: true });
        const first = tf.tensor([1, 2, 3]);
        const kept = [];
        let message = "no error";
        try {
          for (let i = 0; i < 20; i++) kept.push(tf.fill([64 * 2 ** 20], 1));
        } catch (e) {
          message = e.message;
        }
        const blocks = kept.length;
        tf.dispose(kept);
        console.log(JSON.stringify({ message, blocks, first: Array.from(first.dataSync()), sum: tf.ones([1000]).sum().dataSync()[0] }));
      })();`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").pop() as string) as { message: string; blocks: number; first: number[]; sum: number };
    assert.match(out.message, /The wasm heap is full: 256\.0 MB more did not fit .*4 GB.*smaller batch size/);
    assert.ok(out.blocks >= 12 && out.blocks < 16, `${out.blocks} blocks of 256 MB fitted`);
    assert.deepEqual(out.first, [1, 2, 3]);
    assert.equal(out.sum, 1000);
  });
});
