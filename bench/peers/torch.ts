/**
 * The PyTorch peer of the benchmarks: Debian's python3-torch run by /usr/bin/python3 (or
 * LATENTLAB_PYTHON), and what BLAS it gets.
 */
import { spawnSync } from "node:child_process";

export const PYTHON = process.env.LATENTLAB_PYTHON ?? "/usr/bin/python3";

/** PyTorch's version, or null where it does not import. */
export function torchAvailable(): string | null {
  const r = spawnSync(PYTHON, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

/**
 * PyTorch's dense layers (and transposed convs) run on whatever BLAS libblas.so.3 is. Debian's
 * python3-torch takes the reference BLAS unless OpenBLAS is installed: on the reference machine a
 * 512² product ran at 5.6 GFLOP/s a thread with it, 197 with OpenBLAS, and PyTorch's VAE step
 * took 163 ms instead of 12. So the benchmark says what its peer gets, and warns when it is slow.
 */
const SLOW_BLAS_GFLOPS = 20;

export function torchBlas(): string {
  const code = "import torch, time\ntorch.set_num_threads(1)\na = torch.randn(512, 512); b = torch.randn(512, 512)\nfor _ in range(3): a @ b\nt = time.perf_counter()\nfor _ in range(20): a @ b\nprint(2 * 512 ** 3 * 20 / (time.perf_counter() - t) / 1e9)";
  const r = spawnSync(PYTHON, ["-c", code], { encoding: "utf8" });
  const gflops = Number(r.stdout.trim());
  if (r.status !== 0 || !Number.isFinite(gflops)) return "PyTorch's BLAS: could not be measured";
  const line = `PyTorch's BLAS: a 512² float32 product at ${gflops.toFixed(1)} GFLOP/s on one thread`;
  return gflops >= SLOW_BLAS_GFLOPS
    ? line
    : `${line} — !! the reference BLAS, not a fair peer: install OpenBLAS (Debian: apt-get install libopenblas0-pthread)`;
}
