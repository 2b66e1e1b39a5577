"""Track the information plane of a LightningModule during ``Trainer.fit``.

:class:`InformationPlaneCallback` builds an :class:`~infoplane.InformationPlane` on the
LightningModule when the fit starts and

* measures the training batch just used every ``every`` optimizer steps (the paper's protocol),
  with ``step = trainer.global_step`` (optimizer steps taken, so the first batch is step 1) and
  ``epoch = trainer.current_epoch + 1``, as ``infoplane run`` numbers them;
* measures the validation dataloader once per validation epoch (``val=True``) in mini-batches of
  ``batch_size``, averaged (:meth:`~infoplane.InformationPlane.measure_probe`), as split
  ``"val"``;
* logs every measurement to the trainer's loggers (a TensorBoard logger also gets an
  information-plane figure every ``figure_every`` measurements; others get ``log_metrics``
  with the names of :func:`infoplane.loggers.scalars`) and to any infoplane ``loggers``;
* saves the history as ``history.csv`` (:class:`infoplane.schema.RunDir`) in the trainer's log
  directory after every epoch and at the end of the fit (or at ``path``);
* stores the width states (moving averages) in Lightning checkpoints, so a fit resumed with
  ``ckpt_path=`` continues the same moving averages.

Layer names are relative to the LightningModule: a module that holds its network as
``self.net`` has layers ``"net.fc1"``, ``"net.act1"`` (``pl_module.named_modules()``). Layers
may also be modules or glob patterns (:mod:`infoplane.capture`). Under a DDP strategy every rank
measures (the measurement gathers the shards of all ranks, so every rank computes the same
numbers) and only rank 0 logs and writes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import move_data_to_device
from typing_extensions import override

from infoplane import distributed as ddp
from infoplane._validation import check_integer
from infoplane.integrations import PlaneCallbackOptions
from infoplane.loggers import Logger, TensorBoardLogger, make_logger, scalars
from infoplane.schema import Measurement, RunDir
from infoplane.tracker._plane import InformationPlane

#: The split of the records measured on the validation dataloader.
VAL_SPLIT = "val"


class LightningLoggers:
    """A :class:`~infoplane.loggers.Logger` that forwards to a trainer's loggers.

    A logger whose ``experiment`` is a TensorBoard ``SummaryWriter`` gets
    :class:`~infoplane.loggers.TensorBoardLogger` (scalars and an information-plane figure every
    ``figure_every`` measurements of a split); any other gets the scalars through
    ``log_metrics``. Called on rank 0 only (by the tracker), where ``experiment`` is real.
    """

    def __init__(self, trainer: pl.Trainer, *, figure_every: int = 10) -> None:
        self.trainer = trainer
        self.figure_every = figure_every
        self._tensorboard: dict[int, TensorBoardLogger] = {}

    def _writer(self, logger: Any) -> TensorBoardLogger | None:
        if id(logger) not in self._tensorboard:
            experiment = getattr(logger, "experiment", None)
            if not callable(getattr(experiment, "add_figure", None)):
                return None
            self._tensorboard[id(logger)] = TensorBoardLogger(
                experiment, figure_every=self.figure_every
            )
        return self._tensorboard[id(logger)]

    def log_measurement(self, measurement: Measurement) -> None:
        for logger in self.trainer.loggers:
            writer = self._writer(logger)
            if writer is not None:
                writer.log_measurement(measurement)
            else:
                logger.log_metrics(scalars(measurement), step=measurement.step)


class InformationPlaneCallback(Callback, PlaneCallbackOptions):
    """Measure the information plane of the LightningModule while it trains.

    Args:
        layers: layers of the LightningModule (names relative to it, modules or glob patterns);
            ``None``: its activation modules (:func:`infoplane.capture.default_layers`).
        every: measure the training batch every ``every`` optimizer steps; ``0``: never.
        val: measure the validation dataloader once per validation epoch.
        batch_size: N of each estimate on the validation dataloader.
        path: where to save the history (default ``<trainer.log_dir>/history.csv``).
        loggers: infoplane loggers (or what :func:`~infoplane.loggers.make_logger` takes)
            called beside the trainer's own loggers.
        figure_every: a TensorBoard logger of the trainer gets the information plane of a split
            as a figure every ``figure_every`` measurements of it (``0``: never).
        **plane_options: passed to :class:`~infoplane.InformationPlane` (``alpha``, ``width``,
            ``x_width``, ``controls``, ...).

    The callback's own :attr:`plane` exists from the start of the fit.
    """

    def __init__(
        self,
        layers: Sequence[Any] | None = None,
        *,
        every: int = 1,
        val: bool = True,
        batch_size: int = 100,
        path: str | Path | None = None,
        loggers: Iterable[Any] = (),
        figure_every: int = 10,
        **plane_options: Any,
    ) -> None:
        self._set_options(layers, every, batch_size, path, plane_options)
        self.figure_every = check_integer(
            figure_every, "figure_every", "InformationPlaneCallback", minimum=0
        )
        self.val = bool(val)
        self.loggers: list[Logger] = [make_logger(obj) for obj in loggers]
        self._pending_state: Mapping[str, Any] | None = None
        self._last_step: int | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(layers=repr(self.layers), every=self.every)

    # ----------------------------------------------------------------------------- set-up
    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args, **kwargs) -> None:
        if self.plane is None:
            loggers = [LightningLoggers(trainer, figure_every=self.figure_every), *self.loggers]
            self.plane = InformationPlane(
                pl_module, self.layers, loggers=loggers, **self.plane_options
            )
        if self._pending_state is not None:
            self.plane.load_state_dict(self._pending_state)
            self._pending_state = None

    def history_path(self, trainer: pl.Trainer) -> Path:
        """Where the history is saved: ``path``, else ``history.csv`` in the trainer's log dir."""
        if self.path is not None:
            return self.path
        return RunDir(trainer.log_dir or trainer.default_root_dir).history

    # ----------------------------------------------------------------------------- measuring
    @override
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        *args,
        **kwargs,
    ) -> None:
        step = trainer.global_step
        if step == self._last_step or self.plane is None or not self.plane.is_due(step):
            return  # also: gradient accumulation runs several batches per optimizer step
        self._last_step = step
        self.plane.on_train_batch(batch, step=step, epoch=trainer.current_epoch + 1)

    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.val or trainer.sanity_checking or self.plane is None:
            return
        step = trainer.global_step
        batches = _on_device(_val_batches(trainer.val_dataloaders), pl_module.device)
        self.plane.measure_probe(
            batches,
            step=step,
            split=VAL_SPLIT,
            epoch=trainer.current_epoch + 1,
            batch_size=self.batch_size,
        )

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, *args, **kwargs) -> None:
        self._save(self.history_path(trainer))

    @override
    def on_fit_end(self, trainer: pl.Trainer, *args, **kwargs) -> None:
        self._save(self.history_path(trainer))
        if ddp.is_rank_zero():
            for logger in self.loggers:
                close = getattr(logger, "close", None)
                if callable(close):
                    close()

    # ----------------------------------------------------------------------------- checkpoints
    @override
    def state_dict(self) -> dict[str, Any]:
        """The tracker's width states, stored in Lightning checkpoints."""
        if self.plane is None:
            return {"plane": self._pending_state}
        return {"plane": self.plane.state_dict()}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = state_dict.get("plane")
        if state is None:
            return
        if self.plane is None:
            self._pending_state = state  # applied in setup()
        else:
            self.plane.load_state_dict(state)


def _val_batches(loaders: Any) -> Iterator[Any]:
    """The batches of one validation dataloader or of several (a list or a dict of them)."""
    if loaders is None:
        return iter(())
    if isinstance(loaders, Mapping):
        loaders = list(loaders.values())
    if isinstance(loaders, (list, tuple)):
        return itertools.chain.from_iterable(loaders)
    return iter(loaders)


def _on_device(batches: Iterable[Any], device: Any) -> Iterator[Any]:
    for batch in batches:
        yield move_data_to_device(batch, device)


__all__ = ["VAL_SPLIT", "InformationPlaneCallback", "LightningLoggers"]
