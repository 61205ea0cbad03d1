/**
 * An endless, resumable stream of training batches over a dataset: epoch after epoch, each in
 * the order drawn from (seed, epoch). Its position is two integers, saved in checkpoints.
 */
import * as tf from "@tensorflow/tfjs";
import { Dataset } from "../data/dataset";
import { Seed } from "../random/rng";

export interface StreamPosition {
  epoch: number;
  batch: number;
}

export class BatchStream {
  epoch = 0;
  batch = 0;
  private order: Int32Array | null = null;
  private orderEpoch = -1;

  constructor(
    readonly data: Dataset,
    readonly batchSize: number,
    readonly seed: Seed,
  ) {
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`batchSize must be a positive integer, got ${String(batchSize)}.`);
    if (batchSize > data.size) {
      throw new Error(`batchSize ${batchSize} is larger than ${data.name}'s ${data.size} samples; use batchSize ≤ ${data.size}.`);
    }
  }

  /** Full batches per epoch (a last partial batch is dropped, so every step sees batchSize samples). */
  get perEpoch(): number {
    return Math.floor(this.data.size / this.batchSize);
  }

  /** The next batch's samples [batchSize, ...] (the caller disposes it) and labels. */
  next(): { x: tf.Tensor; labels: tf.Tensor1D | null } {
    if (this.batch >= this.perEpoch) {
      this.epoch += 1;
      this.batch = 0;
    }
    if (this.orderEpoch !== this.epoch) {
      this.order = this.data.order({ seed: this.seed, epoch: this.epoch });
      this.orderEpoch = this.epoch;
    }
    const start = this.batch * this.batchSize;
    this.batch += 1;
    return this.data.take((this.order as Int32Array).subarray(start, start + this.batchSize));
  }

  /** Epochs completed, as a fraction. */
  get epochs(): number {
    return this.epoch + this.batch / this.perEpoch;
  }

  position(): StreamPosition {
    return { epoch: this.epoch, batch: this.batch };
  }

  seek(p: StreamPosition): void {
    this.epoch = p.epoch;
    this.batch = p.batch;
  }
}
