/**
 * Metrics for 2-D samples against a known mixture.
 *
 * Mode coverage follows PacGAN (Lin et al. 2018) and VEEGAN (Srivastava et al. 2017): a
 * generated sample is *high quality* if it lies within 3 standard deviations of the nearest
 * mode; a mode is *captured* if at least one high-quality sample is nearest to it; the reverse
 * KL is KL(q ‖ p) between the histogram q of high-quality samples over modes and the true
 * uniform p. GAN Lab's cheap live measures compare 30×30 histograms of real and generated
 * samples by KL and Jensen–Shannon divergence. MMD uses a Gaussian kernel (unbiased estimate).
 */

export interface ModeCoverage {
  /** Modes with at least one high-quality sample. */
  modesCaptured: number;
  modes: number;
  /** Share of samples within 3 std of their nearest mode, in [0, 1]. */
  highQuality: number;
  /** KL(q ‖ uniform) of high-quality samples over modes, in nats (0 is perfectly balanced). */
  reverseKL: number;
  /** High-quality samples per mode. */
  histogram: number[];
  /** All samples per nearest mode, high quality or not (shows collapse even off the modes). */
  nearest: number[];
  samples: number;
}

/** `xy`: samples as x0 y0 x1 y1 …; `modes`: the mixture's means; `std`: its standard deviation. */
export function modeCoverage(xy: ArrayLike<number>, modes: number[][], std: number): ModeCoverage {
  const n = Math.floor(xy.length / 2);
  const k = modes.length;
  const histogram = new Array(k).fill(0);
  const nearest = new Array(k).fill(0);
  let hq = 0;
  const limit = 3 * std;
  for (let i = 0; i < n; i++) {
    const x = xy[2 * i];
    const y = xy[2 * i + 1];
    let best = Infinity;
    let at = -1;
    for (let m = 0; m < k; m++) {
      const d = Math.hypot(x - modes[m][0], y - modes[m][1]);
      if (d < best) ((best = d), (at = m));
    }
    if (at >= 0) nearest[at] += 1;
    if (best < limit) {
      hq += 1;
      histogram[at] += 1;
    }
  }
  let reverseKL = Infinity;
  if (hq > 0) {
    reverseKL = 0;
    for (const c of histogram) if (c > 0) reverseKL += (c / hq) * Math.log((c / hq) * k);
  }
  return { modesCaptured: histogram.filter((c) => c > 0).length, modes: k, highQuality: n ? hq / n : 0, reverseKL, histogram, nearest, samples: n };
}

export interface HistogramDivergence {
  /** KL(real ‖ generated), nats. */
  kl: number;
  /** Jensen–Shannon divergence, nats (≤ ln 2). */
  js: number;
}

/** Normalised 2-D histogram over [x0, x1] × [y0, y1] with `bins` per side (points outside are clamped). */
function histogram2d(xy: ArrayLike<number>, bins: number, box: [number, number, number, number]): Float64Array {
  const [x0, x1, y0, y1] = box;
  const h = new Float64Array(bins * bins);
  const n = Math.floor(xy.length / 2);
  for (let i = 0; i < n; i++) {
    const bx = Math.min(bins - 1, Math.max(0, Math.floor(((xy[2 * i] - x0) / (x1 - x0)) * bins)));
    const by = Math.min(bins - 1, Math.max(0, Math.floor(((xy[2 * i + 1] - y0) / (y1 - y0)) * bins)));
    if (Number.isFinite(bx) && Number.isFinite(by)) h[by * bins + bx] += 1;
  }
  return h;
}

/**
 * GAN Lab's KL and JS between 30×30 histograms of real and generated samples over the real
 * data's bounding box (padded 10 %). Each histogram gets 1e-10 added per bin before normalising.
 */
export function gridDivergence(real: ArrayLike<number>, fake: ArrayLike<number>, bins = 30): HistogramDivergence {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i + 1 < real.length; i += 2) {
    x0 = Math.min(x0, real[i]);
    x1 = Math.max(x1, real[i]);
    y0 = Math.min(y0, real[i + 1]);
    y1 = Math.max(y1, real[i + 1]);
  }
  const px = (x1 - x0) * 0.1 || 1;
  const py = (y1 - y0) * 0.1 || 1;
  const box: [number, number, number, number] = [x0 - px, x1 + px, y0 - py, y1 + py];
  const p = histogram2d(real, bins, box);
  const q = histogram2d(fake, bins, box);
  const eps = 1e-10;
  const sp = p.reduce((a, b) => a + b + eps, 0);
  const sq = q.reduce((a, b) => a + b + eps, 0);
  let kl = 0;
  let js = 0;
  for (let i = 0; i < p.length; i++) {
    const a = (p[i] + eps) / sp;
    const b = (q[i] + eps) / sq;
    const m = (a + b) / 2;
    kl += a * Math.log(a / b);
    js += 0.5 * a * Math.log(a / m) + 0.5 * b * Math.log(b / m);
  }
  return { kl, js };
}

/**
 * Squared maximum mean discrepancy with a Gaussian kernel k(a, b) = exp(−‖a−b‖² / 2σ²),
 * unbiased estimate (Gretton et al. 2012, eq. 3). Points are rows of `dim` numbers.
 */
export function mmd(a: ArrayLike<number>, b: ArrayLike<number>, sigma = 1, dim = 2): number {
  const n = Math.floor(a.length / dim);
  const m = Math.floor(b.length / dim);
  if (n < 2 || m < 2) throw new Error("mmd() needs at least 2 samples on each side.");
  const k = (x: ArrayLike<number>, i: number, y: ArrayLike<number>, j: number) => {
    let d = 0;
    for (let c = 0; c < dim; c++) d += (x[i * dim + c] - y[j * dim + c]) ** 2;
    return Math.exp(-d / (2 * sigma * sigma));
  };
  let xx = 0, yy = 0, xy = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) xx += k(a, i, a, j);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) if (i !== j) yy += k(b, i, b, j);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) xy += k(a, i, b, j);
  return xx / (n * (n - 1)) + yy / (m * (m - 1)) - (2 * xy) / (n * m);
}
