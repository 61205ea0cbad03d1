/**
 * 3×3 stride-1 convolutions by Winograd's F(2×2, 3×3) (wasm/kernels.ts, winogradConv and
 * winogradFilterGrad): 16 multiplies for each 2×2 block of outputs and pair of channels where a
 * direct conv needs 36. A U-Net's convs are nearly all of this kind, in all three passes:
 *
 *   forward          y  = conv(x, g) (+ bias, relu)          winogradConv with U = G g Gᵀ
 *   input gradient   dx = conv(dy, g turned half a turn)      winogradConv with U turned
 *   filter gradient  dg = Gᵀ (Σ_tiles V ⊙ A dy Aᵀ) G          winogradFilterGrad, then …Out
 *
 * and F(4×4, 3×3) (36 multiplies per 4×4 block) on most images (see chooseTile), in all three too.
 *
 * Results differ from a direct conv's by rounding only; test/kernels.test.ts compares all three
 * with the cpu backend. F(4×4)'s larger coefficients (up to 8 and 1/24) cost some precision:
 * a 128×28×28 32 → 32 filter gradient is within 6e-5 of the largest value (F(2×2): 9e-6;
 * forward and input gradient: ~1e-6), far inside a minibatch's noise.
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, disposeAll, sizeOf } from "./heap";
import { byteOffset, ranges, runShares, scratchFor, simdKernels, threadScratch } from "../simd";
import { wasmThreads } from "../threads";

type TensorInfo = tf.TensorInfo;

/** Floats in a cache line: the gap after each Winograd position's rows in scratch (positionStride in wasm/kernels.ts). */
const LINE_FLOATS = 16;

/** Tiles a share transforms at a time: their V and M (or Z) fill about this much of a core's 512 KB L2. */
const TILE_BLOCK_BYTES = 192 * 1024;

/** Tiles per block for `positions` Winograd positions of ci + co channels (a multiple of 4, at least 8). */
function tileBlock(positions: number, channels: number): number {
  return Math.max(8, 4 * Math.floor(TILE_BLOCK_BYTES / (16 * positions * channels)));
}

/** Whether a conv is one Winograd F(2×2, 3×3) runs: 3×3 taps, stride 1, no dilation. */
export function winogradFits(c: tf.backend_util.Conv2DInfo): boolean {
  return (
    c.filterHeight === 3 && c.filterWidth === 3 &&
    c.strideHeight === 1 && c.strideWidth === 1 &&
    c.dilationHeight === 1 && c.dilationWidth === 1
  );
}

/**
 * The output tile. F(4×4, 3×3) multiplies least per output (36 per 16 against F(2×2)'s 16 per 4)
 * but its 6×6 transforms cost more, and an image not in fours wastes part of its edge tiles
 * (14×14 computes 16×16). So F(4×4) where its products over the image, positions × tiles, are
 * at most 85 % of F(2×2)'s: 28×28 (56 %), 14×14 (73 %), 7×7 (56 %), 10×10 (81 %); F(2×2) at
 * 6×6 or 5×5 (equal), and for one- or two-pixel images. At 14×14 (a U-Net's lower level), one
 * thread, batch 64: 64 → 64 forward 12.4 → 9.8 ms.
 */
type Tile = 2 | 4;

const F4_PRODUCTS_AT_MOST = 0.85;

function chooseTile(outH: number, outW: number): Tile {
  const products = (m: number) => (m + 2) ** 2 * Math.ceil(outH / m) * Math.ceil(outW / m);
  return products(4) <= F4_PRODUCTS_AT_MOST * products(2) ? 4 : 2;
}

/**
 * out[b, oh, ow, o] = bias[o] + Σ x[b, oh − top + kh, ow − left + kw, i] · g[kh, kw, i, o] (then
 * relu), with U = G g Gᵀ ([16 or 36, ci, co], filterTransform) already made. x is
 * [batch, H, W, ci]; ci a multiple of 4, co of 8. Tiles of the output are shared between threads
 * (each owns its outputs).
 */
