export { transformer, Transformer, TRANSFORMER_PRESETS, GenerationSteps } from "./model";
export type { TransformerConfig, TransformerOptions, GenerateOptions } from "./model";
export { transformerNetwork } from "./network";
export type { Network, TransformerSizes } from "./network";
