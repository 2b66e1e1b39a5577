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
are drawn beside the estimate in the layer's colour: the null floor dashed, the fixed-width
control dotted; curves against the step carry the 95% confidence band over runs. This module is
imported on demand only (``infoplane`` itself never imports matplotlib).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from infoplane.analysis.tables import (
    aggregate,
    layer_order,
    metrics_frame,
    recorded,
    run_summary,
    splits,
)
from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.io import atomic_open

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
    "fixed": ("fixed widths", ("i_xt_fixed", "i_ty_fixed"), ":"),
}


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


def _controls(agg: pd.DataFrame, controls: Sequence[str]) -> list[str]:
    """The requested controls whose columns hold values (absent or off controls are skipped)."""
    unknown = [c for c in controls if c not in CONTROL_STYLES]
    if unknown:
        raise InvalidParameterError(
            f"plot: expected controls from {sorted(CONTROL_STYLES)}, got {unknown}."
        )
    return [c for c in controls if all(recorded(agg, f"{s}_mean") for s in CONTROL_STYLES[c][1])]


def _legend(fig: Any, ax: Any, created: bool, handles: list, labels: list[str]) -> None:
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
            title="layer",
            title_fontsize="small",
        )
    else:
        ax.legend(handles, labels, loc="best", fontsize="small", title="layer")


def _control_handles(controls: Sequence[str]) -> tuple[list, list[str]]:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.3", linestyle=CONTROL_STYLES[c][2]) for c in controls]
    return handles, [CONTROL_STYLES[c][0] for c in controls]


def _reference_line(ax: Any, value: float, text: str, *, vertical: bool = False) -> None:
    """A dashed grey reference line with a small label on it (not in the legend)."""
    if not np.isfinite(value):
        return
    label = {"fontsize": "small", "color": "0.35", "textcoords": "offset points"}
    if vertical:
        ax.axvline(value, color="0.45", linestyle=":", linewidth=1.0, zorder=0)
        ax.annotate(
            text,
            xy=(value, 0.02),
            xycoords=("data", "axes fraction"),
            xytext=(-3, 0),
            rotation=90,
            ha="right",
            va="bottom",
            **label,
        )
        return
    ax.axhline(value, color="0.45", linestyle="--", linewidth=1.0, zorder=0)
    lo, hi = ax.get_ylim()
    if value > hi - 0.08 * (hi - lo):  # leave room for the label above the line
        ax.set_ylim(lo, value + 0.08 * (hi - lo))
    ax.annotate(
        text,
        xy=(0.01, value),
        xycoords=("axes fraction", "data"),
        xytext=(0, 3),
        ha="left",
        va="bottom",
        **label,
    )


