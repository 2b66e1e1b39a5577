"""Shared helpers of the benchmark scripts: timing, memory, the machine header, a busy core.

Every script times its variants interleaved in one process (round-robin, the order rotated each
round) and reports medians, so slow drift of a shared machine hits every variant alike. Beside
every table it prints the header of :func:`machine` (threads, load average before and after,
torch, CPU model, python). ``--busy-core`` keeps one core busy with a bounded spin loop in another
process for the duration of the measurement (:func:`busy_core`), the normal situation of a
researcher's machine (data-loader workers, a second job, a notebook).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch

#: Upper bound of a busy-core loop in seconds, whatever happens to the benchmark.
BUSY_CORE_MAX_S = 900.0


# ----------------------------------------------------------------------------- the machine
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return math.nan


def machine(busy: bool = False) -> dict[str, Any]:
    """What a reader needs to judge a timing: threads, load, torch, CPU, python."""
    return {
        "threads": torch.get_num_threads(),
        "load_before": load_average(),
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "busy_core": busy,
    }


def header_line(info: Mapping[str, Any]) -> str:
    """One ``##`` line of :func:`machine`'s fields, with the load average after if known."""
    after = info.get("load_after")
    load = f"{info['load_before']:.2f}" + ("" if after is None else f" -> {after:.2f}")
    return (
        f"## torch {info['torch']}, threads {info['threads']}, load average {load}, "
        f"busy core {'yes' if info['busy_core'] else 'no'}, CPU {info['cpu']} "
        f"({info['cpus']} logical), python {info['python']}"
    )


# ----------------------------------------------------------------------------- busy core
def _spin(stop: Any, deadline: float) -> None:
    """Keep one core busy until ``stop`` is set or ``deadline`` (monotonic seconds) passes."""
    x = 0
    while not stop.is_set() and time.monotonic() < deadline:
        for _ in range(20000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF


@contextlib.contextmanager
def busy_core(enabled: bool = True, max_seconds: float = BUSY_CORE_MAX_S) -> Iterator[Any]:
    """Run a bounded spin loop in another process while the body runs; always joined.

    Yields the process (None when ``enabled`` is false). The loop ends when the body ends, and
    at the latest after ``max_seconds``.
    """
    if not enabled:
        yield None
        return
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    proc = ctx.Process(target=_spin, args=(stop, time.monotonic() + max_seconds), daemon=True)
    proc.start()
    try:
        yield proc
    finally:
        stop.set()
        proc.join(timeout=10.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=10.0)


# ----------------------------------------------------------------------------- timing
def synchronize(device: torch.device | str | None) -> None:
    """Wait for the device's queue (CUDA); nothing on the CPU."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    variants: Mapping[str, Callable[[], Any]],
    repeats: int,
    *,
    warmup: int = 1,
    device: torch.device | str | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each variant: ``repeats`` rounds, order rotated every round.

    Each variant first runs ``warmup`` untimed times (allocator, caches, lazy init).
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            start = time.perf_counter()
            variants[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def medians(times: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Median seconds of each variant."""
    return {name: statistics.median(values) for name, values in times.items()}


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log(y) against log(x): the exponent p of y ~ x^p."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sxx


def crossover(ns: Sequence[float], slow: Sequence[float], fast: Sequence[float]) -> float | None:
    """The N where ``fast`` starts to beat ``slow`` (log-log interpolation); None if never."""
    ratios = [s / f for s, f in zip(slow, fast, strict=True)]
    for i in range(1, len(ns)):
        if ratios[i - 1] < 1.0 <= ratios[i]:
            t = -math.log(ratios[i - 1]) / (math.log(ratios[i]) - math.log(ratios[i - 1]))
            return math.exp(math.log(ns[i - 1]) + t * (math.log(ns[i]) - math.log(ns[i - 1])))
    return ns[0] if ratios and ratios[0] >= 1.0 else None


# ----------------------------------------------------------------------------- memory
def _status_kib(field: str) -> int | None:
    with contextlib.suppress(OSError):
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    return None


def peak_extra_mib(fn: Callable[[], Any]) -> float:
    """Growth of this process's peak resident set during ``fn()`` in MiB (NaN if unknown).

    Resets the peak (``/proc/self/clear_refs``) first, so what was allocated before the call is
    not counted; on CUDA use ``torch.cuda.max_memory_allocated`` instead.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return math.nan
    before = _status_kib("VmRSS")
    fn()
    peak = _status_kib("VmHWM")
    if before is None or peak is None:
        return math.nan
    return max(peak - before, 0) / 1024.0


def peak_mib(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    """``fn()`` and the peak memory it added on ``device`` in MiB."""
    if device.type != "cuda":
        box: list[Any] = []
        mib = peak_extra_mib(lambda: box.append(fn()))
        return box[0], mib
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    out = fn()
    synchronize(device)
    return out, (torch.cuda.max_memory_allocated(device) - before) / 2**20


# ----------------------------------------------------------------------------- call counts
class _TorchCalls(torch.overrides.TorchFunctionMode):
    """Counts what reaches torch's Python API while active (nested calls inside a torch
    function run with the mode off and are not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def torch_calls(fn: Callable[[], Any]) -> int:
    """The torch calls one ``fn()`` makes from Python: functions, tensor methods, operators,
    indexing and attributes such as ``.shape``.

    Unlike a time it does not depend on the machine or its load: at N = 100 a step's cost
    above its floor is mostly the fixed cost of many such calls (several microseconds each), so
    the count tells whether a change removed some without the noise of a shared machine.
    """
    counter = _TorchCalls()
    with counter:
        fn()
    return counter.calls


# ----------------------------------------------------------------------------- output
def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A markdown table of ``rows`` (floats with 4 significant digits)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def add_common_arguments(parser: argparse.ArgumentParser, repeats: int = 5) -> None:
    """``--threads``, ``--repeats``, ``--busy-core``: the options every script takes."""
    parser.add_argument(
        "--threads", type=int, default=1, help="intra-op threads (0: torch's default)"
    )
    parser.add_argument("--repeats", type=int, default=repeats, help="timed rounds (medians)")
    parser.add_argument(
        "--busy-core",
        action="store_true",
        help="keep one core busy with a bounded spin loop in another process while timing",
    )


@contextlib.contextmanager
def session(args: argparse.Namespace, title: str) -> Iterator[dict[str, Any]]:
    """Set the thread count, print the header, run the body with the busy core if asked.

    The header is printed again at the end with the load average after the body.
    """
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    busy = bool(getattr(args, "busy_core", False))
    info = machine(busy)
    print(f"## {title}")
    print(header_line(info), flush=True)
    try:
        with busy_core(busy):
            yield info
    finally:
        info["load_after"] = load_average()
        print(header_line(info), flush=True)
