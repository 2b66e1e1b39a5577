"""The findings of Wickstrøm et al. (arXiv:1909.11396; Entropy 25(6):899, 2023), one function
each, checked under the adaptive widths and under the controls that infoplane records.

Every ``check_*`` function takes a :class:`RunTables` (a history with its metrics and
configuration, whose per-layer tests are computed once and shared) and returns a
:class:`Finding`: the numbers, a verdict under each *variant* and caveats. The variants are the
estimates under the adaptive widths (``"adaptive"``, the uncontrolled estimate), the fixed-width
control (``"fixed"``: ``i_xt_fixed``, ``i_ty_fixed``) and the null floor (``"null"``: the
permutation test of the estimate, or the estimate minus the mean of its permuted draws).

Every verdict that claims something rests on a test at level 0.05 over runs:

* above the floor: the permutation p-values of each run's final step, combined over runs with
  Fisher's method (:func:`~infoplane.analysis.summaries.floor_table`);
* a rise (fitting): first against final window of each run, one-sided t-test over runs;
* a fall (compression): each run's fall from a peak chosen on another run, one-sided t-test
  over runs (three runs or more), Hommel's adjustment over the layers, and the relative fall
  at least the threshold (:func:`~infoplane.analysis.summaries.trend_table`);
* train against test: the paired 95% interval over runs of the runs' compression on each split.

A layer whose Gram is saturated in most of the records a verdict reads is not read
(:data:`SATURATED`); a test that needs more runs says so (:data:`INCONCLUSIVE`,
:data:`INCONCLUSIVE_CROSS_FIT`). :attr:`Finding.controlled` is the headline: observed only when
the estimate shows it and it survives the null floor and the fixed-width control (where that is
not saturated). :func:`check_findings` runs the six checks; :mod:`infoplane.analysis.wording`
puts them into sentences.
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
    CROSS_FIT_RUNS,
    DPI_TOL,
    DPI_TOLERANCES,
    SATURATION_LIMIT,
    check_threshold,
    compare_splits,
    default_window,
    dpi_differences,
    floor_table,
    onsets_against_stops,
    paired_differences,
    stops,
    trend_table,
)
from infoplane.analysis.tables import (
    ALPHA,
    aggregate,
    history_frame,
    hommel,
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
#: The variant's Gram is saturated in most of the records the verdict reads: nothing is read.
SATURATED = "not informative (saturated)"
#: A test over runs with one run.
INCONCLUSIVE = "inconclusive (needs >= 2 runs)"
#: A cross-fitted fall with fewer than three runs.
INCONCLUSIVE_CROSS_FIT = "inconclusive (needs >= 3 runs)"
#: A null floor recorded as one draw, without the permutation p-values a test needs.
NO_NULL_DISTRIBUTION = "control not recorded (no null distribution)"
#: Early stopping that never stops: where it would have stopped is not known.
NO_STOP = "inconclusive (early stopping never stops)"

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
#: The controls of a headline, in the order it names them.
CONTROL_NAMES: dict[str, str] = {"null": "null floor", "fixed": "fixed-width control"}
#: The controls that gate the headline of a trend of I(X;T) (see :attr:`Finding.gates`).
TREND_GATES: tuple[str, ...] = ("fixed",)
#: I(X;T) and S(T) closer than this (bits) in every record: the input Gram is the identity.
IDENTITY_TOL = 1e-6
#: Mean S(T) below this (bits): the kernel width is too large.
COLLAPSED_TOL = 0.05


@dataclass(frozen=True)
class Finding:
    """One finding checked on a history.

    Attributes:
        key: ``fitting``, ``compression``, ``train_vs_test``, ``early_stopping``, ``dpi`` or
            ``estimator``.
        title: the finding's name in the report.
        split: the split it was checked on.
        verdicts: verdict per variant (``adaptive``, ``fixed``, ``null``).
        numbers: the measured values and tests the verdicts rest on (bits, fractions, steps).
        caveats: what limits the verdict (one run, a missing control, ...).
        table: per-layer (or per-pair) details, or None.
        gates: the controls the headline (:attr:`controlled`) requires. A trend of I(X;T)
            (compression, train vs test) is gated by the fixed-width control alone: the null
            floor of I(X;T) moves with S(T), so it falls with any real compression (T
            collapsing onto the classes lowers S(T) and the floor with it) and its margin is
            reported beside the estimate, not required.
    """

    key: str
    title: str
    split: str
    verdicts: Mapping[str, str]
    numbers: Mapping[str, Any] = field(default_factory=dict)
    caveats: tuple[str, ...] = ()
    table: pd.DataFrame | None = None
    gates: tuple[str, ...] = ("null", "fixed")

    @property
    def verdict(self) -> str:
        """The verdict under the adaptive widths: the uncontrolled estimate."""
        return self.verdicts["adaptive"]

    @property
    def controlled(self) -> str:
        """The headline verdict: the estimate's, checked against the controls.

        ``"observed"`` only when the estimate shows the finding and every control of
        :attr:`gates` that applies shows it too; ``"not observed: fails ..."`` naming the
        controls that do not show it; ``"estimate only (...)"`` naming the controls that could
        not be read (not recorded, saturated, inconclusive, not checked). Any verdict of the
        estimate other than observed is the headline itself.
        """
        if self.verdict != OBSERVED:
            return self.verdict
        states = {v: self.verdicts.get(v, NOT_APPLICABLE) for v in self.gates}
        failed = [CONTROL_NAMES[v] for v, s in states.items() if s == NOT_OBSERVED]
        if failed:
            return "not observed: fails the " + " and the ".join(failed)
        unread = [_unread(v, s) for v, s in states.items() if s not in (OBSERVED, NOT_APPLICABLE)]
        return f"estimate only ({'; '.join(unread)})" if unread else OBSERVED


def _unread(variant: str, verdict: str) -> str:
    """A control that could not be read, in a few words."""
    if verdict == NOT_RECORDED:
        return f"no {CONTROL_NAMES[variant]}"
    if verdict == NO_NULL_DISTRIBUTION:
        return "no null distribution"
    return f"{CONTROL_NAMES[variant]} {verdict}"


class RunTables:
    """A history with its metrics and configuration; each per-layer test computed once.

    Args:
        history: a history source (:func:`~infoplane.analysis.tables.history_frame`).
        metrics: the training metrics (table, DataFrame or path) or None.
        config: the run configuration (names of the model, activation, dataset).
        threshold: the relative I(X;T) fall counted as compression (the effect size).
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
        self.history_config: dict[str, Any] = dict(self.frame.attrs.get("config") or {})
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
        return default_window(self.measured(split))

    def trend(self, split: str, quantity: str) -> pd.DataFrame:
        """:func:`~infoplane.analysis.summaries.trend_table` of ``quantity`` on ``split``."""
        return self._cached(
            ("trend", split, quantity),
            lambda: trend_table(
                self.measured(split),
                quantity,
                window=self.window(split),
                threshold=self.threshold,
            ),
        )

    def floor(self, split: str, quantity: str) -> pd.DataFrame:
        """:func:`~infoplane.analysis.summaries.floor_table` of ``quantity`` on ``split``."""
        return self._cached(
            ("floor", split, quantity), lambda: floor_table(self.measured(split), quantity)
        )

    def has(self, variant: str) -> bool:
        """Whether the columns of ``variant`` were measured (a control that was on)."""
        return all(recorded(self.frame, c) for c in _RECORDED_BY[variant])

    def has_distribution(self, quantity: str) -> bool:
        """Whether the permutation p-values of ``quantity`` (``i_xt``, ``i_ty``) were recorded."""
        return recorded(self.frame, f"{quantity}_p")

    def variants(self) -> list[str]:
        return [v for v in VARIANTS if self.has(v)]

    def n_runs(self, split: str) -> int:
        """Runs measured on ``split`` (the most of any layer)."""
        sel = self.measured(split)
        return int(sel.groupby("layer")["run"].nunique().max()) if len(sel) else 0

    @property
    def permutations(self) -> int | None:
        """B, the permuted draws per step of the null floor, when the history records it."""
        b = self.history_config.get("null_permutations")
        return int(b) if isinstance(b, (int, float)) and b > 0 else None

    @property
    def saturation_detected(self) -> bool:
        """True when no saturation flags were recorded and saturation is read from S(T) and N."""
        return not recorded(self.frame, "saturated")


