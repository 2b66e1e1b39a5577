"""Estimator core: ``gaussian_gram`` + ``renyi_entropy`` against a naive version and against the
bare primitives it cannot avoid, for N in {100, 500, 2000} and D in {512, 65536}.

Variants (all on the same float32 batch ``x`` [N, D] of standard normal values, sigma = sqrt(2 D),
about the median distance, alpha = 1.01):

* ``ours``: ``infoplane.renyi_entropy(infoplane.gaussian_gram(x, sigma), alpha)``, the public
  path with its validation, float32 -> float64 upcast, column centring, exp and normalization.
* ``naive``: the textbook computation: upcast to float64, the ``[N, N, D]`` difference tensor,
  its squared sum over D, exp, ``K / N``, ``eigvalsh``, ``log2(sum lambda^alpha) / (1 - alpha)``.
  Skipped where ``N * N * D * 8`` bytes exceeds ``--naive-limit-gib`` (default 4 GiB); the table
  then says what it would need.
* ``bare``: the two primitives alone, on float64 inputs prepared beforehand (not timed): one
  ``[N, D] x [D, N]`` product and one ``torch.linalg.eigvalsh`` of an ``[N, N]`` matrix. Its time
  is the sum of the two medians.

Timing: one fresh subprocess per case runs warm-up calls, then ``--repeats`` rounds in which
``ours`` and ``bare`` take turns (so a shared machine's load hits them alike); each time is the
median over the rounds (``time.perf_counter``). ``naive`` is timed the same way in a second
fresh subprocess: its [N, N, D] temporaries (78 MiB at N = 100, D = 512) evict the caches and
return pages to the OS, which doubled the next sub-millisecond ``ours`` call when they were
interleaved. Threads: torch's default for the machine unless ``--threads`` is given.

Memory: each variant runs once more in its own fresh subprocess, after the inputs are built and a
tiny warm-up call has loaded the libraries. Peak extra memory = the peak resident set during the
call (``VmHWM``, reset to the current resident set through ``/proc/self/clear_refs`` just before)
minus the resident set just before. It counts every allocation of the call (torch's allocator,
BLAS/LAPACK workspaces), not the inputs.

Run: ``.venv/bin/python benchmarks/bench_core.py`` (``--quick``: 3 rounds, N in {100, 500}).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

SRC = Path(__file__).resolve().parents[1] / "src"
ALPHA = 1.01
VARIANTS = ("ours", "naive", "bare")


# ------------------------------------------------------------------------------------- variants
def _naive(x: torch.Tensor, sigma: float, alpha: float) -> torch.Tensor:
    x64 = x.to(torch.float64)
    diff = x64[:, None, :] - x64[None, :, :]
    d2 = (diff * diff).sum(dim=-1)
    a = torch.exp(-d2 / (2.0 * sigma**2)) / x.shape[0]
    lam = torch.linalg.eigvalsh(a).clamp(min=0.0)
    return torch.log2((lam**alpha).sum()) / (1.0 - alpha)


def _ours(x: torch.Tensor, sigma: float, alpha: float) -> torch.Tensor:
    import infoplane

    return infoplane.renyi_entropy(infoplane.gaussian_gram(x, sigma), alpha)


def _inputs(n: int, d: int, variant: str, seed: int = 0):
    """The float32 batch, and for ``bare`` its float64 copy and an [N, N] float64 matrix."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    extra = {}
    if variant in ("bare", "all"):
        extra["x64"] = x.to(torch.float64)
        import infoplane

        extra["a"] = infoplane.normalize_gram(infoplane.gaussian_gram(x, math.sqrt(2.0 * d)))
    return x, extra


def _run(variant: str, x: torch.Tensor, extra: dict, sigma: float) -> dict[str, float]:
    """Run one variant once; return the seconds of each part."""
    if variant == "ours":
        t = time.perf_counter()
        _ours(x, sigma, ALPHA)
        return {"ours": time.perf_counter() - t}
    if variant == "naive":
        t = time.perf_counter()
        _naive(x, sigma, ALPHA)
        return {"naive": time.perf_counter() - t}
    t = time.perf_counter()
    torch.mm(extra["x64"], extra["x64"].T)
    t_mm = time.perf_counter() - t
    t = time.perf_counter()
    torch.linalg.eigvalsh(extra["a"])
    t_eig = time.perf_counter() - t
    return {"bare_mm": t_mm, "bare_eig": t_eig}


