"""Figures of an information-plane history and of training metrics (matplotlib).

Every ``plot_*`` function takes a *source*: a :class:`~infoplane.history.History`, a pandas
DataFrame, a table (``dict`` of numpy arrays) or the path of a history file or run directory
(see :mod:`infoplane.analysis.tables`). It draws into ``ax`` when given (a pair of Axes for the
two-panel figures) or into a new :class:`matplotlib.figure.Figure` otherwise, and returns
``(fig, ax)`` or ``(fig, axes)``. New figures are built without pyplot, so no global figure state
is touched; the backend is never changed. :func:`save_figure` writes files atomically and
:func:`animate_information_plane` writes a GIF (or MP4 where ffmpeg exists).

The information plane follows Wickstrøm et al. (arXiv:1909.11396): x = I(X;T), y = I(T;Y) in bits,
one trajectory per layer, each in its own sequential colour map whose intensity grows with the
training step, the final point marked, runs averaged. Where the history holds them, the controls
are drawn beside the estimate in the layer's colour: the null floor as a dashed line (its mean)
with a light band up to its 95% quantile, the fixed-width control as a thin solid line with small
triangles, its steps before the reference step left out. The axes are set by the estimate and
the fixed-width control; the floor is a reference and is clipped. S(X) and S(Y) are thin black
dash-dot lines labelled at the axis edge. Points whose Gram is saturated (``saturated``,
``saturated_fixed``) are hollow: they are not measurements. Curves against the step carry the 95%
confidence band over runs. This module is imported on demand only (``infoplane`` itself never
imports matplotlib).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infoplane.analysis.tables import (
    aggregate,
    layer_order,
    measured,
    metrics_frame,
    moving_average,
    recorded,
    run_summary,
    splits,
)
from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.history import History
from infoplane.io import atomic_open
from infoplane.schema import (
    FIELDS,
    KEY,
    NULL_Q95_QUANTITIES,
    NULL_QUANTITIES,
    SATURATION_QUANTITIES,
)

#: Sequential colour maps of the layers, in forward order (cycled, with a new marker per cycle).
LAYER_CMAPS: tuple[str, ...] = (
    "Blues",
    "Oranges",
    "Greens",
    "Reds",
    "Purples",
    "Greys",
    "YlOrBr",
    "PuRd",
)
_MARKERS: tuple[str, ...] = ("o", "s", "^", "D")
_LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
#: Colour-map range used for the steps: light (first step) to dark (last step).
_SHADE_LO, _SHADE_HI = 0.35, 1.0
#: Representative shade of a layer (legend, curves).
_SHADE_REP = 0.75
#: Train / test colours of the metrics figure (Okabe-Ito blue and vermillion).
_SPLIT_COLOURS = {"train": "#0072B2", "test": "#D55E00"}
#: Above this many points per layer, scatter points are rasterised in vector output.
_RASTER_POINTS = 1500
#: How each control is drawn beside the estimate: (label, (x, y) column stems, line style).
CONTROL_STYLES: dict[str, tuple[str, tuple[str, str], str]] = {
    "null": ("null floor", ("i_xt_null", "i_ty_null"), "--"),
    "fixed": ("fixed widths", ("i_xt_fixed", "i_ty_fixed"), "-"),
}
#: The top of the null floor's band: the 95% quantile of the permuted draws, per floor column.
NULL_BAND_TOPS: dict[str, str] = dict(zip(NULL_QUANTITIES, NULL_Q95_QUANTITIES, strict=True))
#: The null floor's mean (dashed, faint) and its band up to the 95% quantile (light fill).
_FLOOR_LINE: dict[str, Any] = {"linestyle": "--", "linewidth": 0.9, "alpha": 0.6, "zorder": 0.7}
_BAND_ALPHA = 0.12
#: Against the step the 95% CI band is filled, so the floor's band there is hatched instead.
_HATCH: dict[str, Any] = {"hatch": "////", "facecolor": "none", "linewidth": 0, "alpha": 0.45}
#: The fixed-width control: thinner than the estimate, solid, with triangles (no layer uses them).
_FIXED_MARKER = "v"
_FIXED_LINE: dict[str, Any] = {
    "linestyle": "-",
    "linewidth": 1.0,
    "alpha": 0.85,
    "marker": _FIXED_MARKER,
    "markersize": 3.5,
    "zorder": 1.5,
}
#: At most this many triangles along a fixed-width control line (its saturated points all show).
_FIXED_MARKS = 15
#: S(X) and S(Y): thin black dash-dot lines, apart from every control's style.
_REFERENCE_LINE: dict[str, Any] = {
    "color": "black",
    "linestyle": "-.",
    "linewidth": 0.8,
    "alpha": 0.8,
    "zorder": 0.9,
}
#: Axis limits: the trajectories' range plus this fraction of it on each side; a reference line
#: (S(X), S(Y)) within this many ranges of the trajectories is brought into view.
_MARGIN, _NEAR = 0.06, 0.25
#: Per-record columns the figures read beside the aggregate of analysis.tables: the top of the
#: null floor's band and the saturation flags (mean over runs: the fraction of saturated runs).
_PLANE_EXTRAS: tuple[str, ...] = (*NULL_Q95_QUANTITIES, *SATURATION_QUANTITIES)


# ----------------------------------------------------------------------------- helpers
def _layer_style(index: int) -> tuple[Any, str]:
    """(colour map, marker) of the layer at position ``index`` in forward order."""
    from matplotlib import colormaps

    cmap = colormaps[LAYER_CMAPS[index % len(LAYER_CMAPS)]]
    marker = _MARKERS[(index // len(LAYER_CMAPS)) % len(_MARKERS)]
    return cmap, marker


def layer_colour(index: int) -> tuple[float, float, float, float]:
    """The representative RGBA colour of the layer at position ``index`` (legends, curves)."""
    cmap, _ = _layer_style(index)
    return tuple(float(c) for c in cmap(_SHADE_REP))  # type: ignore[return-value]


def _new_figure(figsize: tuple[float, float], ncols: int = 1, nrows: int = 1, **kw: Any):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, list(axes.ravel())


def _axes(ax: Any, n: int, figsize: tuple[float, float], who: str):
    """(fig, list of n axes, created?) from the user's ``ax`` or a new figure."""
    if ax is None:
        fig, axes = _new_figure(figsize, ncols=n)
        return fig, axes, True
    axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
    if len(axes) != n:
        raise InvalidParameterError(
            f"{who}: expected ax to be {'one Axes' if n == 1 else f'{n} Axes'}, got {len(axes)}."
        )
    return axes[0].figure, axes, False


