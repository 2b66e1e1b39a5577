"""Tests of infoplane.plot and infoplane.report: figure content (trajectories, colours by step,
legends), atomic PNG/SVG files, and the Markdown/HTML report of a run directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from infoplane.errors import HistoryError, InvalidParameterError
from infoplane.io import write_table
from infoplane.plot import (
    plot_information_plane,
    plot_metrics,
    plot_mi_curves,
    plot_sigma,
    save_figure,
)
from infoplane.report import load_run, make_figures, write_report
from infoplane.schema import FIELDS

LAYERS = ("conv1", "conv2", "dense")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_table(*, runs: int = 2, steps: int = 30, split_names=("train",), seed: int = 0) -> dict:
    """A small history: I(X;T) rises then falls, layer l is l bits lower; one skipped record."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {f: [] for f in FIELDS}
    s = np.arange(steps)
    for split in split_names:
        for run in range(runs):
            for li, name in enumerate(LAYERS):
                xt = 5.0 - li - 0.002 * (s - steps / 2) ** 2 + rng.normal(0, 0.01, steps)
                ty = 3.0 * (1 - np.exp(-s / 8.0)) - 0.1 * li + 0.2
                for k in range(steps):
                    skipped = (split, run, li, k) == ("train", 1, 0, 3)
                    row = {
                        "run": run,
                        "split": split,
                        "epoch": k // 10,
                        "step": 5 * k,
                        "layer": name,
                        "layer_index": li,
                        "i_xt": np.nan if skipped else xt[k],
                        "i_ty": np.nan if skipped else ty[k],
                        "h_t": np.nan if skipped else xt[k] + 0.3,
                        "h_x": 6.0,
                        "h_y": 3.32,
                        "sigma": 0.5 * (li + 1) * (1 + k / steps),
                        "n": 100,
                        "status": "skipped" if skipped else "ok",
                    }
                    for f in FIELDS:
                        cols[f].append(row.get(f, np.nan))
    return {
        f: np.array(v, dtype=object if f in ("split", "layer", "status") else None)
        for f, v in cols.items()
    }


def make_metrics(*, runs: int = 2, splits=("train", "test")) -> dict:
    rows = []
    for run in range(runs):
        for e in range(3):
            for split in splits:
                loss = 1.0 / (e + 1) if split == "train" else 1.0 + (e - 1) ** 2
                rows.append((run, split, e, 50 * (e + 1) - 5, loss, 0.5 + 0.1 * e))
    c = list(zip(*rows, strict=True))
    return {
        "run": np.array(c[0]),
        "split": np.array(c[1], dtype=object),
        "epoch": np.array(c[2]),
        "step": np.array(c[3]),
        "loss": np.array(c[4], dtype=float),
        "accuracy": np.array(c[5], dtype=float),
    }


