/**
 * The two convolution gradients, on wasm.
 *
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter (so no conv layer could train) and runs
 * Conv2DBackpropInput (every conv's input gradient, and every transposed conv's forward pass)
 * in a scalar loop. Each is taken by the first of these paths that fits:
 *
 * (3×3 stride-1 convs go by Winograd's F(2×2, 3×3) or F(4×4, 3×3), winograd.ts, and 4×4 stride-2
 * convs with input channels in fours and output channels in eights by F(4×4, 2×2) over the
 * input's phases, winograd-strided.ts, in all three passes; 1×1 stride-1 convs as products.)
 *
 * filter gradient
 *   1. output channels in eights: LatentLab's SIMD kernel, straight from x and dy, input channels
 *      shared between threads (filterGradientBySimd);
 *   2. 16 input channels or more: a forward conv of x, channels first, by dy as the filter
 *      (filterGradientByConv);
 *   3. otherwise one matrix product with the input laid out as patches (below).
 * input gradient
 *   1. input channels in eights: LatentLab's SIMD kernel, each dx pixel gathered once from dy and
 *      the taps that reach it, images shared between threads (inputGradientBySimd);
 *   2. stride 1 or 16 input channels or more: a conv of dy by the filter turned half a turn, or at
 *      stride s, s² such convs, one per phase of the input grid (inputGradientByPhases);
 *   3. otherwise col = dy · Wᵀ, then each patch row is added back where it came from.
 *
 * The patch layout of the product paths:
 *
 *   col[n, (kh, kw, ci)] = xPadded[b, oh·sh + kh·dh, ow·sw + kw·dw, ci]   n = (b, oh, ow)
 *   filter gradient:  dW[(kh, kw, ci), co] = Σ_n colᵀ[(kh, kw, ci), n] · dy[n, co]
 *
 * The filter gradient's product runs in XNNPACK (on one thread, see threads.ts), the input
 * gradient's in LatentLab's SIMD product where the patch has taps·ci in eights (equal to
 * XNNPACK's to the bit without fused multiply-adds); laying out patches (colᵀ directly, see im2colT) is a loop on the heap,
 * adding them back (col2im) a SIMD kernel for undilated convs (wasm/kernels.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, asWasmBackend, disposeAll, floatOffset, heapF32, runOriginal, sizeOf } from "./heap";
import { transpose } from "./transpose";
import { PARALLEL_MACS, simdMatMul } from "./matmul";
import { byteOffset, ranges, runShares, simdKernels, threadScratch } from "../simd";
import { wasmThreads } from "../threads";
import { convByWinograd, eights, filterGradientByWinograd, inputGradientByWinograd, resizeChannels, winogradFits } from "./winograd";
import { stridedConvByWinograd, stridedFilterGradientByWinograd, stridedInputGradientByWinograd, stridedWinogradCovers, stridedWinogradFits } from "./winograd-strided";

type TensorInfo = tf.TensorInfo;

interface ConvAttrs {
  strides: number | [number, number];
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  filterShape?: [number, number, number, number];
  inputShape?: [number, number, number, number];
}

function convInfo(xShape: number[], filterShape: number[], attrs: ConvAttrs, kernel: string): tf.backend_util.Conv2DInfo {
  if (attrs.dataFormat === "NCHW") {
    throw new Error(`${kernel} on wasm supports channels-last (NHWC) data only; transpose NCHW inputs first.`);
  }
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
}

/**
 * The transpose of im2col: colT [fh·fw·ci, batch·outH·outW], row-major, written for the filter
 * gradient so that its product needs no transposes and XNNPACK packs only dy as the weights.
 * It reads x channels-first (xT [ci, batch, H, W], transposed once by the caller), so each row
 * of colT is filled from runs along image rows: reads and writes both contiguous at stride 1.
 * `b0` and `nb` pick the chunk of images; `batch` is xT's full batch.
 */
