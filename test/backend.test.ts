import { describe, it } from "node:test";
import assert from "node:assert/strict";
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
});
