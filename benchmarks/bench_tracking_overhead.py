"""Overhead of tracking the information plane during training, against plain training.

Three variants of one training epoch (SGD, lr 0.09, batch 100, the paper's settings), timed side
by side in one process:

* ``plain``: the epoch alone;
* ``per-step``: the paper's protocol (Wickstrøm et al., arXiv:1909.11396), an
  :meth:`InformationPlane.on_train_batch` measurement of every training batch (N = 100);
* ``per-epoch``: the common alternative, one :meth:`InformationPlane.measure_probe` at the end of
  the epoch on a fixed probe set of 1000 training samples and on the test set, in mini-batches
  of 100.

Each variant has its own model and plane, is run once untimed (warm-up; the per-step plane also
leaves the alignment rule's 20 dense-grid warm-up steps there, so the timed epochs are the steady
state), then the variants are interleaved for ``--repeats`` rounds in a rotating order and the
median epoch time of each is reported. The overhead is ``variant / plain - 1``.

Cases:

* ``digits``: :class:`~infoplane.experiments.models.DigitsMLP` on scikit-learn's digits (1347
  training samples: 14 steps per epoch; probes: 1000 train + the 450 test samples, of which 400
  are measured in full batches). An epoch is a few milliseconds, so the ratio is harsh.
* ``paper-mlp``: the paper's MLP 784-1024-20-20-20-10 on synthetic 28x28 data (6000 training
  samples: 60 steps per epoch; probes: 1000 train + 1000 test).

Run: ``.venv/bin/python benchmarks/bench_tracking_overhead.py [--repeats 7] [--threads 1]
[--profile]``. ``--profile`` adds a cProfile of the per-epoch measurement of each case.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from infoplane import InformationPlane
from infoplane.experiments.data import DatasetSplits, load_dataset
from infoplane.experiments.models import MLP, DigitsMLP

VARIANTS = ("plain", "per-step", "per-epoch")
BATCH = 100
LR = 0.09


@dataclass
class Case:
    name: str
    description: str
    data: DatasetSplits
    build: Callable[[], nn.Module]
    probe_train: int = 1000
    probe_test: int | None = None  # None: the whole test set
    full_epoch: int | None = None  # the training-set size the case stands in for, if larger


@dataclass
class Runner:
    """One variant: its own model, optimizer, plane and shuffling generator."""

    case: Case
    variant: str
    model: nn.Module = field(init=False)
    plane: InformationPlane | None = field(init=False)
    step: int = 0
    epoch: int = 0

    def __post_init__(self) -> None:
        torch.manual_seed(0)
        self.model = self.case.build()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.gen = torch.Generator().manual_seed(0)
        self.plane = None if self.variant == "plain" else InformationPlane(self.model)
        d = self.case.data
        self.probes = [
            ("probe_train", d.x_train[: self.case.probe_train], d.y_train[: self.case.probe_train]),
            ("test", d.x_test[: self.case.probe_test], d.y_test[: self.case.probe_test]),
        ]

    def run_epoch(self) -> float:
        """Train one epoch with this variant's measurements; return the wall time in seconds."""
        d = self.case.data
        perm = torch.randperm(d.n_train, generator=self.gen)
        start = time.perf_counter()
        for first in range(0, d.n_train, BATCH):
            idx = perm[first : first + BATCH]
            x, y = d.x_train[idx], d.y_train[idx]
            self.model.train()
            self.opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(self.model(x), y).backward()
            self.opt.step()
            if self.variant == "per-step":
                self.plane.on_train_batch(x, y, step=self.step, epoch=self.epoch)
            self.step += 1
        if self.variant == "per-epoch":
            for split, x, y in self.probes:
                self.plane.measure_probe((x, y), step=self.step, split=split, epoch=self.epoch)
        elapsed = time.perf_counter() - start
        self.epoch += 1
        return elapsed


def make_cases(selected: list[str]) -> list[Case]:
    cases = []
    if "digits" in selected:
        cases.append(
            Case(
                "digits",
                "DigitsMLP 64-64-32-16-10, digits (1347 train)",
                load_dataset("digits"),
                DigitsMLP,
            )
        )
    if "paper-mlp" in selected:
        cases.append(
            Case(
                "paper-mlp",
                "MLP 784-1024-20-20-20-10, synthetic 28x28 (6000 train)",
                load_dataset(
                    "synthetic", input_shape=(1, 28, 28), n_train=6000, n_test=1000, seed=0
                ),
                MLP,
                full_epoch=60000,  # MNIST's training set
            )
        )
    return cases


def bench_case(case: Case, repeats: int) -> dict[str, list[float]]:
    runners = {v: Runner(case, v) for v in VARIANTS}
    for runner in runners.values():
        runner.run_epoch()  # warm-up, untimed
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(repeats):
        order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]  # rotate: no variant always runs first
        for v in order:
            times[v].append(runners[v].run_epoch())
    counts = {
        v: len(runners[v].plane.history) if runners[v].plane is not None else 0 for v in VARIANTS
    }
    assert counts["per-step"] > 0 and counts["per-epoch"] > 0
    return times


def profile_probe(case: Case, top: int) -> str:
    """cProfile of the per-epoch measurement alone (both probe sets), after one warm-up."""
    runner = Runner(case, "per-epoch")
    runner.run_epoch()
    prof = cProfile.Profile()
    prof.enable()
    for split, x, y in runner.probes:
        runner.plane.measure_probe((x, y), step=10**6, split=split)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def cpu_name() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed epochs per variant")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--cases", nargs="+", default=["digits", "paper-mlp"], choices=["digits", "paper-mlp"]
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the probe measurement")
    parser.add_argument("--top", type=int, default=12, help="rows of each profile")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU: {cpu_name()}, "
        f"{args.repeats} timed epochs per variant (interleaved), medians"
    )
    header = (
        "| case | plain s/epoch | per-step s/epoch | per-epoch s/epoch | per-step overhead "
        "| per-epoch overhead |\n|---|---:|---:|---:|---:|---:|"
    )
    rows = []
    notes = []
    cases = make_cases(args.cases)
    for case in cases:
        times = bench_case(case, args.repeats)
        med = {v: statistics.median(times[v]) for v in VARIANTS}
        rows.append(
            f"| {case.name}: {case.description} | {med['plain']:.4f} | {med['per-step']:.4f} | "
            f"{med['per-epoch']:.4f} | {100 * (med['per-step'] / med['plain'] - 1):+.0f} % | "
            f"{100 * (med['per-epoch'] / med['plain'] - 1):+.1f} % |"
        )
        probe_s = med["per-epoch"] - med["plain"]
        note = f"{case.name}: the per-epoch measurement costs {probe_s:.3f} s"
        if case.full_epoch:
            scale = case.full_epoch / case.data.n_train
            note += (
                f"; against an epoch of {case.full_epoch} training samples ({scale:.0f}x this "
                f"one, training time scaled linearly) it would add "
                f"{100 * probe_s / (scale * med['plain']):.1f} % (estimate)"
            )
        notes.append(note)
        spread = ", ".join(f"{v} [{min(times[v]):.4f}, {max(times[v]):.4f}]" for v in VARIANTS)
        print(f"{case.name}: min/max s/epoch: {spread}", flush=True)
    print()
    print(header)
    print("\n".join(rows))
    print()
    print("\n".join(notes))
    if args.profile:
        for case in cases:
            print(f"\ncProfile of the per-epoch measurement, {case.name}:")
            print(profile_probe(case, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
