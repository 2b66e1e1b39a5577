"""Summaries of an information-plane history: averages over runs, the data processing inequality,
fitting and compression, early stopping, train against test, and the paper's findings in words.

Every function here is pure and works on tables: a table is ``dict[str, numpy.ndarray]`` with one
array per column, as returned by :func:`infoplane.history.read_table` or
:meth:`infoplane.history.History.columns`. A history table has the columns of
:data:`infoplane.history.FIELDS`; a metrics table has ``run, split, epoch, step, loss, accuracy``.
All information quantities are in bits.

The findings checked by :func:`findings` are those of Wickstrøm et al., "Information Plane
Analysis of Deep Neural Networks via Matrix-Based Rényi's Entropy and Tensor Kernels"
(arXiv:1909.11396; Entropy 25(6):899, 2023): fitting, compression on training data, weaker
compression on test data, early stopping before compression, the data processing inequality, and a
non-degenerate estimator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from infoplane.errors import InvalidInputError, InvalidParameterError

Table = dict[str, np.ndarray]

#: The quantities averaged over runs by :func:`aggregate`.
QUANTITIES: tuple[str, ...] = ("i_xt", "i_ty", "h_t", "sigma")
#: Tolerance (bits) under which a negative difference still counts as complying with the DPI.
DPI_TOL = 1e-9
#: Default relative drop (fraction of the peak) above which I(X;T) counts as compressed.
COMPRESSION_THRESHOLD = 0.05

_HISTORY_COLUMNS = ("run", "split", "epoch", "step", "layer", "layer_index", "i_xt", "i_ty")
_METRICS_COLUMNS = ("run", "split", "epoch", "step", "loss", "accuracy")


# ----------------------------------------------------------------------------- helpers
def _check_columns(table: Mapping[str, np.ndarray], columns: Sequence[str], who: str) -> None:
    if not isinstance(table, Mapping):
        raise InvalidInputError(
            f"{who}: expected a table (dict of numpy arrays), got {type(table).__name__}."
        )
    missing = [c for c in columns if c not in table]
    if missing:
        raise InvalidInputError(
            f"{who}: expected columns {list(columns)}, missing {missing}. Load the file with "
            "infoplane.history.read_table."
        )


def _strings(values: np.ndarray) -> np.ndarray:
    """Text columns as strings (read_table parses an all-numeric column such as '0','2' as ints)."""
    values = np.asarray(values)
    return values if values.dtype.kind == "U" else values.astype(str)


def _group(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Group rows by the values of integer ``columns``.

    Returns ``(inverse, first, keys)``: the group of every row (groups in lexicographic order of
    the keys), the first row of every group, and the key columns of the groups.
    """
    codes, uniques = [], []
    for col in columns:
        u, inv = np.unique(np.asarray(col), return_inverse=True)
        uniques.append(u)
        codes.append(inv.reshape(-1))
    if not codes or codes[0].size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), [u[:0] for u in uniques]
    flat = np.ravel_multi_index(codes, [max(u.size, 1) for u in uniques])
    _, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    keys = [u[c[first]] for u, c in zip(uniques, codes, strict=True)]
    return inverse.reshape(-1), first, keys


def _floats(table: Mapping[str, np.ndarray], name: str, n: int) -> np.ndarray:
    if name not in table:
        return np.full(n, np.nan)
    return np.asarray(table[name], dtype=np.float64)


def splits(table: Mapping[str, np.ndarray]) -> list[str]:
    """The splits present in a history or metrics table, 'train' first, then 'test', then others."""
    present = set(np.unique(_strings(table["split"])).tolist()) if "split" in table else set()
    order = {"train": 0, "test": 1}
    return sorted(present, key=lambda s: (order.get(s, 2), s))


def layer_order(table: Mapping[str, np.ndarray]) -> list[str]:
    """Layer names in forward order (by ``layer_index``, then by first appearance)."""
    _check_columns(table, ("layer", "layer_index"), "layer_order")
    names = _strings(table["layer"])
    if names.size == 0:
        return []
    index = np.asarray(table["layer_index"], dtype=np.int64)
    uniq, first = np.unique(names, return_index=True)
    order = np.lexsort((first, index[first]))
    return [str(uniq[i]) for i in order]


def _ranks(names: np.ndarray, order: Sequence[str]) -> np.ndarray:
    """The position of every row's layer in ``order``."""
    uniq, inv = np.unique(names, return_inverse=True)
    pos = {name: r for r, name in enumerate(order)}
    lookup = np.array([pos[str(u)] for u in uniq], dtype=np.int64)
    return lookup[inv.reshape(-1)]


