"""Per-layer summaries of a history: fitting and compression of any quantity's trajectory, each
tested over runs (a rise between fixed windows; a fall from a peak chosen on another run), the
permutation test against the null floor, the data processing inequality between consecutive
layers, early stopping against the compression onset, and compression on training against test
data, paired by run.

The summaries are those needed to check the findings of Wickstrøm et al., "Information Plane
Analysis of Deep Neural Networks via Matrix-Based Rényi's Entropy and Tensor Kernels"
(arXiv:1909.11396; Entropy 25(6):899, 2023). Each returns a pandas DataFrame; information
quantities are in bits. Sources are as in :mod:`infoplane.analysis.tables`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from infoplane.analysis.tables import (
    ALPHA,
    SATURATION_OF,
    fisher_combined,
    hommel,
    layer_order,
    main_split,
    measured,
    metrics_frame,
    moving_average,
    run_matrix,
    smoothing_window,
    splits,
    t_test,
)
from infoplane.errors import InvalidInputError, InvalidParameterError

#: Tolerance (bits) under which a negative difference still counts as complying with the DPI
#: (round-off); a tolerance of 0 in :data:`DPI_TOLERANCES` means this one.
DPI_TOL = 1e-9
#: Tolerances (bits) at which the DPI is reported.
DPI_TOLERANCES: tuple[float, ...] = (0.0, 0.01, 0.05)
#: Default relative drop (fraction of the peak) above which I(X;T) counts as compressed.
COMPRESSION_THRESHOLD = 0.05
#: A rise of I(T;Y) must exceed this many bits (and pass its test) to count as fitting.
RISE_TOL = 1e-6
#: A layer whose Gram is saturated in more than this fraction of the records a verdict reads
#: is not read under that variant.
SATURATION_LIMIT = 0.5
#: Runs a cross-fitted fall needs (each run's peak is chosen on another run).
CROSS_FIT_RUNS = 3


def check_threshold(threshold: float, who: str) -> float:
    if isinstance(threshold, bool) or not 0.0 <= float(threshold) < 1.0:
        raise InvalidParameterError(f"{who}: expected threshold in [0, 1), got {threshold!r}.")
    return float(threshold)


# ----------------------------------------------------------------------------- trends
def _smoothed(values: np.ndarray, window: int) -> np.ndarray:
    """Each run's centred moving average, NaN where the run has no value."""
    if not values.size:
        return values
    smooth = np.vstack([moving_average(v, window) for v in values])
    return np.where(np.isfinite(values), smooth, np.nan)