def _mean_of(agg: pd.DataFrame, column: str) -> float:
    if column not in agg:
        return float("nan")
    v = agg[column].to_numpy(float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


# ----------------------------------------------------------------------------- information plane
def _trajectory(ax: Any, rows: pd.DataFrame, pos: int, step_range: tuple[float, float]) -> Any:
    """One layer's trajectory: points shaded by step, a thin joining line, the last point big."""
    cmap, marker = _layer_style(pos)
    x, y = rows["i_xt_mean"].to_numpy(float), rows["i_ty_mean"].to_numpy(float)
    lo, span = step_range
    shade = _SHADE_LO + (_SHADE_HI - _SHADE_LO) * (rows["step"].to_numpy(float) - lo) / span
    rep = cmap(_SHADE_REP)
    size = 16.0 if len(rows) <= 200 else 6.0
    ax.plot(x, y, "-", color=rep, linewidth=0.8, alpha=0.55, zorder=1)
    ax.scatter(
        x,
        y,
        c=cmap(shade),
        s=size,
        marker=marker,
        edgecolors="none",
        zorder=2,
        rasterized=len(rows) > _RASTER_POINTS,
    )
    ax.scatter(
        x[-1:],
        y[-1:],
        color=cmap(_SHADE_HI),
        s=90,
        marker=marker,
        edgecolors="black",
        linewidths=1.2,
        zorder=3,
    )
    return rep


def _control_trajectories(ax: Any, rows: pd.DataFrame, colour: Any, controls: Sequence[str]):
    for control in controls:
        _, (xs, ys), style = CONTROL_STYLES[control]
        ax.plot(
            rows[f"{xs}_mean"],
            rows[f"{ys}_mean"],
            linestyle=style,
            color=colour,
            linewidth=1.0,
            alpha=0.8,
            zorder=1,
        )


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
    ``smooth`` steps). Each layer's points are coloured by step in its own sequential colour map
    (:data:`LAYER_CMAPS`, darker = later), joined by a thin line; the final point is a larger
    marker with a black edge. ``controls`` recorded in the history are drawn in the layer's
    colour without markers: the null floor dashed, the fixed-width control dotted. A dashed line
    marks S(Y) and a dotted one S(X) (the mean over batches) when recorded; a grey colour bar
    reads the step.

    Returns:
        ``(fig, ax)``.
    """
    from matplotlib.lines import Line2D

    agg = aggregate(source, split=split, smooth=smooth)
    picked = _pick_layers(agg, layers, "plot_information_plane")
    shown = _controls(agg, controls)
    fig, (ax_,), created = _axes(ax, 1, (7.5, 5.2), "plot_information_plane")
    handles, labels = [], []
    for pos, name in picked:
        rows = _layer_rows(agg, name)
        rep = _trajectory(ax_, rows, pos, _step_range(agg))
        _control_trajectories(ax_, rows, rep, shown)
        marker = _layer_style(pos)[1]
        handles.append(Line2D([], [], color=rep, marker=marker, markersize=7, linewidth=1.2))
        labels.append(name)
    extra_h, extra_l = _control_handles(shown)
    h_y, h_x = _mean_of(agg, "h_y_mean"), _mean_of(agg, "h_x_mean")
    _reference_line(ax_, h_y, f"S(Y) = {h_y:.2f}")
    _reference_line(ax_, h_x, f"S(X) = {h_x:.2f}", vertical=True)
    ax_.set_xlabel("I(X;T) [bits]")
    ax_.set_ylabel("I(T;Y) [bits]")
    ax_.set_title(title if title is not None else f"Information plane ({split})")
    ax_.grid(True, linewidth=0.4, alpha=0.5)
    _legend(fig, ax_, created, handles + extra_h, labels + extra_l)
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
    panel draws the layer's trajectory as :func:`plot_information_plane` does, with the recorded
    ``controls`` beside it (null floor dashed, fixed-width control dotted).

    Returns:
        ``(fig, axes)`` with one Axes per layer (unused grid cells are hidden).
    """
    if isinstance(ncols, bool) or int(ncols) != ncols or ncols < 1:
        raise InvalidParameterError(f"plot_layer_planes: expected ncols >= 1, got {ncols!r}.")
    agg = aggregate(source, split=split, smooth=smooth)
    picked = _pick_layers(agg, layers, "plot_layer_planes")
    shown = _controls(agg, controls)
    ncols = min(int(ncols), len(picked))
    nrows = math.ceil(len(picked) / ncols)
    fig, axes = _new_figure(
        (2.9 * ncols + 0.6, 2.5 * nrows + 0.8), ncols, nrows, sharex=True, sharey=True
    )
    for ax_, (pos, name) in zip(axes, picked, strict=False):
        rows = _layer_rows(agg, name)
        rep = _trajectory(ax_, rows, pos, _step_range(agg))
        _control_trajectories(ax_, rows, rep, shown)
        ax_.set_title(name, fontsize="small")
        ax_.grid(True, linewidth=0.4, alpha=0.5)
    for ax_ in axes[len(picked) :]:
        ax_.set_visible(False)
    fig.supxlabel("I(X;T) [bits]")
    fig.supylabel("I(T;Y) [bits]")
    fig.suptitle(title if title is not None else f"Information plane per layer ({split})")
    if shown:
        axes[0].legend(*_control_handles(shown), loc="best", fontsize="small", frameon=False)
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
    """One line per layer against the step, with its 95% CI band and the controls beside it."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for pos, name in picked:
        rows = _layer_rows(agg, name)
        steps = rows["step"].to_numpy()
        mean = rows[f"{quantity}_mean"].to_numpy(float)
        colour = layer_colour(pos)
        style = _LINESTYLES[(pos // len(LAYER_CMAPS)) % len(_LINESTYLES)]
        ax.plot(steps, mean, linestyle=style, color=colour, linewidth=1.4)
        half = rows[f"{quantity}_ci"].to_numpy(float)
        if bands and np.isfinite(half).any():
            ax.fill_between(steps, mean - half, mean + half, color=colour, alpha=0.2, linewidth=0)
        for control in controls:
            column = CONTROL_STYLES[control][1][quantity == "i_ty"]
            ax.plot(
                steps,
                rows[f"{column}_mean"],
                linestyle=CONTROL_STYLES[control][2],
                color=colour,
                linewidth=1.0,
                alpha=0.8,
            )
        handles.append(Line2D([], [], color=colour, linestyle=style, linewidth=1.6))
        labels.append(name)
    return handles, labels


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
    floor dashed, the fixed-width control dotted. S(X) and S(Y) are marked when recorded.

    Args:
        ax: a pair of Axes to draw into, or None for a new figure.

    Returns:
        ``(fig, axes)`` with the I(X;T) and I(T;Y) axes.
    """
    agg = aggregate(source, split=split, smooth=smooth)
    picked = _pick_layers(agg, layers, "plot_mi_curves")
    shown = _controls(agg, controls)
    fig, axes, created = _axes(ax, 2, (11.0, 4.2), "plot_mi_curves")
    bands, note = _band_note(agg)
    handles, labels = [], []
    for ax_, q, name, ref, ref_name in (
        (axes[0], "i_xt", "I(X;T)", "h_x_mean", "S(X)"),
        (axes[1], "i_ty", "I(T;Y)", "h_y_mean", "S(Y)"),
    ):
        handles, labels = _curves(ax_, agg, picked, q, bands=bands, controls=shown)
        value = _mean_of(agg, ref)
        _reference_line(ax_, value, f"{ref_name} = {value:.2f}")
        ax_.set_xlabel("training step")
        ax_.set_ylabel(f"{name} [bits]")
        ax_.set_title(name)
        ax_.grid(True, linewidth=0.4, alpha=0.5)
    fig.suptitle((title if title is not None else f"Mutual information ({split})") + note)
    extra_h, extra_l = _control_handles(shown)
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

    Frame k shows every layer's run-averaged trajectory up to the k-th step (colours as in
    :func:`plot_information_plane`) with the current point enlarged; the axes hold the whole
    trajectory from the first frame. Long histories are thinned evenly to ``max_frames``
    frames. The format follows the suffix of ``path``: ``.gif`` (matplotlib's Pillow writer)
    or ``.mp4`` (needs ffmpeg). The file is written to a temporary name and renamed.

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
    agg = aggregate(source, split=split, smooth=smooth)
    picked = _pick_layers(agg, layers, who)
    frames = _frame_steps(agg, int(max_frames))
    fig, (ax,) = _new_figure((7.5, 5.2))
    FigureCanvasAgg(fig)
    draw = _frame_drawer(ax, agg, picked, split)
    anim = FuncAnimation(fig, draw, frames=frames, blit=False, repeat=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        partial = Path(tmp) / path.name
        anim.save(partial, writer=writer, dpi=dpi)
        os.replace(partial, path)
    return path


def _frame_drawer(ax: Any, agg: pd.DataFrame, picked: list[tuple[int, str]], split: str):
    """The per-frame function of the animation: trajectories up to ``step``."""
    from matplotlib.lines import Line2D

    x_all, y_all = agg["i_xt_mean"].to_numpy(float), agg["i_ty_mean"].to_numpy(float)
    pad_x, pad_y = 0.05 * np.ptp(x_all) + 1e-3, 0.05 * np.ptp(y_all) + 1e-3
    limits = (
        (x_all.min() - pad_x, x_all.max() + pad_x),
        (y_all.min() - pad_y, y_all.max() + pad_y),
    )
    handles = [
        Line2D([], [], color=layer_colour(pos), marker=_layer_style(pos)[1], linewidth=1.2)
        for pos, _ in picked
    ]

    def draw(step: int) -> list:
        ax.clear()
        for pos, name in picked:
            rows = _layer_rows(agg, name)
            rows = rows[rows["step"].to_numpy() <= step]
            if len(rows):
                _trajectory(ax, rows, pos, _step_range(agg))
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
        ax.set_xlabel("I(X;T) [bits]")
        ax.set_ylabel("I(T;Y) [bits]")
        ax.set_title(f"Information plane ({split}), step {int(step)}")
        ax.grid(True, linewidth=0.4, alpha=0.5)
        ax.legend(handles, [n for _, n in picked], loc="lower right", fontsize="small")
        return []

    return draw


__all__ = [
    "CONTROL_STYLES",
    "LAYER_CMAPS",
    "animate_information_plane",
    "layer_colour",
    "plot_information_plane",
    "plot_layer_planes",
    "plot_metrics",
    "plot_mi_curves",
    "plot_sigma",
    "save_figure",
]
