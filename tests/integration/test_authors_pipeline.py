"""The tracker with the paper's settings reproduces the authors' per-step pipeline over a run.

A small version of the paper's MLP (Linear → tanh → BatchNorm blocks, measured after the
BatchNorm, the authors' initialisation) is trained with SGD for 26 iterations, across the end of
the 21-iteration warm-up grid. After every update the tracker measures the batch just used with
``width="authors"``, ``x_width=8/√2`` and α = 1, and an independent naive port of the authors'
pipeline (``tests/helpers/authors.py``: their grid, search, moving average, kernel convention and
von Neumann entropy, in numpy float64) measures the same activations. They agree to 1e-6 bits at
every iteration, for every layer.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infoplane import InformationPlane
from infoplane.capture import capture, eval_mode
from infoplane.experiments.models import build_model
from tests.helpers.authors import TheirLayerWidth, their_gram, their_mi

pytestmark = pytest.mark.slow
ITERATIONS = 26  # iterations 0..20 on the 300-candidate grid, then 100
TOL_BITS = 1e-6


def test_tracker_reproduces_the_authors_pipeline_over_a_training_run() -> None:
    torch.manual_seed(0)
    model = build_model(
        "mlp",
        init="authors",
        activation="tanh",
        measure="block",
        in_features=30,
        hidden=(24, 12, 8),
        num_classes=4,
    ).double()
    layers = list(model.measured_layers)
    plane = InformationPlane(
        model,
        alpha=1.0,
        width="authors",
        x_width=8 / math.sqrt(2),
        include_output=False,
        controls=(),
    )
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(4, 30, generator=g, dtype=torch.float64) * 0.3
    theirs = {name: TheirLayerWidth() for name in layers}
    opt = torch.optim.SGD(model.parameters(), lr=0.09)
    worst = 0.0
    for iteration in range(ITERATIONS):
        y = torch.randint(0, 4, (60,), generator=g)
        x = centres[y] + 0.2 * torch.rand(60, 30, generator=g, dtype=torch.float64)
        model.train()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        ours = plane.measure(x, y, step=iteration)
        with eval_mode(model), torch.no_grad(), capture(model, layers) as acts:
            model(x)
        k_x = their_gram(x.numpy(), 8.0)
        k_y = (y.numpy()[:, None] == y.numpy()[None, :]).astype(np.float64)
        for name in layers:
            t = acts[name].numpy()
            sigma = theirs[name].update(t, y.numpy())
            k_t = their_gram(t, sigma)
            assert ours[name]["sigma"] == pytest.approx(sigma / math.sqrt(2), rel=1e-9)
            for key, want in (("i_xt", their_mi(k_x, k_t)), ("i_ty", their_mi(k_t, k_y))):
                worst = max(worst, abs(ours[name][key] - want))
                assert abs(ours[name][key] - want) < TOL_BITS, (iteration, name, key)
    assert worst < TOL_BITS
