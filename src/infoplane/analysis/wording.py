"""The findings in sentences: each :class:`~infoplane.analysis.findings.Finding` becomes a
headline (the verdict of the estimate under the adaptive widths, with its test) followed by one
sentence per control, with its test, and the caveats. A finding that is not observed says so in
capitals (NOT observed), one that could not be checked or decided says why. Information
quantities are in bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from infoplane.analysis.findings import (
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
    Finding,
    RunTables,
    check_findings,
)
from infoplane.analysis.summaries import COMPRESSION_THRESHOLD, DPI_TOLERANCES

_CONTROL_NAMES = {"fixed": "With fixed widths", "null": "Above the null floor"}
_UNDECIDED = (INCONCLUSIVE, INCONCLUSIVE_CROSS_FIT, SATURATED, NO_NULL_DISTRIBUTION, NO_STOP)


def name(layer: str) -> str:
    """A layer name readable in a sentence (``'3'`` becomes ``'layer 3'``)."""
    return layer if any(c.isalpha() for c in layer) else f"layer {layer}"


def pct(fraction: float) -> str:
    """A fraction as a whole percentage, or an em dash when unknown."""
    return f"{100.0 * fraction:.0f}%" if math.isfinite(fraction) else "—"


def p_value(p: float) -> str:
    """A p-value in words: ``p = 0.012``, ``p < 0.001``, or ``no test`` when unknown."""
    if not math.isfinite(p):
        return "no test"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def listing(items: Sequence[str], limit: int = 4) -> str:
    items = list(items)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"


def runs(n: int) -> str:
    return "1 run" if n == 1 else f"{n} runs"


def controls_note(tables: RunTables) -> str:
    """Which controls the history holds: said once, not in every finding."""
    names = {"null": "null floor", "fixed": "fixed-width control"}
    present = [names[v] for v in names if tables.has(v)]
    if tables.has("null") and tables.permutations:
        present[0] += f" ({tables.permutations} permuted draws per step)"
    missing = [names[v] for v in names if not tables.has(v)]
    detected = (
        " No saturation flags recorded: a Gram counts as saturated where S(T) is within 1% of "
        "log2 N or of 0 bits."
        if tables.saturation_detected
        else ""
    )
    if not missing:
        return f"Controls recorded: {', '.join(present)}.{detected}"
    head = f"Controls recorded: {', '.join(present)}; " if present else "No control was recorded; "
    return (
        f"{head}without the {' and the '.join(missing)} (measure with controls=('null', "
        "'fixed')) the verdicts cannot tell training dynamics from estimator effects there."
        + detected
    )


def _control(f: Finding, variant: str, observed: str, not_observed: str) -> str | None:
    """The sentence of one control per its verdict; None when it was not recorded."""
    verdict = f.verdicts[variant]
    text = {OBSERVED: observed, NOT_OBSERVED: not_observed}.get(verdict)
    if text:
        return f"{_CONTROL_NAMES[variant]}, {text}"
    if verdict in (NOT_RECORDED, NOT_APPLICABLE, NOT_CHECKED):
        return None
    return f"{_CONTROL_NAMES[variant]}: {verdict}."


def _saturated_layers(t: pd.DataFrame, prefix: str = "") -> str:
    rows = t[t[f"{prefix}saturated"].astype(bool)]
    return listing(
        [f"{name(r['layer'])} ({pct(r[f'{prefix}saturated_frac'])})" for _, r in rows.iterrows()]
    )


# ----------------------------------------------------------------------------- table cells
def trend_state(row: Mapping[str, Any], kind: str, threshold: float, prefix: str = "") -> str:
    """One layer's rise (``kind="rise"``) or fall (``"fall"``) in a few words, with the reason
    when it does not count: ``saturated (80%)`` (not informative: the Gram is saturated in 80%
    of the records read), too few runs, no fall, below the threshold, or not significant."""
    if not row.get(f"{prefix}recorded", True):
        return "—"
    if row[f"{prefix}saturated"]:
        return f"saturated ({pct(row[f'{prefix}saturated_frac'])})"
    need = 2 if kind == "rise" else 3
    if row[f"{prefix}n_runs"] < need:
        return f"inconclusive: needs >= {need} runs"
    if row[f"{prefix}{'rose' if kind == 'rise' else 'compressed'}"]:
        return "yes"
    size = row[f"{prefix}{kind if kind == 'rise' else 'drop'}"]
    if not size > 0:
        return "no: never falls" if kind == "fall" else "no: does not rise"
    if kind == "fall" and not row[f"{prefix}drop_pct"] >= 100 * threshold:
        return f"no: fall below {100 * threshold:.0f}%"
    return "no: not significant"


def floor_state(row: Mapping[str, Any], prefix: str = "") -> str:
    """One layer above its null floor in a few words: ``yes, p = 0.003`` or why not."""
    if not row[f"{prefix}n_runs"] > 0:
        return "—"
    if row[f"{prefix}saturated"]:
        return f"saturated ({pct(row[f'{prefix}saturated_frac'])})"
    return f"{'yes' if row[f'{prefix}informative'] else 'no'}, {p_value(row[f'{prefix}p'])}"


# ----------------------------------------------------------------------------- 1. fitting
def rise_test(row: Mapping[str, Any], prefix: str = "") -> str:
    """The rise of one layer with its test: ``rise +2.46 ± 0.05 bits (95% CI, ...)``."""
    n = int(row[f"{prefix}n_runs"])
    if n < 2:
        return "untested with one run"
    return (
        f"rise {row[f'{prefix}rise']:+.2f} ± {row[f'{prefix}rise_ci']:.2f} bits (95% CI), "
        f"one-sided t-test over {n} runs, {p_value(row[f'{prefix}p_rise'])}"
    )


def _fitting_head(f: Finding) -> str:
    n, row = f.numbers, f.table.iloc[-1]
    label, h_y = name(n["layer"]), n["h_y"]
    sy = f" (S(Y) = {h_y:.2f})" if math.isfinite(h_y) else ""
    moved = f"{n['first']:.2f} -> {n['final']:.2f} bits{sy}"
    if f.verdict == OBSERVED:
        near = f", {pct(n['final'] / h_y)} of S(Y)" if math.isfinite(h_y) and h_y > 0 else ""
        return (
            f"Fitting ({f.split}): I(T;Y) of the output layer ({label}) rose from "
            f"{n['first']:.2f} to {n['final']:.2f} bits{sy}{near}: {rise_test(row)}; I(T;Y) "
            f"rose in {n['n_rising']} of {n['n_layers']} layers (each tested at 0.05)."
        )
    if f.verdict == SATURATED:
        return (
            f"Fitting on {f.split}: {SATURATED}: the output layer's Gram ({label}) is saturated "
            f"in {pct(row['saturated_frac'])} of its records (S(T) at log2 N or at 0), so its "
            "I(T;Y) is at the estimator's bound, not read."
        )
    if f.verdict == INCONCLUSIVE:
        return (
            f"Fitting on {f.split}: {INCONCLUSIVE}: I(T;Y) of the output layer ({label}) went "
            f"{moved} in one run; a rise is tested over runs."
        )
    return (
        f"Fitting NOT observed ({f.split}): I(T;Y) of the output layer ({label}) did not rise "
        f"significantly ({moved}; {rise_test(row)})."
    )


def _fitting(f: Finding) -> list[str]:
    t = f.table
    out = [_fitting_head(f)]
    if "fixed_final" in t:
        row = t.iloc[-1]
        a, b, since = row["fixed_first"], row["fixed_final"], row["fixed_first_step"]
        detail = f"{a:.2f} -> {b:.2f} bits from step {since}; {rise_test(row, 'fixed_')}"
        out.append(
            _control(
                f,
                "fixed",
                f"fitting survives ({detail}).",
                f"fitting does NOT survive ({detail}).",
            )
        )
    if "floor_p" in t:
        out.append(_fitting_floor(f))
    return out + list(f.caveats)


def _floor_method(n_runs: int, permutations: int | None) -> str:
    draws = f", {permutations} permuted draws per step" if permutations else ""
    return f"permutation p-value of each run's final step, Fisher over {runs(n_runs)}{draws}"


def _fitting_floor(f: Finding) -> str:
    if f.verdicts["null"] == NO_NULL_DISTRIBUTION:
        return (
            f"Above the null floor: {NO_NULL_DISTRIBUTION}: the history holds the floor without "
            "permutation p-values, and a margin over one draw is noise-sized, so no test is "
            "made (measure with several null permutations)."
        )
    t, n = f.table, f.numbers
    read = t[~t["floor_saturated"] & (t["floor_n_runs"] > 0)]
    parts = [
        f"{name(r.layer)} {r.floor_margin:+.2f} bits, {p_value(r.floor_p)}"
        for r in read.itertuples()
    ]
    bad = n["not_informative"]
    tail = (
        "; NOT informative about Y (p > 0.05): " + listing([name(b) for b in bad])
        if bad
        else "; every layer read is informative about Y"
    )
    if bool(t["floor_saturated"].any()):
        tail += f"; {SATURATED}: {_saturated_layers(t, 'floor_')}"
    method = _floor_method(int(t["floor_n_runs"].max()), n.get("permutations"))
    return (
        f"Above the null floor (final I(T;Y) minus the mean of its permuted-label draws; {method}"
        f"): {listing(parts, 6)}{tail}."
    )


# ----------------------------------------------------------------------------- 2. compression
def fall_test(row: Mapping[str, Any], prefix: str = "") -> str:
    """One layer's fall with its test: ``fall 20% ± 3% of the peak (95% CI), p = 0.004``."""
    ci = row[f"{prefix}drop_ci_pct"]
    interval = f" ± {ci:.0f}%" if math.isfinite(ci) else ""
    return (
        f"fall {row[f'{prefix}drop_pct']:.0f}%{interval} of the peak (95% CI) after step "
        f"{int(row[f'{prefix}peak_step'])}, {p_value(row[f'{prefix}p_fall_adj'])}"
    )


