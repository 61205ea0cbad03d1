/**
 * LatentLab's SIMD kernels, in AssemblyScript, compiled to wasm by `npm run build:wasm`.
 *
 * The module imports tfjs-backend-wasm's own memory, so every argument called `*Ptr`-like (a
 * `usize`) is a byte offset of a tensor in that heap; nothing is copied in or out. It has no
 * data segment, no globals and no allocator (checked by test/simd.test.ts): it must never write
 * anywhere but the outputs it is given. Scratch space comes in as a pointer too.
 *
 * Arithmetic is float64 wherever the TypeScript loops it replaced were (JS numbers); Adam's is
 * float32 in the same order as the cpu backend's kernel, so the two agree to the bit. A kernel
 * that threads share (convFilterGrad, see `runShares` in src/backend/simd.ts) gives each thread
 * whole outputs, so results do not depend on how many threads ran it.
 */

// @ts-nocheck: AssemblyScript types (usize, f64x2, v128) are not TypeScript's.

/**
 * a·b + c, lane by lane: one fused multiply-add (a single rounding) in the build with relaxed
 * SIMD (kernels-fma*.wasm, chosen where the engine has it; see simdFile in src/backend/simd.ts),
 * else a multiply then an add. The products' inner loops accumulate with it; the Winograd input
 * transforms, exp4 and the layer norm use it too (with a power of two for a, fused or not give the
 * same value: the product is exact).
 */
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** c − a·b, lane by lane: fused like madd where the build has relaxed SIMD. */
@inline function nmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_nmadd(a, b, c);
  return f32x4.sub(c, f32x4.mul(a, b));
}

/** Two floats at `p` as float64 lanes. */
@inline function load2(p: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(p));
}

/**
 * Adam for n parameters in float32, as tfjs's and PyTorch's optimizers compute it, each operation
 * rounded as written: m' = β₁m + c₁g, v' = β₂v + (c₂g)g, w' = w − (α·m')/(√v'·s + ε), with
 * c = 1 − β, α = lr/bc1 and s = 1/√bc2 rounded to float32 once per call. Multiplies and adds stay
 * apart in every build (no madd), so the cpu backend's kernel (src/train/adam.ts) agrees to the
 * bit. Outputs may be the inputs' own memory.
 */
export function adam(
  w: usize, m: usize, v: usize, g: usize, ow: usize, om: usize, ov: usize, n: u32,
  lr: f64, beta1: f64, beta2: f64, eps: f64, bc1: f64, bc2: f64,
): void {
  const b1 = <f32>beta1, b2 = <f32>beta2, c1 = <f32>(1 - beta1), c2 = <f32>(1 - beta2);
  const alpha = <f32>(lr / bc1), s = <f32>(1 / Math.sqrt(bc2)), e = <f32>eps;
  const B1 = f32x4.splat(b1), B2 = f32x4.splat(b2), C1 = f32x4.splat(c1), C2 = f32x4.splat(c2);
  const A = f32x4.splat(alpha), S = f32x4.splat(s), E = f32x4.splat(e);
  const end = (<usize>n) << 2;
  let o: usize = 0;
  for (; o + 16 <= end; o += 16) {
    const gi = v128.load(g + o);
    const mi = f32x4.add(f32x4.mul(B1, v128.load(m + o)), f32x4.mul(C1, gi));
    const vi = f32x4.add(f32x4.mul(B2, v128.load(v + o)), f32x4.mul(f32x4.mul(C2, gi), gi));
    const d = f32x4.add(f32x4.mul(f32x4.sqrt(vi), S), E);
    v128.store(om + o, mi);
    v128.store(ov + o, vi);
    v128.store(ow + o, f32x4.sub(v128.load(w + o), f32x4.div(f32x4.mul(A, mi), d)));
  }
  for (; o < end; o += 4) {
    const gi = load<f32>(g + o);
    const mi = b1 * load<f32>(m + o) + c1 * gi;
    const vi = b2 * load<f32>(v + o) + c2 * gi * gi;
    store<f32>(om + o, mi);
    store<f32>(ov + o, vi);
    store<f32>(ow + o, load<f32>(w + o) - (alpha * mi) / (Mathf.sqrt(vi) * s + e));
  }
}

/**
 * Sums x viewed as [outer, reduce, inner] over its middle axis into out [outer, inner], times
 * `scale`. Each column accumulates in float64, row after row; `acc` is scratch for inner float64s.
 * With out = 0 (one outer row), the float64 sums are left in `acc` (a share of the rows).
 */
export function sumMiddle(x: usize, out: usize, outer: u32, reduce: u32, inner: u32, scale: f64, acc: usize): void {
  const rowBytes = (<usize>inner) << 2;
  const pairs = (<usize>inner) & ~1;
  for (let o: u32 = 0; o < outer; o++) {
    memory.fill(acc, 0, (<usize>inner) << 3);
    let src = x + <usize>o * <usize>reduce * rowBytes;
    for (let r: u32 = 0; r < reduce; r++, src += rowBytes) {
      let i: usize = 0;
      for (; i < pairs; i += 2) {
        const a = acc + (i << 3);
        v128.store(a, f64x2.add(v128.load(a), load2(src + (i << 2))));
      }
      if (i < <usize>inner) store<f64>(acc + (i << 3), load<f64>(acc + (i << 3)) + <f64>load<f32>(src + (i << 2)));
    }
    if (out == 0) return;
    const dst = out + <usize>o * rowBytes;
    for (let i: usize = 0; i < <usize>inner; i++) store<f32>(dst + (i << 2), <f32>(load<f64>(acc + (i << 3)) * scale));
  }
}

// ---- Layer norm (+ SiLU) in one pass each way, float32 lanes, rows shared between threads ----

/**
 * The sigmoid's constants, in the order sigmoid4 reads them from the `consts` table (16 bytes
 * each, four equal lanes; the caller writes them, see SIGMOID_CONSTS in layernorm.ts). From
 * memory because V8 builds a v128 constant anew at every use, which made σ 2–3× slower.
 */
// 0: −87, 1: 87, 2: log₂e, 3: 1.5·2²³, 4: ln2 high part, 5: ln2 low part, 6–10: 1/720 … 1/2, 11: 1, 12: 127 − 0x4b400000 (an integer)

/**
 * e^t, four at a time (t clamped to ±87), as 2ⁿ · e^r with |r| ≤ ln2/2: n rounded by adding
 * 1.5·2²³ (which leaves n in the low bits, to make 2ⁿ from), e^r by its Taylor series to r⁶
 * (relative error ≈ 1e-7). `k` is the constants' table (see above).
 */
@inline function exp4(u: v128, k: usize): v128 {
  const t = f32x4.pmin(f32x4.pmax(u, v128.load(k)), v128.load(k + 16)); // pmin/pmax: plain minps/maxps
  const m = madd(t, v128.load(k + 32), v128.load(k + 48));
  const n = f32x4.sub(m, v128.load(k + 48));
  let r = nmadd(n, v128.load(k + 64), t);
  r = nmadd(n, v128.load(k + 80), r);
  let p = madd(v128.load(k + 96), r, v128.load(k + 112));
  p = madd(p, r, v128.load(k + 128));
  p = madd(p, r, v128.load(k + 144));
  p = madd(p, r, v128.load(k + 160));
  const one = v128.load(k + 176);
  p = madd(p, r, one);
  p = madd(p, r, one);
  return f32x4.mul(p, i32x4.shl(i32x4.add(m, v128.load(k + 192)), 23));
}

/** σ(z) = 1 / (1 + e^−z), four at a time (exp4). */
@inline function sigmoid4(z: v128, k: usize): v128 {
  const one = v128.load(k + 176);
  return f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(z), k)));
}

/** Four floats at p, of which only the first `count` (1–3 at a row's end) are read; the rest are 0. */
@inline function loadPart(p: usize, count: usize): v128 {
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (count > 1) v = f32x4.replace_lane(v, 1, load<f32>(p + 4));
  if (count > 2) v = f32x4.replace_lane(v, 2, load<f32>(p + 8));
  return v;
}

/** Stores the first `count` lanes of v at p. */
@inline function storePart(p: usize, v: v128, count: usize): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (count > 1) store<f32>(p + 4, f32x4.extract_lane(v, 1));
  if (count > 2) store<f32>(p + 8, f32x4.extract_lane(v, 2));
}

/** Four floats of a row at byte i of rowBytes: a whole vector, or the row's last 1–3 floats padded with 0. */
@inline function rowLoad(p: usize, i: usize, rowBytes: usize): v128 {
  return i + 16 <= rowBytes ? v128.load(p + i) : loadPart(p + i, (rowBytes - i) >> 2);
}

@inline function rowStore(p: usize, i: usize, rowBytes: usize, v: v128): void {
  if (i + 16 <= rowBytes) v128.store(p + i, v);
  else storePart(p + i, v, (rowBytes - i) >> 2);
}

@inline function sum4(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/**
 * Rows of a block at a time: about 16 KB of them, which stay in the first-level cache between
 * a block's passes. Each row's sums are a chain of dependent adds, so a block's rows go through
 * each pass one after another, where the processor overlaps one row's chain with the next's (all
 * passes of a row before the next row's left it waiting on each chain: at 32 floats a row, 15 %
 * slower forward, 9–13 % slower gradient, one thread, rows in cache).
 */
@inline function blockRows(rowBytes: usize): usize {
  return rowBytes >= 16384 ? 1 : 16384 / rowBytes;
}

/**
 * Rows [r0, r1) of y = z or z·σ(z) (`silu`), z = (x − μ)·r·γ + β with μ and r = 1/√(var + ε) of
 * each row of c floats (stored to mean and rstd): one read of the row from memory, one write.
 * `consts` is the sigmoid's table (see sigmoid4). With `sig` (not 0), σ(z) is stored there too
 * (x's shape), for the gradient to read instead of recomputing it.
 */
export function layerNormForward(
  x: usize, y: usize, gamma: usize, beta: usize, mean: usize, rstd: usize, r0: u32, r1: u32, c: u32, eps: f32, silu: bool, consts: usize, sig: usize,
): void {
  const rowBytes = (<usize>c) << 2;
  const cf = <f32>c;
  const step = blockRows(rowBytes);
  for (let first = <usize>r0; first < <usize>r1; first += step) {
    const last = first + step < <usize>r1 ? first + step : <usize>r1;
    // The block's μ and r.
    for (let r = first; r < last; r++) {
      const p = x + r * rowBytes;
      let s = f32x4.splat(0);
      for (let i: usize = 0; i < rowBytes; i += 16) s = f32x4.add(s, rowLoad(p, i, rowBytes));
      const m = sum4(s) / cf;
      const M = f32x4.splat(m);
      s = f32x4.splat(0);
      for (let i: usize = 0; i < rowBytes; i += 16) {
        // Padding lanes of a partial vector are 0 − m: mask them out of the variance.
        let d = f32x4.sub(rowLoad(p, i, rowBytes), M);
        if (i + 16 > rowBytes) d = v128.and(d, i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(<i32>((rowBytes - i) >> 2))));
        s = madd(d, d, s);
      }
      store<f32>(mean + (r << 2), m);
      store<f32>(rstd + (r << 2), <f32>1 / Mathf.sqrt(sum4(s) / cf + eps));
    }
    // Then its outputs.
    for (let r = first; r < last; r++) {
      const p = x + r * rowBytes, q = y + r * rowBytes;
      const M = f32x4.splat(load<f32>(mean + (r << 2)));
      const S = f32x4.splat(load<f32>(rstd + (r << 2)));
      for (let i: usize = 0; i < rowBytes; i += 16) {
        // z = x̂·γ + β as the gradient recomputes it (layerNormBackward), to the bit.
        rowStore(q, i, rowBytes, madd(f32x4.mul(f32x4.sub(rowLoad(p, i, rowBytes), M), S), rowLoad(gamma, i, rowBytes), rowLoad(beta, i, rowBytes)));
      }
      if (silu) {
        // z·σ(z) over the row just written (still in the first-level cache), whole vectors first.
        const whole = rowBytes & ~(<usize>15);
        const sRow = sig + r * rowBytes;
        for (let i: usize = 0; i < whole; i += 16) {
          const z = v128.load(q + i);
          const sg = sigmoid4(z, consts);
          if (sig != 0) v128.store(sRow + i, sg);
          v128.store(q + i, f32x4.mul(z, sg));
        }
        if (whole < rowBytes) {
          const z = loadPart(q + whole, (rowBytes - whole) >> 2);
          const sg = sigmoid4(z, consts);
          if (sig != 0) storePart(sRow + whole, sg, (rowBytes - whole) >> 2);
          storePart(q + whole, f32x4.mul(z, sg), (rowBytes - whole) >> 2);
        }
      }
    }
  }
}

/**
 * Rows [r0, r1) of the layer-norm (+ SiLU) gradient: dz = dy, or dy·σ(z)·(1 + z·(1 − σ(z))) with
 * z recomputed; dx = r·(g − mean(g) − x̂·mean(g·x̂)) with g = dz·γ; and this share's Σ dz·x̂ and
 * Σ dz added to `acc` (2c float64s, dγ then dβ; the caller zeroes them and adds the shares' up
 * in order). Rows go by in blocks of 64 summed in float32 lanes at `block` (scratch for 2c floats,
 * each c rounded up to a multiple of 4, then 128 floats for the rows' mean(g) and mean(g·x̂)); the
 * first pass runs over a block's rows (or 16 KB of them, see blockRows) before the second.
 * With `sig` (not 0), σ(z) is read from there (the forward pass's) instead of recomputed.
 */
export function layerNormBackward(
  dy: usize, x: usize, gamma: usize, beta: usize, mean: usize, rstd: usize, dx: usize, acc: usize, block: usize,
  r0: u32, r1: u32, c: u32, silu: bool, consts: usize, sig: usize,
): void {
  const rowBytes = (<usize>c) << 2;
  const cf = <f32>c;
  const ONE = f32x4.splat(1);
  const rowPad = (rowBytes + 15) & ~(<usize>15); // whole vectors
  const bg = block, bb = block + rowPad;
  const means = bb + rowPad; // [64] mean(g), then [64] mean(g·x̂), by row of the block
  const sub = blockRows(rowBytes) < 64 ? blockRows(rowBytes) : 64;
  for (let first = <usize>r0; first < <usize>r1; first += 64) {
    const last = first + 64 < <usize>r1 ? first + 64 : <usize>r1;
    memory.fill(block, 0, 2 * rowPad);
    for (let from = first; from < last; from += sub) {
      const to = from + sub < last ? from + sub : last;
      // First pass: dz (kept in dx's row), the sums for dγ and dβ, Σg and Σg·x̂.
      for (let r = from; r < to; r++) {
        const o = r * rowBytes;
        const M = f32x4.splat(load<f32>(mean + (r << 2)));
        const S = f32x4.splat(load<f32>(rstd + (r << 2)));
        let sG = f32x4.splat(0), sGX = f32x4.splat(0);
        for (let i: usize = 0; i < rowBytes; i += 16) {
          const xh = f32x4.mul(f32x4.sub(rowLoad(x + o, i, rowBytes), M), S);
          const gm = rowLoad(gamma, i, rowBytes);
          let d = rowLoad(dy + o, i, rowBytes);
          if (silu) {
            const z = madd(xh, gm, rowLoad(beta, i, rowBytes));
            const sg = sig != 0 ? rowLoad(sig + o, i, rowBytes) : sigmoid4(z, consts);
            d = f32x4.mul(f32x4.mul(d, sg), madd(z, f32x4.sub(ONE, sg), ONE));
          }
          if (i + 16 > rowBytes) d = v128.and(d, i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(<i32>((rowBytes - i) >> 2))));
          rowStore(dx + o, i, rowBytes, d);
          v128.store(bg + i, madd(d, xh, v128.load(bg + i)));
          v128.store(bb + i, f32x4.add(v128.load(bb + i), d));
          const g = f32x4.mul(d, gm);
          sG = f32x4.add(sG, g);
          sGX = madd(g, xh, sGX);
        }
        const k = (r - first) << 2;
        store<f32>(means + k, sum4(sG) / cf);
        store<f32>(means + 256 + k, sum4(sGX) / cf);
      }
      // Second pass: dx.
      for (let r = from; r < to; r++) {
        const o = r * rowBytes;
        const M = f32x4.splat(load<f32>(mean + (r << 2)));
        const S = f32x4.splat(load<f32>(rstd + (r << 2)));
        const k = (r - first) << 2;
        const MG = f32x4.splat(load<f32>(means + k)), MGX = f32x4.splat(load<f32>(means + 256 + k));
        for (let i: usize = 0; i < rowBytes; i += 16) {
          const xh = f32x4.mul(f32x4.sub(rowLoad(x + o, i, rowBytes), M), S);
          const g = f32x4.mul(rowLoad(dx + o, i, rowBytes), rowLoad(gamma, i, rowBytes));
          rowStore(dx + o, i, rowBytes, f32x4.mul(S, nmadd(xh, MGX, f32x4.sub(g, MG))));
        }
      }
    }
    for (let i: usize = 0; i < (<usize>c); i++) {
      store<f64>(acc + (i << 3), load<f64>(acc + (i << 3)) + <f64>load<f32>(bg + (i << 2)));
      store<f64>(acc + ((<usize>c + i) << 3), load<f64>(acc + ((<usize>c + i) << 3)) + <f64>load<f32>(bb + (i << 2)));
    }
  }
}

/** The first output index o with o·stride − shift ≥ 0 (its input index inside the row). */
@inline function firstInside(shift: i32, stride: u32): i32 {
  return shift <= 0 ? 0 : <i32>((<u32>shift + stride - 1) / stride);
}

