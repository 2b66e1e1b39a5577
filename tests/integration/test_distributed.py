"""InformationPlane under torch.distributed: two CPU processes (gloo) against one process.

The test launches this file twice as a script, with the environment variables ``torchrun`` sets
(``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``). Each rank builds the same seeded
model, measures its shard of each batch and of a probe set, saves the history, and writes what it
got to a JSON file; the parent compares the ranks with each other and with the same protocol run
in one process on the full data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from infoplane import InformationPlane
from infoplane.distributed import get_rank, get_world_size, is_distributed
from infoplane.experiments.data import load_dataset
from infoplane.experiments.models import DigitsMLP
from infoplane.history import History

WORLD = 2
#: The distributed estimate must equal the single-process one to this many bits. The ranks
#: compute activations on halves of the batch, so float32 matmuls may round differently (a few
#: ulps), and the probe mean is summed in another order.
TOL_BITS = 1e-9
#: (first, stop) of the batch of each measured step; the shard sizes of each rank (even, uneven).
BATCHES = {0: (0, 100, (50, 50)), 1: (100, 200, (60, 40)), 2: (200, 300, (33, 67))}
PROBE = 400  # the first 400 test samples: 4 batches of 100, 2 per rank


class CountingWriter:
    def __init__(self) -> None:
        self.calls = 0

    def add_scalar(self, tag: str, value: float, global_step: int) -> None:
        self.calls += 1


def shard(first: int, stop: int, sizes: tuple[int, ...]) -> slice:
    """This process's part of ``[first, stop)`` (everything in a single process)."""
    if not is_distributed():
        return slice(first, stop)
    start = first + sum(sizes[: get_rank()])
    return slice(start, start + sizes[get_rank()])


def protocol(data: dict[str, torch.Tensor], out_dir: Path) -> dict[str, Any]:
    """Measure three batches (paper protocol) and a probe set; save the history on rank 0."""
    torch.manual_seed(0)
    model = DigitsMLP()
    writer = CountingWriter()
    plane = InformationPlane(model, writer=writer)
    results: dict[str, Any] = {}
    for step, (first, stop, sizes) in BATCHES.items():
        part = shard(first, stop, sizes)
        results[f"measure/{step}"] = plane.measure(
            data["x_train"][part], data["y_train"][part], step=step, epoch=0
        )
    per_rank = PROBE // get_world_size()
    part = slice(get_rank() * per_rank, (get_rank() + 1) * per_rank)
    results["probe"] = plane.measure_probe(
        (data["x_test"][part], data["y_test"][part]), step=3, split="test", epoch=0
    )
    saved = plane.save(out_dir / f"history_rank{get_rank()}.csv")
    return {
        "rank": get_rank(),
        "world": get_world_size(),
        "results": results,
        "saved": None if saved is None else str(saved),
        "writer_calls": writer.calls,
        "state": plane.state_dict(),
        "records": len(plane.history),
    }


def worker(data_file: Path, out_dir: Path) -> None:
    """Entry point of one rank (``torchrun``-style environment)."""
    torch.set_num_threads(1)
    data = torch.load(data_file)
    dist.init_process_group(backend="gloo", timeout=timedelta(seconds=60))
    try:
        report = protocol(data, out_dir)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    path = out_dir / f"rank{report['rank']}.json"
    path.write_text(json.dumps(report))


# ------------------------------------------------------------------------------------ the test
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(data_file: Path, out_dir: Path, timeout: float = 120.0) -> list[dict[str, Any]]:
    """Run ``WORLD`` ranks of this file; return their reports. Kills them all on a timeout."""
    port = free_port()
    procs = []
    for rank in range(WORLD):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(WORLD),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--data", str(data_file), "--out", str(out_dir)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    deadline = time.monotonic() + timeout
    logs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            logs.append(out)
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.communicate()
        raise AssertionError(f"distributed ranks did not finish within {timeout} s") from None
    codes = [p.returncode for p in procs]
    if any(codes):
        details = "\n".join(f"--- rank {r} (exit {c}):\n{log[-3000:]}" for r, (c, log) in
                            enumerate(zip(codes, logs, strict=True)))  # fmt: skip
        raise AssertionError(f"a rank failed:\n{details}")
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(WORLD)]


def assert_close_results(got: dict, want: dict, tol: float) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert list(got[key]) == list(want[key]), key  # same layers, same order
        for layer, values in want[key].items():
            for q, value in values.items():
                if math.isnan(value):  # the fixed-width control before its reference step
                    assert math.isnan(got[key][layer][q]), (key, layer, q)
                    continue
                assert math.isfinite(got[key][layer][q])
                assert abs(got[key][layer][q] - value) <= tol * max(1.0, abs(value)), (
                    key, layer, q, got[key][layer][q], value,
                )  # fmt: skip


@pytest.mark.slow
def test_two_ranks_match_one_process(tmp_path: Path) -> None:
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with the gloo backend is not available")
    digits = load_dataset("digits")
    data = {
        "x_train": digits.x_train[:300],
        "y_train": digits.y_train[:300],
        "x_test": digits.x_test[:PROBE],
        "y_test": digits.y_test[:PROBE],
    }
    data_file = tmp_path / "data.pt"  # the ranks need no scikit-learn import
    torch.save(data, data_file)
    single_dir = tmp_path / "single"
    multi_dir = tmp_path / "multi"
    single_dir.mkdir()
    multi_dir.mkdir()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = protocol(data, single_dir)
    finally:
        torch.set_num_threads(threads)
    assert single["world"] == 1 and single["saved"] is not None

    reports = launch(data_file, multi_dir)
    assert [r["rank"] for r in reports] == [0, 1]
    assert all(r["world"] == WORLD for r in reports)
    # (a) every rank returns the same numbers and holds the same widths and records
    assert json.dumps(reports[0]["results"]) == json.dumps(reports[1]["results"])  # NaN too
    assert reports[0]["state"] == reports[1]["state"]
    assert reports[0]["records"] == reports[1]["records"] == single["records"]
    # (b) ... which are those of one process on the whole batch / the whole probe set
    assert_close_results(reports[0]["results"], single["results"], TOL_BITS)
    # (c) only rank 0 wrote files (history and its meta) and logged scalars
    assert reports[0]["saved"] == str(multi_dir / "history_rank0.csv")
    assert reports[1]["saved"] is None
    assert sorted(p.name for p in multi_dir.iterdir()) == [
        "history_rank0.csv",
        "history_rank0.meta.json",
        "rank0.json",
        "rank1.json",
    ]
    assert reports[0]["writer_calls"] == single["writer_calls"] > 0
    assert reports[1]["writer_calls"] == 0
    # the file holds the whole-batch estimates, with the full N of each step
    saved = History.load(multi_dir / "history_rank0.csv")
    reference = History.load(single_dir / "history_rank0.csv")
    assert len(saved) == len(reference)
    for a, b in zip(saved.records, reference.records, strict=True):
        assert (a["split"], a["step"], a["layer"], a["n"]) == (
            b["split"], b["step"], b["layer"], b["n"],
        )  # fmt: skip
        for q in ("i_xt", "i_ty", "h_t", "h_x", "h_y", "sigma"):
            assert abs(a[q] - b[q]) <= TOL_BITS * max(1.0, abs(b[q]))
    assert {r["n"] for r in saved if r["split"] == "train"} == {100}
    assert {r["n"] for r in saved if r["split"] == "test"} == {PROBE}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one rank of test_distributed")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    worker(args.data, args.out)
