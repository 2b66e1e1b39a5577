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
    perm_x = torch.randperm(n, generator=g)
    perm_y = torch.randperm(n, generator=g)
    return k_x, k_t, y, (perm_x, perm_y), (k_xf, k_tf)


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
    if "null" in controls:
        px, py = null
        o = plane_step(k_x[px][:, px], k_t, y[py], alpha)
        want["i_xt_null"], want["i_ty_null"] = o["i_xt"], o["i_ty"]
    if "fixed" in controls:
        o = plane_step(fixed[0], fixed[1], y, alpha)
        want["i_xt_fixed"], want["i_ty_fixed"] = o["i_xt"], o["i_ty"]
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
