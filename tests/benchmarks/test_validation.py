"""The validation harness in its quick mode: controlled verdicts keep a 5% false-positive rate
on null scenarios, compression is detected on the collapse scenario, and the check of the rates
flags a verdict that is not calibrated."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import binomtest

from benchmarks import scenarios as sc
from benchmarks import validation as val
from infoplane.analysis import findings as fd

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_thread")]

#: The loose lower bound of the power to detect compression with 3 runs on ``collapse``.
POWER_BOUND = 0.5


@pytest.fixture(scope="module")
def quick(single_thread):
    return val.run_validation(val.QUICK)


def _show(rows: pd.DataFrame) -> str:
    columns = ["scenario", "finding", "variant", "runs", "fired", "decided", "bound"]
    return rows[columns].to_string(index=False)


def test_controlled_verdicts_keep_their_false_positive_rate(quick):
    rates = quick.rates
    false = rates[rates["truth"].eq(False) & rates["variant"].isin(val.CONTROLLED)]
    assert (false["decided"] > 0).any(), "no controlled verdict was decided on a null scenario"
    flagged = val.uncalibrated(rates)
    assert flagged.empty, "fired above the 99.9% binomial bound of a 5% rate:\n" + _show(flagged)


def test_compression_is_detected_on_the_collapse_scenario(quick):
    """Under the estimate and the fixed-width control (the null floor's margin does not fall
    there: the floor falls faster than the estimate; docs/VALIDATION.md)."""
    rates = quick.rates
    sel = rates[
        (rates["scenario"] == "collapse")
        & (rates["finding"] == "compression")
        & rates["variant"].isin(["adaptive", "fixed"])
        & (rates["runs"] == 3)
    ]
    assert len(sel) == 2 and (sel["decided"] > 0).all()
    for row in sel.itertuples():
        assert row.rate >= POWER_BOUND, f"power of compression / {row.variant}: {row.rate:.2f}"


def _coin(rate: float, seed: int = 0):
    """A check whose one verdict, compression / null, fires with probability ``rate``."""
    gen = np.random.default_rng(seed)

    def check(frame):
        fired = fd.OBSERVED if gen.random() < rate else fd.NOT_OBSERVED
        verdicts = {"adaptive": fd.NOT_OBSERVED, "fixed": fd.NOT_OBSERVED, "null": fired}
        return [fd.Finding("compression", "Compression", "train", verdicts)]

    return check


@pytest.mark.parametrize(("rate", "flagged"), [(0.5, True), (0.05, False)])
def test_the_check_flags_an_uncalibrated_verdict(quick, rate, flagged):
    static = next(m for m in quick.measured if m.scenario.kind == "static")
    records = val.verdict_records(static, _coin(rate))
    rates = val.verdict_rates(records, [static.scenario])
    hits = val.uncalibrated(rates)
    coin = (hits["finding"] == "compression") & (hits["variant"] == "null")
    assert bool(coin.any()) is flagged, _show(hits)


def test_the_page_states_its_command_and_every_section(quick):
    info = {**val.machine(), "load_after": 0.0}
    page = val.render(quick, "python -m benchmarks.validation --quick", info)
    assert "`python -m benchmarks.validation --quick`" in page
    for heading in ("false-positive rate", "the power", "per-step test", "Correlated", "Bias"):
        assert heading in page
    assert "| scenario | verdict | claim | 1 run | 3 runs | above 5% |" in page


@pytest.mark.parametrize(("k", "n"), [(0, 20), (3, 20), (20, 20), (31, 600)])
def test_clopper_pearson_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert val.clopper_pearson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_binomial_bound_is_the_999_quantile():
    from scipy.stats import binom

    bound = val.binomial_bound(45)
    assert binom.cdf(bound, 45, 0.05) >= 0.999 > binom.cdf(bound - 1, 45, 0.05)


def _steps(scenario: sc.Scenario, steps: int = 10, n: int = 30) -> list[tuple[torch.Tensor, ...]]:
    return list(scenario.batches(run=0, steps=steps, n=n))


def _weights(scenario: sc.Scenario) -> torch.Tensor:
    """The W of run 0: the first draw of the run's generator."""
    gen = torch.Generator().manual_seed(scenario.seed(0))
    return torch.randn(64, scenario.dim, generator=gen) * (sc.GAIN / 8.0)


@pytest.mark.parametrize(
    ("kind", "end", "scale"),
    [
        ("static", 1.0, lambda s: 1.0),
        ("rescale", 0.2, lambda s: 0.2 ** (s / 29)),
        ("rescale", 5.0, lambda s: 5.0 ** (s / 29)),
        ("drift", 0.2, lambda s: 0.2 ** (min(s, sc.DRIFT_STEPS - 1) / (sc.DRIFT_STEPS - 1))),
    ],
)
def test_scenarios_are_a_fixed_map_times_their_scale(kind, end, scale):
    scenario = next(s for s in sc.null_scenarios((10,)) if s.kind == kind and s.end == end)
    w = _weights(scenario)
    for step, (x, _, t) in enumerate(_steps(scenario, steps=30)):
        torch.testing.assert_close(t, scale(step) * torch.tanh(x @ w))


def test_collapse_ends_at_the_class_means():
    assert [sc.collapse_weight(s, 10) for s in (0, 5, 9)] == [0.0, 0.0, 1.0]
    scenario = sc.collapse_scenario()
    images, labels = sc.digits()
    t_all = torch.tanh(images @ _weights(scenario))
    means = torch.stack([t_all[labels == k].mean(0) for k in range(10)])
    _, y, t = _steps(scenario)[-1]
    noise = t - means[y]  # only the noise is left of x at the last step
    assert noise.std().item() == pytest.approx(sc.COLLAPSE_NOISE, rel=0.1)


def test_gaussian_truth_is_the_closed_form():
    g = sc.gaussian_scenario(0.6, 4)
    assert g.true_i_xt == pytest.approx(-2.0 * math.log2(1 - 0.36))
    x, _, t = (torch.cat(v) for v in zip(*_steps(g, steps=200, n=100), strict=True))
    corr = ((x - x.mean(0)) * (t - t.mean(0))).mean(0) / (x.std(0) * t.std(0))
    torch.testing.assert_close(corr, torch.full_like(corr, 0.6), atol=0.02, rtol=0)


def test_main_writes_the_page(tmp_path):
    out = tmp_path / "VALIDATION.md"
    args = ["--quick", "--replicates", "1", "--steps", "6", "--out", str(out)]
    assert val.main(args) == 0
    text = out.read_text(encoding="utf-8")
    assert (
        text.startswith("# Validation") and "Generated by `python -m benchmarks.validation" in text
    )
