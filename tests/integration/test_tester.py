"""Every path of one measurement agrees: class, functional API, naive reference, two processes."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.tester import MeasurementTester


def batch(seed: int = 0, n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g, dtype=torch.float64), torch.arange(n) % 3


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.01, 2.0, 3.0])
@pytest.mark.parametrize("width", ["alignment", "median", 0.7])
def test_class_functional_and_reference_agree(alpha: float, width) -> None:
    x, y = batch()
    MeasurementTester(
        "tests.helpers.tester:tiny_mlp", x, y, alpha=alpha, x_width=2.0, width=width
    ).check()


@pytest.mark.slow
def test_two_gloo_processes_agree_with_one(tmp_path) -> None:
    x, y = batch(1, n=30)
    tester = MeasurementTester("tests.helpers.tester:tiny_mlp", x, y, alpha=1.0, x_width=1.5)
    tester.check(tmp_path, distributed=True)
