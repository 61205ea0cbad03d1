/**
 * 4×4 stride-2 convolutions (a DCGAN's, and every transposed conv that undoes one) by Winograd's
 * F(4×4, 2×2) over the input's phases (wasm/kernels.ts, winograd42Conv and winograd42FilterGrad),
 * in all three passes:
 *
 *   forward          the 2×2 stride-1 conv of x's four phases side by side (channels (p, q, i))
 *                    by g'[a, b, (p, q, i), o] = g[2a + p, 2b + q, i, o]
 *   input gradient   that conv's input gradient (dy padded by one, by g' turned half a turn),
 *                    each of its four channel groups written to its phase of dx
 *   filter gradient  that conv's, dg' = Gᵀ (Σ_tiles V ⊙ A dy Aᵀ) G, its taps put back in g's order
 *
 * A 2×2 conv by F(4×4, 2×2) multiplies 25 times per 4×4 outputs and channel pair where the
 * direct conv multiplies 64; at a 7×7 output (tiles over 8×8) that is 1.96× fewer. The phases
 * are read and written in place, never copied out. Results differ from a direct conv's by
 * rounding only (test/kernels.test.ts compares all three with the cpu backend).
 */
import * as tf from "@tensorflow/tfjs";
import { WasmBackend, disposeAll, heapF32, floatOffset } from "./heap";
import { byteOffset, ranges, runShares, scratchFor, simdKernels, threadScratch } from "../simd";
import { wasmThreads } from "../threads";
import { LINE_FLOATS, filterTransformRows, tileBlock } from "./winograd";

type TensorInfo = tf.TensorInfo;

/** Winograd positions of F(4×4, 2×2): a 5×5 patch per tile. */
const POSITIONS = 25;

/**
 * Tiles a share transforms at a time: their V and M fill about this much of the second-level
 * cache. With winograd.ts's 192 KB (8 tiles of 64 + 128 channels) the 3.2 MB of a 64 → 128
 * filter's U streamed from memory for every block: forward 20 ms, against 18 with 1 MB.
 */
const TILE_BLOCK_BYTES = 1024 * 1024;

/**
 * Whether a conv goes by phases: 4×4 taps, stride 2, no dilation, input channels in fours and
 * output channels in eights (what the products need: the 2×2 conv has 4·ci input channels).
 */
export function stridedWinogradFits(c: tf.backend_util.Conv2DInfo): boolean {
  return (
    c.filterHeight === 4 && c.filterWidth === 4 &&
    c.strideHeight === 2 && c.strideWidth === 2 &&
    c.dilationHeight === 1 && c.dilationWidth === 1 &&
    c.inChannels % 4 === 0 && c.outChannels % 8 === 0 &&
    c.padInfo.top >= 0 && c.padInfo.left >= 0
  );
}

/**
 * Whether the input gradient's phases reach every pixel of dx: its 2×2 conv gives rows
 * 2R + p − top for R ≤ outH, which must reach the last row (a "valid" conv of an odd image never
 * reads its last row, whose gradient is zero; those keep the other paths).
 */
export function stridedWinogradCovers(c: tf.backend_util.Conv2DInfo): boolean {
  return 2 * (c.outHeight + 1) - c.padInfo.top >= c.inHeight && 2 * (c.outWidth + 1) - c.padInfo.left >= c.inWidth;
}

/**
 * g [4, 4, ci, co] as g' [2, 2, 4·ci, co] (toPhases), or back (the filter gradient): tap
 * (2a + p, 2b + q) is g' tap (a, b), channel block (p, q).
 */
