/** Networks: layers with seeded initialisation, composed with `sequential`. */
import { Module, Sequential } from "./module";

export type { Module, ApplyOptions, Parameters } from "./module";
export { countParams } from "./module";
export {
  activate,
  activation,
  batchNorm,
  conv2d,
  conv2dTranspose,
  dense,
  dropout,
  embedding,
  flatten,
  layerNorm,
  reshape,
} from "./layers";
export type { Activation, BatchNormOptions, ConvAddends, ConvModule, ConvOptions, DenseOptions, EmbeddingOptions, NormOptions, Padding } from "./layers";

/** Layers applied in order; their variables are named "<name>/<layer>/<variable>". */
export function sequential(name: string, layers: Module[]): Module {
  return new Sequential(name, layers);
}
