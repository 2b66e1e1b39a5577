"""Figures and a Markdown + HTML report of one run directory, built from its files alone.

A run directory (:class:`infoplane.schema.RunDir`) holds the history of the information-plane
records; the training metrics, ``config.json`` and ``provenance.json`` are optional, so a
directory holding only a history saved by the library works too. :func:`make_figures` draws
every figure into ``figures/``; :func:`write_report` adds ``report.md`` (relative image links)
and a self-contained ``report.html`` (images embedded as base64 PNG). The report leads with the
findings of Wickstrøm et al. (arXiv:1909.11396), each with its verdict under the adaptive widths,
the fixed-width control and the null floor and its controlled headline, every verdict with its
test (:mod:`infoplane.analysis.findings`, computed once), then the figures, the per-layer tables
(the estimate, then the controls), the configuration and the provenance of the run. Figures
are built on :class:`matplotlib.figure.Figure` objects directly: no pyplot state, no backend
change.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infoplane.analysis import (
    DPI_TOLERANCES,
    Finding,
    RunTables,
    check_findings,
    dpi_table,
    history_frame,
    layer_order,
    metrics_frame,
    sentences,
)
from infoplane.analysis.findings import VARIANTS
from infoplane.analysis.wording import (
    compression_rule,
    controls_note,
    floor_state,
    runs,
    trend_state,
)
from infoplane.errors import HistoryError, InvalidInputError
from infoplane.io import atomic_write_text
from infoplane.schema import STATUS_OK, RunDir

_SPLIT_NAMES = {"train": "training data", "test": "test data"}
#: Above this many layers (or when controls are recorded) a per-layer small-multiples figure
#: is drawn beside the information plane.
GRID_LAYERS = 6
#: The figures of each split: file stem and description.
SPLIT_FIGURES: tuple[tuple[str, str], ...] = (
    ("information_plane", "Information plane"),
    ("layer_planes", "Information plane per layer, with the controls"),
    ("mi_curves", "I(X;T) and I(T;Y) against step"),
    ("sigma", "Kernel width per layer"),
)


# ----------------------------------------------------------------------------- loading
def _read_json(path: Path, who: str) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` when the file is absent."""
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise HistoryError(
            f"{who}: expected JSON in {path}, got a malformed file ({exc}). Restore it or "
            "delete it."
        ) from exc
    return loaded if isinstance(loaded, dict) else {}


def load_run(
    run_dir: str | os.PathLike[str], *, who: str = "load_run"
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any]]:
    """Read ``(history, metrics or None, config)`` of a run directory.

    Only the history is required (read with :meth:`infoplane.history.History.load`); without
    metrics.csv the metrics are None, without config.json the config is ``{}``. Raises
    :class:`~infoplane.errors.HistoryError` (one line naming the file) when the folder or the
    history is missing or malformed, or the history holds no measured record.
    """
    paths = RunDir(run_dir)
    if not paths.root.is_dir():
        raise HistoryError(
            f"{who}: expected a run directory, got {str(paths.root)!r} (not a folder). Pass the "
            f"folder that holds {paths.history.name} (written by the infoplane CLI or "
            "History.save)."
        )
    if not paths.history.is_file():
        raise HistoryError(
            f"{who}: expected the measurement history at {paths.history}, not found. Run the "
            "experiment with the infoplane CLI first, or save a History there."
        )
    frame = history_frame(paths.history, who=who)
    if not (frame["status"] == STATUS_OK).any():
        raise HistoryError(
            f"{who}: expected measured (status 'ok') records in {paths.history}, got "
            f"{len(frame)} rows and none measured. Check that the run measured any step."
        )
    try:
        metrics = metrics_frame(paths.root, who=who)
    except InvalidInputError as exc:
        raise HistoryError(f"{exc} The file {paths.metrics} is damaged.") from exc
    return frame, metrics, _read_json(paths.config, who)


def _run_title(config: Mapping[str, Any]) -> str:
    model, dataset = config.get("model"), config.get("dataset")
    if model and dataset:
        return f"{model} on {dataset}"
    return str(model or dataset or "")


