/**
 * LatentLab's SIMD kernels, in AssemblyScript, compiled to wasm by `npm run build:wasm`.
 *
 * The module imports tfjs-backend-wasm's own memory, so every argument called `*Ptr`-like (a
 * `usize`) is a byte offset of a tensor in that heap; nothing is copied in or out. It has no
 * data segment, no globals and no allocator (checked by test/simd.test.ts): it must never write
 * anywhere but the outputs it is given. Scratch space comes in as a pointer too.
 *
 * Arithmetic is float64 wherever the TypeScript loops it replaced were (JS numbers); Adam's is in
 * the same order as the cpu backend's kernel, so the two agree to the bit. A kernel that threads
 * share (convFilterGrad, see `runShares` in src/backend/simd.ts) gives each thread whole outputs,
 * so results do not depend on how many threads ran it.
 */

// @ts-nocheck: AssemblyScript types (usize, f64x2, v128) are not TypeScript's.

/** Two floats at `p` as float64 lanes. */
@inline function load2(p: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(p));
}

/** Two float64 lanes rounded and stored as floats at `p`. */
@inline function store2(p: usize, v: v128): void {
  v128.store64_lane(p, f32x4.demote_f64x2_zero(v), 0);
}

/** Float64 lanes rounded to float32 and back (what storing and reloading would give). */
@inline function round2(v: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(v));
}

/**
 * Adam for n parameters: m' = β₁m + (1−β₁)g, v' = β₂v + (1−β₂)g², both rounded to float32, then
 * w' = w − lr·(m'/bc1)/(√(v'/bc2) + ε). Outputs may be the inputs' own memory.
 */
export function adam(
  w: usize, m: usize, v: usize, g: usize, ow: usize, om: usize, ov: usize, n: u32,
  lr: f64, beta1: f64, beta2: f64, eps: f64, bc1: f64, bc2: f64,
): void {
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  const B1 = f64x2.splat(beta1), B2 = f64x2.splat(beta2), C1 = f64x2.splat(c1), C2 = f64x2.splat(c2);
  const LR = f64x2.splat(lr), BC1 = f64x2.splat(bc1), BC2 = f64x2.splat(bc2), EPS = f64x2.splat(eps);
  const end = (<usize>n) << 2;
  let o: usize = 0;
  for (; o + 8 <= end; o += 8) {
    const gi = load2(g + o);
    const mi = round2(f64x2.add(f64x2.mul(B1, load2(m + o)), f64x2.mul(C1, gi)));
    const vi = round2(f64x2.add(f64x2.mul(B2, load2(v + o)), f64x2.mul(f64x2.mul(C2, gi), gi)));
    const step = f64x2.div(f64x2.mul(LR, f64x2.div(mi, BC1)), f64x2.add(f64x2.sqrt(f64x2.div(vi, BC2)), EPS));
    const wi = f64x2.sub(load2(w + o), step);
    store2(om + o, mi);
    store2(ov + o, vi);
    store2(ow + o, wi);
  }
  for (; o < end; o += 4) {
    const gi = <f64>load<f32>(g + o);
    const mi = <f64><f32>(beta1 * <f64>load<f32>(m + o) + c1 * gi);
    const vi = <f64><f32>(beta2 * <f64>load<f32>(v + o) + c2 * gi * gi);
    const wi = <f64>load<f32>(w + o) - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
    store<f32>(om + o, <f32>mi);
    store<f32>(ov + o, <f32>vi);
    store<f32>(ow + o, <f32>wi);
  }
}

/** Sums four float64 lanes (two vectors) in a fixed order. */
@inline function lanes4(a: v128, b: v128): f64 {
  const s = f64x2.add(a, b);
  return f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
}