def _ends(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each run's value at its first and at its last finite step, and the last step's index."""
    finite = np.isfinite(curves)
    first = np.argmax(finite, axis=1)
    last = curves.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    rows = np.arange(curves.shape[0])
    return curves[rows, first], curves[rows, last], last


def cross_fitted_falls(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(peak index, fall, peak level)`` per run, each run's peak chosen on another run.

    ``curves[r]`` is run r's smoothed trajectory. The peak of run r is the maximum of run
    ``r + 1``'s trajectory (cyclically), over the steps run r has; its fall is its own value
    there minus its value at its last step. No fall is measured at a peak chosen on its own
    data, and for three runs or more any two falls are uncorrelated on a stationary series, so
    a t-test of the mean fall keeps its level. (Choosing on the mean of all the other runs
    shares runs between choices, correlates the falls and fires in 6-9% of stationary
    replicates with 3-5 runs.)
    """
    n_runs = curves.shape[0]
    peaks = np.full(n_runs, -1)
    falls, levels = np.full(n_runs, np.nan), np.full(n_runs, np.nan)
    _, final, _ = _ends(curves)
    for r in range(n_runs):
        chooser = np.where(np.isfinite(curves[r]), curves[(r + 1) % n_runs], np.nan)
        if np.isfinite(chooser).any():
            peaks[r] = int(np.nanargmax(chooser))
            levels[r] = curves[r, peaks[r]]
            falls[r] = levels[r] - final[r]
    return peaks, falls, levels


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if np.isfinite(whole) and whole > 0 else np.nan


def _falls(curves: np.ndarray, mean_curve: np.ndarray, threshold: float) -> dict[str, Any]:
    """The cross-fitted fall over runs (three or more), else the run-mean curve's, untested.

    The test is one-sided over runs on each run's fall minus ``threshold`` times its peak
    level: it claims a fall of at least the threshold, so a stationary series (no fall) fires
    well below 0.05 and a fall of exactly the threshold at 0.05.
    """
    if curves.shape[0] < CROSS_FIT_RUNS:
        peak, last = int(np.nanargmax(mean_curve)), int(np.flatnonzero(np.isfinite(mean_curve))[-1])
        drop, level = float(mean_curve[peak] - mean_curve[last]), float(mean_curve[peak])
        test, p = t_test([]), np.nan
        fracs = np.full(curves.shape[0], np.nan)
    else:
        _, falls, levels = cross_fitted_falls(curves)
        test, level = t_test(falls), float(np.nanmean(levels))
        drop, p = test["mean"], t_test(falls - threshold * levels)["p"]
        with np.errstate(invalid="ignore", divide="ignore"):
            fracs = np.where(levels > 0, 100.0 * falls / levels, np.nan)
    return {
        "peak": level,
        "drop": drop,
        "drop_pct": _pct(drop, level),
        "drop_ci_pct": _pct(test["ci"], level),
        "noise": test["sd"],
        "p_fall": p,
        "fall_pcts": tuple(float(f) for f in fracs),
    }


def _layer_trend(
    values: np.ndarray, flags: np.ndarray | None, window: int, threshold: float
) -> dict[str, Any]:
    curves = _smoothed(values, window)
    curves = curves[np.isfinite(curves).any(axis=1)]
    if not curves.size:
        return {"recorded": False, "n_runs": 0, "saturated": False, "peak_at_start": False}
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_curve = np.nanmean(curves, axis=0)
    first, final, _ = _ends(curves)
    rise = t_test(final - first)
    finite = np.flatnonzero(np.isfinite(mean_curve))
    peak = int(np.nanargmax(mean_curve))
    reach = finite[mean_curve[finite] >= 0.9 * float(np.nanmean(final))]
    out = {
        "recorded": True,
        "n_runs": int(curves.shape[0]),
        "saturated_frac": _saturated_fraction(values, flags),
        "first": float(np.mean(first)),
        "final": float(np.mean(final)),
        "final_ci": t_test(final)["ci"],
        "peak_index": peak,
        "peak_at_start": bool(peak == finite[0] and finite[-1] > finite[0]),
        "rise": rise["mean"],
        "rise_ci": rise["ci"],
        "p_rise": rise["p"],
        "p_change": t_test(final - first, alternative="two-sided")["p"],
        "step_90_index": int(reach[0]) if reach.size else -1,
    }
    out["saturated"] = bool(out["saturated_frac"] > SATURATION_LIMIT)
    out.update(_falls(curves, mean_curve, threshold))
    return out


def _saturated_fraction(values: np.ndarray, flags: np.ndarray | None) -> float:
    """The fraction of a layer's finite records whose Gram is saturated (unknown flags: not)."""
    if flags is None:
        return 0.0
    read = np.isfinite(values)
    return float(np.nan_to_num(flags[read], nan=0.0).mean()) if read.any() else 0.0


def trend_table(
    sel: pd.DataFrame, quantity: str, *, window: int, threshold: float = COMPRESSION_THRESHOLD
) -> pd.DataFrame:
    """Fitting and compression of one quantity per layer, each tested over runs.

    ``sel`` holds the measured records of one split (:func:`~infoplane.analysis.tables.measured`);
    every run's trajectory is smoothed with a centred window of ``window`` steps, and the first
    and final values are each run's smoothed value at its first and last measured step.

    * Rise (fitting): the mean over runs of final minus first, one-sided t-test over runs
      (``p_rise``; ``p_change`` is two-sided). A layer *rises* when ``p_rise`` < 0.05 and the
      rise exceeds :data:`RISE_TOL` bits. Fixed windows: nothing is chosen on the data tested.
    * Fall (compression, three runs or more): each run's fall from a peak chosen on another run
      (:func:`cross_fitted_falls`) to its final value; one-sided t-test over runs that the fall
      exceeds ``threshold`` times the run's peak level (``p_fall``: the effect size is part of
      the null hypothesis), Hommel's adjustment over the layers (``p_fall_adj``). A layer
      *compresses* when ``p_fall_adj`` < 0.05 and the mean fall is at least ``threshold`` of the
      mean peak level. With fewer runs the fall is the run-mean curve's, untested (``p_fall``
      NaN), and no layer compresses.
    * Saturation: a layer whose Gram (the flag of :data:`~infoplane.analysis.tables.SATURATION_OF`)
      is saturated in more than half of the records read is ``saturated``: it neither rises nor
      compresses.

    Returns:
        One row per layer: ``layer, layer_index, n_runs, n_steps, smooth, first_step,
        last_step, recorded, saturated_frac, saturated, first, peak, peak_step, final,
        final_ci, drop, drop_pct, drop_ci_pct, noise, p_fall, p_fall_adj, compressed,
        peak_at_start, rise, rise_ci, p_rise, p_change, rose, step_90, fall_pcts, runs``.
        ``peak_step`` is the peak of the run-mean curve (the compression onset); ``peak`` the
        mean level at the cross-fitted peaks; ``noise`` the run-to-run std of the falls;
        ``fall_pcts`` each run's fall in % of its peak level, for the runs of ``runs``.
    """
    flag = SATURATION_OF.get(quantity)
    by_layer = dict(tuple(sel.groupby("layer", sort=False))) if len(sel) else {}
    rows_out = []
    for name in layer_order(sel) if len(sel) else []:
        layer = by_layer[name]
        steps, values = run_matrix(layer, name, quantity)
        seen = np.isfinite(values).any(axis=0)
        flags = run_matrix(layer, name, flag)[1] if flag in sel.columns else None
        row = {
            "layer": name,
            "layer_index": int(layer["layer_index"].iloc[0]),
            "n_steps": len(steps),
            "smooth": int(window),
            "first_step": int(steps[np.argmax(seen)]) if seen.any() else int(steps[0]),
            "last_step": int(steps[-1]),
            "runs": tuple(int(r) for r in np.sort(layer["run"].unique())),
        }
        row.update(_layer_trend(values, flags, int(window), threshold))
        for index, column in (("peak_index", "peak_step"), ("step_90_index", "step_90")):
            at = row.pop(index, -1)
            row[column] = int(steps[at]) if at >= 0 else -1
        rows_out.append(row)
    return _decide(pd.DataFrame(rows_out, columns=_TREND_COLUMNS), threshold)


def _decide(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The per-layer decisions: Hommel over the layers read, the effect size, saturation."""
    read = table["recorded"].fillna(False).astype(bool) & ~table["saturated"].fillna(False)
    read = read.astype(bool)
    table["saturated"] = table["saturated"].fillna(False).astype(bool)
    table["recorded"] = table["recorded"].fillna(False).astype(bool)
    table["peak_at_start"] = table["peak_at_start"].fillna(False).astype(bool)
    table["p_fall_adj"] = hommel(np.where(read, table["p_fall"].to_numpy(float), np.nan))
    big = table["drop_pct"].to_numpy(float) >= 100.0 * threshold
    with np.errstate(invalid="ignore"):
        table["compressed"] = read & (table["p_fall_adj"] < ALPHA) & big & (table["drop"] > 0)
        table["rose"] = read & (table["p_rise"] < ALPHA) & (table["rise"] > RISE_TOL)
    return table


_TREND_COLUMNS = [
    "layer",
    "layer_index",
    "n_runs",
    "n_steps",
    "smooth",
    "first_step",
    "last_step",
    "recorded",
    "saturated_frac",
    "saturated",
    "first",
    "peak",
    "peak_step",
    "final",
    "final_ci",
    "drop",
    "drop_pct",
    "drop_ci_pct",
    "noise",
    "p_fall",
    "p_fall_adj",
    "compressed",
    "peak_at_start",
    "rise",
    "rise_ci",
    "p_rise",
    "p_change",
    "rose",
    "step_90",
    "fall_pcts",
    "runs",
]


def default_window(frame: pd.DataFrame) -> int:
    """The smoothing window for the curves of ``frame``: :func:`smoothing_window` of its steps."""
    counts = frame.groupby("layer")["step"].nunique() if len(frame) else pd.Series(dtype=int)
    return smoothing_window(int(counts.max()) if len(counts) else 0)


def floor_table(sel: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """Whether each layer's final estimate is above its null floor: a permutation test.

    ``quantity`` is ``"i_ty"`` or ``"i_xt"``. For every run, the permutation p-value
    (``i_ty_p``, ``i_xt_p``: the rank of the estimate among the B permuted draws) of the last
    step where it was recorded; the runs' p-values are combined with Fisher's method
    (:func:`~infoplane.analysis.tables.fisher_combined`). A layer is ``informative`` when the
    combined p-value is at most 0.05 (a permutation p-value is at most alpha with probability
    at most alpha under independence, so one run with B = 19 draws can reach it) and its Gram
    is not saturated in more than half of those final steps (``saturated``).

    Returns:
        One row per layer: ``layer, n_runs, p, p_min, saturated_frac, saturated, margin,
        informative`` (``margin``: the mean over runs of the final estimate minus the mean of
        the permuted draws, bits); ``p`` is NaN where no p-value was recorded.
    """
    column, floor = f"{quantity}_p", f"{quantity}_null"
    finite = sel.loc[np.isfinite(sel[column])].sort_values("step", kind="stable")
    finals = dict(tuple(finite.groupby(["layer", "run"]).tail(1).groupby("layer", sort=False)))
    rows = []
    for name in layer_order(sel) if len(sel) else []:
        last = finals.get(name, finite.iloc[:0])
        p = last[column].to_numpy(float)
        flags = np.nan_to_num(last["saturated"].to_numpy(float), nan=0.0)
        frac = float(flags.mean()) if flags.size else 0.0
        combined = fisher_combined(p)
        rows.append(
            {
                "layer": name,
                "n_runs": int(p.size),
                "p": combined,
                "p_min": float(p.min()) if p.size else np.nan,
                "saturated_frac": frac,
                "saturated": frac > SATURATION_LIMIT,
                "margin": float((last[quantity] - last[floor]).mean()) if p.size else np.nan,
                "informative": bool(combined <= ALPHA and frac <= SATURATION_LIMIT),
            }
        )
    columns = ["layer", "n_runs", "p", "p_min", "saturated_frac", "saturated", "margin"]
    return pd.DataFrame(rows, columns=[*columns, "informative"])


def compression_summary(
    source: Any,
    *,
    split: str,
    smooth: int | None = None,
    threshold: float = COMPRESSION_THRESHOLD,
) -> pd.DataFrame:
    """Fitting and compression per layer, tested over runs (:func:`trend_table`).

    I(X;T) and I(T;Y) are summarised by :func:`trend_table` (``smooth`` steps; default: an odd
    window of about 2% of the measured steps, 1 for fewer than 100 steps).

    Returns:
        One row per layer: ``layer, layer_index, n_runs, n_steps, smooth, first_step,
        last_step, peak_step, i_xt_first, i_xt_peak, i_xt_final, drop, drop_pct, drop_ci_pct,
        noise, p_fall, p_fall_adj, compressed, peak_at_start, saturated`` (I(X;T)),
        ``i_ty_first, i_ty_final, rise, p_rise, rose, step_90`` (I(T;Y); ``step_90`` the first
        step where the run-mean curve reaches 90% of its final value) and ``h_x, h_y`` (mean
        S(X), S(Y) of the batches).
    """
    threshold = check_threshold(threshold, "compression_summary")
    sel = measured(source, split, who="compression_summary")
    window = default_window(sel) if smooth is None else smooth
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise InvalidParameterError(
            f"compression_summary: expected smooth an integer >= 1, got {smooth!r}."
        )
    xt = trend_table(sel, "i_xt", window=int(window), threshold=threshold)
    ty = trend_table(sel, "i_ty", window=int(window), threshold=threshold)
    out = xt[["layer", "layer_index", "n_runs", "n_steps", "smooth", "first_step", "last_step"]]
    out = out.assign(peak_step=xt["peak_step"], i_xt_first=xt["first"], i_xt_peak=xt["peak"])
    out = out.assign(i_xt_final=xt["final"])
    for column in ("drop", "drop_pct", "drop_ci_pct", "noise", "p_fall", "p_fall_adj"):
        out[column] = xt[column]
    for column in ("compressed", "peak_at_start", "saturated"):
        out[column] = xt[column].astype(bool)
    out = out.assign(i_ty_first=ty["first"], i_ty_final=ty["final"], rise=ty["rise"])
    out = out.assign(p_rise=ty["p_rise"], rose=ty["rose"].astype(bool), step_90=ty["step_90"])
    means = sel.groupby("layer", sort=False)[["h_x", "h_y"]].mean()
    out["h_x"] = out["layer"].map(means["h_x"])
    out["h_y"] = out["layer"].map(means["h_y"])
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
def _run_falls(row: pd.Series) -> dict[int, float]:
    """``{run: fall in % of its peak}`` of one :func:`trend_table` row (finite ones only)."""
    runs, fracs = row.get("runs"), row.get("fall_pcts")
    if not isinstance(runs, tuple) or not isinstance(fracs, tuple) or len(runs) != len(fracs):
        return {}
    return {r: f for r, f in zip(runs, fracs, strict=True) if np.isfinite(f)}


def paired_differences(train: pd.DataFrame, test: pd.DataFrame, layers: Sequence[str]) -> dict:
    """Train minus test compression, paired by run: each run's falls (% of its peak) averaged
    over ``layers`` on each split, then the t interval of the mean difference over runs.

    Returns :func:`~infoplane.analysis.tables.t_test` (two-sided) of the per-run differences,
    with ``train`` and ``test`` (the mean falls over runs, %) and ``runs`` (the paired runs).
    """
    per_run: dict[int, list[tuple[float, float]]] = {}
    for name in layers:
        tr = _run_falls(train.loc[train["layer"] == name].iloc[0])
        te = _run_falls(test.loc[test["layer"] == name].iloc[0])
        for run in sorted(set(tr) & set(te)):
            per_run.setdefault(run, []).append((tr[run], te[run]))
    pairs = np.array([np.mean(v, axis=0) for v in per_run.values()]).reshape(-1, 2)
    out: dict[str, Any] = t_test(pairs[:, 0] - pairs[:, 1], alternative="two-sided")
    out["train"] = float(pairs[:, 0].mean()) if len(pairs) else np.nan
    out["test"] = float(pairs[:, 1].mean()) if len(pairs) else np.nan
    out["runs"] = sorted(per_run)
    return out


def compare_splits(train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """Two :func:`trend_table` results side by side, per layer measured on both splits.

    Columns ``layer, train_peak_step, train_drop, train_drop_pct, train_compressed,
    test_peak_step, test_drop, test_drop_pct, test_compressed, diff_pct, diff_ci_pct, n_pairs,
    weaker_on_test``: ``diff_pct`` is the mean over runs of the run's train fall minus its test
    fall (% of each peak), ``diff_ci_pct`` the half width of its paired 95% interval over the
    ``n_pairs`` runs measured on both splits; ``weaker_on_test`` is True when the interval lies
    above 0 (at least two runs and a cross-fitted fall, i.e. three runs, on both splits).
    """
    keep = ["layer", "peak_step", "drop", "drop_pct", "compressed"]
    both = train[keep].merge(test[keep], on="layer", suffixes=("_tr", "_te"), sort=False)
    out = pd.DataFrame({"layer": both["layer"]})
    for prefix, suffix in (("train", "_tr"), ("test", "_te")):
        for column in keep[1:]:
            out[f"{prefix}_{column}"] = both[column + suffix]
    paired = [paired_differences(train, test, [name]) for name in out["layer"]]
    out["diff_pct"] = [p["mean"] for p in paired]
    out["diff_ci_pct"] = [p["ci"] for p in paired]
    out["n_pairs"] = np.array([p["n"] for p in paired], dtype=np.int64)
    with np.errstate(invalid="ignore"):
        out["weaker_on_test"] = (out["diff_pct"] - out["diff_ci_pct"]) > 0
    return out.astype({"train_compressed": bool, "test_compressed": bool, "weaker_on_test": bool})


def train_vs_test(
    source: Any, *, smooth: int | None = None, threshold: float = COMPRESSION_THRESHOLD
) -> pd.DataFrame:
    """The compression per layer on training against test data (Finding 3).

    Runs :func:`trend_table` of I(X;T) on both splits (``smooth``: as in
    :func:`compression_summary`) and compares them with :func:`compare_splits`. When the history
    lacks either split, the table has the columns but no rows.
    """
    threshold = check_threshold(threshold, "train_vs_test")
    present = splits(source)
    if not ("train" in present and "test" in present):
        empty = pd.DataFrame(columns=_TREND_COLUMNS)
        return compare_splits(empty, empty)
    trends = []
    for split in ("train", "test"):
        sel = measured(source, split, who="train_vs_test")
        window = default_window(sel) if smooth is None else int(smooth)
        trends.append(trend_table(sel, "i_xt", window=window, threshold=threshold))
    return compare_splits(*trends)


__all__ = [
    "COMPRESSION_THRESHOLD",
    "CROSS_FIT_RUNS",
    "DPI_TOL",
    "DPI_TOLERANCES",
    "SATURATION_LIMIT",
    "compare_splits",
    "compression_summary",
    "cross_fitted_falls",
    "default_window",
    "dpi_differences",
    "dpi_table",
    "early_stopping",
    "floor_table",
    "onsets_against_stops",
    "paired_differences",
    "stops",
    "train_vs_test",
    "trend_table",
]
