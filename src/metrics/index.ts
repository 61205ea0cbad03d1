/** Is this model any good? Numbers that compare, each with its protocol in the doc comment. */
export { modeCoverage, gridDivergence, mmd } from "./points";
export type { ModeCoverage, HistogramDivergence } from "./points";
