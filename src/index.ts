/**
 * LatentLab: unconditional generative models you can step through, watch and take apart.
 *
 *   import * as lab from "latentlab";
 *   await lab.ready();                       // choose the tensor backend
 *   const rng = lab.rng(0);                  // every random draw is seeded
 */

// Set-up: the tensor backend.
export { ready, backendInfo } from "./backend/ready";
export type { BackendInfo, BackendRequest, ReadyOptions } from "./backend/ready";
export { wasmKernelNames } from "./backend/wasm-kernels";

// Randomness.
export { rng } from "./random/rng";
export type { Rng, RngState, Seed } from "./random/rng";

// Display: rich outputs in the notebook, updated in place.
export { show, live, clearOutput, mime, toBundle } from "./display/show";
export type { Displayable, Live, LiveOptions } from "./display/show";
export type { MimeBundle } from "./display/runtime";
export { interrupted } from "./display/runtime";

// Data.
export * as data from "./data";

// Views: pure functions from tensors and numbers to displayable figures.
export { chart } from "./views/figure";
export type { Figure, Trace } from "./views/figure";
export { imageGrid } from "./views/images";

// Networks.
export * as nn from "./nn";

// Helpers for tests (leak checks).
export * as testing from "./testing";

/** The package version. */
export const version: string = require("../package.json").version;