def _drops(t: pd.DataFrame, prefix: str = "") -> list[str]:
    rows = t[t[prefix + "compressed"].astype(bool)]
    return [f"{name(r['layer'])} {fall_test(r, prefix)}" for _, r in rows.iterrows()]


def compression_rule(threshold: float, n_runs: int, n_layers: int) -> str:
    """The compression test in words."""
    return (
        f"each run's fall from a peak chosen on another run, one-sided t-test over "
        f"{runs(n_runs)} that it exceeds {100 * threshold:.0f}% of the peak, at 0.05 after "
        f"Hommel over {n_layers} layers"
    )


def _why_not(row: Mapping[str, Any], threshold: float) -> str:
    """Why the layer with the largest fall does not compress, in words."""
    if not row["drop"] > 0:
        return "I(X;T) never falls below its peak in any layer"
    why = (
        f"below the {100 * threshold:.0f}% threshold"
        if not row["drop_pct"] >= 100 * threshold
        else "not significant after Hommel's adjustment"
    )
    return (
        f"the largest fall is {name(row['layer'])} {row['drop']:.2f} bits ({fall_test(row)}), {why}"
    )


def _compression_head(f: Finding) -> str:
    n, t = f.numbers, f.table
    act = f" ({n['activation']})" if n.get("activation") else ""
    rule = compression_rule(n["threshold"], n["n_runs"], n["adaptive_read"])
    if f.verdict == OBSERVED:
        return (
            f"Compression{act} on {f.split}: I(X;T) rose then fell in "
            f"{len(n['adaptive_compressed'])} of {n['n_layers']} layers ({rule}): "
            f"{listing(_drops(t))}."
        )
    if f.verdict == SATURATED:
        return (
            f"Compression{act} on {f.split}: {SATURATED}: every layer's Gram is saturated in "
            f"most of its records ({_saturated_layers(t)}), so no fall is read."
        )
    row = t[t["layer"] == n["largest"]].iloc[0] if n["largest"] is not None else None
    if f.verdict == INCONCLUSIVE_CROSS_FIT:
        seen = ""
        if row is not None and row["drop"] > 0:
            seen = (
                f"; the run-mean I(X;T) of {name(row['layer'])} fell {row['drop_pct']:.0f}% "
                f"from its peak at step {int(row['peak_step'])} (descriptive, untested)"
            )
        return (
            f"Compression{act} on {f.split}: {INCONCLUSIVE_CROSS_FIT}: a fall is tested over "
            f"runs from a peak chosen on another run, and {runs(n['n_runs'])} cannot do "
            f"that{seen}."
        )
    largest = "I(X;T) never falls below its peak in any layer"
    if row is not None:
        largest = _why_not(row, n["threshold"])
    return f"Compression NOT observed{act} on {f.split} ({rule}): {largest}."