/** One past the last output index o < out whose input index o·stride − shift is below size. */
@inline function endInside(size: u32, shift: i32, stride: u32, out: u32): i32 {
  const last = <i32>size - 1 + shift;
  const end = last < 0 ? 0 : <i32>(<u32>last / stride) + 1;
  return end > <i32>out ? <i32>out : end;
}

/**
 * The conv filter gradient, dW[kh, kw, i, o] = Σ_{b, oh, ow} x[b, oh·sh − top + kh, ow·sw − left + kw, i] · dy[b, oh, ow, o],
 * for input channels [ci0, ci1) (a thread's share), straight from x and dy in NHWC: no
 * transposes, no patch matrix. Needs co a multiple of 8. dW's [fh, fw, ci, co] entries for those
 * channels are overwritten.
 *
 * The batch goes by in blocks of `block` images (small enough that their x and dy stay in the
 * second-level cache); within a block, each 4 × 8 piece of dW for one tap stays in eight
 * registers while every pixel of the block streams past.
 */
export function convFilterGrad(
  x: usize, dy: usize, dw: usize,
  batch: u32, H: u32, W: u32, ci: u32, OH: u32, OW: u32, co: u32,
  fh: u32, fw: u32, sh: u32, sw: u32, top: i32, left: i32, ci0: u32, ci1: u32, block: u32,
): void {
  const ciB = (<usize>ci) << 2;
  const coB = (<usize>co) << 2;
  for (let t: usize = 0; t < <usize>(fh * fw); t++) {
    for (let i = <usize>ci0; i < <usize>ci1; i++) memory.fill(dw + (t * <usize>ci + i) * coB, 0, coB);
  }
  const xStep = (<usize>sw) * ciB;
  const xImage = (<usize>H) * (<usize>W) * ciB;
  const dyImage = (<usize>OH) * (<usize>OW) * coB;
  for (let b0: u32 = 0; b0 < batch; b0 += block) {
    const b1 = b0 + block < batch ? b0 + block : batch;
    for (let kh: u32 = 0; kh < fh; kh++) {
      // Output rows whose input row oh·sh − top + kh lies inside the image, then columns likewise.
      const rshift = top - <i32>kh;
      const ohLo = firstInside(rshift, sh);
      const ohHi = endInside(H, rshift, sh, OH);
      if (ohLo >= ohHi) continue;
      for (let kw: u32 = 0; kw < fw; kw++) {
        const cshift = left - <i32>kw;
        const owLo = firstInside(cshift, sw);
        const owHi = endInside(W, cshift, sw, OW);
        if (owLo >= owHi) continue;
        const n = <usize>(owHi - owLo);
        // x and dy at (image b0, row ohLo, column owLo) for this tap.
        const xFirst = x + <usize>b0 * xImage + <usize>(ohLo * <i32>sh - rshift) * (<usize>W) * ciB + <usize>(owLo * <i32>sw - cshift) * ciB;
        const dyFirst = dy + <usize>b0 * dyImage + (<usize>ohLo * <usize>OW + <usize>owLo) * coB;
        const xRowStep = (<usize>sh) * (<usize>W) * ciB;
        const dyRowStep = (<usize>OW) * coB;
        const rows = <u32>(ohHi - ohLo);
        const tap = dw + (<usize>(kh * fw + kw) * <usize>ci) * coB;
        let c = <usize>ci0;
        for (; c + 4 <= <usize>ci1; c += 4) {
          const acc = tap + c * coB;
          for (let o: usize = 0; o < coB; o += 32) {
            const a0 = acc + o, a1 = a0 + coB, a2 = a1 + coB, a3 = a2 + coB;
            let s00 = v128.load(a0), s01 = v128.load(a0 + 16);
            let s10 = v128.load(a1), s11 = v128.load(a1 + 16);
            let s20 = v128.load(a2), s21 = v128.load(a2 + 16);
            let s30 = v128.load(a3), s31 = v128.load(a3 + 16);
            for (let b = b0; b < b1; b++) {
              let xr = xFirst + <usize>(b - b0) * xImage + (c << 2);
              let dr = dyFirst + <usize>(b - b0) * dyImage + o;
              for (let r: u32 = 0; r < rows; r++, xr += xRowStep, dr += dyRowStep) {
                let xp = xr;
                let dp = dr;
                for (let k: usize = 0; k < n; k++, xp += xStep, dp += coB) {
                  const d0 = v128.load(dp), d1 = v128.load(dp + 16);
                  const x0 = v128.load32_splat(xp);
                  const x1 = v128.load32_splat(xp + 4);
                  const x2 = v128.load32_splat(xp + 8);
                  const x3 = v128.load32_splat(xp + 12);
                  s00 = madd(x0, d0, s00); s01 = madd(x0, d1, s01);
                  s10 = madd(x1, d0, s10); s11 = madd(x1, d1, s11);
                  s20 = madd(x2, d0, s20); s21 = madd(x2, d1, s21);
                  s30 = madd(x3, d0, s30); s31 = madd(x3, d1, s31);
                }
              }
            }
            v128.store(a0, s00); v128.store(a0 + 16, s01);
            v128.store(a1, s10); v128.store(a1 + 16, s11);
            v128.store(a2, s20); v128.store(a2 + 16, s21);
            v128.store(a3, s30); v128.store(a3 + 16, s31);
          }
        }
        // Channels left over from the fours (a first layer's one or three), one at a time.
        for (; c < <usize>ci1; c++) {
          for (let o: usize = 0; o < coB; o += 32) {
            const a0 = tap + c * coB + o;
            const wide = o + 64 <= coB; // sixteen channels at once where there are
            let s0 = v128.load(a0), s1 = v128.load(a0 + 16);
            let s2 = wide ? v128.load(a0 + 32) : s0, s3 = wide ? v128.load(a0 + 48) : s1;
            for (let b = b0; b < b1; b++) {
              let xr = xFirst + <usize>(b - b0) * xImage + (c << 2);
              let dr = dyFirst + <usize>(b - b0) * dyImage + o;
              for (let r: u32 = 0; r < rows; r++, xr += xRowStep, dr += dyRowStep) {
                let xp = xr;
                let dp = dr;
                if (wide) {
                  for (let k: usize = 0; k < n; k++, xp += xStep, dp += coB) {
                    const x0 = v128.load32_splat(xp);
                    s0 = madd(x0, v128.load(dp), s0);
                    s1 = madd(x0, v128.load(dp + 16), s1);
                    s2 = madd(x0, v128.load(dp + 32), s2);
                    s3 = madd(x0, v128.load(dp + 48), s3);
                  }
                } else {
                  for (let k: usize = 0; k < n; k++, xp += xStep, dp += coB) {
                    const x0 = v128.load32_splat(xp);
                    s0 = madd(x0, v128.load(dp), s0);
                    s1 = madd(x0, v128.load(dp + 16), s1);
                  }
                }
              }
            }
            v128.store(a0, s0); v128.store(a0 + 16, s1);
            if (wide) {
              v128.store(a0 + 32, s2); v128.store(a0 + 48, s3);
              o += 32;
            }
          }
        }
      }
    }
  }
}

/**
 * The conv input gradient (a transposed conv's forward pass),
 * dx[b, ih, iw, i] = Σ_{kh, kw, o} dy[b, oh, ow, o] · W[kh, kw, i, o] over oh·sh − top + kh = ih, ow·sw − left + kw = iw,
 * for images [b0, b1) (a thread's share; ci must be a multiple of 8), gathered: each dx pixel is
 * written once. `wt` is W laid out [fh, fw, co, ci]; `dyp` is dy with `padL` zero columns on the
 * left and enough on the right ([batch, OH, OWp, co]) so that four neighbouring outputs of one
 * column phase always read inside it.
 *
 * For each dx row and column phase, four outputs × 8 channels stay in eight registers while the
 * taps that reach them and all co channels go by.
 */
export function convInputGrad(
  dyp: usize, wt: usize, dx: usize,
  H: u32, W: u32, ci: u32, OH: u32, OWp: u32, co: u32,
  fh: u32, fw: u32, sh: u32, sw: u32, top: i32, left: i32, padL: i32, b0: u32, b1: u32,
): void {
  const ciB = (<usize>ci) << 2;
  const coB = (<usize>co) << 2;
  const tapB = (<usize>co) * ciB;
  for (let b = b0; b < b1; b++) {
    for (let ih: u32 = 0; ih < H; ih++) {
      const dxRow = dx + ((<usize>b * <usize>H + <usize>ih) * <usize>W) * ciB;
      for (let p: u32 = 0; p < sw && p < W; p++) {
        const count = (W - p + sw - 1) / sw;
        for (let j0: u32 = 0; j0 < count; j0 += 4) {
          for (let c: usize = 0; c < <usize>ci; c += 8) {
            let s00 = f32x4.splat(0), s01 = f32x4.splat(0);
            let s10 = f32x4.splat(0), s11 = f32x4.splat(0);
            let s20 = f32x4.splat(0), s21 = f32x4.splat(0);
            let s30 = f32x4.splat(0), s31 = f32x4.splat(0);
            for (let kh: u32 = 0; kh < fh; kh++) {
              const t = <i32>ih + top - <i32>kh;
              if (t < 0 || t % <i32>sh != 0) continue;
              const oh = t / <i32>sh;
              if (oh >= <i32>OH) continue;
              const dyRow = dyp + ((<usize>b * <usize>OH + <usize>oh) * <usize>OWp) * coB;
              for (let kw: u32 = 0; kw < fw; kw++) {
                const u = <i32>p + left - <i32>kw;
                if ((u % <i32>sw) != 0) continue;
                const ow = u / <i32>sw + <i32>j0 + padL; // exact division: the column in dyp
                let d = dyRow + <usize>ow * coB;
                let w = wt + <usize>(kh * fw + kw) * tapB + (c << 2);
                for (let k: u32 = 0; k < co; k++, d += 4, w += ciB) {
                  const w0 = v128.load(w), w1 = v128.load(w + 16);
                  const d0 = v128.load32_splat(d);
                  const d1 = v128.load32_splat(d + coB);
                  const d2 = v128.load32_splat(d + 2 * coB);
                  const d3 = v128.load32_splat(d + 3 * coB);
                  s00 = madd(d0, w0, s00); s01 = madd(d0, w1, s01);
                  s10 = madd(d1, w0, s10); s11 = madd(d1, w1, s11);
                  s20 = madd(d2, w0, s20); s21 = madd(d2, w1, s21);
                  s30 = madd(d3, w0, s30); s31 = madd(d3, w1, s31);
                }
              }
            }
            const out = dxRow + (<usize>(p + sw * j0)) * ciB + (c << 2);
            const step = (<usize>sw) * ciB;
            v128.store(out, s00); v128.store(out + 16, s01);
            if (j0 + 1 < count) { v128.store(out + step, s10); v128.store(out + step + 16, s11); }
            if (j0 + 2 < count) { v128.store(out + 2 * step, s20); v128.store(out + 2 * step + 16, s21); }
            if (j0 + 3 < count) { v128.store(out + 3 * step, s30); v128.store(out + 3 * step + 16, s31); }
          }
        }
      }
    }
  }
}

/**
 * Stores a 4 × 8 block of C at `out` (rows rowB bytes apart; only the first `rows` of the four),
 * each value max(·, 0) first if `relu`.
 */
@inline function store4x8(
  out: usize, rowB: usize, rows: u32, relu: bool,
  s00: v128, s01: v128, s10: v128, s11: v128, s20: v128, s21: v128, s30: v128, s31: v128,
): void {
  if (relu) {
    const ZERO = f32x4.splat(0);
    s00 = f32x4.max(s00, ZERO); s01 = f32x4.max(s01, ZERO);
    s10 = f32x4.max(s10, ZERO); s11 = f32x4.max(s11, ZERO);
    s20 = f32x4.max(s20, ZERO); s21 = f32x4.max(s21, ZERO);
    s30 = f32x4.max(s30, ZERO); s31 = f32x4.max(s31, ZERO);
  }
  v128.store(out, s00); v128.store(out + 16, s01);
  if (rows > 1) { v128.store(out + rowB, s10); v128.store(out + rowB + 16, s11); }
  if (rows > 2) { v128.store(out + 2 * rowB, s20); v128.store(out + 2 * rowB + 16, s21); }
  if (rows > 3) { v128.store(out + 3 * rowB, s30); v128.store(out + 3 * rowB + 16, s31); }
}

/** The 4 × 4 transpose of rows v0 … v3: their lane i, in order, stored at out + i·step. */
@inline function store4x4T(v0: v128, v1: v128, v2: v128, v3: v128, out: usize, step: usize): void {
  const lo01 = v128.shuffle<f32>(v0, v1, 0, 4, 1, 5), lo23 = v128.shuffle<f32>(v2, v3, 0, 4, 1, 5);
  const hi01 = v128.shuffle<f32>(v0, v1, 2, 6, 3, 7), hi23 = v128.shuffle<f32>(v2, v3, 2, 6, 3, 7);
  v128.store(out, v128.shuffle<f32>(lo01, lo23, 0, 1, 4, 5));
  v128.store(out + step, v128.shuffle<f32>(lo01, lo23, 2, 3, 6, 7));
  v128.store(out + 2 * step, v128.shuffle<f32>(hi01, hi23, 0, 1, 4, 5));
  v128.store(out + 3 * step, v128.shuffle<f32>(hi01, hi23, 2, 3, 6, 7));
}

/**
 * A's rows i … i + 3 (`aRow`, the others r1, r2, r3 bytes after it; 0 repeats row i) as a
 * panel of K steps of four floats, for the 4 × 8 blocks of `matmul` to read at constant offsets:
 * copied to `pack` (16 bytes a step), four steps at a time by a 4 × 4 transpose where each row's
 * values lie side by side (ks = 4).
 */
@inline function packRows(aRow: usize, r1: usize, r2: usize, r3: usize, ks: usize, K: u32, pack: usize): void {
  const end = pack + ((<usize>K) << 4);
  let w = pack, q = aRow;
  if (ks == 4) {
    for (; w + 64 <= end; w += 64, q += 16) {
      store4x4T(v128.load(q), v128.load(q + r1), v128.load(q + r2), v128.load(q + r3), w, 16);
    }
  }
  for (; w < end; w += 16, q += ks) {
    store<f32>(w, load<f32>(q));
    store<f32>(w, load<f32>(q + r1), 4);
    store<f32>(w, load<f32>(q + r2), 8);
    store<f32>(w, load<f32>(q + r3), 12);
  }
}

/**
 * Four rows of C = A·B (+ bias, then max(·, 0) if `relu`; with `acc`, C += A·B), columns [n0, n1)
 * bytes, in 4 × 8 blocks that stay in eight registers along all of K. A's four rows are a panel:
 * K steps `step` bytes apart of four floats each, read at constant offsets from one pointer
 * (V8 then keeps one address where four rows' addresses cost it a k counter and stack reloads).
 * B's columns [n0, n1) go by as strips of eight: strip s (columns n0 + 32·s bytes on) starts at
 * b + s·bStrip, its rows bRow bytes apart (B [K, N] as it lies: b at column n0, bStrip 32, bRow
 * nB; packed by packStrips: bStrip K·32, bRow 32). C has rows nB bytes apart; only the first
 * `rows` of its four are stored.
 */
@inline function panelBlocks(
  panel: usize, step: usize, K: u32, b: usize, bRow: usize, bStrip: usize, c: usize, nB: usize, rows: u32, n0: usize, n1: usize,
  bias: usize, relu: bool, acc: bool,
): void {
  const ZERO = f32x4.splat(0);
  const end = panel + (<usize>K) * step;
  for (let j = n0; j < n1; j += 32) {
    let s00 = ZERO, s01 = ZERO;
    if (bias != 0) {
      s00 = v128.load(bias + j);
      s01 = v128.load(bias + j + 16);
    }
    let s10 = s00, s11 = s01, s20 = s00, s21 = s01, s30 = s00, s31 = s01;
    const out = c + j;
    if (acc) {
      s00 = v128.load(out); s01 = v128.load(out + 16);
      if (rows > 1) { s10 = v128.load(out + nB); s11 = v128.load(out + nB + 16); }
      if (rows > 2) { s20 = v128.load(out + 2 * nB); s21 = v128.load(out + 2 * nB + 16); }
      if (rows > 3) { s30 = v128.load(out + 3 * nB); s31 = v128.load(out + 3 * nB + 16); }
    }
    let bp = b + ((j - n0) >> 5) * bStrip;
    for (let p = panel; p < end; p += step, bp += bRow) {
      const b0 = v128.load(bp), b1 = v128.load(bp, 16);
      const x0 = v128.load32_splat(p);
      const x1 = v128.load32_splat(p, 4);
      const x2 = v128.load32_splat(p, 8);
      const x3 = v128.load32_splat(p, 12);
      s00 = madd(x0, b0, s00); s01 = madd(x0, b1, s01);
      s10 = madd(x1, b0, s10); s11 = madd(x1, b1, s11);
      s20 = madd(x2, b0, s20); s21 = madd(x2, b1, s21);
      s30 = madd(x3, b0, s30); s31 = madd(x3, b1, s31);
    }
    store4x8(out, nB, rows, relu, s00, s01, s10, s11, s20, s21, s30, s31);
  }
}

/**
 * Columns [n0, n1) bytes of B [K, N] (rows nB bytes apart) as strips of eight columns, each its
 * K rows of 32 bytes one after another: strip s at dst + s·K·32 (see panelBlocks).
 */