function regroupTaps(backend: WasmBackend, from: TensorInfo, toPhases: boolean): TensorInfo {
  const co = from.shape[3];
  const ci = toPhases ? from.shape[2] : from.shape[2] / 4;
  const out = backend.makeOutput(toPhases ? [2, 2, 4 * ci, co] : [4, 4, ci, co], "float32");
  const heap = heapF32(backend);
  const [src, dst] = [floatOffset(backend, from), floatOffset(backend, out)];
  const block = ci * co;
  for (let a = 0; a < 2; a++) {
    for (let b = 0; b < 2; b++) {
      for (let p = 0; p < 2; p++) {
        for (let q = 0; q < 2; q++) {
          const tap = ((2 * a + p) * 4 + 2 * b + q) * block;
          const phase = ((a * 2 + b) * 4 + p * 2 + q) * block;
          const [s, d] = toPhases ? [src + tap, dst + phase] : [src + phase, dst + tap];
          heap.copyWithin(d, s, s + block);
        }
      }
    }
  }
  return out;
}

/** U = G g' Gᵀ for g' [2, 2, K, N]: [25, K, N], or turned [25, N, K]. */
function filterTransform(backend: WasmBackend, g: TensorInfo, turn: boolean): TensorInfo {
  const [, , K, N] = g.shape;
  const u = backend.makeOutput(turn ? [POSITIONS, N, K] : [POSITIONS, K, N], "float32");
  const rows = filterTransformRows(turn ? N : K, K * N);
  const tmp = threadScratch(backend, 40, 5); // 10 vectors
  runShares(backend, "winograd42Filter", rows.map(([a0, a1]) => [byteOffset(backend, g), byteOffset(backend, u), K, N, turn ? 1 : 0, 0, a0, a1]), tmp);
  disposeAll(backend, tmp.info);
  return u;
}

/** Where a 2×2 conv by F(4×4, 2×2) reads its input and writes its output (see winograd42Conv). */
interface Geometry {
  /** The input image [batch, H, W, c], read on a grid of P phases from `top` rows and `left` columns before. */
  x: TensorInfo;
  P: number;
  top: number;
  left: number;
  /** The 2×2 conv's output size. */
  OH2: number;
  OW2: number;
  /** The output image's shape [batch, OH, OW, co], written on a grid of Q phases from `otop`, `oleft`. */
  out: [number, number, number, number];
  Q: number;
  otop: number;
  oleft: number;
}

function phaseConv(backend: WasmBackend, g: Geometry, u: TensorInfo, bias: TensorInfo | null, relu: boolean): TensorInfo {
  const [batch, H, W, c] = g.x.shape;
  const [, OH, OW, co] = g.out;
  const y = backend.makeOutput(g.out, "float32");
  const tiles = batch * Math.ceil(g.OH2 / 4) * Math.ceil(g.OW2 / 4);
  if (tiles === 0) return y;
  const K = g.P * g.P * c, N = g.Q * g.Q * co;
  const tb = tileBlock(POSITIONS, K + N, TILE_BLOCK_BYTES);
  const parts = ranges(tiles, 4 * wasmThreads(), tb);
  // c zeros, 25 pointers, 25 vectors, V and M with a line after each position's rows, then matmul's 4·K.
  const scratch = threadScratch(backend, c + 4 + 50 + 100 + POSITIONS * (tb * (K + N) + 2 * LINE_FLOATS) + 4 * K, 4);
  const shares = parts.map(([t0, t1]) => [
    byteOffset(backend, g.x), byteOffset(backend, u), bias ? byteOffset(backend, bias) : 0, byteOffset(backend, y), 0,
    H, W, c, g.P, g.top, g.left, g.OH2, g.OW2, OH, OW, co, g.Q, g.otop, g.oleft, t0, t1, tb, relu ? 1 : 0,
  ]);
  runShares(backend, "winograd42Conv", shares, scratch);
  disposeAll(backend, scratch.info);
  return y;
}