function im2colT(heap: Float32Array, xTOff: number, colOff: number, c: tf.backend_util.Conv2DInfo, batch: number, b0: number, nb: number): void {
  const { inHeight: H, inWidth: W, inChannels: ci, outHeight, outWidth } = c;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = c;
  const { dilationHeight: dh, dilationWidth: dw } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  const n = nb * outHeight * outWidth;
  heap.fill(0, colOff, colOff + fh * fw * ci * n);
  for (let kh = 0; kh < fh; kh++) {
    for (let kw = 0; kw < fw; kw++) {
      // Output columns whose input column iw = ow·sw − left + kw·dw lies inside the image.
      const shift = kw * dw - left;
      let owLo = 0;
      while (owLo < outWidth && owLo * sw + shift < 0) owLo++;
      let owHi = outWidth;
      while (owHi > owLo && (owHi - 1) * sw + shift >= W) owHi--;
      for (let i = 0; i < ci; i++) {
        let row = colOff + ((kh * fw + kw) * ci + i) * n; // row (kh, kw, i) of colT
        for (let b = 0; b < nb; b++) {
          const image = xTOff + (i * batch + b0 + b) * H * W;
          for (let oh = 0; oh < outHeight; oh++, row += outWidth) {
            const ih = oh * sh - top + kh * dh;
            if (ih < 0 || ih >= H) continue;
            const src = image + ih * W + shift;
            if (sw === 1) for (let ow = owLo; ow < owHi; ow++) heap[row + ow] = heap[src + ow];
            else for (let ow = owLo; ow < owHi; ow++) heap[row + ow] = heap[src + ow * sw];
          }
        }
      }
    }
  }
}

/** Adds each patch row of col back into dx (the adjoint of im2col). dx must start at zero. */
function col2im(heap: Float32Array, colOff: number, dxOff: number, c: tf.backend_util.Conv2DInfo): void {
  const { batchSize, inHeight: H, inWidth: W, inChannels: ci, outHeight, outWidth } = c;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = c;
  const { dilationHeight: dh, dilationWidth: dw } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  const rowLen = fw * ci;
  let src = colOff;
  for (let b = 0; b < batchSize; b++) {
    const xb = dxOff + b * H * W * ci;
    for (let oh = 0; oh < outHeight; oh++) {
      const ih0 = oh * sh - top;
      for (let ow = 0; ow < outWidth; ow++) {
        const iw0 = ow * sw - left;
        let kwLo = 0;
        while (kwLo < fw && iw0 + kwLo * dw < 0) kwLo++;
        let kwHi = fw;
        while (kwHi > kwLo && iw0 + (kwHi - 1) * dw >= W) kwHi--;
        for (let kh = 0; kh < fh; kh++) {
          const ih = ih0 + kh * dh;
          if (ih >= 0 && ih < H && kwLo < kwHi) {
            const rowDst = xb + ih * W * ci;
            if (dw === 1) {
              const d = rowDst + (iw0 + kwLo) * ci;
              const s = src + kwLo * ci;
              const len = (kwHi - kwLo) * ci;
              for (let i = 0; i < len; i++) heap[d + i] += heap[s + i];
            } else {
              for (let kw = kwLo; kw < kwHi; kw++) {
                const d = rowDst + (iw0 + kw * dw) * ci;
                const s = src + kw * ci;
                for (let i = 0; i < ci; i++) heap[d + i] += heap[s + i];
              }
            }
          }
          src += rowLen;
        }
      }
    }
  }
}

/**
 * Below this many input channels the gradients keep the product path: a conv over few channels
 * (a first layer's filter gradient, a transposed conv's output image) keeps XNNPACK's
 * micro-kernels mostly idle. With 2 threads, for example, a 4×4 stride-2 conv over 256 images of
 * 28×28×1: filter gradient 3.2 ms by product vs 43.5 ms by conv; the input gradient of a 4×4
 * stride-2 conv over 128 images of 14×14×64: 32.4 ms by product and col2im vs 28.5 ms by phases.
 */
const MIN_CHANNELS_FOR_CONV = 16;

function matmul(backend: WasmBackend, a: TensorInfo, b: TensorInfo): TensorInfo {
  // A single untransposed product: tfjs-backend-wasm sends it to XNNPACK.
  return runOriginal("BatchMatMul", backend, { a, b }, { transposeA: false, transposeB: false });
}

/**
 * Patch matrices grow as batch × output pixels × kernel volume (a 3×3 conv over 128 images of
 * 28×28×64 needs 231 MB), which at batch 128 ran the wasm heap out of memory. Both gradients
 * therefore work through the batch in chunks whose patch matrix stays under this many floats
 * (32 MB), which also keeps it nearer the cache.
 */
const CHUNK_FLOATS = 8 * 2 ** 20;

/**
 * Calls `body` for each chunk of the batch (see CHUNK_FLOATS) with its first image, its image
 * count and its rows of dy as an [1, n, co] matrix (dy itself when one chunk holds the batch,
 * else a copy that is freed after `body`).
 */