def _verdicts(
    tables: RunTables, decide: Any, *, applies: Sequence[str] = tuple(VARIANTS)
) -> dict[str, str]:
    """``decide(variant)`` for every recorded variant of ``applies``; the others say why not."""
    return {
        v: NOT_APPLICABLE if v not in applies else decide(v) if tables.has(v) else NOT_RECORDED
        for v in VARIANTS
    }


def _trend_verdict(row: pd.Series, *, runs: int, decided: bool) -> str:
    """The verdict of one tested trend: unread (saturated, too few runs) or its decision."""
    if not row["recorded"]:
        return NOT_RECORDED
    if row["saturated"]:
        return SATURATED
    if row["n_runs"] < runs:
        return INCONCLUSIVE if runs <= 2 else INCONCLUSIVE_CROSS_FIT
    return OBSERVED if decided else NOT_OBSERVED


def _caveats(tables: RunTables, split: str, *, runs: int) -> tuple[str, ...]:
    """What the number of runs leaves undecided, for a finding whose test needs ``runs``."""
    n = tables.n_runs(split)
    if n >= runs:
        return ()
    if runs <= 2:
        return (
            "One run: a rise is tested over runs (>= 2), so it is inconclusive; the permutation "
            "test of the null floor is per step and holds for one run.",
        )
    return (
        f"{n} run{'s' if n > 1 else ''}: a fall is tested over runs from a peak chosen on "
        f"another run (cross-fitted) and needs >= {runs} runs, so compression is inconclusive.",
    )