function winogradConv(
  backend: WasmBackend, x: TensorInfo, u: TensorInfo, bias: TensorInfo | null,
  outH: number, outW: number, co: number, top: number, left: number, relu: boolean, m: Tile,
): TensorInfo {
  const [batch, H, W, ci] = x.shape;
  const y = backend.makeOutput([batch, outH, outW, co], "float32");
  const tiles = batch * Math.ceil(outH / m) * Math.ceil(outW / m);
  if (tiles === 0) return y;
  const positions = (m + 2) ** 2;
  const tb = tileBlock(positions, ci + co);
  const parts = ranges(tiles, 4 * wasmThreads(), tb);
  // F(4×4) also keeps 36 pointers and 36 vectors (see winograd4Conv); V and M have a cache line
  // (16 floats) after each position's rows (positionStride in wasm/kernels.ts).
  const scratch = threadScratch(backend, ci + 4 + (m === 4 ? 72 + 144 : 0) + positions * (tb * (ci + co) + 2 * LINE_FLOATS), 4);
  const shares = parts.map(([t0, t1]) => [
    byteOffset(backend, x), byteOffset(backend, u), bias ? byteOffset(backend, bias) : 0, byteOffset(backend, y), 0,
    H, W, ci, outH, outW, co, top, left, t0, t1, tb, relu ? 1 : 0,
  ]);
  runShares(backend, m === 4 ? "winograd4Conv" : "winogradConv", shares, scratch);
  disposeAll(backend, scratch.info);
  return y;
}

/** U = G g Gᵀ for a filter [3, 3, ci, co]: [(m + 2)², ci, co], or turned (see winogradFilter) [(m + 2)², co, ci]. */
function filterTransform(backend: WasmBackend, filter: TensorInfo, turn: boolean, m: Tile): TensorInfo {
  const [, , ci, co] = filter.shape;
  const positions = (m + 2) ** 2;
  const u = backend.makeOutput(turn ? [positions, co, ci] : [positions, ci, co], "float32");
  const simd = simdKernels(backend);
  if (m === 2) {
    simd.winogradFilter(byteOffset(backend, filter), byteOffset(backend, u), ci, co, turn ? 1 : 0);
    return u;
  }
  const tmp = scratchFor(backend, 1, 72); // 18 vectors
  simd.winograd4Filter(byteOffset(backend, filter), byteOffset(backend, u), ci, co, turn ? 1 : 0, tmp.at(0));
  disposeAll(backend, tmp.info);
  return u;
}

/**
 * x [..., from] as [..., to]: zero channels added after its own (to > from), or its first `to`
 * channels (to < from). A new tensor. The filter gradient needs output channels in eights; for
 * fewer (an output image's 1 or 3) dy gets zero channels added, and dg is cut back (a 32 → 1
 * channel U-Net output conv: 24 → 8 ms at batch 128). The forward conv and input gradient gain
 * nothing that way (8 → 14 ms: the input transform costs the same for 1 output channel as for 32).
 */
export function resizeChannels(backend: WasmBackend, x: TensorInfo, to: number): TensorInfo {
  const from = x.shape[x.shape.length - 1];
  const rows = sizeOf(x.shape) / from;
  const out = backend.makeOutput([...x.shape.slice(0, -1), to], "float32");
  const simd = simdKernels(backend);
  if (to > from) simd.zero(byteOffset(backend, out), 4 * rows * to);
  simd.copyRows(byteOffset(backend, x), 4 * from, byteOffset(backend, out), 4 * to, rows, 4 * Math.min(from, to));
  return out;
}

export const eights = (n: number) => 8 * Math.ceil(n / 8);

/** The forward conv of x by a 3×3 filter [3, 3, ci, co] (ci a multiple of 4, co of 8). */
export function convByWinograd(
  backend: WasmBackend, x: TensorInfo, filter: TensorInfo, bias: TensorInfo | null,
  c: tf.backend_util.Conv2DInfo, relu: boolean,
): TensorInfo {
  const m = chooseTile(c.outHeight, c.outWidth);
  const u = filterTransform(backend, filter, false, m);
  const y = winogradConv(backend, x, u, bias, c.outHeight, c.outWidth, c.outChannels, c.padInfo.top, c.padInfo.left, relu, m);
  disposeAll(backend, u);
  return y;
}