/**
 * Sums x viewed as [outer, reduce, inner] over its middle axis into out [outer, inner], times
 * `scale`. Each column accumulates in float64, row after row; `acc` is scratch for inner float64s.
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
    const dst = out + <usize>o * rowBytes;
    for (let i: usize = 0; i < <usize>inner; i++) store<f32>(dst + (i << 2), <f32>(load<f64>(acc + (i << 3)) * scale));
  }
}

/** Per row of c floats: the mean and 1/√(variance + ε), in float64 (four running sums a row). */
export function layerNormStats(x: usize, mean: usize, rstd: usize, rows: u32, c: u32, eps: f64): void {
  const rowBytes = (<usize>c) << 2;
  const quadBytes = rowBytes & ~15;
  const cf = <f64>c;
  for (let r: usize = 0, p = x; r < <usize>rows; r++, p += rowBytes) {
    let a = f64x2.splat(0), b = f64x2.splat(0);
    let i: usize = 0;
    for (; i < quadBytes; i += 16) {
      a = f64x2.add(a, load2(p + i));
      b = f64x2.add(b, load2(p + i + 8));
    }
    let sum = lanes4(a, b);
    for (; i < rowBytes; i += 4) sum += <f64>load<f32>(p + i);
    const m = sum / cf;
    const M = f64x2.splat(m);
    a = f64x2.splat(0);
    b = f64x2.splat(0);
    i = 0;
    for (; i < quadBytes; i += 16) {
      const d0 = f64x2.sub(load2(p + i), M);
      const d1 = f64x2.sub(load2(p + i + 8), M);
      a = f64x2.add(a, f64x2.mul(d0, d0));
      b = f64x2.add(b, f64x2.mul(d1, d1));
    }
    let sq = lanes4(a, b);
    for (; i < rowBytes; i += 4) {
      const d = <f64>load<f32>(p + i) - m;
      sq += d * d;
    }
    store<f32>(mean + (r << 2), <f32>m);
    store<f32>(rstd + (r << 2), <f32>(1 / Math.sqrt(sq / cf + eps)));
  }
}

/** z = (x − μ)·r·γ + β for every row of c floats, into out. */
export function layerNormAffine(x: usize, out: usize, gamma: usize, beta: usize, mean: usize, rstd: usize, rows: u32, c: u32): void {
  const rowBytes = (<usize>c) << 2;
  const pairBytes = rowBytes & ~7;
  for (let r: usize = 0, o: usize = 0; r < <usize>rows; r++, o += rowBytes) {
    const m = <f64>load<f32>(mean + (r << 2));
    const s = <f64>load<f32>(rstd + (r << 2));
    const M = f64x2.splat(m), S = f64x2.splat(s);
    let i: usize = 0;
    for (; i < pairBytes; i += 8) {
      store2(out + o + i, f64x2.add(f64x2.mul(f64x2.mul(f64x2.sub(load2(x + o + i), M), S), load2(gamma + i)), load2(beta + i)));
    }
    if (i < rowBytes) {
      store<f32>(out + o + i, <f32>(((<f64>load<f32>(x + o + i) - m) * s) * <f64>load<f32>(gamma + i) + <f64>load<f32>(beta + i)));
    }
  }
}

/** y ← y·s over n floats (a float32 product is exact in float64, so float32 lanes suffice). */
export function mulInPlace(y: usize, s: usize, n: u32): void {
  const end = (<usize>n) << 2;
  let o: usize = 0;
  for (; o + 16 <= end; o += 16) v128.store(y + o, f32x4.mul(v128.load(y + o), v128.load(s + o)));
  for (; o < end; o += 4) store<f32>(y + o, load<f32>(y + o) * load<f32>(s + o));
}

/** out = dy·σ·(1 + z·(1 − σ)) over n floats: the gradient through SiLU, given z and σ(z). */
export function siluGrad(dy: usize, z: usize, sig: usize, out: usize, n: u32): void {
  const ONE = f64x2.splat(1);
  const end = (<usize>n) << 2;
  let o: usize = 0;
  for (; o + 8 <= end; o += 8) {
    const s = load2(sig + o);
    store2(out + o, f64x2.mul(f64x2.mul(load2(dy + o), s), f64x2.add(ONE, f64x2.mul(load2(z + o), f64x2.sub(ONE, s)))));
  }
  for (; o < end; o += 4) {
    const s = <f64>load<f32>(sig + o);
    store<f32>(out + o, <f32>((<f64>load<f32>(dy + o) * s) * (1 + <f64>load<f32>(z + o) * (1 - s))));
  }
}

/**
 * The layer-norm gradient given dz (the gradient at γ·x̂ + β): dx = r·(dz·γ − mean(dz·γ) − x̂·mean(dz·γ·x̂))
 * per row, dγ = Σ dz·x̂ and dβ = Σ dz over rows. dx may be dz's own memory. `acc` is scratch for
 * 2c float64s (dγ then dβ).
 */