def _mean(values: Any) -> float:
    """The mean of the finite values, NaN when there are none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else np.nan


def _saturated(trend: pd.DataFrame) -> list[str]:
    return trend.loc[trend["saturated"], "layer"].tolist()


# ----------------------------------------------------------------------------- 1. fitting
def _fitting_table(tables: RunTables, split: str) -> pd.DataFrame:
    base = tables.trend(split, "i_ty")
    columns = ["layer", "first", "final", "rise", "rise_ci", "p_rise", "rose", "n_runs"]
    table = base[[*columns, "saturated", "saturated_frac"]].copy()
    if tables.has("fixed"):
        fixed = tables.trend(split, "i_ty_fixed")
        for column in (*columns[1:], "saturated", "first_step"):
            table[f"fixed_{column}"] = fixed[column].to_numpy()
    if tables.has("null"):
        floor = tables.floor(split, "i_ty")
        for column in ("p", "margin", "informative", "saturated", "saturated_frac", "n_runs"):
            table[f"floor_{column}"] = floor[column].to_numpy()
    return table


def _floor_verdict(tables: RunTables, split: str, quantity: str, *, every: bool) -> str:
    """Above the floor: the output layer (``every`` False) or every layer that is read."""
    if not tables.has_distribution(quantity):
        return NO_NULL_DISTRIBUTION
    floor = tables.floor(split, quantity)
    floor = floor[floor["n_runs"] > 0]
    if floor.empty:
        return NO_NULL_DISTRIBUTION
    read = floor[~floor["saturated"]] if every else floor.iloc[[-1]]
    if read.empty or bool(read["saturated"].all()):
        return SATURATED
    return OBSERVED if bool(read["informative"].all()) else NOT_OBSERVED


def check_fitting(tables: RunTables) -> Finding:
    """Finding 1: I(T;Y) rises early; late layers approach S(Y).

    Verdict under the adaptive widths and the fixed-width control: the output layer's I(T;Y)
    rises, first against final window of each run with a one-sided t-test over runs at 0.05
    (inconclusive with one run). Under the null floor: the output layer is *informative about
    Y*, Fisher's combination over runs of the permutation p-values of each run's final step
    at most 0.05 (:data:`NO_NULL_DISTRIBUTION` where no p-values were recorded). A saturated
    layer is not read.
    """
    split = tables.main
    table = _fitting_table(tables, split)

    def decide(variant: str) -> str:
        if variant == "null":
            return _floor_verdict(tables, split, "i_ty", every=False)
        row = tables.trend(split, VARIANTS[variant][1]).iloc[-1]
        return _trend_verdict(row, runs=2, decided=bool(row["rose"]))

    out = table.iloc[-1]
    not_informative = []
    if "floor_informative" in table and tables.has_distribution("i_ty"):
        unread = table["floor_saturated"] | (table["floor_n_runs"] == 0)
        not_informative = table.loc[~table["floor_informative"] & ~unread, "layer"].tolist()
    numbers = {
        "layer": out["layer"],
        "first": float(out["first"]),
        "final": float(out["final"]),
        "h_y": _mean(tables.measured(split)["h_y"]),
        "n_rising": int(table["rose"].sum()),
        "n_layers": len(table),
        "n_runs": tables.n_runs(split),
        "permutations": tables.permutations,
        "not_informative": not_informative,
        "saturated": table.loc[table["saturated"], "layer"].tolist(),
    }
    verdicts = _verdicts(tables, decide)
    caveats = _caveats(tables, split, runs=2)
    return Finding("fitting", "Fitting", split, verdicts, numbers, caveats, table)


# ----------------------------------------------------------------------------- 2. compression
_COMPRESSION_COLUMNS = (
    "recorded",
    "n_runs",
    "peak_step",
    "peak_at_start",
    "drop",
    "drop_pct",
    "drop_ci_pct",
    "p_fall",
    "p_fall_adj",
    "compressed",
    "saturated",
    "saturated_frac",
    "first_step",
)


def _compression_table(trends: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    base = trends["adaptive"]
    table = pd.DataFrame({"layer": base["layer"]})
    for variant, trend in trends.items():
        prefix = "" if variant == "adaptive" else f"{variant}_"
        for column in _COMPRESSION_COLUMNS:
            table[prefix + column] = trend[column].to_numpy()
    return table


def _compression_verdict(trend: pd.DataFrame) -> str:
    """Compressed in at least one layer that is read (Hommel over the layers read)."""
    read = trend[trend["recorded"]]
    if read.empty:
        return NOT_RECORDED
    if bool(read["saturated"].all()):
        return SATURATED
    read = read[~read["saturated"]]
    if int(read["n_runs"].max()) < CROSS_FIT_RUNS:
        return INCONCLUSIVE_CROSS_FIT
    return OBSERVED if bool(read["compressed"].any()) else NOT_OBSERVED


def check_compression(tables: RunTables) -> Finding:
    """Finding 2: I(X;T) rises then falls on training data.

    Verdict per variant: at least one layer compresses (a cross-fitted fall over three runs or
    more, one-sided t-test at 0.05 after Hommel's adjustment over the layers read, and a mean
    fall of at least the threshold of the peak; see
    :func:`~infoplane.analysis.summaries.trend_table`). Under the null floor the test reads
    I(X;T) minus the mean of its permuted draws, so a fall that the floor shares (an estimator
    effect) does not count; under the fixed-width control, the steps where it exists.
    """
    split = tables.main
    trends = {v: tables.trend(split, VARIANTS[v][0]) for v in tables.variants()}
    table = _compression_table(trends)
    base = trends["adaptive"]
    pct = base["drop_pct"].to_numpy(float)
    largest = int(np.nanargmax(pct)) if np.isfinite(pct).any() else 0
    numbers: dict[str, Any] = {
        "threshold": tables.threshold,
        "window": tables.window(split),
        "n_layers": len(base),
        "n_runs": tables.n_runs(split),
        "largest": base["layer"].iloc[largest] if len(base) else None,
        "activation": tables.config.get("activation"),
        "peak_at_start": base.loc[base["peak_at_start"], "layer"].tolist(),
    }
    for variant, trend in trends.items():
        numbers[f"{variant}_compressed"] = trend.loc[trend["compressed"], "layer"].tolist()
        numbers[f"{variant}_saturated"] = _saturated(trend)
        numbers[f"{variant}_read"] = int((trend["recorded"] & ~trend["saturated"]).sum())
    if "fixed" in trends:
        lost = sorted(set(numbers["adaptive_compressed"]) - set(numbers["fixed_compressed"]))
        numbers["lost_with_fixed"] = lost
    verdicts = _verdicts(tables, lambda v: _compression_verdict(trends[v]))
    caveats = _caveats(tables, split, runs=CROSS_FIT_RUNS)
    return Finding(
        "compression", "Compression", split, verdicts, numbers, caveats, table, gates=TREND_GATES
    )


# ----------------------------------------------------------------------------- 3. train vs test
def _split_numbers(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    cmp = compare_splits(train, test)
    sat = set(_saturated(train)) | set(_saturated(test))
    layers = [name for name in cmp["layer"] if name not in sat]
    paired = paired_differences(train, test, layers)
    runs = min(int(train["n_runs"].max()), int(test["n_runs"].max())) if len(cmp) else 0
    return {
        "table": cmp,
        "n_layers": len(cmp),
        "layers": layers,
        "saturated": sorted(sat),
        "n_runs": runs,
        "train_compressed": int(cmp["train_compressed"].sum()),
        "test_compressed": int(cmp["test_compressed"].sum()),
        "weaker": int(cmp["weaker_on_test"].sum()),
        "train_drop_pct": paired["train"],
        "test_drop_pct": paired["test"],
        "diff_pct": paired["mean"],
        "diff_ci_pct": paired["ci"],
        "n_pairs": paired["n"],
    }


def _split_verdict(n: Mapping[str, Any]) -> str:
    if n["n_layers"] and not n["layers"]:
        return SATURATED
    if n["n_runs"] < CROSS_FIT_RUNS:
        return INCONCLUSIVE_CROSS_FIT
    if not n["train_compressed"] and not n["test_compressed"]:
        return NOT_APPLICABLE
    if not n["n_pairs"] >= 2 or not np.isfinite(n["diff_ci_pct"]):
        return INCONCLUSIVE
    return OBSERVED if n["diff_pct"] - n["diff_ci_pct"] > 0 else NOT_OBSERVED


def check_train_vs_test(tables: RunTables) -> Finding:
    """Finding 3: compression is clear on training data and weaker on test data.

    Verdict per variant, from the runs measured on both splits: each run's fall (cross-fitted,
    % of its peak) averaged over the layers read, train minus test; observed when the paired
    95% interval over runs of that difference lies above 0. Not applicable when neither split
    compresses in any layer; inconclusive with fewer than three runs.
    """
    if not ("train" in tables.splits and "test" in tables.splits):
        verdicts = dict.fromkeys(VARIANTS, NOT_CHECKED)
        numbers = {"splits": list(tables.splits)}
        return Finding(
            "train_vs_test", "Train vs test", tables.main, verdicts, numbers, gates=TREND_GATES
        )
    numbers: dict[str, Any] = {}
    for variant in tables.variants():
        q = VARIANTS[variant][0]
        numbers[variant] = _split_numbers(tables.trend("train", q), tables.trend("test", q))
    verdicts = _verdicts(tables, lambda v: _split_verdict(numbers[v]))
    table = numbers["adaptive"]["table"]
    return Finding(
        "train_vs_test", "Train vs test", "train", verdicts, numbers, (), table, gates=TREND_GATES
    )


# ----------------------------------------------------------------------------- 4. early stopping
def _stop_verdict(table: pd.DataFrame, trend: pd.DataFrame) -> tuple[str, str]:
    """(verdict, reason) of early stopping against the onsets of the compressing layers."""
    comp = table[table["compressed"]]
    if comp.empty:
        if int(trend["n_runs"].max()) < CROSS_FIT_RUNS:
            return NOT_CHECKED, "compression is inconclusive with fewer than 3 runs"
        return NOT_CHECKED, "no layer compresses, so there is no onset to compare with"
    if bool(comp["onset_in_first_epoch"].all()):
        return NOT_CHECKED, "every onset falls inside the first epoch, before any stop is possible"
    stopped = comp[comp["stopped"].astype(bool)]
    if stopped.empty:
        return NO_STOP, "the monitored signal still improves at the end for every patience"
    before = stopped.groupby("patience", sort=True)["before_onset"].apply(lambda s: int(s.sum()))
    n = comp["layer"].nunique()
    never = sorted(set(comp["patience"]) - set(stopped["patience"]))
    note = f"patience {'/'.join(map(str, never))} never stops and is not read" if never else ""
    if bool((before == n).all()):
        return OBSERVED, note
    if not bool(before.any()):
        return NOT_OBSERVED, note
    return PARTLY, note


def check_early_stopping(
    tables: RunTables, *, patience: Sequence[int] = (1, 3, 5), monitor: str = "test loss"
) -> Finding:
    """Finding 4: early stopping on a held-out signal ends training before compression starts.

    Stops come from :func:`~infoplane.analysis.summaries.stops`; the onset of a layer is the
    peak of its run-mean I(X;T) under each variant, for the layers that compress (a tested
    fall, :func:`check_compression`). Verdict over the patiences that stop: before the onset of
    every compressing layer for every such patience (observed), of none (not observed), or of
    some (partly); :data:`NO_STOP` when no patience stops (where it would have stopped is not
    known); not checked without metrics, without compression, or when every onset falls inside
    the first epoch (no per-epoch rule can stop before it).
    """
    split = tables.main
    empty = Finding("early_stopping", "Early stopping", split, dict.fromkeys(VARIANTS, NOT_CHECKED))
    if tables.metrics is None or tables.metrics.empty:
        return replace(empty, numbers={"reason": "no training metrics"})
    try:
        stop_table = stops(tables.metrics, patience, monitor=monitor)
    except InvalidInputError as exc:
        return replace(empty, numbers={"reason": str(exc)})
    trends = {v: tables.trend(split, VARIANTS[v][0]) for v in tables.variants()}
    per = {v: onsets_against_stops(stop_table, t) for v, t in trends.items()}
    reasons = {v: _stop_verdict(t, trends[v]) for v, t in per.items()}
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


#: What the DPI check is, said beside its verdict.
DPI_CAVEAT = (
    "The DPI check is descriptive: the fraction of (run, step) layer pairs that comply at fixed "
    "tolerances and the sign of each pair's mean difference, not a test with a false-positive "
    "rate. Per-layer adaptive widths do not guarantee the data processing inequality (each "
    "layer's Gram has its own width); one width shared by all layers restores it."
)


def check_dpi(tables: RunTables) -> Finding:
    """Finding 5: I(X;T_l) >= I(X;T_l+1) and I(T_l;Y) >= I(T_l+1;Y) on average.

    Fractions of (run, step) layer pairs that comply at the tolerances
    :data:`~infoplane.analysis.summaries.DPI_TOLERANCES`; verdict per variant: every pair
    complies on average for both quantities. A descriptive tolerance check, not a test. Not
    applicable to the null floor.
    """
    split = tables.main
    if tables.measured(split)["layer"].nunique() < 2:
        return Finding(
            "dpi", "Data processing inequality", split, dict.fromkeys(VARIANTS, NOT_CHECKED)
        )
    numbers: dict[str, Any] = {
        v: _dpi_numbers(tables, split, VARIANTS[v]) for v in tables.variants() if v != "null"
    }

    def decide(variant: str) -> str:
        n = numbers[variant]
        return NOT_OBSERVED if n["bad_xt"] or n["bad_ty"] else OBSERVED

    caveats = [DPI_CAVEAT]
    saturated = _saturated(tables.trend(split, "i_xt"))
    if saturated:
        caveats.append(
            f"Saturated layers ({', '.join(saturated)}) sit at the bound of the estimator; "
            "their pairs compare bounds, not information."
        )
    verdicts = _verdicts(tables, decide, applies=("adaptive", "fixed"))
    return Finding("dpi", "Data processing inequality", split, verdicts, numbers, tuple(caveats))


# ----------------------------------------------------------------------------- 6. estimator
def _estimator_numbers(sel: pd.DataFrame) -> dict[str, Any]:
    h_t, i_xt, h_x = (sel[c].to_numpy(float) for c in ("h_t", "i_xt", "h_x"))
    has_hx = np.isfinite(h_x)
    at_sx = has_hx & (i_xt >= h_x - 0.01)
    ratio = i_xt[has_hx] / np.where(h_x[has_hx] > 0, h_x[has_hx], 1.0)
    return {
        "frac_saturated": float(np.nan_to_num(sel["saturated"].to_numpy(float), nan=0.0).mean()),
        "frac_below_sx": 1.0 - float(at_sx[has_hx].mean()) if has_hx.any() else np.nan,
        "max_ratio_sx": float(ratio.max()) if ratio.size else np.nan,
        "max_i_xt": float(np.nanmax(i_xt)),
        "mean_h_t": float(np.nanmean(h_t)),
        "i_xt_is_h_t": bool(np.all(np.abs(i_xt - h_t) <= IDENTITY_TOL)),
    }


def _moving(trend: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Layers whose I(X;T) changes first to final (two-sided t over runs, Hommel), and the
    adjusted p-values of the layers read (NaN for the others)."""
    read = (trend["recorded"] & ~trend["saturated"]).to_numpy(bool)
    adjusted = hommel(np.where(read, trend["p_change"].to_numpy(float), np.nan))
    with np.errstate(invalid="ignore"):
        moves = adjusted < ALPHA
    return trend.loc[moves, "layer"].tolist(), adjusted