@inline function packStrips(b: usize, nB: usize, K: u32, n0: usize, n1: usize, dst: usize): void {
  const stripB = (<usize>K) << 5;
  for (let k: usize = 0; k < <usize>K; k++) {
    const src = b + k * nB;
    let w = dst + (k << 5);
    for (let j = n0; j < n1; j += 32, w += stripB) {
      v128.store(w, v128.load(src + j));
      v128.store(w, v128.load(src + j + 16), 16);
    }
  }
}

/**
 * packStrips from Bᵀ [N, K] (row-major, rows K·4 bytes apart) at bt: each strip's eight rows of
 * Bᵀ read four floats at a time and turned by 4 × 4 transposes.
 */
@inline function packStripsT(bt: usize, K: u32, n0: usize, n1: usize, dst: usize): void {
  const kB = (<usize>K) << 2;
  const whole = kB & ~(<usize>15);
  let w0 = dst;
  for (let j = n0; j < n1; j += 32, w0 += kB << 3) {
    const r0 = bt + (j >> 2) * kB; // Bᵀ's row for B's column j / 4
    let k: usize = 0;
    for (; k < whole; k += 16) {
      const q = r0 + k, w = w0 + (k << 3);
      store4x4T(v128.load(q), v128.load(q + kB), v128.load(q + 2 * kB), v128.load(q + 3 * kB), w, 32);
      store4x4T(v128.load(q + 4 * kB), v128.load(q + 5 * kB), v128.load(q + 6 * kB), v128.load(q + 7 * kB), w + 16, 32);
    }
    for (; k < kB; k += 4) {
      for (let c: usize = 0; c < 8; c++) store<f32>(w0 + (k << 3) + (c << 2), load<f32>(r0 + c * kB + k));
    }
  }
}

/**
 * Rows [m0, m1) of C = A·B (+ bias) (then max(·, 0) if `relu`), C [M, N] and B [K, N] row-major,
 * N a multiple of 8. A's element (i, k) is at a + 4·(i·rowStride + k·colStride), so A may be
 * given transposed. `bias` (N floats) is 0 for none. With `acc`, C += A·B instead (no bias).
 * `pack` is scratch for 4·K floats, and with `packB` 64·K more. packB 2: `b` is Bᵀ [N, K] instead.
 *
 * B goes by in blocks of 64 columns (which stay in the second-level cache while the rows of A
 * pass); within a block, four rows of A at a time as a panel (panelBlocks): where they lie when A
 * is given transposed (rowStride 1), else a copy (packRows). Against four row addresses in the
 * loop: Winograd's products 3–8 % faster, its filter gradient's 0–12 %, on one thread.
 *
 * With `packB`, each block of B is first copied as strips of eight columns (packStrips), so the
 * product reads B's rows 32 bytes apart instead of nB: rows 2 KB or more apart fall in a few
 * sets of the first-level cache (K = 784, M = 128 on one thread: N = 256 38 GFLOP/s, N = 512
 * 25, N = 1024 12). Given Bᵀ (packB 2) the strips come from it (packStripsT), where an explicit
 * transpose was a pass of its own.
 */
export function matmul(
  a: usize, rowStride: u32, colStride: u32, b: usize, c: usize, bias: usize,
  N: u32, K: u32, m0: u32, m1: u32, relu: bool, acc: bool, pack: usize, packB: u32,
): void {
  matmulPart(a, rowStride, colStride, b, c, bias, N, K, m0, m1, relu, acc, pack, packB, 0, N);
}

/**
 * `matmul` for columns [c0, c1) of C only (multiples of 8): shares of a product split by columns
 * each pack only their own part of B, where shares split by rows each packed all of it.
 */
export function matmulPart(
  a: usize, rowStride: u32, colStride: u32, b: usize, c: usize, bias: usize,
  N: u32, K: u32, m0: u32, m1: u32, relu: bool, acc: bool, pack: usize, packB: u32, c0: u32, c1: u32,
): void {
  const rs = (<usize>rowStride) << 2;
  const ks = (<usize>colStride) << 2;
  const nB = (<usize>N) << 2;
  const end = (<usize>c1) << 2;
  const strips = pack + ((<usize>K) << 4);
  for (let n0: usize = (<usize>c0) << 2; n0 < end; n0 += 256) {
    const n1 = n0 + 256 < end ? n0 + 256 : end;
    if (packB == 1) packStrips(b, nB, K, n0, n1, strips);
    else if (packB == 2) packStripsT(b, K, n0, n1, strips);
    const bAt = packB ? strips : b + n0;
    const bRow: usize = packB ? 32 : nB;
    const bStrip: usize = packB ? (<usize>K) << 5 : 32;
    for (let i = m0; i < m1; i += 4) {
      // Rows past m1 repeat row i (computed, never stored).
      const r1: usize = i + 1 < m1 ? rs : 0;
      const r2: usize = i + 2 < m1 ? 2 * rs : 0;
      const r3: usize = i + 3 < m1 ? 3 * rs : 0;
      const aRow = a + <usize>i * rs;
      // A given transposed is read in place, unless its rows lie a multiple of 1 KB apart: then
      // a panel's K rows fall in a few sets of the first-level cache. On two threads, medians of
      // five alternating runs: [512, 128]ᵀ · [128, 784] 55 → 68 GFLOP/s packed, [256, 128]ᵀ ·
      // [128, 512] 56 → 62; rows 3 136 bytes apart read slower packed ([784, 128]ᵀ: 79 → 74).
      const inPlace = rs == 4 && i + 3 < m1 && (ks & 1023) != 0;
      if (!inPlace) packRows(aRow, r1, r2, r3, ks, K, pack);
      panelBlocks(inPlace ? aRow : pack, inPlace ? ks : 16, K, bAt, bRow, bStrip, c + <usize>i * nB, nB, m1 - i, n0, n1, bias, relu, acc);
    }
  }
}

// ---- Winograd F(2×2, 3×3): 3×3 stride-1 convs with 16 multiplies per 2×2 outputs, not 36 ----
//
// A tile is 2×2 outputs; it reads a 4×4 patch d of the input. With
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 −1 −1],
// the tile's outputs are y = Aᵀ[Σ_i U_i ⊙ V_i]A with U = G g Gᵀ (each filter, once per call) and
// V = Bᵀ d B (each patch). The sum over input channels, at each of the 16 positions of the 4×4
// product, is a matrix product [tiles × ci]·[ci × co] (`matmul` above). The filter gradient runs
// the same algebra backwards: dU = Σ_tiles V ⊙ (A dy Aᵀ), then dg = Gᵀ dU G.
//
// Channels are the SIMD lanes (NHWC keeps them together), four at a time. V, M and Z below are
// laid out [position][tile][channel], each position's rows a cache line apart (positionStride).
// Patch cells outside the image read a run of zeros at `zeros` instead (the caller's scratch, see
// winogradZeros).

/** Bᵀ along one axis of four vectors: stores (a − c, b + c, c − b, b − d) at out, out + step, …. */
@inline function bt4(a: v128, b: v128, c: v128, d: v128, out: usize, step: usize): void {
  v128.store(out, f32x4.sub(a, c));
  v128.store(out + step, f32x4.add(b, c));
  v128.store(out + 2 * step, f32x4.sub(c, b));
  v128.store(out + 3 * step, f32x4.sub(b, d));
}

/** The address of input pixel (b, row, col), or `zeros` if it lies outside the H × W image. */
@inline function pixel(x: usize, zeros: usize, b: u32, row: i32, col: i32, H: u32, W: u32, cB: usize): usize {
  if (row < 0 || col < 0 || row >= <i32>H || col >= <i32>W) return zeros;
  return x + ((<usize>b * <usize>H + <usize>row) * <usize>W + <usize>col) * cB;
}

/**
 * V = Bᵀ d B for tiles t0 … t0 + n − 1
 * of x [batch, H, W, c], where tile t is image t / (th·tw), outputs from row 2·(t / tw mod th) and
 * column 2·(t mod tw), reading from `top` rows and `left` columns before them. V is laid out
 * [16][tb][c]: position p = 4r + s of local tile j at v + p·positionStride(tb, 4c) + 4·j·c.
 */
function winogradInput(
  x: usize, v: usize, zeros: usize, H: u32, W: u32, c: u32, th: u32, tw: u32, top: i32, left: i32,
  t0: u32, n: u32, tb: u32,
): void {
  const cB = (<usize>c) << 2;
  const pos = positionStride(tb, cB); // from one position to the next in V
  for (let j: u32 = 0; j < n; j++) {
    const t = t0 + j;
    const b = t / (th * tw);
    const row = <i32>(2 * ((t / tw) % th)) - top;
    const col = <i32>(2 * (t % tw)) - left;
    // The 4×4 patch: pRS is row R, column S.
    const p00 = pixel(x, zeros, b, row, col, H, W, cB), p01 = pixel(x, zeros, b, row, col + 1, H, W, cB);
    const p02 = pixel(x, zeros, b, row, col + 2, H, W, cB), p03 = pixel(x, zeros, b, row, col + 3, H, W, cB);
    const p10 = pixel(x, zeros, b, row + 1, col, H, W, cB), p11 = pixel(x, zeros, b, row + 1, col + 1, H, W, cB);
    const p12 = pixel(x, zeros, b, row + 1, col + 2, H, W, cB), p13 = pixel(x, zeros, b, row + 1, col + 3, H, W, cB);
    const p20 = pixel(x, zeros, b, row + 2, col, H, W, cB), p21 = pixel(x, zeros, b, row + 2, col + 1, H, W, cB);
    const p22 = pixel(x, zeros, b, row + 2, col + 2, H, W, cB), p23 = pixel(x, zeros, b, row + 2, col + 3, H, W, cB);
    const p30 = pixel(x, zeros, b, row + 3, col, H, W, cB), p31 = pixel(x, zeros, b, row + 3, col + 1, H, W, cB);
    const p32 = pixel(x, zeros, b, row + 3, col + 2, H, W, cB), p33 = pixel(x, zeros, b, row + 3, col + 3, H, W, cB);
    const out = v + (<usize>j) * cB;
    for (let k: usize = 0; k < cB; k += 16) {
      const a0 = v128.load(p00 + k), a1 = v128.load(p01 + k), a2 = v128.load(p02 + k), a3 = v128.load(p03 + k);
      const b0 = v128.load(p10 + k), b1 = v128.load(p11 + k), b2 = v128.load(p12 + k), b3 = v128.load(p13 + k);
      const e0 = v128.load(p20 + k), e1 = v128.load(p21 + k), e2 = v128.load(p22 + k), e3 = v128.load(p23 + k);
      const g0 = v128.load(p30 + k), g1 = v128.load(p31 + k), g2 = v128.load(p32 + k), g3 = v128.load(p33 + k);
      const o = out + k;
      // Bᵀ down the columns gives rows (a − e, b + e, e − b, b − g); Bᵀ along each row of those.
      bt4(f32x4.sub(a0, e0), f32x4.sub(a1, e1), f32x4.sub(a2, e2), f32x4.sub(a3, e3), o, pos);
      bt4(f32x4.add(b0, e0), f32x4.add(b1, e1), f32x4.add(b2, e2), f32x4.add(b3, e3), o + 4 * pos, pos);
      bt4(f32x4.sub(e0, b0), f32x4.sub(e1, b1), f32x4.sub(e2, b2), f32x4.sub(e3, b3), o + 8 * pos, pos);
      bt4(f32x4.sub(b0, g0), f32x4.sub(b1, g1), f32x4.sub(b2, g2), f32x4.sub(b3, g3), o + 12 * pos, pos);
    }
  }
}

/**
 * Bytes from one Winograd position's rows in V (or M, Z) to the next: tb rows of cB bytes, then
 * one cache line more. Without it, when tb·cB is a multiple of 4 KB (16 tiles of 64 channels,
 * 8 of 128), all 16 or 36 positions of a tile fall in the same sets of the first-level cache
 * (12 lines a set on the reference machine): a 64×14×14 128 → 64 conv spent 6.3 ms outside its
 * products on one thread, 2.0 ms with the line added.
 */
@inline function positionStride(tb: u32, cB: usize): usize {
  return (<usize>tb) * cB + 64;
}

/**
 * M_p = V_p · U_p at each of `positions` Winograd positions, for a block of n tiles (V
 * [positions][tb][ci], U [positions][ci][co], M [positions][tb][co]); `pack` is scratch for 4·ci
 * floats (matmul).
 */
@inline function winogradProducts(v: usize, u: usize, m: usize, positions: usize, tb: u32, ci: u32, co: u32, n: u32, pack: usize): void {
  const ciB = (<usize>ci) << 2, coB = (<usize>co) << 2;
  for (let p: usize = 0; p < positions; p++) {
    matmul(v + p * positionStride(tb, ciB), ci, 1, u + p * (<usize>ci) * coB, m + p * positionStride(tb, coB), 0, co, ci, 0, n, false, false, pack, 0);
  }
}

/**
 * Writes `floats` zeros at `zeros` (the run that patch cells outside the image read) and returns
 * where the scratch after it starts, aligned to 16 bytes.
 */
@inline function winogradZeros(zeros: usize, floats: u32): usize {
  const bytes = ((<usize>floats << 2) + 15) & ~(<usize>15);
  memory.fill(zeros, 0, bytes);
  return zeros + bytes;
}

/**
 * A 3×3 stride-1 conv for tiles [t0, t1) (a thread's share) of its output:
 * y[b, oh, ow, o] = bias[o] + Σ x[b, oh − top + kh, ow − left + kw, i] · g[kh, kw, i, o]
 * (+ addend[b, oh, ow, o]), then max(·, 0) if `relu`. `u` is U = G g Gᵀ laid out [16][ci][co]
 * (winogradFilter); `bias` is 0 for none, and with `biasPerImage` holds co floats per image
 * ([batch, co]); `addend` (y's shape) is 0 for none. Needs ci a multiple of 4 and co of 8.
 * `scratch` holds ci zeros then V [16][tb][ci] and M [16][tb][co] for `tb` tiles (a multiple of
 * 4) at a time, then 4·ci floats for matmul.
 */
export function winogradConv(
  x: usize, u: usize, bias: usize, y: usize, scratch: usize,
  H: u32, W: u32, ci: u32, OH: u32, OW: u32, co: u32, top: i32, left: i32,
  t0: u32, t1: u32, tb: u32, relu: bool, biasPerImage: bool, addend: usize,
): void {
  const th = (OH + 1) >> 1, tw = (OW + 1) >> 1;
  const v = winogradZeros(scratch, ci);
  const m = v + 16 * positionStride(tb, (<usize>ci) << 2);
  const coB = (<usize>co) << 2;
  const pos = positionStride(tb, coB);
  const ZERO = f32x4.splat(0);
  for (let first = t0; first < t1; first += tb) {
    const n = first + tb < t1 ? tb : t1 - first;
    winogradInput(x, v, scratch, H, W, ci, th, tw, top, left, first, n, tb);
    winogradProducts(v, u, m, 16, tb, ci, co, n, m + 16 * pos);
    for (let j: u32 = 0; j < n; j++) {
      const t = first + j;
      const b = t / (th * tw);
      const oh: u32 = 2 * ((t / tw) % th), ow: u32 = 2 * (t % tw);
      const right = ow + 1 < OW, below = oh + 1 < OH;
      const y00 = y + ((<usize>b * <usize>OH + <usize>oh) * <usize>OW + <usize>ow) * coB;
      const y10 = y00 + (<usize>OW) * coB;
      for (let o: usize = 0; o < coB; o += 16) {
        const q = m + (<usize>j) * coB + o;
        const m00 = v128.load(q), m01 = v128.load(q + pos), m02 = v128.load(q + 2 * pos), m03 = v128.load(q + 3 * pos);
        const m10 = v128.load(q + 4 * pos), m11 = v128.load(q + 5 * pos), m12 = v128.load(q + 6 * pos), m13 = v128.load(q + 7 * pos);
        const m20 = v128.load(q + 8 * pos), m21 = v128.load(q + 9 * pos), m22 = v128.load(q + 10 * pos), m23 = v128.load(q + 11 * pos);
        const m30 = v128.load(q + 12 * pos), m31 = v128.load(q + 13 * pos), m32 = v128.load(q + 14 * pos), m33 = v128.load(q + 15 * pos);
        // Aᵀ down the columns: rows (m0 + m1 + m2, m1 − m2 − m3); then along them.
        const u0 = f32x4.add(f32x4.add(m00, m10), m20), u1 = f32x4.add(f32x4.add(m01, m11), m21);
        const u2 = f32x4.add(f32x4.add(m02, m12), m22), u3 = f32x4.add(f32x4.add(m03, m13), m23);
        const w0 = f32x4.sub(f32x4.sub(m10, m20), m30), w1 = f32x4.sub(f32x4.sub(m11, m21), m31);
        const w2 = f32x4.sub(f32x4.sub(m12, m22), m32), w3 = f32x4.sub(f32x4.sub(m13, m23), m33);
        const bo = bias != 0 ? v128.load(bias + (biasPerImage ? <usize>b * coB : 0) + o) : ZERO;
        let r00 = f32x4.add(f32x4.add(f32x4.add(u0, u1), u2), bo);
        let r01 = f32x4.add(f32x4.sub(f32x4.sub(u1, u2), u3), bo);
        let r10 = f32x4.add(f32x4.add(f32x4.add(w0, w1), w2), bo);
        let r11 = f32x4.add(f32x4.sub(f32x4.sub(w1, w2), w3), bo);
        if (addend != 0) {
          // The addend at the same places as y (read only where y is written).
          const a00 = addend + (y00 - y) + o, a10 = addend + (y10 - y) + o;
          r00 = f32x4.add(r00, v128.load(a00));
          if (right) r01 = f32x4.add(r01, v128.load(a00 + coB));
          if (below) {
            r10 = f32x4.add(r10, v128.load(a10));
            if (right) r11 = f32x4.add(r11, v128.load(a10 + coB));
          }
        }
        if (relu) {
          r00 = f32x4.pmax(r00, ZERO); r01 = f32x4.pmax(r01, ZERO);
          r10 = f32x4.pmax(r10, ZERO); r11 = f32x4.pmax(r11, ZERO);
        }
        v128.store(y00 + o, r00);
        if (right) v128.store(y00 + coB + o, r01);
        if (below) {
          v128.store(y10 + o, r10);
          if (right) v128.store(y10 + coB + o, r11);
        }
      }
    }
  }
}

