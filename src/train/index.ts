/** Training shared by every family: the verbs, history, dashboards, checkpoints, run cards. */
export { Model, resolveConfig, yieldToEventLoop, formatLosses } from "./model";
export type { BaseConfig, TrainOptions, TrainSummary } from "./model";
export { History } from "./history";
export type { Losses, HistoryJSON } from "./history";
export { NonFiniteLossError, minimize } from "./optimize";
export type { LossOutput, Update } from "./optimize";
export { loadModel, readCheckpoint, readCard, registerFamily } from "./checkpoint";
export type { CheckpointManifest, LoadOptions } from "./checkpoint";
export { compare, Card, Comparison, runCard } from "./card";
export type { RunCard, Run } from "./card";
export { lossFigure, dashboardBundle } from "./dashboard";