function forEachChunk(
  backend: WasmBackend,
  c: tf.backend_util.Conv2DInfo,
  dy: TensorInfo,
  body: (b0: number, nb: number, dyRows: TensorInfo) => void,
): void {
  const pixels = c.outHeight * c.outWidth;
  const co = c.outChannels;
  const perImage = pixels * c.filterHeight * c.filterWidth * c.inChannels;
  const step = Math.max(1, Math.min(c.batchSize, Math.floor(CHUNK_FLOATS / perImage)));
  for (let b0 = 0; b0 < c.batchSize; b0 += step) {
    const nb = Math.min(step, c.batchSize - b0);
    const n = nb * pixels;
    if (nb === c.batchSize) {
      body(b0, nb, { ...dy, shape: [1, n, co] });
      continue;
    }
    const rows = backend.makeOutput([1, n, co], "float32");
    const heap = heapF32(backend);
    const from = floatOffset(backend, dy) + b0 * pixels * co;
    heap.copyWithin(floatOffset(backend, rows), from, from + n * co);
    body(b0, nb, rows);
    disposeAll(backend, rows);
  }
}

/**
 * The filter gradient as one forward conv (forwardConv), threaded like the forward pass. With x
 * laid out [ci, H, W, batch] and dy as a filter [outH, outW, batch, co] dilated by the stride,
 *   dW[kh, kw, i, o] = Σ_{b, oh, ow} x[b, oh·sh − top + kh, ow·sw − left + kw, i] · dy[b, oh, ow, o]
 * is a stride-1 conv whose batch is ci and whose output, [ci, fh, fw, co], is dW with its axes
 * moved. Null where that needs a negative pad (input rows or columns the conv never reads).
 */
function filterGradientByConv(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, c: tf.backend_util.Conv2DInfo): TensorInfo | null {
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = c;
  if (c.dilationHeight !== 1 || c.dilationWidth !== 1) return null;
  const { top, left } = c.padInfo;
  // Pads that make the output exactly fh × fw.
  const bottom = fh + (c.outHeight - 1) * sh - c.inHeight - top;
  const right = fw + (c.outWidth - 1) * sw - c.inWidth - left;
  if (bottom < 0 || right < 0) return null;
  const { batchSize: b, inHeight: H, inWidth: W, inChannels: ci } = c;
  const xCb = transpose(backend, x, [3, 0, 1, 2]); // [ci, b, H, W]
  const xT = transpose(backend, { ...xCb, shape: [ci, b, H * W] }, [0, 2, 1]); // [ci, H·W, b]
  const dyT = transpose(backend, dy, [1, 2, 0, 3]); // [outH, outW, b, co]
  const out = forwardConv(backend, { ...xT, shape: [ci, H, W, b] }, dyT, {
    strides: [1, 1],
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
    dataFormat: "NHWC",
    dilations: [sh, sw],
  }); // [ci, fh, fw, co]
  const dW = transpose(backend, out, [1, 2, 0, 3]);
  disposeAll(backend, xCb, xT, dyT, out);
  return dW;
}

/** The SIMD filter gradient takes the batch in blocks of images whose x and dy fill about this much (a core's L2 is 512 KB). */
const FILTER_BLOCK_BYTES = 256 * 1024;

/**
 * The filter gradient by LatentLab's SIMD kernel (wasm/kernels.ts, convFilterGrad), read
 * straight from x and dy: the input channels are cut in two runs per thread, which the threads
 * take in turn (each computes dW for its channels).
 */
function filterGradientBySimd(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, c: tf.backend_util.Conv2DInfo, filterShape: number[]): TensorInfo {
  const dw = backend.makeOutput([...filterShape], "float32");
  const perImage = 4 * (c.inHeight * c.inWidth * c.inChannels + c.outHeight * c.outWidth * c.outChannels);
  const block = Math.max(1, Math.floor(FILTER_BLOCK_BYTES / perImage));
  const shares = ranges(c.inChannels, 2 * wasmThreads(), 4).map(([ci0, ci1]) => [
    byteOffset(backend, x), byteOffset(backend, dy), byteOffset(backend, dw),
    c.batchSize, c.inHeight, c.inWidth, c.inChannels, c.outHeight, c.outWidth, c.outChannels,
    c.filterHeight, c.filterWidth, c.strideHeight, c.strideWidth, c.padInfo.top, c.padInfo.left, ci0, ci1, block,
  ]);
  runShares(backend, "convFilterGrad", shares);
  return dw;
}

