/**
 * The few internals of tfjs-backend-wasm 4.22 that LatentLab's kernels use.
 *
 * A wasm tensor is a block of the module's heap plus an integer id registered with the C++
 * side. A kernel of ours reads and writes heap views directly, and calls the backend's own
 * fast kernels (XNNPACK) by name. Views must be taken after the last allocation of a kernel:
 * `makeOutput` can grow the heap, which detaches every earlier view.
 */
import * as tf from "@tensorflow/tfjs";

type TensorInfo = tf.TensorInfo;

interface WasmModule {
  HEAPU8: Uint8Array;
  _malloc(bytes: number): number;
  asm?: { malloc?: (bytes: number) => number; memory?: WebAssembly.Memory };
  /** The threaded build's shared memory (the single-threaded build exports it as `asm.memory`). */
  wasmMemory?: WebAssembly.Memory;
  cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
  tfjs: {
    registerTensor(id: number, size: number, memoryOffset: number): void;
    disposeData(id: number): void;
  };
}

export interface TensorData {
  id: number;
  /** Where the data lies on the heap (0: it owns none; see handOver in train/adam.ts). */
  memoryOffset: number;
  shape: number[];
  dtype: tf.DataType;
  /** Tensors sharing this data. */
  refCount: number;
}

/** The part of `BackendWasm` that our kernels touch (checked at registration). */
export interface WasmBackend {
  wasm: WasmModule;
  dataIdMap: { get(dataId: object): TensorData; has(dataId: object): boolean };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  /** How many tensors share this data (Identity and Reshape share it). */
  refCount(dataId: object): number;
  /** One more tensor shares this data. */
  incRef(dataId: object): void;
}

/** Throws a clear error if a tfjs-backend-wasm upgrade moved the internals we rely on. */
export function asWasmBackend(backend: unknown): WasmBackend {
  const b = backend as Partial<WasmBackend>;
  if (
    !b ||
    !b.wasm ||
    typeof b.wasm.cwrap !== "function" ||
    !b.dataIdMap ||
    typeof b.makeOutput !== "function" ||
    typeof b.dataIdNextNumber !== "number"
  ) {
    throw new Error(
      "LatentLab's wasm kernels expect the internals of @tensorflow/tfjs-backend-wasm 4.22.0; " +
        "this backend looks different. Install the pinned version (npm ci).",
    );
  }
  return b as WasmBackend;
}

/** The whole heap as floats, for kernels that index several tensors by offset. */
export function heapF32(backend: WasmBackend): Float32Array {
  const buf = backend.wasm.HEAPU8.buffer;
  return new Float32Array(buf, 0, buf.byteLength >>> 2);
}

/** The whole heap as elements of `dtype` (bool: bytes), and the shift from byte offsets to indices. */
export function heapView(backend: WasmBackend, dtype: tf.DataType): { arr: Float32Array | Int32Array | Uint8Array; shift: number } {
  const buf = backend.wasm.HEAPU8.buffer;
  if (dtype === "float32") return { arr: new Float32Array(buf, 0, buf.byteLength >>> 2), shift: 2 };
  if (dtype === "int32") return { arr: new Int32Array(buf, 0, buf.byteLength >>> 2), shift: 2 };
  return { arr: new Uint8Array(buf), shift: 0 };
}

/** Index of a tensor's first float in `heapF32`. */
export function floatOffset(backend: WasmBackend, info: TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).memoryOffset >>> 2;
}

/**
 * Registers a window of existing heap memory as a tensor id for C++ kernels, without copying
 * or owning it. `release()` unregisters it and never frees the memory.
 */
export function heapWindow(backend: WasmBackend, byteOffset: number, size: number): { id: number; release(): void } {
  const id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(id, size, byteOffset);
  return { id, release: () => backend.wasm.tfjs.disposeData(id) };
}

/** The original (tfjs) kernel functions, captured before LatentLab replaces some of them. */
const originals = new Map<string, tf.KernelFunc>();

export function rememberOriginal(kernelName: string): void {
  if (originals.has(kernelName)) return;
  const k = tf.getKernel(kernelName, "wasm");
  if (k) originals.set(kernelName, k.kernelFunc);
}

/** Runs tfjs-backend-wasm's own kernel `name` (bypassing any replacement of ours). */
export function runOriginal(
  name: string,
  backend: WasmBackend,
  inputs: Record<string, TensorInfo>,
  attrs: Record<string, unknown> = {},
): TensorInfo {
  const fn = originals.get(name) ?? tf.getKernel(name, "wasm")?.kernelFunc;
  if (!fn) throw new Error(`tfjs-backend-wasm has no kernel ${name}.`);
  return fn({ inputs, backend: backend as unknown as tf.KernelBackend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
}

/** Disposes intermediate tensors a kernel made. */
export function disposeAll(backend: WasmBackend, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

const guarded = new WeakSet<object>();

/**
 * Makes a full wasm heap a clear error. tfjs-backend-wasm does not check what malloc returns, so
 * past the 4 GB limit it writes a new tensor over address 0, which corrupts the module and ends
 * later in "memory access out of bounds". With this guard the allocation throws instead, before
 * anything is written; the backend and every tensor so far stay intact.
 */
export function guardHeap(backend: WasmBackend): void {
  const wasm = backend.wasm;
  if (guarded.has(wasm)) return;
  const malloc = wasm.asm?.malloc ?? wasm._malloc.bind(wasm);
  wasm._malloc = (bytes: number): number => {
    const at = malloc(bytes);
    if (at === 0 && bytes > 0) {
      const heapMB = (wasm.HEAPU8.buffer.byteLength / 2 ** 20).toFixed(0);
      throw new Error(
        `The wasm heap is full: ${(bytes / 2 ** 20).toFixed(1)} MB more did not fit in its ${heapMB} MB (WebAssembly's limit is 4 GB). ` +
          "Train or sample with a smaller batch size, or dispose tensors you keep (tf.memory() counts them).",
      );
    }
    return at;
  };
  guarded.add(wasm);
}
