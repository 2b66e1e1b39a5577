"""Is it the network, or the estimator? The false-positive rate and power of every verdict.

Runs the tracker (:class:`infoplane.InformationPlane`, one measured layer, the null floor and the
fixed-width control) on scenarios whose answer is known by construction
(:mod:`benchmarks.scenarios`), reads the verdicts of
:func:`infoplane.analysis.findings.check_findings` on each replicate history (one run, and three
independent runs aggregated), and counts how often each verdict fires where it is false (its
false-positive rate) and where it is true (its power), with 95% Clopper-Pearson intervals.
Beside them: the per-step permutation test (``i_ty_p``, ``i_xt_p`` at 0.05) on independent data
and against a known dependence, the estimate against the truth for correlated Gaussians, the
estimate's bias on independent data per N, D and number of classes, and how often the estimate
and the fixed control saturate.

Writes docs/VALIDATION.md (generated: edit this script, not the page).
Run: ``python -m benchmarks.validation [--replicates 200] [--steps 40] [--quick] [--out PATH]
[--cache DIR]``; with ``--cache`` the measured runs are kept, so a change of the verdicts' rules
is validated again in minutes (the verdicts only).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from benchmarks import scenarios as sc
from benchmarks.common import header_line, load_average, machine, table
from infoplane import InformationPlane
from infoplane.analysis import findings as fd
from infoplane.io import atomic_write_text

#: The nominal false-positive rate of a verdict, and of the per-step test.
NOMINAL = 0.05
#: Coverage of the intervals of the tables.
COVERAGE = 0.95
#: The CI check flags a count above this quantile of Binomial(n, NOMINAL).
CHECK_LEVEL = 0.999
#: Verdicts that count as the claim being made.
FIRED = frozenset({fd.OBSERVED, fd.PARTLY})
#: How the headline verdict begins when a control does not show what the estimate shows.
NOT_OBSERVED_BECAUSE = fd.NOT_OBSERVED + ":"
#: Runs aggregated into one replicate history.
RUNS_PER_HISTORY = (1, 3)
#: What a verdict claims, by ``(finding, variant)``.
CLAIMS: dict[tuple[str, str], str] = {
    ("fitting", "adaptive"): "I(T;Y) rises",
    ("fitting", "fixed"): "I(T;Y) rises at fixed width",
    ("fitting", "null"): "final I(T;Y) above the floor",
    ("fitting", "controlled"): "I(T;Y) rises, the controls agree",
    ("compression", "adaptive"): "I(X;T) falls",
    ("compression", "fixed"): "I(X;T) falls at fixed width",
    ("compression", "null"): "I(X;T) margin over the floor falls",
    ("compression", "controlled"): "I(X;T) falls, the controls agree",
    ("estimator", "adaptive"): "not degenerate, I(X;T) moves",
    ("estimator", "null"): "final I(X;T) above the floor",
    ("estimator", "controlled"): "not degenerate, I(X;T) moves, above the floor",
}
#: The findings in the page's order.
CLAIMS_ORDER = tuple(dict.fromkeys(f for f, _ in CLAIMS))
#: Per-step columns read when present (NaN where the tracker does not record them).
STEP_COLUMNS = (
    *("i_xt", "i_ty", "h_t", "h_x", "h_y", "sigma"),
    *("i_xt_null", "i_ty_null", "i_xt_null_q95", "i_ty_null_q95", "i_xt_p", "i_ty_p"),
    *("i_xt_fixed", "i_ty_fixed", "h_t_fixed", "sigma_fixed", "saturated", "saturated_fixed"),
)
NOT_RECORDED = "not recorded"


@dataclasses.dataclass(frozen=True)
class Config:
    """The sizes of one validation run (the defaults: the full run of docs/VALIDATION.md)."""

    replicates: int = 200
    steps: int = 40
    n: int = 100
    permutations: int = 49
    null_dims: tuple[int, ...] = (10, 256)
    grid_runs: int = 6
    grid_steps: int = 30
    onehot_a: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
    rho: tuple[float, ...] = (0.0, 0.3, 0.6, 0.9, 0.99, 0.999)
    gaussian_dim: int = 10
    bias_runs: int = 3
    bias_steps: int = 30
    bias_n: tuple[int, ...] = (50, 100, 200)
    bias_d: tuple[int, ...] = (10, 256, 4096)
    bias_k: tuple[int, ...] = (2, 10)
    quick: bool = False

    def scenarios(self) -> list[sc.Scenario]:
        """The null scenarios and the collapse (power) scenario of the verdict tables."""
        nulls = sc.null_scenarios(self.null_dims)
        if self.quick:
            nulls = [s for s in nulls if s.kind in ("independent", "static")]
        return [*nulls, sc.collapse_scenario()]


#: The CI's sizes: seconds, not minutes.
QUICK = Config(
    replicates=10,
    steps=28,
    n=32,
    permutations=19,
    null_dims=(10,),
    grid_runs=2,
    grid_steps=10,
    onehot_a=(0.0, 1.5),
    rho=(0.0, 0.9),
    bias_runs=1,
    bias_steps=5,
    bias_n=(50,),
    bias_d=(10, 256),
    bias_k=(2, 10),
    quick=True,
)


# ----------------------------------------------------------------------------- the tracker
def tracker_options(permutations: int) -> dict[str, Any]:
    """The tracker's options: both controls, the B permuted draws where the tracker has them."""
    options: dict[str, Any] = {"controls": ("null", "fixed"), "x_width": "median"}
    if "null_permutations" in inspect.signature(InformationPlane).parameters:
        options["null_permutations"] = int(permutations)
    return options