export function layerNormGrad(
  dz: usize, x: usize, gamma: usize, mean: usize, rstd: usize, dx: usize, dgamma: usize, dbeta: usize,
  rows: u32, c: u32, acc: usize,
): void {
  const rowBytes = (<usize>c) << 2;
  const pairBytes = rowBytes & ~7;
  const dg = acc;
  const db = acc + ((<usize>c) << 3);
  memory.fill(acc, 0, (<usize>c) << 4);
  const cf = <f64>c;
  for (let r: usize = 0, o: usize = 0; r < <usize>rows; r++, o += rowBytes) {
    const m = <f64>load<f32>(mean + (r << 2));
    const s = <f64>load<f32>(rstd + (r << 2));
    const M = f64x2.splat(m), S = f64x2.splat(s);
    let sumG = f64x2.splat(0);
    let sumGX = f64x2.splat(0);
    let i: usize = 0;
    for (; i < pairBytes; i += 8) {
      const d = load2(dz + o + i);
      const xh = f64x2.mul(f64x2.sub(load2(x + o + i), M), S);
      const a = i << 1;
      v128.store(dg + a, f64x2.add(v128.load(dg + a), f64x2.mul(d, xh)));
      v128.store(db + a, f64x2.add(v128.load(db + a), d));
      const g = f64x2.mul(d, load2(gamma + i));
      sumG = f64x2.add(sumG, g);
      sumGX = f64x2.add(sumGX, f64x2.mul(g, xh));
    }
    let tG = f64x2.extract_lane(sumG, 0) + f64x2.extract_lane(sumG, 1);
    let tGX = f64x2.extract_lane(sumGX, 0) + f64x2.extract_lane(sumGX, 1);
    if (i < rowBytes) {
      const d = <f64>load<f32>(dz + o + i);
      const xh = (<f64>load<f32>(x + o + i) - m) * s;
      const a = i << 1;
      store<f64>(dg + a, load<f64>(dg + a) + d * xh);
      store<f64>(db + a, load<f64>(db + a) + d);
      const g = d * <f64>load<f32>(gamma + i);
      tG += g;
      tGX += g * xh;
    }
    const meanG = tG / cf;
    const meanGX = tGX / cf;
    const MG = f64x2.splat(meanG), MGX = f64x2.splat(meanGX);
    i = 0;
    for (; i < pairBytes; i += 8) {
      const xh = f64x2.mul(f64x2.sub(load2(x + o + i), M), S);
      const g = f64x2.mul(load2(dz + o + i), load2(gamma + i));
      store2(dx + o + i, f64x2.mul(S, f64x2.sub(f64x2.sub(g, MG), f64x2.mul(xh, MGX))));
    }
    if (i < rowBytes) {
      const xh = (<f64>load<f32>(x + o + i) - m) * s;
      store<f32>(dx + o + i, <f32>(s * (<f64>load<f32>(dz + o + i) * <f64>load<f32>(gamma + i) - meanG - xh * meanGX)));
    }
  }
  for (let i: usize = 0; i < <usize>c; i++) {
    store<f32>(dgamma + (i << 2), <f32>load<f64>(dg + (i << 3)));
    store<f32>(dbeta + (i << 2), <f32>load<f64>(db + (i << 3)));
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
                  s00 = f32x4.add(s00, f32x4.mul(x0, d0)); s01 = f32x4.add(s01, f32x4.mul(x0, d1));
                  s10 = f32x4.add(s10, f32x4.mul(x1, d0)); s11 = f32x4.add(s11, f32x4.mul(x1, d1));
                  s20 = f32x4.add(s20, f32x4.mul(x2, d0)); s21 = f32x4.add(s21, f32x4.mul(x2, d1));
                  s30 = f32x4.add(s30, f32x4.mul(x3, d0)); s31 = f32x4.add(s31, f32x4.mul(x3, d1));
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
                    s0 = f32x4.add(s0, f32x4.mul(x0, v128.load(dp)));
                    s1 = f32x4.add(s1, f32x4.mul(x0, v128.load(dp + 16)));
                    s2 = f32x4.add(s2, f32x4.mul(x0, v128.load(dp + 32)));
                    s3 = f32x4.add(s3, f32x4.mul(x0, v128.load(dp + 48)));
                  }
                } else {
                  for (let k: usize = 0; k < n; k++, xp += xStep, dp += coB) {
                    const x0 = v128.load32_splat(xp);
                    s0 = f32x4.add(s0, f32x4.mul(x0, v128.load(dp)));
                    s1 = f32x4.add(s1, f32x4.mul(x0, v128.load(dp + 16)));
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
                  s00 = f32x4.add(s00, f32x4.mul(d0, w0)); s01 = f32x4.add(s01, f32x4.mul(d0, w1));
                  s10 = f32x4.add(s10, f32x4.mul(d1, w0)); s11 = f32x4.add(s11, f32x4.mul(d1, w1));
                  s20 = f32x4.add(s20, f32x4.mul(d2, w0)); s21 = f32x4.add(s21, f32x4.mul(d2, w1));
                  s30 = f32x4.add(s30, f32x4.mul(d3, w0)); s31 = f32x4.add(s31, f32x4.mul(d3, w1));
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
 * Rows [m0, m1) of C = A·B (+ bias) (then max(·, 0) if `relu`), C [M, N] and B [K, N] row-major,
 * N a multiple of 8. A's element (i, k) is at a + 4·(i·rowStride + k·colStride), so A may be
 * given transposed. `bias` (N floats) is 0 for none.
 *
 * B goes by in blocks of 64 columns (which stay in the second-level cache while the rows of A
 * pass); within a block, 4 rows × 8 columns of C stay in eight registers along all of K.
 */
export function matmul(
  a: usize, rowStride: u32, colStride: u32, b: usize, c: usize, bias: usize,
  N: u32, K: u32, m0: u32, m1: u32, relu: bool,
): void {
  const rs = (<usize>rowStride) << 2;
  const ks = (<usize>colStride) << 2;
  const nB = (<usize>N) << 2;
  const ZERO = f32x4.splat(0);
  for (let n0: usize = 0; n0 < nB; n0 += 256) {
    const n1 = n0 + 256 < nB ? n0 + 256 : nB;
    for (let i = m0; i < m1; i += 4) {
      // Rows past m1 repeat row i (computed, never stored).
      const r1: usize = i + 1 < m1 ? rs : 0;
      const r2: usize = i + 2 < m1 ? 2 * rs : 0;
      const r3: usize = i + 3 < m1 ? 3 * rs : 0;
      const aRow = a + <usize>i * rs;
      for (let j = n0; j < n1; j += 32) {
        let s00 = ZERO, s01 = ZERO;
        if (bias != 0) {
          s00 = v128.load(bias + j);
          s01 = v128.load(bias + j + 16);
        }
        let s10 = s00, s11 = s01, s20 = s00, s21 = s01, s30 = s00, s31 = s01;
        let p = aRow;
        let bp = b + j;
        for (let k: u32 = 0; k < K; k++, p += ks, bp += nB) {
          const b0 = v128.load(bp), b1 = v128.load(bp + 16);
          const x0 = v128.load32_splat(p);
          const x1 = v128.load32_splat(p + r1);
          const x2 = v128.load32_splat(p + r2);
          const x3 = v128.load32_splat(p + r3);
          s00 = f32x4.add(s00, f32x4.mul(x0, b0)); s01 = f32x4.add(s01, f32x4.mul(x0, b1));
          s10 = f32x4.add(s10, f32x4.mul(x1, b0)); s11 = f32x4.add(s11, f32x4.mul(x1, b1));
          s20 = f32x4.add(s20, f32x4.mul(x2, b0)); s21 = f32x4.add(s21, f32x4.mul(x2, b1));
          s30 = f32x4.add(s30, f32x4.mul(x3, b0)); s31 = f32x4.add(s31, f32x4.mul(x3, b1));
        }
        if (relu) {
          s00 = f32x4.max(s00, ZERO); s01 = f32x4.max(s01, ZERO);
          s10 = f32x4.max(s10, ZERO); s11 = f32x4.max(s11, ZERO);
          s20 = f32x4.max(s20, ZERO); s21 = f32x4.max(s21, ZERO);
          s30 = f32x4.max(s30, ZERO); s31 = f32x4.max(s31, ZERO);
        }
        const out = c + <usize>i * nB + j;
        v128.store(out, s00); v128.store(out + 16, s01);
        if (i + 1 < m1) { v128.store(out + nB, s10); v128.store(out + nB + 16, s11); }
        if (i + 2 < m1) { v128.store(out + 2 * nB, s20); v128.store(out + 2 * nB + 16, s21); }
        if (i + 3 < m1) { v128.store(out + 3 * nB, s30); v128.store(out + 3 * nB + 16, s31); }
      }
    }
  }
}

/** Writes `bytes` zero bytes at p. */
export function zero(p: usize, bytes: usize): void {
  memory.fill(p, 0, bytes);
}

/** Copies `rows` runs of `bytes` bytes from src to dst, each side advancing by its own stride. */
export function copyRows(src: usize, srcStride: usize, dst: usize, dstStride: usize, rows: u32, bytes: usize): void {
  for (let r: u32 = 0; r < rows; r++, src += srcStride, dst += dstStride) memory.copy(dst, src, bytes);
}
