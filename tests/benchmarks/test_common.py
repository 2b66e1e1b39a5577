"""The shared benchmark helpers: busy core, interleaved timing, fits, memory, header."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks import common


def test_busy_core_runs_while_the_body_runs_and_is_joined_after():
    with common.busy_core(True, max_seconds=60.0) as proc:
        assert proc.is_alive()
    assert not proc.is_alive()
    assert proc.exitcode == 0


def test_busy_core_is_joined_when_the_body_raises():
    with pytest.raises(RuntimeError), common.busy_core(True, max_seconds=60.0) as proc:
        raise RuntimeError("boom")
    assert not proc.is_alive()


def test_busy_core_disabled_starts_nothing():
    with common.busy_core(False) as proc:
        assert proc is None


def test_busy_core_stops_at_its_deadline_without_a_stop():
    stop = torch.multiprocessing.get_context("spawn").Event()
    common._spin(stop, deadline=0.0)  # returns at once: the deadline has passed
    assert not stop.is_set()


def test_interleaved_rotates_the_order_and_counts_every_call():
    calls = []
    variants = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = common.interleaved(variants, repeats=3, warmup=1)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(t >= 0.0 for v in times.values() for t in v)
    assert common.medians({"a": [3.0, 1.0, 2.0]}) == {"a": 2.0}


@pytest.mark.parametrize("p", [0.5, 1.0, 2.5, 3.0])
def test_fit_exponent_recovers_a_power_law(p):
    xs = [50, 100, 400, 1600]
    assert common.fit_exponent(xs, [7.0 * x**p for x in xs]) == pytest.approx(p, rel=1e-12)


def test_crossover_of_two_power_laws_is_where_they_meet():
    ns = [10, 20, 40, 80]
    slow = [n**3 for n in ns]  # exact: N^3
    fast = [1000.0 * n for n in ns]  # randomized: 1000 N, equal at N = sqrt(1000)
    assert common.crossover(ns, slow, fast) == pytest.approx(math.sqrt(1000.0), rel=1e-12)
    assert common.crossover(ns, fast, [1e9] * 4) is None
    assert common.crossover(ns, [1e9] * 4, fast) == 10


def test_peak_extra_memory_sees_a_64_mib_allocation():
    mib = common.peak_extra_mib(lambda: np.ones(64 * 2**20 // 8).sum())
    if math.isnan(mib):
        pytest.skip("no /proc/self/clear_refs on this system")
    assert 60.0 <= mib <= 200.0


def test_header_names_threads_load_torch_cpu_and_python():
    info = common.machine(busy=True)
    info["load_after"] = 1.5
    line = common.header_line(info)
    assert f"threads {torch.get_num_threads()}" in line
    assert f"torch {torch.__version__}" in line
    assert "-> 1.50" in line and "busy core yes" in line and info["cpu"] in line


def test_table_is_markdown_with_missing_cells_empty():
    text = common.table([{"a": 1.23456, "b": "x"}, {"a": math.nan}], ["a", "b"])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1.235 | x |", "| - |  |"]


def test_torch_calls_counts_what_reaches_torch_from_python_once():
    """Functions, methods and attributes count once each; what a torch function calls inside
    (``softmax`` calls the tensor method) does not; plain Python counts nothing."""
    t = torch.ones(3)
    assert common.torch_calls(lambda: torch.ones(3).add(1).sum()) == 3
    assert common.torch_calls(lambda: torch.nn.functional.softmax(t, 0)) == 1
    assert common.torch_calls(lambda: t.shape) == 1
    assert common.torch_calls(lambda: sum(range(10))) == 0
