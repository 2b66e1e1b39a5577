"""Lightning helpers for the tests that spawn ranks (importable in the spawned processes)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch.distributed as dist


class EndProcessGroup(pl.Callback):
    """Destroys the rank's process group when the fit is torn down, as every other distributed
    test here does before a rank exits.

    Lightning destroys its group at exit only for NCCL. A gloo group left to the interpreter's
    finalization can abort the rank (SIGABRT after "terminate called without an active
    exception") when a gloo worker thread still holds a collective's tensors and must take the
    GIL to free them (pytorch/pytorch#179291). Callbacks' ``teardown`` runs after the strategy's
    and after every other callback's ``on_fit_end``: no collective follows it.
    """

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
