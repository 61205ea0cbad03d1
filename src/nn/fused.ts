/**
 * Dense and conv layers as one kernel each (product or conv + bias + relu), with gradients that
 * compute only what backprop asks for.
 *
 * tfjs's `tf.fused.matMul` and `tf.fused.conv2d` wrap their kernel in `customGrad`, whose
 * gradient computes every input's gradient at once: a discriminator's gradient with respect to
 * its input images in the D update, all of its weight gradients in the G update (a DCGAN step
 * spent ~35 ms on those), a generator's gradient with respect to its noise. They also give up
 * fusing relu whenever a gradient is recorded. Here the kernels (`_FusedMatMul`, `FusedConv2D`)
 * run directly, with a gradient registered per input, so tfjs's backprop calls only those on a
 * path to the variables being trained; bias and relu stay fused in training too (relu's gradient
 * needs only the output, which is saved). Against tfjs's rule of fusing relu only when no
 * gradient is recorded (a product, a bias add and a relu then, and their gradients): a VAE step,
 * medians of twelve alternating runs, 12.93 → 12.53 ms. The bias is added before the products'
 * sum is rounded, not after, so values differ from tfjs's unfused ops in the last digits.
 */
import * as tf from "@tensorflow/tfjs";
import { CONV_ADD } from "../backend/wasm-kernels/conv";
import { takesMatrices } from "../backend/wasm-kernels/matmul";
import { deferred } from "../backend/simd";

export type FusedActivation = "linear" | "relu";

interface FusedAttrs {
  activation: FusedActivation;
}

/** dy through the activation, from the layer's output (relu passes where y > 0). */
function throughActivation(dy: tf.Tensor, y: tf.Tensor, activation: FusedActivation): tf.Tensor {
  return activation === "relu" ? tf.mul(dy, tf.step(y)) : dy;
}

/** A rank-1 bias's gradient: dy summed over every axis but the last. */
function biasGradient(dy: tf.Tensor): tf.Tensor {
  return tf.sum(dy, [...Array(dy.rank - 1).keys()]);
}

interface ConvAttrs extends FusedAttrs {
  strides: [number, number];
  pad: "same" | "valid";
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/** Saved: x, filter, y. The bias (rank 1, as every backend's kernel takes it) needs nothing saved. */
const fusedConvGradient: tf.GradConfig = {
  kernelName: "FusedConv2D",
  inputsToSave: ["x", "filter"],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const { strides, pad, dimRoundingMode, activation } = attrs as unknown as ConvAttrs;
    const [x, filter, y] = saved;
    const g = throughActivation(dy as tf.Tensor, y, activation);
    const conv = { strides, pad, dataFormat: "NHWC", dimRoundingMode };
    const attrsWith = (extra: object) => ({ ...conv, ...extra }) as unknown as tf.NamedAttrMap;
    return {
      x: () => tf.engine().runKernel("Conv2DBackpropInput", { dy: g, filter }, attrsWith({ inputShape: x.shape })) as tf.Tensor,
      filter: () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy: g }, attrsWith({ filterShape: filter.shape })) as tf.Tensor,
      bias: () => biasGradient(g),
    };
  },
};

interface MatMulAttrs extends FusedAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/** Saved: a, b, y; the bias is rank 1. The four transpose cases are tfjs's own (fused/mat_mul.ts). */
const fusedMatMulGradient: tf.GradConfig = {
  kernelName: "_FusedMatMul",
  inputsToSave: ["a", "b"],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const { transposeA, transposeB, activation } = attrs as unknown as MatMulAttrs;
    const [a, b, y] = saved;
    const g = throughActivation(dy as tf.Tensor, y, activation);
    // b (a layer's weights): its gradient is used only by the optimizer, so its product may end
    // later, on the helper threads, while backprop goes on (`deferred`).
    const grads: Record<string, () => tf.Tensor> = !transposeA
      ? {
          a: () => tf.matMul(g, b, false, !transposeB),
          b: () => deferred(() => (transposeB ? tf.matMul(g, a, true, false) : tf.matMul(a, g, true, false))),
        }
      : {
          a: () => (transposeB ? tf.matMul(b, g, true, true) : tf.matMul(b, g, false, true)),
          b: () => deferred(() => (transposeB ? tf.matMul(g, a, true, true) : tf.matMul(a, g, false, false))),
        };
    return { ...grads, bias: () => biasGradient(g) };
  },
};

interface ConvAddAttrs {
  strides: [number, number];
  pad: "same" | "valid";
  biasPerImage: boolean;
}

