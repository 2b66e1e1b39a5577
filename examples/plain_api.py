"""Track the information plane of your own model with the plain API.

Trains a small MLP on synthetic blobs, measures the training batch every few steps (the paper's
protocol) and a held-out probe set once per epoch, and saves the history::

    python examples/plain_api.py --out runs/plain --epochs 3
    infoplane plot runs/plain        # figures from the saved history
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from infoplane import InformationPlane


def blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of 4 classes in 10 dimensions, each class around its own centre."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 10, generator=torch.Generator().manual_seed(0)) * 2.0
    y = torch.randint(0, 4, (n,), generator=g)
    return centres[y] + torch.randn(n, 10, generator=g), y


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/plain"), help="output directory")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs")
    parser.add_argument("--every", type=int, default=5, help="measure every k steps")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 4)
    )
    x_train, y_train = blobs(600, seed=1)
    probe = blobs(200, seed=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # layers: names from model.named_modules(), modules, or patterns; None = every activation
    plane = InformationPlane(model, every=args.every, x_width="median")
    step = 0
    for epoch in range(1, args.epochs + 1):
        for start in range(0, len(x_train), 100):
            xb, yb = x_train[start : start + 100], y_train[start : start + 100]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
            step += 1
            plane.on_train_batch(xb, yb, step=step, epoch=epoch)  # measures when step % every == 0
        result = plane.measure_probe(probe, step=step, split="test", epoch=epoch)
        print(
            f"epoch {epoch}: " + ", ".join(f"{n} I(T;Y)={q['i_ty']:.2f}" for n, q in result.items())
        )
    path = plane.save(args.out / "history.csv")
    print(f"history: {path}")
    return path


if __name__ == "__main__":
    main()