/** dW = Σ over batch chunks of colᵀ · dy, with colᵀ laid out directly (see im2colT). */
function conv2DBackpropFilter({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as ConvAttrs;
  const filterShape = a.filterShape as [number, number, number, number];
  const c = convInfo(x.shape, filterShape, a, "Conv2DBackpropFilter");
  if (winogradFits(c) && c.inChannels % 4 === 0) {
    return filterGradientByWinograd(backend, x, dy, c);
  }
  if (stridedWinogradFits(c) && x.dtype === "float32") {
    return stridedFilterGradientByWinograd(backend, x, dy, c);
  }
  if (pointwise(c) && x.dtype === "float32") {
    // dW = xᵀ · dy over all pixels.
    const dw = simdMatMul(backend, asRows(x), asRows(dy), true, false, undefined, false);
    if (dw) {
      dw.shape = [...filterShape];
      return dw;
    }
  }
  if (c.dilationHeight === 1 && c.dilationWidth === 1 && c.outChannels % 8 === 0) {
    return filterGradientBySimd(backend, x, dy, c, filterShape);
  }
  if (c.filterHeight * c.filterWidth > 1 && c.inChannels >= MIN_CHANNELS_FOR_CONV) {
    const byConv = filterGradientByConv(backend, x, dy, c);
    if (byConv) return byConv;
  }
  const k = c.filterHeight * c.filterWidth * c.inChannels;
  const co = c.outChannels;

  const xT = transpose(backend, x, [3, 0, 1, 2]); // [ci, batch, H, W]
  let dw = null as TensorInfo | null; // (assigned in the callback: a plain `= null` narrows it to null for TypeScript)
  forEachChunk(backend, c, dy, (b0, nb, dyRows) => {
    const n = dyRows.shape[1];
    const colT = backend.makeOutput([1, k, n], "float32");
    im2colT(heapF32(backend), floatOffset(backend, xT), floatOffset(backend, colT), c, c.batchSize, b0, nb);
    const part = matmul(backend, colT, dyRows); // [1, k, co]
    disposeAll(backend, colT);
    if (dw === null) {
      dw = part;
      return;
    }
    const heap = heapF32(backend);
    const to = floatOffset(backend, dw);
    const from = floatOffset(backend, part);
    for (let i = 0; i < k * co; i++) heap[to + i] += heap[from + i];
    disposeAll(backend, part);
  });
  disposeAll(backend, xT);
  const out = dw as TensorInfo;
  out.shape = [...filterShape];
  return out;
}

/**
 * The input gradient by LatentLab's SIMD kernel (wasm/kernels.ts, convInputGrad), gathered
 * straight from dy (given zero columns on both sides) and the filter laid out [fh, fw, co, ci];
 * the batch is cut in four runs of images per thread, which the threads take in turn.
 */
function inputGradientBySimd(backend: WasmBackend, dy: TensorInfo, filter: TensorInfo, c: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: nb, inHeight: H, inWidth: W, inChannels: ci, outChannels: co, outHeight: OH, outWidth: OW } = c;
  const { filterWidth: fw, strideWidth: sw } = c;
  const { top, left } = c.padInfo;
  // dy columns the kernel reads: (p + left − kw)/sw + j for phases p < sw, taps kw < fw, and up to
  // three past a phase's last output (it computes four at a time).
  const padL = Math.max(0, -Math.floor((left - fw + 1) / sw));
  const lastRead = Math.floor((sw - 1 + left) / sw) + Math.ceil(W / sw) + 2;
  const OWp = padL + Math.max(OW, lastRead + 1);
  const dyp = backend.makeOutput([nb, OH, OWp, co], "float32");
  const simd = simdKernels(backend);
  simd.zero(byteOffset(backend, dyp), 4 * sizeOf(dyp.shape));
  simd.copyRows(byteOffset(backend, dy), 4 * OW * co, byteOffset(backend, dyp) + 4 * padL * co, 4 * OWp * co, nb * OH, 4 * OW * co);
  const wt = transpose(backend, filter, [0, 1, 3, 2]);
  const dx = backend.makeOutput([nb, H, W, ci], "float32");
  const shares = ranges(nb, 4 * wasmThreads()).map(([b0, b1]) => [
    byteOffset(backend, dyp), byteOffset(backend, wt), byteOffset(backend, dx),
    H, W, ci, OH, OWp, co, c.filterHeight, fw, c.strideHeight, sw, top, left, padL, b0, b1,
  ]);
  runShares(backend, "convInputGrad", shares);
  disposeAll(backend, dyp, wt);
  return dx;
}