def _pick_layers(agg: pd.DataFrame, layers: Sequence[str] | None, who: str):
    """[(position in forward order, name)] of the requested layers (all by default)."""
    order = layer_order(agg) if len(agg) else []
    if not order:
        raise InvalidInputError(f"{who}: expected measured records, got none for this split.")
    if layers is None:
        return list(enumerate(order))
    unknown = [name for name in layers if name not in order]
    if unknown:
        raise InvalidParameterError(
            f"{who}: expected layers from {order}, got unknown {unknown}. Pick names from the "
            "history."
        )
    wanted = set(layers)
    return [(i, name) for i, name in enumerate(order) if name in wanted]


def _layer_rows(agg: pd.DataFrame, name: str) -> pd.DataFrame:
    return agg[agg["layer"].to_numpy() == name]


def _picked_rows(agg: pd.DataFrame, picked: list[tuple[int, str]]) -> pd.DataFrame:
    """The rows of the picked layers: what limits, legends and notes are read from."""
    return agg[agg["layer"].isin([name for _, name in picked])]


def _controls(agg: pd.DataFrame, controls: Sequence[str]) -> list[str]:
    """The requested controls whose columns hold values (absent or off controls are skipped)."""
    unknown = [c for c in controls if c not in CONTROL_STYLES]
    if unknown:
        raise InvalidParameterError(
            f"plot: expected controls from {sorted(CONTROL_STYLES)}, got {unknown}."
        )
    return [c for c in controls if all(recorded(agg, f"{s}_mean") for s in CONTROL_STYLES[c][1])]


def _runs_note(agg: pd.DataFrame) -> str:
    """'mean over R runs' (R the most runs of any step), or '1 run'."""
    n_runs = int(agg["n_runs"].max()) if len(agg) else 0
    return f"mean over {n_runs} runs" if n_runs > 1 else "1 run"


def _legend(
    fig: Any, ax: Any, created: bool, handles: list, labels: list[str], title: str = "layer"
) -> None:
    """Legend outside the axes on new figures, in the best spot on a user's axes."""
    if not handles:
        return
    if created:
        ncol = 1 if len(labels) <= 12 else 2
        fig.legend(
            handles,
            labels,
            loc="outside right upper",
            fontsize="small",
            frameon=False,
            ncols=ncol,
            title=title,
            title_fontsize="small",
        )
    else:
        ax.legend(handles, labels, loc="best", fontsize="small", title=title)