def _compression(f: Finding) -> list[str]:
    n, t = f.numbers, f.table
    out = [_compression_head(f)]
    if n["peak_at_start"] and f.verdict != SATURATED:
        names = listing([name(x) for x in n["peak_at_start"]])
        out.append(f"I(X;T) peaked at the first measured step (no initial rise) in: {names}.")
    lost = n.get("lost_with_fixed") or []
    moved = f"; lost in {listing([name(x) for x in lost])}" if lost else ""
    if "fixed_compressed" in t:
        since = f" from step {int(t['fixed_first_step'].min())}" if len(t) else ""
        out.append(
            _control(
                f,
                "fixed",
                f"I(X;T){since} compresses in {len(n['fixed_compressed'])} of "
                f"{n['fixed_read']} layers read ({listing(_drops(t, 'fixed_'))}){moved}.",
                f"compression does NOT survive: no layer's I(X;T){since} falls significantly "
                "by the threshold (a fall of the estimate alone can follow the moving average "
                "of its width).",
            )
        )
    if "null_compressed" in t:
        out.append(
            _control(
                f,
                "null",
                f"I(X;T) minus its floor compresses in {len(n['null_compressed'])} of "
                f"{n['null_read']} layers ({listing(_drops(t, 'null_'))}); reported, not "
                "required: the floor of I(X;T) falls with S(T) in any real compression.",
                "I(X;T) minus its floor falls by the threshold in no layer (the same "
                "cross-fitted test); reported, not required: the floor of I(X;T) falls with "
                "S(T) in any real compression.",
            )
        )
    return out + list(f.caveats)


