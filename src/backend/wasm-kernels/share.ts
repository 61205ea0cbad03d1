/**
 * Identity, and Cast to the same dtype, on wasm: share the data instead of copying it.
 *
 * tfjs's tape keeps every tensor a gradient needs by cloning it (`Identity`), and several
 * gradients cast float32 to float32; tfjs-backend-wasm 4.22 copies the data for both, so every
 * saved activation existed twice on the heap (the U-Net's 28×28 step cloned 640 tensors). Tensor
 * data is never written after it is made, so the output can share the input's memory under a
 * reference count — what the wasm backend's own Reshape does, and what the cpu backend's
 * Identity does.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasmBackend, runOriginal } from "./heap";

type TensorInfo = tf.TensorInfo;

interface RefCounted {
  incRef(dataId: object): void;
}

/** A new tensor over x's data (the backend frees it when the last one is disposed). */
function shared(backend: unknown, x: TensorInfo): TensorInfo {
  (backend as RefCounted).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

function identity({ inputs, backend }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype === "string") return runOriginal("Identity", asWasmBackend(backend), { x });
  return shared(backend, x);
}

function cast({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const { x } = inputs as { x: TensorInfo };
  const { dtype } = attrs as unknown as { dtype: tf.DataType };
  if (dtype !== x.dtype || x.dtype === "string") return runOriginal("Cast", asWasmBackend(backend), { x }, { dtype });
  return shared(backend, x);
}

export const shareKernels: tf.KernelConfig[] = [
  { kernelName: "Identity", backendName: "wasm", kernelFunc: identity as tf.KernelFunc },
  { kernelName: "Cast", backendName: "wasm", kernelFunc: cast as tf.KernelFunc },
];
