/**
 * The smallest useful network abstraction: a Module maps a tensor to a tensor and owns named
 * variables. Model families build their networks from these; the trainer, checkpoints and
 * run cards see only the names and variables.
 *
 * Trainable variables are what an optimizer updates; state variables (batch-norm running
 * statistics) are saved and restored but never differentiated.
 */
import * as tf from "@tensorflow/tfjs";

/** Whether a forward pass is for training (batch statistics) or inference (running ones). */
export interface ApplyOptions {
  training?: boolean;
}

/** Anything that owns named variables: a Module, or a network with several inputs. */
export interface Parameters {
  /** Trainable variables by path ("dense0/kernel"). */
  variables(): Map<string, tf.Variable>;
  /** Non-trainable saved state by path ("bn0/movingMean"). */
  state(): Map<string, tf.Variable>;
  /** Frees every variable. */
  dispose(): void;
}

export interface Module extends Parameters {
  /** A short name, unique among its siblings, used in checkpoint paths. */
  readonly name: string;
  /** Maps [batch, ...] to [batch, ...]. Call inside tf.tidy or dispose the result. */
  apply(x: tf.Tensor, options?: ApplyOptions): tf.Tensor;
}

/** A Module made of named variables and an apply function. */
export class Leaf implements Module {
  constructor(
    readonly name: string,
    private readonly trainable: Record<string, tf.Variable>,
    private readonly fn: (x: tf.Tensor, training: boolean) => tf.Tensor,
    private readonly saved: Record<string, tf.Variable> = {},
  ) {}

  apply(x: tf.Tensor, options: ApplyOptions = {}): tf.Tensor {
    return this.fn(x, options.training ?? false);
  }

  variables(): Map<string, tf.Variable> {
    return new Map(Object.entries(this.trainable).map(([k, v]) => [`${this.name}/${k}`, v]));
  }

  state(): Map<string, tf.Variable> {
    return new Map(Object.entries(this.saved).map(([k, v]) => [`${this.name}/${k}`, v]));
  }

  dispose(): void {
    for (const v of [...Object.values(this.trainable), ...Object.values(this.saved)]) v.dispose();
  }
}

/** Modules applied one after another. */
export class Sequential implements Module {
  readonly layers: Module[];

  constructor(readonly name: string, layers: Module[]) {
    const seen = new Set<string>();
    for (const l of layers) {
      if (seen.has(l.name)) throw new Error(`sequential("${name}") has two layers named "${l.name}"; give each a unique name.`);
      seen.add(l.name);
    }
    this.layers = layers;
  }

  apply(x: tf.Tensor, options: ApplyOptions = {}): tf.Tensor {
    return tf.tidy(() => {
      let h = x;
      for (const l of this.layers) h = l.apply(h, options);
      return h;
    });
  }

  variables(): Map<string, tf.Variable> {
    return this.collect((m) => m.variables());
  }

  state(): Map<string, tf.Variable> {
    return this.collect((m) => m.state());
  }

  private collect(get: (m: Module) => Map<string, tf.Variable>): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const l of this.layers) for (const [k, v] of get(l)) out.set(`${this.name}/${k}`, v);
    return out;
  }

  dispose(): void {
    for (const l of this.layers) l.dispose();
  }
}

/** Number of trainable scalars in a module. */
export function countParams(m: Parameters): number {
  let n = 0;
  for (const v of m.variables().values()) n += v.size;
  return n;
}