/**
 * U = G g Gᵀ for every (i, o) of a 3×3 filter g [3, 3, ci, co], laid out [16][ci][co]; with
 * `turn`, of the filter turned half a turn with its channel axes swapped (what the input
 * gradient convolves dy with), laid out [16][co][ci]. Turning g swaps rows 0 and 3 of G g, so
 * the turned U is U with positions 0 ↔ 3 swapped along both axes. Needs U's last axis (co, or
 * ci turned) in fours (eachFilterPair). This call makes U's rows [a0, a1) (i, or o turned): a
 * thread's share.
 */
export function winogradFilter(g: usize, u: usize, ci: u32, co: u32, turn: bool, a0: u32, a1: u32): void {
  eachFilterPair(g, u, ci, co, turn, 0, 2, a0, a1);
}

/**
 * The traversal of the filter transforms (`m`: 2 and 4 for F(2×2, 3×3) and F(4×4, 3×3), 42 for
 * F(4×4, 2×2) of a 2×2 filter) for U's rows [a0, a1) (its second
 * axis: ci, or co turned), four channels at a time along U's last axis (co, or ci turned: in
 * eights wherever a Winograd conv runs; their g lanes gLane bytes apart), each given the first's
 * filter taps at `at` and its U at `out` (positions `tap` bytes apart). (A switch, not function
 * arguments: those would give the module data of its own.)
 */
@inline function eachFilterPair(g: usize, u: usize, ci: u32, co: u32, turn: bool, tmp: usize, m: u32, a0: u32, a1: u32): void {
  const tap = (<usize>ci) * (<usize>co) << 2;
  const inner: usize = turn ? <usize>ci : <usize>co;
  const gLane: usize = turn ? (<usize>co) << 2 : 4;
  for (let a = <usize>a0; a < <usize>a1; a++) {
    for (let b: usize = 0; b < inner; b += 4) {
      const i = turn ? b : a, o = turn ? a : b;
      const at = g + (i * <usize>co + o) * 4;
      const out = u + (turn ? o * <usize>ci + i : i * <usize>co + o) * 4;
      if (m == 2) filter2Four(at, out, tap, gLane, turn);
      else if (m == 4) filter4Four(at, out, tap, gLane, turn, tmp);
      else filter42Four(at, out, tap, gLane, turn, tmp);
    }
  }
}

/**
 * F(2×2)'s U for four channels (see eachFilterPair): G g, rows g0, (g0 + g1 + g2)/2,
 * (g0 − g1 + g2)/2, g2 (per column), then (G g) Gᵀ along each row; `turn` reverses the order of
 * rows and of columns 0 and 3.
 */
@inline function filter2Four(at: usize, out: usize, tap: usize, gLane: usize, turn: bool): void {
  const HALF = f32x4.splat(0.5);
  const g00 = load4(at, gLane), g01 = load4(at + tap, gLane), g02 = load4(at + 2 * tap, gLane);
  const g10 = load4(at + 3 * tap, gLane), g11 = load4(at + 4 * tap, gLane), g12 = load4(at + 5 * tap, gLane);
  const g20 = load4(at + 6 * tap, gLane), g21 = load4(at + 7 * tap, gLane), g22 = load4(at + 8 * tap, gLane);
  const h10 = f32x4.mul(HALF, f32x4.add(f32x4.add(g00, g10), g20)), h11 = f32x4.mul(HALF, f32x4.add(f32x4.add(g01, g11), g21));
  const h12 = f32x4.mul(HALF, f32x4.add(f32x4.add(g02, g12), g22));
  const h20 = f32x4.mul(HALF, f32x4.add(f32x4.sub(g00, g10), g20)), h21 = f32x4.mul(HALF, f32x4.add(f32x4.sub(g01, g11), g21));
  const h22 = f32x4.mul(HALF, f32x4.add(f32x4.sub(g02, g12), g22));
  const r0 = turn ? 3 : 0, r3 = turn ? 0 : 3;
  winogradRow4(g00, g01, g02, out + (<usize>r0 * 4) * tap, tap, turn, HALF);
  winogradRow4(h10, h11, h12, out + 4 * tap, tap, turn, HALF);
  winogradRow4(h20, h21, h22, out + 8 * tap, tap, turn, HALF);
  winogradRow4(g20, g21, g22, out + (<usize>r3 * 4) * tap, tap, turn, HALF);
}

/** Gᵀ along one row (a, b, c) of four channels: stores a, (a + b + c)/2, (a − b + c)/2, c (the ends swapped if `turn`). */
@inline function winogradRow4(a: v128, b: v128, c: v128, out: usize, step: usize, turn: bool, half: v128): void {
  v128.store(out + (turn ? 3 : 0) * step, a);
  v128.store(out + step, f32x4.mul(half, f32x4.add(f32x4.add(a, b), c)));
  v128.store(out + 2 * step, f32x4.mul(half, f32x4.add(f32x4.sub(a, b), c)));
  v128.store(out + (turn ? 0 : 3) * step, c);
}

/** Four floats at p, p + lane, …: one load where they are adjacent (lane = 4). */
@inline function load4(p: usize, lane: usize): v128 {
  if (lane == 4) return v128.load(p);
  let v = f32x4.splat(load<f32>(p));
  v = f32x4.replace_lane(v, 1, load<f32>(p + lane));
  v = f32x4.replace_lane(v, 2, load<f32>(p + 2 * lane));
  return f32x4.replace_lane(v, 3, load<f32>(p + 3 * lane));
}

/**
 * Rows r0 … r1 − 1 (positions 4r … 4r + 3 each) of the filter gradient in Winograd form,
 * dU_p[i, o] = Σ_tiles V_p[tile, i] · Z_p[tile, o] with Z = A dy Aᵀ (dy's 2×2 outputs of the
 * tile, zero past its edge), over every tile of the batch: a thread's share. dU is [16][ci][co];
 * its rows r0 … r1 − 1 are overwritten. Needs ci a multiple of 4 and co of 8. `scratch` holds
 * max(ci, co) zeros, then V's and Z's rows for `tb` tiles (a multiple of 4) at a time, then
 * 4·tb floats for matmul. Each
 * share reads all of x and dy from memory, so fewer shares (two rows each) read less.
 */
export function winogradFilterGrad(
  x: usize, dy: usize, du: usize, scratch: usize,
  batch: u32, H: u32, W: u32, ci: u32, OH: u32, OW: u32, co: u32, top: i32, left: i32,
  r0: u32, r1: u32, tb: u32,
): void {
  const th = (OH + 1) >> 1, tw = (OW + 1) >> 1;
  const tiles = batch * th * tw;
  const v = winogradZeros(scratch, ci > co ? ci : co);
  const ciB = (<usize>ci) << 2, coB = (<usize>co) << 2;
  const vPos = positionStride(tb, ciB), zPos = positionStride(tb, coB);
  const z = v + 4 * (<usize>(r1 - r0)) * vPos;
  const dU = du + 4 * (<usize>r0) * (<usize>ci) * coB;
  memory.fill(dU, 0, 4 * (<usize>(r1 - r0)) * (<usize>ci) * coB);
  for (let first: u32 = 0; first < tiles; first += tb) {
    const n = first + tb < tiles ? tb : tiles - first;
    for (let j: u32 = 0; j < n; j++) {
      const t = first + j;
      const b = t / (th * tw);
      const oh = <i32>(2 * ((t / tw) % th)), ow = <i32>(2 * (t % tw));
      const row = oh - top, col = ow - left;
      // The share's rows one after another: the second reads the tile's pixels from the cache.
      for (let r = r0; r < r1; r++) {
        const q = <usize>(r - r0);
        // Row r of Bᵀ d reads two rows of the patch: (0, 2), (1, 2), (1, 2) or (1, 3), as a − b, a + b, b − a, a − b.
        const ra = row + (r == 0 ? 0 : 1), rb = row + (r == 0 ? 2 : r == 3 ? 3 : 2);
        const a0 = pixel(x, scratch, b, ra, col, H, W, ciB), a1 = pixel(x, scratch, b, ra, col + 1, H, W, ciB);
        const a2 = pixel(x, scratch, b, ra, col + 2, H, W, ciB), a3 = pixel(x, scratch, b, ra, col + 3, H, W, ciB);
        const b0 = pixel(x, scratch, b, rb, col, H, W, ciB), b1 = pixel(x, scratch, b, rb, col + 1, H, W, ciB);
        const b2 = pixel(x, scratch, b, rb, col + 2, H, W, ciB), b3 = pixel(x, scratch, b, rb, col + 3, H, W, ciB);
        const vOut = v + 4 * q * vPos + (<usize>j) * ciB;
        for (let k: usize = 0; k < ciB; k += 16) {
          const x0 = v128.load(a0 + k), x1 = v128.load(a1 + k), x2 = v128.load(a2 + k), x3 = v128.load(a3 + k);
          const y0 = v128.load(b0 + k), y1 = v128.load(b1 + k), y2 = v128.load(b2 + k), y3 = v128.load(b3 + k);
          if (r == 1) bt4(f32x4.add(x0, y0), f32x4.add(x1, y1), f32x4.add(x2, y2), f32x4.add(x3, y3), vOut + k, vPos);
          else if (r == 2) bt4(f32x4.sub(y0, x0), f32x4.sub(y1, x1), f32x4.sub(y2, x2), f32x4.sub(y3, x3), vOut + k, vPos);
          else bt4(f32x4.sub(x0, y0), f32x4.sub(x1, y1), f32x4.sub(x2, y2), f32x4.sub(x3, y3), vOut + k, vPos);
        }
        // Row r of A: dy row 0 (r = 0), rows 0 + 1, rows 0 − 1, or −row 1 (r = 3).
        const q00 = r == 3 ? scratch : pixel(dy, scratch, b, oh, ow, OH, OW, coB);
        const q01 = r == 3 ? scratch : pixel(dy, scratch, b, oh, ow + 1, OH, OW, coB);
        const q10 = r == 0 ? scratch : pixel(dy, scratch, b, oh + 1, ow, OH, OW, coB);
        const q11 = r == 0 ? scratch : pixel(dy, scratch, b, oh + 1, ow + 1, OH, OW, coB);
        const out = z + 4 * q * zPos + (<usize>j) * coB;
        for (let o: usize = 0; o < coB; o += 16) {
          const y00 = v128.load(q00 + o), y01 = v128.load(q01 + o);
          const y10 = v128.load(q10 + o), y11 = v128.load(q11 + o);
          let w0 = y00, w1 = y01;
          if (r == 1) { w0 = f32x4.add(y00, y10); w1 = f32x4.add(y01, y11); }
          else if (r == 2) { w0 = f32x4.sub(y00, y10); w1 = f32x4.sub(y01, y11); }
          else if (r == 3) { w0 = f32x4.neg(y10); w1 = f32x4.neg(y11); }
          // A along the row: (w0, w0 + w1, w0 − w1, −w1).
          v128.store(out + o, w0);
          v128.store(out + zPos + o, f32x4.add(w0, w1));
          v128.store(out + 2 * zPos + o, f32x4.sub(w0, w1));
          v128.store(out + 3 * zPos + o, f32x4.neg(w1));
        }
      }
    }
    filterGradProducts(v, vPos, z, zPos, dU, ci, co, n, 4 * <usize>(r1 - r0));
  }
}

/** The 16 pixel addresses of dy's 4×4 block from (oh, ow) of image b, row by row, at `table` (`zeros` outside dy). */
@inline function tilePointers(table: usize, dy: usize, zeros: usize, b: u32, oh: i32, ow: i32, OH: u32, OW: u32, coB: usize): void {
  for (let r: i32 = 0; r < 4; r++) {
    for (let s: i32 = 0; s < 4; s++) store<usize>(table + <usize>(r * 4 + s) * sizeof<usize>(), pixel(dy, zeros, b, oh + r, ow + s, OH, OW, coB));
  }
}

/**
 * dU_p += V_pᵀ · Z_p at each of `positions` Winograd positions for a block of n tiles (V
 * [positions][·][K] read transposed in place, Z [positions][·][co], dU [positions][K][co]; V's and
 * Z's positions vPos and zPos bytes apart): the filter gradients' products. matmul's scratch
 * (4·n floats) follows Z.
 */
@inline function filterGradProducts(v: usize, vPos: usize, z: usize, zPos: usize, du: usize, K: u32, co: u32, n: u32, positions: usize): void {
  const dPos = (<usize>K) * (<usize>co) << 2;
  for (let p: usize = 0; p < positions; p++) {
    matmul(v + p * vPos, 1, K, z + p * zPos, du + p * dPos, 0, co, n, 0, K, false, true, z + positions * zPos, 0);
  }
}

/** dg = Gᵀ dU G for every (i, o): dU [16][ci][co] to the filter gradient [3, 3, ci, co]. */
export function winogradFilterGradOut(du: usize, dg: usize, ci: u32, co: u32): void {
  const n = (<usize>ci) * (<usize>co) << 2;
  const HALF = f32x4.splat(0.5);
  for (let k: usize = 0; k < n; k += 16) {
    const a = du + k;
    // dU's 4×4 cells, dRS at row R, column S; Gᵀ down the columns, then G along the rows.
    const d00 = v128.load(a), d01 = v128.load(a + n), d02 = v128.load(a + 2 * n), d03 = v128.load(a + 3 * n);
    const d10 = v128.load(a + 4 * n), d11 = v128.load(a + 5 * n), d12 = v128.load(a + 6 * n), d13 = v128.load(a + 7 * n);
    const d20 = v128.load(a + 8 * n), d21 = v128.load(a + 9 * n), d22 = v128.load(a + 10 * n), d23 = v128.load(a + 11 * n);
    const d30 = v128.load(a + 12 * n), d31 = v128.load(a + 13 * n), d32 = v128.load(a + 14 * n), d33 = v128.load(a + 15 * n);
    const s0 = f32x4.mul(HALF, f32x4.add(d10, d20)), s1 = f32x4.mul(HALF, f32x4.add(d11, d21));
    const s2 = f32x4.mul(HALF, f32x4.add(d12, d22)), s3 = f32x4.mul(HALF, f32x4.add(d13, d23));
    const e00 = f32x4.add(d00, s0), e01 = f32x4.add(d01, s1), e02 = f32x4.add(d02, s2), e03 = f32x4.add(d03, s3);
    const e10 = f32x4.mul(HALF, f32x4.sub(d10, d20)), e11 = f32x4.mul(HALF, f32x4.sub(d11, d21));
    const e12 = f32x4.mul(HALF, f32x4.sub(d12, d22)), e13 = f32x4.mul(HALF, f32x4.sub(d13, d23));
    const e20 = f32x4.add(s0, d30), e21 = f32x4.add(s1, d31), e22 = f32x4.add(s2, d32), e23 = f32x4.add(s3, d33);
    winogradGradRow(e00, e01, e02, e03, dg + k, n, HALF);
    winogradGradRow(e10, e11, e12, e13, dg + k + 3 * n, n, HALF);
    winogradGradRow(e20, e21, e22, e23, dg + k + 6 * n, n, HALF);
  }
}

/** G along one row (a, b, c, d): stores a + (b + c)/2, (b − c)/2, (b + c)/2 + d. */
@inline function winogradGradRow(a: v128, b: v128, c: v128, d: v128, out: usize, step: usize, half: v128): void {
  const sum = f32x4.mul(half, f32x4.add(b, c));
  v128.store(out, f32x4.add(a, sum));
  v128.store(out + step, f32x4.mul(half, f32x4.sub(b, c)));
  v128.store(out + 2 * step, f32x4.add(sum, d));
}

// ---- Winograd F(4×4, 3×3): the forward conv (and the input gradient) with 36 multiplies per 4×4 outputs, not 144 ----
//
// A tile is 4×4 outputs; it reads a 6×6 patch d. With
//   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1],
//   G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1],
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1],
// y = Aᵀ[Σ_i U_i ⊙ V_i]A with U = G g Gᵀ and V = Bᵀ d B, as for F(2×2, 3×3) above; the 36
// positions' sums over input channels are matrix products. A 6×6 patch of vectors does not fit in
// registers, so each transform goes down the columns into `tmp` (36 vectors of scratch), then
// along the rows.

/** Bᵀ of F(4×4, 3×3) applied to six vectors; stores the six results at out, out + step, …. */
@inline function bt6(d0: v128, d1: v128, d2: v128, d3: v128, d4: v128, d5: v128, out: usize, step: usize): void {
  const FOUR = f32x4.splat(4), FIVE = f32x4.splat(5), TWO = f32x4.splat(2);
  const d42 = f32x4.sub(d4, d2);
  const d31 = f32x4.mul(TWO, f32x4.sub(d3, d1));
  v128.store(out, madd(FOUR, d0, nmadd(FIVE, d2, d4)));
  v128.store(out + step, nmadd(FOUR, f32x4.add(d1, d2), f32x4.add(d3, d4)));
  v128.store(out + 2 * step, madd(FOUR, f32x4.sub(d1, d2), f32x4.sub(d4, d3)));
  v128.store(out + 3 * step, f32x4.add(d42, d31));
  v128.store(out + 4 * step, f32x4.sub(d42, d31));
  v128.store(out + 5 * step, madd(FOUR, d1, nmadd(FIVE, d3, d5)));
}