def check_estimator(tables: RunTables) -> Finding:
    """Finding 6: with aligned widths the estimator is not degenerate.

    Under the adaptive widths: not informative (saturated) when most records' Gram is
    saturated (S(T) at log2 N: a width too small; at 0: too large); not observed when I(X;T)
    equals S(T) in every record (the input Gram is the identity), when S(T) is ~0 on average, or
    when I(X;T) reaches S(X) in over 10% of the records; otherwise observed when I(X;T) moves
    over training in at least one layer read (first against final window, two-sided t-test over
    runs, Hommel over the layers; inconclusive with one run). Under the fixed-width control:
    the same movement test on I(X;T) at the held widths, so a change that only follows the
    width (a rescaled representation, the moving average's lag) does not count. Under the null
    floor: every layer read is above its floor (Fisher's combination of the permutation
    p-values of each run's final step of I(X;T) at most 0.05).
    """
    split = tables.main
    numbers = _estimator_numbers(tables.measured(split))
    trend = tables.trend(split, "i_xt")
    moving, adjusted = _moving(trend)
    numbers.update(n_moving=len(moving), moving=moving, n_layers=len(trend))
    numbers.update(p_move=float(np.nanmin(adjusted)) if np.isfinite(adjusted).any() else np.nan)
    numbers.update(max_change=float(np.nanmax(np.abs(trend["rise"]))), saturated=_saturated(trend))
    numbers.update(n_runs=tables.n_runs(split), permutations=tables.permutations)
    if tables.has("null") and tables.has_distribution("i_xt"):
        floor = tables.floor(split, "i_xt")
        below = ~floor["informative"] & ~floor["saturated"] & (floor["n_runs"] > 0)
        numbers["below_floor"] = floor.loc[below, "layer"].tolist()
        numbers["floor"] = floor

    if tables.has("fixed"):
        fixed_trend = tables.trend(split, VARIANTS["fixed"][0])
        numbers["moving_fixed"] = _moving(fixed_trend)[0]
        numbers["fixed_saturated"] = bool(fixed_trend["saturated"].all())

    def decide(variant: str) -> str:
        if variant == "null":
            return _floor_verdict(tables, split, "i_xt", every=True)
        if variant == "fixed":
            if numbers["fixed_saturated"]:
                return SATURATED
            if numbers["n_runs"] < 2:
                return INCONCLUSIVE
            return OBSERVED if numbers["moving_fixed"] else NOT_OBSERVED
        if numbers["frac_saturated"] > SATURATION_LIMIT or bool(trend["saturated"].all()):
            return SATURATED
        degenerate = numbers["i_xt_is_h_t"] or numbers["mean_h_t"] < COLLAPSED_TOL
        if degenerate or numbers["frac_below_sx"] < 0.9:
            return NOT_OBSERVED
        if numbers["n_runs"] < 2:
            return INCONCLUSIVE
        return OBSERVED if moving else NOT_OBSERVED

    caveats = ()
    if numbers["i_xt_is_h_t"]:
        caveats = (
            "I(X;T) equals S(T) in every record: the input Gram K_X is the identity (an input "
            "width far below the input distances, e.g. VGG-16 on raw CIFAR-10 with the authors' "
            "width), so I(X;T) carries no information about X beyond S(T). Choose an informative "
            "input width (x_width) to read the I(X;T) axis.",
        )
    verdicts = _verdicts(tables, decide)
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
    "CONTROL_NAMES",
    "DPI_CAVEAT",
    "INCONCLUSIVE",
    "INCONCLUSIVE_CROSS_FIT",
    "NOT_APPLICABLE",
    "NOT_CHECKED",
    "NOT_OBSERVED",
    "NOT_RECORDED",
    "NO_NULL_DISTRIBUTION",
    "NO_STOP",
    "OBSERVED",
    "PARTLY",
    "SATURATED",
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
