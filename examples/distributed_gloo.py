"""The plain API under torch.distributed: two CPU processes (gloo), one history.

Each process trains a DistributedDataParallel copy on its own shard of every batch; the
tracker gathers the shards, so both processes compute the same estimate of the whole batch,
and only rank 0 writes the history::

    python examples/distributed_gloo.py --out runs/ddp --epochs 1
"""

from __future__ import annotations

import argparse
import datetime
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from infoplane import InformationPlane


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world: int, port: int, out: Path, epochs: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group(
        "gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60)
    )
    try:
        torch.manual_seed(0)  # the same initial weights on every rank
        model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 4))
        ddp_model = nn.parallel.DistributedDataParallel(model)
        optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
        g = torch.Generator().manual_seed(1)
        centres = torch.randn(4, 10, generator=g) * 2.0
        y = torch.randint(0, 4, (400,), generator=g)
        x = centres[y] + torch.randn(400, 10, generator=g)
        plane = InformationPlane(ddp_model, ["1"], every=2)  # names of the wrapped model
        step = 0
        for epoch in range(1, epochs + 1):
            for start in range(0, 400, 100):
                shard = slice(start + rank, start + 100, world)  # this rank's half of the batch
                xb, yb = x[shard], y[shard]
                optimizer.zero_grad()
                nn.functional.cross_entropy(ddp_model(xb), yb).backward()
                optimizer.step()
                step += 1
                result = plane.on_train_batch(xb, yb, step=step, epoch=epoch)
                if result is not None and rank == 0:
                    print(f"step {step}: I(X;T)={result['1']['i_xt']:.3f} (N={2 * len(xb)})")
        plane.save(out / "history.csv")  # rank 0 writes; the others return None
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ddp"), help="output directory")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    mp.spawn(worker, args=(2, free_port(), args.out, args.epochs), nprocs=2, join=True)
    path = args.out / "history.csv"
    print(f"history: {path}")
    return path


if __name__ == "__main__":
    main()
