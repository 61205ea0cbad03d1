/**
 * Distances between sets of images, measured on feature vectors (rows of [n, d]):
 *
 * - Fréchet distance (Heusel et al. 2017, eq. 6): ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁^½ Σ₂ Σ₁^½)^½);
 * - KID (Bińkowski et al. 2018): the unbiased MMD² with the kernel k(x, y) = (xᵀy / d + 1)³,
 *   averaged over random subsets, with its standard error;
 * - precision and recall (Kynkäänniemi et al. 2019): the share of generated points inside the
 *   real data's k-NN balls, and of real points inside the generated data's.
 *
 * The numbers mean something only against a floor measured the same way (real vs real) and
 * within one feature network; `lab.evaluate` prints both.
 */
import { Rng } from "../random/rng";

/** Eigen-decomposition of a symmetric matrix (cyclic Jacobi); returns eigenvalues and vectors (columns). */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] ** 2;
    if (off < 1e-22 * (1 + n)) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p];
          const mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k];
          const mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = m[i * n + i];
  return { values, vectors: v };
}

function meanCov(x: ArrayLike<number>, n: number, d: number): { mean: Float64Array; cov: Float64Array } {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = x[i * d + j] - mean[j];
    for (let a = 0; a < d; a++) {
      const ra = row[a];
      if (ra === 0) continue;
      for (let b = a; b < d; b++) cov[a * d + b] += ra * row[b];
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      cov[a * d + b] /= n - 1;
      cov[b * d + a] = cov[a * d + b];
    }
  }
  return { mean, cov };
}

/** Fréchet distance between two sets of d-dimensional rows. */
export function frechetDistance(a: ArrayLike<number>, b: ArrayLike<number>, d: number): number {
  const na = a.length / d;
  const nb = b.length / d;
  if (na < 2 || nb < 2) throw new Error("frechetDistance() needs at least 2 rows on each side.");
  const A = meanCov(a, na, d);
  const B = meanCov(b, nb, d);
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (A.mean[j] - B.mean[j]) ** 2;
  // S = Σ_A^½ via its eigen-decomposition; then tr((S Σ_B S)^½) = Σ √λ(S Σ_B S).
  const ea = symmetricEigen(A.cov, d);
  const S = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += ea.vectors[i * d + k] * Math.sqrt(Math.max(ea.values[k], 0)) * ea.vectors[j * d + k];
      S[i * d + j] = s;
    }
  }
  const SB = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) {
    const sik = S[i * d + k];
    if (sik === 0) continue;
    for (let j = 0; j < d; j++) SB[i * d + j] += sik * B.cov[k * d + j];
  }
  const M = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) {
    const v = SB[i * d + k];
    if (v === 0) continue;
    for (let j = 0; j < d; j++) M[i * d + j] += v * S[k * d + j];
  }
  for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) M[i * d + j] = M[j * d + i] = (M[i * d + j] + M[j * d + i]) / 2;
  const em = symmetricEigen(M, d);
  let traceSqrt = 0;
  for (const v of em.values) traceSqrt += Math.sqrt(Math.max(v, 0));
  let trA = 0, trB = 0;
  for (let j = 0; j < d; j++) ((trA += A.cov[j * d + j]), (trB += B.cov[j * d + j]));
  return Math.max(0, meanTerm + trA + trB - 2 * traceSqrt);
}

export interface Kid {
  /** Mean of the unbiased MMD² estimates over subsets. */
  value: number;
  /** Standard error of that mean. */
  stderr: number;
  subsets: number;
  subsetSize: number;
}

/** Kernel inception distance on features (polynomial kernel of degree 3), over random subsets. */
export function kid(a: ArrayLike<number>, b: ArrayLike<number>, d: number, rng: Rng, options: { subsets?: number; subsetSize?: number } = {}): Kid {
  const na = a.length / d;
  const nb = b.length / d;
  const m = Math.min(options.subsetSize ?? 500, na, nb);
  const subsets = options.subsets ?? 10;
  if (m < 2) throw new Error("kid() needs at least 2 rows on each side.");
  const k = (x: ArrayLike<number>, i: number, y: ArrayLike<number>, j: number) => {
    let s = 0;
    for (let c = 0; c < d; c++) s += x[i * d + c] * y[j * d + c];
    return (s / d + 1) ** 3;
  };
  const values: number[] = [];
  for (let t = 0; t < subsets; t++) {
    const ia = rng.permutation(na).subarray(0, m);
    const ib = rng.permutation(nb).subarray(0, m);
    let xx = 0, yy = 0, xy = 0;
    for (let p = 0; p < m; p++) {
      for (let q = 0; q < m; q++) {
        if (p !== q) {
          xx += k(a, ia[p], a, ia[q]);
          yy += k(b, ib[p], b, ib[q]);
        }
        xy += k(a, ia[p], b, ib[q]);
      }
    }
    values.push(xx / (m * (m - 1)) + yy / (m * (m - 1)) - (2 * xy) / (m * m));
  }
  const mean = values.reduce((s, v) => s + v, 0) / subsets;
  const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, subsets - 1));
  return { value: mean, stderr: sd / Math.sqrt(subsets), subsets, subsetSize: m };
}

