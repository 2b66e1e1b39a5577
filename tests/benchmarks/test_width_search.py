"""The tracker's width search finds the grid point of the full search (formerly asserted inside
the step benchmark): the library's ``alignment_sigma`` against every candidate evaluated here in
float64 numpy, on random problems of many shapes, class counts and ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import infoplane
from infoplane import widths

pytestmark = pytest.mark.usefixtures("single_thread")


def _full_search(x: np.ndarray, y_gram: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Alignment of every candidate: <K, K_Y>_F / (||K||_F ||K_Y||_F), K of width sigma."""
    d2 = np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    scores = []
    for s in grid:
        k = np.exp(-d2 / (2.0 * s * s))
        scores.append(np.sum(k * y_gram) / (np.linalg.norm(k) * np.linalg.norm(y_gram)))
    return np.array(scores)


def _problem(trial: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    n = int(torch.randint(3, 60, (1,), generator=gen))
    dim = int(torch.randint(1, 40, (1,), generator=gen))
    classes = int(torch.randint(1, 8, (1,), generator=gen))
    y = torch.randint(0, classes, (n,), generator=gen)
    scale = 4.0 * float(torch.rand(1, generator=gen))
    x = scale * torch.randn(classes, dim, generator=gen, dtype=torch.float64)[y]
    x = x + torch.randn(n, dim, generator=gen, dtype=torch.float64)
    if trial % 3 == 0:
        x = x.clamp(min=0.0)
    if trial % 7 == 0:
        x = x.round()  # repeated distances: ties between candidates
    return x, y


@pytest.mark.parametrize("num", [1, 2, 16, 17, 100, 300])
def test_width_search_picks_the_full_searchs_grid_point(num):
    gen = torch.Generator().manual_seed(num)
    mismatches = []
    for trial in range(150):
        x, y = _problem(trial, gen)
        y_gram = infoplane.label_gram(y)
        grid = widths.candidate_grid(infoplane.squared_distances(x), num).numpy()
        scores = _full_search(x.numpy(), y_gram.numpy(), grid)
        # the first maximum up to rounding (ties go to the smallest width)
        best = int(np.argmax(scores >= scores.max() * (1.0 - 1e-12)))
        got = float(widths.alignment_sigma(x, y_gram, num_candidates=num))
        if not np.isclose(got, grid[best], rtol=1e-12, atol=0.0):
            mismatches.append((trial, got, grid[best]))
    assert mismatches == []