/** The taps and output positions of one phase r of a strided axis (see inputGradientByPhases). */
function phaseOf(r: number, stride: number, filter: number, pad: number, inSize: number, outSize: number) {
  const taps = r < filter ? Math.ceil((filter - r) / stride) : 0;
  const qLo = Math.ceil((pad - r) / stride);
  const qHi = Math.floor((inSize - 1 + pad - r) / stride);
  const count = qHi - qLo + 1;
  const before = Math.max(0, taps - 1 - qLo); // the conv's pads
  const first = qLo - (taps - 1) + before; // its first output row that we use
  const after = Math.max(0, first + count - (outSize + before - taps + 1));
  return { taps, qLo, count, before, after, first };
}

/**
 * The input gradient of a conv (and the forward pass of a transposed conv) as sh·sw stride-1
 * forward convs (forwardConv), one per phase of the input grid: the input rows ih = q·sh + ry − top
 * only ever meet taps kh = ry + sh·m, so they are dy convolved with those taps turned half a turn
 * (kh → last tap first) and their channel axes swapped. At stride 1 there is one phase and its
 * conv is dx itself; otherwise each phase's output is written to every sh-th row and sw-th
 * column of dx.
 */
function inputGradientByPhases(backend: WasmBackend, dy: TensorInfo, filter: TensorInfo, c: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: nb, inHeight: H, inWidth: W, inChannels: ci, outChannels: co } = c;
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = c;
  let dx: TensorInfo | null = null;
  for (let ry = 0; ry < sh; ry++) {
    const py = phaseOf(ry, sh, fh, c.padInfo.top, H, c.outHeight);
    for (let rx = 0; rx < sw; rx++) {
      const px = phaseOf(rx, sw, fw, c.padInfo.left, W, c.outWidth);
      if (py.taps === 0 || px.taps === 0 || py.count <= 0 || px.count <= 0) continue;
      const turned = backend.makeOutput([py.taps, px.taps, co, ci], "float32");
      let heap = heapF32(backend);
      const src = floatOffset(backend, filter);
      const dst = floatOffset(backend, turned);
      for (let m = 0; m < py.taps; m++) {
        for (let n = 0; n < px.taps; n++) {
          const kh = ry + sh * (py.taps - 1 - m);
          const kw = rx + sw * (px.taps - 1 - n);
          const from = src + (kh * fw + kw) * ci * co;
          const to = dst + (m * px.taps + n) * co * ci;
          for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) heap[to + o * ci + i] = heap[from + i * co + o];
        }
      }
      const out = forwardConv(backend, dy, turned, {
        strides: [1, 1],
        pad: [[0, 0], [py.before, py.after], [px.before, px.after], [0, 0]],
        dataFormat: "NHWC",
        dilations: [1, 1],
      });
      disposeAll(backend, turned);
      const [, oh, ow] = out.shape;
      if (sh === 1 && sw === 1 && py.first === 0 && px.first === 0 && oh === H && ow === W) return out; // dx itself
      if (dx === null) {
        dx = backend.makeOutput([nb, H, W, ci], "float32");
        const at = floatOffset(backend, dx);
        heapF32(backend).fill(0, at, at + nb * H * W * ci); // phases without taps stay zero
      }
      heap = heapF32(backend);
      const outOff = floatOffset(backend, out);
      const dxOff = floatOffset(backend, dx);
      for (let b = 0; b < nb; b++) {
        for (let q = 0; q < py.count; q++) {
          const ih = (py.qLo + q) * sh + ry - c.padInfo.top;
          let s = outOff + ((b * oh + py.first + q) * ow + px.first) * ci;
          let d = dxOff + ((b * H + ih) * W + px.qLo * sw + rx - c.padInfo.left) * ci;
          for (let qx = 0; qx < px.count; qx++, s += ci, d += sw * ci) for (let i = 0; i < ci; i++) heap[d + i] = heap[s + i];
        }
      }
      disposeAll(backend, out);
    }
  }
  if (dx === null) {
    // No phase has a tap (a filter smaller than the stride cannot reach every input): all zero.
    dx = backend.makeOutput([nb, H, W, ci], "float32");
    const at = floatOffset(backend, dx);
    heapF32(backend).fill(0, at, at + nb * H * W * ci);
  }
  return dx;
}