/** Squared distances between rows of a and rows of b. */
function pairwise(a: ArrayLike<number>, b: ArrayLike<number>, d: number): Float64Array {
  const na = a.length / d;
  const nb = b.length / d;
  const out = new Float64Array(na * nb);
  for (let i = 0; i < na; i++) {
    for (let j = 0; j < nb; j++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += (a[i * d + c] - b[j * d + c]) ** 2;
      out[i * nb + j] = s;
    }
  }
  return out;
}

/** Radius² of each row's k-th nearest neighbour within its own set. */
function kthRadius(x: ArrayLike<number>, d: number, k: number): Float64Array {
  const n = x.length / d;
  const dist = pairwise(x, x, d);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const row = Array.from(dist.subarray(i * n, (i + 1) * n)).sort((p, q) => p - q);
    out[i] = row[Math.min(k, n - 1)]; // row[0] is the point itself
  }
  return out;
}

export interface PrecisionRecall {
  /** Share of generated rows inside some real row's k-NN ball: are the samples realistic? */
  precision: number;
  /** Share of real rows inside some generated row's k-NN ball: do samples cover the data? */
  recall: number;
  k: number;
}

/** Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds. */
export function precisionRecall(real: ArrayLike<number>, fake: ArrayLike<number>, d: number, k = 3): PrecisionRecall {
  const nr = real.length / d;
  const nf = fake.length / d;
  const rr = kthRadius(real, d, k);
  const rf = kthRadius(fake, d, k);
  const cross = pairwise(fake, real, d); // [nf, nr]
  let inReal = 0;
  for (let i = 0; i < nf; i++) {
    for (let j = 0; j < nr; j++) {
      if (cross[i * nr + j] <= rr[j]) {
        inReal += 1;
        break;
      }
    }
  }
  let inFake = 0;
  for (let j = 0; j < nr; j++) {
    for (let i = 0; i < nf; i++) {
      if (cross[i * nr + j] <= rf[i]) {
        inFake += 1;
        break;
      }
    }
  }
  return { precision: inReal / nf, recall: inFake / nr, k };
}

/** Each row's distance to its nearest row of `reference`. */
export function nearestDistances(x: ArrayLike<number>, reference: ArrayLike<number>, d: number): Float64Array {
  const n = x.length / d;
  const m = reference.length / d;
  const out = new Float64Array(n).fill(Infinity);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let c = 0; c < d && s < out[i]; c++) s += (x[i * d + c] - reference[j * d + c]) ** 2;
      if (s < out[i]) out[i] = s;
    }
    out[i] = Math.sqrt(out[i]);
  }
  return out;
}

export interface Novelty {
  /** Median distance of generated samples to their nearest training sample. */
  medianNearest: number;
  /** The same for held-out real samples: what "new" looks like for this data. */
  heldOutMedianNearest: number;
  /** Share of generated samples closer to a training sample than 95 % of held-out samples are. */
  memorised: number;
  /** The threshold used: the 5th percentile of held-out nearest distances. */
  threshold: number;
}

/**
 * Creating or copying? Compares how close generated samples sit to the training set with how
 * close held-out real samples do. A model that makes new samples like the data scores about 5 %
 * `memorised` (by construction of the threshold); much more means it reproduces training examples.
 */
export function novelty(generated: ArrayLike<number>, train: ArrayLike<number>, heldOut: ArrayLike<number>, d: number): Novelty {
  const g = Array.from(nearestDistances(generated, train, d)).sort((p, q) => p - q);
  const h = Array.from(nearestDistances(heldOut, train, d)).sort((p, q) => p - q);
  const median = (v: number[]) => v[Math.floor(v.length / 2)];
  const threshold = h[Math.floor(0.05 * (h.length - 1))];
  return { medianNearest: median(g), heldOutMedianNearest: median(h), memorised: g.filter((v) => v < threshold).length / g.length, threshold };
}

/** Share of generated strings that are not in the training set. */
export function textNovelty(generated: string[], train: string[]): number {
  const seen = new Set(train);
  return generated.length ? generated.filter((s) => !seen.has(s)).length / generated.length : NaN;
}
