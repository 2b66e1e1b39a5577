"""Tests of infoplane.analysis on synthetic histories with known answers: averages over runs,
the data processing inequality, fitting and compression, early stopping, train against test, and
the findings of Wickstrøm et al. (arXiv:1909.11396) stated in words."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from infoplane.analysis import (
    aggregate,
    compression_summary,
    dpi_table,
    early_stopping,
    findings_text,
    layer_order,
    moving_average,
    splits,
    train_vs_test,
)
from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.history import History
from infoplane.io import read_table, write_table
from infoplane.schema import FIELDS, INT_FIELDS, STR_FIELDS

STEPS = np.arange(101)  # global steps 0..100


def xt_curve(steps: np.ndarray, *, drop: float = 0.2) -> np.ndarray:
    """I(X;T) of layer 0: 2 -> 5 bits linearly up to step 50, then down by ``drop`` of the peak."""
    up = 2.0 + 3.0 * steps / 50.0
    down = 5.0 - 5.0 * drop * (steps - 50) / 50.0
    return np.where(steps <= 50, up, down)


def ty_curve(steps: np.ndarray) -> np.ndarray:
    return 0.5 + 2.5 * (1.0 - np.exp(-steps / 20.0))


def make_table(
    *,
    runs: int = 3,
    noise: float = 0.01,
    drop: float = 0.2,
    test_drop: float | None = None,
    skipped: bool = True,
    layers: tuple[str, ...] = ("conv1", "conv2", "fc"),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A history table: layer l is layer 0 minus l bits everywhere; one skipped record."""
    rng = np.random.default_rng(seed)
    rows = []
    split_drops = [("train", drop)] + ([("test", test_drop)] if test_drop is not None else [])
    for split, d in split_drops:
        for run in range(runs):
            for li, name in enumerate(layers):
                xt = xt_curve(STEPS, drop=d) - li + rng.normal(0.0, noise, STEPS.size)
                ty = ty_curve(STEPS) - 0.1 * li + rng.normal(0.0, noise, STEPS.size)
                for k, step in enumerate(STEPS):
                    rows.append(
                        {
                            "run": run,
                            "split": split,
                            "epoch": int(step // 10),
                            "step": int(step),
                            "layer": name,
                            "layer_index": li,
                            "i_xt": xt[k],
                            "i_ty": ty[k],
                            "h_t": xt[k] + 0.5,
                            "h_x": 6.5,
                            "h_y": 3.32,
                            "sigma": 1.0 + li + step / 100.0,
                            "n": 100,
                            "status": "ok",
                        }
                    )
    if skipped:
        for r in rows:
            if (r["split"], r["run"], r["layer"], r["step"]) == ("train", 1, layers[0], 7):
                r.update(i_xt=np.nan, i_ty=np.nan, h_t=np.nan, status="skipped")
    return {
        f: np.array(
            [r.get(f, np.nan) for r in rows],
            dtype=object if f in STR_FIELDS else np.int64 if f in INT_FIELDS else np.float64,
        )
        for f in FIELDS
    }


def make_metrics(losses: list[float], *, split: str = "test", runs: int = 2) -> dict:
    """Per-epoch metrics, epoch e at global step 10 * e, the same loss curve in every run."""
    rows = [
        (run, split, e, 10 * e, loss, 0.5 + 0.04 * e)
        for run in range(runs)
        for e, loss in enumerate(losses)
    ]
    cols = list(zip(*rows, strict=True))
    return {
        "run": np.array(cols[0], dtype=np.int64),
        "split": np.array(cols[1], dtype=object),
        "epoch": np.array(cols[2], dtype=np.int64),
        "step": np.array(cols[3], dtype=np.int64),
        "loss": np.array(cols[4], dtype=np.float64),
        "accuracy": np.array(cols[5], dtype=np.float64),
    }


V_LOSS = [float((e - 4) ** 2 + 1) for e in range(10)]  # minimum at epoch 4


# ----------------------------------------------------------------------------- aggregate
def test_aggregate_matches_numpy_by_hand_and_ignores_skipped():
    table = make_table()
    agg = aggregate(table, split="train")
    assert layer_order(agg) == ["conv1", "conv2", "fc"]
    assert agg["layer"].size == 3 * STEPS.size
    for layer, step in (("conv1", 7), ("conv2", 30), ("fc", 100)):
        sel = (
            (table["layer"] == layer) & (table["step"] == step) & (table["status"] == "ok")
        ).astype(bool)
        row = np.flatnonzero((agg["layer"] == layer) & (agg["step"] == step))
        assert row.size == 1
        for q in ("i_xt", "i_ty", "h_t", "sigma"):
            vals = table[q][sel]
            assert agg[f"{q}_mean"][row[0]] == pytest.approx(np.mean(vals), abs=1e-12)
            assert agg[f"{q}_std"][row[0]] == pytest.approx(np.std(vals, ddof=1), abs=1e-12)
        assert agg["n_runs"][row[0]] == (2 if (layer, step) == ("conv1", 7) else 3)
    assert np.all(np.isfinite(agg["i_xt_mean"]))


def test_aggregate_one_run_has_no_spread():
    """One run has no run-to-run spread: std and CI are missing, not 0 (a spread is never quoted
    for a single run; 0 would claim a spread of zero)."""
    agg = aggregate(make_table(runs=1, skipped=False), split="train")
    assert agg["i_xt_std"].isna().all() and agg["i_xt_ci"].isna().all()
    assert np.all(agg["n_runs"] == 1)


@pytest.mark.parametrize("mode", ["centred", "trailing"])
def test_aggregate_smoothing_is_a_moving_average_per_layer(mode):
    table = make_table(noise=0.05)
    raw = aggregate(table, split="train")
    smooth = aggregate(table, split="train", smooth=5, mode=mode)
    for layer in ("conv1", "fc"):
        rows = np.flatnonzero(raw["layer"] == layer)
        x = raw["i_ty_mean"].to_numpy()[rows]
        smoothed = smooth["i_ty_mean"].to_numpy()[rows]
        i = 40
        window = x[i - 2 : i + 3] if mode == "centred" else x[i - 4 : i + 1]
        assert smoothed[i] == pytest.approx(window.mean(), abs=1e-12)
        # the ends shrink the window rather than pad
        expected_first = x[:3].mean() if mode == "centred" else x[0]
        assert smoothed[0] == pytest.approx(expected_first, abs=1e-12)


def test_moving_average_keeps_constants_and_skips_nan():
    assert np.allclose(moving_average(np.full(9, 2.5), 4), 2.5)
    x = np.array([1.0, np.nan, 3.0, 5.0])
    assert moving_average(x, 3)[1] == pytest.approx(2.0)  # (1 + 3) / 2
    assert moving_average(x, 2, mode="trailing")[3] == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"split": "valid"}, InvalidParameterError),
        ({"split": "train", "smooth": 0}, InvalidParameterError),
        ({"split": "train", "smooth": 2.5}, InvalidParameterError),
    ],
)
def test_aggregate_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error, match="aggregate"):
        aggregate(make_table(), **kwargs)