def write_run(
    run_dir: Path, *, split_names=("train",), metrics: bool = True, table: dict | None = None
) -> Path:
    table = make_table(split_names=split_names) if table is None else table
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = [{f: table[f][i] for f in FIELDS} for i in range(table["run"].size)]
    write_table(run_dir / "history.csv", rows, FIELDS)
    if metrics:
        m = make_metrics()
        cols = ("run", "split", "epoch", "step", "loss", "accuracy")
        write_table(
            run_dir / "metrics.csv",
            [{k: m[k][i] for k in cols} for i in range(m["run"].size)],
            cols,
        )
    config = {
        "preset": "cnn-relu",
        "model": "cnn",
        "dataset": "digits",
        "activation": "relu",
        "epochs": 3,
        "runs": 2,
        "alpha": 1.01,
        "layers": list(LAYERS),
        "protocol": "iteration",
        "lr": 0.09,
    }
    (run_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return run_dir


def luminance(rgba: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgba)[:, :3]
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


# ----------------------------------------------------------------------------- plots
def test_information_plane_content():
    fig, ax = plot_information_plane(make_table(), split="train")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # the plane and the step colour bar
    # per layer: the step-coloured points and the marked final point
    assert len(ax.collections) == 2 * len(LAYERS)
    # per layer one joining line, plus the S(Y) and S(X) reference lines
    assert len(ax.lines) == len(LAYERS) + 2
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(LAYERS)
    assert ax.get_xlabel() == "I(X;T) [bits]" and ax.get_ylabel() == "I(T;Y) [bits]"
    assert ax.get_title() == "Information plane (train)"
    # S(Y) dashed at the mean h_y
    assert any(np.allclose(line.get_ydata(), 3.32) for line in ax.lines)


def test_information_plane_points_darken_with_the_step():
    _, ax = plot_information_plane(make_table(), split="train")
    points = ax.collections[0]  # the first layer's step-coloured points
    lum = luminance(points.get_facecolors())
    assert lum.size == 30
    assert np.all(np.diff(lum) <= 1e-12)
    assert lum[-1] < lum[0] - 0.3
    final = ax.collections[1]
    assert final.get_sizes()[0] > points.get_sizes()[0]
    assert np.allclose(final.get_edgecolors()[0][:3], 0.0)  # black edge
    # different layers use different hues
    other = ax.collections[2].get_facecolors()[-1][:3]
    assert not np.allclose(points.get_facecolors()[-1][:3], other)


def test_information_plane_into_given_axes_with_a_layer_subset():
    fig = Figure()
    ax = fig.add_subplot()
    out_fig, out_ax = plot_information_plane(
        make_table(), layers=["conv2"], ax=ax, colorbar=False, title="mine"
    )
    assert out_fig is fig and out_ax is ax
    assert len(ax.collections) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["conv2"]
    assert ax.get_title() == "mine"
    with pytest.raises(InvalidParameterError, match="conv9"):
        plot_information_plane(make_table(), layers=["conv9"])


def test_mi_curves_two_panels_with_bands():
    fig, axes = plot_mi_curves(make_table(runs=3), split="train")
    assert len(axes) == 2 and len(fig.axes) == 2
    for ax in axes:
        assert len(ax.lines) == len(LAYERS) + 1  # one line per layer + the reference line
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == len(LAYERS)
    assert axes[0].get_ylabel() == "I(X;T) [bits]" and axes[1].get_ylabel() == "I(T;Y) [bits]"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(LAYERS)
    _, single = plot_mi_curves(make_table(runs=1), split="train")
    assert not single[0].collections  # one run: no std band


def test_sigma_is_on_a_log_scale():
    _, ax = plot_sigma(make_table(), split="train")
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == len(LAYERS)
    y = ax.lines[2].get_ydata()
    assert y[0] == pytest.approx(1.5) and y[-1] > y[0]


def test_metrics_figure():
    fig, axes = plot_metrics(make_metrics())
    assert len(axes) == 2
    assert [len(ax.lines) for ax in axes] == [2, 2]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["train", "test"]
    train_loss = axes[0].lines[0].get_ydata()
    assert np.allclose(train_loss, [1.0, 0.5, 1 / 3])
    assert axes[0].lines[1].get_linestyle() == "--"


def test_two_panel_figures_need_two_axes():
    fig = Figure()
    with pytest.raises(InvalidParameterError, match="2 Axes"):
        plot_metrics(make_metrics(), ax=fig.add_subplot())


def test_save_figure_writes_valid_files_atomically(tmp_path):
    fig, _ = plot_information_plane(make_table())
    paths = save_figure(fig, tmp_path / "sub" / "plane")
    assert [p.name for p in paths] == ["plane.png", "plane.svg"]
    png = paths[0].read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 10_000
    assert b"<svg" in paths[1].read_bytes()[:1000]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["plane.png", "plane.svg"]
    with pytest.raises(InvalidParameterError, match="formats"):
        save_figure(fig, tmp_path / "x", formats=("gif2",))


# ----------------------------------------------------------------------------- report
def test_make_figures_per_split(tmp_path):
    run_dir = write_run(tmp_path / "run", split_names=("train", "test"))
    paths = make_figures(run_dir, formats=("png",))
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            f"{stem}_{split}.png"
            for stem in ("information_plane", "mi_curves", "sigma")
            for split in ("train", "test")
        ]
        + ["metrics.png"]
    )
    for p in paths:
        assert p.parent == run_dir / "figures"
        assert p.read_bytes()[:8] == PNG_MAGIC


def test_write_report_markdown_and_html(tmp_path):
    run_dir = write_run(tmp_path / "run", split_names=("train", "test"))
    md_path = write_report(run_dir, formats=("png",))
    assert md_path == run_dir / "report.md"
    md = md_path.read_text(encoding="utf-8")
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert md.startswith("# Information plane report: cnn-relu (cnn on digits)")
    for text in (md, page):
        for name in LAYERS:
            assert name in text
        assert "Data processing inequality" in text
        assert "layer pair (l → l+1)" in text
        assert "Early stopping vs compression onset" in text
        assert "Train vs test compression" in text
        assert "Fitting and compression per layer" in text
    assert "| layer pair (l → l+1) | mean ΔI(X;T) | mean ΔI(T;Y) |" in md
    assert "| conv1 → conv2 |" in md
    assert "| patience (epochs) | stop epoch |" in md
    # relative image links that exist
    links = [line[line.index("](") + 2 : -1] for line in md.splitlines() if line.startswith("![")]
    assert "figures/information_plane_train.png" in links
    assert all((run_dir / link).is_file() for link in links)
    # self-contained HTML
    assert page.count('<img src="data:image/png;base64,') == len(links) == 7
    assert 'src="figures/' not in page
    assert "<table>" in page and "<style>" in page
    assert "Fitting (train)" in page


