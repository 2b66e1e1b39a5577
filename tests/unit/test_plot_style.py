"""How the figures draw the controls, read from the matplotlib objects: the null floor as a band
that never sets the axes, a visible fixed-width control without its empty steps, reference lines
in a style of their own, hollow saturated points, and an animation whose frames carry all of it
and say over how many runs the curves are means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from matplotlib.collections import PolyCollection

from infoplane.plot import (
    animate_information_plane,
    plot_animation_frame,
    plot_information_plane,
    plot_layer_planes,
    plot_mi_curves,
)
from tests.unit.test_findings import LAYERS, synthetic

FLOOR_DROP = 20.0  # bits below the estimate: far outside any sensible view


def with_controls(
    frame: pd.DataFrame,
    *,
    drop: float = 0.5,
    q95: bool = True,
    fixed_from: int = 10,
    saturated: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """``frame`` with a null floor ``drop`` bits below the estimate (its 95% quantile 0.3 bits
    above it), a fixed-width control 0.1 bits above the estimate from step ``fixed_from`` on
    (NaN before) and the given saturation columns."""
    out = frame.copy()
    for q in ("i_xt", "i_ty"):
        out[f"{q}_null"] = out[q] - drop
        if q95:
            out[f"{q}_null_q95"] = out[f"{q}_null"] + 0.3
        out[f"{q}_fixed"] = np.where(out["step"] >= fixed_from, out[q] + 0.1, np.nan)
    for column, values in (saturated or {}).items():
        out[column] = values
    return out


def by_gid(artists, gid: str) -> list:
    return [a for a in artists if a.get_gid() == gid]


def trajectory_points(ax) -> np.ndarray:
    """Every point of the estimate's joining lines and of the fixed-width control lines."""
    lines = [ln for ln in ax.lines if ln.get_gid() in (None, "fixed")]
    return np.concatenate([np.asarray(ln.get_xydata(), dtype=float) for ln in lines])


