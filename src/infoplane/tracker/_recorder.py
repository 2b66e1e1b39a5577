"""Turn a measurement into history records and logger calls.

:class:`Recorder` is the one place where a :class:`~infoplane.schema.Measurement` becomes
history records and reaches the loggers (on rank 0 only).
"""

from __future__ import annotations

from collections.abc import Sequence

from infoplane import distributed as ddp
from infoplane.history import History
from infoplane.loggers import Logger
from infoplane.schema import Measurement


class Recorder:
    """Add measurements of one run to a :class:`~infoplane.history.History` and log them."""

    def __init__(self, history: History, *, run: int, loggers: Sequence[Logger] = ()) -> None:
        self.history = history
        self.run = int(run)
        self.loggers = list(loggers)

    def record(self, measurement: Measurement) -> None:
        """Record one measurement; a skipped step (``rows`` None) is recorded, not logged."""
        for record in measurement.records():
            self.history.add(record)
        if measurement.rows is not None and ddp.is_rank_zero():
            for logger in self.loggers:
                logger.log_measurement(measurement)


__all__ = ["Recorder"]
