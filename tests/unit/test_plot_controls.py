"""Figures from any history source, with the controls beside the estimate, 95% CI bands over
runs, per-layer small multiples and the information-plane animation; the report of a directory
that holds only a history, with its findings first and its provenance."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.collections import PolyCollection
from PIL import Image

from infoplane.errors import InvalidParameterError
from infoplane.history import History
from infoplane.plot import (
    animate_information_plane,
    plot_information_plane,
    plot_layer_planes,
    plot_mi_curves,
)
from infoplane.report import make_figures, write_report
from infoplane.schema import RunDir
from tests.unit.test_findings import constant, rise_fall, rising, synthetic

CONTROLS = {
    "i_xt_null": constant(0.4),
    "i_ty_null": constant(0.2),
    "i_xt_fixed": rise_fall(drop=0.2),
    "i_ty_fixed": rising(0.3, 2.5),
}


def saved_history(tmp_path, frame):
    hist = History({"alpha": 1.01})
    hist.extend(frame.to_dict("records"))
    return hist, hist.save(RunDir(tmp_path).history)


def test_every_source_draws_the_same_plane(tmp_path):
    frame = synthetic(runs=2)
    hist, path = saved_history(tmp_path, frame)
    expected = None
    for source in (frame, hist, path, str(path), tmp_path):
        _, ax = plot_information_plane(source, colorbar=False)
        xy = np.asarray(ax.lines[0].get_xydata())
        if expected is None:
            expected = xy
        assert np.allclose(xy, expected)
    first = frame[frame["layer"] == "l1"].groupby("step")[["i_xt", "i_ty"]].mean().to_numpy()
    assert np.allclose(expected, first)


def test_controls_are_drawn_beside_the_estimate():
    frame = synthetic(extra=CONTROLS)
    _, ax = plot_information_plane(frame, colorbar=False)
    floors = [line for line in ax.lines if line.get_gid() == "null floor"]
    fixed = [line for line in ax.lines if line.get_gid() == "fixed"]
    assert len(floors) == len(fixed) == 3  # null floor, fixed widths per layer
    assert all(ln.get_linestyle() == "--" for ln in floors)
    assert all(ln.get_linestyle() == "-" and ln.get_marker() == "v" for ln in fixed)
    fig, axes = plot_mi_curves(frame)
    for ax_, column in zip(axes, ("i_xt_null", "i_ty_null"), strict=True):
        dashed = [ln for ln in ax_.lines if ln.get_linestyle() == "--" and len(ln.get_xdata()) > 2]
        first = frame[(frame["layer"] == "l1") & (frame["run"] == 0)][column].to_numpy()
        assert np.allclose(dashed[0].get_ydata(), first)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[-2:] == ["null floor: mean", "fixed widths"]


def test_bands_are_the_95_percent_ci_over_runs():
    offsets = {0: -0.2, 1: 0.0, 2: 0.5}
    frame = synthetic(ty=lambda run, li, s: 1.0 + offsets[run] + 0.01 * s)
    fig, axes = plot_mi_curves(frame, layers=["l1"])
    band = next(c for c in axes[1].collections if isinstance(c, PolyCollection))
    top = band.get_paths()[0].vertices[:, 1].max()
    values = np.array(list(offsets.values())) + 1.0 + 0.01 * 60
    t2 = (2 * 0.975 - 1) / math.sqrt(2 * 0.975 * 0.025)
    assert top == pytest.approx(values.mean() + t2 * values.std(ddof=1) / math.sqrt(3))
    assert "95% CI over 3 runs" in fig.get_suptitle()


def test_small_multiples_have_one_panel_per_layer():
    layers = tuple(f"features.{i}" for i in range(16))
    frame = synthetic(runs=1, layers=layers, steps=np.arange(12), extra=CONTROLS)
    fig, axes = plot_layer_planes(frame, ncols=4)
    assert [ax.get_title() for ax in axes] == list(layers)
    assert sum(ax.get_visible() for ax in fig.axes) == 16
    assert all(len(ax.lines) == 3 for ax in axes)  # estimate, null floor, fixed widths
    with pytest.raises(InvalidParameterError, match="ncols"):
        plot_layer_planes(frame, ncols=0)


def test_animation_has_one_frame_per_step(tmp_path):
    frame = synthetic(runs=1, steps=np.arange(6))
    path = animate_information_plane(frame, tmp_path / "plane.gif", fps=4)
    assert path == tmp_path / "plane.gif" and path.is_file()
    with Image.open(path) as gif:
        assert gif.n_frames == 6
    thin = animate_information_plane(frame, tmp_path / "thin.gif", max_frames=3)
    with Image.open(thin) as gif:
        assert gif.n_frames == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plane.gif", "thin.gif"]
    with pytest.raises(InvalidParameterError, match=r"\.gif or \.mp4"):
        animate_information_plane(frame, tmp_path / "plane.avi")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_animation_as_mp4(tmp_path):  # pragma: no cover - depends on the machine
    path = animate_information_plane(synthetic(runs=1, steps=np.arange(4)), tmp_path / "a.mp4")
    assert path.stat().st_size > 0


# ----------------------------------------------------------------------------- report
def test_report_of_a_directory_with_only_a_history(tmp_path):
    saved_history(tmp_path, synthetic(runs=1, extra=CONTROLS))
    paths = make_figures(tmp_path, formats=("png",))
    assert sorted(p.name for p in paths) == [
        "information_plane_train.png",
        "layer_planes_train.png",
        "mi_curves_train.png",
        "sigma_train.png",
    ]
    md = write_report(tmp_path, formats=("png",)).read_text(encoding="utf-8")
    assert md.index("## Findings of the paper") < md.index("## Figures")
    assert "| finding | adaptive widths | fixed-width control | above the null floor |" in md
    assert "No config.json in the run directory." in md
    assert "No provenance.json in the run directory" in md
    assert "One run: no run-to-run spread is quoted." in md
    assert "Early stopping: not checked, no training metrics." in md


def test_report_provenance_and_overridden_preset(tmp_path):
    saved_history(tmp_path, synthetic(runs=2))
    from infoplane.experiments.presets import PRESETS

    config = {**PRESETS["digits"].to_dict(), "epochs": 2, "runs": 2}
    RunDir(tmp_path).config.write_text(json.dumps(config), encoding="utf-8")
    session = {"command": ["infoplane", "run", "--epochs", "2"], "start": "2026-12-01T10:00:00"}
    provenance = {
        "infoplane": "0.1.0",
        "torch": "2.3.0",
        "sessions": [{**session, "end": None, "duration_s": None}, session],
        "duration_s": 3725.0,
    }
    RunDir(tmp_path).provenance.write_text(json.dumps(provenance), encoding="utf-8")
    md = write_report(tmp_path, formats=("png",)).read_text(encoding="utf-8")
    assert "| torch | 2.3.0 |" in md
    assert "| duration_s | 3725.0 s (1:02:05) |" in md
    assert "| sessions.2.command | infoplane run --epochs 2 |" in md
    assert "| sessions.1.end | — (not finished) |" in md
    assert "this run overrides epochs=2, runs=2" in md
    assert "2 runs: spreads are 95% confidence intervals over runs." in md


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda f, p: plot_mi_curves(f, controls=("bogus",)), "controls"),
        (lambda f, p: plot_information_plane(f, split="valid"), "split"),
        (lambda f, p: animate_information_plane(f, p / "a.gif", fps=0), "fps"),
        (lambda f, p: animate_information_plane(f, p / "a.gif", max_frames=1.5), "max_frames"),
        (lambda f, p: plot_layer_planes(f, layers=["nope"]), "nope"),
    ],
)
def test_bad_plot_arguments_give_one_line(tmp_path, call, match):
    with pytest.raises(InvalidParameterError, match=match) as info:
        call(synthetic(runs=1, steps=np.arange(4)), tmp_path)
    assert "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())  # nothing written