# ----------------------------------------------------------------------------- figures
def make_figures(
    run_dir: str | os.PathLike[str], *, formats: Sequence[str] = ("png", "svg")
) -> list[Path]:
    """Draw every figure of a run directory into its ``figures/`` folder and return the paths.

    Per split in the history: ``information_plane_<split>``, ``mi_curves_<split>``,
    ``sigma_<split>`` and, for networks of more than :data:`GRID_LAYERS` layers or when the
    controls are recorded, ``layer_planes_<split>``; once, when metrics exist: ``metrics``. Each
    in every format of ``formats``.
    """
    tables = RunTables(*load_run(run_dir, who="make_figures"))
    return _draw_figures(RunDir(run_dir), tables, formats)


def _grid_wanted(tables: RunTables) -> bool:
    controls = tables.has("null") or tables.has("fixed")
    return controls or len(layer_order(tables.frame)) > GRID_LAYERS


def _draw_figures(paths: RunDir, tables: RunTables, formats: Sequence[str]) -> list[Path]:
    from infoplane.plot import (
        plot_information_plane,
        plot_layer_planes,
        plot_metrics,
        plot_mi_curves,
        plot_sigma,
        save_figure,
    )

    run = _run_title(tables.config)
    prefix = f"{run} — " if run else ""
    wide = max(0.0, 0.18 * (len(layer_order(tables.frame)) - 12))  # room for a 2-column legend
    written: list[Path] = []
    for split in tables.splits:
        if tables.measured(split).empty:
            continue
        frame, smooth = tables.frame, tables.window(split)
        where = _SPLIT_NAMES.get(split, split)
        fig, _ = plot_information_plane(
            frame, split=split, smooth=smooth, title=f"{prefix}information plane ({where})"
        )
        fig.set_size_inches(fig.get_figwidth() + wide, fig.get_figheight())
        written += save_figure(fig, paths.figures / f"information_plane_{split}", formats)
        if _grid_wanted(tables):
            title = f"{prefix}information plane per layer ({where})"
            fig, _ = plot_layer_planes(frame, split=split, smooth=smooth, title=title)
            written += save_figure(fig, paths.figures / f"layer_planes_{split}", formats)
        fig, _ = plot_mi_curves(
            frame, split=split, smooth=smooth, title=f"{prefix}mutual information ({where})"
        )
        written += save_figure(fig, paths.figures / f"mi_curves_{split}", formats)
        fig, _ = plot_sigma(frame, split=split, title=f"{prefix}kernel width ({where})")
        written += save_figure(fig, paths.figures / f"sigma_{split}", formats)
    if tables.metrics is not None and len(tables.metrics):
        fig, _ = plot_metrics(tables.metrics, title=f"{prefix}training metrics" if run else None)
        written += save_figure(fig, paths.figures / "metrics", formats)
    return written


# ----------------------------------------------------------------------------- formatting
def _fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats with ``digits`` decimals, booleans yes/no, missing as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}f}" if math.isfinite(float(value)) else "—"
    return str(value)


def _pct(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}%" if math.isfinite(value) else "—"


def _config_value(value: Any, limit: int = 100) -> str:
    if isinstance(value, (list, tuple)):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


Block = tuple  # ("h1"|"h2"|"h3"|"p"|"ul"|"table"|"img", ...)


