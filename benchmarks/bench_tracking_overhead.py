"""What tracking adds to a real training epoch: the paper's MLP on 60,000 Fashion-MNIST images.

Three variants of one epoch (SGD, lr 0.09, batch 100: the paper's settings), each with its own
model, optimizer and tracker, timed in rotating order in one process (medians of ``--repeats``):

* ``plain``: training only;
* ``every 10th``: ``InformationPlane(model, every=10).on_train_batch`` after each optimizer step
  (the paper's protocol, measured on every 10th training batch, N = 100);
* ``probe 1000``: after the epoch, ``measure_probe`` on a fixed probe set of 1000 training
  images in mini-batches of 100.

Two figures per variant, both against the median plain epoch of the same run:

* ``overhead %`` = variant / plain - 1, the whole epoch (its side effects included), whose
  resolution is the epoch's own spread (here 3.0-4.0 s from epoch to epoch);
* ``tracker %`` = the time spent inside the tracker's calls (``on_train_batch``,
  ``measure_probe``) / plain: what tracking costs, without that spread.

Each variant first runs ``--warmup-batches`` untimed batches (210: the every-10th tracker's
widths pass their 20-step warm-up grid).

Needs the data: ``apt-get install dataset-fashion-mnist`` (read from
/usr/share/datasets/fashion-mnist/ by ``infoplane.experiments.data.load_dataset``).
Run: ``python -m benchmarks.bench_tracking_overhead [--busy-core] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from typing import Any

import torch
from torch import nn

from benchmarks.common import add_common_arguments, session, table
from infoplane import InformationPlane
from infoplane.experiments.data import load_dataset
from infoplane.experiments.models import MLP

VARIANTS = ("plain", "every 10th", "probe 1000")
BATCH = 100
LR = 0.09


class Variant:
    """One variant: its own model, optimizer, tracker and shuffling generator."""

    def __init__(
        self, name: str, data: Any, probe_size: int, seed: int = 0, options: Any = None
    ) -> None:
        torch.manual_seed(seed)
        self.name = name
        self.data = data
        self.model = MLP(in_features=data.x_train[0].numel())
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.gen = torch.Generator().manual_seed(seed)
        every = 10 if name == "every 10th" else 1
        options = options or {}
        self.plane = (
            None if name == "plain" else InformationPlane(self.model, every=every, **options)
        )
        self.probe = (data.x_train[:probe_size], data.y_train[:probe_size])
        self.step = 0
        self.measured = 0
        self.in_tracker = 0.0  # seconds inside the tracker's calls since the last epoch()

    def train(self, batches: int | None = None) -> None:
        """Train ``batches`` batches (default: one epoch), with this variant's per-step calls."""
        n = self.data.x_train.shape[0]
        perm = torch.randperm(n, generator=self.gen)
        stop = n if batches is None else min(n, batches * BATCH)
        for first in range(0, stop, BATCH):
            idx = perm[first : first + BATCH]
            x, y = self.data.x_train[idx], self.data.y_train[idx]
            self.model.train()
            self.opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(self.model(x), y).backward()
            self.opt.step()
            if self.name == "every 10th":
                called = time.perf_counter()
                self.measured += self.plane.on_train_batch(x, y, step=self.step) is not None
                self.in_tracker += time.perf_counter() - called
            self.step += 1

    def epoch(self) -> tuple[float, float]:
        """One timed epoch (and the probe, for the probe variant): ``(seconds, seconds inside
        the tracker's calls)``."""
        self.in_tracker = 0.0
        start = time.perf_counter()
        self.train()
        if self.name == "probe 1000":
            called = time.perf_counter()
            self.plane.measure_probe(self.probe, step=self.step, split="probe")
            self.in_tracker += time.perf_counter() - called
            self.measured += 1
        return time.perf_counter() - start, self.in_tracker


def run(
    data: Any, repeats: int, warmup_batches: int, probe_size: int, options: Any = None
) -> dict[str, list[tuple[float, float]]]:
    """``(seconds, seconds in the tracker)`` per epoch of each variant, rotating the order every
    round."""
    variants = [Variant(name, data, probe_size, options=options) for name in VARIANTS]
    for v in variants:
        v.train(warmup_batches)
    times: dict[str, list[tuple[float, float]]] = {v.name: [] for v in variants}
    for r in range(repeats):
        for v in variants[r % 3 :] + variants[: r % 3]:
            times[v.name].append(v.epoch())
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, repeats=3)
    parser.add_argument("--dataset", default="fashion-mnist", help="a load_dataset name")
    parser.add_argument("--train-size", type=int, default=None, help="first N training images")
    parser.add_argument("--probe-size", type=int, default=1000)
    parser.add_argument(
        "--controls",
        nargs="*",
        default=None,
        help="the tracker's controls (default: the tracker's default; none given: no controls)",
    )
    parser.add_argument(
        "--warmup-batches", type=int, default=210, help="untimed (past the 20-step warm-up grid)"
    )
    args = parser.parse_args(argv)
    options = {"n_train": args.train_size or 1000} if args.dataset == "synthetic" else {}
    data = load_dataset(args.dataset, download=False, **options)
    if args.train_size:
        keep = slice(0, args.train_size)
        data = dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])
    title = f"bench_tracking_overhead: paper MLP, {args.dataset}, {len(data.x_train)} per epoch"
    with session(args, title):
        options = None if args.controls is None else {"controls": tuple(args.controls)}
        times = run(data, args.repeats, args.warmup_batches, args.probe_size, options)
        plain = statistics.median(t for t, _ in times["plain"])
        rows = []
        for name, runs in times.items():
            epochs, tracker = [t for t, _ in runs], statistics.median(c for _, c in runs)
            rows.append(
                {
                    "variant": name,
                    "median s/epoch": statistics.median(epochs),
                    "min s": min(epochs),
                    "max s": max(epochs),
                    "overhead %": 100 * (statistics.median(epochs) / plain - 1.0),
                    "tracker s/epoch": tracker,
                    "tracker %": 100 * tracker / plain,
                }
            )
        columns = ["variant", "median s/epoch", "min s", "max s", "overhead %"]
        print(table(rows, [*columns, "tracker s/epoch", "tracker %"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
