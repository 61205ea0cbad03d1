/** Helpers for testing code that makes tensors: LatentLab's own tests use them, and so can yours. */
export { expectNoLeak, expectNoLeakPerIteration } from "./memory";
export type { LeakReport, PerIterationOptions } from "./memory";
export { record as recordDisplays } from "../display/show";
export type { Recorded } from "../display/show";
