"""Exact eigenvalues vs the randomized estimate of the matrix-based Rényi entropy, by N.

For each N and Gram kind the script builds a normalized Gaussian Gram, saves it to a temporary
file, and runs two fresh subprocesses on it, one after the other:

* ``exact``: ``torch.linalg.eigvalsh`` (float64) and the entropies from its eigenvalues;
* ``approx``: :func:`infoplane.functional.approx.approx_renyi_entropy` for each alpha
  (``alpha = 2`` is the exact Frobenius form inside it, so its time is that of one norm).

Times are the median over ``--repeats`` calls (the exact solver runs once for N >= 8000), both
wall clock (``time.perf_counter``) and CPU time of the worker summed over its threads
(``time.process_time``); the second is less sensitive to other processes on a shared machine
(with ``--threads 1`` it is the work done). The 1-minute load average after each pair of workers is
printed too: on a shared machine other processes inflate both times. Memory is
the growth of the worker's peak resident set size during the timed calls, above its resident
size once the Gram is loaded: on Linux the peak (``VmHWM``) is reset after loading through
``/proc/self/clear_refs``, elsewhere the growth of ``getrusage().ru_maxrss`` is used (which
can hide a peak lower than the loading transient). It counts every allocation of the method,
torch's CPU allocator included (``tracemalloc`` does not see it), but not the Gram itself.

Grams: scikit-learn's 8x8 digits (1797 images), resampled with replacement to N and jittered
with Gaussian pixel noise, kernel width ``sigma`` = the median pairwise distance (``digits``)
or a quarter of it (``digits-hard``, a flatter spectrum). Without scikit-learn a 10-component
Gaussian mixture in 100 dimensions is used instead.

Usage::

    python benchmarks/bench_large_n.py                      # N = 500 ... 16000
    python benchmarks/bench_large_n.py --quick              # N = 500 ... 2000, one repeat
    python benchmarks/bench_large_n.py --sizes 1000 4000 --alphas 1 1.01 --repeats 2

Compare only ratios measured in the same run: on a shared machine absolute times drift.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SRC = Path(__file__).resolve().parents[1] / "src"
DEFAULT_SIZES = (500, 1000, 2000, 4000, 8000, 16000)
DEFAULT_ALPHAS = (1.0, 1.01, 2.0, 3.0)
KINDS = {"digits": 1.0, "digits-hard": 0.25}


# ------------------------------------------------------------------------------------- grams
def _samples(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    try:
        from sklearn.datasets import load_digits

        base = load_digits().data.astype(np.float64)
        noise = 1.0
    except ImportError:  # pragma: no cover - fallback without the experiments extra
        centers = 3.0 * rng.standard_normal((10, 100))
        base = centers[rng.integers(0, 10, 2000)] + rng.standard_normal((2000, 100))
        noise = 0.5
    idx = rng.integers(0, base.shape[0], n)
    return base[idx] + noise * rng.standard_normal((n, base.shape[1]))


def make_gram(n: int, sigma_scale: float, seed: int = 0) -> torch.Tensor:
    """Normalized Gaussian Gram ``exp(-d^2 / (2 sigma^2)) / N`` (float64)."""
    x = torch.from_numpy(_samples(n, seed))
    d2 = torch.cdist(x, x).square_()
    m = min(n, 2000)
    sub = d2[:m, :m]
    iu = torch.triu_indices(m, m, 1)
    sigma = sigma_scale * float(sub[iu[0], iu[1]].median().sqrt())
    return d2.mul_(-1.0 / (2.0 * sigma * sigma)).exp_().div_(n)


# ------------------------------------------------------------------------------------ workers
def _maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def _proc_status_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS (Linux >= 4.0), so that the transient of
    loading the Gram does not hide the method's own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _proc_status_mib("VmHWM") is not None


class _PeakMeter:
    """Growth of the peak RSS over a block: VmHWM after a reset where Linux allows it,
    else the growth of ``ru_maxrss`` (which can hide peaks below an earlier transient)."""

    def __init__(self) -> None:
        self.exact = _reset_peak_rss()
        self.base = _proc_status_mib("VmRSS") if self.exact else _maxrss_mib()

    def delta(self) -> float:
        peak = _proc_status_mib("VmHWM") if self.exact else _maxrss_mib()
        return max(0.0, (peak or 0.0) - (self.base or 0.0))


def _entropy_from_eigenvalues(lam: torch.Tensor, alpha: float) -> float:
    lam = lam.clamp_min(0.0)
    lam = lam / lam.sum()
    lam = lam[lam > lam.max() * lam.numel() * torch.finfo(lam.dtype).eps]
    if alpha == 1.0:
        return float(-(lam * lam.log2()).sum())
    return float(torch.log2(lam.pow(alpha).sum()) / (1.0 - alpha))


def _worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(SRC))
    from infoplane.functional.approx import approx_renyi_entropy

    if args.threads:
        torch.set_num_threads(args.threads)
    a = torch.load(args.gram, weights_only=True)
    torch.linalg.eigvalsh(torch.eye(4, dtype=torch.float64))  # load LAPACK before the baseline
    meter = _PeakMeter()
    out: dict = {
        "threads": torch.get_num_threads(),
        "rss_method": "VmHWM" if meter.exact else "ru_maxrss",
    }
    if args.worker == "exact":
        walls, cpus = [], []
        for _ in range(args.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            lam = torch.linalg.eigvalsh(a)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        out["time"], out["cpu"] = statistics.median(walls), statistics.median(cpus)
        out["values"] = {str(al): _entropy_from_eigenvalues(lam, al) for al in args.alphas}
    else:
        out["time"], out["cpu"], out["values"], out["errors"] = {}, {}, {}, {}
        for al in args.alphas:
            walls, cpus = [], []
            for _ in range(args.repeats):
                w0, c0 = time.perf_counter(), time.process_time()
                value, error = approx_renyi_entropy(a, al, return_error=True)
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
            out["time"][str(al)] = statistics.median(walls)
            out["cpu"][str(al)] = statistics.median(cpus)
            out["values"][str(al)] = float(value)
            out["errors"][str(al)] = float(error)
    out["rss_delta_mib"] = meter.delta()
    print("RESULT " + json.dumps(out), flush=True)


def _run_worker(kind: str, gram_path: Path, alphas, repeats: int, threads: int | None) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        *(["--threads", str(threads)] if threads else []),
        "--worker",
        kind,
        "--gram",
        str(gram_path),
        "--repeats",
        str(repeats),
        "--alphas",
        *[str(a) for a in alphas],
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{kind} worker failed:\n{proc.stdout}\n{proc.stderr}")


# ---------------------------------------------------------------------------------------- main
def _crossover(rows: list[dict], kind: str = "s") -> float | None:
    """N where exact and approx (alpha = 1.01, else the first alpha != 2) take equal time,
    by log-log interpolation of the speed-up between the measured sizes."""
    pts: dict[int, list[float]] = {}
    for r in rows:
        if r["alpha"] == r["ref_alpha"]:
            pts.setdefault(r["n"], []).append(r[f"exact_{kind}"] / r[f"approx_{kind}"])
    ns = sorted(pts)
    speed = [float(np.exp(np.mean(np.log(pts[n])))) for n in ns]
    if not ns:
        return None
    if speed[0] >= 1.0:
        return float(ns[0])
    for i in range(len(ns) - 1):
        (n0, s0), (n1, s1) = (ns[i], speed[i]), (ns[i + 1], speed[i + 1])
        if s0 < 1.0 <= s1:
            t = math.log(1.0 / s0) / math.log(s1 / s0)
            return float(math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0))))
    return None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    p.add_argument("--alphas", type=float, nargs="+", default=list(DEFAULT_ALPHAS))
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed calls per method (median is kept); N >= 8000 exact uses 1",
    )
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    p.add_argument("--quick", action="store_true", help="N = 500, 1000, 2000 and one repeat")
    p.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    p.add_argument("--threads", type=int, help="torch threads of the workers (default: torch's)")
    p.add_argument("--worker", choices=["exact", "approx"], help=argparse.SUPPRESS)
    p.add_argument("--gram", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return
    if args.quick:
        args.sizes = [n for n in args.sizes if n <= 2000] or [500, 1000, 2000]
        args.repeats = 1

    ref_alpha = 1.01 if 1.01 in args.alphas else next((a for a in args.alphas if a != 2.0), None)
    print(
        f"# bench_large_n: torch {torch.__version__}, "
        f"threads {args.threads or torch.get_num_threads()}, "
        f"{platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(
        "# times: median over repeats, seconds (wall clock, and CPU time of the worker over "
        "all its threads); rel err = |approx - exact| / exact; err est = returned error "
        "estimate / exact; dRSS = growth of peak RSS in the worker during the timed calls "
        "(MiB); load = 1-min load average after the workers"
    )
    header = (
        "| N | Gram | alpha | exact s | approx s | speed-up | exact CPU s | approx CPU s | "
        "CPU speed-up | S exact | S approx | rel err % | err est % | dRSS exact | "
        "dRSS approx | load |"
    )
    print(header)
    print("|" + "---|" * 16)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_large_n_") as tmp:
        for n in args.sizes:
            for kind in args.kinds:
                path = Path(tmp) / f"gram_{n}_{kind}.pt"
                torch.save(make_gram(n, KINDS[kind]).contiguous(), path)
                exact_reps = 1 if n >= 8000 else args.repeats
                ex = _run_worker("exact", path, args.alphas, exact_reps, args.threads)
                ap = _run_worker("approx", path, args.alphas, args.repeats, args.threads)
                os.remove(path)
                load = os.getloadavg()[0]
                for al in args.alphas:
                    k = str(al)
                    s_ex, s_ap = ex["values"][k], ap["values"][k]
                    row = {
                        "n": n,
                        "kind": kind,
                        "alpha": al,
                        "ref_alpha": ref_alpha,
                        "exact_s": ex["time"],
                        "approx_s": ap["time"][k],
                        "exact_cpu": ex["cpu"],
                        "approx_cpu": ap["cpu"][k],
                        "exact": s_ex,
                        "approx": s_ap,
                        "error_estimate": ap["errors"][k],
                        "rel_err": abs(s_ap - s_ex) / abs(s_ex),
                        "rss_exact_mib": ex["rss_delta_mib"],
                        "rss_approx_mib": ap["rss_delta_mib"],
                        "threads": ex["threads"],
                        "load": load,
                        "rss_method": ex.get("rss_method"),
                    }
                    rows.append(row)
                    print(
                        f"| {n} | {kind} | {al:g} | {row['exact_s']:.3f} | "
                        f"{row['approx_s']:.3f} | {row['exact_s'] / row['approx_s']:.1f}x | "
                        f"{row['exact_cpu']:.3f} | {row['approx_cpu']:.3f} | "
                        f"{row['exact_cpu'] / max(row['approx_cpu'], 1e-6):.1f}x | "
                        f"{s_ex:.4f} | {s_ap:.4f} | {100 * row['rel_err']:.3f} | "
                        f"{100 * row['error_estimate'] / abs(s_ex):.3f} | "
                        f"{row['rss_exact_mib']:.0f} | {row['rss_approx_mib']:.0f} | "
                        f"{load:.1f} |",
                        flush=True,
                    )
    methods = sorted({str(r["rss_method"]) for r in rows})
    print(f"# dRSS measured with: {', '.join(methods)}")
    for kind, label in (("s", "wall clock"), ("cpu", "CPU time")):
        cross = _crossover(rows, kind)
        if cross is None:
            print(f"# crossover ({label}): not bracketed by the measured sizes")
        else:
            print(
                f"# crossover ({label}, alpha = {ref_alpha:g}, geometric mean over Grams, "
                f"log-log interpolation): approx is faster above N ~ {cross:.0f}"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