/**
 * V = Bᵀ d B for tiles t0 … t0 + n − 1 of x [batch, H, W, c] (tile t: image t / (th·tw), outputs
 * from row 4·(t / tw mod th), column 4·(t mod tw)), laid out [36][tb][c]. `table` is scratch for
 * 36 pointers and `tmp` for 36 vectors.
 */
function winograd4Input(
  x: usize, v: usize, zeros: usize, table: usize, tmp: usize, H: u32, W: u32, c: u32, th: u32, tw: u32, top: i32, left: i32,
  t0: u32, n: u32, tb: u32,
): void {
  const cB = (<usize>c) << 2;
  const pos = positionStride(tb, cB);
  for (let j: u32 = 0; j < n; j++) {
    const t = t0 + j;
    const b = t / (th * tw);
    const row = <i32>(4 * ((t / tw) % th)) - top;
    const col = <i32>(4 * (t % tw)) - left;
    const out = v + (<usize>j) * cB;
    if (row >= 0 && col >= 0 && row + 6 <= <i32>H && col + 6 <= <i32>W) {
      // Inside the image: the patch's rows are rowB apart, no table.
      const base = x + ((<usize>b * <usize>H + <usize>row) * <usize>W + <usize>col) * cB;
      const rowB = (<usize>W) * cB;
      for (let k: usize = 0; k < cB; k += 16) {
        for (let s: usize = 0; s < 6; s++) {
          const p = base + s * cB + k;
          bt6(v128.load(p), v128.load(p + rowB), v128.load(p + 2 * rowB), v128.load(p + 3 * rowB), v128.load(p + 4 * rowB), v128.load(p + 5 * rowB), tmp + s * 16, 96);
        }
        for (let r: usize = 0; r < 6; r++) {
          const q = tmp + r * 96;
          bt6(v128.load(q), v128.load(q + 16), v128.load(q + 32), v128.load(q + 48), v128.load(q + 64), v128.load(q + 80), out + 6 * r * pos + k, pos);
        }
      }
      continue;
    }
    for (let r: i32 = 0; r < 6; r++) {
      for (let s: i32 = 0; s < 6; s++) store<usize>(table + <usize>(r * 6 + s) * sizeof<usize>(), pixel(x, zeros, b, row + r, col + s, H, W, cB));
    }
    for (let k: usize = 0; k < cB; k += 16) {
      for (let s: usize = 0; s < 6; s++) {
        const p = table + s * sizeof<usize>();
        const R = 6 * sizeof<usize>();
        bt6(
          v128.load(load<usize>(p) + k), v128.load(load<usize>(p + R) + k), v128.load(load<usize>(p + 2 * R) + k),
          v128.load(load<usize>(p + 3 * R) + k), v128.load(load<usize>(p + 4 * R) + k), v128.load(load<usize>(p + 5 * R) + k),
          tmp + s * 16, 96,
        );
      }
      for (let r: usize = 0; r < 6; r++) {
        const q = tmp + r * 96;
        bt6(v128.load(q), v128.load(q + 16), v128.load(q + 32), v128.load(q + 48), v128.load(q + 64), v128.load(q + 80), out + 6 * r * pos + k, pos);
      }
    }
  }
}

/**
 * Aᵀ of F(4×4, 3×3) applied to six vectors; stores the four results at out, out + step, …. With
 * `output` they are a tile's finished outputs: each plus `bias` first (then max(·, 0) if `relu`).
 */
@inline function at6With(m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128, out: usize, step: usize, output: bool, bias: v128, relu: bool, addend: usize): void {
  const TWO = f32x4.splat(2), FOUR = f32x4.splat(4), EIGHT = f32x4.splat(8);
  const a = f32x4.add(m1, m2), b = f32x4.sub(m1, m2), c = f32x4.add(m3, m4), d = f32x4.sub(m3, m4);
  let r0 = f32x4.add(f32x4.add(m0, a), c);
  // Multiples by powers of two are exact: fused or not, the same sums.
  let r1 = madd(TWO, d, b);
  let r2 = madd(FOUR, c, a);
  let r3 = f32x4.add(madd(EIGHT, d, b), m5);
  if (output) {
    r0 = f32x4.add(r0, bias); r1 = f32x4.add(r1, bias); r2 = f32x4.add(r2, bias); r3 = f32x4.add(r3, bias);
    if (addend != 0) {
      r0 = f32x4.add(r0, v128.load(addend)); r1 = f32x4.add(r1, v128.load(addend + step));
      r2 = f32x4.add(r2, v128.load(addend + 2 * step)); r3 = f32x4.add(r3, v128.load(addend + 3 * step));
    }
    if (relu) {
      const ZERO = f32x4.splat(0);
      r0 = f32x4.pmax(r0, ZERO); r1 = f32x4.pmax(r1, ZERO); r2 = f32x4.pmax(r2, ZERO); r3 = f32x4.pmax(r3, ZERO);
    }
  }
  v128.store(out, r0);
  v128.store(out + step, r1);
  v128.store(out + 2 * step, r2);
  v128.store(out + 3 * step, r3);
}

/** at6With's four results, as they are. */
@inline function at6(m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128, out: usize, step: usize): void {
  at6With(m0, m1, m2, m3, m4, m5, out, step, false, f32x4.splat(0), false, 0);
}

/** at6With's four results as outputs: plus bias (plus the four at `addend`, `step` apart, unless it is 0), then relu if asked. */
@inline function at6Out(m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128, out: usize, step: usize, bias: v128, relu: bool, addend: usize): void {
  at6With(m0, m1, m2, m3, m4, m5, out, step, true, bias, relu, addend);
}

/**
 * A 3×3 stride-1 conv for tiles [t0, t1) of its output by F(4×4, 3×3), like winogradConv (bias
 * per channel or per image, an addend, relu); `u` is [36][ci][co] (winograd4Filter). Needs ci a
 * multiple of 4 and co of 8. `scratch` (16-byte aligned) holds ci zeros, 36 pointers, 36
 * vectors, then V [36][tb][ci] and M [36][tb][co], then 4·ci floats for matmul.
 */
export function winograd4Conv(
  x: usize, u: usize, bias: usize, y: usize, scratch: usize,
  H: u32, W: u32, ci: u32, OH: u32, OW: u32, co: u32, top: i32, left: i32,
  t0: u32, t1: u32, tb: u32, relu: bool, biasPerImage: bool, addend: usize,
): void {
  const th = (OH + 3) >> 2, tw = (OW + 3) >> 2;
  const table = winogradZeros(scratch, ci);
  const tmp = table + 36 * 8;
  const v = tmp + 36 * 16;
  const m = v + 36 * positionStride(tb, (<usize>ci) << 2);
  const coB = (<usize>co) << 2;
  const pos = positionStride(tb, coB);
  const ZERO = f32x4.splat(0);
  for (let first = t0; first < t1; first += tb) {
    const n = first + tb < t1 ? tb : t1 - first;
    winograd4Input(x, v, scratch, table, tmp, H, W, ci, th, tw, top, left, first, n, tb);
    winogradProducts(v, u, m, 36, tb, ci, co, n, m + 36 * pos);
    for (let j: u32 = 0; j < n; j++) {
      const t = first + j;
      const b = t / (th * tw);
      const oh: u32 = 4 * ((t / tw) % th), ow: u32 = 4 * (t % tw);
      const cols = OW - ow < 4 ? OW - ow : 4;
      const rows = OH - oh < 4 ? OH - oh : 4;
      const y0 = y + ((<usize>b * <usize>OH + <usize>oh) * <usize>OW + <usize>ow) * coB;
      for (let o: usize = 0; o < coB; o += 16) {
        const q = m + (<usize>j) * coB + o;
        for (let s: usize = 0; s < 6; s++) {
          const c = q + s * pos;
          at6(v128.load(c), v128.load(c + 6 * pos), v128.load(c + 12 * pos), v128.load(c + 18 * pos), v128.load(c + 24 * pos), v128.load(c + 30 * pos), tmp + s * 16, 96);
        }
        const bo = bias != 0 ? v128.load(bias + (biasPerImage ? <usize>b * coB : 0) + o) : ZERO;
        for (let i: u32 = 0; i < rows; i++) {
          const e = tmp + <usize>i * 96;
          const yRow = y0 + (<usize>i * <usize>OW) * coB + o;
          const aRow = addend != 0 ? addend + (yRow - y) : 0;
          if (cols == 4) {
            // Row i of the tile, along the columns, straight to y.
            at6Out(v128.load(e), v128.load(e + 16), v128.load(e + 32), v128.load(e + 48), v128.load(e + 64), v128.load(e + 80), yRow, coB, bo, relu, aRow);
            continue;
          }
          // At the image's edge: the row goes to `tmp`'s last row (never read again), its first
          // cols to y (the addend, then relu, added there: past the edge it must not be read).
          const line = tmp + 5 * 96;
          at6Out(v128.load(e), v128.load(e + 16), v128.load(e + 32), v128.load(e + 48), v128.load(e + 64), v128.load(e + 80), line, 16, bo, relu && aRow == 0, 0);
          for (let k: u32 = 0; k < cols; k++) {
            let r = v128.load(line + <usize>k * 16);
            if (aRow != 0) {
              r = f32x4.add(r, v128.load(aRow + <usize>k * coB));
              if (relu) r = f32x4.pmax(r, ZERO);
            }
            v128.store(yRow + <usize>k * coB, r);
          }
        }
      }
    }
  }
}

/** G of F(4×4, 3×3) applied to (a, b, c), four channels each: stores the six results at out, out + step, …. */
@inline function g6x4(a: v128, b: v128, c: v128, out: usize, step: usize): void {
  const ac = f32x4.add(a, c);
  const a24 = f32x4.div(a, f32x4.splat(24)), b12 = f32x4.div(b, f32x4.splat(12)), c6 = f32x4.div(c, f32x4.splat(6));
  v128.store(out, f32x4.div(a, f32x4.splat(4)));
  v128.store(out + step, f32x4.div(f32x4.neg(f32x4.add(ac, b)), f32x4.splat(6)));
  v128.store(out + 2 * step, f32x4.div(f32x4.neg(f32x4.sub(ac, b)), f32x4.splat(6)));
  v128.store(out + 3 * step, f32x4.add(f32x4.add(a24, b12), c6));
  v128.store(out + 4 * step, f32x4.add(f32x4.sub(a24, b12), c6));
  v128.store(out + 5 * step, c);
}

/**
 * U = G g Gᵀ of F(4×4, 3×3) for every (i, o) of a 3×3 filter g [3, 3, ci, co], laid out
 * [36][ci][co]; with `turn`, of g turned half a turn with its channel axes swapped (the input
 * gradient's filter), laid out [36][co][ci]. `tmp` is scratch for 18 vectors (16-byte aligned).
 * Needs U's last axis (co, or ci turned) in fours (eachFilterPair). This call makes U's rows
 * [a0, a1) (i, or o turned): a thread's share.
 */
export function winograd4Filter(g: usize, u: usize, ci: u32, co: u32, turn: bool, tmp: usize, a0: u32, a1: u32): void {
  eachFilterPair(g, u, ci, co, turn, tmp, 4, a0, a1);
}

/** F(4×4)'s U for four channels (see eachFilterPair): G down the three columns into tmp [6][3] (vectors), then along its six rows. */
@inline function filter4Four(at: usize, out: usize, tap: usize, gLane: usize, turn: bool, tmp: usize): void {
  for (let kw: usize = 0; kw < 3; kw++) {
    const w: usize = turn ? 2 - kw : kw;
    const top = turn ? load4(at + (6 + w) * tap, gLane) : load4(at + w * tap, gLane);
    const mid = load4(at + (3 + w) * tap, gLane);
    const bottom = turn ? load4(at + w * tap, gLane) : load4(at + (6 + w) * tap, gLane);
    g6x4(top, mid, bottom, tmp + kw * 16, 48);
  }
  for (let r: usize = 0; r < 6; r++) {
    g6x4(v128.load(tmp + r * 48), v128.load(tmp + r * 48 + 16), v128.load(tmp + r * 48 + 32), out + 6 * r * tap, tap);
  }
}

/** Writes `bytes` zero bytes at p. */
export function zero(p: usize, bytes: usize): void {
  memory.fill(p, 0, bytes);
}

/**
 * Copies `rows` runs of `bytes` bytes from src to dst, each side advancing by
 * its own stride. Short runs are copied in place: V8's memory.copy costs ~0.1 µs a call, which
 * for one float a row (a 1-channel image's pixels) was 10 ms per 100 k rows.
 */
export function copyRows(src: usize, srcStride: usize, dst: usize, dstStride: usize, rows: u32, bytes: usize): void {
  if (bytes >= 256) {
    for (let r: u32 = 0; r < rows; r++, src += srcStride, dst += dstStride) memory.copy(dst, src, bytes);
    return;
  }
  const whole = bytes & ~(<usize>15);
  for (let r: u32 = 0; r < rows; r++, src += srcStride, dst += dstStride) {
    let i: usize = 0;
    for (; i < whole; i += 16) v128.store(dst + i, v128.load(src + i));
    for (; i + 4 <= bytes; i += 4) store<u32>(dst + i, load<u32>(src + i));
    for (; i < bytes; i++) store<u8>(dst + i, load<u8>(src + i));
  }
}

/** y = x < 0 ? α·x : x over the floats [i0, i1) (the cpu backend's LeakyRelu, in float32). */
export function leakyRelu(x: usize, y: usize, i0: u32, i1: u32, alpha: f32): void {
  const A = f32x4.splat(alpha);
  const Z = f32x4.splat(0);
  let o = (<usize>i0) << 2;
  const end = (<usize>i1) << 2;
  for (; o + 16 <= end; o += 16) {
    const v = v128.load(x + o);
    v128.store(y + o, v128.bitselect(f32x4.mul(v, A), v, f32x4.lt(v, Z)));
  }
  for (; o < end; o += 4) {
    const v = load<f32>(x + o);
    store<f32>(y + o, v < 0 ? alpha * v : v);
  }
}

/** dx = x > 0 ? dy : α·dy over the floats [i0, i1) (tfjs's LeakyRelu gradient, in one pass). */
export function leakyReluGrad(x: usize, dy: usize, dx: usize, i0: u32, i1: u32, alpha: f32): void {
  const A = f32x4.splat(alpha);
  const Z = f32x4.splat(0);
  let o = (<usize>i0) << 2;
  const end = (<usize>i1) << 2;
  for (; o + 16 <= end; o += 16) {
    const g = v128.load(dy + o);
    v128.store(dx + o, v128.bitselect(g, f32x4.mul(g, A), f32x4.gt(v128.load(x + o), Z)));
  }
  for (; o < end; o += 4) {
    const g = load<f32>(dy + o);
    store<f32>(dx + o, load<f32>(x + o) > 0 ? g : alpha * g);
  }
}

/** x op y for one of the four element-wise ops (0 add, 1 sub, 2 mul, 3 div), a constant once inlined. */
@inline function op4(op: u32, x: v128, y: v128): v128 {
  if (op == 0) return f32x4.add(x, y);
  if (op == 1) return f32x4.sub(x, y);
  if (op == 2) return f32x4.mul(x, y);
  return f32x4.div(x, y);
}

@inline function op1(op: u32, x: f32, y: f32): f32 {
  if (op == 0) return x + y;
  if (op == 1) return x - y;
  if (op == 2) return x * y;
  return x / y;
}

/** Floats [i0, i1) of out = x op v (or v op x) for one number v. */
@inline function withScalar(op: u32, x: usize, v: f32, out: usize, i0: u32, i1: u32, smallFirst: bool): void {
  const V = f32x4.splat(v);
  let i = (<usize>i0) << 2;
  const end = (<usize>i1) << 2;
  if (smallFirst) {
    for (; i + 16 <= end; i += 16) v128.store(out + i, op4(op, V, v128.load(x + i)));
    for (; i < end; i += 4) store<f32>(out + i, op1(op, v, load<f32>(x + i)));
  } else {
    for (; i + 16 <= end; i += 16) v128.store(out + i, op4(op, v128.load(x + i), V));
    for (; i < end; i += 4) store<f32>(out + i, op1(op, load<f32>(x + i), v));
  }
}

@inline function broadcastRows(op: u32, big: usize, small: usize, out: usize, r0: u32, r1: u32, M: u32, C: u32, smallFirst: bool): void {
  if (C == 1) {
    // One number of small for each run of M consecutive floats.
    for (let r = r0; r < r1; ) {
      const a = r / M;
      const end = (a + 1) * M < r1 ? (a + 1) * M : r1;
      withScalar(op, big, load<f32>(small + ((<usize>a) << 2)), out, r, end, smallFirst);
      r = end;
    }
    return;
  }
  const rowB = (<usize>C) << 2;
  const whole = rowB & ~(<usize>15);
  for (let r = r0; r < r1; r++) {
    const x = big + (<usize>r) * rowB;
    const s = small + (<usize>(r / M)) * rowB;
    const y = out + (<usize>r) * rowB;
    let i: usize = 0;
    if (smallFirst) {
      for (; i < whole; i += 16) v128.store(y + i, op4(op, v128.load(s + i), v128.load(x + i)));
      for (; i < rowB; i += 4) store<f32>(y + i, op1(op, load<f32>(s + i), load<f32>(x + i)));
    } else {
      for (; i < whole; i += 16) v128.store(y + i, op4(op, v128.load(x + i), v128.load(s + i)));
      for (; i < rowB; i += 4) store<f32>(y + i, op1(op, load<f32>(x + i), load<f32>(s + i)));
    }
  }
}