/** The forward conv (+ bias, then relu if asked) of x by a 4×4 stride-2 filter (stridedWinogradFits). */
export function stridedConvByWinograd(
  backend: WasmBackend, x: TensorInfo, filter: TensorInfo, bias: TensorInfo | null, c: tf.backend_util.Conv2DInfo, relu: boolean,
): TensorInfo {
  const g = regroupTaps(backend, filter, true);
  const u = filterTransform(backend, g, false);
  const y = phaseConv(backend, {
    x, P: 2, top: c.padInfo.top, left: c.padInfo.left, OH2: c.outHeight, OW2: c.outWidth,
    out: [c.batchSize, c.outHeight, c.outWidth, c.outChannels], Q: 1, otop: 0, oleft: 0,
  }, u, bias, relu);
  disposeAll(backend, g, u);
  return y;
}

/**
 * dx of a 4×4 stride-2 conv (and a transposed conv's forward pass), where its phases cover dx
 * (stridedWinogradCovers): the 2×2 conv of dy, one zero row and column before, by g' turned,
 * each output channel block (p, q) written to dx's phase (p, q).
 */
export function stridedInputGradientByWinograd(backend: WasmBackend, dy: TensorInfo, filter: TensorInfo, c: tf.backend_util.Conv2DInfo): TensorInfo {
  const g = regroupTaps(backend, filter, true);
  const u = filterTransform(backend, g, true);
  const dx = phaseConv(backend, {
    x: dy, P: 1, top: 1, left: 1, OH2: c.outHeight + 1, OW2: c.outWidth + 1,
    out: [c.batchSize, c.inHeight, c.inWidth, c.inChannels], Q: 2, otop: c.padInfo.top, oleft: c.padInfo.left,
  }, u, null, false);
  disposeAll(backend, g, u);
  return dx;
}

/**
 * The filter gradient's tiles go in this many shares, each summing its own dU (added in order
 * after): fixed, so results never depend on the thread count (as F(4×4, 3×3)'s, winograd.ts).
 */
const FILTER_SHARES = 4;

/** Tile blocks of the filter gradient fill about this much of the second-level cache (see winograd.ts). */
const FILTER_BLOCK_BYTES = 1024 * 1024;

/** dg of a 4×4 stride-2 conv: the 2×2 conv's dU = Σ_tiles V ⊙ Z by shares of the tiles, dg' = Gᵀ dU G, taps regrouped. */
export function stridedFilterGradientByWinograd(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, c: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: batch, inHeight: H, inWidth: W, inChannels: ci, outHeight: OH, outWidth: OW, outChannels: co } = c;
  const K = 4 * ci;
  const tiles = batch * Math.ceil(OH / 4) * Math.ceil(OW / 4);
  const parts = ranges(tiles, FILTER_SHARES);
  const du = backend.makeOutput([Math.max(1, parts.length), POSITIONS, K, co], "float32");
  const tb = tileBlock(POSITIONS, K + co, FILTER_BLOCK_BYTES);
  // max(ci, co) zeros, 25 pointers, 25 vectors, V and Z with a line after each position's rows, then matmul's 4·tb.
  const scratch = threadScratch(backend, Math.max(ci, co) + 4 + 50 + 100 + POSITIONS * (tb * (K + co) + 2 * LINE_FLOATS) + 4 * tb, 3);
  const at = (t: TensorInfo) => byteOffset(backend, t);
  const shares = parts.map(([t0, t1], i) => [
    at(x), at(dy), at(du) + 4 * POSITIONS * K * co * i, 0, H, W, ci, 2, c.padInfo.top, c.padInfo.left, OH, OW, co, t0, t1, tb,
  ]);
  if (shares.length > 0) runShares(backend, "winograd42FilterGrad", shares, scratch);
  else heapF32(backend).fill(0, floatOffset(backend, du), floatOffset(backend, du) + POSITIONS * K * co);
  const dgPhases = backend.makeOutput([2, 2, K, co], "float32");
  const tmp = scratchFor(backend, 1, 40);
  simdKernels(backend).winograd42FilterGradOut(at(du), at(dgPhases), K, co, tmp.at(0), Math.max(1, parts.length));
  const dg = regroupTaps(backend, dgPhases, false);
  disposeAll(backend, du, scratch.info, tmp.info, dgPhases);
  return dg;
}
