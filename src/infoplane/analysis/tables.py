"""Tables of an information-plane history, on pandas: the one home of the per-step mean, spread
and 95% confidence interval over runs, of the tests over runs behind every verdict (Student's t,
Fisher's combination of permutation p-values, Hommel's adjustment over layers), of saturation,
of the smoothing window and of the main split.

Every function accepts a *source*: a :class:`~infoplane.history.History`, a pandas DataFrame with
the columns of :data:`infoplane.schema.FIELDS`, a table (``dict`` of numpy arrays, e.g. from
:func:`infoplane.io.read_table`), or the path of a history file or of a run directory. Columns of
controls and standard errors that an older history lacks are added as missing values (NaN), so
every function works without them. All information quantities are in bits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.history import History
from infoplane.io import read_table
from infoplane.schema import (
    CONTROL_QUANTITIES,
    FIELDS,
    FIXED_EXTRA_QUANTITIES,
    INT_FIELDS,
    KEY,
    METRIC_FIELDS,
    NULL_Q95_QUANTITIES,
    NULL_QUANTITIES,
    P_VALUE_QUANTITIES,
    SATURATION_QUANTITIES,
    SE_QUANTITIES,
    STATUS_OK,
    STR_FIELDS,
    RunDir,
)

#: Columns a history must have; the others load as missing values.
REQUIRED: tuple[str, ...] = (*KEY, "layer_index", "i_xt", "i_ty")
#: Float columns of the null distribution, the fixed control and saturation: read when a history
#: has them (NaN otherwise), whether or not the record format lists them.
_EXTRAS = (*NULL_Q95_QUANTITIES, *P_VALUE_QUANTITIES, *FIXED_EXTRA_QUANTITIES)
RECORD_EXTRAS: tuple[str, ...] = tuple(
    q for q in (*_EXTRAS, *SATURATION_QUANTITIES) if q not in FIELDS
)
#: Every column of :func:`history_frame`, in order.
COLUMNS: tuple[str, ...] = (*FIELDS, *RECORD_EXTRAS)
#: The saturation flag and the entropy it is detected from, per Gram: the estimate's (read by
#: the adaptive widths and the null floor, which shares them) and the fixed-width control's.
SATURATION_SOURCES: dict[str, str] = {"saturated": "h_t", "saturated_fixed": "h_t_fixed"}
#: The saturation flag that applies to each series a verdict reads.
SATURATION_OF: dict[str, str] = {
    "i_xt": "saturated",
    "i_ty": "saturated",
    "i_xt_margin": "saturated",
    "i_ty_margin": "saturated",
    "i_xt_fixed": "saturated_fixed",
    "i_ty_fixed": "saturated_fixed",
}
#: Where no flag was recorded, S(T) within this fraction of log2 N (or of 0 bits) is saturated.
SATURATION_TOL = 0.01
#: Level of every test behind a verdict.
ALPHA = 0.05
#: Per-record estimate above its null floor (bits), derived before averaging over runs, so the
#: confidence interval is that of the difference.
MARGINS: dict[str, tuple[str, str]] = {
    f"{q}_margin": (q, null) for q, null in zip(("i_xt", "i_ty"), NULL_QUANTITIES, strict=True)
}
#: Quantities averaged over runs by :func:`aggregate`, each with ``_mean``, ``_std``, ``_ci``.
AVERAGED: tuple[str, ...] = ("i_xt", "i_ty", "h_t", "sigma", *CONTROL_QUANTITIES, *MARGINS)
#: Quantities only averaged (``_mean``): entropies of X and Y, batch size, probe standard errors.
MEANS_ONLY: tuple[str, ...] = ("h_x", "h_y", "n", *SE_QUANTITIES)
#: The probe standard error that stands for the spread of a quantity measured in one run.
SE_OF: dict[str, str] = {
    "i_xt": "i_xt_se",
    "i_ty": "i_ty_se",
    "i_xt_margin": "i_xt_se",
    "i_ty_margin": "i_ty_se",
}
#: Coverage of the confidence intervals.
CONFIDENCE = 0.95
#: The 97.5% quantile of the standard normal: a 95% interval of a mean from its standard error.
Z_95 = 1.959963984540054
#: Split order in tables and figures: these first, the others alphabetically.
SPLIT_ORDER: tuple[str, ...] = ("train", "test")


# ----------------------------------------------------------------------------- sources
def history_frame(source: Any, *, who: str = "history_frame") -> pd.DataFrame:
    """The records of ``source`` as a DataFrame with every column of :data:`FIELDS`, typed."""
    if isinstance(source, History):
        frame = source.to_dataframe()
    elif isinstance(source, pd.DataFrame):
        frame = source.copy()
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        frame = History.load(RunDir(path).history if path.is_dir() else path).to_dataframe()
    elif isinstance(source, Mapping):
        frame = pd.DataFrame({k: np.asarray(v) for k, v in source.items()})
    else:
        raise InvalidInputError(
            f"{who}: expected a History, a pandas DataFrame, a table (dict of arrays) or a path, "
            f"got {type(source).__name__}. Load the history with infoplane.history.History.load."
        )
    _require(
        frame, REQUIRED, who, "Save the history with History.save and load it with History.load."
    )
    return _typed(frame)


def _require(frame: pd.DataFrame, columns: Sequence[str], who: str, fix: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"{who}: expected columns {list(columns)}, missing {missing}. {fix}"
        )


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for f in COLUMNS:
        values = frame[f].to_numpy() if f in frame.columns else None
        if f in STR_FIELDS:
            default = STATUS_OK if f == "status" else ""
            out[f] = default if values is None else pd.Series(values).astype(str).to_numpy()
        elif f in INT_FIELDS and f != "n":
            out[f] = np.asarray(values, dtype=np.int64)
        else:  # the float quantities, the extras and n
            out[f] = np.nan if values is None else pd.to_numeric(pd.Series(values)).to_numpy(float)
    out.attrs["config"] = dict(frame.attrs.get("config") or {})
    return out


def metrics_frame(source: Any, *, who: str = "metrics_frame") -> pd.DataFrame | None:
    """The training metrics of ``source`` (DataFrame, table, CSV path or run directory), or None.

    None comes back for ``source=None`` and for a run directory without metrics.csv.
    """
    if source is None:
        return None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        path = RunDir(path).metrics if path.is_dir() else path
        if not path.is_file():
            return None
        source = read_table(path)
    frame = source.copy() if isinstance(source, pd.DataFrame) else None
    if frame is None and isinstance(source, Mapping):
        frame = pd.DataFrame({k: np.asarray(v) for k, v in source.items()})
    if frame is None:
        raise InvalidInputError(
            f"{who}: expected a metrics table, DataFrame or path, got {type(source).__name__}."
        )
    _require(frame, METRIC_FIELDS, who, "Read metrics.csv with infoplane.io.read_table.")
    frame["split"] = frame["split"].astype(str)
    for column in ("loss", "accuracy"):
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    return frame


# ----------------------------------------------------------------------------- choices
def splits(source: Any) -> list[str]:
    """The splits present, 'train' first, then 'test', then the others alphabetically."""
    present = (
        set(pd.Series(np.asarray(source["split"])).astype(str)) if "split" in source else set()
    )
    rank = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return sorted(present, key=lambda s: (rank.get(s, len(rank)), s))


def main_split(source: Any) -> str:
    """The split the findings are checked on: 'train' when present, else the first split."""
    present = splits(source)
    if not present:
        raise InvalidInputError("main_split: expected history rows, got an empty table.")
    return present[0]  # SPLIT_ORDER puts 'train' first


def smoothing_window(n_steps: int) -> int:
    """The light smoothing of curves with ``n_steps`` points: an odd window of ~2% of them."""
    w = max(1, min(51, int(n_steps) // 50))
    return w if w % 2 == 1 else w + 1


def layer_order(source: Any) -> list[str]:
    """Layer names in forward order (by ``layer_index``, then by first appearance)."""
    if "layer" not in source or "layer_index" not in source:
        raise InvalidInputError("layer_order: expected columns ['layer', 'layer_index'].")
    frame = pd.DataFrame(
        {
            "layer": pd.Series(np.asarray(source["layer"])).astype(str),
            "layer_index": np.asarray(source["layer_index"], dtype=np.int64),
        }
    )
    first = frame.drop_duplicates("layer").reset_index(drop=True)
    first["seen"] = np.arange(len(first))
    return first.sort_values(["layer_index", "seen"], kind="stable")["layer"].tolist()


def moving_average(values: Any, window: int, *, mode: str = "centred") -> np.ndarray:
    """Moving average of a 1-D series over ``window`` consecutive entries, ignoring NaN.

    ``mode="centred"`` averages entries ``i - (window-1)//2 .. i + window//2``; ``"trailing"``
    averages ``i - window + 1 .. i``. The window shrinks at the ends (no padding), so the output
    has the input's length and a constant series is returned unchanged.
    """
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise InvalidParameterError(
            f"moving_average: expected window an integer >= 1, got {window!r}."
        )
    if mode not in ("centred", "trailing"):
        raise InvalidParameterError(
            f"moving_average: expected mode 'centred' or 'trailing', got {mode!r}."
        )
    series = pd.Series(np.asarray(values, dtype=np.float64))
    window = int(window)
    if window == 1 or series.empty:
        return series.to_numpy(copy=True)
    lead = window // 2 if mode == "centred" else 0
    padded = pd.concat([series, pd.Series(np.full(lead, np.nan))], ignore_index=True)
    trailing = padded.rolling(window, min_periods=1).mean()
    return trailing.shift(-lead).to_numpy()[: series.size]


def t_quantile(df: Any) -> np.ndarray:
    """The two-sided 95% quantile of Student's t with ``df`` degrees of freedom (NaN for df < 1)."""
    from scipy.stats import t

    df = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(df >= 1, t.ppf(0.5 + CONFIDENCE / 2, np.maximum(df, 1)), np.nan)


