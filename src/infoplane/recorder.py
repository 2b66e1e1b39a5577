"""Turn a measurement into history records and logger calls.

:class:`Recorder` is the one place where a per-layer result becomes records (with the key, the
layer's index, ``n`` and the status of :mod:`infoplane.schema`) and reaches the loggers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from infoplane import distributed as ddp
from infoplane.history import History
from infoplane.schema import ESTIMATES, NO_EPOCH, STATUS_OK, STATUS_SKIPPED

Result = dict[str, dict[str, float]]

#: Quantities sent to a TensorBoard-style writer at each measurement.
_LOGGED = ("i_xt", "i_ty", "h_t", "sigma")


class Recorder:
    """Add measurements of one run to a :class:`~infoplane.history.History` and log them."""

    def __init__(self, history: History, *, run: int, writer: Any = None) -> None:
        self.history = history
        self.run = int(run)
        self.writer = writer

    def record(
        self,
        result: Mapping[str, Mapping[str, float]] | None,
        *,
        names: Sequence[str],
        step: int,
        split: str,
        epoch: int | None,
        n: int,
    ) -> None:
        """Record one measurement; ``None`` records every layer of ``names`` as skipped."""
        status = STATUS_SKIPPED if result is None else STATUS_OK
        rows: Mapping[str, Mapping[str, float]] = (
            {name: dict.fromkeys(ESTIMATES, math.nan) for name in names}
            if result is None
            else result
        )
        for index, (name, q) in enumerate(rows.items()):
            self.history.add(
                {
                    "run": self.run,
                    "split": split,
                    "epoch": NO_EPOCH if epoch is None else epoch,
                    "step": step,
                    "layer": name,
                    "layer_index": index,
                    "n": n,
                    "status": status,
                    **q,
                }
            )
        if result is not None and self.writer is not None and ddp.is_rank_zero():
            for name, q in result.items():
                for key in _LOGGED:
                    self.writer.add_scalar(f"infoplane/{split}/{name}/{key}", q[key], step)


__all__ = ["Recorder", "Result"]
