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
export { settle } from "./backend/simd";

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

// Training, checkpoints, run cards.
export { compare } from "./train/card";
export { loadModel as load } from "./train/checkpoint";
export type { LoadOptions } from "./train/checkpoint";
export type { TrainOptions, TrainSummary } from "./train/model";
export type { Losses } from "./train/history";
export * as train from "./train";

// Model families.
export { gan } from "./models/gan";
export type { Gan, GanConfig, GanOptions, GanLoss, GanLossInputs, GanLosses } from "./models/gan";
export * as ganLosses from "./models/gan/losses";

export { vae } from "./models/vae";
export type { Vae, VaeConfig, VaeOptions, VaeObjective, VaeLossInputs, VaeLosses, VaeEvaluation } from "./models/vae";
export * as vaeLosses from "./models/vae/losses";

export { diffusion } from "./models/diffusion";
export type { Diffusion, DiffusionConfig, DiffusionOptions, SampleOptions, Schedule, SamplerSpec, Trajectory } from "./models/diffusion";
export { schedules, samplers } from "./models/diffusion";
export * as diffusionParts from "./models/diffusion";

export { transformer } from "./models/transformer";
export type { Transformer, TransformerConfig, TransformerOptions, GenerateOptions } from "./models/transformer";

// The latent-space toolkit.
export * as latent from "./views/latent";

// Metrics.
export * as metrics from "./metrics";
export { evaluate } from "./metrics/evaluate";

// Networks.
export * as nn from "./nn";

// Helpers for tests (leak checks).
export * as testing from "./testing";

/** The package version. */
export { version } from "./version";