# ----------------------------------------------------------------------------- selection
def measured(source: Any, split: str, *, who: str = "measured") -> pd.DataFrame:
    """The measured ('ok', finite) records of one split, with the :data:`MARGINS` columns."""
    frame = history_frame(source, who=who)
    present = splits(frame)
    if split not in present:
        raise InvalidParameterError(
            f"{who}: expected split in {present}, got {split!r}. Pick a split the history holds."
        )
    keep = (
        (frame["split"] == split)
        & (frame["status"] == STATUS_OK)
        & np.isfinite(frame["i_xt"])
        & np.isfinite(frame["i_ty"])
    )
    sel = frame.loc[keep].reset_index(drop=True)
    for name, (estimate, floor) in MARGINS.items():
        sel[name] = sel[estimate] - sel[floor]
    for flag, entropy in SATURATION_SOURCES.items():
        missing = ~np.isfinite(sel[flag].to_numpy(float))
        detected = saturated_entropy(sel[entropy], sel["n"])
        sel[flag] = np.where(missing, detected, sel[flag].to_numpy(float))
    return sel


def saturated_entropy(h_t: Any, n: Any) -> np.ndarray:
    """1.0 where S(T) is within :data:`SATURATION_TOL` of log2 N or of 0 bits, else 0.0.

    NaN where S(T) or N is unknown. This is how saturation is detected in a history that
    recorded no saturation flags (the tracker's flags also test the Gram itself).
    """
    h_t, n = np.asarray(h_t, dtype=np.float64), np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        top = np.log2(np.where(n > 1, n, np.nan))
        hit = (h_t >= (1 - SATURATION_TOL) * top) | (h_t <= SATURATION_TOL * top)
    return np.where(np.isfinite(h_t) & np.isfinite(top), hit.astype(np.float64), np.nan)