def _control_handles(
    agg: pd.DataFrame, controls: Sequence[str], *, hidden: bool = False, hatched: bool = False
):
    """(handles, labels) of the drawn controls and, where any point is saturated, of that.

    ``hidden``: the floor lies wholly outside the axes; ``hatched``: its band is hatched.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, labels = [], []
    if "null" in controls:
        name = "null floor (off the axes)" if hidden else "null floor"
        if _band_recorded(agg):
            band = {"hatch": "////", "facecolor": "none"} if hatched else {"facecolor": "0.75"}
            handles.append(Patch(edgecolor="0.3", linestyle="--", **band))
            labels.append(f"{name}:\nmean to 95% quantile")
        else:
            handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=0.9))
            labels.append(f"{name}: mean")
    if "fixed" in controls:
        handles.append(Line2D([], [], color="0.3", **{**_FIXED_LINE, "markersize": 5}))
        labels.append(CONTROL_STYLES["fixed"][0])
    if _any_saturated(agg, controls):
        hollow = {"markerfacecolor": "none", "markeredgecolor": "0.2", "linestyle": "none"}
        handles.append(Line2D([], [], marker="o", **hollow))
        labels.append("hollow: saturated, not read")
    return handles, labels


def _band_recorded(agg: pd.DataFrame) -> bool:
    return all(recorded(agg, f"{top}_mean") for top in NULL_BAND_TOPS.values())


def _flags(rows: pd.DataFrame, column: str) -> np.ndarray:
    """Where the saturation flag ``column`` is set in any run of the step (False if absent)."""
    name = f"{column}_mean"
    if name not in rows:
        return np.zeros(len(rows), dtype=bool)
    return np.nan_to_num(rows[name].to_numpy(float), nan=0.0) > 0


def _any_saturated(agg: pd.DataFrame, controls: Sequence[str]) -> bool:
    fixed = _flags(agg, "saturated_fixed") if "fixed" in controls else np.zeros(1, dtype=bool)
    return bool(_flags(agg, "saturated").any() or fixed.any())


def _limits(values: Sequence[Any], references: Sequence[float] = ()) -> tuple[float, float] | None:
    """Axis limits around the finite ``values`` with a margin, or None when there are none.

    A reference value within :data:`_NEAR` ranges of them is brought into view; one farther off
    is left outside (its line is labelled at the edge).
    """
    v = np.concatenate([np.asarray(a, dtype=float).ravel() for a in values])
    v = v[np.isfinite(v)]
    if not v.size:
        return None
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo if hi > lo else 0.05 * max(abs(hi), 1.0)
    for r in references:
        if np.isfinite(r) and lo - _NEAR * span <= r <= hi + _NEAR * span:
            lo, hi = min(lo, r), max(hi, r)
    pad = _MARGIN * (hi - lo) if hi > lo else span
    return lo - pad, hi + pad


def _set_limits(ax: Any, xlim: tuple[float, float] | None, ylim: tuple[float, float] | None):
    if xlim is not None:
        ax.set_xlim(*xlim)
    if ylim is not None:
        ax.set_ylim(*ylim)


def _reference_line(ax: Any, value: float, text: str, *, vertical: bool = False) -> None:
    """S(X) or S(Y): a thin black dash-dot line labelled at the axis edge (not in the legend).

    Set the axis limits first: a value outside them gets its label at the edge it lies beyond,
    with an arrow pointing to it.
    """
    if not np.isfinite(value):
        return
    (ax.axvline if vertical else ax.axhline)(value, gid="reference", **_REFERENCE_LINE)
    lo, hi = ax.get_xlim() if vertical else ax.get_ylim()
    style = {"fontsize": "small", "textcoords": "offset points", "annotation_clip": False}
    if vertical and lo <= value <= hi:
        xy, coords, offset = (value, 0.02), ("data", "axes fraction"), (-3, 0)
        align = {"rotation": 90, "ha": "right", "va": "bottom"}
    elif vertical:
        beyond = value > hi
        text = f"{text} →" if beyond else f"← {text}"
        xy, coords, offset = (float(beyond), 0.02), "axes fraction", (-3 if beyond else 3, 0)
        align = {"ha": "right" if beyond else "left", "va": "bottom"}
    elif lo <= value <= hi:
        xy, coords, offset = (0.01, value), ("axes fraction", "data"), (0, 3)
        align = {"ha": "left", "va": "bottom"}
    else:
        beyond = value > hi
        text = f"{text} {'↑' if beyond else '↓'}"
        xy, coords, offset = (0.01, float(beyond)), "axes fraction", (0, -3 if beyond else 3)
        align = {"ha": "left", "va": "top" if beyond else "bottom"}
    ax.annotate(text, xy=xy, xycoords=coords, xytext=offset, **align, **style)


def _mean_of(agg: pd.DataFrame, column: str) -> float:
    if column not in agg:
        return float("nan")
    v = agg[column].to_numpy(float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


# ----------------------------------------------------------------------------- tables
def _plane_table(source: Any, split: str, smooth: int, who: str) -> pd.DataFrame:
    """:func:`~infoplane.analysis.aggregate` with the per-step means of :data:`_PLANE_EXTRAS`.

    The means are over runs, smoothed as the aggregate is; columns a history does not hold are
    left out, so the figures draw as they would without them.
    """
    agg = aggregate(source, split=split, smooth=smooth)
    wanted = _source_columns(source, [c for c in _PLANE_EXTRAS if f"{c}_mean" not in agg])
    if not wanted:
        return agg
    sel = _with_source_columns(measured(source, split, who=who), source, wanted)
    present = [c for c in wanted if recorded(sel, c)]
    if not present:
        return agg
    names = [f"{c}_mean" for c in present]
    means = sel.groupby(["layer", "step"], sort=False)[present].mean()
    agg = agg.join(means.set_axis(names, axis=1), on=["layer", "step"])
    if smooth > 1:
        by_layer = agg.groupby("layer", sort=False)[names]
        agg[names] = by_layer.transform(lambda s: moving_average(s, int(smooth)))
    return agg


def _plane_data(source: Any, split: str, smooth: int, layers: Sequence[str] | None, who: str):
    """(the :func:`_plane_table` rows of the picked layers, [(position, name)] of those layers)."""
    agg = _plane_table(source, split, smooth, who)
    picked = _pick_layers(agg, layers, who)
    return _picked_rows(agg, picked), picked


def _source_columns(source: Any, columns: Sequence[str]) -> list[str]:
    """Those of ``columns`` that ``source`` can hold: record fields, or a DataFrame's or table's."""
    table = isinstance(source, (pd.DataFrame, Mapping)) and not isinstance(source, History)
    return [c for c in columns if c in FIELDS or (table and c in source)]


def _with_source_columns(sel: pd.DataFrame, source: Any, columns: Sequence[str]) -> pd.DataFrame:
    """``sel`` with those of ``columns`` that a DataFrame or table source holds, by record key.

    :func:`~infoplane.analysis.measured` keeps the fields of :data:`infoplane.schema.FIELDS`;
    a DataFrame or table may carry more columns, read here from the source itself.
    """
    missing = [c for c in columns if c not in sel.columns]
    if not missing:
        return sel
    raw = pd.DataFrame({k: np.asarray(source[k]) for k in (*KEY, *missing)})
    raw = raw.astype(
        {"split": str, "layer": str, "run": "int64", "epoch": "int64", "step": "int64"}
    )
    for c in missing:
        raw[c] = pd.to_numeric(raw[c], errors="coerce").astype(float)
    return sel.merge(raw.drop_duplicates(list(KEY), keep="last"), on=list(KEY), how="left")


# ----------------------------------------------------------------------------- information plane
def _trajectory(ax: Any, rows: pd.DataFrame, pos: int, step_range: tuple[float, float]) -> Any:
    """One layer's trajectory: points shaded by step, a thin joining line, the last point big.

    Saturated points (``saturated``) are hollow, in their step's shade.
    """
    cmap, marker = _layer_style(pos)
    x, y = rows["i_xt_mean"].to_numpy(float), rows["i_ty_mean"].to_numpy(float)
    lo, span = step_range
    shade = cmap(_SHADE_LO + (_SHADE_HI - _SHADE_LO) * (rows["step"].to_numpy(float) - lo) / span)
    hollow = _flags(rows, "saturated")
    rep = cmap(_SHADE_REP)
    size = 16.0 if len(rows) <= 200 else 6.0
    ax.plot(x, y, "-", color=rep, linewidth=1.2, alpha=0.55, zorder=1)
    ax.scatter(
        x[~hollow],
        y[~hollow],
        c=shade[~hollow],
        s=size,
        marker=marker,
        edgecolors="none",
        zorder=2,
        rasterized=len(rows) > _RASTER_POINTS,
    )
    ax.scatter(
        x[-1:],
        y[-1:],
        color="none" if hollow[-1] else cmap(_SHADE_HI),
        s=90,
        marker=marker,
        edgecolors="black",
        linewidths=1.2,
        zorder=3,
    )
    _hollow(ax, x[hollow], y[hollow], shade[hollow], marker, size * 1.6)
    return rep


def _hollow(ax: Any, x: np.ndarray, y: np.ndarray, colour: Any, marker: str, size: float) -> None:
    """Saturated points: hollow markers edged in ``colour`` (one colour or one per point)."""
    if len(x):
        ax.scatter(
            x,
            y,
            s=size,
            marker=marker,
            facecolors="none",
            edgecolors=colour,
            linewidths=1.0,
            zorder=2.5,
            gid="saturated",
        )


def _fixed_line(ax: Any, x: Any, y: Any, saturated: np.ndarray, colour: Any) -> None:
    """The fixed-width control: a thin solid line with triangles, its saturated points hollow.

    Its steps without a value (before the split's reference step) are left out and the line
    joins the rest.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return
    x, y, hollow = x[keep], y[keep], saturated[keep]
    stride = max(1, x.size // _FIXED_MARKS)
    marks = ~hollow & (np.arange(x.size) % stride == 0)
    ax.plot(x, y, color=colour, markevery=marks.tolist(), gid="fixed", **_FIXED_LINE)
    _hollow(ax, x[hollow], y[hollow], colour, _FIXED_MARKER, 22.0)


def _floor_band(ax: Any, rows: pd.DataFrame, colour: Any) -> None:
    """The null floor in the plane: its mean dashed, a light band up to its 95% quantile.

    Each axis has its own floor (T's samples permuted against X; the labels permuted), so the
    band is the union over steps of the rectangles from the floor's mean to its 95% quantile.
    It never moves the axis limits (the trajectories set them) and is clipped to the axes.
    """
    from matplotlib.collections import PolyCollection
    from matplotlib.path import Path as MplPath

    mean = rows[["i_xt_null_mean", "i_ty_null_mean"]].to_numpy(float)
    ax.plot(mean[:, 0], mean[:, 1], color=colour, gid="null floor", **_FLOOR_LINE)
    tops = [f"{NULL_BAND_TOPS[c]}_mean" for c in NULL_QUANTITIES]
    if not all(t in rows for t in tops):
        return
    top = rows[tops].to_numpy(float)
    keep = np.isfinite(mean).all(axis=1) & np.isfinite(top).all(axis=1)
    if not keep.any():
        return
    (x0, y0), (x1, y1) = np.minimum(mean, top)[keep].T, np.maximum(mean, top)[keep].T
    # counter-clockwise rectangles, closed: under the non-zero rule their union fills once
    corners = np.stack([x0, y0, x1, y0, x1, y1, x0, y1, x0, y0], axis=1).reshape(-1, 2)
    codes = [MplPath.MOVETO, *[MplPath.LINETO] * 3, MplPath.CLOSEPOLY] * int(keep.sum())
    band = PolyCollection(
        [], facecolors=[colour], edgecolors="none", alpha=_BAND_ALPHA, zorder=0.6, gid="null band"
    )
    band.set_verts_and_codes([corners], [codes])
    ax.add_collection(band, autolim=False)


def _draw_layer(
    ax: Any, rows: pd.DataFrame, pos: int, step_range: tuple[float, float], controls: Sequence[str]
) -> Any:
    """One layer in a plane: the null floor, the fixed-width control and the trajectory."""
    colour = layer_colour(pos)
    if "null" in controls:
        _floor_band(ax, rows, colour)
    if "fixed" in controls:
        fixed = rows["i_xt_fixed_mean"], rows["i_ty_fixed_mean"]
        _fixed_line(ax, *fixed, _flags(rows, "saturated_fixed"), colour)
    return _trajectory(ax, rows, pos, step_range)


def _plane_limits(rows: pd.DataFrame, controls: Sequence[str], references: bool = True):
    """(x limits, y limits) of a plane over ``rows``: the estimate's and the fixed control's range.

    The null floor does not count; S(X) and S(Y), where ``references`` are drawn, count when
    they lie near (see :func:`_limits`).
    """
    limits = []
    for q, ref in (("i_xt", "h_x_mean"), ("i_ty", "h_y_mean")):
        values = [rows[f"{q}_mean"]]
        if "fixed" in controls:
            values.append(rows[f"{q}_fixed_mean"])
        limits.append(_limits(values, [_mean_of(rows, ref)] if references else []))
    return tuple(limits)


def _in_view(ax: Any, x: Any, y: Any) -> bool:
    """Whether any point (x, y) lies inside the limits of ``ax``."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return bool(((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)).any())


def _floor_hidden(ax: Any, rows: pd.DataFrame) -> bool:
    """Whether no point of the null floor (mean or 95% quantile) lies inside the plane's view."""
    pairs = [(f"{x}_mean", f"{y}_mean") for x, y in (NULL_QUANTITIES, NULL_Q95_QUANTITIES)]
    return not any(_in_view(ax, rows[x], rows[y]) for x, y in pairs if x in rows and y in rows)


def _draw_plane(
    ax: Any,
    agg: pd.DataFrame,
    picked: list[tuple[int, str]],
    controls: Sequence[str],
    upto: float | None = None,
) -> list:
    """Every picked layer up to step ``upto`` (all steps if None) on axes set by the whole
    trajectories, with S(X) and S(Y)."""
    for pos, name in picked:
        rows = _layer_rows(agg, name)
        if upto is not None:
            rows = rows[rows["step"].to_numpy() <= upto]
        if len(rows):
            _draw_layer(ax, rows, pos, _step_range(agg), controls)
    _set_limits(ax, *_plane_limits(agg, controls))
    h_y, h_x = _mean_of(agg, "h_y_mean"), _mean_of(agg, "h_x_mean")
    _reference_line(ax, h_y, f"S(Y) = {h_y:.2f}")
    _reference_line(ax, h_x, f"S(X) = {h_x:.2f}", vertical=True)
    ax.set_xlabel("I(X;T) [bits]")
    ax.set_ylabel("I(T;Y) [bits]")
    ax.grid(True, linewidth=0.4, alpha=0.5)


def _plane_legend(
    fig: Any,
    ax: Any,
    created: bool,
    agg: pd.DataFrame,
    picked: list[tuple[int, str]],
    controls: Sequence[str],
) -> None:
    """The plane's legend: layers, controls, saturated points; its title says over how many runs
    the curves are means. Call it after the limits are set (it says if the floor is off them)."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=layer_colour(p), marker=_layer_style(p)[1], markersize=7, lw=1.2)
        for p, _ in picked
    ]
    hidden = "null" in controls and _floor_hidden(ax, agg)
    extra_h, extra_l = _control_handles(agg, controls, hidden=hidden)
    labels = [name for _, name in picked] + extra_l
    _legend(fig, ax, created, handles + extra_h, labels, f"layer ({_runs_note(agg)})")


def _step_range(agg: pd.DataFrame) -> tuple[float, float]:
    lo, hi = float(agg["step"].min()), float(agg["step"].max())
    return lo, (hi - lo if hi > lo else 1.0)


def _step_colorbar(fig: Any, ax: Any, agg: pd.DataFrame) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    lo, span = _step_range(agg)
    mappable = ScalarMappable(norm=Normalize(lo, lo + span), cmap=_truncated_greys())
    cbar = fig.colorbar(mappable, ax=ax, location="bottom", shrink=0.6, aspect=40, pad=0.02)
    cbar.set_label("training step (points darken with the step; large marker = last)")
    cbar.ax.tick_params(labelsize="small")


def plot_information_plane(
    source: Any,
    *,
    split: str = "train",
    layers: Sequence[str] | None = None,
    smooth: int = 1,
    ax: Any = None,
    title: str | None = None,
    colorbar: bool = True,
    controls: Sequence[str] = ("null", "fixed"),
):
    """The information plane: I(X;T) (x) against I(T;Y) (y), one trajectory per layer.

    Runs are averaged per step (:func:`infoplane.analysis.aggregate`, optionally smoothed over
    ``smooth`` steps); the legend says over how many. Each layer's points are coloured by step
    in its own sequential colour map (:data:`LAYER_CMAPS`, darker = later), joined by a thin
    line; the final point is a larger marker with a black edge. ``controls`` recorded in the
    history are drawn in the layer's colour: the null floor's mean dashed with a light band up
    to its 95% quantile (where recorded), the fixed-width control as a thinner solid line with
    triangles, its steps without a value left out. The axis limits come from the estimate and
    the fixed-width control with a margin; the floor is clipped to them (the legend says when
    it lies wholly outside). S(Y) and S(X) (means over batches) are thin black dash-dot lines
    labelled at the axis edge, with an arrow where they lie outside the limits. Points whose
    Gram is saturated in any run (``saturated``, ``saturated_fixed``) are hollow. A grey colour
    bar reads the step.

    Returns:
        ``(fig, ax)``.
    """
    who = "plot_information_plane"
    agg, picked = _plane_data(source, split, smooth, layers, who)
    shown = _controls(agg, controls)
    fig, (ax_,), created = _axes(ax, 1, (7.5, 5.2), who)
    _draw_plane(ax_, agg, picked, shown)
    ax_.set_title(title if title is not None else f"Information plane ({split})")
    _plane_legend(fig, ax_, created, agg, picked, shown)
    if colorbar:
        _step_colorbar(fig, ax_, agg)
    return fig, ax_


def _truncated_greys():
    """The grey ramp of the step colour bar, over the same shade range as the layer points."""
    from matplotlib import colormaps
    from matplotlib.colors import LinearSegmentedColormap

    greys = colormaps["Greys"]
    return LinearSegmentedColormap.from_list(
        "step_greys", greys(np.linspace(_SHADE_LO, _SHADE_HI, 64))
    )


def plot_layer_planes(
    source: Any,
    *,
    split: str = "train",
    layers: Sequence[str] | None = None,
    smooth: int = 1,
    ncols: int = 4,
    controls: Sequence[str] = ("null", "fixed"),
    title: str | None = None,
):
    """Small multiples: one information-plane panel per layer, on shared axes.

    For many-layer networks (VGG-16 has 16 measured layers), where one plane overlaps. Each
    panel draws the layer's trajectory and its recorded ``controls`` as
    :func:`plot_information_plane` does; the shared limits come from every panel's estimate and
    fixed-width control.

    Returns:
        ``(fig, axes)`` with one Axes per layer (unused grid cells are hidden).
    """
    if isinstance(ncols, bool) or int(ncols) != ncols or ncols < 1:
        raise InvalidParameterError(f"plot_layer_planes: expected ncols >= 1, got {ncols!r}.")
    agg, picked = _plane_data(source, split, smooth, layers, "plot_layer_planes")
    shown = _controls(agg, controls)
    ncols = min(int(ncols), len(picked))
    nrows = math.ceil(len(picked) / ncols)
    fig, axes = _new_figure(
        (2.9 * ncols + 0.6, 2.5 * nrows + 0.8), ncols, nrows, sharex=True, sharey=True
    )
    for ax_, (pos, name) in zip(axes, picked, strict=False):
        _draw_layer(ax_, _layer_rows(agg, name), pos, _step_range(agg), shown)
        ax_.set_title(name, fontsize="small")
        ax_.grid(True, linewidth=0.4, alpha=0.5)
    for ax_ in axes[len(picked) :]:
        ax_.set_visible(False)
    _set_limits(axes[0], *_plane_limits(agg, shown, references=False))
    fig.supxlabel("I(X;T) [bits]")
    fig.supylabel("I(T;Y) [bits]")
    name = title if title is not None else f"Information plane per layer ({split})"
    fig.suptitle(f"{name}, {_runs_note(agg)}")
    hidden = "null" in shown and _floor_hidden(axes[0], agg)
    extra_h, extra_l = _control_handles(agg, shown, hidden=hidden)
    if extra_h:
        fig.legend(extra_h, extra_l, loc="outside right upper", fontsize="small", frameon=False)
    return fig, axes[: len(picked)]


# ----------------------------------------------------------------------------- curves
def _curves(
    ax: Any,
    agg: pd.DataFrame,
    picked: list[tuple[int, str]],
    quantity: str,
    *,
    bands: bool,
    controls: Sequence[str] = (),
) -> tuple[list, list[str]]:
    """One line per layer against the step, with its 95% CI band and the controls beside it.

    The null floor is its mean dashed with a light band up to its 95% quantile; the fixed-width
    control a thin solid line with triangles; saturated points hollow circles on their line.
    """
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for pos, name in picked:
        rows = _layer_rows(agg, name)
        steps = rows["step"].to_numpy(float)
        mean = rows[f"{quantity}_mean"].to_numpy(float)
        colour = layer_colour(pos)
        style = _LINESTYLES[(pos // len(LAYER_CMAPS)) % len(_LINESTYLES)]
        ax.plot(steps, mean, linestyle=style, color=colour, linewidth=1.4)
        half = rows[f"{quantity}_ci"].to_numpy(float)
        if bands and np.isfinite(half).any():
            ax.fill_between(steps, mean - half, mean + half, color=colour, alpha=0.2, linewidth=0)
        _hollow(
            ax, steps[_flags(rows, "saturated")], mean[_flags(rows, "saturated")], colour, "o", 18.0
        )
        if "null" in controls:
            _floor_curve(ax, rows, steps, CONTROL_STYLES["null"][1][quantity == "i_ty"], colour)
        if "fixed" in controls:
            column = CONTROL_STYLES["fixed"][1][quantity == "i_ty"]
            saturated = _flags(rows, "saturated_fixed")
            _fixed_line(ax, steps, rows[f"{column}_mean"], saturated, colour)
        handles.append(Line2D([], [], color=colour, linestyle=style, linewidth=1.6))
        labels.append(name)
    return handles, labels


def _floor_curve(ax: Any, rows: pd.DataFrame, steps: np.ndarray, column: str, colour: Any):
    """The null floor against the step: its mean dashed, a hatched band up to its 95% quantile."""
    mean = rows[f"{column}_mean"].to_numpy(float)
    ax.plot(steps, mean, color=colour, gid="null floor", **_FLOOR_LINE)
    top = f"{NULL_BAND_TOPS[column]}_mean"
    if top in rows and np.isfinite(rows[top].to_numpy(float)).any():
        ax.fill_between(
            steps,
            mean,
            rows[top].to_numpy(float),
            edgecolor=colour,
            zorder=0.6,
            gid="null band",
            **_HATCH,
        )


def _curve_limits(rows: pd.DataFrame, quantity: str, bands: bool, controls: Sequence[str]):
    """y limits of a curve panel over ``rows``: the estimate (with its band) and the fixed
    control, not the null floor; S(X) or S(Y) counts when near."""
    mean = rows[f"{quantity}_mean"].to_numpy(float)
    values = [mean]
    if bands:
        half = np.nan_to_num(rows[f"{quantity}_ci"].to_numpy(float), nan=0.0)
        values += [mean - half, mean + half]
    if "fixed" in controls:
        values.append(rows[f"{quantity}_fixed_mean"])
    ref = _mean_of(rows, "h_x_mean" if quantity == "i_xt" else "h_y_mean")
    return _limits(values, [ref])


def _curve_floor_hidden(axes: Sequence[Any], rows: pd.DataFrame) -> bool:
    """Whether no value of the null floor (mean or 95% quantile) lies inside either panel."""
    steps = rows["step"]
    for ax, column in zip(axes, NULL_QUANTITIES, strict=True):
        for name in (f"{column}_mean", f"{NULL_BAND_TOPS[column]}_mean"):
            if name in rows and _in_view(ax, steps, rows[name]):
                return False
    return True


def _band_note(agg: pd.DataFrame) -> tuple[bool, str]:
    """(draw bands?, title note): 95% CI over runs, or over probe mini-batches for one run."""
    n_runs = int(agg["n_runs"].max()) if len(agg) else 0
    if n_runs > 1:
        return True, f", mean and 95% CI over {n_runs} runs"
    if recorded(agg, "i_xt_ci"):
        return True, ", one run, 95% CI from the probe standard error"
    return False, ""


def plot_mi_curves(
    source: Any,
    *,
    split: str = "train",
    layers: Sequence[str] | None = None,
    smooth: int = 1,
    ax: Any = None,
    title: str | None = None,
    controls: Sequence[str] = ("null", "fixed"),
):
    """I(X;T) and I(T;Y) against the training step, one line per layer (two panels).

    Lines are the run means (optionally smoothed over ``smooth`` steps), each with a band of its
    95% confidence interval over runs (t-based; for one run with probe standard errors, 1.96
    SE; none otherwise). The recorded ``controls`` are drawn in the layer's colour: the null
    floor's mean dashed with a light band up to its 95% quantile, the fixed-width control as a
    thinner solid line with triangles. The y limits come from the estimate and the fixed-width
    control; the floor is clipped to them. S(X) and S(Y) are thin black dash-dot lines labelled
    at the axis edge. Saturated points are hollow.

    Args:
        ax: a pair of Axes to draw into, or None for a new figure.

    Returns:
        ``(fig, axes)`` with the I(X;T) and I(T;Y) axes.
    """
    agg, picked = _plane_data(source, split, smooth, layers, "plot_mi_curves")
    shown = _controls(agg, controls)
    fig, axes, created = _axes(ax, 2, (11.0, 4.2), "plot_mi_curves")
    bands, note = _band_note(agg)
    handles, labels = [], []
    for ax_, q, name, ref, ref_name in (
        (axes[0], "i_xt", "I(X;T)", "h_x_mean", "S(X)"),
        (axes[1], "i_ty", "I(T;Y)", "h_y_mean", "S(Y)"),
    ):
        handles, labels = _curves(ax_, agg, picked, q, bands=bands, controls=shown)
        _set_limits(ax_, None, _curve_limits(agg, q, bands, shown))
        value = _mean_of(agg, ref)
        _reference_line(ax_, value, f"{ref_name} = {value:.2f}")
        ax_.set_xlabel("training step")
        ax_.set_ylabel(f"{name} [bits]")
        ax_.set_title(name)
        ax_.grid(True, linewidth=0.4, alpha=0.5)
    fig.suptitle((title if title is not None else f"Mutual information ({split})") + note)
    hidden = "null" in shown and _curve_floor_hidden(axes, agg)
    extra_h, extra_l = _control_handles(agg, shown, hidden=hidden, hatched=True)
    _legend(fig, axes[-1], created, handles + extra_h, labels + extra_l)
    return fig, axes


def plot_sigma(
    source: Any,
    *,
    split: str = "train",
    layers: Sequence[str] | None = None,
    ax: Any = None,
    title: str | None = None,
):
    """The kernel width sigma of each layer against the training step (log scale).

    With several runs each line carries its 95% confidence band over runs.

    Returns:
        ``(fig, ax)``.
    """
    agg = aggregate(source, split=split)
    picked = _pick_layers(agg, layers, "plot_sigma")
    fig, (ax_,), created = _axes(ax, 1, (7.5, 4.2), "plot_sigma")
    bands = bool(len(agg) and agg["n_runs"].max() > 1)
    handles, labels = _curves(ax_, agg, picked, "sigma", bands=bands)
    positive = agg["sigma_mean"].to_numpy(float)
    positive = positive[np.isfinite(positive)]
    if positive.size and (positive > 0).all():
        ax_.set_yscale("log")
    ax_.set_xlabel("training step")
    ax_.set_ylabel("kernel width σ")
    ax_.set_title(title if title is not None else f"Kernel width per layer ({split})")
    ax_.grid(True, which="both", linewidth=0.4, alpha=0.4)
    _legend(fig, ax_, created, handles, labels)
    return fig, ax_


def plot_metrics(
    metrics: Any,
    *,
    ax: Any = None,
    title: str | None = None,
):
    """Loss and accuracy against the epoch, for the train and test splits (two panels).

    ``metrics`` is a metrics table, DataFrame or the path of metrics.csv or a run directory.
    Runs are averaged per epoch, with a 95% confidence band over runs when there are several.

    Args:
        ax: a pair of Axes to draw into, or None for a new figure.

    Returns:
        ``(fig, axes)`` with the loss and accuracy axes.
    """
    from matplotlib.lines import Line2D

    frame = metrics_frame(metrics, who="plot_metrics")
    if frame is None:
        raise InvalidInputError("plot_metrics: expected training metrics, got none.")
    fig, axes, created = _axes(ax, 2, (11.0, 4.0), "plot_metrics")
    handles, labels = [], []
    for i, split in enumerate(splits(frame)):
        colour = _SPLIT_COLOURS.get(split, f"C{i + 2}")
        style = {"train": "-", "test": "--"}.get(split, ":")
        marker = "o" if split == "train" else "s"
        summary = run_summary(frame[frame["split"] == split], ["epoch"], ["loss", "accuracy"])
        epochs = summary.index.to_numpy()
        for ax_, column in zip(axes, ("loss", "accuracy"), strict=True):
            mean, half = summary[f"{column}_mean"], summary[f"{column}_ci"]
            keep = np.isfinite(mean.to_numpy(float))
            if not keep.any():
                continue
            ax_.plot(
                epochs[keep], mean[keep], linestyle=style, marker=marker, markersize=4, color=colour
            )
            if np.isfinite(half.to_numpy(float)).any():
                ax_.fill_between(epochs, mean - half, mean + half, color=colour, alpha=0.2, lw=0)
        handles.append(Line2D([], [], color=colour, linestyle=style, marker=marker))
        labels.append(split)
    for ax_, name in zip(axes, ("Loss", "Accuracy"), strict=True):
        ax_.set_xlabel("epoch")
        ax_.set_ylabel(name.lower())
        ax_.set_title(name)
        ax_.grid(True, linewidth=0.4, alpha=0.5)
        ax_.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title if title is not None else "Training metrics")
    _legend(fig, axes[-1], created, handles, labels)
    return fig, axes


# ----------------------------------------------------------------------------- files
def save_figure(
    fig: Any,
    path_without_suffix: str | os.PathLike[str],
    formats: Sequence[str] = ("png", "svg"),
    *,
    dpi: int = 150,
) -> list[Path]:
    """Save ``fig`` as ``<path>.<format>`` for each format, atomically (temporary file + rename).

    PNG files are written at ``dpi`` (150 by default). Returns the written paths.
    """
    if isinstance(formats, str):
        formats = (formats,)
    if not formats:
        raise InvalidParameterError("save_figure: expected at least one format, got none.")
    supported = fig.canvas.get_supported_filetypes()
    bad = [f for f in formats if str(f).lower().lstrip(".") not in supported]
    if bad:
        raise InvalidParameterError(
            f"save_figure: expected formats from {sorted(supported)}, got {bad}."
        )
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        fmt = str(fmt).lower().lstrip(".")
        target = base.with_name(f"{base.name}.{fmt}")
        with atomic_open(target, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=dpi)
        written.append(target)
    return written


# ----------------------------------------------------------------------------- animation
def _frame_steps(agg: pd.DataFrame, max_frames: int) -> np.ndarray:
    """The steps shown as frames: every measured step, thinned evenly to at most ``max_frames``."""
    steps = np.unique(agg["step"].to_numpy())
    if steps.size <= max_frames:
        return steps
    pick = np.unique(np.round(np.linspace(0, steps.size - 1, max_frames)).astype(int))
    return steps[pick]


def _writer(path: Path, fps: int, who: str) -> Any:
    from matplotlib import animation

    suffix = path.suffix.lower()
    if suffix == ".gif":
        return animation.PillowWriter(fps=fps)
    if suffix == ".mp4":
        if shutil.which("ffmpeg") is None:
            raise InvalidParameterError(
                f"{who}: expected ffmpeg on PATH for {path.name}, got none. Install ffmpeg or "
                "write a .gif."
            )
        return animation.FFMpegWriter(fps=fps)
    raise InvalidParameterError(
        f"{who}: expected a path ending in .gif or .mp4, got {path.name!r}."
    )


def animate_information_plane(
    source: Any,
    path: str | os.PathLike[str],
    *,
    split: str = "train",
    fps: int = 10,
    layers: Sequence[str] | None = None,
    smooth: int = 1,
    max_frames: int = 300,
    dpi: int = 100,
) -> Path:
    """Write an animation of the information plane: one frame per measured step.

    Frame k is :func:`plot_animation_frame` at the k-th step: every layer's run-averaged
    trajectory up to that step with its null floor, fixed-width control and saturated points
    drawn as in :func:`plot_information_plane`, S(X) and S(Y), and a title that says the step
    and over how many runs the curves are means. The axes hold the whole trajectories from the
    first frame. Long histories are thinned evenly to ``max_frames`` frames. The format follows
    the suffix of ``path``: ``.gif`` (matplotlib's Pillow writer) or ``.mp4`` (needs ffmpeg).
    The file is written to a temporary name and renamed.

    Returns:
        ``path``.
    """
    from matplotlib.animation import FuncAnimation
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    who = "animate_information_plane"
    path = Path(path)
    for value, what in ((fps, "fps"), (max_frames, "max_frames")):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise InvalidParameterError(f"{who}: expected {what} an integer >= 1, got {value!r}.")
    writer = _writer(path, int(fps), who)
    agg, picked = _plane_data(source, split, smooth, layers, who)
    frames = _frame_steps(agg, int(max_frames))
    fig, (ax,) = _new_figure((9.5, 5.2))
    FigureCanvasAgg(fig)
    draw = _frame_drawer(ax, agg, picked, split)
    draw(frames[0])
    _plane_legend(fig, ax, True, agg, picked, _controls(agg, CONTROL_STYLES))
    anim = FuncAnimation(fig, draw, frames=frames, blit=False, repeat=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        partial = Path(tmp) / path.name
        anim.save(partial, writer=writer, dpi=dpi)
        os.replace(partial, path)
    return path


def plot_animation_frame(
    source: Any,
    step: float,
    *,
    split: str = "train",
    layers: Sequence[str] | None = None,
    smooth: int = 1,
    ax: Any = None,
):
    """One frame of :func:`animate_information_plane`: the information plane up to ``step``.

    Every layer's run-averaged trajectory up to ``step``, its recorded controls and saturated
    points as in :func:`plot_information_plane`, S(X) and S(Y), on axes set by the whole
    trajectories; the title says the step and 'mean over R runs' (or '1 run').

    Returns:
        ``(fig, ax)``.
    """
    who = "plot_animation_frame"
    agg, picked = _plane_data(source, split, smooth, layers, who)
    fig, (ax_,), created = _axes(ax, 1, (9.5, 5.2), who)
    _frame_drawer(ax_, agg, picked, split)(step)
    _plane_legend(fig, ax_, created, agg, picked, _controls(agg, CONTROL_STYLES))
    return fig, ax_


def _frame_drawer(ax: Any, agg: pd.DataFrame, picked: list[tuple[int, str]], split: str):
    """The per-frame function of the animation: the plane up to ``step`` (the legend is the
    caller's: it stays from frame to frame)."""
    shown = _controls(agg, CONTROL_STYLES)
    runs = _runs_note(agg)

    def draw(step: float) -> list:
        ax.clear()
        _draw_plane(ax, agg, picked, shown, upto=step)
        ax.set_title(f"Information plane ({split}), step {int(step)}, {runs}")
        return []

    return draw


__all__ = [
    "CONTROL_STYLES",
    "LAYER_CMAPS",
    "NULL_BAND_TOPS",
    "animate_information_plane",
    "layer_colour",
    "plot_animation_frame",
    "plot_information_plane",
    "plot_layer_planes",
    "plot_metrics",
    "plot_mi_curves",
    "plot_sigma",
    "save_figure",
]