def table_rows(md: str, heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table after ``heading``."""
    lines = md[md.index(heading) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_report_tables_fit_the_page_and_print_the_real_reason(tmp_path):
    """Three runs whose late falls differ by +-0.5 bits: some layers fall by more than the 5%
    threshold without passing the test; their cell says so, not 'below the threshold'."""
    table = make_table(runs=3, split_names=("train", "test"))
    k = table["step"] / 5
    late = np.clip((k - 15) / 15, 0.0, None)
    table["i_xt"] = table["i_xt"] + 0.5 * (table["run"] - 1) * late
    run_dir = write_run(tmp_path / "run", split_names=("train", "test"), table=table)
    md = write_report(run_dir, formats=("png",)).read_text(encoding="utf-8")
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    per_layer = md[md.index("## Fitting and compression per layer") :]
    widths = [len(line) for line in per_layer.splitlines() if line.startswith("|")]
    assert max(widths) <= 100  # the per-layer tables fit a page
    for text in (md, page):
        assert "Fitting, estimate (train)" in text and "Compression, estimate (train)" in text
        assert "Controls (train)" in text
        assert "fall below the threshold" not in text and "19%" not in text
    seen = set()
    for layer, _, _, _, fall, p, state in table_rows(md, "Compression, estimate (train)"):
        pct, significant = float(fall.split(" ±")[0]), p == "<0.001" or float(p) < 0.05
        expected = "yes" if pct >= 5 and significant else "no: not significant"
        expected = "no: fall below 5%" if pct < 5 else expected
        assert state == expected, layer
        seen.add(state)
    assert "no: not significant" in seen
    assert "one-sided t-test over 3 runs" in md and "Hommel" in md


def test_a_one_run_report_quotes_no_spread(tmp_path):
    table = make_table(runs=1)
    run_dir = write_run(tmp_path / "run", table=table)
    md = write_report(run_dir, formats=("png",)).read_text(encoding="utf-8")
    assert "spread" not in md.replace("no run-to-run spread is quoted", "")
    assert "±" not in md
    assert "inconclusive (needs >= 3 runs)" in md and "inconclusive (needs >= 2 runs)" in md


def test_report_with_one_split_has_no_train_vs_test(tmp_path):
    run_dir = write_run(tmp_path / "run")
    write_report(run_dir, formats=("png",))
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "Train vs test compression" not in md
    assert "Train vs test: not checked" in md


def test_missing_history_gives_a_one_line_error(tmp_path):
    run_dir = write_run(tmp_path / "run")
    (run_dir / "history.csv").unlink()
    with pytest.raises(HistoryError, match=r"history\.csv") as info:
        write_report(run_dir)
    assert "\n" not in str(info.value)
    assert "infoplane CLI" in str(info.value)
    assert not (run_dir / "report.md").exists()


def test_missing_metrics_are_tolerated(tmp_path):
    """Training metrics are optional: the report says early stopping was not checked."""
    run_dir = write_run(tmp_path / "run", metrics=False)
    write_report(run_dir, formats=("png",))
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "Early stopping: not checked, no training metrics." in md
    assert not (run_dir / "figures" / "metrics.png").exists()


def test_missing_run_directory(tmp_path):
    with pytest.raises(HistoryError, match="run directory"):
        make_figures(tmp_path / "nowhere")


def test_history_without_measured_records(tmp_path):
    run_dir = write_run(tmp_path / "run")
    text = (run_dir / "history.csv").read_text(encoding="utf-8").replace(",ok\n", ",skipped\n")
    (run_dir / "history.csv").write_text(text, encoding="utf-8")
    with pytest.raises(HistoryError, match="none measured"):
        load_run(run_dir)


def test_missing_config_is_tolerated(tmp_path):
    run_dir = write_run(tmp_path / "run")
    (run_dir / "config.json").unlink()
    table, metrics, config = load_run(run_dir)
    assert config == {} and table["layer"].size and metrics["loss"].size
    write_report(run_dir, formats=("png",))
    assert "No config.json" in (run_dir / "report.md").read_text(encoding="utf-8")
