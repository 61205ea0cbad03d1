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
export const LINE_FLOATS = 16;

/** Tiles a share transforms at a time: their V and M fill about this much of a core's L2 (512 KB on the AMD EPYC it was tuned on). */
const TILE_BLOCK_BYTES = 192 * 1024;

/** Tiles per block for `positions` Winograd positions of ci + co channels (a multiple of 4, at least 8). */
export function tileBlock(positions: number, channels: number, bytes = TILE_BLOCK_BYTES): number {
  return Math.max(8, 4 * Math.floor(bytes / (16 * positions * channels)));
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
 * What a forward conv may add to its output before relu, in its output pass: a bias per image
 * ([batch, co], in place of the bias per channel) and a tensor shaped like the output. A U-Net's
 * residual block adds its time embedding after its first conv and its input after its second
 * (each a full pass over the activations as a separate Add: ~6 % of a sampler's step).
 */
export interface ConvAddends {
  biasPerImage?: boolean;
  addend?: TensorInfo | null;
}

/**
 * out[b, oh, ow, o] = bias[o] + Σ x[b, oh − top + kh, ow − left + kw, i] · g[kh, kw, i, o] (plus
 * `extra`'s; then relu), with U = G g Gᵀ ([16 or 36, ci, co], filterTransform) already made. x is
 * [batch, H, W, ci]; ci a multiple of 4, co of 8. Tiles of the output are shared between threads
 * (each owns its outputs).
 */
function winogradConv(
  backend: WasmBackend, x: TensorInfo, u: TensorInfo, bias: TensorInfo | null,
  outH: number, outW: number, co: number, top: number, left: number, relu: boolean, m: Tile, extra: ConvAddends = {},
): TensorInfo {
  const [batch, H, W, ci] = x.shape;
  const y = backend.makeOutput([batch, outH, outW, co], "float32");
  const tiles = batch * Math.ceil(outH / m) * Math.ceil(outW / m);
  if (tiles === 0) return y;
  const positions = (m + 2) ** 2;
  const tb = tileBlock(positions, ci + co);
  const parts = ranges(tiles, 4 * wasmThreads(), tb);
  // F(4×4) also keeps 36 pointers and 36 vectors (see winograd4Conv); V and M have a cache line
  // (16 floats) after each position's rows (positionStride in wasm/kernels.ts); then matmul's 4·ci.
  const scratch = threadScratch(backend, ci + 4 + (m === 4 ? 72 + 144 : 0) + positions * (tb * (ci + co) + 2 * LINE_FLOATS) + 4 * ci, 4);
  const shares = parts.map(([t0, t1]) => [
    byteOffset(backend, x), byteOffset(backend, u), bias ? byteOffset(backend, bias) : 0, byteOffset(backend, y), 0,
    H, W, ci, outH, outW, co, top, left, t0, t1, tb, relu ? 1 : 0, extra.biasPerImage ? 1 : 0, extra.addend ? byteOffset(backend, extra.addend) : 0,
  ]);
  runShares(backend, m === 4 ? "winograd4Conv" : "winogradConv", shares, scratch);
  disposeAll(backend, scratch.info);
  return y;
}

/**
 * Filter transforms go in shares of U's rows of about this many channel pairs (ci·co), up to
 * four a thread, so every thread makes part of a filter of 1 024 pairs or more. A sampler's
 * convs run at batch 16, where the transform, on one thread, was 5–8 % of a 3×3 conv
 * (16×14×14 64 → 64: 0.11 of 1.6 ms).
 */
const FILTER_PAIRS_PER_SHARE = 512;

/** Shares of a filter transform's `rows` rows of U, for a filter of `pairs` channel pairs (see FILTER_PAIRS_PER_SHARE). */
export function filterTransformRows(rows: number, pairs: number): [number, number][] {
  return ranges(rows, Math.min(4 * wasmThreads(), Math.max(1, Math.floor(pairs / FILTER_PAIRS_PER_SHARE))));
}

/** U = G g Gᵀ for a filter [3, 3, ci, co]: [(m + 2)², ci, co], or turned (see winogradFilter) [(m + 2)², co, ci]. */
function filterTransform(backend: WasmBackend, filter: TensorInfo, turn: boolean, m: Tile): TensorInfo {
  const [, , ci, co] = filter.shape;
  const positions = (m + 2) ** 2;
  const u = backend.makeOutput(turn ? [positions, co, ci] : [positions, ci, co], "float32");
  const rows = filterTransformRows(turn ? co : ci, ci * co);
  const [g, at] = [filter, u].map((t) => byteOffset(backend, t));
  if (m === 2) {
    runShares(backend, "winogradFilter", rows.map(([a0, a1]) => [g, at, ci, co, turn ? 1 : 0, a0, a1]));
    return u;
  }
  const tmp = threadScratch(backend, 72, 5); // 18 vectors
  runShares(backend, "winograd4Filter", rows.map(([a0, a1]) => [g, at, ci, co, turn ? 1 : 0, 0, a0, a1]), tmp);
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

/**
 * Most bytes of transformed filters kept (see keptFilter): a bench U-Net's 3×3 convs need about
 * 12 MB; the least recently used go first.
 */
const KEPT_FILTER_BYTES = 16 << 20;
const keptFilters = new Map<object, { backend: WasmBackend; u: TensorInfo; m: Tile; bytes: number }>();
let keptBytes = 0;

function forget(key: object): void {
  const kept = keptFilters.get(key);
  if (!kept) return;
  keptFilters.delete(key);
  keptBytes -= kept.bytes;
  if (kept.backend.dataIdMap.has(kept.u.dataId)) disposeAll(kept.backend, kept.u);
}

/**
 * A forward conv's transformed filter U, kept by its filter's data while no gradient is recorded:
 * a sampler runs the same weights through every step, and transformed them anew each time (5–7 %
 * of a 3×3 conv at batch 16, on one thread; 50 DDIM steps at batch 16, medians of four, four
 * alternating pairs: 2400, 2346, 2267, 2400 → 2302, 2252, 2257, 2117 ms). The data behind a
 * dataId never changes (an optimizer step or an assign gives a variable new data), so its U stays
 * right while the data lives; entries whose filter has been disposed are freed at the next one
 * kept, and at most KEPT_FILTER_BYTES are. Under a tape (training), U is made for the call and
 * freed after it, as before. Null when the caller must free U itself.
 */
function keptFilter(backend: WasmBackend, filter: TensorInfo, m: Tile): TensorInfo | null {
  if (tf.engine().state.gradientDepth > 0) return null;
  const key = filter.dataId as object;
  const kept = keptFilters.get(key);
  if (kept && kept.backend === backend && kept.m === m && backend.dataIdMap.has(kept.u.dataId)) {
    keptFilters.delete(key); // to the back: most recently used
    keptFilters.set(key, kept);
    return kept.u;
  }
  forget(key);
  for (const [other, entry] of keptFilters) if (entry.backend !== backend || !backend.dataIdMap.has(other)) forget(other);
  const u = filterTransform(backend, filter, false, m);
  const bytes = 4 * sizeOf(u.shape);
  if (bytes > KEPT_FILTER_BYTES) {
    disposeAll(backend, u);
    return null;
  }
  for (const other of keptFilters.keys()) {
    if (keptBytes + bytes <= KEPT_FILTER_BYTES) break;
    forget(other);
  }
  keptFilters.set(key, { backend, u, m, bytes });
  keptBytes += bytes;
  return u;
}

/** Whether a transformed filter is kept for the filter with this data (for tests). */
export function filterKept(dataId: object): boolean {
  return keptFilters.has(dataId);
}

/** How many transformed filters are kept, and their bytes (for tests). */
export function keptFilterStats(): { count: number; bytes: number } {
  return { count: keptFilters.size, bytes: keptBytes };
}

/** The forward conv of x by a 3×3 filter [3, 3, ci, co] (ci a multiple of 4, co of 8), with `extra` added before relu. */
export function convByWinograd(
  backend: WasmBackend, x: TensorInfo, filter: TensorInfo, bias: TensorInfo | null,
  c: tf.backend_util.Conv2DInfo, relu: boolean, extra: ConvAddends = {},
): TensorInfo {
  const m = chooseTile(c.outHeight, c.outWidth);
  const kept = keptFilter(backend, filter, m);
  const u = kept ?? filterTransform(backend, filter, false, m);
  const y = winogradConv(backend, x, u, bias, c.outHeight, c.outWidth, c.outChannels, c.padInfo.top, c.padInfo.left, relu, m, extra);
  if (!kept) disposeAll(backend, u);
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
 * F(2×2)'s filter gradient: rows of Winograd positions per share. Each share reads all of x and
 * dy (memory-bound: four one-row shares read them four times), so two shares of two rows: a
 * 128×28×28 32 → 32 filter gradient 16.3 → 14.9 ms. Fixed, so results never depend on threads.
 */
const FILTER_ROWS_PER_SHARE = 2;

/**
 * F(4×4)'s filter gradient: shares of the batch's tiles, each with its own dU over all 36
 * positions, summed in order after. Against two shares of three rows of positions each (both
 * reading all of x and dy and both making the whole column pass of V's transform), one thread,
 * its half of a batch of 128: 14×14 64 → 64 11.2–11.8 → 9.9–10.8 ms, 28×28 32 → 32 10.6–11.1 →
 * 8.5–9.6 ms, 28×28 64 → 32 20.0–20.7 → 17.1–18.5 ms. Four shares, so that four threads can
 * share the work and two even out unequal cores; fixed, so results never depend on threads.
 */
const FILTER4_SHARES = 4;

/**
 * Tile blocks of the F(4×4) filter gradient fill about this much of the second-level cache:
 * each block's products are dU_p += V_pᵀ·Z_p summed along its tiles, and fewer than ~12 tiles
 * left them mostly loads and stores of dU (14×14 64 → 64 in blocks of 8 tiles: 15.8 ms, of 20:
 * 10.8 ms).
 */
const FILTER4_BLOCK_BYTES = 384 * 1024;

/**
 * dg of a 3×3 stride-1 conv, the tile chosen as for the forward conv: dU = Σ_tiles V ⊙ Z, then
 * dg = Gᵀ dU G. F(4×4) cuts the batch's tiles in shares (each sums its own dU, the shares' are
 * added in order after); F(2×2) cuts the four rows of positions (each share reads all of x and
 * dy and owns its rows of dU). Needs ci a multiple of 4 (co is padded to eights).
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
  const at = (t: TensorInfo) => byteOffset(backend, t);
  const dg = backend.makeOutput([3, 3, ci, co], "float32");
  const simd = simdKernels(backend);
  if (chooseTile(OH, OW) === 4) {
    const tiles = batch * Math.ceil(OH / 4) * Math.ceil(OW / 4);
    const parts = ranges(tiles, FILTER4_SHARES);
    const du = backend.makeOutput([parts.length, 36, ci, co], "float32");
    const tb = tileBlock(36, ci + co, FILTER4_BLOCK_BYTES);
    // 36 pointers and 36 vectors, then V and Z with a line after each position's rows, then matmul's 4·tb.
    const scratch = threadScratch(backend, Math.max(ci, co) + 4 + 72 + 144 + 36 * (tb * (ci + co) + 2 * LINE_FLOATS) + 4 * tb, 3);
    const shares = parts.map(([t0, t1], i) => [
      at(x), at(dy), at(du) + 4 * 36 * ci * co * i, 0, H, W, ci, OH, OW, co, c.padInfo.top, c.padInfo.left, t0, t1, tb,
    ]);
    runShares(backend, "winograd4FilterGrad", shares, scratch);
    const tmp = scratchFor(backend, 1, 72);
    simd.winograd4FilterGradOut(at(du), at(dg), ci, co, tmp.at(0), parts.length);
    disposeAll(backend, du, scratch.info, tmp.info);
    return dg;
  }
  const du = backend.makeOutput([16, ci, co], "float32");
  const tb = tileBlock(4 * FILTER_ROWS_PER_SHARE, ci + co);
  const parts = ranges(4, 4 / FILTER_ROWS_PER_SHARE);
  // V and Z with a line after each position's rows, then matmul's 4·tb.
  const scratch = threadScratch(backend, Math.max(ci, co) + 4 + 4 * FILTER_ROWS_PER_SHARE * (tb * (ci + co) + 2 * LINE_FLOATS) + 4 * tb, 3);
  const shares = parts.map(([r0, r1]) => [
    at(x), at(dy), at(du), 0, batch, H, W, ci, OH, OW, co, c.padInfo.top, c.padInfo.left, r0, r1, tb,
  ]);
  runShares(backend, "winogradFilterGrad", shares, scratch);
  simd.winogradFilterGradOut(at(du), at(dg), ci, co);
  disposeAll(backend, du, scratch.info);
  return dg;
}
