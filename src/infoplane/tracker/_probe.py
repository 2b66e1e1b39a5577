"""Accumulate a probe set's per-batch estimates, with declared reductions across processes.

A probe set is measured in mini-batches of N; :class:`ProbeAccumulator` keeps running sums as
named states, each declared with how it reduces across processes (in the spirit of
torchmetrics' ``add_state(..., dist_reduce_fx=...)``), so a distributed probe syncs with one
all-reduce, and returns the mean and the standard error across the mini-batches.
"""

from __future__ import annotations

import math

import torch

from infoplane import distributed as ddp

_REDUCTIONS = ("sum",)


class ProbeAccumulator:
    """Mean and standard error of ``[L, Q]`` per-batch rows over a probe set."""

    def __init__(self, shape: tuple[int, int], draws: tuple[int, ...] | None = None) -> None:
        self._states: dict[str, torch.Tensor] = {}
        self._reduce: dict[str, str] = {}
        self.add_state("total", torch.zeros(shape, dtype=torch.float64), "sum")
        self.add_state("total_sq", torch.zeros(shape, dtype=torch.float64), "sum")
        if draws is not None:  # the null distribution's draws [L, 2, B], summed like the rows
            self.add_state("draws", torch.zeros(draws, dtype=torch.float64), "sum")
        self.add_state("batches", torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("samples", torch.zeros((), dtype=torch.float64), "sum")
        self._synced = False

    def add_state(self, name: str, default: torch.Tensor, reduce: str) -> None:
        """Declare a state and how it reduces across processes (only ``"sum"`` is needed)."""
        if reduce not in _REDUCTIONS:  # pragma: no cover - a programming error, not user input
            raise ValueError(f"ProbeAccumulator.add_state: unknown reduction {reduce!r}.")
        self._states[name] = default
        self._reduce[name] = reduce

    def update(self, row: torch.Tensor, n: int, draws: torch.Tensor | None = None) -> None:
        """Add one mini-batch's ``[L, Q]`` estimates (and null draws), measured on ``n``
        samples."""
        row = row.detach().to("cpu", torch.float64)
        s = self._states
        if draws is not None:
            s["draws"] = s["draws"] + draws.detach().to("cpu", torch.float64)
        s["total"] = s["total"] + row
        s["total_sq"] = s["total_sq"] + row * row
        s["batches"] = s["batches"] + 1
        s["samples"] = s["samples"] + n

    def sync(self) -> None:
        """Reduce every state across processes with one all-reduce (a no-op in one process)."""
        if self._synced:
            return
        names = list(self._states)
        flat = torch.cat([self._states[n].reshape(-1) for n in names])
        flat = ddp.all_reduce_sum(flat)
        offset = 0
        for n in names:
            size = self._states[n].numel()
            self._states[n] = flat[offset : offset + size].reshape(self._states[n].shape)
            offset += size
        self._synced = True

    @property
    def batches(self) -> int:
        return int(self._states["batches"])

    @property
    def samples(self) -> int:
        return int(self._states["samples"])

    def mean(self) -> torch.Tensor | None:
        """The mean over mini-batches, or None when no batch was measured."""
        if self.batches == 0:
            return None
        return self._states["total"] / self.batches

    def mean_draws(self) -> torch.Tensor | None:
        """The null draws averaged over mini-batches, or None (no batch, or no null control)."""
        if self.batches == 0 or "draws" not in self._states:
            return None
        return self._states["draws"] / self.batches

    def standard_error(self) -> torch.Tensor | None:
        """The standard error of the mean across mini-batches (NaN with a single batch)."""
        k = self.batches
        if k == 0:
            return None
        if k == 1:
            return torch.full_like(self._states["total"], math.nan)
        mean = self._states["total"] / k
        var = (self._states["total_sq"] - k * mean * mean) / (k - 1)
        return var.clamp_min(0.0).sqrt() / math.sqrt(k)


__all__ = ["ProbeAccumulator"]