/**
 * dx of a 3×3 stride-1 conv: dy convolved with the filter turned half a turn (channel axes
 * swapped), which reads dy from 2 − top rows and 2 − left columns before each output. Needs co
 * (dy's channels) a multiple of 4 and ci of 8.
 */
export function inputGradientByWinograd(backend: WasmBackend, dy: TensorInfo, filter: TensorInfo, c: tf.backend_util.Conv2DInfo): TensorInfo {
  const m = chooseTile(c.inHeight, c.inWidth);
  const u = filterTransform(backend, filter, true, m);
  const dx = winogradConv(backend, dy, u, null, c.inHeight, c.inWidth, c.inChannels, 2 - c.padInfo.top, 2 - c.padInfo.left, false, m);
  disposeAll(backend, u);
  return dx;
}

/**
 * Rows of Winograd positions per share of the filter gradient. Each share reads all of x and dy
 * (memory-bound: four one-row shares read them four times), so two shares of two rows: a
 * 128×28×28 32 → 32 filter gradient 16.3 → 14.9 ms. Fixed, so results never depend on threads.
 */
const FILTER_ROWS_PER_SHARE = 2;
/** F(4×4)'s six rows of positions in two shares of three. */
const FILTER4_ROWS_PER_SHARE = 3;

/**
 * dg of a 3×3 stride-1 conv: the rows of Winograd positions (four for F(2×2), six for F(4×4),
 * chosen as for the forward conv) are cut in shares (each reads all of x and dy and owns its
 * rows of dU), then dg = Gᵀ dU G. Needs ci a multiple of 4 (co is padded to eights).
 */
export function filterGradientByWinograd(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, c: tf.backend_util.Conv2DInfo): TensorInfo {
  if (c.outChannels % 8 !== 0) {
    const dyWide = resizeChannels(backend, dy, eights(c.outChannels));
    const wide = filterGradientByWinograd(backend, x, dyWide, { ...c, outChannels: eights(c.outChannels) });
    const dg = resizeChannels(backend, wide, c.outChannels);
    disposeAll(backend, dyWide, wide);
    return dg;
  }
  const { batchSize: batch, inHeight: H, inWidth: W, inChannels: ci, outHeight: OH, outWidth: OW, outChannels: co } = c;
  const m = chooseTile(OH, OW);
  const side = m + 2; // rows (and columns) of Winograd positions
  const du = backend.makeOutput([side * side, ci, co], "float32");
  const rows = m === 4 ? FILTER4_ROWS_PER_SHARE : FILTER_ROWS_PER_SHARE;
  const tb = tileBlock(side * rows, ci + co);
  const parts = ranges(side, side / rows);
  // F(4×4) also keeps 36 pointers and 36 vectors (see winograd4FilterGrad); V and Z a line after each position.
  const scratch = threadScratch(backend, Math.max(ci, co) + 4 + (m === 4 ? 72 + 144 : 0) + side * rows * (tb * (ci + co) + 2 * LINE_FLOATS), 3);
  const shares = parts.map(([r0, r1]) => [
    byteOffset(backend, x), byteOffset(backend, dy), byteOffset(backend, du), 0,
    batch, H, W, ci, OH, OW, co, c.padInfo.top, c.padInfo.left, r0, r1, tb,
  ]);
  runShares(backend, m === 4 ? "winograd4FilterGrad" : "winogradFilterGrad", shares, scratch);
  const dg = backend.makeOutput([3, 3, ci, co], "float32");
  const simd = simdKernels(backend);
  if (m === 4) {
    const tmp = scratchFor(backend, 1, 72);
    simd.winograd4FilterGradOut(byteOffset(backend, du), byteOffset(backend, dg), ci, co, tmp.at(0));
    disposeAll(backend, tmp.info);
  } else {
    simd.winogradFilterGradOut(byteOffset(backend, du), byteOffset(backend, dg), ci, co);
  }
  disposeAll(backend, du, scratch.info);
  return dg;
}
