"""The findings of infoplane.analysis on synthetic histories whose answers are known by
construction: a layer whose I(X;T) rises then falls by a set amount, a null floor equal to the
estimate, a fixed-width control that stays flat, one run against several; and the 95% intervals
against closed forms of Student's t."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from infoplane.analysis import (
    INCONCLUSIVE,
    INCONCLUSIVE_CROSS_FIT,
    NO_NULL_DISTRIBUTION,
    NO_STOP,
    NOT_APPLICABLE,
    NOT_CHECKED,
    NOT_OBSERVED,
    NOT_RECORDED,
    OBSERVED,
    SATURATED,
    RunTables,
    aggregate,
    check_compression,
    check_dpi,
    check_early_stopping,
    check_estimator,
    check_findings,
    check_fitting,
    check_train_vs_test,
    early_stopping,
    findings_text,
    history_frame,
    sentences,
)
from infoplane.analysis import findings as findings_module
from infoplane.analysis.summaries import cross_fitted_falls, floor_table, trend_table
from infoplane.analysis.tables import (
    fisher_combined,
    hommel,
    measured,
    t_quantile,
    t_test,
)
from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.history import History
from infoplane.schema import FIELDS

LAYERS = ("l1", "l2", "out")
STEPS = np.arange(0, 61)
Curve = Callable[[int, int, np.ndarray], np.ndarray]  # (run, layer index, steps) -> values


def rise_fall(peak_step: int = 30, low: float = 2.0, peak: float = 5.0, drop: float = 1.0) -> Curve:
    """I(X;T): linear from ``low`` to ``peak`` at ``peak_step``, then down by ``drop`` bits."""

    def curve(run: int, li: int, s: np.ndarray) -> np.ndarray:
        up = low + (peak - low) * s / peak_step
        down = peak - drop * (s - peak_step) / (s.max() - peak_step)
        return np.where(s <= peak_step, up, down) - 0.5 * li

    return curve


def rising(start: float = 0.5, end: float = 3.0) -> Curve:
    def curve(run: int, li: int, s: np.ndarray) -> np.ndarray:
        return start + (end - start) * s / s.max() - 0.1 * li

    return curve


def synthetic(
    *,
    runs: int = 3,
    xt: Curve | None = None,
    ty: Curve | None = None,
    extra: dict[str, Curve] | None = None,
    splits: tuple[str, ...] = ("train",),
    steps: np.ndarray = STEPS,
    layers: tuple[str, ...] = LAYERS,
) -> pd.DataFrame:
    """A history DataFrame with the columns of FIELDS; ``extra`` fills controls or SEs."""
    xt, ty = xt or rise_fall(), ty or rising()
    parts = []
    for split in splits:
        for run in range(runs):
            for li, name in enumerate(layers):
                cols = {
                    "run": run,
                    "split": split,
                    "epoch": steps // 10,
                    "step": steps,
                    "layer": name,
                    "layer_index": li,
                    "i_xt": xt(run, li, steps),
                    "i_ty": ty(run, li, steps),
                    "h_x": 6.5,
                    "h_y": 3.32,
                    "sigma": 1.0 + li,
                    "n": 100,
                    "status": "ok",
                }
                cols["h_t"] = cols["i_xt"] + 0.5
                for column, curve in (extra or {}).items():
                    cols[column] = curve(run, li, steps)
                parts.append(pd.DataFrame(cols))
    return history_frame(pd.concat(parts, ignore_index=True))


def metrics(losses: list[float], *, step_of_epoch: Callable[[int], int] = lambda e: 10 * e):
    rows = [
        (run, "test", e, step_of_epoch(e), loss, 0.5)
        for run in range(2)
        for e, loss in enumerate(losses)
    ]
    return pd.DataFrame(rows, columns=["run", "split", "epoch", "step", "loss", "accuracy"])


def constant(value: float) -> Curve:
    return lambda run, li, s: np.full(s.shape, value - 0.5 * li)


def shifted(curve: Curve, by: float) -> Curve:
    return lambda run, li, s: curve(run, li, s) + by


# ----------------------------------------------------------------------------- intervals
def test_t_quantile_matches_closed_forms():
    """df = 1: tan(pi (p - 1/2)); df = 2: (2p - 1) / sqrt(2 p (1 - p)), p = 0.975."""
    p = 0.975
    assert t_quantile(1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-12)
    assert t_quantile(2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-12)
    assert np.isnan(t_quantile(0))


def test_aggregate_ci_is_the_t_interval_of_the_mean_over_runs():
    offsets = {0: -0.1, 1: 0.0, 2: 0.3}
    frame = synthetic(ty=lambda run, li, s: 1.0 + offsets[run] + 0 * s)
    agg = aggregate(frame, split="train")
    values = np.array(list(offsets.values())) + 1.0
    t2 = (2 * 0.975 - 1) / math.sqrt(2 * 0.975 * 0.025)
    expected = t2 * np.std(values, ddof=1) / math.sqrt(3)
    assert np.allclose(agg["i_ty_mean"], values.mean())
    assert np.allclose(agg["i_ty_ci"], expected, rtol=1e-12)
    assert np.allclose(agg["i_ty_std"], np.std(values, ddof=1), rtol=1e-12)


def test_single_run_ci_comes_from_the_probe_standard_error():
    se = 0.05
    frame = synthetic(runs=1, extra={"i_ty_se": lambda run, li, s: np.full(s.shape, se)})
    agg = aggregate(frame, split="train")
    assert np.allclose(agg["i_ty_ci"], 1.959963984540054 * se)
    assert agg["i_xt_ci"].isna().all()  # no SE recorded for I(X;T): no interval


# ----------------------------------------------------------------------------- tests over runs
def test_t_test_matches_closed_forms():
    """Student's t with 1 df is Cauchy: P(T > t) = 1/2 - atan(t)/pi; with 2 df, 1/2 - t / (2
    sqrt(2 + t^2)). Values 1, 2 (t = 3) and 1, 2, 6 (t = 3 / sqrt(7/3))."""
    two = t_test([1.0, 2.0])
    assert two["mean"] == 1.5 and two["sd"] == pytest.approx(math.sqrt(0.5))
    assert two["p"] == pytest.approx(0.5 - math.atan(3.0) / math.pi, rel=1e-12)
    t = 3.0 / math.sqrt(7.0 / 3.0)
    three = t_test([1.0, 2.0, 6.0])
    assert three["p"] == pytest.approx(0.5 - t / (2 * math.sqrt(2 + t * t)), rel=1e-12)
    assert three["ci"] == pytest.approx(t_quantile(2) * math.sqrt(7.0) / math.sqrt(3.0))
    both = t_test([1.0, 2.0, 6.0], alternative="two-sided")["p"]
    assert both == pytest.approx(2 * three["p"], rel=1e-12)
    assert t_test([0.3, 0.3, 0.3])["p"] == 0.0 and t_test([-0.3, -0.3])["p"] == 1.0
    assert np.isnan(t_test([1.0])["p"]) and t_test([1.0])["n"] == 1


def simes_closed_test(p: np.ndarray) -> np.ndarray:
    """Hommel's adjusted p-values by brute force: the largest Simes p-value, min_j |S| p_(j) / j,
    over every subset S holding the hypothesis."""
    n = len(p)
    out = np.zeros(n)
    for mask in range(1, 2**n):
        subset = [i for i in range(n) if mask >> i & 1]
        q = np.sort(p[subset])
        simes = min(1.0, float(np.min(len(q) * q / np.arange(1, len(q) + 1))))
        for i in subset:
            out[i] = max(out[i], simes)
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_hommel_is_the_closed_test_of_simes(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        p = rng.uniform(0, 0.2, n) if rng.random() < 0.5 else rng.uniform(0, 1, n)
        assert hommel(p) == pytest.approx(simes_closed_test(p), abs=1e-12)
    assert hommel([0.01, np.nan])[1] != hommel([0.01, np.nan])[1]  # NaN stays NaN
    assert hommel([0.01, np.nan])[0] == pytest.approx(0.01)


def layers_history(values: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """A history of ``values[layer, run, step]`` as I(X;T) and I(T;Y) (each layer a replicate)."""
    n_layers, n_runs, n_steps = values.shape
    layer, run, step = np.meshgrid(
        np.arange(n_layers), np.arange(n_runs), np.arange(n_steps), indexing="ij"
    )
    cols = {
        "run": run.ravel(),
        "split": "train",
        "epoch": 0,
        "step": step.ravel(),
        "layer": np.char.add("r", layer.ravel().astype(str)),
        "layer_index": layer.ravel(),
        "i_xt": values.ravel(),
        "i_ty": values.ravel(),
        "h_t": 4.0,
        "n": 100,
        "status": "ok",
    }
    cols.update({k: v.ravel() for k, v in (extra or {}).items()})
    return history_frame(pd.DataFrame(cols))


def test_pure_noise_p_values_are_not_informative_in_95_percent_of_replicates():
    """200 replicates of three runs whose permutation p-values are uniform on {1, ..., B+1}/(B+1)
    (independence, B = 49): Fisher's combination calls a layer informative in at most 5%."""
    rng = np.random.default_rng(0)
    b, shape = 49, (200, 3, 2)
    p = (1 + rng.integers(0, b + 1, shape)) / (b + 1)
    frame = layers_history(
        rng.normal(2.0, 0.01, shape),
        {"i_ty_p": p, "i_ty_null": np.full(shape, 2.0), "i_xt_null": np.full(shape, 2.0)},
    )
    floor = floor_table(measured(frame, "train"), "i_ty")
    assert len(floor) == 200 and (floor["n_runs"] == 3).all()
    assert floor["informative"].mean() <= 0.05
    # the finding reads the output layer: the last one
    verdict = check_fitting(RunTables(frame)).verdicts["null"]
    assert verdict == (OBSERVED if floor["informative"].iloc[-1] else NOT_OBSERVED)