def _select(table: Mapping[str, np.ndarray], split: str, who: str) -> Table:
    """The measured ('ok') rows of one split, with text columns as strings."""
    _check_columns(table, _HISTORY_COLUMNS, who)
    split_col = _strings(table["split"])
    present = splits(table)
    if split not in present:
        raise InvalidParameterError(
            f"{who}: expected split in {present}, got {split!r}. Pick a split the history holds."
        )
    n = len(split_col)
    status = _strings(table["status"]) if "status" in table else np.full(n, "ok", dtype=object)
    i_xt = _floats(table, "i_xt", n)
    i_ty = _floats(table, "i_ty", n)
    keep = (split_col == split) & (status == "ok") & np.isfinite(i_xt) & np.isfinite(i_ty)
    out: Table = {
        "run": np.asarray(table["run"], dtype=np.int64)[keep],
        "epoch": np.asarray(table["epoch"], dtype=np.int64)[keep],
        "step": np.asarray(table["step"], dtype=np.int64)[keep],
        "layer": _strings(table["layer"])[keep],
        "layer_index": np.asarray(table["layer_index"], dtype=np.int64)[keep],
    }
    for name in ("i_xt", "i_ty", "h_t", "h_x", "h_y", "sigma", "n"):
        out[name] = _floats(table, name, n)[keep]
    return out


