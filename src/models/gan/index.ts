export { gan, Gan, GAN_PRESETS } from "./model";
export type { GanConfig, GanOptions } from "./model";
export { minimax, nonSaturating, leastSquares, hinge, wasserstein, gradientPenalty, r1, ganLosses, penalties } from "./losses";
export type { GanLoss, GanLossInputs, GanLosses, GanLossName, PenaltyInputs, PenaltyName } from "./losses";
