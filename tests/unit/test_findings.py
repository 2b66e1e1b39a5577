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
    NOT_APPLICABLE,
    NOT_CHECKED,
    NOT_OBSERVED,
    NOT_RECORDED,
    OBSERVED,
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
from infoplane.analysis.tables import t_quantile
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
def test_a_floor_equal_to_the_estimate_makes_no_layer_informative():
    frame = synthetic(extra={"i_ty_null": rising(), "i_xt_null": constant(0.1)})
    f = check_fitting(RunTables(frame))
    assert f.verdicts["adaptive"] == OBSERVED and f.verdicts["null"] == NOT_OBSERVED
    assert f.numbers["not_informative"] == list(LAYERS)
    assert f.table["margin"].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)
    assert "NOT informative about Y" in "\n".join(sentences(f))


@pytest.mark.parametrize(("spread", "informative"), [(0.1, False), (0.01, True)])
def test_informative_means_above_the_floor_by_more_than_the_ci_over_runs(spread, informative):
    """Margins 0.2 - s, 0.2, 0.2 + s over three runs: CI = t(2) s / sqrt(3) (0.248 for s = 0.1)."""
    floor = lambda run, li, s: rising()(run, li, s) - 0.2 - spread * (run - 1)  # noqa: E731
    frame = synthetic(extra={"i_ty_null": floor, "i_xt_null": constant(0.1)})
    f = check_fitting(RunTables(frame))
    t2 = (2 * 0.975 - 1) / math.sqrt(2 * 0.975 * 0.025)
    assert f.table["margin"].tolist() == pytest.approx([0.2] * 3)
    assert f.table["margin_ci"].tolist() == pytest.approx([t2 * spread / math.sqrt(3)] * 3)
    assert f.table["informative"].tolist() == [informative] * 3
    assert f.verdicts["null"] == (OBSERVED if informative else NOT_OBSERVED)


def test_one_run_quotes_no_spread():
    frame = synthetic(
        runs=1, extra={"i_ty_null": shifted(rising(), -1.0), "i_xt_null": constant(0.1)}
    )
    f = check_fitting(RunTables(frame))
    text = "\n".join(sentences(f))
    assert "±" not in text and "no spread exists" in text
    assert f.verdicts["null"] == OBSERVED
    several = "\n".join(sentences(check_fitting(RunTables(synthetic(runs=3)))))
    assert "no spread" not in several


def test_fitting_under_fixed_widths_that_do_not_rise():
    frame = synthetic(extra={"i_xt_fixed": rise_fall(), "i_ty_fixed": constant(2.0)})
    f = check_fitting(RunTables(frame))
    assert f.verdicts["fixed"] == NOT_OBSERVED
    assert "fitting does NOT survive" in "\n".join(sentences(f))


# ----------------------------------------------------------------------------- train vs test
def test_train_vs_test_weaker_on_test():
    def xt(run, li, s):
        return rise_fall()(run, li, s)

    train = synthetic(xt=xt)
    test = synthetic(xt=rise_fall(drop=0.1), splits=("test",))
    frame = history_frame(pd.concat([train, test], ignore_index=True))
    f = check_train_vs_test(RunTables(frame))
    assert f.verdict == OBSERVED
    assert f.numbers["adaptive"]["weaker"] == 3
    assert f.table["test_drop_pct"].tolist() == pytest.approx([2.0, 100 * 0.1 / 4.5, 2.5])
    one = check_train_vs_test(RunTables(train))
    assert one.verdict == NOT_CHECKED and "not checked" in sentences(one)[0]


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
    frame = synthetic(extra={"i_xt_null": constant(0.2), "i_ty_null": constant(0.1)})
    f = check_estimator(RunTables(frame))
    assert f.verdicts == {"adaptive": OBSERVED, "fixed": NOT_APPLICABLE, "null": OBSERVED}
    frame["i_xt_null"] = frame["i_xt"]
    assert check_estimator(RunTables(frame)).verdicts["null"] == NOT_OBSERVED


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
