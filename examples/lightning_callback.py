"""Track the information plane of a LightningModule with the Lightning callback.

Layer names are relative to the LightningModule (here ``net.1`` is the Tanh inside
``self.net``). The history lands in the trainer's log directory as ``history.csv``::

    python examples/lightning_callback.py --out runs/lightning --epochs 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from infoplane.integrations.lightning import InformationPlaneCallback


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 16), nn.ReLU())
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 10, generator=torch.Generator().manual_seed(0)) * 2.0
    y = torch.randint(0, 4, (n,), generator=g)
    return TensorDataset(centres[y] + torch.randn(n, 10, generator=g), y)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/lightning"), help="log directory")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    args = parser.parse_args(argv)

    pl.seed_everything(0, verbose=False)
    callback = InformationPlaneCallback(["net.1", "net.3"], every=5, val=True, batch_size=100)
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        default_root_dir=str(args.out),
        logger=pl.loggers.CSVLogger(str(args.out)),
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(
        Classifier(),
        DataLoader(data(600, 1), batch_size=100, shuffle=True),
        DataLoader(data(200, 2), batch_size=100),
    )
    path = callback.history_path(trainer)
    print(f"history: {path} ({len(callback.plane.history)} records)")
    return path


if __name__ == "__main__":
    main()
