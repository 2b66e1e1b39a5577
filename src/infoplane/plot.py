"""Figures of an information-plane history and of training metrics (matplotlib).

Every ``plot_*`` function takes a table (``dict[str, numpy.ndarray]``, see
:mod:`infoplane.analysis`), draws into ``ax`` when given (a pair of Axes for the two-panel
figures) or into a new :class:`matplotlib.figure.Figure` otherwise, and returns ``(fig, ax)`` or
``(fig, axes)``. New figures are built without pyplot, so no global figure state is touched and
nothing leaks; the backend is never changed. :func:`save_figure` writes files atomically.

The information plane follows Wickstrøm et al. (arXiv:1909.11396): x = I(X;T), y = I(T;Y) in bits,
one trajectory per layer, each in its own sequential colour map whose intensity grows with the
training step, the final point marked, runs averaged. This module is imported on demand only
(``infoplane`` itself never imports matplotlib).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from infoplane.analysis import aggregate, layer_order
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


def _new_figure(figsize: tuple[float, float], ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


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


def _pick_layers(agg: Mapping[str, np.ndarray], layers: Sequence[str] | None, who: str):
    """[(position in forward order, name)] of the requested layers (all by default)."""
    order = layer_order(agg) if agg["layer"].size else []
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


def _reference_line(ax: Any, value: float, text: str, *, vertical: bool = False) -> None:
    """A dashed grey reference line with a small label on it (not in the legend)."""
    if not np.isfinite(value):
        return
    if vertical:
        ax.axvline(value, color="0.45", linestyle=":", linewidth=1.0, zorder=0)
        ax.annotate(
            text,
            xy=(value, 0.02),
            xycoords=("data", "axes fraction"),
            xytext=(-3, 0),
            textcoords="offset points",
            rotation=90,
            ha="right",
            va="bottom",
            fontsize="small",
            color="0.35",
        )
    else:
        ax.axhline(value, color="0.45", linestyle="--", linewidth=1.0, zorder=0)
        lo, hi = ax.get_ylim()
        if value > hi - 0.08 * (hi - lo):  # leave room for the label above the line
            ax.set_ylim(lo, value + 0.08 * (hi - lo))
        ax.annotate(
            text,
            xy=(0.01, value),
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize="small",
            color="0.35",
        )


def _mean_of(agg: Mapping[str, np.ndarray], column: str) -> float:
    v = np.asarray(agg.get(column, np.array([])), dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


# ----------------------------------------------------------------------------- information plane
def plot_information_plane(
    table: Mapping[str, np.ndarray],
    *,
    split: str = "train",
    layers: Sequence[str] | None = None,
    smooth: int = 1,
    ax: Any = None,
    title: str | None = None,
    colorbar: bool = True,
):
    """The information plane: I(X;T) (x) against I(T;Y) (y), one trajectory per layer.

    Runs are averaged per step (:func:`infoplane.analysis.aggregate`, optionally smoothed over
    ``smooth`` steps). Each layer's points are coloured by step in its own sequential colour map
    (:data:`LAYER_CMAPS`, darker = later), joined by a thin line; the final point is a larger marker
    with a black edge. The legend shows the layer names. A dashed line marks S(Y) and a dotted one
    S(X) (the mean over batches) when recorded; a grey colour bar reads the step.

    Returns:
        ``(fig, ax)``.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    agg = aggregate(table, split=split, smooth=smooth)
    picked = _pick_layers(agg, layers, "plot_information_plane")
    fig, (ax_,), created = _axes(ax, 1, (7.5, 5.2), "plot_information_plane")
    step_lo, step_hi = float(agg["step"].min()), float(agg["step"].max())
    span = step_hi - step_lo if step_hi > step_lo else 1.0
    handles, labels = [], []
    for pos, name in picked:
        rows = np.flatnonzero(agg["layer"] == name)
        x, y = agg["i_xt_mean"][rows], agg["i_ty_mean"][rows]
        shade = _SHADE_LO + (_SHADE_HI - _SHADE_LO) * (agg["step"][rows] - step_lo) / span
        cmap, marker = _layer_style(pos)
        rep = cmap(_SHADE_REP)
        raster = rows.size > _RASTER_POINTS
        size = 16.0 if rows.size <= 200 else 6.0
        ax_.plot(x, y, "-", color=rep, linewidth=0.8, alpha=0.55, zorder=1)
        ax_.scatter(
            x,
            y,
            c=cmap(shade),
            s=size,
            marker=marker,
            edgecolors="none",
            zorder=2,
            rasterized=raster,
        )
        ax_.scatter(
            x[-1:],
            y[-1:],
            color=cmap(_SHADE_HI),
            s=90,
            marker=marker,
            edgecolors="black",
            linewidths=1.2,
            zorder=3,
        )
        handles.append(
            Line2D([], [], color=rep, marker=marker, markersize=7, linewidth=1.2, linestyle="-")
        )
        labels.append(name)
    _reference_line(ax_, _mean_of(agg, "h_y_mean"), f"S(Y) = {_mean_of(agg, 'h_y_mean'):.2f}")
    _reference_line(
        ax_, _mean_of(agg, "h_x_mean"), f"S(X) = {_mean_of(agg, 'h_x_mean'):.2f}", vertical=True
    )
    ax_.set_xlabel("I(X;T) [bits]")
    ax_.set_ylabel("I(T;Y) [bits]")
    ax_.set_title(title if title is not None else f"Information plane ({split})")
    ax_.grid(True, linewidth=0.4, alpha=0.5)
    _legend(fig, ax_, created, handles, labels)
    if colorbar:
        mappable = ScalarMappable(
            norm=Normalize(step_lo, step_hi),
            cmap=_truncated_greys(),
        )
        cbar = fig.colorbar(mappable, ax=ax_, location="bottom", shrink=0.6, aspect=40, pad=0.02)
        cbar.set_label("training step (points darken with the step; large marker = last)")
        cbar.ax.tick_params(labelsize="small")
    return fig, ax_


