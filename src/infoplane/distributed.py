"""torch.distributed helpers: rank queries, gathers of unequal shards, reductions.

Everything here is a no-op in a single process (torch.distributed absent, not initialized, or a
world of one), so the rest of infoplane calls these helpers unconditionally.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when a process group with more than one process is initialized."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_rank_zero() -> bool:
    """True on the process that writes files (rank 0, or the only process)."""
    return get_rank() == 0


def _comm_device(t: torch.Tensor) -> torch.device:
    """Where collectives must run: CPU for gloo, the tensor's device otherwise."""
    backend = dist.get_backend()
    return torch.device("cpu") if backend == "gloo" else t.device


def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``[n_r, ...]`` tensor along dim 0, in rank order.

    Shards may have different lengths (they are padded for the collective and trimmed after).
    Every rank gets the same result. In a single process, returns ``t``.
    """
    if not is_distributed():
        return t
    device = _comm_device(t)
    local = t.detach().to(device).contiguous()
    size = torch.tensor([local.shape[0]], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _ in range(get_world_size())]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    if local.shape[0] < longest:
        pad = torch.zeros(
            (longest - local.shape[0], *local.shape[1:]), dtype=local.dtype, device=device
        )
        local = torch.cat([local, pad])
    parts = [torch.empty_like(local) for _ in counts]
    dist.all_gather(parts, local)
    return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)]).to(t.device)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks (a new tensor; ``t`` is left unchanged)."""
    if not is_distributed():
        return t
    device = _comm_device(t)
    out = t.detach().to(device).clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(t.device)


def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Rank ``src``'s value of ``t`` on every rank (a new tensor)."""
    if not is_distributed():
        return t
    device = _comm_device(t)
    out = t.detach().to(device).clone()
    dist.broadcast(out, src=src)
    return out.to(t.device)


__all__ = [
    "all_gather_cat",
    "all_reduce_sum",
    "broadcast",
    "get_rank",
    "get_world_size",
    "is_distributed",
    "is_rank_zero",
]
