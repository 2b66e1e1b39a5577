"""Figures and a Markdown + HTML report of one run directory, built from its files alone.

A run directory holds ``history.csv`` (the information-plane records), ``metrics.csv`` (loss and
accuracy per epoch) and ``config.json`` (the resolved configuration). :func:`make_figures` draws
every figure into ``<run_dir>/figures/``; :func:`write_report` adds ``report.md`` (relative image
links) and a self-contained ``report.html`` (images embedded as base64 PNG) with the findings of
Wickstrøm et al. (arXiv:1909.11396) checked against the run, the DPI table, the fitting and
compression summary, the early-stopping analysis and train against test. Figures are built on
:class:`matplotlib.figure.Figure` objects directly: no pyplot state, no backend change.
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

from infoplane import analysis
from infoplane.errors import HistoryError, InvalidInputError
from infoplane.io import atomic_write_text, read_table
from infoplane.schema import FIELDS

HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.csv"
CONFIG_FILE = "config.json"
FIGURES_DIR = "figures"
_METRICS_COLUMNS = ("run", "split", "epoch", "step", "loss", "accuracy")
_SPLIT_NAMES = {"train": "training data", "test": "test data"}


# ----------------------------------------------------------------------------- loading
def _missing(who: str, path: Path, what: str) -> HistoryError:
    return HistoryError(
        f"{who}: expected {what} at {path}, not found. Run the experiment with the infoplane CLI "
        "first, or pass the run directory that holds it."
    )


def load_run(
    run_dir: str | os.PathLike[str], *, who: str = "load_run"
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """Read ``(history table, metrics table, config)`` from a run directory.

    ``history.csv`` and ``metrics.csv`` are required; a missing ``config.json`` gives ``{}``.
    Raises :class:`~infoplane.errors.HistoryError` (one line naming the file) when a required file
    is missing, malformed, lacks columns, or the history holds no measured record.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise HistoryError(
            f"{who}: expected a run directory, got {str(run_dir)!r} (not a folder). Pass the "
            "folder the infoplane CLI wrote (with history.csv, metrics.csv, config.json)."
        )
    hist_path = run_dir / HISTORY_FILE
    if not hist_path.is_file():
        raise _missing(who, hist_path, "the measurement history")
    metrics_path = run_dir / METRICS_FILE
    if not metrics_path.is_file():
        raise _missing(who, metrics_path, "the training metrics")
    table = read_table(hist_path)
    for column in ("split", "layer", "status"):  # text once, so every analysis compares fast
        if column in table:
            table[column] = np.asarray(table[column]).astype(str)
    missing = [f for f in FIELDS if f not in table]
    if missing:
        raise HistoryError(
            f"{who}: expected columns {list(FIELDS)} in {hist_path}, missing {missing}. "
            "Re-save the history with infoplane.history.History.save."
        )
    status = table["status"]
    if not (status == "ok").any():
        raise HistoryError(
            f"{who}: expected measured (status 'ok') records in {hist_path}, got "
            f"{len(status)} rows and none measured. Check that the run measured any step."
        )
    metrics = read_table(metrics_path)
    if "split" in metrics:
        metrics["split"] = np.asarray(metrics["split"]).astype(str)
    missing = [c for c in _METRICS_COLUMNS if c not in metrics]
    if missing:
        raise HistoryError(
            f"{who}: expected columns {list(_METRICS_COLUMNS)} in {metrics_path}, missing "
            f"{missing}. The file is damaged; re-run the experiment or restore it."
        )
    config: dict[str, Any] = {}
    config_path = run_dir / CONFIG_FILE
    if config_path.is_file():
        try:
            loaded = json.loads(config_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise HistoryError(
                f"{who}: expected JSON in {config_path}, got a malformed file ({exc}). Restore "
                "it or delete it."
            ) from exc
        if isinstance(loaded, dict):
            config = loaded
    return table, metrics, config


def _run_title(config: Mapping[str, Any]) -> str:
    model, dataset = config.get("model"), config.get("dataset")
    if model and dataset:
        return f"{model} on {dataset}"
    return str(model or dataset or "")


def _smooth_window(table: Mapping[str, np.ndarray], split: str) -> int:
    agg = analysis.aggregate(table, split=split)
    order = analysis.layer_order(agg) if agg["layer"].size else []
    n = max((int((agg["layer"] == name).sum()) for name in order), default=0)
    return analysis._light_window(n)


def _layer_count(table: Mapping[str, np.ndarray]) -> int:
    return len(analysis.layer_order(table))


# ----------------------------------------------------------------------------- figures
def make_figures(
    run_dir: str | os.PathLike[str], *, formats: Sequence[str] = ("png", "svg")
) -> list[Path]:
    """Draw every figure of a run directory into ``<run_dir>/figures/`` and return the paths.

    Per split in the history: ``information_plane_<split>``, ``mi_curves_<split>`` and
    ``sigma_<split>``; once: ``metrics``. Each in every format of ``formats``.
    """
    table, metrics, config = load_run(run_dir, who="make_figures")
    return _draw_figures(Path(run_dir), table, metrics, config, formats)


def _draw_figures(
    run_dir: Path,
    table: Mapping[str, np.ndarray],
    metrics: Mapping[str, np.ndarray],
    config: Mapping[str, Any],
    formats: Sequence[str],
) -> list[Path]:
    from infoplane.plot import (
        plot_information_plane,
        plot_metrics,
        plot_mi_curves,
        plot_sigma,
        save_figure,
    )

    out_dir = run_dir / FIGURES_DIR
    run = _run_title(config)
    prefix = f"{run} — " if run else ""
    n_layers = _layer_count(table)
    wide = max(0.0, 0.18 * (n_layers - 12))  # room for a two-column legend
    paths: list[Path] = []
    for split in analysis.splits(table):
        smooth = _smooth_window(table, split)
        where = _SPLIT_NAMES.get(split, split)
        fig, _ = plot_information_plane(
            table, split=split, smooth=smooth, title=f"{prefix}information plane ({where})"
        )
        if wide:
            fig.set_size_inches(fig.get_figwidth() + wide, fig.get_figheight())
        paths += save_figure(fig, out_dir / f"information_plane_{split}", formats)
        fig, _ = plot_mi_curves(
            table, split=split, smooth=smooth, title=f"{prefix}mutual information ({where})"
        )
        paths += save_figure(fig, out_dir / f"mi_curves_{split}", formats)
        fig, _ = plot_sigma(table, split=split, title=f"{prefix}kernel width ({where})")
        paths += save_figure(fig, out_dir / f"sigma_{split}", formats)
    if len(metrics["split"]):
        fig, _ = plot_metrics(metrics, title=f"{prefix}training metrics" if run else None)
        paths += save_figure(fig, out_dir / "metrics", formats)
    return paths


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


# ----------------------------------------------------------------------------- sections
def _config_blocks(config: Mapping[str, Any]) -> list[Block]:
    if not config:
        return [("h2", "Configuration"), ("p", "No config.json in the run directory.")]
    first = [
        k
        for k in ("preset", "model", "dataset", "activation", "epochs", "runs", "alpha", "protocol")
        if k in config
    ]
    rest = sorted(k for k in config if k not in first)
    rows = [[k, _config_value(config[k])] for k in first + rest]
    return [("h2", "Configuration"), ("table", ["key", "value"], rows)]


def _dpi_blocks(table: Mapping[str, np.ndarray], split: str) -> list[Block]:
    dpi = analysis.dpi_table(table, split=split)
    rows = [
        [
            f"{a} → {b}",
            _fmt(dxt),
            _fmt(dty),
            _pct(100 * fxt),
            _pct(100 * fty),
            _fmt(n),
        ]
        for a, b, dxt, dty, fxt, fty, n in zip(
            dpi["layer"],
            dpi["next_layer"],
            dpi["d_xt_mean"],
            dpi["d_ty_mean"],
            dpi["frac_xt"],
            dpi["frac_ty"],
            dpi["n"],
            strict=True,
        )
    ]
    headers = [
        "layer pair (l → l+1)",
        "mean I(X;T_l) − I(X;T_l+1)",
        "mean I(T_l;Y) − I(T_l+1;Y)",
        "I(X;T) complies",
        "I(T;Y) complies",
        "(run, step) pairs",
    ]
    if not rows:
        return [("p", f"Only one layer measured on {split}: no consecutive pairs.")]
    return [("table", headers, rows)]


def _compression_blocks(table: Mapping[str, np.ndarray], split: str) -> list[Block]:
    comp = analysis.compression_summary(table, split=split)
    headers = [
        "layer",
        "I(T;Y) first",
        "I(T;Y) last",
        "step at 90% of last",
        "I(X;T) first",
        "I(X;T) peak",
        "peak step",
        "I(X;T) last",
        "drop",
        "drop % of peak",
        "run-to-run std",
        "compression",
    ]
    rows = []
    for i, name in enumerate(comp["layer"].tolist()):
        step_90 = int(comp["step_90"][i])
        rows.append(
            [
                name,
                _fmt(comp["i_ty_first"][i]),
                _fmt(comp["i_ty_final"][i]),
                str(step_90) if step_90 >= 0 else "—",
                _fmt(comp["i_xt_first"][i]),
                _fmt(comp["i_xt_peak"][i]),
                _fmt(comp["peak_step"][i]),
                _fmt(comp["i_xt_final"][i]),
                _fmt(comp["drop"][i]),
                _pct(comp["drop_pct"][i]),
                _fmt(comp["noise"][i]),
                _fmt(bool(comp["compressed"][i])),
            ]
        )
    window = int(comp["smooth"][0]) if comp["smooth"].size else 1
    n_runs = int(comp["n_runs"].max()) if comp["n_runs"].size else 0
    note = (
        f"Run-averaged curves ({n_runs} run(s)), centred moving average over {window} measured "
        f"step(s). Compression: drop from the I(X;T) peak to the last step ≥ "
        f"{100 * analysis.COMPRESSION_THRESHOLD:.0f}% of the peak and above the run-to-run std."
    )
    return [("p", note), ("table", headers, rows)]


def _early_stopping_blocks(
    metrics: Mapping[str, np.ndarray], table: Mapping[str, np.ndarray], split: str
) -> list[Block]:
    try:
        es = analysis.early_stopping(metrics, table, split=split)
    except InvalidInputError as exc:
        return [("p", f"Not available: {exc}")]
    layers = analysis.compression_summary(table, split=split)
    names = layers["layer"].tolist()
    compressed = {n: bool(c) for n, c in zip(names, layers["compressed"], strict=True)}
    peaks = {n: int(p) for n, p in zip(names, layers["peak_step"], strict=True)}
    headers = ["patience (epochs)", "stop epoch", "stop step", "best epoch"] + [
        f"before onset: {n}" for n in names
    ]
    rows = []
    for p in sorted(set(es["patience"].tolist())):
        idx = np.flatnonzero(es["patience"] == p)
        r = idx[0]
        stop = f"{es['stop_epoch'][r]}" + ("" if es["stopped"][r] else " (no stop)")
        row = [str(p), stop, _fmt(es["stop_step"][r]), _fmt(es["best_epoch"][r])]
        by_layer = {es["layer"][i]: es["before_onset"][i] for i in idx}
        row += [_fmt(by_layer.get(n)) for n in names]
        rows.append(row)
    onset = ", ".join(f"{n} {peaks[n]}" if compressed[n] else f"{n} none" for n in names)
    monitor = str(es["monitor"][0]) if es["monitor"].size else "test loss"
    note = (
        f"Monitor: {monitor} (mean over runs). Training stops patience epochs after the best "
        f"epoch. Compression onset = I(X;T) peak step on {split} ({onset}); 'before onset' is yes "
        "when the stop step is at or before it, — for layers without compression."
    )
    return [("p", note), ("table", headers, rows)]


def _train_vs_test_blocks(table: Mapping[str, np.ndarray]) -> list[Block]:
    tvt = analysis.train_vs_test(table)
    headers = [
        "layer",
        "train drop",
        "train drop %",
        "train compression",
        "test drop",
        "test drop %",
        "test compression",
        "weaker on test",
    ]
    rows = [
        [
            tvt["layer"][i],
            _fmt(tvt["train_drop"][i]),
            _pct(tvt["train_drop_pct"][i]),
            _fmt(bool(tvt["train_compressed"][i])),
            _fmt(tvt["test_drop"][i]),
            _pct(tvt["test_drop_pct"][i]),
            _fmt(bool(tvt["test_compressed"][i])),
            _fmt(bool(tvt["weaker_on_test"][i])),
        ]
        for i in range(tvt["layer"].size)
    ]
    return [("table", headers, rows)]


# ----------------------------------------------------------------------------- report
def write_report(
    run_dir: str | os.PathLike[str], *, formats: Sequence[str] = ("png", "svg")
) -> Path:
    """Rebuild the figures and write ``report.md`` and ``report.html`` into ``run_dir``.

    The report holds the configuration, the findings of the paper checked against the run, the
    figures, the data processing inequality table, the fitting and compression summary per split,
    the early-stopping analysis and, when both splits exist, train against test. All information
    quantities are in bits. PNG figures are always made (the HTML embeds them as base64).

    Returns:
        The path of ``report.md``.
    """
    run_dir = Path(run_dir)
    table, metrics, config = load_run(run_dir, who="write_report")
    formats = tuple(formats)
    if "png" not in formats:
        formats = ("png", *formats)
    _draw_figures(run_dir, table, metrics, config, formats)
    present = analysis.splits(table)
    main = "train" if "train" in present else present[0]
    run = _run_title(config)
    preset = config.get("preset")
    title = "Information plane report" + (f": {preset}" if preset else "")
    title += f" ({run})" if run else ""

    blocks: list[Block] = [
        ("h1", title),
        (
            "p",
            f"Built from {HISTORY_FILE}, {METRICS_FILE} and {CONFIG_FILE} in this folder. "
            "All information quantities (I, S) are in bits. Method: matrix-based Rényi "
            "entropy with tensor kernels (Wickstrøm et al., arXiv:1909.11396).",
        ),
    ]
    blocks += _config_blocks(config)
    blocks += [
        ("h2", "Findings of the paper, checked on this run"),
        ("ul", analysis.findings(table, metrics, config)),
    ]

    blocks.append(("h2", "Figures"))
    fig_dir = run_dir / FIGURES_DIR
    for split in present:
        where = _SPLIT_NAMES.get(split, split)
        blocks.append(("h3", f"Split {split} ({where})"))
        for stem, alt in (
            ("information_plane", "Information plane"),
            ("mi_curves", "I(X;T) and I(T;Y) against step"),
            ("sigma", "Kernel width per layer"),
        ):
            png = fig_dir / f"{stem}_{split}.png"
            blocks.append(("img", f"{alt} ({split})", f"{FIGURES_DIR}/{png.name}", png))
    if (fig_dir / "metrics.png").is_file() and len(metrics["split"]):
        blocks.append(("h3", "Training metrics"))
        blocks.append(
            ("img", "Loss and accuracy", f"{FIGURES_DIR}/metrics.png", fig_dir / "metrics.png")
        )

    blocks.append(("h2", "Data processing inequality"))
    for split in present:
        if len(present) > 1:
            blocks.append(("h3", f"Split {split}"))
        blocks += _dpi_blocks(table, split)

    blocks.append(("h2", "Fitting and compression per layer"))
    for split in present:
        if len(present) > 1:
            blocks.append(("h3", f"Split {split}"))
        blocks += _compression_blocks(table, split)

    blocks.append(("h2", "Early stopping vs compression onset"))
    blocks += _early_stopping_blocks(metrics, table, main)

    if "train" in present and "test" in present:
        blocks.append(("h2", "Train vs test compression"))
        blocks += _train_vs_test_blocks(table)

    md_path = atomic_write_text(run_dir / "report.md", _md(blocks))
    atomic_write_text(run_dir / "report.html", _html(blocks, title))
    return md_path


__all__ = ["load_run", "make_figures", "write_report"]