def test_missing_columns_name_the_column():
    table = make_table()
    del table["i_ty"]
    with pytest.raises(InvalidInputError, match="i_ty"):
        dpi_table(table, split="train")


def test_numeric_layer_names_survive_a_csv_round_trip(tmp_path):
    """read_table parses '0', '3' as integers; the analysis must still see text names in order."""
    hist = History()
    for step in range(4):
        for li, name in enumerate(("0", "3", "7")):
            hist.add(
                {
                    "run": 0,
                    "split": "train",
                    "epoch": 0,
                    "step": step,
                    "layer": name,
                    "layer_index": li,
                    "i_xt": 3.0 - li,
                    "i_ty": 2.0 - li,
                    "h_t": 4.0,
                    "sigma": 1.0,
                    "n": 50,
                }
            )
    path = hist.save(tmp_path / "history.csv")
    table = read_table(path)
    assert table["layer"].dtype.kind == "i"  # the case this test is about
    agg = aggregate(table, split="train")
    assert layer_order(agg) == ["0", "3", "7"]
    assert dpi_table(table, split="train")["d_xt_mean"].tolist() == [1.0, 1.0]


# ----------------------------------------------------------------------------- DPI
def test_dpi_fraction_is_exact_on_constructed_data():
    """Two layers, 8 steps; I(X;T) of the deeper layer is larger on 2 steps: 75% comply."""
    steps = np.arange(8)
    x0 = np.full(8, 3.0)
    x1 = np.array([2.0, 2.0, 3.5, 2.0, 2.0, 4.0, 2.0, 2.0])
    y0 = np.full(8, 2.0)
    y1 = np.full(8, 2.0)  # equal: complies (>= -tol)
    table = {
        "run": np.zeros(16, np.int64),
        "split": np.array(["train"] * 16, dtype=object),
        "epoch": np.zeros(16, np.int64),
        "step": np.concatenate([steps, steps]),
        "layer": np.array(["a"] * 8 + ["b"] * 8, dtype=object),
        "layer_index": np.array([0] * 8 + [1] * 8),
        "i_xt": np.concatenate([x0, x1]),
        "i_ty": np.concatenate([y0, y1 - 1e-12]),  # round-off below the other layer
        "status": np.array(["ok"] * 16, dtype=object),
    }
    dpi = dpi_table(table, split="train")
    assert dpi["layer"].tolist() == ["a"] and dpi["next_layer"].tolist() == ["b"]
    assert dpi["n"][0] == 8
    assert dpi["frac_xt"][0] == 0.75
    assert dpi["frac_ty"][0] == 1.0
    assert dpi["d_xt_mean"][0] == pytest.approx(np.mean(x0 - x1))
    with pytest.raises(InvalidParameterError):
        dpi_table(table, split="test")