def legend_labels(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


# ----------------------------------------------------------------------------- the floor band
def test_a_far_floor_does_not_set_the_plane_axes():
    frame = with_controls(synthetic(), drop=FLOOR_DROP)
    fig, ax = plot_information_plane(frame, colorbar=False)
    points = trajectory_points(ax)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert (points[:, 0] >= x0).all() and (points[:, 0] <= x1).all()
    assert (points[:, 1] >= y0).all() and (points[:, 1] <= y1).all()
    # the limits hug the trajectories (S(Y) = 3.32 lies near and is brought into view)
    x_span = np.ptp(points[:, 0])
    assert x0 > points[:, 0].min() - 0.1 * x_span and x1 < points[:, 0].max() + 0.1 * x_span
    assert y0 > points[:, 1].min() - 0.1 * np.ptp(points[:, 1]) and y1 < 3.32 + 0.2
    assert x0 > frame["i_xt_null_q95"].max()  # the floor lies wholly outside
    assert "null floor (off the axes):\nmean to 95% quantile" in legend_labels(fig)


def test_the_floor_is_a_band_from_its_mean_to_its_95_percent_quantile():
    frame = with_controls(synthetic())
    _, ax = plot_information_plane(frame, colorbar=False)
    bands = by_gid(ax.collections, "null band")
    assert len(bands) == len(LAYERS)
    assert all(isinstance(b, PolyCollection) for b in bands)
    first = frame[frame["layer"] == LAYERS[0]].groupby("step")
    mean, top = first["i_xt_null"].mean(), first["i_xt_null_q95"].mean()
    corners = bands[0].get_paths()[0].vertices
    assert corners[:, 0].min() == pytest.approx(mean.min())
    assert corners[:, 0].max() == pytest.approx(top.max())
    floors = by_gid(ax.lines, "null floor")
    assert len(floors) == len(LAYERS) and all(ln.get_linestyle() == "--" for ln in floors)
    assert np.allclose(floors[0].get_ydata(), first["i_ty_null"].mean())


def test_without_the_quantile_the_floor_is_its_mean_line_alone():
    fig, ax = plot_information_plane(with_controls(synthetic(), q95=False), colorbar=False)
    assert not by_gid(ax.collections, "null band")
    assert len(by_gid(ax.lines, "null floor")) == len(LAYERS)
    assert "null floor: mean" in legend_labels(fig)


def test_curves_and_small_multiples_keep_a_far_floor_off_their_axes():
    frame = with_controls(synthetic(), drop=FLOOR_DROP)
    fig, axes = plot_mi_curves(frame)
    assert "null floor (off the axes):\nmean to 95% quantile" in legend_labels(fig)
    for ax, q in zip(axes, ("i_xt", "i_ty"), strict=True):
        assert ax.get_ylim()[0] > frame[f"{q}_null_q95"].max()
        band = by_gid(ax.collections, "null band")
        assert len(band) == len(LAYERS) and band[0].get_hatch()  # hatched: the CI band is filled
    fig, panels = plot_layer_planes(frame)
    assert panels[0].get_xlim()[0] > frame["i_xt_null_q95"].max()
    assert "null floor (off the axes):\nmean to 95% quantile" in legend_labels(fig)
    assert all(len(by_gid(p.collections, "null band")) == 1 for p in panels)


# ----------------------------------------------------------------------------- fixed widths
def test_the_fixed_control_is_visible_and_skips_its_empty_steps():
    frame = with_controls(synthetic(), fixed_from=10)
    fig, ax = plot_information_plane(frame, colorbar=False)
    fixed = by_gid(ax.lines, "fixed")
    assert len(fixed) == len(LAYERS)  # one unbroken line per layer
    for line in fixed:
        assert line.get_alpha() >= 0.8 and line.get_linewidth() >= 1.0
        assert line.get_linestyle() == "-" and line.get_marker() == "v"
        xy = np.asarray(line.get_xydata(), dtype=float)
        assert np.isfinite(xy).all()
    measured = frame[(frame["layer"] == LAYERS[0]) & (frame["step"] >= 10)]
    expected = measured.groupby("step")[["i_xt_fixed", "i_ty_fixed"]].mean().to_numpy()
    assert np.allclose(fixed[0].get_xydata(), expected)
    assert "fixed widths" in legend_labels(fig)
    _, axes = plot_mi_curves(frame)
    assert all(np.isfinite(ln.get_ydata()).all() for ln in by_gid(axes[1].lines, "fixed"))


# ----------------------------------------------------------------------------- reference lines
def test_reference_lines_have_a_style_of_their_own():
    _, ax = plot_information_plane(with_controls(synthetic()), colorbar=False)
    references = by_gid(ax.lines, "reference")
    assert len(references) == 2  # S(Y) and S(X)
    floor = by_gid(ax.lines, "null floor")[0]
    for line in references:
        assert line.get_linestyle() == "-." and line.get_color() == "black"
        style = (line.get_linestyle(), line.get_color())
        assert style != (floor.get_linestyle(), floor.get_color())
    texts = [t.get_text() for t in ax.texts]
    assert "S(Y) = 3.32" in texts  # on its line: near the trajectories
    assert "S(X) = 6.50 →" in texts  # at the right edge: 1.5 bits beyond them
    assert ax.get_xlim()[1] < 6.5


# ----------------------------------------------------------------------------- saturation
def test_saturated_points_are_hollow_and_named_in_the_legend():
    frame = synthetic(runs=2)
    late = (frame["layer"] == LAYERS[0]) & (frame["step"] >= 50)
    one_run = late & (frame["run"] == 0)  # saturated in one run of two: still not a measurement
    frame = with_controls(
        frame,
        saturated={"saturated": one_run.astype(float), "saturated_fixed": late.astype(float)},
    )
    fig, ax = plot_information_plane(frame, colorbar=False)
    hollow = by_gid(ax.collections, "saturated")
    assert [len(h.get_offsets()) for h in hollow] == [11, 11]  # steps 50..60, estimate and fixed
    for h in hollow:
        assert h.get_facecolors().size == 0 or np.allclose(h.get_facecolors()[:, 3], 0.0)
    filled = next(c for c in ax.collections if c.get_gid() is None)  # the first layer's points
    assert len(filled.get_offsets()) == 61 - 11
    assert "hollow: saturated, not read" in legend_labels(fig)


def test_an_older_history_without_the_new_columns_draws_as_before():
    frame = synthetic()
    for q in ("i_xt", "i_ty"):
        frame[f"{q}_null"], frame[f"{q}_fixed"] = frame[q] - 0.5, frame[q] + 0.1
    fig, ax = plot_information_plane(frame, colorbar=False)
    assert not by_gid(ax.collections, "saturated") and not by_gid(ax.collections, "null band")
    assert legend_labels(fig)[-2:] == ["null floor: mean", "fixed widths"]


# ----------------------------------------------------------------------------- animation
@pytest.mark.parametrize(("runs", "note"), [(3, "mean over 3 runs"), (1, "1 run")])
def test_an_animation_frame_has_the_controls_and_says_the_runs(runs, note):
    frame = with_controls(synthetic(runs=runs), fixed_from=10)
    fig, ax = plot_animation_frame(frame, 30)
    assert len(by_gid(ax.collections, "null band")) == len(LAYERS)
    assert len(by_gid(ax.lines, "null floor")) == len(LAYERS)
    assert len(by_gid(ax.lines, "reference")) == 2
    fixed = by_gid(ax.lines, "fixed")
    assert len(fixed) == len(LAYERS) and len(fixed[0].get_xdata()) == 21  # steps 10..30
    assert ax.get_title() == f"Information plane (train), step 30, {note}"
    assert fig.legends[0].get_title().get_text() == f"layer ({note})"
    full, _ = plot_information_plane(frame)
    assert ax.get_xlim() == full.axes[0].get_xlim()  # the axes hold the whole trajectories


def test_every_animation_frame_draws_the_controls(tmp_path, monkeypatch):
    from matplotlib.animation import PillowWriter

    seen = []
    grab = PillowWriter.grab_frame

    def counting(self, **kwargs):
        ax = self.fig.axes[0]
        seen.append(
            (
                len(by_gid(ax.collections, "null band")),
                len(by_gid(ax.lines, "fixed")),
                len(by_gid(ax.lines, "reference")),
                ax.get_title(),
            )
        )
        return grab(self, **kwargs)

    monkeypatch.setattr(PillowWriter, "grab_frame", counting)
    frame = with_controls(synthetic(runs=2), fixed_from=0)
    animate_information_plane(frame, tmp_path / "plane.gif", max_frames=4)
    assert len(seen) == 4
    assert all(s[:3] == (len(LAYERS), len(LAYERS), 2) for s in seen)
    assert all(s[3].endswith(", mean over 2 runs") for s in seen)


@pytest.mark.parametrize("smooth", [1, 5])
@pytest.mark.parametrize("as_table", [False, True])
def test_the_band_and_flags_come_from_a_dataframe_or_a_table(smooth, as_table):
    frame = with_controls(synthetic(runs=2), saturated={"saturated": 1.0})
    source = {c: frame[c].to_numpy() for c in frame.columns} if as_table else frame
    _, ax = plot_information_plane(source, smooth=smooth, colorbar=False)
    assert len(by_gid(ax.collections, "null band")) == len(LAYERS)
    assert len(by_gid(ax.collections, "saturated")) == len(LAYERS)