/**
 * The input gradient of a conv, and the forward pass of a transposed conv: by convs (see
 * inputGradientByPhases) at stride 1 or with many channels; otherwise dx = col2im(dy · Wᵀ),
 * chunk by chunk of the batch.
 */
function conv2DBackpropInput({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = attrs as unknown as ConvAttrs;
  const inputShape = a.inputShape as [number, number, number, number];
  const c = convInfo(inputShape, filter.shape, a, "Conv2DBackpropInput");
  const stride1 = c.strideHeight === 1 && c.strideWidth === 1;
  if (winogradFits(c) && c.outChannels % 4 === 0 && c.inChannels % 8 === 0) {
    return inputGradientByWinograd(backend, dy, filter, c);
  }
  if (stridedWinogradFits(c) && stridedWinogradCovers(c) && dy.dtype === "float32") {
    return stridedInputGradientByWinograd(backend, dy, filter, c);
  }
  if (pointwise(c) && dy.dtype === "float32") {
    // dx = dy · Wᵀ for every pixel.
    const dx = simdMatMul(backend, asRows(dy), { ...filter, shape: [1, c.inChannels, c.outChannels] }, false, true, undefined, false);
    if (dx) {
      dx.shape = [...inputShape];
      return dx;
    }
  }
  if (c.dilationHeight === 1 && c.dilationWidth === 1 && c.inChannels % 8 === 0) {
    return inputGradientBySimd(backend, dy, filter, c);
  }
  if (c.dilationHeight === 1 && c.dilationWidth === 1 && (stride1 || c.inChannels >= MIN_CHANNELS_FOR_CONV)) {
    return inputGradientByPhases(backend, dy, filter, c);
  }
  const k = c.filterHeight * c.filterWidth * c.inChannels;
  const co = c.outChannels;
  const imageFloats = c.inHeight * c.inWidth * c.inChannels;

  const dx = backend.makeOutput([...inputShape], "float32");
  const dxOff = floatOffset(backend, dx);
  heapF32(backend).fill(0, dxOff, dxOff + sizeOf(inputShape));
  // col = dy · Wᵀ: LatentLab's SIMD product on both threads reading W [k, co] as Bᵀ where k is in
  // eights (its sums run in XNNPACK's order: equal to the bit where not fused), else XNNPACK's by an explicit Wᵀ.
  let wT = null as TensorInfo | null; // (made in the callback only where needed)
  const product = (dyRows: TensorInfo): TensorInfo =>
    (k % 8 === 0 ? simdMatMul(backend, dyRows, { ...filter, shape: [1, k, co] }, false, true, undefined, false) : null) ??
    matmul(backend, dyRows, { ...(wT ??= transpose(backend, { ...filter, shape: [k, co] }, [1, 0])), shape: [1, co, k] });
  const undilated = c.dilationHeight === 1 && c.dilationWidth === 1;
  forEachChunk(backend, c, dy, (b0, nb, dyRows) => {
    const col = product(dyRows); // [1, n, k]
    if (undilated) {
      // col2im by SIMD runs, images shared between threads (wasm/kernels.ts, col2im: a DCGAN
      // generator's 64 → 1 output layer over 128 images, dy to dx 3.2 → 1.5 ms with the product).
      runShares(backend, "col2im", ranges(nb, Math.min(nb, 4 * wasmThreads())).map(([i0, i1]) => [
        byteOffset(backend, col), 4 * (dxOff + b0 * imageFloats), c.inHeight, c.inWidth, c.inChannels, c.outHeight, c.outWidth,
        c.filterHeight, c.filterWidth, c.strideHeight, c.strideWidth, c.padInfo.top, c.padInfo.left, i0, i1,
      ]));
    } else {
      col2im(heapF32(backend), floatOffset(backend, col), dxOff + b0 * imageFloats, { ...c, batchSize: nb });
    }
    disposeAll(backend, col);
  });
  if (wT) disposeAll(backend, wT);
  return dx;
}

interface ForwardAttrs extends ConvAttrs {
  dilations: number | [number, number];
  activation?: string;
}

/**
 * A 1×1 stride-1 conv without padding: every pixel's channels times the filter, a matrix
 * product [pixels, ci] · [ci, co] (XNNPACK's conv ran these at ~20 GFLOP/s, our product at 40+).
 */
function pointwise(c: tf.backend_util.Conv2DInfo): boolean {
  return (
    c.filterHeight === 1 && c.filterWidth === 1 && c.strideHeight === 1 && c.strideWidth === 1 &&
    c.padInfo.top === 0 && c.padInfo.left === 0 && c.outHeight === c.inHeight && c.outWidth === c.inWidth
  );
}

/** x (NHWC) as the matrix [1, pixels, channels]. */
function asRows(x: TensorInfo): TensorInfo {
  const [b, h, w, c] = x.shape;
  return { ...x, shape: [1, b * h * w, c] };
}

/**
 * Output channels up to this many go one at a time through convForward (panelColumns in
 * wasm/kernels.ts); more, not in eights, are padded to eights. A U-Net's 3×3 32 → 1 output conv:
 * batch 16 1.37 → 0.73 ms, batch 128 9.7 → 4.5 ms, equal to the bit.
 */
const NARROW_COLUMNS = 4;

/**
 * Any other forward conv (strided, other filter sizes, dilated, channel counts Winograd does not
 * take) by LatentLab's direct kernel (wasm/kernels.ts, convForward): output pixels in shares,
 * each a product of patches (read in place) by the filter [fh·fw·ci, co]. Output channels not in
 * eights are padded to eights (zero filter columns) and cut back, or up to NARROW_COLUMNS of them
 * taken one at a time. Each sum runs as XNNPACK's does (from
 * the bias, over (kh, kw, ci) in order), so results match tfjs's conv to the bit (within float32
 * rounding where the kernels fuse multiply-adds, see fusedMultiplyAdd in simd.ts); XNNPACK ran
 * these on its own thread pool, which LatentLab no longer starts (see threads.ts).
 */
function directForward(backend: WasmBackend, x: TensorInfo, filter: TensorInfo, bias: TensorInfo | null, c: tf.backend_util.Conv2DInfo, relu: boolean): TensorInfo {
  const co = c.outChannels;
  if (co % 8 !== 0 && co > NARROW_COLUMNS) {
    const taps = c.filterHeight * c.filterWidth * c.inChannels;
    const wide = resizeChannels(backend, { ...filter, shape: [taps, co] }, eights(co));
    const wideBias = bias ? resizeChannels(backend, bias, eights(co)) : null;
    const y = directForward(backend, x, { ...wide, shape: [c.filterHeight, c.filterWidth, c.inChannels, eights(co)] }, wideBias, { ...c, outChannels: eights(co) }, relu);
    const out = resizeChannels(backend, y, co);
    disposeAll(backend, wide, y, ...(wideBias ? [wideBias] : []));
    return out;
  }
  const { batchSize: batch, inHeight: H, inWidth: W, inChannels: ci, outHeight: OH, outWidth: OW } = c;
  const y = backend.makeOutput([batch, OH, OW, co], "float32");
  const pixels = batch * OH * OW;
  if (pixels === 0) return y;
  const taps = c.filterHeight * c.filterWidth;
  // As many threads as for the padded columns: copying the patches costs the same.
  const macs = pixels * taps * ci * eights(co);
  const parts = ranges(pixels, macs < PARALLEL_MACS ? 1 : 4 * wasmThreads(), 4);
  const scratch = threadScratch(backend, ci + 4 + 4 * taps + 4 * taps * ci, 4); // zeros, 4·taps pointers, then the panel
  const [xAt, gAt, yAt] = [x, filter, y].map((t) => byteOffset(backend, t));
  const shares = parts.map(([p0, p1]) => [
    xAt, gAt, bias ? byteOffset(backend, bias) : 0, yAt, 0,
    H, W, ci, OH, OW, co, c.filterHeight, c.filterWidth, c.strideHeight, c.strideWidth, c.dilationHeight, c.dilationWidth,
    c.padInfo.top, c.padInfo.left, p0, p1, relu ? 1 : 0,
  ]);
  runShares(backend, "convForward", shares, scratch);
  disposeAll(backend, scratch.info);
  return y;
}

/**
 * A forward conv (+ bias, then relu if asked) by Winograd (3×3 stride 1, see winograd.ts; 4×4
 * stride 2, winograd-strided.ts), as a product (1×1, see pointwise) or directly (directForward);
 * null for NCHW or other dtypes.
 */
function fastForward(backend: WasmBackend, x: TensorInfo, filter: TensorInfo, bias: TensorInfo | null, a: ForwardAttrs, relu: boolean): TensorInfo | null {
  if (a.dataFormat === "NCHW" || x.dtype !== "float32" || x.shape.length !== 4) return null;
  const c = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    a.strides, a.dilations, a.pad, a.dimRoundingMode, false, "channelsLast",
  );
  if (bias && sizeOf(bias.shape) !== c.outChannels) return null;
  if (winogradFits(c) && c.inChannels % 4 === 0 && c.outChannels % 8 === 0) return convByWinograd(backend, x, filter, bias, c, relu);
  if (stridedWinogradFits(c)) return stridedConvByWinograd(backend, x, filter, bias, c, relu);
  if (pointwise(c)) {
    const y = simdMatMul(backend, asRows(x), { ...filter, shape: [1, c.inChannels, c.outChannels] }, false, false, bias ?? undefined, relu);
    if (y) {
      y.shape = [c.batchSize, c.outHeight, c.outWidth, c.outChannels];
      return y;
    }
  }
  return directForward(backend, x, filter, bias, c, relu);
}