def measure_run(
    scenario: sc.Scenario, *, run: int, steps: int, n: int, options: Mapping[str, Any]
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One run of ``scenario``: its history as a DataFrame and its per-step results."""
    model = sc.Controlled()
    plane = InformationPlane(model, [sc.LAYER], include_output=False, run=run, **options)
    rows = []
    for step, (x, y, t) in enumerate(scenario.batches(run=run, steps=steps, n=n)):
        model.output = t
        result = plane.measure(x, y, step=step)[sc.LAYER]
        rows.append(
            {"run": run, "step": step, **{c: result.get(c, math.nan) for c in STEP_COLUMNS}}
        )
    return plane.history.to_dataframe(), rows


@dataclasses.dataclass
class Measured:
    """The runs of one scenario: each run's history, every step's result, and the wall and CPU
    seconds their measurement took (stored with them in a cache)."""

    scenario: sc.Scenario
    frames: list[pd.DataFrame]
    steps: pd.DataFrame
    seconds: tuple[float, float] = (0.0, 0.0)
    cached: bool = False


def measure_scenario(
    scenario: sc.Scenario,
    runs: int,
    steps: int,
    n: int,
    options: Mapping[str, Any],
    cache: Path | None = None,
) -> Measured:
    """``runs`` runs of ``scenario``; read from ``cache`` (a folder) where an earlier call with
    the same arguments stored them, and stored there otherwise. Verdicts are computed from the
    records, so a cache lets a change of the rules be validated without measuring again."""
    what = (scenario.name, scenario.kind, scenario.dim, scenario.end, scenario.strength)
    key = repr((what, scenario.classes, runs, steps, n, sorted(options.items())))
    path = None if cache is None else cache / f"{zlib.crc32(key.encode()):08x}.pkl"
    if path is not None and path.exists():
        stored = pd.read_pickle(path)
        if stored["key"] == key:
            return Measured(scenario, stored["frames"], stored["steps"], stored["seconds"], True)
    began = (time.perf_counter(), time.process_time())
    frames, rows = [], []
    for run in range(runs):
        frame, per_step = measure_run(scenario, run=run, steps=steps, n=n, options=options)
        frames.append(frame)
        rows += per_step
    seconds = (time.perf_counter() - began[0], time.process_time() - began[1])
    measured = Measured(scenario, frames, pd.DataFrame(rows), seconds)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"key": key, "frames": frames, "steps": measured.steps, "seconds": seconds}
        pd.to_pickle(entry, path)
    return measured


class Measurer:
    """:func:`measure_scenario` with the tracker's options and a cache, keeping count of the
    seconds measuring took (``total``: those stored in the cache too; ``fresh``: this run's)."""

    def __init__(self, options: Mapping[str, Any], cache: Path | None = None) -> None:
        self.options = dict(options)
        self.cache = cache
        self.total = np.zeros(2)
        self.fresh = np.zeros(2)

    def __call__(self, scenario: sc.Scenario, runs: int, steps: int, n: int) -> Measured:
        m = measure_scenario(scenario, runs, steps, n, self.options, self.cache)
        self.total += m.seconds
        if not m.cached:
            self.fresh += m.seconds
        return m


# ----------------------------------------------------------------------------- verdicts
Check = Callable[[Any], Sequence[fd.Finding]]


def default_check(frame: pd.DataFrame) -> list[fd.Finding]:
    """The report's verdicts on one history: :func:`check_findings` of its run tables."""
    return fd.check_findings(fd.RunTables(frame))


def history_groups(frames: Sequence[pd.DataFrame], runs: int) -> list[pd.DataFrame]:
    """Disjoint replicate histories of ``runs`` consecutive runs each."""
    return [pd.concat(frames[i : i + runs]) for i in range(0, len(frames) - runs + 1, runs)]


def _variants(finding: fd.Finding) -> dict[str, str]:
    """The verdict under each variant, and the headline (``controlled``) where there is one."""
    out = dict(finding.verdicts)
    controlled = getattr(type(finding), "controlled", None)
    if isinstance(controlled, property):
        out["controlled"] = finding.controlled
    return out


def decision(verdict: str) -> bool | None:
    """Whether ``verdict`` states the claim (True), denies it (False), or decides nothing
    (None: not recorded, saturated, inconclusive, not checked, estimate only)."""
    if verdict in FIRED:
        return True
    if verdict == fd.NOT_OBSERVED or verdict.startswith(NOT_OBSERVED_BECAUSE):
        return False
    return None


def verdict_records(measured: Measured, check: Check = default_check) -> pd.DataFrame:
    """One row per (runs per history, replicate, finding, variant) with its verdict."""
    rows = []
    for runs in RUNS_PER_HISTORY:
        for replicate, frame in enumerate(history_groups(measured.frames, runs)):
            for finding in check(frame):
                for variant, verdict in _variants(finding).items():
                    rows.append(
                        {
                            "scenario": measured.scenario.name,
                            "runs": runs,
                            "replicate": replicate,
                            "finding": finding.key,
                            "variant": variant,
                            "verdict": verdict,
                        }
                    )
    return pd.DataFrame(rows)


def clopper_pearson(k: int, n: int, coverage: float = COVERAGE) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial rate k / n."""
    from scipy.stats import beta

    if n == 0:
        return math.nan, math.nan
    tail = (1.0 - coverage) / 2.0
    lo = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1.0 - tail, k + 1, n - k))
    return lo, hi


def binomial_bound(n: int, rate: float = NOMINAL, level: float = CHECK_LEVEL) -> int:
    """The ``level`` quantile of Binomial(n, rate): more firings than this are not chance."""
    from scipy.stats import binom

    return int(binom.ppf(level, n, rate))


def verdict_rates(records: pd.DataFrame, scenarios: Iterable[sc.Scenario]) -> pd.DataFrame:
    """Per (scenario, finding, variant, runs): firings, decisions, the rate and its interval,
    the truth by construction, and the verdicts seen where there was no decision."""
    truth = {s.name: s for s in scenarios}
    rows = []
    keys = ["scenario", "finding", "variant", "runs"]
    for (name, finding, variant, runs), group in records.groupby(keys, sort=False):
        verdicts = group["verdict"]
        decisions = verdicts.map(decision)
        undecided = decisions.isna()
        decided = int((~undecided).sum())
        fired = int(decisions.eq(True).sum())
        lo, hi = clopper_pearson(fired, decided)
        rows.append(
            {
                "scenario": name,
                "finding": finding,
                "variant": variant,
                "runs": int(runs),
                "truth": truth[name].truth(finding, variant),
                "fired": fired,
                "decided": decided,
                "rate": fired / decided if decided else math.nan,
                "lo": lo,
                "hi": hi,
                "bound": binomial_bound(decided) if decided else -1,
                "n": len(verdicts),
                "undecided": ", ".join(sorted(set(verdicts[undecided]))),
            }
        )
    return pd.DataFrame(rows)


#: The verdicts that claim a controlled false-positive rate: the controls and the headline.
CONTROLLED = ("null", "fixed", "controlled")


def uncalibrated(rates: pd.DataFrame, variants: Iterable[str] = CONTROLLED) -> pd.DataFrame:
    """Rows false by construction, of ``variants``, that fired more often than a 5% rate allows
    (above the 99.9% quantile of Binomial(decided, 0.05))."""
    false = rates["truth"].eq(False) & rates["variant"].isin(list(variants))
    return rates[false & (rates["decided"] > 0) & (rates["fired"] > rates["bound"])]


# ----------------------------------------------------------------------------- per-step tables
def _rate(mask: pd.Series, valid: pd.Series) -> tuple[float, float, float, int]:
    n = int(valid.sum())
    k = int((mask & valid).sum())
    lo, hi = clopper_pearson(k, n)
    return (k / n if n else math.nan), lo, hi, n


def step_tests(steps: pd.DataFrame, quantity: str) -> dict[str, Any]:
    """The per-step tests of ``quantity`` (``i_ty`` or ``i_xt``): the permutation p-value at
    :data:`NOMINAL`, the estimate above the null's 95% quantile, above the null's mean."""
    est, null = steps[quantity], steps[f"{quantity}_null"]
    p, q95 = steps[f"{quantity}_p"], steps[f"{quantity}_null_q95"]
    return {
        "p": _rate(p <= NOMINAL, p.notna()),
        "q95": _rate(est > q95, q95.notna() & est.notna()),
        "mean": _rate(est > null, null.notna() & est.notna()),
        "margin": est - null,
    }


def onehot_table(config: Config, measure: Measurer) -> list[dict[str, Any]]:
    """Scenario 6a: the per-step test of I(T;Y) against T = a onehot(Y) + noise, per a."""
    rows = []
    for a in config.onehot_a:
        measured = measure(sc.onehot_scenario(a), config.grid_runs, config.grid_steps, config.n)
        steps = measured.steps
        tests = step_tests(steps, "i_ty")
        rows.append(
            {
                "a": a,
                "i_ty": steps["i_ty"].mean(),
                "floor": steps["i_ty_null"].mean(),
                "margin": tests["margin"].mean(),
                "p <= 0.05": _fmt_rate(*tests["p"]),
                "above q95": _fmt_rate(*tests["q95"]),
                "S(Y)": steps["h_y"].mean(),
            }
        )
    return rows


def gaussian_table(config: Config, measure: Measurer) -> list[dict[str, Any]]:
    """Scenario 6b: I(X;T) of correlated Gaussians against the truth, per rho."""
    rows = []
    for rho in config.rho:
        scenario = sc.gaussian_scenario(rho, config.gaussian_dim)
        measured = measure(scenario, config.grid_runs, config.grid_steps, config.n)
        steps = measured.steps
        tests = step_tests(steps, "i_xt")
        rows.append(
            {
                "rho": rho,
                "true I": scenario.true_i_xt,
                "log2 N": math.log2(config.n),
                "i_xt": steps["i_xt"].mean(),
                "floor": steps["i_xt_null"].mean(),
                "margin": tests["margin"].mean(),
                "margin SD": tests["margin"].std(),
                "S(T)": steps["h_t"].mean(),
                "p <= 0.05": _fmt_rate(*tests["p"]),
            }
        )
    return rows


def bias_table(config: Config, measure: Measurer) -> list[dict[str, Any]]:
    """The estimates on independent data (truth 0) per N, D and number of classes K."""
    rows = []
    for n in config.bias_n:
        for d in config.bias_d:
            for k in config.bias_k:
                scenario = sc.independent_scenario(d, k)
                steps = measure(scenario, config.bias_runs, config.bias_steps, n).steps
                ty, xt = step_tests(steps, "i_ty"), step_tests(steps, "i_xt")
                rows.append(
                    {
                        "N": n,
                        "D": d,
                        "K": k,
                        "S(Y)": steps["h_y"].mean(),
                        "I(T;Y)": steps["i_ty"].mean(),
                        "margin": ty["margin"].mean(),
                        "margin SD": ty["margin"].std(),
                        "p_ty <= 0.05": _fmt_rate(*ty["p"]),
                        "I(X;T)": steps["i_xt"].mean(),
                        "x margin": xt["margin"].mean(),
                        "x margin SD": xt["margin"].std(),
                        "p_xt <= 0.05": _fmt_rate(*xt["p"]),
                        "saturated": _mean_or_missing(steps["saturated"]),
                    }
                )
    return rows


def _mean_or_missing(values: pd.Series) -> float | str:
    values = values.dropna()
    return float(values.mean()) if len(values) else NOT_RECORDED


def step_table(measured: Sequence[Measured]) -> list[dict[str, Any]]:
    """The per-step tests and the saturation rates on the verdict scenarios."""
    rows = []
    for m in measured:
        ty, xt = step_tests(m.steps, "i_ty"), step_tests(m.steps, "i_xt")
        rows.append(
            {
                "scenario": m.scenario.name,
                "I(T;Y) p <= 0.05": _fmt_rate(*ty["p"]),
                "I(T;Y) > floor mean": _fmt_rate(*ty["mean"]),
                "I(X;T) p <= 0.05": _fmt_rate(*xt["p"]),
                "I(X;T) > floor mean": _fmt_rate(*xt["mean"]),
                "saturated": _mean_or_missing(m.steps["saturated"]),
                "saturated (fixed)": _mean_or_missing(m.steps["saturated_fixed"]),
                "fixed recorded": float(m.steps["i_xt_fixed"].notna().mean()),
            }
        )
    return rows


# ----------------------------------------------------------------------------- formatting
def _fmt_rate(rate: float, lo: float, hi: float, n: int, k: int | None = None) -> str:
    if not n:
        return NOT_RECORDED
    count = "" if k is None else f" ({k}/{n})"
    return f"{rate:.3f} [{lo:.3f}, {hi:.3f}]{count}"


def _cell(rates: pd.DataFrame, runs: int) -> str:
    row = rates[rates["runs"] == runs]
    if row.empty:
        return "-"
    r = row.iloc[0]
    if not r["decided"]:
        return r["undecided"] or "-"
    text = _fmt_rate(r["rate"], r["lo"], r["hi"], int(r["decided"]), int(r["fired"]))
    rest = int(r["n"] - r["decided"])
    return text + (f"; {rest} undecided ({r['undecided']})" if rest else "")


def _above(rates: pd.DataFrame) -> str:
    """ "yes" where a rate false by construction exceeds 5% (and whether its interval does)."""
    decided = rates[rates["decided"] > 0]
    if decided.empty or not (decided["rate"] > NOMINAL).any():
        return ""
    runs = ", ".join(
        f"{int(r)} run{'s' * (r > 1)}" for r in decided.loc[decided.rate > NOMINAL].runs
    )
    certain = (decided["lo"] > NOMINAL).any()
    return f"**yes** ({runs}{'; interval above 5%' if certain else ''})"


def verdict_rows(rates: pd.DataFrame, truth: bool | None) -> list[dict[str, Any]]:
    """Table rows of the decided verdicts whose truth by construction is ``truth``."""
    sel = decided(rates)
    sel = sel[sel["truth"].map(lambda t: t is truth)]
    rows = []
    for (name, finding, variant), group in sel.groupby(
        ["scenario", "finding", "variant"], sort=False
    ):
        row = {
            "scenario": name,
            "verdict": f"{finding} / {variant}",
            "claim": CLAIMS.get((finding, variant), f"{finding} observed"),
            "1 run": _cell(group, 1),
            "3 runs": _cell(group, 3),
        }
        if truth is False:
            row["above 5%"] = _above(group)
        rows.append(row)
    return rows


def decided(rates: pd.DataFrame) -> pd.DataFrame:
    """The rows of verdicts decided on some replicate history (not those never checked)."""
    keys = ["scenario", "finding", "variant"]
    return rates[rates.groupby(keys, sort=False)["decided"].transform("sum") > 0]


def never_decided(rates: pd.DataFrame) -> dict[str, str]:
    """``{finding / variant: verdicts}`` of the verdicts no history of any scenario decided."""
    totals = rates.groupby(["finding", "variant"], sort=False).agg(
        decided=("decided", "sum"), undecided=("undecided", "first")
    )
    return {f"{f} / {v}": r.undecided for (f, v), r in totals.iterrows() if r.decided == 0}


def exceeding(rates: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The false-by-construction verdicts firing above 5%, as phrases: all of them, and those
    whose interval lies above 5%."""
    sel = rates[rates["truth"].eq(False) & (rates["decided"] > 0) & (rates["rate"] > NOMINAL)]
    phrases = [
        f"{r.finding} / {r.variant} on {r.scenario}, {r.runs} run{'s' * (r.runs > 1)}: "
        f"{r.rate:.1%} [{r.lo:.1%}, {r.hi:.1%}]"
        for r in sel.itertuples()
    ]
    certain = [p for p, lo in zip(phrases, sel["lo"], strict=True) if lo > NOMINAL]
    return phrases, certain


# ----------------------------------------------------------------------------- the run
@dataclasses.dataclass
class Results:
    """Everything docs/VALIDATION.md shows."""

    config: Config
    options: dict[str, Any]
    rates: pd.DataFrame
    steps: list[dict[str, Any]]
    onehot: list[dict[str, Any]]
    gaussian: list[dict[str, Any]]
    bias: list[dict[str, Any]]
    seconds: dict[str, dict[str, float]]
    total: tuple[float, float]
    measured: list[Measured]


class Clock:
    """Wall and CPU seconds of each part of a run, split into measuring (including what a cache
    stored) and the rest (verdicts, tables), logged to stderr as each part ends."""

    def __init__(self, measure: Measurer) -> None:
        self.measure = measure
        self.start = time.perf_counter()
        self.last = self._now()
        self.parts: dict[str, dict[str, float]] = {}

    def _now(self) -> np.ndarray:
        clocks = np.array([time.perf_counter(), time.process_time()])
        return np.concatenate([clocks, self.measure.total, self.measure.fresh])

    def lap(self, part: str) -> None:
        now = self._now()
        d = now - self.last
        self.last = now
        self.parts[part] = {
            "measure wall s": d[2],
            "measure CPU s": d[3],
            "rest wall s": d[0] - d[4],
            "rest CPU s": d[1] - d[5],
        }
        print(f"[{time.perf_counter() - self.start:7.1f} s] {part}", file=sys.stderr, flush=True)

    def total(self) -> tuple[float, float]:
        """Wall and CPU seconds of the whole run as if nothing had been cached."""
        wall = sum(p["measure wall s"] + p["rest wall s"] for p in self.parts.values())
        cpu = sum(p["measure CPU s"] + p["rest CPU s"] for p in self.parts.values())
        return wall, cpu


def run_validation(
    config: Config, check: Check = default_check, cache: Path | None = None
) -> Results:
    """Measure every scenario and grid of ``config`` (or read them from ``cache``) and count
    the verdicts."""
    measure = Measurer(tracker_options(config.permutations), cache)
    clock = Clock(measure)
    measured, records = [], []
    runs = config.replicates * max(RUNS_PER_HISTORY)
    for scenario in config.scenarios():
        m = measure(scenario, runs, config.steps, config.n)
        measured.append(m)
        records.append(verdict_records(m, check))
        clock.lap(f"{scenario.name}: {runs} runs")
    rates = verdict_rates(pd.concat(records), config.scenarios())
    grids = {}
    for name, make in (
        ("onehot", onehot_table),
        ("gaussian", gaussian_table),
        ("bias", bias_table),
    ):
        grids[name] = make(config, measure)
        clock.lap(f"{name} table")
    return Results(
        config,
        measure.options,
        rates,
        step_table(measured),
        **grids,
        seconds=clock.parts,
        total=clock.total(),
        measured=measured,
    )


# ----------------------------------------------------------------------------- the page
def render(results: Results, command: str, info: Mapping[str, Any]) -> str:
    """docs/VALIDATION.md."""
    out = _header(results, command, info)
    out += _scenario_section(results)
    out += _false_positive_section(results.rates)
    out += _power_section(results.rates)
    out += _step_sections(results)
    out += _seconds_section(results)
    return "\n".join(out)


def _header(results: Results, command: str, info: Mapping[str, Any]) -> list[str]:
    c = results.config
    b = results.options.get("null_permutations")
    floor = (
        f"B = {b} permuted draws (a p-value is at least 1/(B+1) = {1 / (b + 1):.3f})"
        if b
        else "one permuted draw (the tracker has no B)"
    )
    wall, cpu = (v / 60.0 for v in results.total)
    runs = max(RUNS_PER_HISTORY)
    return [
        "# Validation: the false-positive rate and power of every verdict",
        "",
        "<!-- Generated by benchmarks/validation.py: edit the script and rerun it, "
        "not this page. -->",
        "",
        f"Generated by `{command}`: {wall:.1f} minutes of wall time ({cpu:.1f} minutes of CPU "
        "time, one thread; the parts are in the last table).",
        "",
        header_line(info).removeprefix("## ") + ".",
        "",
        f"Every run: N = {c.n} digits images per step (a fresh random batch), {c.steps} steps, one "
        "measured layer, `InformationPlane(controls=('null', 'fixed'), x_width='median', "
        f"width='alignment')`, the null floor from {floor}. The verdicts are those of "
        "`infoplane.analysis.findings.check_findings` under each variant (`adaptive`, `fixed`, "
        "`null`) and its headline `Finding.controlled` (`controlled`). A replicate history is "
        f"one run, or {runs} independent runs aggregated: {c.replicates * runs} runs per "
        f"scenario give {c.replicates * runs} one-run and {c.replicates} {runs}-run replicates. "
        "Rates carry 95% Clopper-Pearson intervals, as `rate [low, high] (firings/decisions)`; "
        "a verdict that decides nothing (inconclusive, saturated) is not a decision.",
        "",
    ]


def _claims(pairs: Iterable[tuple[str, str]]) -> str:
    """``fitting (adaptive, fixed); ...``: the variants of each finding, in the page's order."""
    by: dict[str, list[str]] = {}
    for finding, variant in pairs:
        by.setdefault(finding, []).append(variant)
    order = [*fd.VARIANTS, "controlled"]
    return (
        "; ".join(
            f"{f} ({', '.join(sorted(v, key=order.index))})"
            for f, v in sorted(by.items(), key=lambda kv: list(CLAIMS_ORDER).index(kv[0]))
        )
        or "-"
    )


def _scenario_section(results: Results) -> list[str]:
    rows = [
        {
            "scenario": m.scenario.name,
            "T": m.scenario.about,
            "false by construction": _claims(m.scenario.false),
            "true by construction": _claims(m.scenario.true),
        }
        for m in results.measured
    ]
    return [
        "## Scenarios",
        "",
        "What the measured layer outputs in each scenario (`benchmarks/scenarios.py`), and which "
        "verdicts are false or true by construction there.",
        "",
        table(rows, list(rows[0])),
        "",
    ]


def _false_positive_section(rates: pd.DataFrame) -> list[str]:
    out = [
        "## Verdicts on null scenarios: the false-positive rate",
        "",
        "Each row is a verdict that is false by construction on its scenario, and how often "
        "`check_findings` states it anyway.",
        "",
        table(
            verdict_rows(rates, False),
            ["scenario", "verdict", "claim", "1 run", "3 runs", "above 5%"],
        ),
        "",
    ]
    by_reason: dict[str, list[str]] = {}
    for name, reason in never_decided(rates).items():
        by_reason.setdefault(reason, []).append(name)
    if by_reason:
        out += [
            "Verdicts with no decision on these designs (one split, one measured layer, no "
            "training metrics), left out of the tables: "
            + "; ".join(f"{', '.join(names)} ({why})" for why, names in by_reason.items())
            + ".",
            "",
        ]
    over, certain = exceeding(rates)
    if not over:
        return [*out, "No verdict fires more often than 5% on data where it is false.", ""]
    wholly = (
        "Of these, the interval lies wholly above 5% for: " + "; ".join(certain) + "."
        if certain
        else "No interval lies wholly above 5%."
    )
    return [
        *out,
        "These verdicts fire more often than 5% on data where they are false: "
        + "; ".join(over)
        + ". "
        + wholly,
        "",
    ]


def _power_section(rates: pd.DataFrame) -> list[str]:
    out = [
        "## Verdicts where they are true: the power",
        "",
        "Each row is a verdict that is true by construction on its scenario (a rise, a fall or "
        "a change on the collapse scenario; above the floor wherever T = tanh(x W) carries "
        "information about X and Y), and how often it is stated.",
        "",
        table(verdict_rows(rates, True), ["scenario", "verdict", "claim", "1 run", "3 runs"]),
        "",
    ]
    unknown = verdict_rows(rates, None)
    if unknown:
        out += [
            "Verdicts without an answer known by construction on these scenarios, for the record:",
            "",
            table(unknown, ["scenario", "verdict", "claim", "1 run", "3 runs"]),
            "",
        ]
    return out


def _step_sections(results: Results) -> list[str]:
    c = results.config
    grid = f"{c.grid_runs} runs of {c.grid_steps} steps"
    return [
        "## The per-step test",
        "",
        "Per measured step of the scenarios above: how often the permutation p-value is at most "
        "0.05, and how often the estimate exceeds the mean of the permuted draws (the "
        "one-sided comparison with the floor); on `independent` both quantities are null, on the "
        "others both are true. Steps of a run share W and the width's moving average, so the "
        "intervals, which treat steps as independent, are optimistic.",
        "",
        table(results.steps, list(results.steps[0])),
        "",
        f"### Dependence on Y: T = a onehot(Y) + N(0, I), {grid}",
        "",
        "The power of the per-step test of I(T;Y) at 0.05 against the strength a (a = 0 is null).",
        "",
        table(results.onehot, list(results.onehot[0])),
        "",
        f"### Correlated Gaussians: D = {c.gaussian_dim}, {grid}",
        "",
        "The estimate of I(X;T) against the truth -(D/2) log2(1 - rho^2): matrix-based "
        f"information is bounded by log2 N = {math.log2(c.n):.2f} bits, so beyond a few bits of "
        "truth the estimate and its margin over the floor saturate.",
        "",
        table(results.gaussian, list(results.gaussian[0])),
        "",
        f"## Bias on independent data ({c.bias_runs} runs of {c.bias_steps} steps per cell)",
        "",
        "T independent of X and Y (truth 0 for both): the estimate at the alignment width, its "
        "margin over the floor mean, the margin's SD over steps, and the per-step test's "
        "false-positive rate, per N, D and number of classes K.",
        "",
        table(results.bias, list(results.bias[0])),
        "",
    ]


def _seconds_section(results: Results) -> list[str]:
    rows = [{"part": k, **v} for k, v in results.seconds.items()]
    columns = ["part", "measure wall s", "measure CPU s", "rest wall s", "rest CPU s"]
    return [
        "## Cost",
        "",
        "Wall and CPU seconds of each part: measuring the runs, and the rest (the verdicts and "
        "the tables); the wall time includes what other processes took from the core.",
        "",
        table(rows, columns),
        "",
    ]


def command_line(args: argparse.Namespace) -> str:
    """The command that makes the page: the options that change what is measured (not where
    the page or the cache go)."""
    words = ["python -m benchmarks.validation"]
    words += ["--quick"] if args.quick else []
    for name in ("replicates", "steps", "permutations"):
        if getattr(args, name) is not None:
            words += [f"--{name}", str(getattr(args, name))]
    words += [] if args.threads == 1 else ["--threads", str(args.threads)]
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI's sizes (seconds)")
    parser.add_argument("--replicates", type=int, default=None, help="3-run replicates")
    parser.add_argument("--steps", type=int, default=None, help="steps per run")
    parser.add_argument("--permutations", type=int, default=None, help="B of the null floor")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    parser.add_argument(
        "--out", default=None, help="the page (default: docs/VALIDATION.md; with --quick: print it)"
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="a folder keeping the measured runs: a rerun with the same sizes reads them and "
        "only recomputes the verdicts",
    )
    args = parser.parse_args(argv)
    config = QUICK if args.quick else Config()
    names = ("replicates", "steps", "permutations")
    changes = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    config = dataclasses.replace(config, **changes)
    torch.set_num_threads(args.threads)
    info = machine()
    results = run_validation(config, cache=None if args.cache is None else Path(args.cache))
    info["load_after"] = load_average()
    page = render(results, command_line(args), info)
    out = args.out or (None if args.quick else "docs/VALIDATION.md")
    if out is None:
        print(page)
    else:
        atomic_write_text(Path(out), page + "\n")
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