/** Saved: x, filter. The bias's gradient is dy summed over pixels (and images, for a bias per channel); the addend's is dy. */
const convAddGradient: tf.GradConfig = {
  kernelName: CONV_ADD,
  inputsToSave: ["x", "filter"],
  gradFunc: (dy, saved, attrs) => {
    const { strides, pad, biasPerImage } = attrs as unknown as ConvAddAttrs;
    const [x, filter] = saved;
    const g = dy as tf.Tensor;
    const conv = { strides, pad, dataFormat: "NHWC" };
    return {
      x: () => tf.engine().runKernel("Conv2DBackpropInput", { dy: g, filter }, { ...conv, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
      filter: () => tf.engine().runKernel("Conv2DBackpropFilter", { x, dy: g }, { ...conv, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
      bias: () => (biasPerImage ? tf.sum(g, [1, 2]) : biasGradient(g)),
      addend: () => tf.clone(g),
    };
  },
};

let registered = false;

function registerGradients(): void {
  if (registered) return;
  tf.registerGradient(fusedConvGradient);
  tf.registerGradient(fusedMatMulGradient);
  tf.registerGradient(convAddGradient);
  registered = true;
}

/** activation(x ⊛ filter + bias), NHWC, square stride, no dilation. */
export function fusedConv2d(
  x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor | null, stride: number, pad: "same" | "valid", activation: FusedActivation,
): tf.Tensor4D {
  registerGradients();
  const attrs = { strides: [stride, stride], pad, dataFormat: "NHWC", dilations: [1, 1], activation };
  return tf.engine().runKernel("FusedConv2D", bias ? { x, filter, bias } : { x, filter }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * x ⊛ filter + bias + imageBias + addend, NHWC: `imageBias` [batch, co] is added to every pixel
 * of its image (a U-Net's time embedding), `addend` is shaped like the output (a residual). On
 * wasm a 3×3 stride-1 conv with input channels in fours and output channels in eights adds them
 * in its output pass (one kernel, LatentLabConv2DAdd), the two biases summed first; otherwise
 * the conv and then tfjs's adds.
 */
export function fusedConv2dAdd(
  x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor | null, imageBias: tf.Tensor2D | null, addend: tf.Tensor | null, stride: number, pad: "same" | "valid",
): tf.Tensor4D {
  const [kh, kw, ci, co] = filter.shape;
  const fused = tf.getKernel(CONV_ADD, tf.getBackend()) !== undefined && x.dtype === "float32" && stride === 1 && kh === 3 && kw === 3 && ci % 4 === 0 && co % 8 === 0;
  if (!fused) {
    return tf.tidy(() => {
      let y: tf.Tensor = fusedConv2d(x, filter, bias, stride, pad, "linear");
      if (imageBias) y = tf.add(y, tf.reshape(imageBias, [x.shape[0], 1, 1, co]));
      return (addend ? tf.add(y, addend) : y) as tf.Tensor4D;
    });
  }
  registerGradients();
  return tf.tidy(() => {
    const b = imageBias ? (bias ? tf.add(imageBias, bias) : imageBias) : bias;
    const inputs: tf.NamedTensorMap = { x, filter, ...(b ? { bias: b } : {}), ...(addend ? { addend } : {}) };
    const attrs = { strides: [1, 1], pad, dataFormat: "NHWC", dilations: [1, 1], biasPerImage: imageBias !== null };
    return tf.engine().runKernel(CONV_ADD, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  });
}

/** activation(a · b + bias) for matrices a [M, K] and b [K, N]. */
export function fusedMatMul(a: tf.Tensor2D, b: tf.Tensor2D, bias: tf.Tensor | null, activation: FusedActivation): tf.Tensor2D {
  registerGradients();
  const attrs = { transposeA: false, transposeB: false, activation };
  const inputs = (x: tf.Tensor, y: tf.Tensor): tf.NamedTensorMap => (bias ? { a: x, b: y, bias } : { a: x, b: y });
  // LatentLab's wasm kernel takes matrices as they are: no reshapes (three a layer, and their
  // gradients, each a node on the tape).
  if (takesMatrices()) return tf.engine().runKernel("_FusedMatMul", inputs(a, b), attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
  // As batches of one, the form every backend's kernel takes (tfjs's fused op reshapes the same way).
  const [a3, b3] = [tf.reshape(a, [1, ...a.shape]), tf.reshape(b, [1, ...b.shape])];
  const y = tf.engine().runKernel("_FusedMatMul", inputs(a3, b3), attrs as unknown as tf.NamedAttrMap) as tf.Tensor3D;
  return tf.reshape(y, [a.shape[0], b.shape[1]]);
}
