"""The findings of Wickstrøm et al. (arXiv:1909.11396; Entropy 25(6):899, 2023), one function
each, checked under the adaptive widths and under the controls that infoplane records.

Every ``check_*`` function takes a :class:`RunTables` (a history with its metrics and
configuration, whose aggregates and per-layer summaries are computed once and shared) and
returns a :class:`Finding`: the numbers, a verdict under each *variant* and caveats. The
variants are the estimates under the adaptive widths (``"adaptive"``), the fixed-width control
(``"fixed"``: ``i_xt_fixed``, ``i_ty_fixed``) and the null floor (``"null"``: the estimate minus
the same quantity with the labels, or the samples of T against X, permuted). A variant whose
control was not measured has the verdict :data:`NOT_RECORDED`. :func:`check_findings` runs the
six checks; :mod:`infoplane.analysis.wording` puts them into sentences.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from infoplane.analysis.summaries import (
    COMPRESSION_THRESHOLD,
    DPI_TOL,
    DPI_TOLERANCES,
    check_threshold,
    compare_splits,
    default_window,
    dpi_differences,
    onsets_against_stops,
    stops,
    trend_table,
)
from infoplane.analysis.tables import (
    aggregate,
    history_frame,
    main_split,
    measured,
    metrics_frame,
    recorded,
    splits,
)
from infoplane.errors import InvalidInputError
from infoplane.schema import FIXED_QUANTITIES, NULL_QUANTITIES

#: Verdicts of a finding under one variant.
OBSERVED = "observed"
NOT_OBSERVED = "not observed"
PARTLY = "partly observed"
NOT_CHECKED = "not checked"
NOT_RECORDED = "control not recorded"
NOT_APPLICABLE = "not applicable"

#: The (I(X;T), I(T;Y)) columns read under each variant; "null" reads the margin above the floor.
VARIANTS: dict[str, tuple[str, str]] = {
    "adaptive": ("i_xt", "i_ty"),
    "fixed": FIXED_QUANTITIES,
    "null": ("i_xt_margin", "i_ty_margin"),
}
#: The measured columns that tell whether a variant was recorded.
_RECORDED_BY: dict[str, tuple[str, ...]] = {
    "adaptive": ("i_xt",),
    "fixed": FIXED_QUANTITIES,
    "null": NULL_QUANTITIES,
}
#: I(X;T) and S(T) closer than this (bits) in every record: the input Gram is the identity.
IDENTITY_TOL = 1e-6
#: S(T) within this many bits of log2 N counts as the maximum (kernel width too small).
AT_MAX_TOL = 0.01


@dataclass(frozen=True)
class Finding:
    """One finding checked on a history.

    Attributes:
        key: ``fitting``, ``compression``, ``train_vs_test``, ``early_stopping``, ``dpi`` or
            ``estimator``.
        title: the finding's name in the report.
        split: the split it was checked on.
        verdicts: verdict per variant (``adaptive``, ``fixed``, ``null``).
        numbers: the measured values the verdicts rest on (bits, fractions, steps).
        caveats: what limits the verdict (one run, a missing control, ...).
        table: per-layer (or per-pair) details, or None.
    """

    key: str
    title: str
    split: str
    verdicts: Mapping[str, str]
    numbers: Mapping[str, Any] = field(default_factory=dict)
    caveats: tuple[str, ...] = ()
    table: pd.DataFrame | None = None

    @property
    def verdict(self) -> str:
        """The verdict under the adaptive widths."""
        return self.verdicts["adaptive"]


class RunTables:
    """A history with its metrics and configuration; each aggregate and summary computed once.

    Args:
        history: a history source (:func:`~infoplane.analysis.tables.history_frame`).
        metrics: the training metrics (table, DataFrame or path) or None.
        config: the run configuration (names of the model, activation, dataset).
        threshold: the relative I(X;T) drop counted as compression.
    """

    def __init__(
        self,
        history: Any,
        metrics: Any = None,
        config: Mapping[str, Any] | None = None,
        *,
        threshold: float = COMPRESSION_THRESHOLD,
    ) -> None:
        self.frame = history_frame(history, who="RunTables")
        self.metrics = metrics_frame(metrics, who="RunTables")
        self.config = dict(config or {})
        self.threshold = check_threshold(threshold, "RunTables")
        self.splits = splits(self.frame)
        self.main = main_split(self.frame)
        self._cache: dict[tuple, Any] = {}
        if not (self.frame["split"] == self.main).any() or self.measured(self.main).empty:
            raise InvalidInputError(
                f"RunTables: expected measured (status 'ok') records on split {self.main!r}, got "
                "none. Check that the run measured any step."
            )

    def _cached(self, key: tuple, make: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def measured(self, split: str) -> pd.DataFrame:
        return self._cached(("measured", split), lambda: measured(self.frame, split))

    def aggregate(self, split: str) -> pd.DataFrame:
        return self._cached(("aggregate", split), lambda: aggregate(self.frame, split=split))

    def window(self, split: str) -> int:
        return default_window(self.aggregate(split))

    def trend(self, split: str, quantity: str) -> pd.DataFrame:
        """:func:`~infoplane.analysis.summaries.trend_table` of ``quantity`` on ``split``."""
        return self._cached(
            ("trend", split, quantity),
            lambda: trend_table(
                self.aggregate(split),
                quantity,
                window=self.window(split),
                threshold=self.threshold,
            ),
        )

    def has(self, variant: str) -> bool:
        """Whether the columns of ``variant`` were measured (a control that was on)."""
        return all(recorded(self.frame, c) for c in _RECORDED_BY[variant])

    def variants(self) -> list[str]:
        return [v for v in VARIANTS if self.has(v)]

    def single_run(self, split: str) -> bool:
        return int(self.aggregate(split)["n_runs"].max()) <= 1


def _verdicts(
    tables: RunTables, decide: Any, *, applies: Sequence[str] = tuple(VARIANTS)
) -> dict[str, str]:
    """``decide(variant)`` for every recorded variant of ``applies``; the others say why not."""
    return {
        v: NOT_APPLICABLE if v not in applies else decide(v) if tables.has(v) else NOT_RECORDED
        for v in VARIANTS
    }


def _spread_caveat(tables: RunTables, split: str) -> tuple[str, ...]:
    if not tables.single_run(split):
        return ()
    if recorded(tables.frame, "i_ty_se"):
        return ("One run: spreads are probe standard errors across mini-batches, not run-to-run.",)
    return (
        "One run of single-batch measurements: no spread exists, so a margin or a rise counts "
        "when it is positive, without a confidence interval.",
    )


# ----------------------------------------------------------------------------- 1. fitting
def check_fitting(tables: RunTables) -> Finding:
    """Finding 1: I(T;Y) rises early; late layers approach S(Y).

    Verdict per variant: the output layer's I(T;Y) rises (see
    :func:`~infoplane.analysis.summaries.trend_table`). Under the null floor a layer is
    *informative about Y* when its final I(T;Y) exceeds the floor by more than the 95% CI of the
    margin over runs (the probe SE for one run; with neither, by any positive amount).
    """
    split = tables.main
    trends = {v: tables.trend(split, VARIANTS[v][1]) for v in tables.variants()}
    base = trends["adaptive"]
    out = base.iloc[-1]
    table = pd.DataFrame({"layer": base["layer"], "first": base["first"], "final": base["final"]})
    table["rose"] = base["rose"].astype(bool)
    if "fixed" in trends:
        table["fixed_first"], table["fixed_final"] = (
            trends["fixed"]["first"],
            trends["fixed"]["final"],
        )
        table["fixed_rose"] = trends["fixed"]["rose"].astype(bool)
    if "null" in trends:
        margin, ci = trends["null"]["final"], trends["null"]["final_ci"]
        table["margin"], table["margin_ci"] = margin, ci
        table["informative"] = (margin > ci.fillna(0.0)) & (margin > 0)
    h_y = float(tables.aggregate(split)["h_y_mean"].mean())

    def decide(variant: str) -> str:
        if variant == "null":
            return OBSERVED if bool(table["informative"].iloc[-1]) else NOT_OBSERVED
        return OBSERVED if bool(trends[variant]["rose"].iloc[-1]) else NOT_OBSERVED

    numbers = {
        "layer": out["layer"],
        "first": float(out["first"]),
        "final": float(out["final"]),
        "h_y": h_y,
        "n_rising": int(table["rose"].sum()),
        "n_layers": len(table),
        "not_informative": table.loc[~table["informative"], "layer"].tolist()
        if "informative" in table
        else [],
    }
    return Finding(
        "fitting",
        "Fitting",
        split,
        _verdicts(tables, decide),
        numbers,
        _spread_caveat(tables, split),
        table,
    )


# ----------------------------------------------------------------------------- 2. compression
def _compression_table(trends: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    base = trends["adaptive"]
    table = pd.DataFrame({"layer": base["layer"]})
    for variant, trend in trends.items():
        prefix = "" if variant == "adaptive" else f"{variant}_"
        for column in ("peak_step", "drop", "drop_pct", "compressed", "peak_at_start"):
            table[prefix + column] = trend[column].to_numpy()
    return table


def check_compression(tables: RunTables) -> Finding:
    """Finding 2: I(X;T) rises then falls on training data.

    Verdict per variant: at least one layer compresses (a drop from the peak to the last step of
    at least the threshold and above the spread). Under the null floor the rule is applied to
    I(X;T) minus its floor, so a fall that the floor shares (an estimator effect) does not count.
    """
    split = tables.main
    trends = {v: tables.trend(split, VARIANTS[v][0]) for v in tables.variants()}
    table = _compression_table(trends)

    def decide(variant: str) -> str:
        return OBSERVED if bool(trends[variant]["compressed"].any()) else NOT_OBSERVED

    base = trends["adaptive"]
    largest = int(np.nanargmax(base["drop_pct"])) if np.isfinite(base["drop_pct"]).any() else 0
    numbers = {
        "threshold": tables.threshold,
        "window": tables.window(split),
        "n_layers": len(base),
        "largest": base["layer"].iloc[largest] if len(base) else None,
        "activation": tables.config.get("activation"),
    }
    for variant, trend in trends.items():
        numbers[f"{variant}_compressed"] = trend.loc[trend["compressed"], "layer"].tolist()
    numbers["peak_at_start"] = base.loc[base["peak_at_start"], "layer"].tolist()
    caveats = _spread_caveat(tables, split)
    if "fixed" in trends:
        lost = sorted(set(numbers["adaptive_compressed"]) - set(numbers["fixed_compressed"]))
        numbers["lost_with_fixed"] = lost
    return Finding(
        "compression", "Compression", split, _verdicts(tables, decide), numbers, caveats, table
    )


# ----------------------------------------------------------------------------- 3. train vs test
def check_train_vs_test(tables: RunTables) -> Finding:
    """Finding 3: compression is clear on training data and weaker on test data.

    Verdict per variant: the relative I(X;T) drop is smaller on test in most layers and on
    average (:func:`~infoplane.analysis.summaries.compare_splits`).
    """
    if not ("train" in tables.splits and "test" in tables.splits):
        verdicts = dict.fromkeys(VARIANTS, NOT_CHECKED)
        numbers = {"splits": list(tables.splits)}
        return Finding("train_vs_test", "Train vs test", tables.main, verdicts, numbers)
    tables_by: dict[str, pd.DataFrame] = {}
    numbers: dict[str, Any] = {}
    for variant in tables.variants():
        q = VARIANTS[variant][0]
        cmp = compare_splits(tables.trend("train", q), tables.trend("test", q))
        tables_by[variant] = cmp
        numbers[variant] = {
            "weaker": int(cmp["weaker_on_test"].sum()),
            "n_layers": len(cmp),
            "train_drop_pct": float(np.nanmean(cmp["train_drop_pct"])) if len(cmp) else np.nan,
            "test_drop_pct": float(np.nanmean(cmp["test_drop_pct"])) if len(cmp) else np.nan,
            "train_compressed": int(cmp["train_compressed"].sum()),
            "test_compressed": int(cmp["test_compressed"].sum()),
        }

    def decide(variant: str) -> str:
        n = numbers[variant]
        weaker = n["weaker"] > n["n_layers"] / 2 and n["test_drop_pct"] < n["train_drop_pct"]
        return OBSERVED if weaker else NOT_OBSERVED

    return Finding(
        "train_vs_test",
        "Train vs test",
        "train",
        _verdicts(tables, decide),
        numbers,
        (),
        tables_by["adaptive"],
    )


# ----------------------------------------------------------------------------- 4. early stopping
def _stop_verdict(table: pd.DataFrame) -> tuple[str, str]:
    """(verdict, reason) of early stopping against the onsets of the compressing layers."""
    comp = table[table["compressed"]]
    if comp.empty:
        return NOT_CHECKED, "no layer compresses, so there is no onset to compare with"
    if bool(comp["onset_in_first_epoch"].all()):
        return NOT_CHECKED, "every onset falls inside the first epoch, before any stop is possible"
    before = comp.groupby("patience", sort=True)["before_onset"].apply(lambda s: int(s.sum()))
    n = comp["layer"].nunique()
    if bool((before == n).all()):
        return OBSERVED, ""
    if not bool(before.any()):
        return NOT_OBSERVED, ""
    return PARTLY, ""


def check_early_stopping(
    tables: RunTables, *, patience: Sequence[int] = (1, 3, 5), monitor: str = "test loss"
) -> Finding:
    """Finding 4: early stopping on a held-out signal ends training before compression starts.

    Stops come from :func:`~infoplane.analysis.summaries.stops`; the onset of a layer is its
    I(X;T) peak under each variant, with the threshold of ``tables``. Verdict: before the onset
    of every compressing layer for every patience (observed), of none (not observed), or of
    some (partly); not checked without metrics, without compression, or when every onset falls
    inside the first epoch (no per-epoch rule can stop before it).
    """
    split = tables.main
    empty = Finding("early_stopping", "Early stopping", split, dict.fromkeys(VARIANTS, NOT_CHECKED))
    if tables.metrics is None or tables.metrics.empty:
        return replace(empty, numbers={"reason": "no training metrics"})
    try:
        stop_table = stops(tables.metrics, patience, monitor=monitor)
    except InvalidInputError as exc:
        return replace(empty, numbers={"reason": str(exc)})
    per = {
        v: onsets_against_stops(stop_table, tables.trend(split, VARIANTS[v][0]))
        for v in tables.variants()
    }
    reasons = {v: _stop_verdict(t) for v, t in per.items()}
    numbers = {"stops": stop_table, "reasons": {v: r for v, (_, r) in reasons.items()}}
    return Finding(
        "early_stopping",
        "Early stopping",
        split,
        _verdicts(tables, lambda v: reasons[v][0]),
        numbers,
        (),
        per["adaptive"],
    )


# ----------------------------------------------------------------------------- 5. DPI
def _dpi_numbers(tables: RunTables, split: str, quantities: tuple[str, str]) -> dict[str, Any]:
    order, diff = dpi_differences(tables.frame, split=split, quantities=quantities)
    out: dict[str, Any] = {"pairs": list(itertools.pairwise(order))}
    for q, key in zip(quantities, ("xt", "ty"), strict=True):
        d = diff[q]
        finite = d[np.isfinite(d)]
        out[f"frac_{key}"] = {
            tol: float(np.mean(finite >= -max(tol, DPI_TOL))) if finite.size else np.nan
            for tol in DPI_TOLERANCES
        }
        with np.errstate(invalid="ignore"):
            means = np.nanmean(np.where(np.isfinite(d), d, np.nan), axis=0) if d.size else []
        out[f"bad_{key}"] = [p for p, m in zip(out["pairs"], means, strict=True) if m < -DPI_TOL]
        out[f"n_{key}"] = int(finite.size)
    return out


def check_dpi(tables: RunTables) -> Finding:
    """Finding 5: I(X;T_l) >= I(X;T_l+1) and I(T_l;Y) >= I(T_l+1;Y) on average.

    Fractions of (run, step) layer pairs that comply at the tolerances
    :data:`~infoplane.analysis.summaries.DPI_TOLERANCES`; verdict per variant: every pair
    complies on average for both quantities. Not applicable to the null floor.
    """
    split = tables.main
    if len(tables.aggregate(split)["layer"].unique()) < 2:
        return Finding(
            "dpi", "Data processing inequality", split, dict.fromkeys(VARIANTS, NOT_CHECKED)
        )
    numbers = {
        v: _dpi_numbers(tables, split, VARIANTS[v]) for v in tables.variants() if v != "null"
    }

    def decide(variant: str) -> str:
        n = numbers[variant]
        return NOT_OBSERVED if n["bad_xt"] or n["bad_ty"] else OBSERVED

    caveat = (
        "Per-layer adaptive widths do not guarantee the data processing inequality: each layer's "
        "Gram has its own width (the authors' pipeline complies in 19% of step pairs for I(T;Y) "
        "on digits); one width shared by all layers restores it."
    )
    verdicts = _verdicts(tables, decide, applies=("adaptive", "fixed"))
    return Finding("dpi", "Data processing inequality", split, verdicts, numbers, (caveat,))


# ----------------------------------------------------------------------------- 6. estimator
def _estimator_numbers(sel: pd.DataFrame) -> dict[str, Any]:
    n = sel["n"].to_numpy(float)
    log2n = np.log2(np.where(n > 1, n, np.nan))
    h_t, i_xt, h_x = (sel[c].to_numpy(float) for c in ("h_t", "i_xt", "h_x"))
    has_hx = np.isfinite(h_x)
    at_sx = has_hx & (i_xt >= h_x - AT_MAX_TOL)
    ratio = i_xt[has_hx] / np.where(h_x[has_hx] > 0, h_x[has_hx], 1.0)
    return {
        "frac_at_log2n": float(np.mean(np.isfinite(log2n) & (h_t >= log2n - AT_MAX_TOL))),
        "frac_below_sx": 1.0 - float(at_sx[has_hx].mean()) if has_hx.any() else np.nan,
        "max_ratio_sx": float(ratio.max()) if ratio.size else np.nan,
        "max_i_xt": float(np.nanmax(i_xt)),
        "mean_h_t": float(np.nanmean(h_t)),
        "i_xt_is_h_t": bool(np.all(np.abs(i_xt - h_t) <= IDENTITY_TOL)),
    }


def check_estimator(tables: RunTables) -> Finding:
    """Finding 6: with aligned widths the estimator is not degenerate.

    Degenerate when S(T) sits at log2 N in over 90% of the records (width too small), when S(T)
    is ~0 (width too large), or when I(X;T) equals S(T) in every record (the input Gram is the
    identity: I(X;T) then carries nothing about X beyond S(T)). Otherwise observed when I(X;T)
    stays below S(X) in at least 90% of the records and moves over training. Under the null
    floor: every layer's final I(X;T) is above its floor beyond the 95% CI.
    """
    split = tables.main
    numbers = _estimator_numbers(tables.measured(split))
    trend = tables.trend(split, "i_xt")
    ranges = trend["peak"] - np.minimum(trend["first"], trend["final"])
    numbers.update(n_moving=int((ranges > AT_MAX_TOL).sum()), n_layers=len(trend))
    numbers["max_range"] = float(ranges.max()) if len(ranges) else np.nan
    degenerate = (
        numbers["frac_at_log2n"] > 0.9 or numbers["mean_h_t"] < 0.05 or numbers["i_xt_is_h_t"]
    )
    below = not numbers["frac_below_sx"] < 0.9  # NaN (S(X) not recorded) does not count against
    if tables.has("null"):
        margin = tables.trend(split, "i_xt_margin")
        above = (margin["final"] > margin["final_ci"].fillna(0.0)) & (margin["final"] > 0)
        numbers["below_floor"] = margin.loc[~above, "layer"].tolist()

    def decide(variant: str) -> str:
        if variant == "null":
            return NOT_OBSERVED if numbers["below_floor"] else OBSERVED
        good = not degenerate and below and numbers["n_moving"] > 0
        return OBSERVED if good else NOT_OBSERVED

    caveats = ()
    if numbers["i_xt_is_h_t"]:
        caveats = (
            "I(X;T) equals S(T) in every record: the input Gram K_X is the identity (an input "
            "width far below the input distances, e.g. VGG-16 on raw CIFAR-10 with the authors' "
            "width), so I(X;T) carries no information about X beyond S(T). Choose an informative "
            "input width (x_width) to read the I(X;T) axis.",
        )
    verdicts = _verdicts(tables, decide, applies=("adaptive", "null"))
    return Finding("estimator", "Estimator", split, verdicts, numbers, caveats, trend)


# ----------------------------------------------------------------------------- all
def check_findings(
    tables: RunTables,
    *,
    patience: Sequence[int] = (1, 3, 5),
    monitor: str = "test loss",
) -> list[Finding]:
    """The six findings of the paper, in its order, each computed once."""
    return [
        check_fitting(tables),
        check_compression(tables),
        check_train_vs_test(tables),
        check_early_stopping(tables, patience=patience, monitor=monitor),
        check_dpi(tables),
        check_estimator(tables),
    ]


__all__ = [
    "NOT_APPLICABLE",
    "NOT_CHECKED",
    "NOT_OBSERVED",
    "NOT_RECORDED",
    "OBSERVED",
    "PARTLY",
    "VARIANTS",
    "Finding",
    "RunTables",
    "check_compression",
    "check_dpi",
    "check_early_stopping",
    "check_estimator",
    "check_findings",
    "check_fitting",
    "check_train_vs_test",
]
