/** Is this model any good? Numbers that compare, each with its protocol in the doc comment. */
export { modeCoverage, gridDivergence, mmd } from "./points";
export type { ModeCoverage, HistogramDivergence } from "./points";
export { frechetDistance, kid, precisionRecall, novelty, textNovelty, nearestDistances } from "./images";
export type { Kid, PrecisionRecall, Novelty } from "./images";
export { featuresOf, featureNetwork, FEATURE_DIM } from "./features";
export type { FeatureSet, FeatureCard } from "./features";
export { evaluate, Evaluation } from "./evaluate";
export type { EvaluateOptions, MetricRow } from "./evaluate";
