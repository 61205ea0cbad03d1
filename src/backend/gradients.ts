/**
 * Making gradients of gradients right in tfjs 4.22 (double backprop, as WGAN-GP and R1 need).
 *
 * 1. When an op saves its own output for the backward pass (tanh, sigmoid, exp, …), tfjs tapes
 *    the saved clone *before* the op that produces it. Backprop walks the tape in reverse, so in
 *    a nested gradient the gradient arriving at the clone is never passed back through the op,
 *    and every term that flows through a saved output is silently dropped (d/dw of
 *    (d/dx Σ tanh(xw))² came out 0.60 instead of −0.19). We move each op's tape node in front of
 *    the clones of its outputs. Only while a nested gradient is being taped (depth ≥ 2):
 *    first-order training never differentiates through clones and is untouched.
 * 2. ReLU-family gradients compare their input with 0 (`Greater`), putting comparisons on the
 *    tape; comparisons are piecewise constant, so their gradient is 0, which tfjs lacks.
 */
import * as tf from "@tensorflow/tfjs";

interface TapeNode {
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
}

interface EngineInternals {
  state: { gradientDepth: number; activeTape: TapeNode[] | null };
  addTapeNode(name: string, inputs: object, outputs: tf.Tensor[], grad: unknown, saved: tf.Tensor[], attrs: object): void;
}

let patched = false;

/** True if `node` is a clone (one input x) of one of `outputs`. */
function isCloneOf(node: TapeNode, outputs: tf.Tensor[]): boolean {
  const keys = Object.keys(node.inputs);
  if (keys.length !== 1 || keys[0] !== "x" || node.outputs.length !== 1) return false;
  const x = node.inputs.x;
  return outputs.some((o) => o.id === x.id);
}

function patchTapeOrder(): void {
  if (patched) return;
  const engine = tf.engine() as unknown as EngineInternals;
  const original = engine.addTapeNode.bind(engine);
  engine.addTapeNode = (name, inputs, outputs, grad, saved, attrs) => {
    original(name, inputs, outputs, grad, saved, attrs);
    const tape = engine.state.activeTape;
    if (!tape || engine.state.gradientDepth < 2 || saved.length === 0) return;
    const last = tape.length - 1;
    let j = last;
    while (j > 0 && isCloneOf(tape[j - 1], outputs)) j--;
    if (j < last) tape.splice(j, 0, tape.splice(last, 1)[0]);
  };
  patched = true;
}

const COMPARISONS = ["Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "NotEqual"];

let registered = false;

export function registerMissingGradients(): void {
  patchTapeOrder();
  if (registered) return;
  for (const kernelName of COMPARISONS) {
    if (tf.getGradient(kernelName)) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ["a", "b"],
      gradFunc: (_dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [a, b] = saved;
        return { a: () => tf.zerosLike(a), b: () => tf.zerosLike(b) };
      },
    });
  }
  registered = true;
}