def moving_average(values: np.ndarray, window: int, *, mode: str = "centred") -> np.ndarray:
    """Moving average of a 1-D series over ``window`` consecutive entries, ignoring NaN.

    ``mode="centred"`` averages entries ``i - (window-1)//2 .. i + window//2``; ``"trailing"``
    averages ``i - window + 1 .. i``. The window shrinks at the ends (no padding), so the output has
    the input's length and a constant series is returned unchanged.
    """
    if int(window) != window or window < 1:
        raise InvalidParameterError(
            f"moving_average: expected window an integer >= 1, got {window!r}."
        )
    if mode not in ("centred", "trailing"):
        raise InvalidParameterError(
            f"moving_average: expected mode 'centred' or 'trailing', got {mode!r}."
        )
    values = np.asarray(values, dtype=np.float64)
    window = int(window)
    if window == 1 or values.size == 0:
        return values.copy()
    ok = np.isfinite(values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, values, 0.0))])
    ccnt = np.concatenate([[0], np.cumsum(ok)])
    i = np.arange(values.size)
    if mode == "centred":
        lo = i - (window - 1) // 2
        hi = i + window // 2
    else:
        lo = i - window + 1
        hi = i
    lo = np.clip(lo, 0, values.size - 1)
    hi = np.clip(hi, 0, values.size - 1)
    total = csum[hi + 1] - csum[lo]
    count = ccnt[hi + 1] - ccnt[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _light_window(n_steps: int) -> int:
    """The light smoothing of :func:`compression_summary`: an odd window of ~2% of the steps."""
    w = max(1, min(51, n_steps // 50))
    return w if w % 2 == 1 else w + 1


# ----------------------------------------------------------------------------- aggregate
def aggregate(
    table: Mapping[str, np.ndarray],
    *,
    split: str,
    smooth: int = 1,
    mode: str = "centred",
) -> Table:
    """Mean and standard deviation over runs per (layer, step), skipped records ignored.

    Args:
        table: a history table (columns of :data:`infoplane.history.FIELDS`).
        split: ``'train'`` or ``'test'`` (any split the table holds).
        smooth: window of a moving average over steps, applied per layer to every mean and std
            column after averaging over runs (1 = none).
        mode: ``'centred'`` or ``'trailing'`` moving average (see :func:`moving_average`).

    Returns:
        A table with one row per (layer, step), ordered by layer index then step, and columns
        ``layer, layer_index, step, epoch, n_runs`` and ``<q>_mean, <q>_std`` for ``q`` in
        ``i_xt, i_ty, h_t, sigma``, plus ``h_x_mean, h_y_mean`` (S(X), S(Y) of the batches) and
        ``n_mean`` (batch size). The std is the sample std over runs (ddof = 1), 0 for one run.
        Steps where every run was skipped have no row.
    """
    sel = _select(table, split, "aggregate")
    if int(smooth) != smooth or smooth < 1:
        raise InvalidParameterError(f"aggregate: expected smooth an integer >= 1, got {smooth!r}.")
    order = layer_order({"layer": sel["layer"], "layer_index": sel["layer_index"]})
    layer_rank = _ranks(sel["layer"], order)
    inv, first, (group_rank, group_step) = _group(layer_rank, sel["step"])
    n_groups = first.size
    count = np.bincount(inv, minlength=n_groups).astype(np.float64)

    def group_mean(v: np.ndarray) -> np.ndarray:
        ok = np.isfinite(v)
        s = np.bincount(inv[ok], weights=v[ok], minlength=n_groups)
        c = np.bincount(inv[ok], minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, s / np.maximum(c, 1), np.nan)

    def group_std(v: np.ndarray, mean: np.ndarray) -> np.ndarray:
        ok = np.isfinite(v)
        dev = (v[ok] - mean[inv[ok]]) ** 2
        s = np.bincount(inv[ok], weights=dev, minlength=n_groups)
        c = np.bincount(inv[ok], minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 1, np.sqrt(s / np.maximum(c - 1, 1)), np.where(c == 1, 0.0, np.nan))

    out: Table = {
        "layer": np.array(order, dtype=object)[group_rank] if n_groups else np.array([], object),
        "layer_index": sel["layer_index"][first],
        "step": group_step.astype(np.int64),
        "epoch": sel["epoch"][first],
        "n_runs": count.astype(np.int64),  # one record per run, layer and step
    }
    for q in QUANTITIES:
        mean = group_mean(sel[q])
        out[f"{q}_mean"] = mean
        out[f"{q}_std"] = group_std(sel[q], mean)
    out["h_x_mean"] = group_mean(sel["h_x"])
    out["h_y_mean"] = group_mean(sel["h_y"])
    out["n_mean"] = group_mean(sel["n"])
    if smooth > 1:
        smoothed = [c for c in out if c.endswith(("_mean", "_std"))]
        for r in range(len(order)):
            rows = group_rank == r
            for c in smoothed:
                out[c][rows] = moving_average(out[c][rows], int(smooth), mode=mode)
    return out


def _layer_rows(agg: Table, layer: str) -> np.ndarray:
    return np.flatnonzero(agg["layer"] == layer)


# ----------------------------------------------------------------------------- DPI
def dpi_table(table: Mapping[str, np.ndarray], *, split: str, tol: float = DPI_TOL) -> Table:
    """Data processing inequality between consecutive layers (Finding 5).

    For each pair (T_l, T_{l+1}) in forward order, over every (run, step) where both layers were
    measured: the mean of ``I(X;T_l) - I(X;T_{l+1})`` and of ``I(T_l;Y) - I(T_{l+1};Y)`` (bits),
    and the fraction of (run, step) where each difference is ``>= -tol`` (the inequality holds).

    Returns:
        A table with one row per pair and columns ``layer, next_layer, n, d_xt_mean, d_ty_mean,
        frac_xt, frac_ty`` (fractions in [0, 1]; NaN where a pair never co-occurs).
    """
    sel = _select(table, split, "dpi_table")
    order = layer_order({"layer": sel["layer"], "layer_index": sel["layer_index"]})
    layer_rank = _ranks(sel["layer"], order)
    n_pairs = max(len(order) - 1, 0)
    out: Table = {
        "layer": np.array(order[:-1], dtype=object) if order else np.array([], dtype=object),
        "next_layer": np.array(order[1:], dtype=object),
        "n": np.zeros(n_pairs, dtype=np.int64),
        "d_xt_mean": np.full(n_pairs, np.nan),
        "d_ty_mean": np.full(n_pairs, np.nan),
        "frac_xt": np.full(n_pairs, np.nan),
        "frac_ty": np.full(n_pairs, np.nan),
    }
    if n_pairs == 0 or layer_rank.size == 0:
        return out
    inv, first, _ = _group(sel["run"], sel["epoch"], sel["step"])
    n_keys = first.size
    dense = {}
    for q in ("i_xt", "i_ty"):
        grid = np.full((n_keys, len(order)), np.nan)
        grid[inv, layer_rank] = sel[q]
        dense[q] = grid
    for p in range(n_pairs):
        d_xt = dense["i_xt"][:, p] - dense["i_xt"][:, p + 1]
        d_ty = dense["i_ty"][:, p] - dense["i_ty"][:, p + 1]
        both = np.isfinite(d_xt) & np.isfinite(d_ty)
        if not both.any():
            continue
        out["n"][p] = int(both.sum())
        out["d_xt_mean"][p] = float(d_xt[both].mean())
        out["d_ty_mean"][p] = float(d_ty[both].mean())
        out["frac_xt"][p] = float(np.mean(d_xt[both] >= -tol))
        out["frac_ty"][p] = float(np.mean(d_ty[both] >= -tol))
    return out


# ----------------------------------------------------------------------------- compression
def compression_summary(
    table: Mapping[str, np.ndarray],
    *,
    split: str,
    smooth: int | None = None,
    threshold: float = COMPRESSION_THRESHOLD,
) -> Table:
    """Fitting and compression per layer, on the run-averaged, lightly smoothed curves.

    I(X;T) is averaged over runs and smoothed with a centred moving average (``smooth`` steps;
    default: an odd window of about 2% of the measured steps, 1 for fewer than 100 steps). Its peak
    is the compression onset. A layer *compresses* when the drop from the peak to the last step is
    at least ``threshold`` times the peak (5% by default) and larger than the run-to-run std of
    I(X;T) at the peak and at the last step (with one run only the relative threshold applies).

    Returns:
        A table with one row per layer and columns ``layer, layer_index, n_runs, n_steps,
        smooth, first_step, last_step, peak_step, i_xt_first, i_xt_peak, i_xt_final, drop,
        drop_pct, noise, compressed, peak_at_start, i_ty_first, i_ty_final, step_90, h_x, h_y``.
        ``drop`` is in bits, ``drop_pct`` in % of the peak, ``noise`` is the larger run-to-run std
        (bits) at the peak and at the last step, ``step_90`` is the first step where the smoothed
        I(T;Y) reaches 90% of its final value, ``h_x``/``h_y`` the mean S(X)/S(Y) of the batches.
    """
    if not 0.0 <= threshold < 1.0:
        raise InvalidParameterError(
            f"compression_summary: expected threshold in [0, 1), got {threshold!r}."
        )
    raw = aggregate(table, split=split)
    order = layer_order(raw) if raw["layer"].size else []
    n_steps_max = max((int(_layer_rows(raw, name).size) for name in order), default=0)
    window = _light_window(n_steps_max) if smooth is None else int(smooth)
    if window < 1:
        raise InvalidParameterError(
            f"compression_summary: expected smooth an integer >= 1, got {smooth!r}."
        )
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "layer",
            "layer_index",
            "n_runs",
            "n_steps",
            "smooth",
            "first_step",
            "last_step",
            "peak_step",
            "i_xt_first",
            "i_xt_peak",
            "i_xt_final",
            "drop",
            "drop_pct",
            "noise",
            "compressed",
            "peak_at_start",
            "i_ty_first",
            "i_ty_final",
            "step_90",
            "h_x",
            "h_y",
        )
    }
    for name in order:
        rows = _layer_rows(raw, name)
        steps = raw["step"][rows]
        xt = moving_average(raw["i_xt_mean"][rows], window)
        xt_std = moving_average(raw["i_xt_std"][rows], window)
        ty = moving_average(raw["i_ty_mean"][rows], window)
        peak = int(np.nanargmax(xt))
        last = len(rows) - 1
        drop = float(xt[peak] - xt[last])
        drop_pct = 100.0 * drop / xt[peak] if xt[peak] > 0 else math.nan
        spread = np.array([xt_std[peak], xt_std[last]])
        noise = float(spread[np.isfinite(spread)].max()) if np.isfinite(spread).any() else 0.0
        compressed = bool(peak < last and drop >= threshold * xt[peak] and drop > noise)
        reach = np.flatnonzero(ty >= 0.9 * ty[last]) if math.isfinite(ty[last]) else []
        cols["layer"].append(name)
        cols["layer_index"].append(int(raw["layer_index"][rows[0]]))
        cols["n_runs"].append(int(raw["n_runs"][rows].max()))
        cols["n_steps"].append(len(rows))
        cols["smooth"].append(window)
        cols["first_step"].append(int(steps[0]))
        cols["last_step"].append(int(steps[last]))
        cols["peak_step"].append(int(steps[peak]))
        cols["i_xt_first"].append(float(xt[0]))
        cols["i_xt_peak"].append(float(xt[peak]))
        cols["i_xt_final"].append(float(xt[last]))
        cols["drop"].append(drop)
        cols["drop_pct"].append(float(drop_pct))
        cols["noise"].append(noise)
        cols["compressed"].append(compressed)
        cols["peak_at_start"].append(peak == 0 and last > 0)
        cols["i_ty_first"].append(float(ty[0]))
        cols["i_ty_final"].append(float(ty[last]))
        cols["step_90"].append(int(steps[reach[0]]) if len(reach) else -1)
        cols["h_x"].append(_nanmean(raw["h_x_mean"][rows]))
        cols["h_y"].append(_nanmean(raw["h_y_mean"][rows]))
    out: Table = {}
    for k, v in cols.items():
        if k == "layer":
            out[k] = np.array(v, dtype=object)
        elif k in ("compressed", "peak_at_start"):
            out[k] = np.array(v, dtype=bool)
        elif k in (
            "layer_index",
            "n_runs",
            "n_steps",
            "smooth",
            "first_step",
            "last_step",
            "peak_step",
            "step_90",
        ):
            out[k] = np.array(v, dtype=np.int64)
        else:
            out[k] = np.array(v, dtype=np.float64)
    return out


def _nanmean(values: np.ndarray) -> float:
    """Mean of the finite entries, NaN (without a warning) when there are none."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else math.nan


# ----------------------------------------------------------------------------- early stopping
def _parse_monitor(monitor: str) -> tuple[str, str]:
    parts = str(monitor).split()
    if len(parts) != 2 or parts[1] not in ("loss", "accuracy"):
        raise InvalidParameterError(
            f"early_stopping: expected monitor '<split> loss' or '<split> accuracy' (e.g. "
            f"'test loss'), got {monitor!r}."
        )
    return parts[0], parts[1]


def _stop_index(values: np.ndarray, patience: int, *, maximize: bool, min_delta: float) -> tuple:
    """(stop index, best index, stopped) of early stopping on a per-epoch series."""
    best_i = 0
    best = values[0]
    for i in range(1, values.size):
        improved = values[i] > best + min_delta if maximize else values[i] < best - min_delta
        if improved:
            best, best_i = values[i], i
        elif i - best_i >= patience:
            return i, best_i, True
    return values.size - 1, best_i, False


def early_stopping(
    metrics: Mapping[str, np.ndarray],
    table: Mapping[str, np.ndarray],
    *,
    patience: Sequence[int] = (1, 3, 5),
    monitor: str = "test loss",
    min_delta: float = 0.0,
    split: str | None = None,
) -> Table:
    """Where early stopping would end training, against the compression onset (Finding 4).

    The monitored signal (``'<split> loss'`` or ``'<split> accuracy'`` of the metrics table) is
    averaged over runs per epoch. Training stops at the first epoch that is ``patience`` epochs
    after the best one so far (an improvement must beat the best by more than ``min_delta``); if
    that never happens, training runs to the last epoch (``stopped`` is False). With no rows of the
    monitored split (e.g. no held-out evaluation), the same signal of the training split is used
    and the ``monitor`` column says so.

    The compression onset of a layer is its I(X;T) peak step from :func:`compression_summary` on
    ``split`` of the history (default: 'train' when present). Early stopping comes *before the
    onset* when its stop step is at or before the peak step; for layers without compression the
    answer is None.

    Returns:
        A table with one row per (patience, layer) and columns ``patience, monitor, stop_epoch,
        stop_step, best_epoch, best_step, stopped, layer, peak_step, compressed, before_onset``.
    """
    _check_columns(metrics, _METRICS_COLUMNS, "early_stopping")
    pats = [int(p) for p in patience]
    if not pats or any(p < 1 for p in pats):
        raise InvalidParameterError(
            f"early_stopping: expected patience values >= 1, got {list(patience)!r}."
        )
    mon_split, column = _parse_monitor(monitor)
    m_split = _strings(metrics["split"])
    values = np.asarray(metrics[column], dtype=np.float64)
    used = f"{mon_split} {column}"
    rows = (m_split == mon_split) & np.isfinite(values)
    if not rows.any() and mon_split != "train":
        rows = (m_split == "train") & np.isfinite(values)
        used = f"train {column} (no {mon_split} rows)"
    if not rows.any():
        raise InvalidInputError(
            f"early_stopping: expected finite {column} values of split {mon_split!r} (or 'train') "
            "in the metrics table, got none."
        )
    epochs_all = np.asarray(metrics["epoch"], dtype=np.int64)[rows]
    steps_all = np.asarray(metrics["step"], dtype=np.int64)[rows]
    epochs, inv = np.unique(epochs_all, return_inverse=True)
    inv = inv.reshape(-1)
    series = np.bincount(inv, weights=values[rows]) / np.bincount(inv)
    step_of = np.full(epochs.size, np.iinfo(np.int64).max)
    np.minimum.at(step_of, inv, steps_all)

    hist_split = split or ("train" if "train" in splits(table) else splits(table)[0])
    comp = compression_summary(table, split=hist_split)
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "patience",
            "monitor",
            "stop_epoch",
            "stop_step",
            "best_epoch",
            "best_step",
            "stopped",
            "layer",
            "peak_step",
            "compressed",
            "before_onset",
        )
    }
    for p in pats:
        stop, best, stopped = _stop_index(
            series, p, maximize=column == "accuracy", min_delta=float(min_delta)
        )
        for j, name in enumerate(comp["layer"].tolist()):
            compressed = bool(comp["compressed"][j])
            peak = int(comp["peak_step"][j])
            cols["patience"].append(p)
            cols["monitor"].append(used)
            cols["stop_epoch"].append(int(epochs[stop]))
            cols["stop_step"].append(int(step_of[stop]))
            cols["best_epoch"].append(int(epochs[best]))
            cols["best_step"].append(int(step_of[best]))
            cols["stopped"].append(stopped)
            cols["layer"].append(name)
            cols["peak_step"].append(peak)
            cols["compressed"].append(compressed)
            cols["before_onset"].append(bool(step_of[stop] <= peak) if compressed else None)
    out: Table = {}
    for k, v in cols.items():
        if k in ("monitor", "layer", "before_onset"):
            out[k] = np.array(v, dtype=object)
        elif k in ("stopped", "compressed"):
            out[k] = np.array(v, dtype=bool)
        else:
            out[k] = np.array(v, dtype=np.int64)
    return out


# ----------------------------------------------------------------------------- train vs test
_TVT_COLUMNS = (
    "layer",
    "train_peak_step",
    "train_drop",
    "train_drop_pct",
    "train_compressed",
    "test_peak_step",
    "test_drop",
    "test_drop_pct",
    "test_compressed",
    "weaker_on_test",
)


def train_vs_test(
    table: Mapping[str, np.ndarray],
    *,
    smooth: int | None = None,
    threshold: float = COMPRESSION_THRESHOLD,
) -> Table:
    """The compression drop per layer on training against test data (Finding 3).

    Runs :func:`compression_summary` on both splits. ``weaker_on_test`` is True when the relative
    drop on test is smaller than on train. When the history lacks either split, the table has the
    columns but no rows.

    Returns:
        A table with columns ``layer, train_peak_step, train_drop, train_drop_pct,
        train_compressed, test_peak_step, test_drop, test_drop_pct, test_compressed,
        weaker_on_test`` (drops in bits and in % of the peak).
    """
    present = splits(table)
    if not ("train" in present and "test" in present):
        return {k: np.array([], dtype=object if k == "layer" else np.float64) for k in _TVT_COLUMNS}
    tr = compression_summary(table, split="train", smooth=smooth, threshold=threshold)
    te = compression_summary(table, split="test", smooth=smooth, threshold=threshold)
    te_pos = {name: i for i, name in enumerate(te["layer"].tolist())}
    cols: dict[str, list[Any]] = {k: [] for k in _TVT_COLUMNS}
    for i, name in enumerate(tr["layer"].tolist()):
        if name not in te_pos:
            continue
        j = te_pos[name]
        cols["layer"].append(name)
        cols["train_peak_step"].append(int(tr["peak_step"][i]))
        cols["train_drop"].append(float(tr["drop"][i]))
        cols["train_drop_pct"].append(float(tr["drop_pct"][i]))
        cols["train_compressed"].append(bool(tr["compressed"][i]))
        cols["test_peak_step"].append(int(te["peak_step"][j]))
        cols["test_drop"].append(float(te["drop"][j]))
        cols["test_drop_pct"].append(float(te["drop_pct"][j]))
        cols["test_compressed"].append(bool(te["compressed"][j]))
        cols["weaker_on_test"].append(bool(te["drop_pct"][j] < tr["drop_pct"][i]))
    out: Table = {}
    for k, v in cols.items():
        if k == "layer":
            out[k] = np.array(v, dtype=object)
        elif k.endswith(("compressed", "weaker_on_test")):
            out[k] = np.array(v, dtype=bool)
        elif k.endswith("peak_step"):
            out[k] = np.array(v, dtype=np.int64)
        else:
            out[k] = np.array(v, dtype=np.float64)
    return out


# ----------------------------------------------------------------------------- findings
def _name(layer: str) -> str:
    """A layer name readable in a sentence (``'3'`` becomes ``'layer 3'``)."""
    return layer if any(c.isalpha() for c in layer) else f"layer {layer}"


def _pct(fraction: float) -> str:
    return f"{100.0 * fraction:.0f}%"


def _list(items: Sequence[str], limit: int = 4) -> str:
    items = list(items)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"


def findings(
    table: Mapping[str, np.ndarray],
    metrics: Mapping[str, np.ndarray] | None,
    config: Mapping[str, Any] | None = None,
    *,
    threshold: float = COMPRESSION_THRESHOLD,
) -> list[str]:
    """Short sentences checking the paper's findings 1-6 against one run directory's tables.

    Each sentence states what was measured and says plainly when a finding is NOT observed or
    cannot be checked (e.g. no test split). Information quantities are in bits.

    Args:
        table: the history table.
        metrics: the training metrics table (``None`` skips the early-stopping check).
        config: the run configuration (used for the activation, model and dataset names).
        threshold: the relative I(X;T) drop counted as compression (see
            :func:`compression_summary`).
    """
    config = dict(config or {})
    present = splits(table)
    if not present:
        raise InvalidInputError("findings: expected history rows, got an empty table.")
    main = "train" if "train" in present else present[0]
    comp = compression_summary(table, split=main, threshold=threshold)
    if comp["layer"].size == 0:
        return [f"No measured (status 'ok') records on split {main!r}: nothing to check."]
    names = comp["layer"].tolist()
    labels = [_name(n) for n in names]
    out: list[str] = []

    # 1. fitting
    last = len(names) - 1
    h_y = float(comp["h_y"][last])
    sy = f" (S(Y) = {h_y:.2f})" if math.isfinite(h_y) else ""
    first_ty, final_ty = float(comp["i_ty_first"][last]), float(comp["i_ty_final"][last])
    rising = [n for i, n in enumerate(names) if comp["i_ty_final"][i] > comp["i_ty_first"][i]]
    if final_ty > first_ty + 1e-6:
        near = ""
        if math.isfinite(h_y) and h_y > 0:
            near = f", {_pct(final_ty / h_y)} of S(Y)"
        out.append(
            f"Fitting ({main}): I(T;Y) of the output layer ({labels[last]}) rose from "
            f"{first_ty:.2f} to {final_ty:.2f} bits{sy}{near}; I(T;Y) rose in {len(rising)} of "
            f"{len(names)} layers."
        )
    else:
        out.append(
            f"Fitting NOT observed ({main}): I(T;Y) of the output layer ({labels[last]}) did not "
            f"rise "
            f"({first_ty:.2f} -> {final_ty:.2f} bits{sy})."
        )

    # 2. compression on training data
    act = config.get("activation")
    act_txt = f" ({act})" if act else ""
    comp_layers = [n for i, n in enumerate(names) if comp["compressed"][i]]
    rule = f"drop >= {100 * threshold:.0f}% of the peak and above the run-to-run std"
    if comp_layers:
        parts = [
            f"{labels[i]} -{comp['drop'][i]:.2f} bits ({comp['drop_pct'][i]:.0f}%) after step "
            f"{comp['peak_step'][i]}"
            for i in range(len(names))
            if comp["compressed"][i]
        ]
        out.append(
            f"Compression{act_txt} on {main}: I(X;T) rose then fell in {len(comp_layers)} of "
            f"{len(names)} layers ({rule}): {_list(parts)}."
        )
    else:
        j = int(np.nanargmax(comp["drop_pct"])) if np.isfinite(comp["drop_pct"]).any() else 0
        out.append(
            f"Compression NOT observed{act_txt} on {main}: no layer's I(X;T) fell after its peak "
            f"by the threshold ({rule}); the largest drop is {labels[j]} "
            f"{comp['drop'][j]:.2f} bits ({comp['drop_pct'][j]:.0f}%)."
        )
    at_start = [labels[i] for i in range(len(names)) if comp["peak_at_start"][i]]
    if at_start:
        out.append(
            f"I(X;T) peaked at the first measured step (no initial rise) in: {_list(at_start)}."
        )

    # 3. train vs test
    tvt = train_vs_test(table, threshold=threshold)
    if tvt["layer"].size:
        weaker = int(tvt["weaker_on_test"].sum())
        mean_tr = _nanmean(tvt["train_drop_pct"])
        mean_te = _nanmean(tvt["test_drop_pct"])
        verdict = (
            "compression is weaker on test"
            if weaker > tvt["layer"].size / 2 and mean_te < mean_tr
            else "NOT observed: compression is not weaker on test"
        )
        out.append(
            f"Train vs test: {verdict} (mean I(X;T) drop {mean_tr:.1f}% of the peak on train vs "
            f"{mean_te:.1f}% on test; weaker on test in {weaker} of {tvt['layer'].size} layers; "
            f"compressing layers: {int(tvt['train_compressed'].sum())} train, "
            f"{int(tvt['test_compressed'].sum())} test)."
        )
    else:
        out.append(
            f"Train vs test: not checked, the history holds only split(s) {present} "
            "(the paper measured train and test planes in separate runs)."
        )

    # 4. early stopping
    if metrics is None or "split" not in metrics or len(metrics["split"]) == 0:
        out.append("Early stopping: not checked, no training metrics.")
    else:
        try:
            es = early_stopping(metrics, table, split=main)
        except InvalidInputError as exc:
            es = None
            out.append(f"Early stopping: not checked ({exc}).")
        if es is not None:
            monitor = str(es["monitor"][0]) if es["monitor"].size else "test loss"
            pats = sorted(set(es["patience"].tolist()))
            stops = []
            for p in pats:
                r = np.flatnonzero(es["patience"] == p)[0]
                stops.append(f"epoch {es['stop_epoch'][r]}" if es["stopped"][r] else "never")
            if any(stop != "never" for stop in stops):
                when = f"would stop at {' / '.join(stops)}"
            else:
                when = "would never stop (the monitored signal still improves at the end)"
            head = f"Early stopping on {monitor} with patience {'/'.join(map(str, pats))} {when}"
            if not comp_layers:
                out.append(f"{head}; no layer compresses, so there is no onset to compare with.")
            else:
                before = []
                for p in pats:
                    sel = (es["patience"] == p) & es["compressed"]
                    before.append(int(sum(bool(v) for v in es["before_onset"][sel])))
                n_c = len(comp_layers)
                peaks = comp["peak_step"][comp["compressed"]]
                onset = (
                    f"step {int(peaks.min())}"
                    if peaks.min() == peaks.max()
                    else f"steps {int(peaks.min())}-{int(peaks.max())}"
                )
                stop_steps = []
                for p in pats:
                    r = np.flatnonzero(es["patience"] == p)[0]
                    stop_steps.append(str(int(es["stop_step"][r])))
                counts = "/".join(str(b) for b in before)
                if all(stops_at == "never" for stops_at in stops) and not any(before):
                    verdict = (
                        f"NOT observed: training runs past the compression onset of all {n_c} "
                        "compressing layers"
                    )
                    out.append(f"{head}: {verdict} (I(X;T) peaks at {onset}).")
                else:
                    if all(b == n_c for b in before):
                        verdict = f"before the compression onset in all {n_c} compressing layers"
                    elif not any(before):
                        verdict = (
                            f"NOT observed: it stops after the compression onset of all {n_c} "
                            "compressing layers"
                        )
                    else:
                        verdict = (
                            f"before the compression onset in {counts} of {n_c} compressing layers"
                        )
                    out.append(
                        f"{head} (steps {'/'.join(stop_steps)}): {verdict} "
                        f"(I(X;T) peaks at {onset})."
                    )

    # 5. DPI
    dpi = dpi_table(table, split=main)
    n = dpi["n"].astype(np.float64)
    if n.sum() > 0:
        w = n / n.sum()
        frac_xt = float(np.nansum(w * dpi["frac_xt"]))
        frac_ty = float(np.nansum(w * dpi["frac_ty"]))
        bad_xt = [
            f"{_name(a)}->{_name(b)}"
            for a, b, d in zip(dpi["layer"], dpi["next_layer"], dpi["d_xt_mean"], strict=True)
            if d < -DPI_TOL
        ]
        bad_ty = [
            f"{_name(a)}->{_name(b)}"
            for a, b, d in zip(dpi["layer"], dpi["next_layer"], dpi["d_ty_mean"], strict=True)
            if d < -DPI_TOL
        ]
        n_pairs = dpi["layer"].size
        if not bad_xt and not bad_ty:
            tail = f"on average every one of the {n_pairs} pairs complies for both."
        else:
            bits = []
            if bad_xt:
                bits.append(f"I(X;T) on {_list(bad_xt)}")
            if bad_ty:
                bits.append(f"I(T;Y) on {_list(bad_ty)}")
            tail = "NOT respected on average for " + "; ".join(bits) + "."
        out.append(
            f"DPI ({main}): {_pct(frac_xt)} of consecutive-layer (run, step) pairs comply for "
            f"I(X;T) and {_pct(frac_ty)} for I(T;Y); {tail}"
        )
    else:
        out.append("DPI: not checked, fewer than two layers measured at the same steps.")

    # 6. non-degenerate estimator
    sel = _select(table, main, "findings")
    log2n = np.log2(np.where(sel["n"] > 1, sel["n"], np.nan))
    at_max = np.isfinite(log2n) & (sel["h_t"] >= log2n - 0.01)
    frac_max = float(at_max.mean()) if at_max.size else 0.0
    has_hx = np.isfinite(sel["h_x"])
    at_sx = has_hx & (sel["i_xt"] >= sel["h_x"] - 0.01)
    frac_below = 1.0 - float(at_sx[has_hx].mean()) if has_hx.any() else math.nan
    mean_ht = _nanmean(sel["h_t"])
    ranges = [
        float(comp["i_xt_peak"][i] - min(comp["i_xt_first"][i], comp["i_xt_final"][i]))
        for i in range(len(names))
    ]
    moving = sum(r > 0.01 for r in ranges)
    if frac_max > 0.9:
        out.append(
            f"Estimator DEGENERATE on {main}: S(T) sits at log2 N in {_pct(frac_max)} of the "
            "records (kernel width too small): I(X;T) then equals S(X) and carries no "
            "information about training."
        )
    elif math.isfinite(mean_ht) and mean_ht < 0.05:
        out.append(
            f"Estimator DEGENERATE on {main}: S(T) is {mean_ht:.3f} bits on average (kernel "
            "width too large): every layer collapses to I(X;T) = I(T;Y) = 0."
        )
    else:
        if math.isfinite(frac_below):
            ratio = sel["i_xt"][has_hx] / np.where(sel["h_x"][has_hx] > 0, sel["h_x"][has_hx], 1)
            below = (
                f"stays below S(X) in {_pct(frac_below)} of the records (largest I(X;T)/S(X) = "
                f"{float(ratio.max()):.2f})"
            )
            if frac_below < 0.9:
                below = "does NOT stay below S(X): it " + below
        else:
            below = f"reaches at most {float(sel['i_xt'].max()):.2f} bits (S(X) not recorded)"
        move = (
            f"moves over training in {moving} of {len(names)} layers"
            if moving
            else "does NOT move over training in any layer"
        )
        out.append(
            f"Estimator ({main}): I(X;T) {below} and {move} (range up to {max(ranges):.2f} bits); "
            f"S(T) is at log2 N in {_pct(frac_max)} of the records."
        )
    return out


__all__ = [
    "COMPRESSION_THRESHOLD",
    "DPI_TOL",
    "QUANTITIES",
    "aggregate",
    "compression_summary",
    "dpi_table",
    "early_stopping",
    "findings",
    "layer_order",
    "moving_average",
    "splits",
    "train_vs_test",
]
