"""Send each measurement to an experiment tracker: one small protocol, three implementations.

A logger is anything with ``log_measurement(measurement)`` (and, optionally, ``close()``), where
``measurement`` is a :class:`~infoplane.schema.Measurement`: its key (``split``, ``step``, ...)
and ``values()``, ``{layer: {quantity: value}}`` as :meth:`infoplane.InformationPlane.measure`
returns it. infoplane ships:

* :class:`CSVLogger`: one row per (split, step, layer) in a CSV file, rewritten atomically;
* :class:`TensorBoardLogger`: scalars ``infoplane/<split>/<layer>/<quantity>`` on a
  ``SummaryWriter`` and, every ``figure_every`` measurements of a split, the information plane
  so far as a figure (``infoplane/<split>/information_plane``);
* :class:`WandbLogger`: the same scalars on a Weights & Biases run, against the step metric
  ``infoplane/step``.

:func:`make_logger` wraps a raw ``SummaryWriter``, a wandb run or a CSV path. A writer that lacks
what its logger needs is refused when the logger is made, not at the first measurement.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from infoplane._validation import check_integer
from infoplane.errors import InvalidParameterError, InvalidTypeError
from infoplane.history import History
from infoplane.io import write_table
from infoplane.schema import QUANTITIES, Measurement

#: Quantities sent as scalars to TensorBoard and Weights & Biases.
LOGGED: tuple[str, ...] = ("i_xt", "i_ty", "h_t", "sigma")

#: Columns of :class:`CSVLogger`'s file.
CSV_FIELDS: tuple[str, ...] = ("split", "step", "layer", *QUANTITIES)


@runtime_checkable
class Logger(Protocol):
    """What the tracker calls after each recorded measurement (on rank 0 only)."""

    def log_measurement(self, measurement: Measurement) -> None:
        """Log one measurement (never a skipped one: its ``values()`` are not None)."""


def _require(obj: Any, methods: tuple[str, ...], who: str, fix: str) -> None:
    missing = [m for m in methods if not callable(getattr(obj, m, None))]
    if missing:
        raise InvalidTypeError(
            f"{who}: expected a writer with {', '.join(f'.{m}()' for m in methods)}, got "
            f"{type(obj).__name__} without {', '.join(f'.{m}()' for m in missing)}. {fix}"
        )


def scalars(measurement: Measurement) -> dict[str, float]:
    """``{"infoplane/<split>/<layer>/<quantity>": value}`` for the :data:`LOGGED` quantities."""
    split = measurement.split
    return {
        f"infoplane/{split}/{layer}/{key}": float(q[key])
        for layer, q in (measurement.values() or {}).items()
        for key in LOGGED
        if key in q
    }


class CSVLogger:
    """Rows ``split, step, layer, <quantities>`` in a CSV file, rewritten atomically each time.

    The file always holds every measurement logged so far (:func:`infoplane.io.write_table`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidTypeError(
                f"CSVLogger: expected path as a str or Path, got {type(path).__name__}."
            )
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []

    def log_measurement(self, measurement: Measurement) -> None:
        key = {"split": measurement.split, "step": measurement.step}
        for layer, q in (measurement.values() or {}).items():
            self.rows.append({**key, "layer": layer, **q})
        write_table(self.path, self.rows, CSV_FIELDS)

    def close(self) -> None:
        """Nothing to release: every call leaves a complete file."""


class TensorBoardLogger:
    """Scalars and an information-plane figure on a TensorBoard ``SummaryWriter``.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter`` (or anything with ``add_scalar``,
            and ``add_figure`` when figures are on).
        figure_every: draw the information plane of a split after every ``figure_every``-th
            measurement of it (``0``: never). matplotlib is imported only to draw.
    """

    def __init__(self, writer: Any, *, figure_every: int = 10) -> None:
        who = "TensorBoardLogger"
        self.figure_every = check_integer(figure_every, "figure_every", who, minimum=0)
        needs = ("add_scalar", "add_figure") if self.figure_every else ("add_scalar",)
        _require(writer, needs, who, "Pass a torch.utils.tensorboard.SummaryWriter.")
        self.writer = writer
        self._history = History()
        self._counts: dict[str, int] = {}

    def log_measurement(self, measurement: Measurement) -> None:
        split, step = measurement.split, measurement.step
        for tag, value in scalars(measurement).items():
            self.writer.add_scalar(tag, value, step)
        if not self.figure_every:
            return
        for record in measurement.records():
            self._history.add(record)
        self._counts[split] = self._counts.get(split, 0) + 1
        if self._counts[split] % self.figure_every == 0:
            self.writer.add_figure(
                f"infoplane/{split}/information_plane", self.figure(split), step, close=True
            )

    def figure(self, split: str):
        """The information plane of ``split`` logged so far (a matplotlib ``Figure``)."""
        from infoplane.plot import plot_information_plane

        fig, _ = plot_information_plane(self._history.columns(), split=split)
        return fig

    def close(self) -> None:
        self.writer.flush()


class WandbLogger:
    """The :data:`LOGGED` scalars on a Weights & Biases run (``wandb.init()``'s result).

    Every call logs ``infoplane/step`` beside the values, and the run is told to plot
    ``infoplane/*`` against it (``define_metric``), so infoplane's steps never clash with the
    step counter of the training loop's own ``wandb.log`` calls.
    """

    def __init__(self, run: Any) -> None:
        _require(run, ("log", "define_metric"), "WandbLogger", "Pass the run of wandb.init().")
        self.run = run
        run.define_metric("infoplane/step")
        run.define_metric("infoplane/*", step_metric="infoplane/step")

    def log_measurement(self, measurement: Measurement) -> None:
        self.run.log({**scalars(measurement), "infoplane/step": measurement.step})

    def close(self) -> None:
        """The run belongs to the caller, who finishes it."""


def make_logger(obj: Any) -> Logger:
    """A :class:`Logger` for ``obj``: a logger as is, a ``SummaryWriter``, a wandb run, or a path
    (``.csv``) for :class:`CSVLogger`."""
    if isinstance(obj, Logger):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        if Path(obj).suffix != ".csv":
            raise InvalidParameterError(
                f"make_logger: expected a path ending in .csv, got {str(obj)!r}."
            )
        return CSVLogger(obj)
    if callable(getattr(obj, "add_scalar", None)):
        return TensorBoardLogger(obj, figure_every=10 if hasattr(obj, "add_figure") else 0)
    if callable(getattr(obj, "define_metric", None)):
        return WandbLogger(obj)
    raise InvalidTypeError(
        f"make_logger: expected a logger (.log_measurement()), a SummaryWriter (.add_scalar()), "
        f"a wandb run (.log(), .define_metric()) or a .csv path, got {type(obj).__name__}."
    )


__all__ = [
    "LOGGED",
    "CSVLogger",
    "Logger",
    "TensorBoardLogger",
    "WandbLogger",
    "make_logger",
    "scalars",
]
