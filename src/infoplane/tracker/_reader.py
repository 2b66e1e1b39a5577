"""Read a batch through the model: one call → X, the label ids and the measured activations.

:class:`LayerReader` is the capture half of :class:`~infoplane.InformationPlane`: its
:meth:`~LayerReader.read` prepares what the user passed (:mod:`infoplane.inputs`), checks it,
runs one forward in eval mode under ``no_grad`` with hooks that exist only during the call
(:mod:`infoplane.capture`), takes X from the batch or from a named layer, adds the softmax
output, and fixes the order of the results at the first batch (a module run k times per
forward becomes k layers ``name:i``; :attr:`LayerReader.calls` maps each to its module).
Errors name the caller passed as ``who``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import nn

from infoplane.capture import call_base, capture, eval_mode, first_tensor, missing_layers
from infoplane.errors import InvalidInputError, InvalidTypeError, LayerNotFoundError
from infoplane.functional.kernels import label_ids
from infoplane.inputs import PreparedBatch, prepare_batch
from infoplane.tracker._options import check_finite


class LayerBatch(NamedTuple):
    """What one read gives: X ``[N, ...]``, the label ids ``[N]`` (on X's device) and the
    activations ``{layer: [N, ...]}`` in result order."""

    x: torch.Tensor
    ids: torch.Tensor
    acts: dict[str, torch.Tensor]

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


class LayerReader:
    """The layers of one model, read batch after batch."""

    def __init__(
        self,
        model: nn.Module,
        layers: list[str],
        *,
        include_output: bool,
        output_name: str,
        x_layer: str | None,
    ) -> None:
        self.model = model
        self.layers = layers
        self.include_output = include_output
        self.output_name = output_name
        self.x_layer = x_layer
        self.order: list[str] | None = None
        #: ``{name:i: name}`` once a module ran k > 1 times per forward (else empty).
        self.calls: dict[str, str] = {}

    @property
    def measured_names(self) -> list[str]:
        """Layer names as they appear in results: the layers, then the output (if measured)."""
        return self.layers + ([self.output_name] if self.include_output else [])

    def names(self) -> list[str]:
        """The result order once known, else the configured names."""
        return self.order or self.measured_names

    def read(self, x: Any, y: Any, *, who: str) -> LayerBatch:
        """Check the batch, run one eval-mode, no-grad forward, and return what it measured."""
        like = next((p for p in self.model.parameters() if p.is_floating_point()), None)
        batch = prepare_batch(x, y, x_layer=self.x_layer, like=like, who=who)
        ids = label_ids(batch.y, who, None)
        if batch.n < 2:
            raise InvalidInputError(f"{who}: expected a batch of N >= 2 samples, got {batch.n}.")
        if batch.x is not None:
            check_finite(batch.x, who)
        x, acts = self._forward(batch, who)
        return LayerBatch(x, ids.to(x.device), acts)

    def _forward(
        self, batch: PreparedBatch, who: str
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        extra = [n for n in [self.x_layer] if n is not None and n not in self.layers]
        hooked = self.layers + extra
        with eval_mode(self.model), torch.no_grad(), capture(self.model, hooked, who=who) as acts:
            out = batch.forward(self.model)
        missing = missing_layers(hooked, acts)
        if missing:
            raise LayerNotFoundError(
                f"{who}: expected every named layer to produce an output, got none from "
                f"{missing}. The forward pass did not run them; name layers that it uses."
            )
        x = batch.x if self.x_layer is None else self._x_of(acts, who)
        result = {n: t for n, t in acts.items() if n != self.x_layer or n in self.layers}
        if self.include_output:
            result[self.output_name] = _softmax_output(out, who)
        if self.order is None:
            self.set_order(list(result))
        return x, {n: result[n] for n in self.order}

    def _x_of(self, acts: Mapping[str, torch.Tensor], who: str) -> torch.Tensor:
        if self.x_layer not in acts:
            raise InvalidInputError(
                f"{who}: expected x_layer {self.x_layer!r} to run once per forward, got "
                f"{[n for n in acts if call_base(n) == self.x_layer]}. Name one call, e.g. "
                f"x_layer='{self.x_layer}:0'."
            )
        check_finite(acts[self.x_layer], who)
        return acts[self.x_layer]

    def set_order(self, order: list[str]) -> None:
        """Fix the result order; a module run k times per forward becomes k layers ``name:i``
        (recorded in :attr:`calls`, so each call gets a copy of its width rule)."""
        if set(order) != set(self.measured_names):
            self.calls = {n: call_base(n) for n in order}
            self.layers = [n for n in order if n != self.output_name or not self.include_output]
        self.order = order


def _softmax_output(out: Any, who: str) -> torch.Tensor:
    logits = first_tensor(out)
    if logits is None or logits.dim() < 2:
        raise InvalidTypeError(
            f"{who}: expected the model to return logits [N, C, ...], got "
            f"{type(out).__name__}. Pass include_output=False or name the last layer."
        )
    return torch.softmax(logits.detach().to(torch.float64), dim=1)


__all__ = ["LayerBatch", "LayerReader"]
