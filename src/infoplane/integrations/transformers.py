"""Track the information plane of a Hugging Face model during ``transformers.Trainer.train``.

:class:`InformationPlaneCallback` builds an :class:`~infoplane.InformationPlane` on the model
when training begins and

* every ``every`` optimizer steps (``state.global_step``), measures one fixed batch: ``probe``
  if given, else the first batch of the training dataloader, drawn once (the Trainer does not
  hand its callbacks the batch it just trained on, so the paper's "batch just used" protocol is
  replaced by a fixed training batch), as split ``"train"``;
* at every evaluation, measures the evaluation dataloader in mini-batches of ``batch_size``,
  averaged (:meth:`~infoplane.InformationPlane.measure_probe`), as split ``"eval"``;
* saves the history as ``history.csv`` in ``args.output_dir`` (on the main process) after each
  evaluation and at the end of training, and sends every measurement to ``loggers``.

Batches are what the Trainer's data collator makes (a dict or ``BatchEncoding`` with
``labels``): the model is called with the batch's other entries as keyword arguments. Token ids
are not a meaningful X: pass ``x_layer``, the module whose output is X, e.g.
``"bert.embeddings"`` for a ``BertForSequenceClassification``. Layer names are those of
``model.named_modules()``; ``None`` takes every activation module (Hugging Face's
``GELUActivation`` included, :func:`infoplane.capture.is_activation`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from infoplane.inputs import to_device
from infoplane.integrations import PlaneCallbackOptions
from infoplane.schema import RunDir
from infoplane.tracker._plane import InformationPlane

#: The splits of the records: the fixed training batch and the evaluation dataloader.
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"


class InformationPlaneCallback(TrainerCallback, PlaneCallbackOptions):
    """Measure the information plane of the model a ``transformers.Trainer`` trains.

    Args:
        layers: layers of the model (names, modules or glob patterns); ``None``: its activation
            modules.
        every: measure the fixed training batch every ``every`` optimizer steps; ``0``: never.
        probe: the fixed batch to measure (a dict or ``BatchEncoding`` with ``labels``, or an
            ``(x, y)`` pair); default the first batch of the training dataloader.
        evaluate: measure the evaluation dataloader at every evaluation.
        batch_size: N of each estimate on the evaluation dataloader.
        x_layer: the module (name or object) whose output is X, e.g. ``"bert.embeddings"``.
        path: where to save the history (default ``<args.output_dir>/history.csv``).
        loggers: infoplane loggers (:mod:`infoplane.loggers`), called on the main process.
        **plane_options: passed to :class:`~infoplane.InformationPlane`.
    """

    def __init__(
        self,
        layers: Sequence[Any] | None = None,
        *,
        every: int = 10,
        probe: Any = None,
        evaluate: bool = True,
        batch_size: int = 100,
        x_layer: Any = None,
        path: str | Path | None = None,
        loggers: Iterable[Any] = (),
        **plane_options: Any,
    ) -> None:
        options = {"x_layer": x_layer, "loggers": tuple(loggers), **plane_options}
        self._set_options(layers, every, batch_size, path, options)
        self.probe = probe
        self.evaluate = bool(evaluate)

    def history_path(self, args: Any) -> Path:
        """``path``, else ``history.csv`` in the Trainer's output directory."""
        return self.path if self.path is not None else RunDir(args.output_dir).history

    def on_train_begin(self, *args, model=None, train_dataloader=None, **kwargs):
        if self.plane is None:
            self.plane = InformationPlane(model, self.layers, **self.plane_options)
        if self.probe is None and self.every and train_dataloader is not None:
            self.probe = next(iter(train_dataloader))
        if self.probe is not None:
            self.probe = to_device(self.probe, _device(model))

    def on_step_end(self, args, state, *_, **kwargs):
        if self.plane is None or self.probe is None:
            return
        step = state.global_step
        self.plane.on_train_batch(self.probe, step=step, epoch=_epoch(state))

    def on_evaluate(self, args, state, *_, model=None, eval_dataloader=None, **kwargs):
        if self.plane is None or not self.evaluate or eval_dataloader is None:
            return
        batches = _on_device(eval_dataloader, _device(model))
        self.plane.measure_probe(
            batches,
            step=state.global_step,
            split=EVAL_SPLIT,
            epoch=_epoch(state),
            batch_size=self.batch_size,
        )
        self._save(self.history_path(args))

    def on_train_end(self, args, *_, **kwargs):
        self._save(self.history_path(args))


def _device(model: torch.nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _epoch(state: Any) -> int:
    """The epoch in progress, 1-based (the Trainer's ``state.epoch`` is fractional)."""
    return max(1, math.ceil(state.epoch or 0))


def _on_device(batches: Iterable[Any], device: torch.device) -> Iterator[Any]:
    for batch in batches:
        yield to_device(batch, device)


__all__ = ["EVAL_SPLIT", "TRAIN_SPLIT", "InformationPlaneCallback"]
