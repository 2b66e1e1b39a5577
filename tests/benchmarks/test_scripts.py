"""Every benchmark script runs end to end on tiny sizes and prints what it promises."""

from __future__ import annotations

import math
import re

import pytest
import torch

from benchmarks import bench_scaling, bench_step, bench_tracking_overhead, gpu
from infoplane.experiments.data import load_dataset

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_thread")]


def _value(text: str, label: str) -> float:
    match = re.search(re.escape(label) + r"(?: \([^)]*\))?\s*\|?\s*([-+]?[0-9][0-9.e+-]*)", text)
    assert match, f"{label!r} not in the output"
    return float(match.group(1))


def test_gpu_script_runs_on_cpu_small(capsys):
    assert gpu.main(["--device", "cpu", "--small", "--repeats", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "threads 1" in out and "load average" in out
    for label in ("measure ms", "eval forward ms", "float32 products ms", "training step ms"):
        assert _value(out, label) > 0.0
    assert 0.0 < _value(out, "max abs(S32 - S64) bits") < 1e-3
    assert _value(out, "measure / training step") > 0.0
    header = [
        c.strip()
        for c in next(
            ln for ln in out.splitlines() if ln.startswith("| N |") and "rel err %" in ln
        ).split("|")
    ]
    rows = [line.split("|") for line in out.splitlines() if re.match(r"\| (200|400) \|", line)]
    assert len(rows) == 2
    rel_err = [float(row[header.index("rel err %")]) for row in rows]
    assert all(0.0 <= e < 1.0 for e in rel_err)  # percent
    for column in ("approx / its products", "estimator / its products"):
        assert all(float(row[header.index(column)]) > 0.0 for row in rows)
    validation = [float(row[header.index("validation / its products")]) for row in rows]
    assert all(v > 0.0 for v in validation)


def test_bench_step_runs_and_the_authors_agree_in_float64(capsys):
    args = ["--models", "mlp", "--n", "30", "--repeats", "1", "--controls", "null", "fixed"]
    assert bench_step.main(args) == 0
    out = capsys.readouterr().out
    assert _value(out, "authors f64 vs measure, bits") <= 1e-10
    for label in (
        "end to end: measure / (forward + bare)",
        "end to end: (forward + authors f32) / measure",
        "maths only: authors f64 / maths",
        "maths only: maths / (bare + upcast)",
        "maths: width search",
    ):
        assert _value(out, label) > 0.0
    # a difference of two timings: printed, of either sign in a one-round run of N = 30
    assert math.isfinite(_value(out, "controls' cost / their bare eigenvalues"))
    header = next(ln for ln in out.splitlines() if ln.startswith("| model |"))
    at = [c.strip() for c in header.split("|")].index("torch calls")
    calls: dict[str, str] = {}  # the first table's rows (the controls' rows have no counts)
    for row in (ln.split("|") for ln in out.splitlines()):
        if len(row) > at and row[1].strip() == "mlp":
            calls.setdefault(row[2].strip(), row[at].strip())
    assert 0 < int(calls["maths"]) < int(calls["measure"])  # measure also runs the forward
    assert int(calls["bare"]) > 0 and calls["authors f32"] == ""  # not counted: seconds each


def test_bare_inputs_have_the_sizes_of_the_step():
    model, x, y = bench_step.make_case("mlp", 30, seed=0)
    plane = bench_step.make_plane(model, bench_step.median_distance(x), ())
    tensors = bench_step.captured(plane, x)
    inputs = bench_step.bare_inputs(x, y, tensors)
    layers = len(tensors)
    assert layers == len(plane.measured_names)
    assert inputs["batch"].shape == (1 + 2 * layers, 30, 30)
    assert inputs["blocks"].shape == (layers, 10, 3, 3)
    traces = torch.diagonal(inputs["batch"], dim1=-2, dim2=-1).sum(-1)
    torch.testing.assert_close(traces, torch.ones_like(traces), rtol=0, atol=1e-12)


def test_bench_scaling_runs_and_fits_exponents(capsys):
    args = ["--n-sizes", "40", "80", "--d-sizes", "500", "1000", "--large", "300", "--repeats", "1"]
    args += ["--gram-n", "300", "--gram-d", "20"]  # 300 > 256: the Gram finished in blocks
    assert bench_scaling.main(args) == 0
    out = capsys.readouterr().out
    row = re.search(r"^\| 300 \| 20 \|(.*)\|$", out, flags=re.M)
    assert row is not None and len(row.group(1).split("|")) == 8  # times and ratios
    assert re.search(r"time ~ N\^p \(40-80\): exact p = -?[0-9.]+", out)
    assert re.search(r"time ~ D\^p \(500-1000, N = 100\): exact p = -?[0-9.]+", out)
    assert "randomized faster than exact above N ~" in out


def test_tracking_variants_measure_what_they_claim():
    data = load_dataset("synthetic", n_train=1000, n_test=100, seed=0)
    every = bench_tracking_overhead.Variant("every 10th", data, probe_size=200)
    for _ in range(3):
        every.train(7)  # at most one epoch (10 batches of 100) per call: steps 0..20
    assert every.step == 21
    assert every.measured == 3  # steps 0, 10, 20
    assert len(every.plane.history) == 3 * len(every.plane.measured_names)
    assert every.in_tracker > 0.0
    probe = bench_tracking_overhead.Variant("probe 1000", data, probe_size=200)
    seconds, in_tracker = probe.epoch()
    assert 0.0 < in_tracker < seconds and probe.measured == 1
    plain = bench_tracking_overhead.Variant("plain", data, probe_size=200)
    assert plain.plane is None and plain.epoch()[1] == 0.0 and plain.epoch()[0] > 0.0


def test_tracking_script_runs_on_a_small_dataset(capsys):
    args = ["--dataset", "synthetic", "--repeats", "1", "--warmup-batches", "2"]
    assert bench_tracking_overhead.main(args) == 0
    out = capsys.readouterr().out
    assert _value(out, "| plain ") > 0.0
    for name in ("every 10th", "probe 1000"):
        assert f"| {name} |" in out
    assert "| tracker s/epoch | tracker % |" in out
