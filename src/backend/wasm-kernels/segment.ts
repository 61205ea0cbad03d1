/**
 * UnsortedSegmentSum on wasm: out[s, ...] = Σ over i with segmentIds[i] = s of x[i, ...].
 *
 * tfjs-backend-wasm 4.22 lacks it, and tfjs needs it for the gradient of `gather`, that is of
 * every embedding table. Rows whose id is out of range are dropped, as TensorFlow does.
 */
import * as tf from "@tensorflow/tfjs";
import { asWasmBackend, floatOffset, heapF32, sizeOf } from "./heap";

type TensorInfo = tf.TensorInfo;

function unsortedSegmentSum({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as unknown as { numSegments: number };
  if (x.dtype !== "float32") {
    throw new Error(`UnsortedSegmentSum on wasm supports float32 values, got ${x.dtype}.`);
  }
  const rows = sizeOf(segmentIds.shape);
  const inner = rows === 0 ? 0 : sizeOf(x.shape) / rows;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = backend.makeOutput(outShape, "float32");
  const heap = heapF32(backend);
  const ids = new Int32Array(heap.buffer, backend.dataIdMap.get(segmentIds.dataId).memoryOffset, rows);
  const xOff = floatOffset(backend, x);
  const outOff = floatOffset(backend, out);
  heap.fill(0, outOff, outOff + numSegments * inner);
  for (let r = 0; r < rows; r++) {
    const s = ids[r];
    if (s < 0 || s >= numSegments) continue;
    const d = outOff + s * inner;
    const src = xOff + r * inner;
    for (let i = 0; i < inner; i++) heap[d + i] += heap[src + i];
  }
  return out;
}

export const segmentKernels: tf.KernelConfig[] = [
  { kernelName: "UnsortedSegmentSum", backendName: "wasm", kernelFunc: unsortedSegmentSum as tf.KernelFunc },
];