def test_dpi_on_layers_one_bit_apart():
    dpi = dpi_table(make_table(noise=0.0), split="train")
    assert dpi["layer"].tolist() == ["conv1", "conv2"]
    assert dpi["next_layer"].tolist() == ["conv2", "fc"]
    assert np.allclose(dpi["d_xt_mean"], 1.0)
    assert np.allclose(dpi["d_ty_mean"], 0.1)
    assert np.all(dpi["frac_xt"] == 1.0)
    # the skipped record of conv1 removes one (run, step) from the first pair only
    assert dpi["n"].tolist() == [3 * STEPS.size - 1, 3 * STEPS.size]


# ----------------------------------------------------------------------------- compression
def test_compression_peak_and_drop():
    comp = compression_summary(make_table(noise=0.0), split="train", smooth=1)
    assert comp["layer"].tolist() == ["conv1", "conv2", "fc"]
    assert comp["peak_step"].tolist() == [50, 50, 50]
    assert comp["i_xt_peak"].tolist() == pytest.approx([5.0, 4.0, 3.0])
    assert comp["i_xt_final"].tolist() == pytest.approx([4.0, 3.0, 2.0])
    assert comp["drop"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert comp["drop_pct"].tolist() == pytest.approx([20.0, 25.0, 100.0 / 3.0])
    assert comp["compressed"].all()
    assert not comp["peak_at_start"].any()


def test_compression_with_default_light_smoothing_and_noise():
    comp = compression_summary(make_table(noise=0.02), split="train")
    assert comp["smooth"][0] == 3  # about 2% of 101 steps, odd
    assert np.all(np.abs(comp["peak_step"] - 50) <= 3)
    assert comp["drop_pct"][0] == pytest.approx(20.0, abs=1.5)
    assert comp["compressed"].all()


def test_compression_absent_when_i_xt_only_rises():
    comp = compression_summary(make_table(drop=0.0), split="train", smooth=1)
    assert not comp["compressed"].any()
    assert np.all(comp["drop_pct"] < 5.0)


def t3_sf(t: float) -> float:
    """P(T > t) for Student's t with 3 df, in closed form:
    1/2 - (1/pi) (atan(t / sqrt 3) + (t / sqrt 3) / (1 + t^2 / 3))."""
    u = t / np.sqrt(3.0)
    return 0.5 - (np.arctan(u) + u / (1.0 + u * u)) / np.pi


def test_compression_needs_a_fall_that_beats_its_spread_over_runs():
    """Four runs fall by 0.05, 0.55, 0.05, 0.55 bits after step 50 (mean 0.3, 6% of the 5-bit
    peak): the one-sided t-test over runs that the fall exceeds 5% of the peak has t = (0.3 -
    0.25) / (sd / 2) with 3 df, not significant; the same 6% fall in every run is."""
    table = make_table(drop=0.06, noise=0.0, runs=4, skipped=False)
    late = np.clip((table["step"] - 50) / 50.0, 0.0, None)
    sign = np.where(table["run"] % 2 == 0, 1.0, -1.0)
    table["i_xt"] = table["i_xt"] + 0.25 * sign * late
    comp = compression_summary(table, split="train", smooth=1)
    sd = 0.25 * np.sqrt(4 / 3)
    assert comp["peak_step"][0] == 50
    assert comp["drop"][0] == pytest.approx(0.3)
    assert comp["noise"][0] == pytest.approx(sd)
    assert comp["p_fall"][0] == pytest.approx(t3_sf((0.3 - 0.05 * 5.0) / (sd / 2)), rel=1e-9)
    assert comp["drop_ci_pct"][0] == pytest.approx(100 * 3.182446305284263 * sd / 2 / 5.0)
    assert not comp["compressed"][0]
    quiet = compression_summary(make_table(drop=0.06, noise=0.0), split="train", smooth=1)
    assert quiet["compressed"][0] and quiet["p_fall"][0] == 0.0


def test_fitting_summary():
    comp = compression_summary(make_table(noise=0.0), split="train", smooth=1)
    final = ty_curve(STEPS[-1:])[0]
    assert comp["i_ty_first"][0] == pytest.approx(0.5)
    assert comp["i_ty_final"][0] == pytest.approx(final)
    expected_90 = int(STEPS[np.flatnonzero(ty_curve(STEPS) >= 0.9 * final)[0]])
    assert comp["step_90"][0] == expected_90
    assert comp["h_y"][0] == pytest.approx(3.32)


# ----------------------------------------------------------------------------- early stopping
def test_early_stopping_epochs_on_a_constructed_loss_curve():
    es = early_stopping(make_metrics(V_LOSS), make_table(noise=0.0), patience=(1, 2, 10))
    layers = ["conv1", "conv2", "fc"]
    assert es["layer"].tolist() == layers * 3
    first = {p: np.flatnonzero(es["patience"] == p)[0] for p in (1, 2, 10)}
    assert es["best_epoch"][first[2]] == 4
    assert es["stop_epoch"][first[1]] == 5 and es["stop_step"][first[1]] == 50
    assert es["stop_epoch"][first[2]] == 6 and es["stop_step"][first[2]] == 60
    assert es["stopped"][first[2]]
    assert es["stop_epoch"][first[10]] == 9 and not es["stopped"][first[10]]
    assert set(es["monitor"].tolist()) == {"test loss"}
    # onset = I(X;T) peak at step 50: stopping at step 50 is before it, at step 60 is not
    assert es["before_onset"][es["patience"] == 1].tolist() == [True] * 3
    assert es["before_onset"][es["patience"] == 2].tolist() == [False] * 3


def test_early_stopping_falls_back_to_training_loss_and_says_so():
    es = early_stopping(make_metrics(V_LOSS, split="train"), make_table(), patience=(2,))
    assert es["monitor"][0] == "train loss (no test rows)"
    assert es["stop_epoch"][0] == 6


def test_early_stopping_on_accuracy_maximises():
    metrics = make_metrics(V_LOSS)
    metrics["accuracy"] = -metrics["loss"]  # best accuracy at epoch 4
    es = early_stopping(metrics, make_table(), patience=(3,), monitor="test accuracy")
    assert es["best_epoch"][0] == 4 and es["stop_epoch"][0] == 7


def test_early_stopping_onset_is_none_without_compression():
    es = early_stopping(make_metrics(V_LOSS), make_table(drop=0.0), patience=(1,))
    assert es["before_onset"].tolist() == [None, None, None]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"monitor": "test f1"}, "monitor"), ({"patience": (0,)}, "patience")],
)
def test_early_stopping_rejects_bad_arguments(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        early_stopping(make_metrics(V_LOSS), make_table(), **kwargs)


# ----------------------------------------------------------------------------- train vs test
def test_train_vs_test_compares_drops():
    table = make_table(noise=0.0, test_drop=0.02)
    assert splits(table) == ["train", "test"]
    tvt = train_vs_test(table, smooth=1)
    assert tvt["layer"].tolist() == ["conv1", "conv2", "fc"]
    assert tvt["train_drop_pct"][0] == pytest.approx(20.0)
    assert tvt["test_drop_pct"][0] == pytest.approx(2.0)
    assert tvt["train_compressed"].all() and not tvt["test_compressed"].any()
    assert tvt["weaker_on_test"].all()


def test_train_vs_test_is_empty_with_one_split():
    tvt = train_vs_test(make_table())
    assert tvt["layer"].size == 0 and "test_drop" in tvt


# ----------------------------------------------------------------------------- findings
def test_findings_report_observed_phases():
    table = make_table(noise=0.0, test_drop=0.02)
    text = findings_text(table, make_metrics(V_LOSS), {"activation": "tanh"})
    assert len(text) >= 6
    joined = "\n".join(text)
    # the curves are lightly smoothed (window 3): the first point averages steps 0 and 1
    first = (ty_curve(STEPS[:2]) - 0.2).mean()
    assert f"Fitting (train): I(T;Y) of the output layer (fc) rose from {first:.2f} to" in joined
    assert "S(Y) = 3.32" in joined
    assert "Compression (tanh) on train: I(X;T) rose then fell in 3 of 3 layers" in joined
    assert "compression is weaker on test" in joined
    assert "DPI (train): 100% of consecutive-layer (run, step) pairs comply for I(X;T)" in joined
    assert "Early stopping on test loss with patience 1/3/5 would stop at epoch 5" in joined
    assert "stays below S(X)" in joined
    assert "NOT" not in joined


def test_findings_state_non_observation():
    table = make_table(noise=0.0, drop=0.0)
    text = "\n".join(findings_text(table, make_metrics(V_LOSS), {}))
    assert "Compression NOT observed on train" in text
    assert "no layer compresses" in text
    assert "Train vs test: not checked" in text


def test_findings_flag_dpi_violations_and_a_degenerate_estimator():
    table = make_table(noise=0.0)
    # swap I(X;T) of the two first layers: the DPI fails on average for conv1 -> conv2
    a, b = table["layer"] == "conv1", table["layer"] == "conv2"
    xt = table["i_xt"].copy()
    xt[a], xt[b] = table["i_xt"][b], table["i_xt"][a]
    table["i_xt"] = xt
    text = "\n".join(findings_text(table, None))
    assert "NOT respected on average for I(X;T) on conv1->conv2" in text
    assert "Early stopping: not checked" in text

    tiny = make_table(noise=0.0)
    tiny["h_t"] = np.full(tiny["h_t"].size, np.log2(100))
    assert "DEGENERATE" in "\n".join(findings_text(tiny, None))


def test_findings_of_a_table_read_back_from_csv(tmp_path):
    table = make_table(runs=2)
    path = write_table(tmp_path / "history.csv", _rows(table), FIELDS)
    text = findings_text(read_table(path), None)
    assert any(s.startswith("Compression") for s in text)


def _rows(table: dict) -> list[dict]:
    return [{f: table[f][i] for f in FIELDS} for i in range(table["run"].size)]


def test_analysis_does_not_import_matplotlib():
    code = "import sys, infoplane.analysis; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