# ----------------------------------------------------------------------------- 3. train vs test
def _tvt_numbers(n: Mapping[str, Any]) -> str:
    counts = f"compressing layers: {n['train_compressed']} train, {n['test_compressed']} test"
    if not math.isfinite(n["diff_pct"]):
        return counts
    ci = n["diff_ci_pct"]
    interval = f" ± {ci:.1f}%" if math.isfinite(ci) else ""
    return (
        f"runs' mean fall {n['train_drop_pct']:.1f}% of the peak on train vs "
        f"{n['test_drop_pct']:.1f}% on test, difference {n['diff_pct']:+.1f}%{interval} (paired "
        f"95% CI over {runs(n['n_pairs'])}, {len(n['layers'])} layers); {counts}"
    )


def _tvt_sentence(verdict: str, n: Mapping[str, Any]) -> str:
    """``what`` of one variant (without its subject)."""
    detail = _tvt_numbers(n)
    if verdict == OBSERVED:
        return f"compression is weaker on test ({detail})."
    if verdict == NOT_OBSERVED:
        return f"compression is NOT weaker on test ({detail})."
    if verdict == NOT_APPLICABLE:
        return f"{NOT_APPLICABLE}: no layer compresses on either split ({detail})."
    return f"{verdict} ({detail})."


