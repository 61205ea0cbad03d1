export { vae, Vae, VAE_PRESETS } from "./model";
export type { VaeConfig, VaeOptions, VaeEvaluation } from "./model";
export { negativeElbo, bernoulliNll, gaussianNll, klNormal, klPerDimension } from "./losses";
export type { VaeObjective, VaeLossInputs, VaeLosses } from "./losses";
