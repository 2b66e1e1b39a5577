"""Callbacks for training frameworks; each module imports its framework only when imported.

* :mod:`infoplane.integrations.lightning`: ``InformationPlaneCallback`` for PyTorch Lightning's
  ``Trainer`` (``pip install lightning``);
* :mod:`infoplane.integrations.transformers`: ``InformationPlaneCallback`` for Hugging Face's
  ``Trainer`` (``pip install transformers``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from infoplane.errors import InvalidParameterError
from infoplane.tracker import validate_option


class PlaneCallbackOptions:
    """What both callbacks share: their options, their tracker, and saving its history."""

    def _set_options(
        self,
        layers: Sequence[Any] | None,
        every: int,
        batch_size: int,
        path: str | Path | None,
        plane_options: Mapping[str, Any],
    ) -> None:
        who = "InformationPlaneCallback"
        if "every" in plane_options or "model" in plane_options:
            raise InvalidParameterError(
                f"{who}: expected InformationPlane options without 'model'/'every', got "
                f"{sorted(plane_options)}. The callback passes the trained model; pass every= "
                "to the callback."
            )
        self.layers = layers
        self.every = validate_option("every", every, who)
        self.batch_size = validate_option("batch_size", batch_size, who)
        self.path = None if path is None else Path(path)
        self.plane_options = {**plane_options, "every": self.every}
        self.plane = None

    def _save(self, path: Path) -> None:
        """Save the history at ``path`` (rank 0 only, and only once something was measured)."""
        if self.plane is not None and len(self.plane.history):
            self.plane.save(path)
