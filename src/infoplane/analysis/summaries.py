"""Per-layer summaries of a history: fitting and compression of any quantity's trajectory, the
data processing inequality between consecutive layers, early stopping against the compression
onset, and compression on training against test data.

The summaries are those needed to check the findings of Wickstrøm et al., "Information Plane
Analysis of Deep Neural Networks via Matrix-Based Rényi's Entropy and Tensor Kernels"
(arXiv:1909.11396; Entropy 25(6):899, 2023). Each returns a pandas DataFrame; information
quantities are in bits. Sources are as in :mod:`infoplane.analysis.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from infoplane.analysis.tables import (
    SE_OF,
    aggregate,
    layer_order,
    main_split,
    measured,
    metrics_frame,
    moving_average,
    smoothing_window,
    splits,
)
from infoplane.errors import InvalidInputError, InvalidParameterError

#: Tolerance (bits) under which a negative difference still counts as complying with the DPI
#: (round-off); a tolerance of 0 in :data:`DPI_TOLERANCES` means this one.
DPI_TOL = 1e-9
#: Tolerances (bits) at which the DPI is reported.
DPI_TOLERANCES: tuple[float, ...] = (0.0, 0.01, 0.05)
#: Default relative drop (fraction of the peak) above which I(X;T) counts as compressed.
COMPRESSION_THRESHOLD = 0.05
#: A rise of I(T;Y) must exceed this many bits (and the spread) to count as fitting.
RISE_TOL = 1e-6


def check_threshold(threshold: float, who: str) -> float:
    if isinstance(threshold, bool) or not 0.0 <= float(threshold) < 1.0:
        raise InvalidParameterError(f"{who}: expected threshold in [0, 1), got {threshold!r}.")
    return float(threshold)


def _spread(agg: pd.DataFrame, rows: np.ndarray, quantity: str, window: int) -> np.ndarray:
    """Run-to-run std of ``quantity`` per step, or its probe SE for single runs (NaN if neither)."""
    std = agg[f"{quantity}_std"].to_numpy(float)[rows]
    se = SE_OF.get(quantity)
    if se is not None and not np.isfinite(std).any():
        std = agg[f"{se}_mean"].to_numpy(float)[rows]
    return moving_average(std, window)


def _largest(*values: float) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(max(finite)) if finite else float("nan")


def _layer_trend(
    agg: pd.DataFrame, rows: np.ndarray, quantity: str, window: int, threshold: float
) -> dict[str, Any]:
    steps = agg["step"].to_numpy()[rows]
    x = moving_average(agg[f"{quantity}_mean"].to_numpy(float)[rows], window)
    if not np.isfinite(x).any():
        return {"recorded": False, "compressed": False, "rose": False, "peak_at_start": False}
    s = _spread(agg, rows, quantity, window)
    ci = moving_average(agg[f"{quantity}_ci"].to_numpy(float)[rows], window)
    peak, last = int(np.nanargmax(x)), len(rows) - 1
    drop, rise = float(x[peak] - x[last]), float(x[last] - x[0])
    noise, rise_noise = _largest(s[peak], s[last]), _largest(s[0], s[last])
    reach = np.flatnonzero(x >= 0.9 * x[last]) if np.isfinite(x[last]) else []
    return {
        "recorded": True,
        "peak_step": int(steps[peak]),
        "first": float(x[0]),
        "peak": float(x[peak]),
        "final": float(x[last]),
        "final_ci": float(ci[last]),
        "drop": drop,
        "drop_pct": 100.0 * drop / x[peak] if x[peak] > 0 else float("nan"),
        "noise": noise,
        "compressed": bool(
            peak < last and drop >= threshold * x[peak] and not drop <= noise and drop > 0
        ),
        "peak_at_start": bool(peak == 0 and last > 0),
        "rise": rise,
        "rose": bool(rise > RISE_TOL and not rise <= rise_noise),
        "step_90": int(steps[reach[0]]) if len(reach) else -1,
    }


def trend_table(
    agg: pd.DataFrame, quantity: str, *, window: int, threshold: float = COMPRESSION_THRESHOLD
) -> pd.DataFrame:
    """Fitting and compression of one quantity's run-averaged trajectory, one row per layer.

    ``agg`` is an :func:`~infoplane.analysis.tables.aggregate` table (unsmoothed); the mean,
    spread and CI are smoothed with a centred window of ``window`` steps. The peak of the smoothed
    mean is the compression onset. A layer *compresses* when the drop from the peak to the last
    step is at least ``threshold`` times the peak and larger than the spread at the peak and at
    the last step (the run-to-run std; the probe SE for a single run; with neither, only the
    relative threshold applies). It *rises* when the last value exceeds the first by more than
    the spread at both ends.

    Returns:
        Columns ``layer, layer_index, n_runs, n_steps, smooth, first_step, last_step, recorded,
        first, peak, peak_step, final, final_ci, drop, drop_pct, noise, compressed,
        peak_at_start, rise, rose, step_90`` (``recorded`` False, values NaN, where the
        quantity was not measured, e.g. a control that was off).
    """
    rows_out = []
    for name in layer_order(agg) if len(agg) else []:
        rows = np.flatnonzero(agg["layer"].to_numpy() == name)
        steps = agg["step"].to_numpy()[rows]
        row = {
            "layer": name,
            "layer_index": int(agg["layer_index"].iloc[rows[0]]),
            "n_runs": int(agg["n_runs"].iloc[rows].max()),
            "n_steps": len(rows),
            "smooth": int(window),
            "first_step": int(steps[0]),
            "last_step": int(steps[-1]),
        }
        row.update(_layer_trend(agg, rows, quantity, int(window), threshold))
        rows_out.append(row)
    return pd.DataFrame(rows_out, columns=_TREND_COLUMNS)


_TREND_COLUMNS = [
    "layer",
    "layer_index",
    "n_runs",
    "n_steps",
    "smooth",
    "first_step",
    "last_step",
    "recorded",
    "first",
    "peak",
    "peak_step",
    "final",
    "final_ci",
    "drop",
    "drop_pct",
    "noise",
    "compressed",
    "peak_at_start",
    "rise",
    "rose",
    "step_90",
]


def default_window(agg: pd.DataFrame) -> int:
    """The smoothing window for the curves of ``agg``: :func:`smoothing_window` of its steps."""
    counts = agg.groupby("layer").size() if len(agg) else pd.Series(dtype=int)
    return smoothing_window(int(counts.max()) if len(counts) else 0)


def compression_summary(
    source: Any,
    *,
    split: str,
    smooth: int | None = None,
    threshold: float = COMPRESSION_THRESHOLD,
) -> pd.DataFrame:
    """Fitting and compression per layer on the run-averaged, lightly smoothed curves.

    I(X;T) and I(T;Y) are summarised by :func:`trend_table` (``smooth`` steps; default: an odd
    window of about 2% of the measured steps, 1 for fewer than 100 steps).

    Returns:
        One row per layer: ``layer, layer_index, n_runs, n_steps, smooth, first_step,
        last_step, peak_step, i_xt_first, i_xt_peak, i_xt_final, drop, drop_pct, noise,
        compressed, peak_at_start`` (I(X;T)), ``i_ty_first, i_ty_final, step_90`` (I(T;Y):
        the first step where it reaches 90% of its final value) and ``h_x, h_y`` (mean S(X),
        S(Y) of the batches).
    """
    threshold = check_threshold(threshold, "compression_summary")
    agg = aggregate(source, split=split)
    window = default_window(agg) if smooth is None else smooth
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise InvalidParameterError(
            f"compression_summary: expected smooth an integer >= 1, got {smooth!r}."
        )
    return _compression_columns(agg, int(window), threshold)


def _compression_columns(agg: pd.DataFrame, window: int, threshold: float) -> pd.DataFrame:
    xt = trend_table(agg, "i_xt", window=window, threshold=threshold)
    ty = trend_table(agg, "i_ty", window=window, threshold=threshold)
    out = xt[["layer", "layer_index", "n_runs", "n_steps", "smooth", "first_step", "last_step"]]
    out = out.assign(
        peak_step=xt["peak_step"],
        i_xt_first=xt["first"],
        i_xt_peak=xt["peak"],
        i_xt_final=xt["final"],
        drop=xt["drop"],
        drop_pct=xt["drop_pct"],
        noise=xt["noise"],
        compressed=xt["compressed"].astype(bool),
        peak_at_start=xt["peak_at_start"].astype(bool),
        i_ty_first=ty["first"],
        i_ty_final=ty["final"],
        step_90=ty["step_90"],
    )
    means = agg.groupby("layer", sort=False)[["h_x_mean", "h_y_mean"]].mean()
    out["h_x"] = out["layer"].map(means["h_x_mean"])
    out["h_y"] = out["layer"].map(means["h_y_mean"])
    return out


# ----------------------------------------------------------------------------- DPI
def dpi_differences(
    source: Any, *, split: str, quantities: Sequence[str] = ("i_xt", "i_ty")
) -> tuple[list[str], dict[str, np.ndarray]]:
    """``(layers in forward order, {q: [keys, pairs] array of q(T_l) - q(T_l+1)})``.

    Rows are the (run, epoch, step) keys of ``split``; NaN where a layer was not measured.
    """
    sel = measured(source, split, who="dpi_table")
    order = layer_order(sel)
    out = {}
    for q in quantities:
        wide = sel.pivot_table(index=["run", "epoch", "step"], columns="layer", values=q)
        wide = wide.reindex(columns=order).to_numpy(float)
        out[q] = wide[:, :-1] - wide[:, 1:] if wide.size else np.empty((0, 0))
    return order, out


def dpi_table(
    source: Any,
    *,
    split: str,
    tol: float = DPI_TOL,
    quantities: tuple[str, str] = ("i_xt", "i_ty"),
) -> pd.DataFrame:
    """Data processing inequality between consecutive layers (Finding 5).

    For each pair (T_l, T_{l+1}) in forward order, over every (run, step) where both layers were
    measured: the mean of ``I(X;T_l) - I(X;T_{l+1})`` and of ``I(T_l;Y) - I(T_{l+1};Y)`` (bits),
    and the fraction of (run, step) where each difference is ``>= -tol`` (the inequality holds;
    ``tol = 0`` counts round-off, :data:`DPI_TOL`, as complying). ``quantities`` names the two
    columns (e.g. the fixed-width control ``('i_xt_fixed', 'i_ty_fixed')``).

    Returns:
        One row per pair: ``layer, next_layer, n, d_xt_mean, d_ty_mean, frac_xt, frac_ty``
        (fractions in [0, 1]; NaN where a pair never co-occurs).
    """
    order, diff = dpi_differences(source, split=split, quantities=quantities)
    tol = max(float(tol), DPI_TOL)
    d_xt, d_ty = diff[quantities[0]], diff[quantities[1]]
    rows = []
    for p in range(max(len(order) - 1, 0)):
        both = np.isfinite(d_xt[:, p]) & np.isfinite(d_ty[:, p]) if d_xt.size else np.array([])
        n = int(both.sum())
        a, b = d_xt[both, p] if n else np.array([]), d_ty[both, p] if n else np.array([])
        rows.append(
            {
                "layer": order[p],
                "next_layer": order[p + 1],
                "n": n,
                "d_xt_mean": a.mean() if n else np.nan,
                "d_ty_mean": b.mean() if n else np.nan,
                "frac_xt": np.mean(a >= -tol) if n else np.nan,
                "frac_ty": np.mean(b >= -tol) if n else np.nan,
            }
        )
    columns = ["layer", "next_layer", "n", "d_xt_mean", "d_ty_mean", "frac_xt", "frac_ty"]
    return pd.DataFrame(rows, columns=columns).astype({"n": np.int64})


# ----------------------------------------------------------------------------- early stopping
def _parse_monitor(monitor: str) -> tuple[str, str]:
    parts = str(monitor).split()
    if len(parts) != 2 or parts[1] not in ("loss", "accuracy"):
        raise InvalidParameterError(
            f"early_stopping: expected monitor '<split> loss' or '<split> accuracy' (e.g. "
            f"'test loss'), got {monitor!r}."
        )
    return parts[0], parts[1]


def stop_index(values: np.ndarray, patience: int, *, maximize: bool, min_delta: float) -> tuple:
    """(stop index, best index, stopped) of early stopping on a per-epoch series."""
    best_i, best = 0, values[0]
    for i in range(1, values.size):
        improved = values[i] > best + min_delta if maximize else values[i] < best - min_delta
        if improved:
            best, best_i = values[i], i
        elif i - best_i >= patience:
            return i, best_i, True
    return values.size - 1, best_i, False


def monitored_series(metrics: Any, monitor: str) -> tuple[pd.DataFrame, str]:
    """Per-epoch mean over runs of the monitored signal: ``(epoch, step, value)``, its name.

    Falls back to the training split (and says so in the name) when the monitored split has no
    rows. ``step`` is the first step at which the epoch's value was recorded.
    """
    frame = metrics_frame(metrics, who="early_stopping")
    if frame is None:
        raise InvalidInputError("early_stopping: expected a metrics table, got None.")
    mon_split, column = _parse_monitor(monitor)
    used = f"{mon_split} {column}"
    rows = frame[(frame["split"] == mon_split) & np.isfinite(frame[column])]
    if rows.empty and mon_split != "train":
        rows = frame[(frame["split"] == "train") & np.isfinite(frame[column])]
        used = f"train {column} (no {mon_split} rows)"
    if rows.empty:
        raise InvalidInputError(
            f"early_stopping: expected finite {column} values of split {mon_split!r} (or 'train') "
            "in the metrics table, got none."
        )
    series = rows.groupby("epoch").agg(step=("step", "min"), value=(column, "mean"))
    return series.reset_index(), used


def stops(
    metrics: Any, patience: Sequence[int], *, monitor: str = "test loss", min_delta: float = 0.0
) -> pd.DataFrame:
    """Where early stopping would end training, one row per patience.

    Training stops at the first epoch ``patience`` epochs after the best one so far (an
    improvement must beat the best by more than ``min_delta``); if that never happens it runs
    to the last epoch (``stopped`` False). Columns ``patience, monitor, stop_epoch, stop_step,
    best_epoch, best_step, stopped, first_step`` (``first_step``: the step of the first epoch
    value, the earliest point at which a per-epoch rule can stop).
    """
    pats = [int(p) for p in patience]
    if not pats or any(p < 1 for p in pats):
        raise InvalidParameterError(
            f"early_stopping: expected patience values >= 1, got {list(patience)!r}."
        )
    series, used = monitored_series(metrics, monitor)
    values = series["value"].to_numpy(float)
    rows = []
    for p in pats:
        maximize = monitor.split()[1] == "accuracy"
        stop, best, stopped = stop_index(values, p, maximize=maximize, min_delta=float(min_delta))
        rows.append(
            {
                "patience": p,
                "monitor": used,
                "stop_epoch": int(series["epoch"].iloc[stop]),
                "stop_step": int(series["step"].iloc[stop]),
                "best_epoch": int(series["epoch"].iloc[best]),
                "best_step": int(series["step"].iloc[best]),
                "stopped": stopped,
                "first_step": int(series["step"].iloc[0]),
            }
        )
    return pd.DataFrame(rows)


def onsets_against_stops(stop_table: pd.DataFrame, trend: pd.DataFrame) -> pd.DataFrame:
    """One row per (patience, layer): the stop against the layer's compression onset.

    ``before_onset`` is True when the stop step is at or before the onset (the peak step),
    None for a layer that does not compress; ``onset_in_first_epoch`` marks an onset earlier
    than the first per-epoch value, which no per-epoch rule can stop before.
    """
    layers = trend[["layer", "peak_step", "compressed"]].rename(columns={})
    out = stop_table.merge(layers, how="cross")
    out["compressed"] = out["compressed"].astype(bool)
    before = out["stop_step"] <= out["peak_step"]
    out["before_onset"] = np.where(out["compressed"], before, None)
    out["onset_in_first_epoch"] = out["compressed"] & (out["peak_step"] < out["first_step"])
    return out


def early_stopping(
    metrics: Any,
    table: Any,
    *,
    patience: Sequence[int] = (1, 3, 5),
    monitor: str = "test loss",
    min_delta: float = 0.0,
    split: str | None = None,
    threshold: float = COMPRESSION_THRESHOLD,
) -> pd.DataFrame:
    """Where early stopping would end training, against the compression onset (Finding 4).

    The monitored signal (``'<split> loss'`` or ``'<split> accuracy'`` of the metrics) is
    averaged over runs per epoch (see :func:`stops`). The compression onset of a layer is its
    I(X;T) peak step from :func:`compression_summary` on ``split`` of the history (default: the
    main split) with ``threshold``; early stopping comes *before the onset* when its stop step is
    at or before the peak step; for layers without compression the answer is None.

    Returns:
        One row per (patience, layer): ``patience, monitor, stop_epoch, stop_step, best_epoch,
        best_step, stopped, first_step, layer, peak_step, compressed, before_onset,
        onset_in_first_epoch``.
    """
    stop_table = stops(metrics, patience, monitor=monitor, min_delta=min_delta)
    comp = compression_summary(table, split=split or main_split(table), threshold=threshold)
    return onsets_against_stops(stop_table, comp)


# ----------------------------------------------------------------------------- train vs test
def compare_splits(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """Two :func:`trend_table` results side by side, per layer measured on both splits.

    Columns ``layer, train_peak_step, train_drop, train_drop_pct, train_compressed,
    test_peak_step, test_drop, test_drop_pct, test_compressed, weaker_on_test`` (True when the
    relative drop on test is smaller than on train).
    """
    keep = ["layer", "peak_step", "drop", "drop_pct", "compressed"]
    both = train[keep].merge(test[keep], on="layer", suffixes=("_tr", "_te"), sort=False)
    out = pd.DataFrame({"layer": both["layer"]})
    for prefix, suffix in (("train", "_tr"), ("test", "_te")):
        for column in keep[1:]:
            out[f"{prefix}_{column}"] = both[column + suffix]
    out["weaker_on_test"] = out["test_drop_pct"] < out["train_drop_pct"]
    return out.astype({"train_compressed": bool, "test_compressed": bool, "weaker_on_test": bool})


def train_vs_test(
    source: Any, *, smooth: int | None = None, threshold: float = COMPRESSION_THRESHOLD
) -> pd.DataFrame:
    """The compression drop per layer on training against test data (Finding 3).

    Runs :func:`compression_summary` on both splits and compares them with
    :func:`compare_splits`. When the history lacks either split, the table has the columns but
    no rows.
    """
    present = splits(source)
    empty = {"peak_step": [], "drop": [], "drop_pct": [], "compressed": [], "layer": []}
    if not ("train" in present and "test" in present):
        return compare_splits(pd.DataFrame(empty), pd.DataFrame(empty))
    tr = compression_summary(source, split="train", smooth=smooth, threshold=threshold)
    te = compression_summary(source, split="test", smooth=smooth, threshold=threshold)
    return compare_splits(tr, te)


__all__ = [
    "COMPRESSION_THRESHOLD",
    "DPI_TOL",
    "DPI_TOLERANCES",
    "compare_splits",
    "compression_summary",
    "default_window",
    "dpi_differences",
    "dpi_table",
    "early_stopping",
    "onsets_against_stops",
    "stops",
    "train_vs_test",
    "trend_table",
]
