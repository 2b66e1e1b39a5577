"""The record format of infoplane: one home for every field, quantity, status and file name.

Everything that writes or reads a measurement imports its names from here: the tracker builds
records with :data:`FIELDS`, :class:`~infoplane.history.History` stores and loads them, the
analysis and report read them, and the runner, the CLI and the report find the files of a run
directory through :class:`RunDir`. Adding a quantity means adding it here (and computing it in
the tracker, ``src/infoplane/tracker/``); a test checks that every consumer agrees with this
module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Per-layer estimates of one measurement, in bits (``sigma`` in the library's convention,
#: METHOD.md): I(X;T), I(T;Y), S(T), S(X), S(Y), the layer's kernel width, and whether its Gram
#: is saturated (1.0: S(T) at log2 N or 0, or the Gram at I or 11^T; the estimate then measures
#: the width, not the representation).
ESTIMATES: tuple[str, ...] = ("i_xt", "i_ty", "h_t", "h_x", "h_y", "sigma", "saturated")

#: Controls measured beside the estimates (``InformationPlane(controls=...)``), empty in a record
#: when the control is off.
#: The null distribution: B draws per step with the labels permuted (I(T;Y)) or the samples of X
#: permuted against T (I(X;T)), at the estimate's widths. ``*_null`` is the draws' mean (the
#: floor), ``*_null_q95`` their 95% quantile, ``*_p`` the permutation p-value
#: ``(1 + #{draw >= estimate}) / (B + 1)``.
NULL_QUANTITIES: tuple[str, ...] = ("i_xt_null", "i_ty_null")
NULL_Q95_QUANTITIES: tuple[str, ...] = ("i_xt_null_q95", "i_ty_null_q95")
P_VALUE_QUANTITIES: tuple[str, ...] = ("i_xt_p", "i_ty_p")
#: The fixed-width control: the same step with each layer's width held at a fixed ratio to the
#: batch's median pairwise distance (or at an absolute width the user gave), from the split's
#: reference step on (NaN before it): I(X;T), I(T;Y), S(T), the held width and its saturation.
FIXED_QUANTITIES: tuple[str, ...] = ("i_xt_fixed", "i_ty_fixed")
FIXED_EXTRA_QUANTITIES: tuple[str, ...] = ("h_t_fixed", "sigma_fixed")
#: The saturation flags of the estimate and of the fixed-width control (see ``ESTIMATES``).
SATURATION_QUANTITIES: tuple[str, ...] = ("saturated", "saturated_fixed")

#: Names of the controls, as passed to ``InformationPlane(controls=...)``, and the fields each
#: adds to a result and a record.
CONTROLS: tuple[str, ...] = ("null", "fixed")
CONTROL_FIELDS: dict[str, tuple[str, ...]] = {
    "null": NULL_QUANTITIES + NULL_Q95_QUANTITIES + P_VALUE_QUANTITIES,
    "fixed": FIXED_QUANTITIES + FIXED_EXTRA_QUANTITIES + ("saturated_fixed",),
}
CONTROL_QUANTITIES: tuple[str, ...] = CONTROL_FIELDS["null"] + CONTROL_FIELDS["fixed"]

#: Standard errors across the mini-batches of a probe set (``measure_probe``); empty for a
#: single-batch measurement, where no such spread exists.
SE_QUANTITIES: tuple[str, ...] = ("i_xt_se", "i_ty_se")

#: Every per-layer value of a result and a record.
QUANTITIES: tuple[str, ...] = ESTIMATES + CONTROL_QUANTITIES + SE_QUANTITIES

#: The key of a record: at most one record per key in a history.
KEY: tuple[str, ...] = ("run", "split", "epoch", "step", "layer")

#: The fields of one history record, in file order.
FIELDS: tuple[str, ...] = (
    "run",
    "split",
    "epoch",
    "step",
    "layer",
    "layer_index",
    *ESTIMATES,
    *CONTROL_QUANTITIES,
    *SE_QUANTITIES,
    "n",
    "status",
)
INT_FIELDS: frozenset[str] = frozenset({"run", "epoch", "step", "layer_index", "n"})
FLOAT_FIELDS: frozenset[str] = frozenset(QUANTITIES)
STR_FIELDS: frozenset[str] = frozenset({"split", "layer", "status"})
#: Fields a history may lack (a control that was off, a file written without them): missing values.
OPTIONAL_FIELDS: frozenset[str] = frozenset(CONTROL_QUANTITIES + SE_QUANTITIES + ("saturated",))

#: ``status`` of a measured record, and of a step skipped because activations were not finite.
STATUS_OK = "ok"
STATUS_SKIPPED = "skipped"

#: ``epoch`` of a record measured outside any epoch.
NO_EPOCH = -1


@dataclass(frozen=True)
class Measurement:
    """One measurement of a step, the one result type: made once by the tracker, read by the
    recorder (history records) and by every logger.

    ``names`` are the measured layers in forward order, ``columns`` the quantities of each row
    and ``rows`` their values (bits; ``sigma`` in the library's convention), one row per
    layer; ``rows`` is None when the step was skipped (non-finite activations). The key is
    ``(run, split, epoch, step)`` with ``epoch`` :data:`NO_EPOCH` outside any epoch; ``n`` is
    the number of samples the estimate used.
    """

    run: int
    split: str
    epoch: int
    step: int
    n: int
    names: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[tuple[float, ...], ...] | None

    @property
    def status(self) -> str:
        return STATUS_SKIPPED if self.rows is None else STATUS_OK

    def values(self) -> dict[str, dict[str, float]] | None:
        """``{layer: {quantity: value}}`` in forward order, or None for a skipped step."""
        if self.rows is None:
            return None
        return {
            name: dict(zip(self.columns, row, strict=True))
            for name, row in zip(self.names, self.rows, strict=True)
        }

    def records(self) -> list[dict[str, Any]]:
        """The history records of this measurement: one per layer (a skipped step's values are
        NaN for every estimate)."""
        values: Mapping[str, Mapping[str, float]] = self.values() or {
            name: dict.fromkeys(ESTIMATES, math.nan) for name in self.names
        }
        key = {"run": self.run, "split": self.split, "epoch": self.epoch, "step": self.step}
        return [
            {**key, "layer": name, "layer_index": index, "n": self.n, "status": self.status, **q}
            for index, (name, q) in enumerate(values.items())
        ]


#: Columns of the training metrics table (loss and accuracy per run, split and epoch).
METRIC_FIELDS: tuple[str, ...] = ("run", "split", "epoch", "step", "loss", "accuracy")


@dataclass(frozen=True)
class RunDir:
    """The files of a run directory, by name; the one place that knows them.

    ::

        config.json            the resolved configuration
        provenance.json        versions, command line, start, end and duration of the run
        history.csv            one record per (run, split, epoch, step, layer)
        history.meta.json      the measurement's configuration (beside the CSV)
        metrics.csv            loss and accuracy per (run, split, epoch)
        state.json             which runs are complete
        checkpoints/run<K>.pt  model, optimizer, width states and RNG states at the last epoch end
        figures/               PNG and SVG figures
        report.md, report.html the report
        .lock                  held by the run that is writing here
    """

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance.json"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, run: int) -> Path:
        return self.checkpoints / f"run{int(run)}.pt"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"


def meta_path(path: str | Path) -> Path:
    """The ``.meta.json`` file that holds the configuration of the CSV history at ``path``."""
    path = Path(path)
    return path.with_name(path.stem + ".meta.json")