def _train_vs_test(f: Finding) -> list[str]:
    if f.verdict == NOT_CHECKED:
        return [
            f"Train vs test: not checked, the history holds only split(s) {f.numbers['splits']} "
            "(the paper measured train and test planes in separate runs)."
        ]
    n = f.numbers
    head = _tvt_sentence(f.verdict, n["adaptive"])
    out = [f"Train vs test: {'NOT observed: ' if f.verdict == NOT_OBSERVED else ''}{head}"]
    for variant in ("fixed", "null"):
        if variant in n and f.verdicts[variant] != NOT_RECORDED:
            sentence = _tvt_sentence(f.verdicts[variant], n[variant])
            out.append(f"{_CONTROL_NAMES[variant]}, {sentence}")
    return out


# ----------------------------------------------------------------------------- 4. early stopping
def _stop_head(stops: pd.DataFrame) -> tuple[str, str]:
    monitor = str(stops["monitor"].iloc[0])
    pats = "/".join(str(p) for p in stops["patience"])
    when = [
        f"epoch {e}" if s else "never"
        for e, s in zip(stops["stop_epoch"], stops["stopped"], strict=True)
    ]
    if any(w != "never" for w in when):
        text = f"would stop at {' / '.join(when)}"
    else:
        text = "would never stop (the monitored signal still improves at the end)"
    steps = "/".join(str(s) for s in stops["stop_step"])
    return f"Early stopping on {monitor} with patience {pats} {text}", steps


def _onsets(t: pd.DataFrame) -> tuple[str, str, int]:
    comp = t[t["compressed"]]
    peaks = comp.drop_duplicates("layer")["peak_step"]
    lo, hi = int(peaks.min()), int(peaks.max())
    onset = f"step {lo}" if lo == hi else f"steps {lo}-{hi}"
    stopped = comp[comp["stopped"].astype(bool)]
    before = stopped.groupby("patience", sort=True)["before_onset"].apply(lambda s: int(s.sum()))
    return onset, "/".join(str(b) for b in before), comp["layer"].nunique()


def _stop_verdict(f: Finding, onset: str, counts: str, n_c: int) -> str:
    if f.verdict == OBSERVED:
        return f"before the compression onset in all {n_c} compressing layers"
    if f.verdict == NOT_OBSERVED:
        return f"NOT observed: it stops after the compression onset of all {n_c} compressing layers"
    if f.verdict == NO_STOP:
        return (
            f"{NO_STOP}: where training would stop is not known, so it is not compared with the "
            "compression onset"
        )
    return f"before the compression onset in {counts} of {n_c} compressing layers"


def _early_stopping(f: Finding) -> list[str]:
    n = f.numbers
    if "stops" not in n:
        reason = n["reason"]
        return [
            f"Early stopping: not checked, {reason}."
            if reason == "no training metrics"
            else f"Early stopping: not checked ({reason})."
        ]
    head, steps = _stop_head(n["stops"])
    reason = n["reasons"]["adaptive"]
    if f.verdict == NOT_CHECKED and not f.table["compressed"].any():
        return [f"{head}; not checked: {reason}."]
    onset, counts, n_c = _onsets(f.table)
    if f.verdict == NOT_CHECKED:
        first = int(n["stops"]["first_step"].iloc[0])
        return [
            f"{head}: not checked: every compression onset ({onset}) falls inside the first "
            f"epoch, whose value is recorded at step {first}; a rule that checks once per epoch "
            "cannot stop before it."
        ]
    note = f"; {reason}" if reason else ""
    verdict = _stop_verdict(f, onset, counts, n_c)
    out = [f"{head} (steps {steps}): {verdict} (I(X;T) peaks at {onset}{note})."]
    for variant in ("fixed", "null"):
        sentence = _control(
            f, variant, "the stop comes before every onset.", "the stop comes before NO onset."
        )
        why = n["reasons"].get(variant)
        if sentence and f.verdicts[variant] not in (OBSERVED, NOT_OBSERVED) and why:
            sentence = sentence[:-1] + f" ({why})."
        if sentence is None and f.verdicts[variant] == NOT_CHECKED and why:
            sentence = f"{_CONTROL_NAMES[variant]}: not checked ({why})."
        out.append(sentence)
    return out


