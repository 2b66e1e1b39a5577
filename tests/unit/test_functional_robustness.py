"""Gram matrices stay finite at extreme widths and scales, Grams that are not positive
semi-definite are refused, the label kernel has one home, and the functions are differentiable
(issue cases first; references: the naive float64 oracle and closed forms)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import infoplane
from infoplane.errors import InvalidInputError
from infoplane.functional import kernels
from tests.helpers import reference as ref

pytestmark = pytest.mark.usefixtures("single_thread")


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------------- finite Grams
def test_tiny_width_gives_the_identity_not_nan():
    """Issue case: gaussian_gram(x, 1e-200) had a NaN diagonal (sigma^2 underflowed)."""
    x = _randn(12, 5)
    for sigma in (1e-200, 1e-310, 5e-324):
        k = infoplane.gaussian_gram(x, sigma)
        assert torch.equal(k, torch.eye(12, dtype=torch.float64)), sigma


@pytest.mark.parametrize("scale", [1e160, 1e250, 1e-160, 1e-250, 1e-300])
def test_data_and_width_scaled_together_give_the_same_gram(scale):
    """Issue case: gaussian_gram(x * 1e160, 1e160) returned NaN/Inf (the distances overflowed)."""
    x = _randn(15, 8, seed=1)
    expected = ref.gaussian_gram(x.numpy(), 2.0)
    k = infoplane.gaussian_gram(x * scale, 2.0 * scale)
    assert bool(torch.isfinite(k).all())
    np.testing.assert_allclose(k.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("x_scale", "sigma"), [(1e160, 1.0), (1.0, 1e200), (1e-200, 1.0), (1e-200, 1e-300)]
)
def test_mismatched_extremes_are_finite_and_match_the_closed_form(x_scale, sigma):
    x = _randn(6, 3, seed=2) * x_scale
    k = infoplane.gaussian_gram(x, sigma)
    # exp(-||a - b||^2 / (2 s^2)) with the ratio taken first: exact in float64 at any scale
    r = x.numpy() / sigma if x_scale / sigma < 1e150 else None
    expected = ref.gaussian_gram(r, 1.0) if r is not None else np.eye(6)
    assert bool(torch.isfinite(k).all())
    np.testing.assert_allclose(k.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_the_direct_and_the_scaled_path_agree_at_their_border(monkeypatch):
    x = _randn(20, 30, seed=3) * 3.0
    direct = infoplane.gaussian_gram(x, 1.7)
    monkeypatch.setattr(kernels, "_in_direct_range", lambda *args: False)
    scaled = infoplane.gaussian_gram(x, 1.7)
    np.testing.assert_allclose(scaled.numpy(), direct.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(scaled.numpy(), ref.gaussian_gram(x.numpy(), 1.7), atol=1e-12)


def test_one_product_and_chunks_agree_to_1e12(monkeypatch):
    """Issue 13: one upcast product where it fits, bounded chunks above; same numbers."""
    x = _randn(30, 4, 5, 5, seed=4).float() + 3.0
    whole = infoplane.squared_distances(x)
    monkeypatch.setattr(kernels, "_WHOLE_ELEMENTS", 30 * 20)
    monkeypatch.setattr(kernels, "_CHUNK_ELEMENTS", 30 * 13)  # 13 columns, ragged end
    chunked = infoplane.squared_distances(x)
    scale = float(whole.max())
    np.testing.assert_allclose(chunked.numpy() / scale, whole.numpy() / scale, rtol=0, atol=1e-12)
    np.testing.assert_allclose(whole.numpy(), ref.squared_distances(x.double().numpy()), rtol=1e-10)


# ---------------------------------------------------------------------- PSD check
def test_indefinite_grams_are_refused():
    """Issue case: [[1, 2], [2, 1]] gave -0.877 bits; a random symmetric matrix gave NaN."""
    with pytest.raises(InvalidInputError, match="positive semi-definite"):
        infoplane.renyi_entropy(torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64))
    m = _randn(8, 8, seed=5)
    sym = ((m + m.T) / 2).fill_diagonal_(1.0)  # a random symmetric matrix, unit diagonal
    assert float(torch.linalg.eigvalsh(sym).min()) < 0
    for alpha in (0.5, 1.0, 2.0, 3.0, float("inf")):
        with pytest.raises(InvalidInputError, match="positive semi-definite"):
            infoplane.renyi_entropy(sym, alpha)
        with pytest.raises(InvalidInputError, match="positive semi-definite"):
            infoplane.mutual_information(sym, sym, alpha=alpha)


@pytest.mark.parametrize("alpha", [0.5, 1.01, 2.0])
def test_psd_grams_at_round_off_are_accepted(alpha):
    """Rank-deficient Grams (labels, duplicates) and float32 round-off pass the check."""
    y = torch.arange(30) % 4
    x = _randn(10, 6, seed=6).repeat(3, 1)  # every sample three times
    k32 = infoplane.gaussian_gram(_randn(40, 3, seed=7), 0.5).float()
    near_dup = x + 1e-9 * _randn(30, 6, seed=8)
    for gram in (
        infoplane.label_gram(y),
        infoplane.gaussian_gram(x, 0.3),
        k32,
        infoplane.gaussian_gram(near_dup, 1e-3),
        torch.ones(5, 5),
    ):
        s = infoplane.renyi_entropy(gram, alpha)
        assert bool(torch.isfinite(s)) and float(s) >= -1e-12


def test_the_tolerance_is_relative_to_the_largest_eigenvalue_and_the_dtype():
    """An eigenvalue of -1e-9 lambda_max passes in float64 (below sqrt(eps)), -1e-6 does not,
    unless the Gram came in float32 (N eps32 = 6e-6 at N = 50)."""
    n = 50
    q = torch.linalg.qr(_randn(n, n, seed=9)).Q
    for bump, dtype, ok in (
        (-1e-9, torch.float64, True),
        (-1e-6, torch.float64, False),
        (-1e-6, torch.float32, True),
        (-1e-4, torch.float32, False),
    ):
        lam = torch.full((n,), 1.0, dtype=torch.float64)
        lam[0] = 10.0
        lam[-1] = bump * 10.0
        a = (q * lam) @ q.T
        a = ((a + a.T) / 2).to(dtype)
        if ok:
            assert bool(torch.isfinite(infoplane.renyi_entropy(a, 1.5)))
        else:
            with pytest.raises(InvalidInputError, match="round-off allows"):
                infoplane.renyi_entropy(a, 1.5)
        with pytest.raises(InvalidInputError) if not ok else _no_error():
            infoplane.renyi_entropy(a, 2.0)  # the Cholesky path decides the same way


class _no_error:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------------- label kernel
def test_gaussian_label_kernel_is_the_gaussian_gram_of_one_hot_rows():
    y = torch.tensor([0, 2, 1, 2, 0, 3])
    one_hot = torch.nn.functional.one_hot(y, 5).double()
    for sigma in (0.3, 1.0, 4.0):
        k = infoplane.label_gram(y, 5, sigma=sigma)
        np.testing.assert_allclose(k.numpy(), ref.gaussian_gram(one_hot.numpy(), sigma), atol=1e-15)
        assert k.dtype == torch.float64
        assert torch.equal(infoplane.label_gram(one_hot, sigma=sigma), k)
    assert torch.equal(infoplane.label_gram(y, sigma=1e-3), infoplane.label_gram(y))
    assert torch.equal(infoplane.label_gram(y, sigma=1e-300), infoplane.label_gram(y))
    between = infoplane.label_gram(y, sigma=2.0)[0, 1]
    assert float(between) == math.exp(-0.25)


# ---------------------------------------------------------------------- gradients
def test_requires_grad_inputs_work_and_give_gradients():
    """Issue case: gaussian_gram(torch.randn(6, 3, requires_grad=True), 1.0) raised a raw
    autograd error."""
    x = torch.randn(6, 3, requires_grad=True)
    k = infoplane.gaussian_gram(x, 1.0)
    assert k.requires_grad
    infoplane.renyi_entropy(k).backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    with torch.no_grad():
        assert not infoplane.gaussian_gram(x, 1.0).requires_grad


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.01, 2.0, 3.0])
def test_entropy_of_a_gaussian_gram_passes_gradcheck(alpha):
    x = _randn(6, 3, seed=10).requires_grad_()

    def entropy(x):
        return infoplane.renyi_entropy(infoplane.gaussian_gram(x, 1.3), alpha)

    assert torch.autograd.gradcheck(entropy, (x,), eps=1e-6, atol=1e-7)


def test_mutual_information_and_chunked_distances_pass_gradcheck(monkeypatch):
    monkeypatch.setattr(kernels, "_WHOLE_ELEMENTS", 10)
    monkeypatch.setattr(kernels, "_CHUNK_ELEMENTS", 10)  # two columns per chunk
    x, t = _randn(7, 4, seed=11).requires_grad_(), _randn(7, 5, seed=12).requires_grad_()
    ky = infoplane.label_gram(torch.tensor([0, 1, 0, 2, 1, 1, 0]))

    def information(x, t):
        kx, kt = infoplane.gaussian_gram(x, 2.0), infoplane.gaussian_gram(t, 1.5)
        return infoplane.mutual_information(kx, kt) + infoplane.mutual_information(kt, ky)

    assert torch.autograd.gradcheck(information, (x, t), eps=1e-6, atol=1e-7)
