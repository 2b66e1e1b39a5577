"""The authors' per-step algorithm, re-implemented from reading their code, as a baseline.

Source: ``Wickstrom/InformationTheoryExperiment``, folder ``python/``. ``network.py``
(``Network.dist_mat``, ``kernel_mat``, ``entropy``, ``compute_mi``) computes, per measured tensor
of one batch of N samples, in the dtype of the data (float32):

* the distance matrix ``th.norm(x[:, None] - x, dim=2)`` of the flattened tensor (it builds the
  ``[N, N, D]`` difference tensor; the norm reduces it without a second copy);
* the Gram ``exp(-d**2 / sigma**2)`` (their width convention: sigma_theirs = sigma_ours * sqrt(2));
* the entropy from the eigenvalues of ``K / trace(K)`` (``symeig``, absolute values), the joint
  entropies from the Hadamard products ``K_X o K_T`` and ``K_T o K_Y``, each decomposed on its
  own;

and ``VGG16.py`` returns the 16 measured tensors of the VGG-16 forward. The layers' widths follow
the label-alignment rule of the paper (METHOD.md of this repository gives the exact grid:
``linspace(0.3, 10 * mean(d), K)`` with the mean over all N^2 entries including the zero
diagonal, K = 300 for the first 21 iterations (0..20) then 100, the alignment
``trace(K K_Y) / sqrt(trace(K K) trace(K_Y K_Y))`` with matrix products, first maximum, then a
moving average with beta = 0.9). The label kernel is the class indicator (their Gaussian on
one-hot labels with a tiny width is the same matrix up to exp(-2 / 0.09) ~ 2e-10).

Nothing here is their code; it is their algorithm, written plainly, in their dtype or float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: Grid ends of the alignment search (the authors' convention).
GRID_LOW, GRID_HIGH = 0.3, 10.0


def distances(t: torch.Tensor) -> torch.Tensor:
    """``th.norm(x[:, None] - x, dim=2)`` of the flattened tensor ``[N, ...]``."""
    x = t.reshape(t.shape[0], -1)
    return torch.norm(x[:, None] - x, dim=2, p=2)


def gram(d: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``exp(-d^2 / sigma^2)`` (the authors' width convention)."""
    return torch.exp(-(d**2) / sigma**2)


def alignment_width(d: torch.Tensor, k_y: torch.Tensor, num: int) -> tuple[torch.Tensor, int]:
    """The grid point of best label alignment, candidate by candidate with matrix products."""
    grid = torch.linspace(GRID_LOW, GRID_HIGH * float(d.mean()), num, dtype=d.dtype)
    grid = grid.to(d.device)
    y_norm = torch.sqrt(torch.trace(k_y @ k_y))
    scores = []
    for s in grid:
        k = gram(d, s)
        scores.append(torch.trace(k @ k_y) / (torch.sqrt(torch.trace(k @ k)) * y_norm))
    best = int(torch.stack(scores).argmax())  # first maximum
    return grid[best], best


def entropy(*grams: torch.Tensor, alpha: float) -> torch.Tensor:
    """Rényi entropy (bits) of the trace-normalized Hadamard product of ``grams``."""
    k = grams[0].clone()
    for other in grams[1:]:
        k *= other
    k = k / torch.trace(k)
    lam = torch.linalg.eigvalsh(k).abs()
    if alpha == 1.0:
        lam = lam[lam > 0]
        return -(lam * torch.log2(lam)).sum()
    return torch.log2((lam**alpha).sum()) / (1.0 - alpha)


def mutual_information(
    k_x: torch.Tensor,
    k_ts: Sequence[torch.Tensor],
    k_y: torch.Tensor,
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``I(X;T)`` and ``I(T;Y)`` of every layer, one eigendecomposition per matrix."""
    h_x = entropy(k_x, alpha=alpha)
    h_y = entropy(k_y, alpha=alpha)
    i_xt, i_ty = [], []
    for k_t in k_ts:
        h_t = entropy(k_t, alpha=alpha)
        i_xt.append(h_x + h_t - entropy(k_x, k_t, alpha=alpha))
        i_ty.append(h_t + h_y - entropy(k_t, k_y, alpha=alpha))
    return torch.stack(i_xt), torch.stack(i_ty)


class AuthorsStep:
    """One measurement per call, as the authors ran it at every training iteration.

    Args:
        sigma_x: the input width in the authors' convention (fixed, as in the paper).
        alpha: Rényi order.
        dtype: the dtype of every computation (theirs: float32).
        warmup_steps, warmup_candidates, num_candidates, beta: the width rule's schedule.
    """

    def __init__(
        self,
        sigma_x: float,
        alpha: float,
        dtype: torch.dtype = torch.float32,
        *,
        warmup_steps: int = 21,
        warmup_candidates: int = 300,
        num_candidates: int = 100,
        beta: float = 0.9,
    ) -> None:
        self.sigma_x = sigma_x
        self.alpha = alpha
        self.dtype = dtype
        self.warmup_steps = warmup_steps
        self.warmup_candidates = warmup_candidates
        self.num_candidates = num_candidates
        self.beta = beta
        self.steps = 0
        self.sigmas: list[torch.Tensor] | None = None

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, acts: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(I(X;T), I(T;Y))`` per layer, updating the moving averages."""
        num = self.num_candidates if self.steps >= self.warmup_steps else self.warmup_candidates
        k_y = (y[:, None] == y[None, :]).to(self.dtype)
        k_x = gram(distances(x.to(self.dtype)), self.sigma_x)
        d_ts = [distances(t.to(self.dtype)) for t in acts]
        best = [alignment_width(d, k_y, num)[0] for d in d_ts]
        if self.sigmas is None:
            self.sigmas = best
        else:
            self.sigmas = [
                self.beta * s + (1.0 - self.beta) * b
                for s, b in zip(self.sigmas, best, strict=True)
            ]
        self.steps += 1
        k_ts = [gram(d, s) for d, s in zip(d_ts, self.sigmas, strict=True)]
        return mutual_information(k_x, k_ts, k_y, self.alpha)


def at_widths(
    x: torch.Tensor,
    y: torch.Tensor,
    acts: Sequence[torch.Tensor],
    sigma_x: float,
    sigmas: Sequence[float],
    alpha: float,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' entropies at given widths (their convention): the agreement check."""
    k_y = (y[:, None] == y[None, :]).to(dtype)
    k_x = gram(distances(x.to(dtype)), sigma_x)
    k_ts = [gram(distances(t.to(dtype)), s) for t, s in zip(acts, sigmas, strict=True)]
    return mutual_information(k_x, k_ts, k_y, alpha)
