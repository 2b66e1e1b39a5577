"""The estimate and its controls in one eigenvalue batch equal three separate computations."""

from __future__ import annotations

import pytest
import torch

from infoplane import gaussian_gram
from infoplane.functional.measures import plane_step, plane_step_with_controls


def grams(seed: int, n: int = 40, layers: int = 3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g, dtype=torch.float64)
    ts = [torch.randn(n, 4, generator=g, dtype=torch.float64) + x[:, :4] * k for k in range(layers)]
    y = torch.randint(0, 4, (n,), generator=g)
    k_x = gaussian_gram(x, 1.5)
    k_t = torch.stack([gaussian_gram(t, 0.8 + 0.3 * i) for i, t in enumerate(ts)])
    k_xf = gaussian_gram(x, 2.5)
    k_tf = torch.stack([gaussian_gram(t, 1.1) for t in ts])
    perms_x = torch.stack([torch.randperm(n, generator=g) for _ in range(5)])
    perms_y = torch.stack([torch.randperm(n, generator=g) for _ in range(5)])
    return k_x, k_t, y, (perms_x, perms_y), (k_xf, k_tf)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.01, 2.0, 3.0])
@pytest.mark.parametrize("controls", [(), ("null",), ("fixed",), ("null", "fixed")])
def test_one_batch_equals_separate_plane_steps(alpha: float, controls: tuple) -> None:
    k_x, k_t, y, null, fixed = grams(int(alpha * 100))
    got = plane_step_with_controls(
        k_x,
        k_t,
        y,
        alpha,
        null=null if "null" in controls else None,
        fixed=fixed if "fixed" in controls else None,
    )
    want = plane_step(k_x, k_t, y, alpha)
    if "null" in controls:  # each of the B draws on its own, stacked as [L, B]
        draws = [
            plane_step(k_x[px][:, px], k_t, y[py], alpha) for px, py in zip(*null, strict=True)
        ]
        want["i_xt_draws"] = torch.stack([o["i_xt"] for o in draws], dim=1)
        want["i_ty_draws"] = torch.stack([o["i_ty"] for o in draws], dim=1)
    if "fixed" in controls:
        o = plane_step(fixed[0], fixed[1], y, alpha)
        want["i_xt_fixed"], want["i_ty_fixed"] = o["i_xt"], o["i_ty"]
        want["h_t_fixed"] = o["h_t"]
    assert set(got) == set(want)
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=1e-12, msg=key)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.01, 2.0, 3.0])
def test_fixed_control_sharing_the_input_gram(alpha: float) -> None:
    """``fixed=(None, k_t_fixed)`` (the input held at the estimate's width): the control is
    that of ``k_x`` itself with the held layer Grams, beside the null floor as well."""
    k_x, k_t, y, null, (_, k_tf) = grams(7 + int(alpha * 10))
    got = plane_step_with_controls(k_x, k_t, y, alpha, null=null, fixed=(None, k_tf))
    want = plane_step_with_controls(k_x, k_t, y, alpha, null=null, fixed=(k_x, k_tf))
    separate = plane_step(k_x, k_tf, y, alpha)
    assert set(got) == set(want)
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=1e-12, msg=key)
    torch.testing.assert_close(got["i_xt_fixed"], separate["i_xt"], rtol=0, atol=1e-12)
    torch.testing.assert_close(got["i_ty_fixed"], separate["i_ty"], rtol=0, atol=1e-12)


def test_null_draws_are_chunked_without_changing_them(monkeypatch) -> None:
    """A memory budget of one draw per chunk gives the same draws as one batch."""
    from infoplane.functional import measures

    k_x, k_t, y, null, _ = grams(11)
    whole = plane_step_with_controls(k_x, k_t, y, 1.01, null=null)
    monkeypatch.setattr(measures, "NULL_CHUNK_BYTES", 1)
    chunked = plane_step_with_controls(k_x, k_t, y, 1.01, null=null)
    for key in ("i_xt_draws", "i_ty_draws"):
        torch.testing.assert_close(chunked[key], whole[key], rtol=0, atol=1e-12)


def test_null_summary_against_numpy() -> None:
    import numpy as np

    from infoplane.functional.measures import null_summary

    g = torch.Generator().manual_seed(3)
    draws = torch.randn(4, 19, generator=g, dtype=torch.float64)
    estimate = torch.tensor([-5.0, 0.0, 0.3, 5.0], dtype=torch.float64)
    estimate[1] = draws[1, 7]  # a tie counts as a draw at least as large
    mean, q95, p = null_summary(estimate, draws)
    d = draws.numpy()
    np.testing.assert_allclose(mean.numpy(), d.mean(axis=1), rtol=0, atol=1e-15)
    np.testing.assert_allclose(q95.numpy(), np.quantile(d, 0.95, axis=1), rtol=0, atol=1e-15)
    want = (1 + (d >= estimate.numpy()[:, None]).sum(axis=1)) / 20
    np.testing.assert_array_equal(p.numpy(), want)
    assert p[0] == 1.0 and p[3] == 1 / 20


def test_saturation_flags_the_identity_and_the_all_ones_gram() -> None:
    from infoplane.functional.measures import saturated

    n = 30
    eye = torch.eye(n, dtype=torch.float64)
    ones = torch.ones(n, n, dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    k = gaussian_gram(torch.randn(n, 3, generator=g, dtype=torch.float64), 1.0)
    h = torch.tensor([4.9069, 0.0, 3.5], dtype=torch.float64)  # log2 30, 0, in between
    flags = saturated(h, torch.stack([eye, ones, k]))
    assert flags.tolist() == [1.0, 1.0, 0.0]