# ----------------------------------------------------------------------------- 5. DPI
def _dpi_sentence(n: Mapping[str, Any]) -> str:
    extra = "; ".join(
        f"at {tol:g} bits: {pct(n['frac_xt'][tol])} / {pct(n['frac_ty'][tol])}"
        for tol in DPI_TOLERANCES[1:]
    )
    return (
        f"{pct(n['frac_xt'][0.0])} of consecutive-layer (run, step) pairs comply for I(X;T) and "
        f"{pct(n['frac_ty'][0.0])} for I(T;Y) at tolerance 0 ({extra})"
    )


def _dpi_tail(n: Mapping[str, Any]) -> str:
    if not n["bad_xt"] and not n["bad_ty"]:
        return f"on average every one of the {len(n['pairs'])} pairs complies for both."
    bits = []
    for key, what in (("bad_xt", "I(X;T)"), ("bad_ty", "I(T;Y)")):
        if n[key]:
            bits.append(f"{what} on {listing([f'{name(a)}->{name(b)}' for a, b in n[key]])}")
    return "NOT respected on average for " + "; ".join(bits) + "."


def _dpi(f: Finding) -> list[str]:
    if f.verdict == NOT_CHECKED:
        return ["DPI: not checked, fewer than two layers measured at the same steps."]
    n = f.numbers
    out = [f"DPI ({f.split}): {_dpi_sentence(n['adaptive'])}; {_dpi_tail(n['adaptive'])}"]
    if "fixed" in n:
        out.append(
            f"{_CONTROL_NAMES['fixed']}: {_dpi_sentence(n['fixed'])}; {_dpi_tail(n['fixed'])}"
        )
    return out + list(f.caveats)


# ----------------------------------------------------------------------------- 6. estimator
def _degenerate(f: Finding) -> str | None:
    n, split = f.numbers, f.split
    if f.verdict == SATURATED:
        return (
            f"Estimator DEGENERATE on {split}, {SATURATED}: the Gram is saturated in "
            f"{pct(n['frac_saturated'])} of the records (S(T) at log2 N: a kernel width too "
            "small; at 0 bits: too large), so I(X;T) and I(T;Y) sit at the estimator's bounds "
            "and are not read."
        )
    if n["mean_h_t"] < 0.05:
        return (
            f"Estimator DEGENERATE on {split}: S(T) is {n['mean_h_t']:.3f} bits on average "
            "(kernel width too large): every layer collapses to I(X;T) = I(T;Y) = 0."
        )
    if n["i_xt_is_h_t"]:
        return f"Estimator DEGENERATE for I(X;T) on {split}: I(X;T) equals S(T) in every record."
    return None


def _movement(f: Finding) -> str:
    n = f.numbers
    if n["n_runs"] < 2:
        return (
            f"its movement over training is {INCONCLUSIVE} (largest change first to final "
            f"{n['max_change']:.2f} bits, untested)"
        )
    test = (
        f"first vs final window, two-sided t-test over {runs(n['n_runs'])}, Hommel over the "
        f"layers, smallest {p_value(n['p_move'])}"
    )
    if n["n_moving"]:
        return f"moves over training in {n['n_moving']} of {n['n_layers']} layers ({test})"
    return f"does NOT move significantly over training in any layer ({test})"


