"""Turn a measurement into history records and logger calls.

:class:`Recorder` is the one place where a per-layer result becomes records (with the key, the
layer's index, ``n`` and the status of :mod:`infoplane.schema`) and reaches the loggers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from infoplane import distributed as ddp
from infoplane.history import History
from infoplane.loggers import Logger
from infoplane.schema import ESTIMATES, NO_EPOCH, STATUS_OK, STATUS_SKIPPED

Result = dict[str, dict[str, float]]


class Recorder:
    """Add measurements of one run to a :class:`~infoplane.history.History` and log them."""

    def __init__(self, history: History, *, run: int, loggers: Sequence[Logger] = ()) -> None:
        self.history = history
        self.run = int(run)
        self.loggers = list(loggers)

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
        if result is not None and ddp.is_rank_zero():
            for logger in self.loggers:
                logger.log_measurement(result, split=split, step=step)


__all__ = ["Recorder", "Result"]