def test_stationary_noise_three_runs_fires_in_at_most_5_percent():
    """200 replicates of three runs of a stationary AR(1) series (no rise, no fall). The
    cross-fitted fall claims a fall of at least the threshold: it fires in at most 5%, and with
    the threshold at 0 (a bare fall > 0) in at most 5% too. The rise compares fixed windows,
    an exact t-test of level 5%: its count stays within Binomial(200, 0.05) (99.9% quantile)."""
    from scipy.stats import binom

    rng = np.random.default_rng(1)
    e = rng.normal(size=(200, 3, 40))
    for s in range(1, 40):
        e[:, :, s] = 0.8 * e[:, :, s - 1] + 0.6 * e[:, :, s]
    sel = measured(layers_history(3.0 + 0.3 * e), "train")
    bare = trend_table(sel, "i_xt", window=1, threshold=0.0)
    assert (bare["p_fall"] < 0.05).mean() <= 0.05
    default = trend_table(sel, "i_xt", window=1)  # the effect size is in the null hypothesis
    assert (default["p_fall"] < 0.05).mean() <= 0.05
    assert (default["p_fall"] < 0.05).sum() <= (bare["p_fall"] < 0.05).sum()
    assert not default["compressed"].any()  # Hommel over the 200 layers
    assert default["rose"].sum() <= binom.ppf(0.999, 200, 0.05)