/**
 * Rows [r0, r1) of out = big op small (or small op big), both float32: out and big are rows of C
 * floats, and row r reads row ⌊r / M⌋ of small (M = 1: the same shape; small [A, C] broadcast
 * over the M rows between its two axes otherwise). op: 0 add, 1 sub, 2 mul, 3 div, each a single
 * IEEE float32 operation, as in tfjs's kernels.
 */
export function broadcastBinary(big: usize, small: usize, out: usize, r0: u32, r1: u32, M: u32, C: u32, op: u32, smallFirst: bool): void {
  if (op == 0) broadcastRows(0, big, small, out, r0, r1, M, C, smallFirst);
  else if (op == 1) broadcastRows(1, big, small, out, r0, r1, M, C, smallFirst);
  else if (op == 2) broadcastRows(2, big, small, out, r0, r1, M, C, smallFirst);
  else broadcastRows(3, big, small, out, r0, r1, M, C, smallFirst);
}

/**
 * `matmul` (no bias, no relu) along K in blocks of `kBlock`, each block's A and B read while
 * they are in cache: C rows [m0, m1) = A·B accumulate block after block. For a long K (a 1×1
 * conv's filter gradient sums over every pixel of the batch, K = 100 352) the unblocked loop read
 * B's columns and A from memory once per four rows of C. Each sum still runs over k in order in
 * float32, so the result is the unblocked one to the bit. `pack` is scratch for 4·kBlock floats.
 */
export function matmulBlocked(
  a: usize, rowStride: u32, colStride: u32, b: usize, c: usize, N: u32, K: u32, m0: u32, m1: u32, kBlock: u32, pack: usize,
): void {
  const ks = (<usize>colStride) << 2;
  const nB = (<usize>N) << 2;
  for (let k0: u32 = 0; k0 < K; k0 += kBlock) {
    const n = k0 + kBlock < K ? kBlock : K - k0;
    matmul(a + (<usize>k0) * ks, rowStride, colStride, b + (<usize>k0) * nB, c, 0, N, n, m0, m1, false, k0 > 0, pack, 0);
  }
}

// ---- Winograd F(4×4, 3×3) filter gradient: dg = Gᵀ (Σ_tiles V ⊙ A dY Aᵀ) G ----
//
// With the F(4×4) matrices above, a tile's 4×4 block dY of dy gives Z = A dY Aᵀ (6×6), its 6×6
// input patch V = Bᵀ d B, and dU = Σ V ⊙ Z over all tiles is U's gradient; dg = Gᵀ dU G. Where
// F(2×2) does 16 multiplies per 2×2 block of outputs and channel pair, this does 36 per 4×4.

/** A of F(4×4, 3×3) (Aᵀ's transpose) applied to four vectors; stores the six results at out, out + step, …. */
@inline function a6(d0: v128, d1: v128, d2: v128, d3: v128, out: usize, step: usize): void {
  const TWO = f32x4.splat(2), FOUR = f32x4.splat(4), EIGHT = f32x4.splat(8);
  const even = f32x4.add(d0, d2), odd = f32x4.add(d1, d3);
  const even4 = madd(FOUR, d2, d0), odd4 = madd(EIGHT, d3, f32x4.mul(TWO, d1)); // exact multiples: fused or not, the same
  v128.store(out, d0);
  v128.store(out + step, f32x4.add(even, odd));
  v128.store(out + 2 * step, f32x4.sub(even, odd));
  v128.store(out + 3 * step, f32x4.add(even4, odd4));
  v128.store(out + 4 * step, f32x4.sub(even4, odd4));
  v128.store(out + 5 * step, d3);
}

/**
 * dU = Σ V ⊙ Z over tiles [t0, t1) (a share of the batch's tiles, in order), into this share's
 * own dU [36][ci][co] (overwritten), for the filter gradient of a 3×3 stride-1 conv with x
 * [batch, H, W, ci] and dy [batch, OH, OW, co], ci a multiple of 4, co of 8 (tiles past dy's
 * edge read zeros there). `scratch` (16-byte aligned) holds max(ci, co) zeros, 36 pointers, 36
 * vectors, then V [36][tb][ci] and Z [36][tb][co], then 4·tb floats for matmul.
 */
export function winograd4FilterGrad(
  x: usize, dy: usize, du: usize, scratch: usize,
  H: u32, W: u32, ci: u32, OH: u32, OW: u32, co: u32, top: i32, left: i32,
  t0: u32, t1: u32, tb: u32,
): void {
  const th = (OH + 3) >> 2, tw = (OW + 3) >> 2;
  const table = winogradZeros(scratch, ci > co ? ci : co);
  const tmp = table + 36 * 8;
  const v = tmp + 36 * 16;
  const ciB = (<usize>ci) << 2, coB = (<usize>co) << 2;
  const vPos = positionStride(tb, ciB), zPos = positionStride(tb, coB);
  const z = v + 36 * vPos;
  memory.fill(du, 0, 36 * (<usize>ci) * coB);
  const R = 6 * sizeof<usize>(), R4 = 4 * sizeof<usize>(); // rows of the x and dy pointer tables
  const dyRow = (<usize>OW) * coB;
  for (let first = t0; first < t1; first += tb) {
    const n = first + tb < t1 ? tb : t1 - first;
    for (let j: u32 = 0; j < n; j++) {
      const t = first + j;
      const b = t / (th * tw);
      const oh = <i32>(4 * ((t / tw) % th)), ow = <i32>(4 * (t % tw));
      for (let r: i32 = 0; r < 6; r++) {
        for (let s: i32 = 0; s < 6; s++) store<usize>(table + <usize>(r * 6 + s) * sizeof<usize>(), pixel(x, scratch, b, oh - top + r, ow - left + s, H, W, ciB));
      }
      // V: Bᵀ down the six columns into tmp [6][6], then along its rows.
      for (let k: usize = 0; k < ciB; k += 16) {
        for (let s: usize = 0; s < 6; s++) {
          const p = table + s * sizeof<usize>();
          bt6(
            v128.load(load<usize>(p) + k), v128.load(load<usize>(p + R) + k), v128.load(load<usize>(p + 2 * R) + k),
            v128.load(load<usize>(p + 3 * R) + k), v128.load(load<usize>(p + 4 * R) + k), v128.load(load<usize>(p + 5 * R) + k),
            tmp + s * 16, 96,
          );
        }
        for (let r: usize = 0; r < 6; r++) {
          const q = tmp + r * 96;
          bt6(v128.load(q), v128.load(q + 16), v128.load(q + 32), v128.load(q + 48), v128.load(q + 64), v128.load(q + 80),
            v + 6 * r * vPos + (<usize>j) * ciB + k, vPos);
        }
      }
      // Z from the tile's 4×4 block of dy: A down its four columns into tmp [6][4], then along
      // its rows. A block past dy's edge reads its pixels through the table (x's pointers are
      // done with), zeros outside.
      const whole = oh + 4 <= <i32>OH && ow + 4 <= <i32>OW;
      if (!whole) tilePointers(table, dy, scratch, b, oh, ow, OH, OW, coB);
      const d = dy + ((<usize>b * <usize>OH + <usize>oh) * <usize>OW + <usize>ow) * coB;
      for (let o: usize = 0; o < coB; o += 16) {
        for (let s: usize = 0; s < 4; s++) {
          if (whole) {
            const p = d + s * coB + o;
            a6(v128.load(p), v128.load(p + dyRow), v128.load(p + 2 * dyRow), v128.load(p + 3 * dyRow), tmp + s * 16, 96);
          } else {
            const p = table + s * sizeof<usize>();
            a6(v128.load(load<usize>(p) + o), v128.load(load<usize>(p + R4) + o), v128.load(load<usize>(p + 2 * R4) + o), v128.load(load<usize>(p + 3 * R4) + o), tmp + s * 16, 96);
          }
        }
        for (let r: usize = 0; r < 6; r++) {
          const q = tmp + r * 96;
          a6(v128.load(q), v128.load(q + 16), v128.load(q + 32), v128.load(q + 48), z + 6 * r * zPos + (<usize>j) * coB + o, zPos);
        }
      }
    }
    filterGradProducts(v, vPos, z, zPos, du, ci, co, n, 36);
  }
}

/** Gᵀ of F(4×4, 3×3) applied to six vectors: the three sums (¼, −⅙, −⅙, 1/24, 1/24, 0), (0, −⅙, ⅙, 1/12, −1/12, 0), (0, −⅙, −⅙, ⅙, ⅙, 1). */
@inline function gt6(e0: v128, e1: v128, e2: v128, e3: v128, e4: v128, e5: v128, out: usize, step: usize): void {
  const Q = f32x4.splat(0.25), S = f32x4.splat(<f32>(1.0 / 6)), T = f32x4.splat(<f32>(1.0 / 12)), F = f32x4.splat(<f32>(1.0 / 24));
  const s12 = f32x4.add(e1, e2), s34 = f32x4.add(e3, e4);
  v128.store(out, f32x4.add(f32x4.sub(f32x4.mul(Q, e0), f32x4.mul(S, s12)), f32x4.mul(F, s34)));
  v128.store(out + step, f32x4.add(f32x4.mul(S, f32x4.sub(e2, e1)), f32x4.mul(T, f32x4.sub(e3, e4))));
  v128.store(out + 2 * step, f32x4.add(f32x4.mul(S, f32x4.sub(s34, s12)), e5));
}

/** Four floats of dU at p: the sum of the `parts` shares' dU (`stride` bytes apart), in order. */
@inline function partSum(p: usize, parts: u32, stride: usize): v128 {
  let sum = v128.load(p);
  for (let i: u32 = 1; i < parts; i++) sum = f32x4.add(sum, v128.load(p + (<usize>i) * stride));
  return sum;
}

/**
 * dg [3, 3, ci, co] = Gᵀ dU G, dU [36][ci][co] the sum of `parts` shares' from
 * winograd4FilterGrad (laid out one after another). `tmp` is scratch for 18 vectors.
 */
export function winograd4FilterGradOut(du: usize, dg: usize, ci: u32, co: u32, tmp: usize, parts: u32): void {
  const n = (<usize>ci) * (<usize>co) << 2;
  const stride = n * 36;
  for (let k: usize = 0; k < n; k += 16) {
    const a = du + k;
    // Gᵀ down each of the six columns S into tmp [3][6], then along tmp's three rows.
    for (let s: usize = 0; s < 6; s++) {
      gt6(partSum(a + s * n, parts, stride), partSum(a + (6 + s) * n, parts, stride), partSum(a + (12 + s) * n, parts, stride),
        partSum(a + (18 + s) * n, parts, stride), partSum(a + (24 + s) * n, parts, stride), partSum(a + (30 + s) * n, parts, stride), tmp + s * 16, 96);
    }
    for (let r: usize = 0; r < 3; r++) {
      const q = tmp + r * 96;
      gt6(v128.load(q), v128.load(q + 16), v128.load(q + 32), v128.load(q + 48), v128.load(q + 64), v128.load(q + 80), dg + k + 3 * r * n, n);
    }
  }
}

/** The high two float lanes of v as float64 lanes. */
@inline function promoteHigh(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
}

/**
 * Rows [r0, r1) of tfjs-backend-wasm's FusedBatchNorm over rows of C floats, as its compiled
 * kernel computes them (found by comparing outputs bit for bit): t = (x − mean)·scale in float32,
 * then y = offset + t / √(variance + ε) in float64, rounded once; √(variance + ε) in float32.
 * mean, variance, offset and scale hold C floats each; `nf` is scratch for C floats.
 */