def _md(blocks: Sequence[Block]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|").replace("\n", " ")

    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            headers, rows = block[1], block[2]
            lines.append("| " + " | ".join(esc(h) for h in headers) + " |")
            lines.append("|" + "|".join("---" for _ in headers) + "|")
            lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
            lines.append("")
        elif kind == "img":
            lines += [f"![{block[1]}]({block[2]})", ""]
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #0072B2; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f0f4f8; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; height: auto; display: block; margin: .5em 0 1.2em; }
li { margin: .3em 0; }
p.note { color: #555; font-size: .92em; }
"""


def _html(blocks: Sequence[Block], title: str) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f'<p class="note">{html.escape(block[1])}</p>')
        elif kind == "ul":
            items = "".join(f"<li>{html.escape(item)}</li>" for item in block[1])
            parts.append(f"<ul>{items}</ul>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block[1])
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in block[2]
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(Path(block[3]).read_bytes()).decode("ascii")
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{html.escape(block[1])}">')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- findings
_VARIANT_HEADERS = {
    "adaptive": "adaptive widths",
    "fixed": "fixed-width control",
    "null": "above the null floor",
}


def _scope(tables: RunTables) -> str:
    n_runs = tables.n_runs(tables.main)
    if n_runs == 1:
        return (
            "One run: no run-to-run spread is quoted. A rise or a fall is tested over runs, so "
            "those verdicts are inconclusive."
        )
    return (
        f"{n_runs} runs: spreads are 95% confidence intervals over runs. Every verdict but the "
        "DPI's (a descriptive tolerance check) rests on a test at 0.05, named beside it."
    )


def _findings_blocks(tables: RunTables, findings: Sequence[Finding]) -> list[Block]:
    rows = [
        [
            f"{i}. {f.title}" + ("" if f.key == "train_vs_test" else f" ({f.split})"),
            *(f.verdicts[v] for v in VARIANTS),
            f.controlled,
        ]
        for i, f in enumerate(findings, start=1)
    ]
    note = (
        f"{controls_note(tables)} {_scope(tables)} The verdict is the controlled one: observed "
        "only when the estimate (adaptive widths) shows the finding and it survives the null "
        "floor and the fixed-width control (where that is not saturated); a trend of I(X;T) "
        "(compression, train vs test) is gated by the fixed-width control alone, because the "
        "floor of I(X;T) falls with S(T) in any real compression. Information quantities in bits."
    )
    headers = ["finding", *(_VARIANT_HEADERS[v] for v in VARIANTS), "verdict"]
    blocks: list[Block] = [
        ("h2", "Findings of the paper, checked on this run"),
        ("p", note),
        ("table", headers, rows),
    ]
    for i, f in enumerate(findings, start=1):
        blocks += [("h3", f"{i}. {f.title}: {f.controlled}"), ("ul", sentences(f))]
    return blocks


# ----------------------------------------------------------------------------- per-layer tables
def _p(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _ci(value: float, ci: float, digits: int = 1) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}" + (f" ± {ci:.{digits}f}" if math.isfinite(ci) else "")


def _rise_cells(y: Any) -> list[str]:
    step_90 = str(y["step_90"]) if y["step_90"] >= 0 else "—"
    return [_fmt(y["first"]), _fmt(y["final"]), step_90, _ci(y["rise"], y["rise_ci"], 3)]


def _fall_cells(x: Any) -> list[str]:
    fall = _ci(x["drop_pct"], x["drop_ci_pct"])
    return [_fmt(x["peak"]), _fmt(x["final"]), _fmt(x["peak_step"]), fall]


#: The estimate's per-layer tables: (quantity, headers, cells of a trend row, its p-value).
_ESTIMATE_TABLES: dict[str, tuple[str, list[str], Any, str]] = {
    "rise": (
        "i_ty",
        ["layer", "I(T;Y) first", "I(T;Y) last", "step at 90%", "rise (95% CI)", "p", "fitting"],
        _rise_cells,
        "p_rise",
    ),
    "fall": (
        "i_xt",
        [
            *("layer", "I(X;T) peak", "I(X;T) last", "peak step", "fall % (95% CI)"),
            *("p (Hommel)", "compression"),
        ],
        _fall_cells,
        "p_fall_adj",
    ),
}


def _estimate_table(tables: RunTables, split: str, kind: str) -> list[Block]:
    """The estimate's rise (fitting) or fall (compression) per layer, with its test."""
    quantity, headers, cells, p = _ESTIMATE_TABLES[kind]
    rows = [
        [r["layer"], *cells(r), _p(r[p]), trend_state(r, kind, tables.threshold)]
        for _, r in tables.trend(split, quantity).iterrows()
    ]
    return [("table", headers, rows)]


def _controls_table(tables: RunTables, split: str) -> list[Block]:
    layers = tables.trend(split, "i_xt")["layer"].tolist()
    columns: list[tuple[str, list[str]]] = []
    if tables.has("null"):
        for q, label in (("i_ty", "I(T;Y) > floor"), ("i_xt", "I(X;T) > floor")):
            if tables.has_distribution(q):
                floor = tables.floor(split, q)
                columns.append((label, [floor_state(r) for _, r in floor.iterrows()]))
        margin = tables.trend(split, "i_xt_margin")
        states = [trend_state(r, "fall", tables.threshold) for _, r in margin.iterrows()]
        columns.append(("compression (floor)", states))
    if tables.has("fixed"):
        for q, kind, label in (
            ("i_ty_fixed", "rise", "fitting (fixed)"),
            ("i_xt_fixed", "fall", "compression (fixed)"),
        ):
            trend = tables.trend(split, q)
            columns.append(
                (label, [trend_state(r, kind, tables.threshold) for _, r in trend.iterrows()])
            )
    if not columns:
        return [("p", "No control recorded: the estimate alone is above.")]
    rows = [[name, *(cells[i] for _, cells in columns)] for i, name in enumerate(layers)]
    return [("table", ["layer", *(label for label, _ in columns)], rows)]


def _layer_table(tables: RunTables, split: str) -> list[Block]:
    window, n_runs = tables.window(split), tables.n_runs(split)
    rule = compression_rule(tables.threshold, n_runs, len(tables.trend(split, "i_xt")))
    note = (
        f"{runs(n_runs).capitalize()}, each run's curve a centred moving average over {window} "
        "measured step(s). Fitting: each run's last minus first value, one-sided t-test over "
        f"runs at 0.05. Compression: {rule}. Peak and last are mean levels over runs; the peak "
        "step is the run-mean curve's. 'saturated (x%)': not informative, the Gram is saturated "
        "in x% of the records read, so the layer is not read."
    )
    controls = (
        "Controls per layer: above the floor is Fisher's combination over runs of the "
        "permutation p-value of each run's final step (0.05); the controls' fitting and "
        "compression are the same tests on the fixed-width control (the steps where it exists) "
        "and on I(X;T) minus the mean of its permuted draws. 'saturated (x%)': not informative, "
        "the Gram is saturated in x% of the records read (more than half), so it is not read."
    )
    return [
        ("p", note),
        ("h3", f"Fitting, estimate ({split})"),
        *_estimate_table(tables, split, "rise"),
        ("h3", f"Compression, estimate ({split})"),
        *_estimate_table(tables, split, "fall"),
        ("h3", f"Controls ({split})"),
        ("p", controls),
        *_controls_table(tables, split),
    ]


def _dpi_blocks(tables: RunTables, split: str) -> list[Block]:
    per_tol = {tol: dpi_table(tables.frame, split=split, tol=tol) for tol in DPI_TOLERANCES}
    dpi = per_tol[0.0]
    if dpi.empty:
        return [("p", f"Only one layer measured on {split}: no consecutive pairs.")]
    headers = ["layer pair (l → l+1)", "mean ΔI(X;T)", "mean ΔI(T;Y)"]
    headers += [f"tol {tol:g}" for tol in DPI_TOLERANCES]
    headers.append("pairs")
    rows = []
    for p, row in dpi.iterrows():
        cells = [
            f"{row['layer']} → {row['next_layer']}",
            _fmt(row["d_xt_mean"]),
            _fmt(row["d_ty_mean"]),
        ]
        for tol in DPI_TOLERANCES:
            t = per_tol[tol].loc[p]
            cells.append(f"{_pct(100 * t['frac_xt'], 0)} / {_pct(100 * t['frac_ty'], 0)}")
        rows.append([*cells, _fmt(int(row["n"]))])
    note = (
        "ΔI(X;T) = I(X;T_l) − I(X;T_l+1) and ΔI(T;Y) = I(T_l;Y) − I(T_l+1;Y), averaged over "
        "(run, step) pairs; 'tol t': the fraction of pairs that comply, each difference ≥ −t "
        "bits, for I(X;T) / I(T;Y) (tolerance 0 counts only round-off). A descriptive check, "
        "not a test (finding 5)."
    )
    return [("p", note), ("table", headers, rows)]


def _early_stopping_blocks(finding: Finding) -> list[Block]:
    if "stops" not in finding.numbers:
        return [("p", f"Not available: {finding.numbers['reason']}.")]
    stops, table = finding.numbers["stops"], finding.table
    comp = table[table["compressed"]]
    n_c = comp["layer"].nunique()
    headers = ["patience (epochs)", "stop epoch", "stop step", "best epoch", "before onset"]
    rows = []
    for _, s in stops.iterrows():
        mine = comp[comp["patience"] == s["patience"]]
        stop = f"{s['stop_epoch']}" + ("" if s["stopped"] else " (no stop)")
        before = "—"
        if n_c and s["stopped"]:
            before = f"{int(mine['before_onset'].astype(bool).sum())} of {n_c} layers"
        elif n_c:
            before = "not known (no stop)"
        cells = [str(s["patience"]), stop, _fmt(s["stop_step"]), _fmt(s["best_epoch"])]
        rows.append([*cells, before])
    onsets = table.drop_duplicates("layer")
    onset = ", ".join(
        f"{r['layer']} {int(r['peak_step'])}" if r["compressed"] else f"{r['layer']} no compression"
        for _, r in onsets.iterrows()
    )
    note = (
        f"Monitor: {stops['monitor'].iloc[0]} (mean over runs). Training stops patience epochs "
        f"after the best epoch. Compression onset = the run-mean I(X;T) peak step on "
        f"{finding.split} of each compressing layer ({onset}); 'before onset' counts the "
        "layers whose onset the stop step reaches at or before. A patience that never stops "
        "is not compared."
    )
    return [("p", note), ("table", headers, rows)]


def _train_vs_test_blocks(finding: Finding) -> list[Block]:
    tvt = finding.table
    headers = ["layer", "train fall %", "test fall %", "train − test (95% CI)", "runs"]
    headers += ["compresses", "weaker on test"]
    rows = [
        [
            r["layer"],
            _pct(r["train_drop_pct"]),
            _pct(r["test_drop_pct"]),
            _ci(r["diff_pct"], r["diff_ci_pct"]),
            str(int(r["n_pairs"])),
            f"{_fmt(bool(r['train_compressed']))} / {_fmt(bool(r['test_compressed']))}",
            _fmt(bool(r["weaker_on_test"])),
        ]
        for _, r in tvt.iterrows()
    ]
    note = (
        "Falls are each run's cross-fitted fall in % of its peak, averaged over runs; train − "
        "test pairs the runs measured on both splits (paired 95% interval over runs); "
        "'compresses': on train / on test. 'Weaker on test' when that interval lies above 0."
    )
    return [("p", note), ("table", headers, rows)]


# ----------------------------------------------------------------------------- run details
#: Settings that do not change what a preset describes (where and how fast it runs).
_NOT_SETTINGS = frozenset({"preset", "description", "device", "data_dir", "download", "threads"})


def _overrides(config: Mapping[str, Any]) -> list[str] | None:
    """Settings that differ from the named preset, or None when the preset is unknown."""
    try:
        from infoplane.experiments.presets import PRESETS
    except ImportError:  # pragma: no cover - the experiments extra is missing
        return None
    preset = PRESETS.get(str(config.get("preset")))
    if preset is None:
        return None
    defaults = json.loads(json.dumps(preset.to_dict(), default=str))  # as config.json holds it
    return [
        f"{k}={_config_value(config[k], 40)}"
        for k in sorted(config)
        if k not in _NOT_SETTINGS and k in defaults and config[k] != defaults[k]
    ]


def _config_blocks(config: Mapping[str, Any]) -> list[Block]:
    if not config:
        return [("h2", "Configuration"), ("p", "No config.json in the run directory.")]
    first = [
        k
        for k in ("preset", "model", "dataset", "activation", "epochs", "runs", "alpha", "protocol")
        if k in config
    ]
    rest = sorted(k for k in config if k not in first and k != "description")
    rows = [[k, _config_value(config[k])] for k in first + rest]
    description = config.get("description")
    changed = _overrides(config)
    if description and changed:
        description = (
            f"{description} — the preset as shipped; this run overrides {', '.join(changed)}"
        )
    if description:
        rows.insert(len(first), ["description", str(description)])
    return [("h2", "Configuration"), ("table", ["key", "value"], rows)]


def _duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return str(seconds)
    h, rem = divmod(round(s), 3600)
    return f"{s:.1f} s ({h}:{rem // 60:02d}:{rem % 60:02d})"


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested mappings and lists of mappings as ``(dotted key, value)`` rows (lists 1-based)."""
    if isinstance(data, Mapping):
        items = list(data.items())
    elif isinstance(data, list) and data and all(isinstance(v, Mapping) for v in data):
        items = [(str(i), v) for i, v in enumerate(data, start=1)]
    else:
        return [(prefix.rstrip("."), data)]
    return [row for key, value in items for row in _flatten(value, f"{prefix}{key}.")]


def _provenance_value(key: str, value: Any) -> str:
    if value is None:
        return "— (not finished)" if key.endswith(("end", "duration_s")) else "—"
    if "duration" in key:
        return _duration(value)
    if key.endswith("command") and isinstance(value, list):
        return " ".join(str(v) for v in value)
    return _config_value(value, 200)


def _provenance_blocks(paths: RunDir) -> list[Block]:
    provenance = _read_json(paths.provenance, "write_report")
    if not provenance:
        return [
            ("h2", "Provenance"),
            (
                "p",
                f"No {paths.provenance.name} in the run directory: the versions, date, "
                "duration and command line of the run are not known.",
            ),
        ]
    rows = [[k, _provenance_value(k, v)] for k, v in _flatten(provenance)]
    return [("h2", "Provenance"), ("table", ["key", "value"], rows)]


# ----------------------------------------------------------------------------- report
def _figure_blocks(paths: RunDir, tables: RunTables) -> list[Block]:
    blocks: list[Block] = [("h2", "Figures")]
    for split in tables.splits:
        blocks.append(("h3", f"Split {split} ({_SPLIT_NAMES.get(split, split)})"))
        for stem, alt in SPLIT_FIGURES:
            png = paths.figures / f"{stem}_{split}.png"
            if png.is_file():
                blocks.append(("img", f"{alt} ({split})", f"{paths.figures.name}/{png.name}", png))
    metrics_png = paths.figures / "metrics.png"
    if tables.metrics is not None and len(tables.metrics) and metrics_png.is_file():
        blocks.append(("h3", "Training metrics"))
        blocks.append(
            ("img", "Loss and accuracy", f"{paths.figures.name}/metrics.png", metrics_png)
        )
    return blocks


def _per_split(tables: RunTables, title: str, make: Any) -> list[Block]:
    blocks: list[Block] = [("h2", title)]
    for split in tables.splits:
        if len(tables.splits) > 1:
            blocks.append(("h3", f"Split {split}"))
        blocks += make(tables, split)
    return blocks


def report_blocks(paths: RunDir, tables: RunTables) -> tuple[str, list[Block]]:
    """The title and the blocks of the report: findings first, then figures and tables."""
    run = _run_title(tables.config)
    preset = tables.config.get("preset")
    title = "Information plane report" + (f": {preset}" if preset else "")
    title += f" ({run})" if run else ""
    found = {f.key: f for f in check_findings(tables)}
    present = [p.name for p in (paths.history, paths.metrics, paths.config) if p.is_file()]
    blocks: list[Block] = [
        ("h1", title),
        (
            "p",
            f"Built from {', '.join(present)} in this folder. All information quantities (I, "
            "S) are in bits. Method: matrix-based Rényi entropy with tensor kernels "
            "(Wickstrøm et al., arXiv:1909.11396).",
        ),
    ]
    blocks += _findings_blocks(tables, list(found.values()))
    blocks += _figure_blocks(paths, tables)
    blocks += _per_split(tables, "Data processing inequality", _dpi_blocks)
    blocks += _per_split(tables, "Fitting and compression per layer", _layer_table)
    blocks += [("h2", "Early stopping vs compression onset")]
    blocks += _early_stopping_blocks(found["early_stopping"])
    if "train" in tables.splits and "test" in tables.splits:
        blocks += [
            ("h2", "Train vs test compression"),
            *_train_vs_test_blocks(found["train_vs_test"]),
        ]
    return title, blocks + _config_blocks(tables.config) + _provenance_blocks(paths)


def write_report(
    run_dir: str | os.PathLike[str], *, formats: Sequence[str] = ("png", "svg")
) -> Path:
    """Rebuild the figures and write ``report.md`` and ``report.html`` into ``run_dir``.

    The report leads with the findings of the paper checked against the run (a verdict table
    under the adaptive widths, the fixed-width control and the null floor with the controlled
    headline, then each finding in sentences that name their tests), then the figures, the data
    processing inequality at tolerances 0, 0.01 and 0.05 bits, the fitting, compression and
    controls per layer and split (three tables that fit a page), the early-stopping analysis, train
    against test (when both splits exist), the configuration and the provenance. Only the
    history is required. PNG figures are always made (the HTML embeds them as base64).

    Returns:
        The path of ``report.md``.
    """
    paths = RunDir(run_dir)
    tables = RunTables(*load_run(paths.root, who="write_report"))
    formats = tuple(formats)
    if "png" not in formats:
        formats = ("png", *formats)
    _draw_figures(paths, tables, formats)
    title, blocks = report_blocks(paths, tables)
    md_path = atomic_write_text(paths.report_md, _md(blocks))
    atomic_write_text(paths.report_html, _html(blocks, title))
    return md_path


__all__ = ["load_run", "make_figures", "report_blocks", "write_report"]