def collapse(rng: np.random.Generator, shape: tuple[int, int, int], noise: float) -> np.ndarray:
    """Flat at 3 bits over the first half, then a linear fall by 20% to the last step."""
    steps = np.arange(shape[2])
    ramp = np.clip((steps - shape[2] // 2) / (shape[2] - 1 - shape[2] // 2), 0.0, 1.0)
    return 3.0 * (1.0 - 0.2 * ramp) + rng.normal(0.0, noise, shape)


def test_a_clear_collapse_with_three_runs_is_observed():
    """Power: 100 replicates of a 20% collapse (noise 0.1 bits per step) fire in >= 80%."""
    rng = np.random.default_rng(2)
    sel = measured(layers_history(collapse(rng, (100, 3, 40), 0.1)), "train")
    trend = trend_table(sel, "i_xt", window=1)
    assert (trend["p_fall"] < 0.05).mean() >= 0.8
    one = layers_history(collapse(rng, (1, 3, 40), 0.05))
    f = check_compression(RunTables(one))
    assert f.verdict == OBSERVED and f.table["drop_pct"].iloc[0] == pytest.approx(20.0, abs=3.0)
    text = sentences(f)[0]
    assert "one-sided t-test over 3 runs" in text and "95% CI" in text and "p " in text


def test_the_fall_is_cross_fitted_on_another_run():
    """Run r's peak is run r+1's maximum (cyclically): a spike in run 1 at step 3 sets run 0's
    peak there; run 2's own maximum (step 0) sets run 1's; run 0's (step 2) sets run 2's."""
    curves = np.array(
        [[1.0, 2.0, 3.0, 2.5, 1.0], [0.0, 0.0, 1.0, 9.0, 0.0], [5.0, 0.0, 4.0, 0.0, 0.0]]
    )
    peaks, falls, levels = cross_fitted_falls(curves)
    assert peaks.tolist() == [3, 0, 2]
    assert falls.tolist() == [1.5, 0.0, 4.0] and levels.tolist() == [2.5, 0.0, 4.0]


# ----------------------------------------------------------------------------- saturation
def test_a_saturated_layer_is_not_informative():
    """The output layer's Gram is saturated in 60% of its steps: its verdicts say so."""

    def flag(run, li, s):
        return ((li == 2) & (s < 37)).astype(float)

    extra = {"saturated": flag, "i_ty_null": constant(0.1), "i_xt_null": constant(0.1)}
    extra["i_ty_p"] = p_values({0: 0.01, 1: 0.01, 2: 0.01})
    tables = RunTables(synthetic(extra=extra))
    fitting, compression = check_fitting(tables), check_compression(tables)
    assert fitting.verdicts["adaptive"] == SATURATED
    assert compression.numbers["adaptive_saturated"] == ["out"]
    assert compression.numbers["adaptive_compressed"] == ["l1", "l2"]
    assert compression.table["saturated_frac"].tolist() == pytest.approx([0, 0, 37 / 61])
    assert "not informative (saturated)" in sentences(fitting)[0]
    assert fitting.controlled == SATURATED


def test_saturation_is_detected_from_s_t_without_flags():
    """No flags: S(T) at log2 N (N = 100) in every record of every layer is saturation."""
    frame = synthetic()
    frame["h_t"] = math.log2(100)
    f = check_estimator(RunTables(frame))
    assert f.verdict == SATURATED and f.numbers["frac_saturated"] == 1.0
    assert check_compression(RunTables(frame)).verdict == SATURATED
    assert "No saturation flags recorded" in findings_text(frame)[0]
    frame["h_t"] = 0.01 * math.log2(100)  # at 0 bits, within 1% of log2 N
    assert check_compression(RunTables(frame)).verdict == SATURATED
    frame["h_t"] = 0.02 * math.log2(100)
    assert check_compression(RunTables(frame)).verdict == OBSERVED


def test_a_saturated_fixed_control_is_not_read_in_the_headline():
    fixed = constant(5.0)
    extra = {"i_xt_fixed": fixed, "i_ty_fixed": rising(), "saturated_fixed": constant(1.0)}
    extra["saturated_fixed"] = lambda run, li, s: np.ones(s.shape)
    f = check_compression(RunTables(synthetic(extra=extra)))
    assert f.verdicts["fixed"] == SATURATED
    # The only control of a trend is saturated: the headline is the uncontrolled estimate.
    assert f.controlled == f"estimate only (fixed-width control {SATURATED})"
    extra["saturated_fixed"] = lambda run, li, s: np.zeros(s.shape)
    f = check_compression(RunTables(synthetic(extra=extra)))
    assert f.controlled == "not observed: fails the fixed-width control"


def test_the_fixed_control_is_read_from_its_reference_step():
    """NaN before step 20 (the control does not exist yet), then flat: no compression."""

    def fixed(run, li, s):
        return np.where(s < 20, np.nan, 4.0 - 0.5 * li)

    f = check_compression(RunTables(synthetic(extra={"i_xt_fixed": fixed, "i_ty_fixed": fixed})))
    assert f.verdicts["fixed"] == NOT_OBSERVED
    assert f.table["fixed_first_step"].tolist() == [20, 20, 20]
    assert "from step 20" in "\n".join(sentences(f))


# ----------------------------------------------------------------------------- compression
def test_compression_by_construction_and_lost_under_fixed_widths():
    fixed = lambda run, li, s: 5.0 - 0.5 * li + 0 * s  # noqa: E731 - held width: no fall
    frame = synthetic(extra={"i_xt_fixed": fixed, "i_ty_fixed": rising()})
    f = check_compression(RunTables(frame))
    assert f.verdicts == {"adaptive": OBSERVED, "fixed": NOT_OBSERVED, "null": NOT_RECORDED}
    assert f.numbers["adaptive_compressed"] == list(LAYERS)
    assert f.numbers["lost_with_fixed"] == sorted(LAYERS)
    assert f.table["peak_step"].tolist() == [30, 30, 30]
    assert f.table["drop"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert f.table["drop_pct"].tolist() == pytest.approx([20.0, 100 / 4.5, 100 / 4.0])
    text = "\n".join(sentences(f))
    assert "With fixed widths, compression does NOT survive" in text
    assert "null floor" not in text.lower()  # said once (controls_note), not per finding
    assert "without the null floor" in findings_text(frame)[0]


def test_compression_above_the_floor_discounts_a_floor_that_falls_with_the_estimate():
    curve = rise_fall()
    frame = synthetic(extra={"i_xt_null": shifted(curve, -1.5), "i_ty_null": constant(0.3)})
    f = check_compression(RunTables(frame))
    assert f.verdicts["adaptive"] == OBSERVED and f.verdicts["null"] == NOT_OBSERVED
    assert "I(X;T) minus its floor falls by the threshold in no layer" in "\n".join(sentences(f))


def test_layers_that_only_rise_are_not_reported_as_missing_compression():
    frame = synthetic(xt=rising(2.0, 5.0))
    f = check_compression(RunTables(frame))
    assert f.verdict == NOT_OBSERVED
    assert "never falls below its peak" in sentences(f)[0]


def test_threshold_decides_compression_and_early_stopping_uses_it():
    frame = synthetic()  # 20-25% drops
    m = metrics([float((e - 3) ** 2) for e in range(7)])  # best epoch 3 (step 30)
    strict = early_stopping(m, frame, patience=(1,), threshold=0.3)
    assert strict["before_onset"].tolist() == [None, None, None]
    loose = early_stopping(m, frame, patience=(1,), threshold=0.05)
    assert loose["before_onset"].tolist() == [False, False, False]  # stop at step 40 > 30
    assert "no layer compresses" in "\n".join(findings_text(frame, m, threshold=0.3))
    with pytest.raises(InvalidParameterError, match="threshold"):
        RunTables(frame, threshold=1.5)


# ----------------------------------------------------------------------------- fitting
def p_values(per_run: dict[int, float]) -> Curve:
    """Permutation p-values: ``per_run[run]`` at every step of every layer."""
    return lambda run, li, s: np.full(s.shape, per_run[run])


def test_a_floor_equal_to_the_estimate_makes_no_layer_informative():
    """Every permuted draw equals the estimate: each p-value is (1 + B) / (B + 1) = 1."""
    extra = {
        "i_ty_null": rising(),
        "i_xt_null": constant(0.1),
        "i_ty_p": p_values({0: 1, 1: 1, 2: 1}),
    }
    f = check_fitting(RunTables(synthetic(extra=extra)))
    assert f.verdicts["adaptive"] == OBSERVED and f.verdicts["null"] == NOT_OBSERVED
    assert f.numbers["not_informative"] == list(LAYERS)
    assert f.table["floor_margin"].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)
    assert f.table["floor_p"].tolist() == [1.0, 1.0, 1.0]
    assert "NOT informative about Y" in "\n".join(sentences(f))
    assert f.controlled == "not observed: fails the null floor"


def fisher_3(p: tuple[float, float, float]) -> float:
    """Fisher's combined p-value of three tests in closed form: chi2 with 6 df has the survival
    function exp(-x/2) (1 + x/2 + x^2/8); with q = p1 p2 p3 and x = -2 ln q, q (1 - ln q + ln^2 q
    / 2)."""
    q = math.prod(p)
    return q * (1 - math.log(q) + math.log(q) ** 2 / 2)


@pytest.mark.parametrize(
    ("p", "informative"),
    [((0.2, 0.1, 0.3), False), ((0.02, 0.04, 0.1), True), ((0.04, 0.5, 0.5), False)],
)
def test_informative_means_fisher_over_runs_of_the_final_p_values_below_005(p, informative):
    """Only each run's final step is read: earlier steps carry p = 1."""

    def p_at(run, li, s):
        return np.where(s == s.max(), p[run], 1.0)

    extra = {"i_ty_null": shifted(rising(), -0.2), "i_xt_null": constant(0.1), "i_ty_p": p_at}
    f = check_fitting(RunTables(synthetic(extra=extra)))
    assert f.table["floor_p"].tolist() == pytest.approx([fisher_3(p)] * 3, rel=1e-10)
    assert f.table["floor_margin"].tolist() == pytest.approx([0.2] * 3)
    assert f.table["floor_informative"].tolist() == [informative] * 3
    assert f.verdicts["null"] == (OBSERVED if informative else NOT_OBSERVED)
    text = "\n".join(sentences(f))
    assert "Fisher over 3 runs" in text and "p = " in text


def test_fisher_combined_matches_closed_forms():
    """2 tests: chi2 with 4 df gives q (1 - ln q); one test returns its p-value."""
    assert fisher_combined([0.3, 0.2]) == pytest.approx(0.06 * (1 - math.log(0.06)), rel=1e-12)
    assert fisher_combined([0.05]) == 0.05  # exactly: one run with B = 19 can reach 0.05
    assert fisher_combined([0.1, 0.2, 0.3]) == pytest.approx(fisher_3((0.1, 0.2, 0.3)), rel=1e-12)
    assert np.isnan(fisher_combined([np.nan]))


def test_a_floor_without_p_values_is_no_null_distribution():
    """A history holding one permuted draw per step and no p-values: no test, say so."""
    extra = {"i_ty_null": shifted(rising(), -1.0), "i_xt_null": constant(0.1)}
    frame = synthetic(extra=extra)
    fitting, estimator = check_fitting(RunTables(frame)), check_estimator(RunTables(frame))
    assert fitting.verdicts["null"] == NO_NULL_DISTRIBUTION
    assert estimator.verdicts["null"] == NO_NULL_DISTRIBUTION
    assert "no null distribution" in "\n".join(sentences(fitting))
    assert fitting.controlled == "estimate only (no null distribution; no fixed-width control)"


def test_one_run_is_inconclusive_and_quotes_no_spread():
    extra = {
        "i_ty_null": shifted(rising(), -1.0),
        "i_xt_null": constant(0.1),
        "i_ty_p": p_values({0: 0.01}),
        "i_xt_p": p_values({0: 0.01}),
    }
    tables = RunTables(synthetic(runs=1, extra=extra))
    fitting, compression = check_fitting(tables), check_compression(tables)
    assert fitting.verdicts["adaptive"] == INCONCLUSIVE
    assert compression.verdicts == dict.fromkeys(("adaptive", "null"), INCONCLUSIVE_CROSS_FIT) | {
        "fixed": NOT_RECORDED
    }
    assert fitting.verdicts["null"] == OBSERVED  # the permutation test holds for one run
    assert check_estimator(tables).verdicts["adaptive"] == INCONCLUSIVE
    text = "\n".join(sentences(fitting) + sentences(compression))
    assert "±" not in text and "spread" not in text
    assert "inconclusive (needs >= 3 runs)" in text
    several = "\n".join(sentences(check_fitting(RunTables(synthetic(runs=3)))))
    assert "inconclusive" not in several and "±" in several


def test_fitting_under_fixed_widths_that_do_not_rise():
    frame = synthetic(extra={"i_xt_fixed": rise_fall(), "i_ty_fixed": constant(2.0)})
    f = check_fitting(RunTables(frame))
    assert f.verdicts["fixed"] == NOT_OBSERVED
    assert "fitting does NOT survive" in "\n".join(sentences(f))


# ----------------------------------------------------------------------------- train vs test
def test_train_vs_test_weaker_on_test():
    """Every run falls by 1 bit on train and by 0.1, 0.3, 0.2 bits on test from peaks of
    5 - l/2 bits: run r's train-minus-test fall is (1 - d_r) * mean_l 100 / (5 - l/2) %, and
    the paired interval over the three runs is t(2) * sd / sqrt(3)."""
    test_drops = {0: 0.1, 1: 0.3, 2: 0.2}

    def test_xt(run, li, s):
        return rise_fall(drop=test_drops[run])(run, li, s)

    train = synthetic()
    test = synthetic(xt=test_xt, splits=("test",))
    frame = history_frame(pd.concat([train, test], ignore_index=True))
    f = check_train_vs_test(RunTables(frame))
    assert f.verdict == OBSERVED
    scale = np.mean([100 / (5 - 0.5 * li) for li in range(3)])
    diffs = np.array([(1 - d) * scale for d in test_drops.values()])
    n = f.numbers["adaptive"]
    assert n["diff_pct"] == pytest.approx(diffs.mean())
    assert n["diff_ci_pct"] == pytest.approx(t_quantile(2) * diffs.std(ddof=1) / math.sqrt(3))
    assert n["weaker"] == 3 and n["n_pairs"] == 3
    assert f.table["test_drop_pct"].tolist() == pytest.approx([4.0, 100 * 0.2 / 4.5, 5.0])
    assert "paired 95% CI over 3 runs" in sentences(f)[0]
    one = check_train_vs_test(RunTables(train))
    assert one.verdict == NOT_CHECKED and "not checked" in sentences(one)[0]


def test_train_vs_test_without_compression_is_not_applicable():
    """Neither split compresses in any layer: 'weaker on test' has nothing to compare."""
    train = synthetic(xt=rising(2.0, 5.0))
    test = synthetic(xt=rising(2.0, 5.0), splits=("test",))
    f = check_train_vs_test(RunTables(history_frame(pd.concat([train, test], ignore_index=True))))
    assert f.verdict == NOT_APPLICABLE
    assert (
        f.numbers["adaptive"]["train_compressed"] == f.numbers["adaptive"]["test_compressed"] == 0
    )
    assert "no layer compresses on either split" in sentences(f)[0]


def test_train_vs_test_with_two_runs_is_inconclusive():
    train = synthetic(runs=2)
    test = synthetic(runs=2, xt=rise_fall(drop=0.1), splits=("test",))
    frame = history_frame(pd.concat([train, test], ignore_index=True))
    assert check_train_vs_test(RunTables(frame)).verdict == INCONCLUSIVE_CROSS_FIT


# ----------------------------------------------------------------------------- early stopping
def test_early_stopping_before_the_onset():
    f = check_early_stopping(RunTables(synthetic(), metrics([3, 2, 1, 2, 3, 4, 5])), patience=(1,))
    assert f.verdict == OBSERVED  # best epoch 2, stop at epoch 3 = step 30 = the onset
    assert "before the compression onset in all 3 compressing layers" in sentences(f)[0]


def test_an_onset_inside_the_first_epoch_cannot_be_preceded():
    """I(X;T) peaks at step 5; the first per-epoch value is at step 10: no stop can precede it."""
    frame = synthetic(xt=rise_fall(peak_step=5))
    m = metrics([1.0, 2.0, 3.0, 4.0], step_of_epoch=lambda e: 10 * (e + 1))
    f = check_early_stopping(RunTables(frame, m), patience=(1,))
    assert f.verdict == NOT_CHECKED
    text = sentences(f)[0]
    assert "falls inside the first epoch" in text and "before the compression onset" not in text


def test_early_stopping_that_never_stops_is_inconclusive():
    """The test loss improves to the end: where training would stop is not known."""
    f = check_early_stopping(RunTables(synthetic(), metrics([7, 6, 5, 4, 3, 2, 1])), patience=(1,))
    assert f.verdict == NO_STOP
    assert "inconclusive" in sentences(f)[0] and "NOT observed" not in sentences(f)[0]


def test_early_stopping_without_metrics_is_not_checked():
    f = check_early_stopping(RunTables(synthetic()))
    assert set(f.verdicts.values()) == {NOT_CHECKED}
    assert sentences(f) == ["Early stopping: not checked, no training metrics."]


# ----------------------------------------------------------------------------- DPI
def test_dpi_fractions_at_each_tolerance():
    """The deeper layer exceeds the first by 0.005 bits on 10 steps and 0.03 on 10 of 20."""
    excess = np.r_[np.full(10, 0.005), np.full(10, 0.03), np.full(20, -1.0)]

    def xt(run, li, s):
        return 3.0 + excess[s] * li

    frame = synthetic(
        xt=xt,
        steps=np.arange(40),
        layers=("a", "b"),
        runs=1,
        extra={
            "i_xt_fixed": lambda r, li, s: 3.0 - li + 0 * s,
            "i_ty_fixed": lambda r, li, s: 2.0 - li + 0 * s,
        },
    )
    f = check_dpi(RunTables(frame))
    assert f.numbers["adaptive"]["frac_xt"] == {0.0: 0.5, 0.01: 0.75, 0.05: 1.0}
    assert f.numbers["adaptive"]["frac_ty"][0.0] == 1.0
    assert f.verdicts == {"adaptive": OBSERVED, "fixed": OBSERVED, "null": NOT_APPLICABLE}
    text = "\n".join(sentences(f))
    assert "do not guarantee the data processing inequality" in text
    assert "at 0.01 bits: 75% / 100%" in text


# ----------------------------------------------------------------------------- estimator
def test_identity_input_gram_is_reported():
    frame = synthetic()
    frame["h_t"] = frame["i_xt"]
    f = check_estimator(RunTables(frame))
    assert f.verdict == NOT_OBSERVED and f.numbers["i_xt_is_h_t"]
    text = "\n".join(sentences(f))
    assert "I(X;T) equals S(T) in every record" in text and "identity" in text


def test_estimator_above_its_floor():
    extra = {
        "i_xt_null": constant(0.2),
        "i_ty_null": constant(0.1),
        "i_xt_p": p_values({0: 0.01, 1: 0.02, 2: 0.01}),
    }
    frame = synthetic(extra=extra)
    f = check_estimator(RunTables(frame))
    assert f.verdicts == {"adaptive": OBSERVED, "fixed": NOT_RECORDED, "null": OBSERVED}
    assert f.controlled == "estimate only (no fixed-width control)"
    frame["i_xt_p"] = 1.0  # the estimate is no larger than any draw
    f = check_estimator(RunTables(frame))
    assert f.verdicts["null"] == NOT_OBSERVED and f.numbers["below_floor"] == list(LAYERS)


# ----------------------------------------------------------------------------- once, and inputs
def test_each_summary_is_computed_once(monkeypatch):
    calls: dict[tuple, int] = {}
    real = findings_module.trend_table

    def counting(agg, quantity, **kw):
        key = (quantity, id(agg))  # one cached aggregate per split
        calls[key] = calls.get(key, 0) + 1
        return real(agg, quantity, **kw)

    monkeypatch.setattr(findings_module, "trend_table", counting)
    frame = synthetic(
        splits=("train", "test"),
        extra={
            "i_xt_fixed": rise_fall(),
            "i_ty_fixed": rising(),
            "i_xt_null": constant(0.1),
            "i_ty_null": constant(0.1),
        },
    )
    tables = RunTables(frame, metrics([3, 2, 1, 2, 3, 4, 5]))
    found = check_findings(tables)
    assert [f.key for f in found] == [
        "fitting",
        "compression",
        "train_vs_test",
        "early_stopping",
        "dpi",
        "estimator",
    ]
    assert calls and set(calls.values()) == {1}


def test_sources_give_the_same_findings(tmp_path):
    frame = synthetic(runs=2)
    hist = History({"alpha": 1.01})
    hist.extend(frame.to_dict("records"))
    path = hist.save(tmp_path / "history.csv")
    table = {c: frame[c].to_numpy() for c in FIELDS}
    expected = findings_text(frame)
    for source in (hist, path, tmp_path, str(path), table):
        assert findings_text(source) == expected


@pytest.mark.parametrize(
    ("source", "match"),
    [(42, "expected a History"), ({"run": [0]}, "missing"), (pd.DataFrame(), "missing")],
)
def test_bad_sources_are_refused_in_one_line(source, match):
    with pytest.raises(InvalidInputError, match=match) as info:
        RunTables(source)
    assert "\n" not in str(info.value)


def test_estimator_movement_that_follows_the_width_fails_the_fixed_control():
    """The estimate moves while I(X;T) at the held widths does not (a rescaled representation):
    the headline is not observed; with the held-width series moving too, it is."""
    extra = {
        "i_xt_null": constant(0.2),
        "i_ty_null": constant(0.1),
        "i_xt_p": p_values({0: 0.01, 1: 0.02, 2: 0.01}),
        "i_xt_fixed": constant(4.0),
        "i_ty_fixed": constant(1.0),
    }
    f = check_estimator(RunTables(synthetic(extra=extra)))
    assert f.verdicts["adaptive"] == OBSERVED and f.verdicts["fixed"] == NOT_OBSERVED
    assert f.controlled == "not observed: fails the fixed-width control"
    assert "does NOT move" in "\n".join(sentences(f))
    extra["i_xt_fixed"] = rising()
    f = check_estimator(RunTables(synthetic(extra=extra)))
    assert f.verdicts["fixed"] == OBSERVED and f.controlled == OBSERVED