export function batchNormRows(
  x: usize, mean: usize, variance: usize, offset: usize, scale: usize, y: usize, nf: usize,
  eps: f32, r0: u32, r1: u32, C: u32,
): void {
  const rowB = (<usize>C) << 2;
  for (let c: usize = 0; c < rowB; c += 4) store<f32>(nf + c, Mathf.sqrt(load<f32>(variance + c) + eps));
  const whole = rowB & ~(<usize>15);
  for (let r = r0; r < r1; r++) {
    const xr = x + (<usize>r) * rowB, yr = y + (<usize>r) * rowB;
    let c: usize = 0;
    for (; c < whole; c += 16) {
      const t = f32x4.mul(f32x4.sub(v128.load(xr + c), v128.load(mean + c)), v128.load(scale + c));
      const o = v128.load(offset + c), n = v128.load(nf + c);
      const lo = f64x2.add(f64x2.promote_low_f32x4(o), f64x2.div(f64x2.promote_low_f32x4(t), f64x2.promote_low_f32x4(n)));
      const hi = f64x2.add(promoteHigh(o), f64x2.div(promoteHigh(t), promoteHigh(n)));
      v128.store(yr + c, v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
    }
    for (; c < rowB; c += 4) {
      const t = (load<f32>(xr + c) - load<f32>(mean + c)) * load<f32>(scale + c);
      store<f32>(yr + c, <f32>(<f64>load<f32>(offset + c) + <f64>t / <f64>load<f32>(nf + c)));
    }
  }
}

/**
 * Output rows [c0, c1) of the transpose of a rows × cols matrix of 4-byte values (float32 or
 * int32: only copied), src to dst: dst[c][r] = src[r][c]. Sixteen columns (a cache line of each
 * input row) at a time, as 4 × 4 blocks turned in registers; edges one value at a time.
 */
export function transposeRows(src: usize, dst: usize, rows: u32, cols: u32, c0: u32, c1: u32): void {
  const inRow = (<usize>cols) << 2, outRow = (<usize>rows) << 2;
  const fullRows = rows & ~3;
  for (let cb = c0; cb < c1; cb += 16) {
    const ce = cb + 16 < c1 ? cb + 16 : c1;
    const fullEnd = cb + ((ce - cb) & ~3); // columns handled four at a time
    for (let r: u32 = 0; r < fullRows; r += 4) {
      const s = src + (<usize>r) * inRow;
      for (let c = cb; c < fullEnd; c += 4) {
        const p = s + ((<usize>c) << 2);
        const a = v128.load(p), b = v128.load(p + inRow), e = v128.load(p + 2 * inRow), f = v128.load(p + 3 * inRow);
        const t0 = v128.shuffle<i32>(a, b, 0, 4, 1, 5), t1 = v128.shuffle<i32>(a, b, 2, 6, 3, 7);
        const t2 = v128.shuffle<i32>(e, f, 0, 4, 1, 5), t3 = v128.shuffle<i32>(e, f, 2, 6, 3, 7);
        const q = dst + (<usize>c) * outRow + ((<usize>r) << 2);
        v128.store(q, v128.shuffle<i32>(t0, t2, 0, 1, 4, 5));
        v128.store(q + outRow, v128.shuffle<i32>(t0, t2, 2, 3, 6, 7));
        v128.store(q + 2 * outRow, v128.shuffle<i32>(t1, t3, 0, 1, 4, 5));
        v128.store(q + 3 * outRow, v128.shuffle<i32>(t1, t3, 2, 3, 6, 7));
      }
      for (let c = fullEnd; c < ce; c++) {
        for (let i: u32 = 0; i < 4; i++) store<u32>(dst + (<usize>c) * outRow + ((<usize>(r + i)) << 2), load<u32>(s + (<usize>i) * inRow + ((<usize>c) << 2)));
      }
    }
    for (let r = fullRows; r < rows; r++) {
      for (let c = cb; c < ce; c++) store<u32>(dst + (<usize>c) * outRow + ((<usize>r) << 2), load<u32>(src + (<usize>r) * inRow + ((<usize>c) << 2)));
    }
  }
}

/**
 * Output pixels [p0, p1) of a direct conv, any filter size, stride and dilation (NHWC):
 * y[n, o] = bias[o] + Σ_(kh, kw, i) x[b, oh·sh − top + kh·dh, ow·sw − left + kw·dw, i] · g[kh, kw, i, o],
 * then max(·, 0) if `relu`; n = (b, oh, ow). A matrix product whose rows of A are patches
 * ("implicit GEMM"): four rows' patches, found through a table of pointers (taps outside the
 * image read a run of zeros), are copied into one panel for `matmul`'s 4 × 8 blocks. Each sum
 * starts at the bias and runs over (kh, kw, i) in order in float32, as XNNPACK's convolution
 * does. Output channels not in eights go one at a time (panelColumns), which pays for up to four
 * (an output image's; conv.ts pads more to eights). `scratch` (16-byte aligned) holds ci zeros,
 * 4·KH·KW pointers, then the panel's 4·KH·KW·ci floats.
 */
export function convForward(
  x: usize, g: usize, bias: usize, y: usize, scratch: usize,
  H: u32, W: u32, ci: u32, OH: u32, OW: u32, co: u32, KH: u32, KW: u32,
  sh: u32, sw: u32, dh: u32, dw: u32, top: i32, left: i32, p0: u32, p1: u32, relu: bool,
): void {
  const table = winogradZeros(scratch, ci);
  const taps = <usize>(KH * KW);
  const ciB = (<usize>ci) << 2, coB = (<usize>co) << 2;
  const P = sizeof<usize>();
  const pack = table + 4 * taps * P;
  const narrow = (co & 7) != 0; // panelBlocks takes columns in eights
  for (let n0: usize = 0; n0 < coB; n0 += 256) {
    const n1 = n0 + 256 < coB ? n0 + 256 : coB;
    for (let i = p0; i < p1; i += 4) {
      // The four rows' patch pointers, tap by tap (rows past p1 repeat row i: computed, never stored).
      for (let r: u32 = 0; r < 4; r++) {
        const n = i + r < p1 ? i + r : i;
        const b = n / (OH * OW), oh = (n / OW) % OH, ow = n % OW;
        const row0 = <i32>(oh * sh) - top, col0 = <i32>(ow * sw) - left;
        let t = table + (<usize>r) * taps * P;
        if (row0 >= 0 && col0 >= 0 && row0 + <i32>((KH - 1) * dh) < <i32>H && col0 + <i32>((KW - 1) * dw) < <i32>W) {
          // Inside the image: taps are fixed steps from the patch's corner.
          const corner = x + ((<usize>b * <usize>H + <usize>row0) * <usize>W + <usize>col0) * ciB;
          for (let kh: u32 = 0; kh < KH; kh++) {
            const line = corner + (<usize>(kh * dh) * <usize>W) * ciB;
            for (let kw: u32 = 0; kw < KW; kw++, t += P) store<usize>(t, line + (<usize>(kw * dw)) * ciB);
          }
          continue;
        }
        for (let kh: u32 = 0; kh < KH; kh++) {
          for (let kw: u32 = 0; kw < KW; kw++, t += P) store<usize>(t, pixel(x, scratch, b, row0 + <i32>(kh * dh), col0 + <i32>(kw * dw), H, W, ciB));
        }
      }
      // The four patches as one panel, tap after tap (each tap's ci values of the four rows).
      for (let q: usize = 0; q < taps; q++) {
        const a0 = load<usize>(table + q * P);
        packRows(a0, load<usize>(table + (taps + q) * P) - a0, load<usize>(table + (2 * taps + q) * P) - a0,
          load<usize>(table + (3 * taps + q) * P) - a0, 4, ci, pack + q * (ciB << 2));
      }
      if (narrow) panelColumns(pack, <u32>taps * ci, g, coB, y + (<usize>i) * coB, p1 - i, n0, n1, bias, relu);
      else panelBlocks(pack, 16, <u32>taps * ci, g + n0, coB, 32, y + (<usize>i) * coB, coB, p1 - i, n0, n1, bias, relu, false);
    }
  }
}

/**
 * Four rows of C = A·B (+ bias, then max(·, 0) if `relu`), columns [n0, n1) bytes, B and C
 * with rows coB bytes apart: A's four rows a panel of K steps (16 bytes each, as for
 * panelBlocks), one column at a time with the rows in the lanes. Each sum starts at the bias and
 * runs over k in order, as panelBlocks' do, so the values are the 4 × 8 block's for a B padded to
 * eight columns, which multiplied seven zero columns for a one-channel output (a U-Net's last
 * conv at batch 16: 1.37 ms). Only the first `rows` rows of C are stored.
 */
@inline function panelColumns(panel: usize, K: u32, b: usize, coB: usize, c: usize, rows: u32, n0: usize, n1: usize, bias: usize, relu: bool): void {
  const end = panel + ((<usize>K) << 4);
  for (let o = n0; o < n1; o += 4) {
    let s = bias != 0 ? v128.load32_splat(bias + o) : f32x4.splat(0);
    let bp = b + o;
    for (let p = panel; p < end; p += 16, bp += coB) s = madd(v128.load(p), v128.load32_splat(bp), s);
    if (relu) s = f32x4.max(s, f32x4.splat(0));
    store<f32>(c + o, f32x4.extract_lane(s, 0));
    if (rows > 1) store<f32>(c + coB + o, f32x4.extract_lane(s, 1));
    if (rows > 2) store<f32>(c + 2 * coB + o, f32x4.extract_lane(s, 2));
    if (rows > 3) store<f32>(c + 3 * coB + o, f32x4.extract_lane(s, 3));
  }
}

// ---- Winograd F(4×4, 2×2): 4×4 stride-2 convs as 2×2 stride-1 convs over the input's phases ----
//
// A 4×4 stride-2 conv reads input rows 2·oh − top + kh; with kh = 2a + p that is row oh + a of
// the phase image x_p[R] = x[2R + p − top]. So it is a 2×2 stride-1 conv (taps a, b) of the image
// whose channels are (p, q, i) — x's four phases side by side ("space to depth") — by the filter
// g'[a, b, (p, q, i), o] = g[2a + p, 2b + q, i, o]. Its input gradient is that conv's input
// gradient written back phase by phase, and its filter gradient that conv's, the taps put back.
// Those 2×2 convs go by F(4×4, 2×2), evaluation points 0, 1, −1, 2 and ∞:
//   Bᵀ = [2 −1 −2 1 0; 0 2 1 −1 0; 0 −2 3 −1 0; 0 −1 0 1 0; 0 2 −1 −2 1],
//   G = [½ 0; ½ ½; ⅙ −⅙; ⅙ ⅓; 0 1],   Aᵀ = [1 1 1 1 0; 0 1 −1 2 0; 0 1 1 4 0; 0 1 −1 8 1],
// 25 multiplies per 4×4 outputs where the 2×2 conv needs 64 (at a 7×7 output, whose tiles
// compute 8×8: 1.96× fewer). The phases are read and written in place: the kernels below take
// an image on a grid of `P` (1 or 2) phases and write one of `Q`.

/** Bᵀ of F(4×4, 2×2) applied to five vectors; stores the five results at out, out + step, …. */
@inline function bt5(d0: v128, d1: v128, d2: v128, d3: v128, d4: v128, out: usize, step: usize): void {
  const TWO = f32x4.splat(2), THREE = f32x4.splat(3);
  const t = f32x4.sub(d3, d1);
  v128.store(out, madd(TWO, f32x4.sub(d0, d2), t));
  v128.store(out + step, f32x4.sub(madd(TWO, d1, d2), d3));
  v128.store(out + 2 * step, madd(THREE, d2, f32x4.neg(madd(TWO, d1, d3))));
  v128.store(out + 3 * step, t);
  v128.store(out + 4 * step, madd(TWO, f32x4.sub(d1, d3), f32x4.sub(d4, d2)));
}

/**
 * V = Bᵀ d B for tiles t0 … t0 + n − 1 of the 2×2 conv's input: x [batch, H, W, c] on a grid of
 * P phases, the conv's input pixel (R, S), channel (p, q, i), being x[b, P·R + p − top,
 * P·S + q − left, i] (zero outside). Tile t is image t / (th·tw), its 5×5 patch from row
 * 4·(t / tw mod th) and column 4·(t mod tw). V is [25][tb][P²·c]. `table` is scratch for 25
 * pointers and `tmp` for 25 vectors.
 */
function winograd42Input(
  x: usize, v: usize, zeros: usize, table: usize, tmp: usize, H: u32, W: u32, c: u32, P: u32, th: u32, tw: u32,
  top: i32, left: i32, t0: u32, n: u32, tb: u32,
): void {
  const cB = (<usize>c) << 2;
  const kB = (<usize>(P * P)) * cB; // a row of V
  const pos = positionStride(tb, kB);
  const R = 5 * sizeof<usize>();
  for (let j: u32 = 0; j < n; j++) {
    const t = t0 + j;
    const b = t / (th * tw);
    const R0 = <i32>(4 * ((t / tw) % th)), S0 = <i32>(4 * (t % tw));
    for (let p: u32 = 0; p < P; p++) {
      for (let q: u32 = 0; q < P; q++) {
        const row = <i32>P * R0 + <i32>p - top, col = <i32>P * S0 + <i32>q - left;
        const out = v + (<usize>j) * kB + (<usize>(p * P + q)) * cB;
        if (row >= 0 && col >= 0 && row + <i32>(4 * P) < <i32>H && col + <i32>(4 * P) < <i32>W) {
          // Inside the image: the patch's cells are fixed steps apart.
          const base = x + ((<usize>b * <usize>H + <usize>row) * <usize>W + <usize>col) * cB;
          const rowB = (<usize>(P * W)) * cB, colB = (<usize>P) * cB;
          for (let k: usize = 0; k < cB; k += 16) {
            for (let s: usize = 0; s < 5; s++) {
              const a = base + s * colB + k;
              bt5(v128.load(a), v128.load(a + rowB), v128.load(a + 2 * rowB), v128.load(a + 3 * rowB), v128.load(a + 4 * rowB), tmp + s * 16, 80);
            }
            for (let r: usize = 0; r < 5; r++) {
              const e = tmp + r * 80;
              bt5(v128.load(e), v128.load(e + 16), v128.load(e + 32), v128.load(e + 48), v128.load(e + 64), out + 5 * r * pos + k, pos);
            }
          }
          continue;
        }
        for (let r: i32 = 0; r < 5; r++) {
          for (let s: i32 = 0; s < 5; s++) {
            store<usize>(table + <usize>(r * 5 + s) * sizeof<usize>(), pixel(x, zeros, b, row + <i32>P * r, col + <i32>P * s, H, W, cB));
          }
        }
        for (let k: usize = 0; k < cB; k += 16) {
          for (let s: usize = 0; s < 5; s++) {
            const a = table + s * sizeof<usize>();
            bt5(
              v128.load(load<usize>(a) + k), v128.load(load<usize>(a + R) + k), v128.load(load<usize>(a + 2 * R) + k),
              v128.load(load<usize>(a + 3 * R) + k), v128.load(load<usize>(a + 4 * R) + k), tmp + s * 16, 80,
            );
          }
          for (let r: usize = 0; r < 5; r++) {
            const e = tmp + r * 80;
            bt5(v128.load(e), v128.load(e + 16), v128.load(e + 32), v128.load(e + 48), v128.load(e + 64), out + 5 * r * pos + k, pos);
          }
        }
      }
    }
  }
}

/** Aᵀ of F(4×4, 2×2) applied to five vectors, plus `bias` (then max(·, 0) if `relu`); stores the four results at out, out + step, …. */
@inline function at5(m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, out: usize, step: usize, bias: v128, relu: bool): void {
  const TWO = f32x4.splat(2), FOUR = f32x4.splat(4), EIGHT = f32x4.splat(8);
  const a = f32x4.add(m1, m2), b = f32x4.sub(m1, m2);
  let r0 = f32x4.add(f32x4.add(m0, a), m3);
  // Multiples by powers of two are exact: fused or not, the same sums.
  let r1 = madd(TWO, m3, b);
  let r2 = madd(FOUR, m3, a);
  let r3 = f32x4.add(madd(EIGHT, m3, b), m4);
  r0 = f32x4.add(r0, bias); r1 = f32x4.add(r1, bias); r2 = f32x4.add(r2, bias); r3 = f32x4.add(r3, bias);
  if (relu) {
    const ZERO = f32x4.splat(0);
    r0 = f32x4.pmax(r0, ZERO); r1 = f32x4.pmax(r1, ZERO); r2 = f32x4.pmax(r2, ZERO); r3 = f32x4.pmax(r3, ZERO);
  }
  v128.store(out, r0);
  v128.store(out + step, r1);
  v128.store(out + 2 * step, r2);
  v128.store(out + 3 * step, r3);
}

/**
 * Tiles [t0, t1) of a 2×2 stride-1 conv by F(4×4, 2×2), its input read from x on a grid of P
 * phases (see winograd42Input) and its output, OH2 × OW2 pixels of Q²·co channels, written to y
 * [batch, OH, OW, co] on a grid of Q phases: output pixel (R, S), channel (p, q, o), goes to
 * y[b, Q·R + p − otop, Q·S + q − oleft, o] where that lies inside y (plus bias[o], then
 * max(·, 0) if `relu`). `u` is U [25][P²·c][Q²·co] (winograd42Filter). Needs c a multiple of 4
 * and Q²·co of 8. `scratch` (16-byte aligned) holds c zeros, 25 pointers, 25 vectors, then V
 * [25][tb][P²·c] and M [25][tb][Q²·co], then 4·P²·c floats for matmul.
 */
export function winograd42Conv(
  x: usize, u: usize, bias: usize, y: usize, scratch: usize,
  H: u32, W: u32, c: u32, P: u32, top: i32, left: i32,
  OH2: u32, OW2: u32, OH: u32, OW: u32, co: u32, Q: u32, otop: i32, oleft: i32,
  t0: u32, t1: u32, tb: u32, relu: bool,
): void {
  const th = (OH2 + 3) >> 2, tw = (OW2 + 3) >> 2;
  const table = winogradZeros(scratch, c);
  const tmp = table + 25 * 8;
  const K = P * P * c, N = Q * Q * co;
  const v = tmp + 25 * 16;
  const m = v + 25 * positionStride(tb, (<usize>K) << 2);
  const coB = (<usize>co) << 2, nB = (<usize>N) << 2;
  const pos = positionStride(tb, nB);
  const ZERO = f32x4.splat(0);
  const line = tmp + 20 * 16; // tmp's last row: one output row at an edge
  for (let first = t0; first < t1; first += tb) {
    const n = first + tb < t1 ? tb : t1 - first;
    winograd42Input(x, v, scratch, table, tmp, H, W, c, P, th, tw, top, left, first, n, tb);
    winogradProducts(v, u, m, 25, tb, K, N, n, m + 25 * pos);
    for (let j: u32 = 0; j < n; j++) {
      const t = first + j;
      const b = t / (th * tw);
      const R0: u32 = 4 * ((t / tw) % th), S0: u32 = 4 * (t % tw);
      for (let p: u32 = 0; p < Q; p++) {
        for (let q: u32 = 0; q < Q; q++) {
          // This phase's output columns inside y: S0 + s for s in [s0, s1).
          const col0 = <i32>(Q * S0 + q) - oleft;
          let s0: i32 = 0;
          while (s0 < 4 && col0 + <i32>Q * s0 < 0) s0++;
          let s1: i32 = <i32>(OW2 - S0) < 4 ? <i32>(OW2 - S0) : 4;
          while (s1 > s0 && col0 + <i32>Q * (s1 - 1) >= <i32>OW) s1--;
          const phase = (<usize>(p * Q + q)) * coB;
          for (let o: usize = 0; o < coB; o += 16) {
            const at = m + (<usize>j) * nB + phase + o;
            for (let s: usize = 0; s < 5; s++) {
              const e = at + s * pos;
              at5(v128.load(e), v128.load(e + 5 * pos), v128.load(e + 10 * pos), v128.load(e + 15 * pos), v128.load(e + 20 * pos), tmp + s * 16, 80, ZERO, false);
            }
            const bo = bias != 0 ? v128.load(bias + o) : ZERO;
            for (let i: u32 = 0; i < 4 && R0 + i < OH2; i++) {
              const row = <i32>(Q * (R0 + i) + p) - otop;
              if (row < 0 || row >= <i32>OH || s0 >= s1) continue;
              const e = tmp + <usize>i * 80;
              const yRow = y + ((<usize>b * <usize>OH + <usize>row) * <usize>OW) * coB + o;
              const step = (<usize>Q) * coB;
              if (s0 == 0 && s1 == 4) {
                at5(v128.load(e), v128.load(e + 16), v128.load(e + 32), v128.load(e + 48), v128.load(e + 64), yRow + (<usize>col0) * coB, step, bo, relu);
                continue;
              }
              at5(v128.load(e), v128.load(e + 16), v128.load(e + 32), v128.load(e + 48), v128.load(e + 64), line, 16, bo, relu);
              for (let s = s0; s < s1; s++) v128.store(yRow + (<usize>(col0 + <i32>Q * s)) * coB, v128.load(line + (<usize>s) * 16));
            }
          }
        }
      }
    }
  }
}

/** G of F(4×4, 2×2) applied to (a, b), four channels each: stores a/2, (a + b)/2, (a − b)/6, (a + 2b)/6, b at out, out + step, …. */
@inline function g5(a: v128, b: v128, out: usize, step: usize): void {
  const TWO = f32x4.splat(2), SIX = f32x4.splat(6);
  v128.store(out, f32x4.div(a, TWO));
  v128.store(out + step, f32x4.div(f32x4.add(a, b), TWO));
  v128.store(out + 2 * step, f32x4.div(f32x4.sub(a, b), SIX));
  v128.store(out + 3 * step, f32x4.div(f32x4.add(a, f32x4.mul(TWO, b)), SIX));
  v128.store(out + 4 * step, b);
}

/**
 * U = G g Gᵀ of F(4×4, 2×2) for every (k, n) of a 2×2 filter g [2, 2, K, N], laid out
 * [25][K][N]; with `turn`, of g turned half a turn with its channel axes swapped (the input
 * gradient's filter), laid out [25][N][K]. Needs U's last axis (N, or K turned) in fours. `tmp`
 * is scratch for 10 vectors. This call makes U's rows [a0, a1) (k, or n turned): a thread's share.
 */
export function winograd42Filter(g: usize, u: usize, K: u32, N: u32, turn: bool, tmp: usize, a0: u32, a1: u32): void {
  eachFilterPair(g, u, K, N, turn, tmp, 42, a0, a1);
}

/** F(4×4, 2×2)'s U for four channels (see eachFilterPair): G down the two columns into tmp [5][2] (vectors), then along its five rows. */
@inline function filter42Four(at: usize, out: usize, tap: usize, gLane: usize, turn: bool, tmp: usize): void {
  // Taps (0, 0), (0, 1), (1, 0), (1, 1); turned, the last first.
  const g00 = load4(at + (turn ? 3 : 0) * tap, gLane), g01 = load4(at + (turn ? 2 : 1) * tap, gLane);
  const g10 = load4(at + (turn ? 1 : 2) * tap, gLane), g11 = load4(at + (turn ? 0 : 3) * tap, gLane);
  g5(g00, g10, tmp, 32);
  g5(g01, g11, tmp + 16, 32);
  for (let r: usize = 0; r < 5; r++) g5(v128.load(tmp + r * 32), v128.load(tmp + r * 32 + 16), out + 5 * r * tap, tap);
}

/** A of F(4×4, 2×2) (Aᵀ's transpose) applied to four vectors; stores d0, d0 + d1 + d2 + d3, d0 − d1 + d2 − d3, d0 + 2d1 + 4d2 + 8d3, d3 at out, out + step, …. */
@inline function a5(d0: v128, d1: v128, d2: v128, d3: v128, out: usize, step: usize): void {
  const TWO = f32x4.splat(2), FOUR = f32x4.splat(4), EIGHT = f32x4.splat(8);
  const even = f32x4.add(d0, d2), odd = f32x4.add(d1, d3);
  v128.store(out, d0);
  v128.store(out + step, f32x4.add(even, odd));
  v128.store(out + 2 * step, f32x4.sub(even, odd));
  v128.store(out + 3 * step, f32x4.add(madd(FOUR, d2, d0), madd(EIGHT, d3, f32x4.mul(TWO, d1)))); // exact multiples
  v128.store(out + 4 * step, d3);
}

/**
 * dU = Σ V ⊙ Z over tiles [t0, t1) (a share of the batch's tiles, in order), into this share's
 * own dU [25][P²·c][co] (overwritten): the filter gradient of the 2×2 conv whose input is x on a
 * grid of P phases (see winograd42Input) and whose output gradient is dy [batch, OH, OW, co],
 * Z = A dY Aᵀ of each tile's 4×4 block of dy (zero past its edge). Needs c a multiple of 4 and
 * co of 8. `scratch` (16-byte aligned) holds max(c, co) zeros, 25 pointers, 25 vectors, then V
 * [25][tb][P²·c] and Z [25][tb][co], then 4·tb floats for matmul.
 */
export function winograd42FilterGrad(
  x: usize, dy: usize, du: usize, scratch: usize,
  H: u32, W: u32, c: u32, P: u32, top: i32, left: i32, OH: u32, OW: u32, co: u32,
  t0: u32, t1: u32, tb: u32,
): void {
  const th = (OH + 3) >> 2, tw = (OW + 3) >> 2;
  const table = winogradZeros(scratch, c > co ? c : co);
  const tmp = table + 25 * 8;
  const v = tmp + 25 * 16;
  const K = P * P * c;
  const kB = (<usize>K) << 2, coB = (<usize>co) << 2;
  const vPos = positionStride(tb, kB), zPos = positionStride(tb, coB);
  const z = v + 25 * vPos;
  memory.fill(du, 0, 25 * (<usize>K) * coB);
  const R4 = 4 * sizeof<usize>();
  for (let first = t0; first < t1; first += tb) {
    const n = first + tb < t1 ? tb : t1 - first;
    winograd42Input(x, v, scratch, table, tmp, H, W, c, P, th, tw, top, left, first, n, tb);
    for (let j: u32 = 0; j < n; j++) {
      const t = first + j;
      const b = t / (th * tw);
      const oh = <i32>(4 * ((t / tw) % th)), ow = <i32>(4 * (t % tw));
      // Z from the tile's 4×4 block of dy: A down its four columns into tmp [5][4], then along its rows.
      tilePointers(table, dy, scratch, b, oh, ow, OH, OW, coB);
      for (let o: usize = 0; o < coB; o += 16) {
        for (let s: usize = 0; s < 4; s++) {
          const a = table + s * sizeof<usize>();
          a5(v128.load(load<usize>(a) + o), v128.load(load<usize>(a + R4) + o), v128.load(load<usize>(a + 2 * R4) + o), v128.load(load<usize>(a + 3 * R4) + o), tmp + s * 16, 64);
        }
        for (let r: usize = 0; r < 5; r++) {
          const e = tmp + r * 64;
          a5(v128.load(e), v128.load(e + 16), v128.load(e + 32), v128.load(e + 48), z + 5 * r * zPos + (<usize>j) * coB + o, zPos);
        }
      }
    }
    filterGradProducts(v, vPos, z, zPos, du, K, co, n, 25);
  }
}

/** Gᵀ of F(4×4, 2×2) applied to five vectors: stores (e0 + e1)/2 + (e2 + e3)/6 and e1/2 + (2e3 − e2)/6 + e4 at out, out + step. */
@inline function gt5(e0: v128, e1: v128, e2: v128, e3: v128, e4: v128, out: usize, step: usize): void {
  const TWO = f32x4.splat(2), SIX = f32x4.splat(6);
  v128.store(out, f32x4.add(f32x4.div(f32x4.add(e0, e1), TWO), f32x4.div(f32x4.add(e2, e3), SIX)));
  v128.store(out + step, f32x4.add(f32x4.add(f32x4.div(e1, TWO), f32x4.div(f32x4.sub(f32x4.mul(TWO, e3), e2), SIX)), e4));
}

/**
 * dg [2, 2, K, co] = Gᵀ dU G, dU [25][K][co] the sum of `parts` shares' from winograd42FilterGrad
 * (laid out one after another). `tmp` is scratch for 10 vectors.
 */
export function winograd42FilterGradOut(du: usize, dg: usize, K: u32, co: u32, tmp: usize, parts: u32): void {
  const n = (<usize>K) * (<usize>co) << 2;
  const stride = n * 25;
  for (let k: usize = 0; k < n; k += 16) {
    const a = du + k;
    // Gᵀ down each of the five columns S into tmp [2][5], then along tmp's two rows.
    for (let s: usize = 0; s < 5; s++) {
      gt5(partSum(a + s * n, parts, stride), partSum(a + (5 + s) * n, parts, stride), partSum(a + (10 + s) * n, parts, stride),
        partSum(a + (15 + s) * n, parts, stride), partSum(a + (20 + s) * n, parts, stride), tmp + s * 16, 80);
    }
    for (let r: usize = 0; r < 2; r++) {
      const e = tmp + r * 80;
      gt5(v128.load(e), v128.load(e + 16), v128.load(e + 32), v128.load(e + 48), v128.load(e + 64), dg + k + 2 * r * n, n);
    }
  }
}

// ---- Batch normalisation with the batch's statistics (training), optionally then relu ----
//
// Over rows of C channels (C in fours): the statistics are per-channel float64 sums, each share
// of rows adding into its own (summed in order by the caller), and the normalisation one pass:
//   z = (x − μ)·s + β with s = γ·r, r = 1/√(σ² + ε);  y = z, or max(z, 0) with relu
//   dz = dy (where z > 0 with relu);  dβ = Σ dz, dγ = Σ dz·x̂ with x̂ = (x − μ)·r
//   dx = k1·dz + k2·(x − μ) + k3 with k1 = s, k2 = −s·r·dγ/n, k3 = −s·dβ/n (made by the caller)

/** Adds the four float64 lanes lo, hi to the sums at p (two f64x2). */
@inline function addSums(p: usize, lo: v128, hi: v128): void {
  v128.store(p, f64x2.add(v128.load(p), lo));
  v128.store(p + 16, f64x2.add(v128.load(p + 16), hi));
}

/** Σ x into acc [C] and Σ x² into acc + 8·C [C] (float64, added to what is there) over rows [r0, r1) of x [rows, C]. */
export function batchNormStats(x: usize, acc: usize, r0: u32, r1: u32, C: u32): void {
  const cB = (<usize>C) << 2, sq = (<usize>C) << 3;
  for (let r = r0; r < r1; r++) {
    const row = x + (<usize>r) * cB;
    for (let k: usize = 0; k < cB; k += 16) {
      const v = v128.load(row + k);
      const lo = f64x2.promote_low_f32x4(v), hi = promoteHigh(v);
      const s = acc + (k << 1);
      addSums(s, lo, hi);
      addSums(s + sq, f64x2.mul(lo, lo), f64x2.mul(hi, hi));
    }
  }
}

/** z = (x − μ)·s + β for four channels at byte k of a row (μ, s, β C floats each). */
@inline function batchNormZ(x: v128, mean: usize, scale: usize, beta: usize, k: usize): v128 {
  return f32x4.add(f32x4.mul(f32x4.sub(x, v128.load(mean + k)), v128.load(scale + k)), v128.load(beta + k));
}

/** y = z (then max(z, 0) if `relu`) over rows [r0, r1) of x [rows, C]. */
export function batchNormApply(x: usize, y: usize, mean: usize, scale: usize, beta: usize, r0: u32, r1: u32, C: u32, relu: bool): void {
  const cB = (<usize>C) << 2;
  const ZERO = f32x4.splat(0);
  for (let r = r0; r < r1; r++) {
    const at = (<usize>r) * cB;
    for (let k: usize = 0; k < cB; k += 16) {
      let z = batchNormZ(v128.load(x + at + k), mean, scale, beta, k);
      if (relu) z = f32x4.max(z, ZERO);
      v128.store(y + at + k, z);
    }
  }
}

/** dz: dy, or dy where z > 0 with relu (z recomputed as batchNormApply makes it). */
@inline function batchNormDz(dy: v128, x: v128, mean: usize, scale: usize, beta: usize, k: usize, relu: bool): v128 {
  if (!relu) return dy;
  return v128.and(dy, f32x4.gt(batchNormZ(x, mean, scale, beta, k), f32x4.splat(0)));
}

/** Σ dz into acc [C] and Σ dz·x̂ into acc + 8·C [C] (float64, added) over rows [r0, r1); rstd holds r per channel. */
export function batchNormGradSums(
  dy: usize, x: usize, mean: usize, scale: usize, beta: usize, rstd: usize, acc: usize, r0: u32, r1: u32, C: u32, relu: bool,
): void {
  const cB = (<usize>C) << 2, sq = (<usize>C) << 3;
  for (let r = r0; r < r1; r++) {
    const at = (<usize>r) * cB;
    for (let k: usize = 0; k < cB; k += 16) {
      const xv = v128.load(x + at + k);
      const dz = batchNormDz(v128.load(dy + at + k), xv, mean, scale, beta, k, relu);
      const p = f32x4.mul(dz, f32x4.mul(f32x4.sub(xv, v128.load(mean + k)), v128.load(rstd + k)));
      const s = acc + (k << 1);
      addSums(s, f64x2.promote_low_f32x4(dz), promoteHigh(dz));
      addSums(s + sq, f64x2.promote_low_f32x4(p), promoteHigh(p));
    }
  }
}

/** dx = k1·dz + k2·(x − μ) + k3 over rows [r0, r1) (k1, k2, k3 C floats each). */
export function batchNormGradApply(
  dy: usize, x: usize, dx: usize, mean: usize, scale: usize, beta: usize, k1: usize, k2: usize, k3: usize, r0: u32, r1: u32, C: u32, relu: bool,
): void {
  const cB = (<usize>C) << 2;
  for (let r = r0; r < r1; r++) {
    const at = (<usize>r) * cB;
    for (let k: usize = 0; k < cB; k += 16) {
      const xv = v128.load(x + at + k);
      const dz = batchNormDz(v128.load(dy + at + k), xv, mean, scale, beta, k, relu);
      const d = f32x4.add(f32x4.mul(v128.load(k1 + k), dz), f32x4.mul(v128.load(k2 + k), f32x4.sub(xv, v128.load(mean + k))));
      v128.store(dx + at + k, f32x4.add(d, v128.load(k3 + k)));
    }
  }
}

// ---- Softplus, one SIMD pass ----

/**
 * y = softplus(x) = max(x, 0) + log(1 + e^−|x|) over the floats [i0, i1): e^−|x| by exp4, and
 * log(1 + u) = 2·atanh(s) with s = u/(2 + u) ≤ ⅓ as its odd series to s¹³ (relative error
 * ≈ 1e-7). `k` is exp4's table followed by the series' coefficients 2, 2/3, …, 2/13 (16 bytes
 * each, from 208).
 */
export function softplus(x: usize, y: usize, i0: u32, i1: u32, k: usize): void {
  const end = (<usize>i1) << 2;
  const whole = (<usize>i0 << 2) + ((end - (<usize>i0 << 2)) & ~(<usize>15));
  for (let i = <usize>i0 << 2; i < end; i += 16) {
    const count: usize = i < whole ? 4 : (end - i) >> 2;
    const out = softplus4(count == 4 ? v128.load(x + i) : loadPart(x + i, count), k);
    if (count == 4) v128.store(y + i, out);
    else storePart(y + i, out, count);
  }
}

/** softplus of four floats (see softplus; `k` its table). */
@inline function softplus4(v: v128, k: usize): v128 {
  const u = exp4(f32x4.neg(f32x4.abs(v)), k);
  const s = f32x4.div(u, f32x4.add(v128.load(k + 208), u));
  const s2 = f32x4.mul(s, s);
  let p = v128.load(k + 304);
  for (let c: usize = 288; c >= 208; c -= 16) p = f32x4.add(f32x4.mul(p, s2), v128.load(k + c));
  return f32x4.add(f32x4.pmax(v, f32x4.splat(0)), f32x4.mul(p, s));
}

// ---- The Bernoulli likelihood from logits, one pass each way ----

/**
 * out[r] = Σ_j softplus(ℓ[r, j]) − x[r, j]·ℓ[r, j] for rows [r0, r1) of n floats (a VAE's
 * binary cross-entropy per example): each term in float32 as softplus, mul and sub round it, the
 * row's terms summed in float64 (two lanes, then the two added). `k` is softplus's table.
 */
export function bernoulliNll(x: usize, logits: usize, out: usize, r0: u32, r1: u32, n: u32, k: usize): void {
  const rowBytes = (<usize>n) << 2;
  const lane = i32x4(0, 1, 2, 3);
  for (let r = r0; r < r1; r++) {
    const xr = x + <usize>r * rowBytes, lr = logits + <usize>r * rowBytes;
    let acc = f64x2.splat(0);
    for (let i: usize = 0; i < rowBytes; i += 16) {
      const l = rowLoad(lr, i, rowBytes);
      let t = f32x4.sub(softplus4(l, k), f32x4.mul(rowLoad(xr, i, rowBytes), l));
      // A row's last 1–3 floats: the padding lanes add nothing.
      if (i + 16 > rowBytes) t = v128.and(t, i32x4.lt_s(lane, i32x4.splat(<i32>((rowBytes - i) >> 2))));
      acc = f64x2.add(acc, f64x2.promote_low_f32x4(t));
      acc = f64x2.add(acc, f64x2.promote_low_f32x4(v128.shuffle<f32>(t, t, 2, 3, 0, 1)));
    }
    store<f32>(out + (<usize>r << 2), <f32>(f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1)));
  }
}