def recorded(frame: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` holds any finite value (a control or SE that was measured)."""
    return column in frame.columns and bool(np.isfinite(frame[column].to_numpy(float)).any())


def run_matrix(sel: pd.DataFrame, layer: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of one layer: ``values[r, s]`` is run r's ``column`` at ``steps[s]``.

    Runs in increasing order, steps those the layer was measured at in any run (NaN where a
    run has no finite value there).
    """
    rows = sel[sel["layer"] == layer]
    wide = rows.groupby(["run", "step"])[column].mean().unstack("step").sort_index()
    return wide.columns.to_numpy(), wide.to_numpy(dtype=np.float64)


# ----------------------------------------------------------------------------- tests over runs
def t_test(values: Any, *, alternative: str = "greater") -> dict[str, float]:
    """Student's t-test of the mean of ``values`` (one per run) against 0.

    ``alternative`` is ``"greater"`` (one-sided, mean > 0) or ``"two-sided"``. Returns ``n``
    (finite values), ``mean``, ``sd`` (ddof = 1), ``ci`` (half width of the two-sided 95%
    interval of the mean) and ``p``; ``sd``, ``ci`` and ``p`` are NaN below two values. Values
    that agree to round-off (sd <= 1e-12 |mean|) have p = 0 when the mean is on the tested
    side, else 1.
    """
    from scipy.stats import t as student

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    out = {"n": int(v.size), "mean": float(v.mean()) if v.size else np.nan}
    out.update(sd=np.nan, ci=np.nan, p=np.nan)
    if v.size < 2:
        return out
    mean, sd = out["mean"], float(v.std(ddof=1))
    out.update(sd=sd, ci=float(t_quantile(v.size - 1) * sd / np.sqrt(v.size)))
    side = mean > 0 if alternative == "greater" else mean != 0
    if sd <= 1e-12 * abs(mean):
        out["p"] = 0.0 if side else 1.0
        return out
    stat = mean / (sd / np.sqrt(v.size))
    tail = student.sf(stat if alternative == "greater" else abs(stat), v.size - 1)
    out["p"] = float(tail if alternative == "greater" else min(1.0, 2 * tail))
    return out


def fisher_combined(p_values: Any) -> float:
    """Fisher's combination of independent p-values: P(chi2 with 2k df >= -2 sum log p).

    Valid for independent tests (conservative for the discrete permutation p-values); NaN when
    no finite p-value is given. One p-value is returned unchanged.
    """
    from scipy.stats import chi2

    p = np.asarray(p_values, dtype=np.float64)
    p = np.clip(p[np.isfinite(p)], np.finfo(np.float64).tiny, 1.0)
    if p.size <= 1:
        return float(p[0]) if p.size else np.nan
    return float(chi2.sf(-2.0 * np.log(p).sum(), 2 * p.size))


def hommel(p_values: Any) -> np.ndarray:
    """Hommel's adjusted p-values: the closed test of Simes' global tests (NaN stays NaN).

    Rejecting where the adjusted value is below alpha controls the chance of any false
    rejection at alpha for independent or positively dependent tests (layers of one network),
    and rejects at least one hypothesis exactly when Simes' global test does.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    s, n = np.sort(p[ok]), int(ok.sum())
    if n == 0:
        return out
    adjusted = np.full(n, np.min(n * s / np.arange(1, n + 1)))
    q = adjusted.copy()
    for m in range(n - 1, 1, -1):
        head = np.arange(n - m + 1)
        q1 = np.min(m * s[n - m + 1 :] / np.arange(2, m + 1))
        q[head] = np.minimum(m * s[head], q1)
        q[n - m + 1 :] = q[n - m]
        adjusted = np.maximum(adjusted, q)
    adjusted = np.maximum(adjusted, s)
    out[np.flatnonzero(ok)[np.argsort(p[ok], kind="stable")]] = adjusted
    return out


# ----------------------------------------------------------------------------- aggregate
def run_summary(frame: pd.DataFrame, by: list[str], columns: Sequence[str]) -> pd.DataFrame:
    """Mean, spread and 95% CI over the rows (runs) of each group of ``frame`` grouped ``by``.

    For every column ``c``: ``c_mean``, ``c_std`` (sample std, ddof = 1; NaN for one row) and
    ``c_ci`` (half width of the t-based 95% confidence interval of the mean, ``t(0.975, k-1)
    * std / sqrt(k)`` over the k finite values; NaN for one value); plus ``n_runs`` (rows per
    group). NaN values are left out of each column's statistics.
    """
    groups = frame.groupby(by, sort=True)
    cols = list(columns)
    mean, std, count = groups[cols].mean(), groups[cols].std(ddof=1), groups[cols].count()
    half = t_quantile(count - 1) * std / np.sqrt(count)
    out = mean.add_suffix("_mean").join(std.add_suffix("_std")).join(half.add_suffix("_ci"))
    out["n_runs"] = groups.size()
    return out


def aggregate(source: Any, *, split: str, smooth: int = 1, mode: str = "centred") -> pd.DataFrame:
    """Mean, spread and 95% confidence interval over runs per (layer, step).

    Args:
        source: a history (see the module docstring).
        split: a split the history holds (``'train'``, ``'test'``, ...).
        smooth: window of a moving average over steps, applied per layer to every ``_mean``,
            ``_std`` and ``_ci`` column after averaging over runs (1 = none).
        mode: ``'centred'`` or ``'trailing'`` moving average (see :func:`moving_average`).

    Returns:
        One row per (layer, step), in layer then step order, with ``layer, layer_index, step,
        epoch, n_runs``; for every ``q`` of :data:`AVERAGED`: ``q_mean``, ``q_std`` (sample std
        over runs, NaN with one run: a single run has no run-to-run spread) and ``q_ci`` (half
        width of the t-based 95% interval of the mean over runs; with one run, 1.96 probe
        standard errors where :data:`SE_OF` has them recorded, else NaN); and ``h_x_mean,
        h_y_mean, n_mean, i_xt_se_mean, i_ty_se_mean``. Skipped records are ignored; steps where
        every run was skipped have no row.
    """
    if isinstance(smooth, bool) or int(smooth) != smooth or smooth < 1:
        raise InvalidParameterError(f"aggregate: expected smooth an integer >= 1, got {smooth!r}.")
    sel = measured(source, split, who="aggregate")
    order = layer_order(sel)
    sel["rank"] = sel["layer"].map({name: i for i, name in enumerate(order)})
    groups = sel.groupby(["rank", "step"], sort=True)
    out = groups[["layer", "layer_index", "epoch"]].first()
    out = out.join(run_summary(sel, ["rank", "step"], AVERAGED))
    out = out.join(groups[list(MEANS_ONLY)].mean().add_suffix("_mean"))
    single = out["n_runs"] == 1
    for q, se in SE_OF.items():
        out.loc[single, f"{q}_ci"] = Z_95 * out.loc[single, f"{se}_mean"]
    out = out.reset_index().drop(columns="rank")
    if smooth > 1:
        smoothed = [c for c in out.columns if c.endswith(("_mean", "_std", "_ci"))]
        by_layer = out.groupby("layer", sort=False)[smoothed]
        out[smoothed] = by_layer.transform(lambda s: moving_average(s, int(smooth), mode=mode))
    return out


__all__ = [
    "ALPHA",
    "AVERAGED",
    "COLUMNS",
    "CONFIDENCE",
    "MARGINS",
    "SATURATION_OF",
    "SATURATION_TOL",
    "aggregate",
    "fisher_combined",
    "history_frame",
    "hommel",
    "layer_order",
    "main_split",
    "measured",
    "metrics_frame",
    "moving_average",
    "recorded",
    "run_matrix",
    "run_summary",
    "saturated_entropy",
    "smoothing_window",
    "splits",
    "t_quantile",
    "t_test",
]
