"""The authors' algorithm of the benchmarks: each part against an independent computation, and
the whole against ``InformationPlane.measure`` (this check used to live inside the benchmark)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks import authors, bench_step
from infoplane import InformationPlane
from infoplane.experiments.models import MLP

pytestmark = pytest.mark.usefixtures("single_thread")


def _data(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn((3, d), generator=g, dtype=torch.float64)[y] + torch.randn(
        (n, d), generator=g, dtype=torch.float64
    )
    return x, y


def test_distances_are_the_euclidean_distances_of_flattened_samples():
    x, _ = _data(9, 12, seed=1)
    t = x.reshape(9, 3, 2, 2)
    naive = np.array([[np.linalg.norm(a - b) for b in x.numpy()] for a in x.numpy()])
    np.testing.assert_allclose(authors.distances(t).numpy(), naive, rtol=1e-12, atol=1e-12)


def test_entropy_closed_forms():
    n = 8
    eye = torch.eye(n, dtype=torch.float64)
    assert float(authors.entropy(eye, alpha=1.01)) == pytest.approx(math.log2(n), rel=1e-12)
    assert float(authors.entropy(eye, alpha=1.0)) == pytest.approx(math.log2(n), rel=1e-12)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    indicator = (y[:, None] == y[None, :]).double()
    p = np.array([3, 2, 3]) / 8
    for alpha in (1.01, 2.0, 3.0):
        plug_in = math.log2(np.sum(p**alpha)) / (1 - alpha)
        assert float(authors.entropy(indicator, alpha=alpha)) == pytest.approx(plug_in, rel=1e-12)
    # the Hadamard product of two indicator kernels is the kernel of the pair
    z = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    joint = authors.entropy(indicator, (z[:, None] == z[None, :]).double(), alpha=1.0)
    counts = np.unique(np.stack([y.numpy(), z.numpy()]), axis=1, return_counts=True)[1]
    q = counts / 8
    assert float(joint) == pytest.approx(-np.sum(q * np.log2(q)), rel=1e-12)


@pytest.mark.parametrize("num", [5, 100, 300])
def test_alignment_width_is_the_first_maximum_of_the_frobenius_alignment(num):
    x, y = _data(30, 6, seed=num)
    d = authors.distances(x)
    k_y = (y[:, None] == y[None, :]).double()
    sigma, index = authors.alignment_width(d, k_y, num)
    dn, kyn = d.numpy(), k_y.numpy()
    grid = np.linspace(0.3, 10.0 * dn.mean(), num)  # the mean over all N^2 entries
    scores = []
    for s in grid:
        k = np.exp(-(dn**2) / s**2)
        scores.append(np.sum(k * kyn) / (np.linalg.norm(k) * np.linalg.norm(kyn)))
    assert index == int(np.argmax(scores))
    assert float(sigma) == pytest.approx(grid[index], rel=1e-12)


def test_step_keeps_the_moving_average_of_the_chosen_widths():
    x, y = _data(20, 5, seed=3)
    acts = [x[:, :3] * 2.0, torch.tanh(x)]
    step = authors.AuthorsStep(4.0, 1.01, torch.float64, warmup_steps=1)
    step(x, y, acts)
    first = [float(s) for s in step.sigmas]
    x2 = x + 0.5
    step(x2, y, [x2[:, :3] * 2.0, torch.tanh(x2)])
    k_y = (y[:, None] == y[None, :]).double()
    best = [float(authors.alignment_width(authors.distances(t), k_y, 100)[0]) for t in
            [x2[:, :3] * 2.0, torch.tanh(x2)]]  # fmt: skip
    expected = [0.9 * a + 0.1 * b for a, b in zip(first, best, strict=True)]
    np.testing.assert_allclose([float(s) for s in step.sigmas], expected, rtol=1e-12)


def test_authors_algorithm_at_measures_widths_gives_measures_numbers():
    torch.manual_seed(0)
    model = MLP(in_features=16, hidden=(12, 6)).eval()
    x, y = _data(40, 16, seed=5)
    x = x.float()
    sigma_x = bench_step.median_distance(x)
    plane = InformationPlane(model, x_width=sigma_x)
    for step in range(3):
        result = plane.measure(x, y, step=step)
    tensors = bench_step.captured(plane, x)
    agree = bench_step.agreement(result, x, y, tensors, sigma_x, plane.alpha)
    assert agree["authors f64 vs measure, bits"] <= 1e-10
    assert agree["authors f32 vs measure, bits"] <= 1e-2  # float32 eigenvalues
