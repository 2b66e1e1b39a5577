"""Rényi entropies of every order, exact to float64 precision (issue cases first).

Each value is checked against the textbook formula evaluated in 60-digit arithmetic (mpmath) on
the same float64 eigenvalues, so the test measures the library's formula, not the eigensolver.
Orders near 1 must approach the von Neumann entropy smoothly; large orders tend to the
min-entropy ``-log2 lambda_max``, which ``alpha = inf`` returns (Rényi, 1961; Sanchez Giraldo
et al., IEEE TIT 2015).
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch

import infoplane
from infoplane.errors import InvalidParameterError
from infoplane.functional import measures
from infoplane.functional.approx import AUTO_EXACT_MAX_N, approx_renyi_entropy
from infoplane.functional.spectrum import entropy_from_eigenvalues
from tests.helpers import reference as ref

pytestmark = pytest.mark.usefixtures("single_thread")

INF = float("inf")
NEAR_ONE = [1 - 1e-4, 1 - 1e-9, 1 + 1e-9, 1 + 1e-4]
ORDERS = [0.1, 0.5, *NEAR_ONE, 1.01, 1.5, 2.5, 3.0, 10.0, 30.0, 100.0, 1e3, 1e6, INF]


def _randn(n, d, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _kept_eigenvalues(gram):
    """The eigenvalues the library uses: of the normalized Gram, round-off level ones zeroed."""
    lam = torch.linalg.eigvalsh(infoplane.normalize_gram(gram)).clamp_min(0.0)
    return torch.where(lam > lam.max() * lam.numel() * torch.finfo(lam.dtype).eps, lam, 0.0)


def _rel(got, expected):
    return abs(float(got) - expected) / max(abs(expected), 1e-300)


# ---------------------------------------------------------------------- the cases
@pytest.mark.parametrize("alpha", [10.0, 30.0])
def test_large_orders_of_a_gaussian_gram_are_exact(alpha):
    """Issue case: N = 100, D = 10, sigma = 1 gave 5.889 (alpha 10) and 1.83 (alpha 30) bits
    where the eigenvalues give about 6.2 and 5.8: log1p(sum lambda^alpha - 1) cancelled."""
    k = infoplane.gaussian_gram(_randn(100, 10), 1.0)
    expected = ref.renyi_of_eigenvalues_mp(_kept_eigenvalues(k).numpy(), alpha)
    assert expected > 5.0
    assert _rel(infoplane.renyi_entropy(k, alpha), expected) < 1e-13


@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("alpha", [30.0, 100.0, 1e3, 1e6])
def test_large_orders_at_small_n_are_finite_and_exact(n, alpha):
    """Issue case: small N gave NaN or inf at large orders."""
    k = infoplane.gaussian_gram(_randn(n, 3, seed=n), 1.0)
    s = infoplane.renyi_entropy(k, alpha)
    assert bool(torch.isfinite(s))
    assert _rel(s, ref.renyi_of_eigenvalues_mp(_kept_eigenvalues(k).numpy(), alpha)) < 1e-13


def test_order_one_million_is_the_min_entropy_and_inf_is_exact():
    """Issue case: alpha = 1e6 returned inf/NaN instead of about -log2 lambda_max."""
    k = infoplane.gaussian_gram(_randn(50, 4, seed=1), 1.0)
    lam = _kept_eigenvalues(k)
    min_entropy = -math.log2(float(lam.max() / lam.sum()))
    s_inf = float(infoplane.renyi_entropy(k, INF))
    assert abs(s_inf - min_entropy) < 1e-14
    # S_a - S_inf = -log2(sum_i mu_i (mu_i / mu_max)^(a - 1)) / (a - 1) in [0, log2 N / (a - 1)]
    s_big = float(infoplane.renyi_entropy(k, 1e6))
    assert 0.0 <= s_big - s_inf <= math.log2(50) / (1e6 - 1)
    assert _rel(s_big, ref.renyi_of_eigenvalues_mp(lam.numpy(), 1e6)) < 1e-13


# ---------------------------------------------------------------------- every order
SPECTRA = {
    "gaussian": lambda: _kept_eigenvalues(infoplane.gaussian_gram(_randn(60, 5, seed=2), 1.5)),
    "fast-decay": lambda: _kept_eigenvalues(infoplane.gaussian_gram(_randn(40, 1, seed=3), 2.0)),
    "power-law": lambda: torch.arange(1, 301, dtype=torch.float64).pow(-2.0),
    "two-level": lambda: torch.tensor([0.5] + [0.5 / 999] * 999, dtype=torch.float64),
    "flat": lambda: torch.full((64,), 1.0 / 64, dtype=torch.float64),
}


@pytest.mark.parametrize("alpha", ORDERS)
@pytest.mark.parametrize("name", sorted(SPECTRA))
def test_entropy_of_a_spectrum_matches_60_digit_reference(name, alpha):
    lam = SPECTRA[name]()
    lam = lam / lam.sum()
    got = entropy_from_eigenvalues(lam, alpha)
    assert got.dtype == torch.float64
    assert _rel(got, ref.renyi_of_eigenvalues_mp(lam.numpy(), alpha)) < 2e-14


@pytest.mark.parametrize("alpha", NEAR_ONE)
def test_orders_near_one_match_reference_through_the_public_function(alpha):
    k = infoplane.gaussian_gram(_randn(80, 6, seed=4), 2.0)
    expected = ref.renyi_of_eigenvalues_mp(_kept_eigenvalues(k).numpy(), alpha)
    assert _rel(infoplane.renyi_entropy(k, alpha), expected) < 1e-13


@pytest.mark.parametrize("name", sorted(SPECTRA))
def test_continuity_through_alpha_one(name):
    """S_alpha is smooth at 1: both sides tend to the von Neumann value, steps scale with delta."""
    lam = SPECTRA[name]()
    lam = lam / lam.sum()  # trace one, as the function expects
    s1 = float(entropy_from_eigenvalues(lam, 1.0))
    for delta in (1e-4, 1e-9):
        below = float(entropy_from_eigenvalues(lam, 1.0 - delta))
        above = float(entropy_from_eigenvalues(lam, 1.0 + delta))
        assert below >= s1 - 1e-14 >= above - 2e-14  # non-increasing in alpha
        assert abs(below - s1) < 1e3 * delta + 1e-13 and abs(above - s1) < 1e3 * delta + 1e-13
    # the steps are linear in delta up to O(delta^2) (no 1 / delta amplification of round-off,
    # which would show as ~1e-16 / 1e-9 = 1e-7 bits at delta = 1e-9)
    step_4 = s1 - float(entropy_from_eigenvalues(lam, 1.0 + 1e-4))
    step_9 = s1 - float(entropy_from_eigenvalues(lam, 1.0 + 1e-9))
    assert abs(step_9 - 1e-5 * step_4) < 1e-3 * abs(step_9) + 1e-14


@pytest.mark.parametrize("seed", range(3))
def test_entropy_is_non_increasing_in_the_order(seed):
    k = infoplane.gaussian_gram(_randn(30, 3, seed=seed), 0.8)
    values = [float(infoplane.renyi_entropy(k, a)) for a in ORDERS]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(values)), values
    assert 0.0 <= values[-1] <= values[0] <= math.log2(30) + 1e-12


@pytest.mark.parametrize("alpha", [10.0, 1e6, INF])
def test_plugin_entropy_of_labels_at_large_orders(alpha):
    y = torch.tensor([0] * 7 + [1] * 3 + [2] * 2)
    s = infoplane.renyi_entropy(infoplane.label_gram(y), alpha)
    assert _rel(s, ref.renyi_of_eigenvalues_mp(np.array([7.0, 3.0, 2.0]), alpha)) < 1e-13
    if math.isinf(alpha):
        assert float(s) == pytest.approx(-math.log2(7 / 12), abs=1e-15)


def test_joint_measures_accept_the_min_entropy_order():
    kx = infoplane.gaussian_gram(_randn(25, 4, seed=5), 1.0)
    ky = infoplane.label_gram(torch.arange(25) % 3)
    mi = infoplane.mutual_information(kx, ky, alpha=INF)
    s = [float(infoplane.renyi_entropy(g, INF)) for g in (kx, ky)]
    joint = float(infoplane.joint_entropy(kx, ky, alpha=INF))
    assert float(mi) == pytest.approx(s[0] + s[1] - joint, abs=1e-12)
    assert float(infoplane.total_correlation(kx, ky, alpha=INF)) == pytest.approx(float(mi))


@pytest.mark.parametrize("alpha", [10.0, 1e6])
def test_tracker_maths_at_large_orders_equals_the_functions(alpha):
    """Issue case: '--alpha 10' passed validation, then the run recorded -inf values."""
    x, t = _randn(40, 6, seed=6), torch.tanh(_randn(40, 6, seed=7))
    y = torch.arange(40) % 4
    k_x, k_t = infoplane.gaussian_gram(x, 2.0), infoplane.gaussian_gram(t, 1.0)
    out = measures.plane_step(k_x, k_t[None], y, alpha)
    k_y = infoplane.label_gram(y)
    assert all(bool(torch.isfinite(v).all()) for v in out.values())
    assert float(out["h_t"][0]) == pytest.approx(
        float(infoplane.renyi_entropy(k_t, alpha)), abs=1e-12
    )
    i_xt = infoplane.mutual_information(k_x, k_t, alpha=alpha)
    i_ty = infoplane.mutual_information(k_t, k_y, alpha=alpha)
    assert float(out["i_xt"][0]) == pytest.approx(float(i_xt), abs=1e-12)
    assert float(out["i_ty"][0]) == pytest.approx(float(i_ty), abs=1e-12)


# ---------------------------------------------------------------------- randomized estimator
def test_randomized_estimate_is_right_at_large_orders():
    """Issue case: the estimator returned 0.001 +- 0 for an exact 2.97 bits at alpha = 1e6."""
    g = torch.Generator().manual_seed(8)
    centers = 3.0 * torch.randn(6, 20, generator=g, dtype=torch.float64)
    x = centers[torch.randint(0, 6, (700,), generator=g)]
    x = x + torch.randn(700, 20, generator=g, dtype=torch.float64)
    a = infoplane.normalize_gram(infoplane.gaussian_gram(x, 6.0))
    for alpha in (10.0, 100.0, 1e6):
        exact = float(infoplane.renyi_entropy(a, alpha))
        value, error = approx_renyi_entropy(a, alpha, return_error=True)
        assert abs(float(value) - exact) <= 3.0 * float(error) + 1e-9 * exact, alpha
        assert abs(float(value) - exact) < 1e-3 * exact


def test_randomized_estimator_rejects_the_min_entropy_order_and_auto_is_exact():
    a = torch.eye(AUTO_EXACT_MAX_N + 1, dtype=torch.float64)
    with pytest.raises(InvalidParameterError, match=r"^approx_renyi_entropy: expected alpha"):
        approx_renyi_entropy(a / a.shape[0], INF)
    with pytest.raises(InvalidParameterError, match=r"^renyi_entropy: expected alpha"):
        infoplane.renyi_entropy(a, INF, method="approx")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ApproximationWarning: the exact path was taken
        s = infoplane.renyi_entropy(a, INF, method="auto")
    assert float(s) == pytest.approx(math.log2(a.shape[0]), abs=1e-12)