def _truncated_greys():
    """The grey ramp of the step colour bar, over the same shade range as the layer points."""
    from matplotlib import colormaps
    from matplotlib.colors import LinearSegmentedColormap

    greys = colormaps["Greys"]
    return LinearSegmentedColormap.from_list(
        "step_greys", greys(np.linspace(_SHADE_LO, _SHADE_HI, 64))
    )


# ----------------------------------------------------------------------------- curves
def _curves(
    ax: Any,
    agg: Mapping[str, np.ndarray],
    picked: list[tuple[int, str]],
    quantity: str,
    *,
    bands: bool,
) -> tuple[list, list[str]]:
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for pos, name in picked:
        rows = np.flatnonzero(agg["layer"] == name)
        steps = agg["step"][rows]
        mean = agg[f"{quantity}_mean"][rows]
        colour = layer_colour(pos)
        style = _LINESTYLES[(pos // len(LAYER_CMAPS)) % len(_LINESTYLES)]
        ax.plot(steps, mean, linestyle=style, color=colour, linewidth=1.4)
        if bands and rows.size:
            std = np.nan_to_num(agg[f"{quantity}_std"][rows])
            ax.fill_between(steps, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)
        handles.append(Line2D([], [], color=colour, linestyle=style, linewidth=1.6))
        labels.append(name)
    return handles, labels


def plot_mi_curves(
    table: Mapping[str, np.ndarray],
    *,
    split: str = "train",
    layers: Sequence[str] | None = None,
    smooth: int = 1,
    ax: Any = None,
    title: str | None = None,
):
    """I(X;T) and I(T;Y) against the training step, one line per layer (two panels).

    Lines are the run means (optionally smoothed over ``smooth`` steps); with several runs a band
    of ± one run-to-run std surrounds each line. S(X) and S(Y) are marked when recorded.

    Args:
        ax: a pair of Axes to draw into, or None for a new figure.

    Returns:
        ``(fig, axes)`` with the I(X;T) and I(T;Y) axes.
    """
    agg = aggregate(table, split=split, smooth=smooth)
    picked = _pick_layers(agg, layers, "plot_mi_curves")
    fig, axes, created = _axes(ax, 2, (11.0, 4.2), "plot_mi_curves")
    bands = bool(agg["n_runs"].size and agg["n_runs"].max() > 1)
    handles, labels = [], []
    for ax_, q, name, ref, ref_name in (
        (axes[0], "i_xt", "I(X;T)", "h_x_mean", "S(X)"),
        (axes[1], "i_ty", "I(T;Y)", "h_y_mean", "S(Y)"),
    ):
        handles, labels = _curves(ax_, agg, picked, q, bands=bands)
        value = _mean_of(agg, ref)
        _reference_line(ax_, value, f"{ref_name} = {value:.2f}")
        ax_.set_xlabel("training step")
        ax_.set_ylabel(f"{name} [bits]")
        ax_.set_title(name)
        ax_.grid(True, linewidth=0.4, alpha=0.5)
    n_runs = int(agg["n_runs"].max()) if agg["n_runs"].size else 0
    note = f", mean ± std over {n_runs} runs" if bands else ""
    fig.suptitle((title if title is not None else f"Mutual information ({split})") + note)
    _legend(fig, axes[-1], created, handles, labels)
    return fig, axes


def plot_sigma(
    table: Mapping[str, np.ndarray],
    *,
    split: str = "train",
    layers: Sequence[str] | None = None,
    ax: Any = None,
    title: str | None = None,
):
    """The kernel width sigma of each layer against the training step (log scale).

    Returns:
        ``(fig, ax)``.
    """
    agg = aggregate(table, split=split)
    picked = _pick_layers(agg, layers, "plot_sigma")
    fig, (ax_,), created = _axes(ax, 1, (7.5, 4.2), "plot_sigma")
    bands = bool(agg["n_runs"].size and agg["n_runs"].max() > 1)
    handles, labels = _curves(ax_, agg, picked, "sigma", bands=bands)
    positive = agg["sigma_mean"][np.isfinite(agg["sigma_mean"])]
    if positive.size and (positive > 0).all():
        ax_.set_yscale("log")
    ax_.set_xlabel("training step")
    ax_.set_ylabel("kernel width σ")
    ax_.set_title(title if title is not None else f"Kernel width per layer ({split})")
    ax_.grid(True, which="both", linewidth=0.4, alpha=0.4)
    _legend(fig, ax_, created, handles, labels)
    return fig, ax_


def plot_metrics(
    metrics: Mapping[str, np.ndarray],
    *,
    ax: Any = None,
    title: str | None = None,
):
    """Loss and accuracy against the epoch, for the train and test splits (two panels).

    Runs are averaged per epoch, with a ± std band when there are several runs.

    Args:
        ax: a pair of Axes to draw into, or None for a new figure.

    Returns:
        ``(fig, axes)`` with the loss and accuracy axes.
    """
    from matplotlib.lines import Line2D

    missing = [c for c in ("split", "epoch", "loss", "accuracy") if c not in metrics]
    if missing:
        raise InvalidInputError(
            f"plot_metrics: expected columns split, epoch, loss, accuracy, missing {missing}."
        )
    split_col = np.array([str(s) for s in np.asarray(metrics["split"]).tolist()], dtype=object)
    present = [s for s in ("train", "test") if (split_col == s).any()]
    present += sorted(set(split_col.tolist()) - set(present))
    fig, axes, created = _axes(ax, 2, (11.0, 4.0), "plot_metrics")
    epochs_all = np.asarray(metrics["epoch"], dtype=np.int64)
    handles, labels = [], []
    linestyles = {"train": "-", "test": "--"}
    for i, split in enumerate(present):
        colour = _SPLIT_COLOURS.get(split, f"C{i + 2}")
        style = linestyles.get(split, ":")
        marker = "o" if split == "train" else "s"
        for ax_, column in zip(axes, ("loss", "accuracy"), strict=True):
            values = np.asarray(metrics[column], dtype=np.float64)
            keep = (split_col == split) & np.isfinite(values)
            if not keep.any():
                continue
            epochs, inv = np.unique(epochs_all[keep], return_inverse=True)
            inv = inv.reshape(-1)
            count = np.bincount(inv)
            mean = np.bincount(inv, weights=values[keep]) / count
            ax_.plot(epochs, mean, linestyle=style, marker=marker, markersize=4, color=colour)
            if count.max() > 1:
                dev = np.bincount(inv, weights=(values[keep] - mean[inv]) ** 2)
                std = np.sqrt(dev / np.maximum(count - 1, 1))
                ax_.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.2, lw=0)
        handles.append(Line2D([], [], color=colour, linestyle=style, marker=marker))
        labels.append(split)
    axes[0].set_ylabel("loss")
    axes[1].set_ylabel("accuracy")
    for ax_, name in zip(axes, ("Loss", "Accuracy"), strict=True):
        ax_.set_xlabel("epoch")
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


__all__ = [
    "LAYER_CMAPS",
    "layer_colour",
    "plot_information_plane",
    "plot_metrics",
    "plot_mi_curves",
    "plot_sigma",
    "save_figure",
]