def _estimator_head(f: Finding) -> str:
    degenerate = _degenerate(f)
    if degenerate:
        return degenerate
    n = f.numbers
    if math.isfinite(n["frac_below_sx"]):
        below = (
            f"stays below S(X) in {pct(n['frac_below_sx'])} of the records (largest "
            f"I(X;T)/S(X) = {n['max_ratio_sx']:.2f})"
        )
        if n["frac_below_sx"] < 0.9:
            below = "does NOT stay below S(X): it " + below
    else:
        below = f"reaches at most {n['max_i_xt']:.2f} bits (S(X) not recorded)"
    return (
        f"Estimator ({f.split}): I(X;T) {below} and {_movement(f)}; the Gram is saturated in "
        f"{pct(n['frac_saturated'])} of the records."
    )


def _estimator_floor(f: Finding) -> str | None:
    verdict = f.verdicts["null"]
    if verdict == NO_NULL_DISTRIBUTION:
        return (
            f"Above the null floor: {NO_NULL_DISTRIBUTION} for I(X;T): no permutation p-values "
            "were recorded, so no test is made."
        )
    floor = f.numbers.get("floor")
    method = ""
    if floor is not None and len(floor):
        method = f"; {_floor_method(int(floor['n_runs'].max()), f.numbers.get('permutations'))}"
    below = [
        f"{name(r.layer)} ({p_value(r.p)})"
        for r in (floor.itertuples() if floor is not None else [])
        if r.layer in f.numbers.get("below_floor", [])
    ]
    return _control(
        f,
        "null",
        f"I(X;T) exceeds its floor (samples of T permuted against X{method}) in every layer read.",
        f"I(X;T) does NOT exceed its floor (samples of T permuted against X{method}) in: "
        f"{listing(below)}.",
    )


def _estimator_fixed(f: Finding) -> str | None:
    moving = f.numbers.get("moving_fixed", [])
    return _control(
        f,
        "fixed",
        f"I(X;T) at the held widths moves over training in {listing(moving)} (the same test).",
        "I(X;T) at the held widths does NOT move over training in any layer (the same test): "
        "the estimate's movement follows its width.",
    )


def _estimator(f: Finding) -> list[str]:
    sentences = [_estimator_head(f), _estimator_fixed(f), _estimator_floor(f), *f.caveats]
    return [s for s in sentences if s]


_WRITERS: dict[str, Callable[[Finding], list[str]]] = {
    "fitting": _fitting,
    "compression": _compression,
    "train_vs_test": _train_vs_test,
    "early_stopping": _early_stopping,
    "dpi": _dpi,
    "estimator": _estimator,
}


def sentences(finding: Finding) -> list[str]:
    """The finding in sentences: the headline first, then the controls and the caveats."""
    return [s for s in _WRITERS[finding.key](finding) if s]


def findings_text(
    history: Any,
    metrics: Any = None,
    config: Mapping[str, Any] | None = None,
    *,
    threshold: float = COMPRESSION_THRESHOLD,
) -> list[str]:
    """The paper's findings 1-6 checked on a history, as sentences (see :func:`sentences`).

    Args:
        history: a history source (History, DataFrame, table or path).
        metrics: the training metrics (None skips the early-stopping check).
        config: the run configuration (the activation's name).
        threshold: the relative I(X;T) fall counted as compression.
    """
    tables = RunTables(history, metrics, config, threshold=threshold)
    return [controls_note(tables)] + [
        s for finding in check_findings(tables) for s in sentences(finding)
    ]


__all__ = [
    "compression_rule",
    "controls_note",
    "fall_test",
    "findings_text",
    "floor_state",
    "listing",
    "name",
    "p_value",
    "pct",
    "rise_test",
    "runs",
    "sentences",
    "trend_state",
]