# ------------------------------------------------------------------------------------- workers
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _worker_time(n: int, d: int, variants: list[str], repeats: int) -> dict:
    x, extra = _inputs(n, d, "all" if "bare" in variants else "x")
    sigma = math.sqrt(2.0 * d)
    for v in variants:  # warm-up: libraries, thread pools, allocator
        _run(v, x, extra, sigma)
    times: dict[str, list[float]] = {}
    for r in range(repeats):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for v in order:
            for part, sec in _run(v, x, extra, sigma).items():
                times.setdefault(part, []).append(sec)
    out = {part: statistics.median(v) for part, v in times.items()}
    out["spread"] = {part: [min(v), max(v)] for part, v in times.items()}
    if "naive" in variants:  # the two agree (the naive version is the reference here)
        out["abs_diff_bits"] = float(abs(_ours(x, sigma, ALPHA) - _naive(x, sigma, ALPHA)))
    return out


def _worker_memory(n: int, d: int, variant: str) -> dict:
    x, extra = _inputs(n, d, variant)
    sigma = math.sqrt(2.0 * d)
    tiny_x, tiny_extra = _inputs(4, 8, variant)
    _run(variant, tiny_x, tiny_extra, math.sqrt(16.0))  # load the libraries, not the sizes
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM (peak resident set) to the current resident set
    _run(variant, x, extra, sigma)
    return {"peak_extra_bytes": (_status_kib("VmHWM") - before) * 1024}


# ------------------------------------------------------------------------------------- driver
def _subprocess(args: list[str], threads: int | None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, *args]
    if threads:
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def _ms(sec: float) -> str:
    return f"{sec * 1e3:.2f}" if sec < 10 else f"{sec * 1e3:.0f}"


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 rounds, N in {100, 500} only")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 7)")
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000])
    p.add_argument("--dims", type=int, nargs="+", default=[512, 65536])
    p.add_argument("--naive-limit-gib", type=float, default=4.0)
    p.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    p.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    p.add_argument("--worker", nargs=4, metavar=("KIND", "N", "D", "ARG"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.worker:
        kind, n, d, arg = args.worker
        if kind == "time":
            result = _worker_time(int(n), int(d), arg.split(","), args.repeats or 7)
        else:
            result = _worker_memory(int(n), int(d), arg)
        print(json.dumps(result))
        return 0

    repeats = args.repeats or (3 if args.quick else 7)
    sizes = [n for n in args.sizes if not (args.quick and n > 500)]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU: {_cpu_model()}, "
        f"{os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"alpha = {ALPHA}, float32 input, medians of {repeats} interleaved rounds")
    header = (
        "| N | D | ours ms | bare ms (mm + eig) | naive ms | ours/bare | ours/naive "
        "| peak extra: ours | bare | naive |"
    )
    print(header)
    print("|" + "---|" * 10)
    rows = []
    for n in sizes:
        for d in args.dims:
            naive_bytes = n * n * d * 8
            run_naive = naive_bytes <= args.naive_limit_gib * 2**30
            variants = ["ours", "bare"] + (["naive"] if run_naive else [])
            t = {}
            for group in (["ours", "bare"], ["naive"] if run_naive else []):
                if group:
                    cmd = ["--worker", "time", str(n), str(d), ",".join(group)]
                    part = _subprocess([*cmd, "--repeats", str(repeats)], args.threads)
                    spread = {**t.get("spread", {}), **part.pop("spread")}
                    t.update(part, spread=spread)
            mem = {}
            if not args.no_memory:
                for v in variants:
                    mem[v] = _subprocess(["--worker", "mem", str(n), str(d), v], args.threads)
            bare = t["bare_mm"] + t["bare_eig"]
            naive = (
                f"{_ms(t['naive'])}"
                if run_naive
                else f"not run (needs {_gib(naive_bytes)} for [N, N, D] float64)"
            )
            ratio_naive = f"{t['ours'] / t['naive']:.3f}" if run_naive else "-"

            def peak(v, mem=mem):
                return _gib(mem[v]["peak_extra_bytes"]) if v in mem else "-"

            row = (
                f"| {n} | {d} | {_ms(t['ours'])} | {_ms(bare)} ({_ms(t['bare_mm'])} + "
                f"{_ms(t['bare_eig'])}) | {naive} | {t['ours'] / bare:.2f} | {ratio_naive} "
                f"| {peak('ours')} | {peak('bare')} | {peak('naive')} |"
            )
            print(row, flush=True)
            rows.append({"n": n, "d": d, "times": t, "memory": mem})
    diffs = [r["times"]["abs_diff_bits"] for r in rows if "abs_diff_bits" in r["times"]]
    if diffs:
        print(f"largest |ours - naive| entropy difference: {max(diffs):.1e} bits")
    if os.environ.get("BENCH_CORE_JSON"):
        Path(os.environ["BENCH_CORE_JSON"]).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
