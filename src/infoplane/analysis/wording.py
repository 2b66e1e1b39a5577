"""The findings in sentences: each :class:`~infoplane.analysis.findings.Finding` becomes a
headline (the verdict under the adaptive widths) followed by one sentence per control and its
caveats. A finding that is not observed says so in capitals (NOT observed), one that could not be
checked says why. Information quantities are in bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from infoplane.analysis.findings import (
    NOT_CHECKED,
    NOT_OBSERVED,
    NOT_RECORDED,
    OBSERVED,
    Finding,
    RunTables,
    check_findings,
)
from infoplane.analysis.summaries import COMPRESSION_THRESHOLD, DPI_TOLERANCES

_CONTROL_NAMES = {"fixed": "With fixed widths", "null": "Above the null floor"}


def name(layer: str) -> str:
    """A layer name readable in a sentence (``'3'`` becomes ``'layer 3'``)."""
    return layer if any(c.isalpha() for c in layer) else f"layer {layer}"


def pct(fraction: float) -> str:
    """A fraction as a whole percentage, or an em dash when unknown."""
    return f"{100.0 * fraction:.0f}%" if math.isfinite(fraction) else "—"


def listing(items: Sequence[str], limit: int = 4) -> str:
    items = list(items)
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... ({len(items) - limit} more)"


def controls_note(tables: RunTables) -> str:
    """Which controls the history holds: said once, not in every finding."""
    names = {"null": "null floor", "fixed": "fixed-width control"}
    present = [names[v] for v in names if tables.has(v)]
    missing = [names[v] for v in names if not tables.has(v)]
    if not missing:
        return f"Controls recorded: {', '.join(present)}."
    head = f"Controls recorded: {', '.join(present)}; " if present else "No control was recorded; "
    return (
        f"{head}without the {' and the '.join(missing)} (measure with controls=('null', "
        "'fixed')) the verdicts cannot tell training dynamics from estimator effects there."
    )


def _control(f: Finding, variant: str, observed: str, not_observed: str) -> str | None:
    """The sentence of one control per its verdict; None when it was not recorded."""
    text = {OBSERVED: observed, NOT_OBSERVED: not_observed}.get(f.verdicts[variant])
    return f"{_CONTROL_NAMES[variant]}, {text}" if text else None


# ----------------------------------------------------------------------------- 1. fitting
def _fitting(f: Finding) -> list[str]:
    n, t = f.numbers, f.table
    label, h_y = name(n["layer"]), n["h_y"]
    sy = f" (S(Y) = {h_y:.2f})" if math.isfinite(h_y) else ""
    if f.verdict == OBSERVED:
        near = f", {pct(n['final'] / h_y)} of S(Y)" if math.isfinite(h_y) and h_y > 0 else ""
        head = (
            f"Fitting ({f.split}): I(T;Y) of the output layer ({label}) rose from "
            f"{n['first']:.2f} to {n['final']:.2f} bits{sy}{near}; I(T;Y) rose in "
            f"{n['n_rising']} of {n['n_layers']} layers."
        )
    else:
        head = (
            f"Fitting NOT observed ({f.split}): I(T;Y) of the output layer ({label}) did not "
            f"rise ({n['first']:.2f} -> {n['final']:.2f} bits{sy})."
        )
    out = [head]
    if "fixed_final" in t:
        a, b = t["fixed_first"].iloc[-1], t["fixed_final"].iloc[-1]
        out.append(
            _control(
                f,
                "fixed",
                f"fitting survives ({a:.2f} -> {b:.2f} bits).",
                f"fitting does NOT survive ({a:.2f} -> {b:.2f} bits).",
            )
        )
    if "margin" in t:
        out.append(_fitting_floor(f))
    return out + list(f.caveats)


def _fitting_floor(f: Finding) -> str:
    t = f.table
    parts = [
        f"{name(row.layer)} {row.margin:+.2f}"
        + (f" ± {row.margin_ci:.2f}" if row.margin_ci > 0 else "")
        for row in t.itertuples()
    ]
    bad = f.numbers["not_informative"]
    tail = (
        "; NOT informative about Y (within the spread of the floor): "
        + listing([name(b) for b in bad])
        if bad
        else "; every layer is informative about Y"
    )
    return (
        f"Above the null floor (final I(T;Y) minus I(T;Y) with permuted labels, bits): "
        f"{listing(parts, 6)}{tail}."
    )


# ----------------------------------------------------------------------------- 2. compression
def _drops(t: pd.DataFrame, prefix: str = "") -> list[str]:
    rows = t[t[prefix + "compressed"]]
    return [
        f"{name(r['layer'])} -{r[prefix + 'drop']:.2f} bits ({r[prefix + 'drop_pct']:.0f}%) after "
        f"step {int(r[prefix + 'peak_step'])}"
        for _, r in rows.iterrows()
    ]


def _compression(f: Finding) -> list[str]:
    n, t = f.numbers, f.table
    act = f" ({n['activation']})" if n.get("activation") else ""
    rule = f"drop >= {100 * n['threshold']:.0f}% of the peak and above the run-to-run spread"
    total = n["n_layers"]
    if f.verdict == OBSERVED:
        head = (
            f"Compression{act} on {f.split}: I(X;T) rose then fell in "
            f"{len(n['adaptive_compressed'])} of {total} layers ({rule}): {listing(_drops(t))}."
        )
    else:
        row = t[t["layer"] == n["largest"]].iloc[0] if n["largest"] is not None else None
        if row is None or not row["drop"] > 0:
            largest = "I(X;T) never falls below its peak in any layer"
        else:
            largest = (
                f"the largest fall is {name(row['layer'])} {row['drop']:.2f} bits "
                f"({row['drop_pct']:.0f}%), below the threshold"
            )
        head = f"Compression NOT observed{act} on {f.split} ({rule}): {largest}."
    out = [head]
    if n["peak_at_start"]:
        names = listing([name(x) for x in n["peak_at_start"]])
        out.append(f"I(X;T) peaked at the first measured step (no initial rise) in: {names}.")
    lost = n.get("lost_with_fixed") or []
    moved = f"; lost in {listing([name(x) for x in lost])}" if lost else ""
    out.append(
        _control(
            f,
            "fixed",
            f"I(X;T) compresses in {len(n.get('fixed_compressed', []))} of {total} layers{moved}.",
            "compression does NOT survive: no layer's I(X;T) falls by the threshold (the fall "
            "under adaptive widths follows the width moving average).",
        )
    )
    out.append(
        _control(
            f,
            "null",
            f"I(X;T) minus its floor compresses in {len(n.get('null_compressed', []))} of "
            f"{total} layers.",
            "compression does NOT survive: I(X;T) minus its floor falls by the threshold in no "
            "layer.",
        )
    )
    return out + list(f.caveats)


# ----------------------------------------------------------------------------- 3. train vs test
def _tvt_numbers(n: Mapping[str, Any]) -> str:
    return (
        f"mean I(X;T) drop {n['train_drop_pct']:.1f}% of the peak on train vs "
        f"{n['test_drop_pct']:.1f}% on test; weaker on test in {n['weaker']} of {n['n_layers']} "
        f"layers; compressing layers: {n['train_compressed']} train, {n['test_compressed']} test"
    )


def _train_vs_test(f: Finding) -> list[str]:
    if f.verdict == NOT_CHECKED:
        return [
            f"Train vs test: not checked, the history holds only split(s) {f.numbers['splits']} "
            "(the paper measured train and test planes in separate runs)."
        ]
    n = f.numbers
    if f.verdict == OBSERVED:
        head = f"Train vs test: compression is weaker on test ({_tvt_numbers(n['adaptive'])})."
    else:
        head = (
            "Train vs test: NOT observed: compression is not weaker on test "
            f"({_tvt_numbers(n['adaptive'])})."
        )
    out = [head]
    for variant in ("fixed", "null"):
        detail = _tvt_numbers(n[variant]) if variant in n else ""
        out.append(
            _control(
                f,
                variant,
                f"compression is weaker on test ({detail}).",
                f"compression is NOT weaker on test ({detail}).",
            )
        )
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
    before = comp.groupby("patience", sort=True)["before_onset"].apply(lambda s: int(s.sum()))
    return onset, "/".join(str(b) for b in before), comp["layer"].nunique()


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
    if f.verdict == NOT_CHECKED and reason.startswith("no layer"):
        return [f"{head}; {reason}."]
    onset, counts, n_c = _onsets(f.table)
    if f.verdict == NOT_CHECKED:
        first = int(n["stops"]["first_step"].iloc[0])
        return [
            f"{head}: not checked: every compression onset ({onset}) falls inside the first "
            f"epoch, whose value is recorded at step {first}; a rule that checks once per epoch "
            "cannot stop before it."
        ]
    if f.verdict == OBSERVED:
        verdict = f"before the compression onset in all {n_c} compressing layers"
    elif f.verdict == NOT_OBSERVED and not n["stops"]["stopped"].any():
        verdict = (
            f"NOT observed: training runs past the compression onset of all {n_c} compressing "
            "layers"
        )
    elif f.verdict == NOT_OBSERVED:
        verdict = (
            f"NOT observed: it stops after the compression onset of all {n_c} compressing layers"
        )
    else:
        verdict = f"before the compression onset in {counts} of {n_c} compressing layers"
    out = [f"{head} (steps {steps}): {verdict} (I(X;T) peaks at {onset})."]
    for variant in ("fixed", "null"):
        sentence = _control(
            f, variant, "the stop comes before every onset.", "the stop comes before NO onset."
        )
        if sentence is None and f.verdicts[variant] != NOT_RECORDED:  # partly, or no onset
            sentence = f"{_CONTROL_NAMES[variant]}: {f.verdicts[variant]}" + (
                f" ({n['reasons'][variant]})." if n["reasons"].get(variant) else "."
            )
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
def _estimator_head(f: Finding) -> str:
    n, split = f.numbers, f.split
    if n["frac_at_log2n"] > 0.9:
        return (
            f"Estimator DEGENERATE on {split}: S(T) sits at log2 N in {pct(n['frac_at_log2n'])} "
            "of the records (kernel width too small): I(X;T) then equals S(X) and carries no "
            "information about training."
        )
    if n["mean_h_t"] < 0.05:
        return (
            f"Estimator DEGENERATE on {split}: S(T) is {n['mean_h_t']:.3f} bits on average "
            "(kernel width too large): every layer collapses to I(X;T) = I(T;Y) = 0."
        )
    if n["i_xt_is_h_t"]:
        return f"Estimator DEGENERATE for I(X;T) on {split}: I(X;T) equals S(T) in every record."
    if math.isfinite(n["frac_below_sx"]):
        below = (
            f"stays below S(X) in {pct(n['frac_below_sx'])} of the records (largest "
            f"I(X;T)/S(X) = {n['max_ratio_sx']:.2f})"
        )
        if n["frac_below_sx"] < 0.9:
            below = "does NOT stay below S(X): it " + below
    else:
        below = f"reaches at most {n['max_i_xt']:.2f} bits (S(X) not recorded)"
    move = (
        f"moves over training in {n['n_moving']} of {n['n_layers']} layers"
        if n["n_moving"]
        else "does NOT move over training in any layer"
    )
    return (
        f"Estimator ({split}): I(X;T) {below} and {move} (range up to {n['max_range']:.2f} bits); "
        f"S(T) is at log2 N in {pct(n['frac_at_log2n'])} of the records."
    )


def _estimator(f: Finding) -> list[str]:
    below = [name(x) for x in f.numbers.get("below_floor", [])]
    floor = _control(
        f,
        "null",
        "I(X;T) (samples of T permuted against X) exceeds its floor in every layer.",
        f"I(X;T) does NOT exceed its floor (samples of T permuted against X) in: {listing(below)}.",
    )
    return [_estimator_head(f), floor, *f.caveats]


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
        threshold: the relative I(X;T) drop counted as compression.
    """
    tables = RunTables(history, metrics, config, threshold=threshold)
    return [controls_note(tables)] + [
        s for finding in check_findings(tables) for s in sentences(finding)
    ]


__all__ = ["controls_note", "findings_text", "listing", "name", "pct", "sentences"]