/**
 * Its gradient with respect to the logits for rows [r0, r1): dℓ[r, j] = dy[r]·(σ(ℓ[r, j]) − x[r, j]).
 * `k` is the sigmoid's table (softplus's begins with it).
 */
export function bernoulliNllGrad(x: usize, logits: usize, dy: usize, dl: usize, r0: u32, r1: u32, n: u32, k: usize): void {
  const rowBytes = (<usize>n) << 2;
  for (let r = r0; r < r1; r++) {
    const at = <usize>r * rowBytes;
    const d = v128.load32_splat(dy + (<usize>r << 2));
    for (let i: usize = 0; i < rowBytes; i += 16) {
      const s = sigmoid4(rowLoad(logits + at, i, rowBytes), k);
      rowStore(dl + at, i, rowBytes, f32x4.mul(f32x4.sub(s, rowLoad(x + at, i, rowBytes)), d));
    }
  }
}

// ---- col2im: the adjoint of im2col, for a conv's input gradient by product ----

/**
 * dx[b, oh·sh − top + kh, ow·sw − left + kw, i] += col[(b, oh, ow), (kh, kw, i)] for images
 * [b0, b1) of an undilated conv (dx starts at zero): output pixel by output pixel in order, then
 * tap row by tap row, each row's taps inside the image one contiguous run, added four floats at
 * a time. Every dx float gets its terms in the same order as conv.ts's col2im loop, so the sums
 * are that loop's to the bit.
 */
export function col2im(
  col: usize, dx: usize, H: u32, W: u32, ci: u32, OH: u32, OW: u32, fh: u32, fw: u32, sh: u32, sw: u32, top: i32, left: i32,
  b0: u32, b1: u32,
): void {
  const cB = (<usize>ci) << 2;
  const rowB = (<usize>fw) * cB; // one tap row of a patch
  for (let b = b0; b < b1; b++) {
    const image = dx + (<usize>b) * (<usize>H) * (<usize>W) * cB;
    let src = col + (<usize>b) * (<usize>OH) * (<usize>OW) * (<usize>fh) * rowB;
    for (let oh: u32 = 0; oh < OH; oh++) {
      const ih0 = <i32>(oh * sh) - top;
      for (let ow: u32 = 0; ow < OW; ow++) {
        const iw0 = <i32>(ow * sw) - left;
        const kwLo: i32 = iw0 < 0 ? -iw0 : 0;
        const kwHi: i32 = <i32>W - iw0 < <i32>fw ? <i32>W - iw0 : <i32>fw;
        for (let kh: u32 = 0; kh < fh; kh++, src += rowB) {
          const ih = ih0 + <i32>kh;
          if (ih < 0 || ih >= <i32>H || kwLo >= kwHi) continue;
          const d = image + ((<usize>ih) * (<usize>W) + <usize>(iw0 + kwLo)) * cB;
          const s = src + (<usize>kwLo) * cB;
          const bytes = (<usize>(kwHi - kwLo)) * cB;
          let i: usize = 0;
          for (; i + 16 <= bytes; i += 16) v128.store(d + i, f32x4.add(v128.load(d + i), v128.load(s + i)));
          for (; i < bytes; i += 4) store<f32>(d + i, load<f32>(d + i) + load<f32>(s + i));
        }
      }
    }
  }
}