/** Conv2D by fastForward (NHWC float32), else tfjs-backend-wasm's kernel. */
function forwardConv(backend: WasmBackend, x: TensorInfo, filter: TensorInfo, attrs: ForwardAttrs): TensorInfo {
  return fastForward(backend, x, filter, null, attrs, false) ?? runOriginal("Conv2D", backend, { x, filter }, attrs as unknown as Record<string, unknown>);
}

/** The forward conv: fastForward for NHWC float32, else tfjs-backend-wasm's XNNPACK conv. */
function conv2D({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
  return forwardConv(backend, x, filter, attrs as unknown as ForwardAttrs);
}

/** The forward conv with bias and activation: fastForward for none or relu, else XNNPACK's (other activations). */
function fusedConv2D({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x, filter, bias, preluActivationWeights } = inputs as Record<string, TensorInfo | undefined> as { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
  const a = attrs as unknown as ForwardAttrs;
  const activation = a.activation ?? "linear";
  const y = (activation === "linear" || activation === "relu") && !preluActivationWeights
    ? fastForward(backend, x, filter, bias ?? null, a, activation === "relu")
    : null;
  return y ?? runOriginal("FusedConv2D", backend, inputs as Record<string, TensorInfo>, attrs as Record<string, unknown>);
}

/** LatentLab's conv with addends (nn/fused.ts, fusedConv2dAdd): x ⊛ filter + bias (per channel, or per image) + addend. */
export const CONV_ADD = "LatentLabConv2DAdd";

/**
 * A 3×3 stride-1 conv (ci in fours, co in eights, NHWC float32) by Winograd with a bias per
 * channel ([co]) or, with `biasPerImage`, per image ([batch, co]), and an optional addend shaped
 * like the output, added in the output pass (see ConvAddends in winograd.ts).
 */
function conv2DAdd({ inputs, backend: anyBackend, attrs }: Parameters<tf.KernelFunc>[0]): TensorInfo {
  const backend = asWasmBackend(anyBackend);
  const { x, filter, bias, addend } = inputs as Record<string, TensorInfo | undefined> as { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; addend?: TensorInfo };
  const a = attrs as unknown as ForwardAttrs & { biasPerImage: boolean };
  const c = convInfo(x.shape, filter.shape, a, CONV_ADD);
  if (!(winogradFits(c) && c.inChannels % 4 === 0 && c.outChannels % 8 === 0 && x.dtype === "float32")) {
    throw new Error(`${CONV_ADD} takes 3×3 stride-1 float32 convs with input channels in fours and output channels in eights, got x [${x.shape}], filter [${filter.shape}]; use fusedConv2dAdd, which falls back to separate ops.`);
  }
  return convByWinograd(backend, x, filter, bias ?? null, c, false, { biasPerImage: a.biasPerImage, addend: addend ?? null });
}

export const convKernels: tf.KernelConfig[] = [
  { kernelName: CONV_ADD, backendName: "wasm", kernelFunc: conv2DAdd as tf.KernelFunc },
  { kernelName: "Conv2D", backendName: "wasm", kernelFunc: conv2D as tf.KernelFunc },
  { kernelName: "FusedConv2D", backendName: "wasm", kernelFunc: fusedConv2D as tf.KernelFunc },
  { kernelName: "Conv2DBackpropFilter", backendName: "wasm", kernelFunc: conv2DBackpropFilter as tf.KernelFunc },
  { kernelName: "Conv2DBackpropInput", backendName: "wasm", kernelFunc: conv2DBackpropInput as tf.KernelFunc },
];
