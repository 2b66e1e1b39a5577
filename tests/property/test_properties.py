"""Bounds and invariances of the matrix-based Rényi entropy, searched with hypothesis.

Facts checked (Sanchez Giraldo et al., IEEE TIT 2015; Yu et al., IEEE TPAMI 2019):
0 <= S <= log2 N; invariance to permuting samples and to translating or rotating features;
symmetric MI; max(S(A), S(B)) <= S(A, B) (for unit-diagonal kernels, every alpha), hence
I(A; B) <= min(S(A), S(B)); subadditivity S(A, B) <= S(A) + S(B), hence I >= 0, at alpha = 1
(Rényi entropies of other orders are not subadditive, see tests/unit/test_entropy.py);
continuity in alpha at 1; non-negative total correlation at alpha = 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infoplane

pytestmark = pytest.mark.usefixtures("single_thread")

ROUND_OFF = 1e-9
EPS = float(np.finfo(np.float64).eps)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

alphas = st.one_of(st.sampled_from([0.5, 1.0, 1.01, 2.0, 3.0]), st.floats(0.5, 5.0))


def _tol(alpha, n, delta=0.0):
    """Allowance for two equivalent computations of an entropy whose Grams differ by ``delta``.

    1e-9 for alpha >= 1. Below alpha = 1 an eigenvalue at round-off level (about N eps, e.g.
    from duplicated samples; or ``delta``, by Weyl's inequality) contributes its alpha-th power,
    so two computations may differ by about N max(N eps, delta)^alpha.
    """
    if alpha >= 1:
        return ROUND_OFF + 10 * delta
    return max(ROUND_OFF, n * max(n * EPS, delta) ** alpha)


@st.composite
def problems(draw, max_n=24):
    """A batch: features x [N, D], labels y [N] and a kernel width, from a drawn seed."""
    n = draw(st.integers(2, max_n))
    d = draw(st.integers(1, 10))
    classes = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        x = rng.normal(size=(n, d)) * draw(st.sampled_from([1e-3, 1.0, 1e3]))
    else:  # discrete features: duplicated samples are likely
        x = rng.integers(0, 3, size=(n, d)).astype(np.float64)
    scale = max(float(np.abs(x).max()), 1e-12)
    sigma = draw(st.floats(0.05, 5.0)) * scale * math.sqrt(d)
    y = rng.integers(0, classes, size=n)
    return torch.from_numpy(x), torch.from_numpy(y), sigma, rng


def _grams(x, y, sigma):
    return infoplane.gaussian_gram(x, sigma), infoplane.label_gram(y)


def _random_orthogonal(d, rng):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return torch.from_numpy(q * np.sign(np.diag(r)))


@SETTINGS
@given(problems(), alphas)
def test_entropy_between_zero_and_log2_n(problem, alpha):
    x, y, sigma, _ = problem
    n = x.shape[0]
    tol = _tol(alpha, n)
    for k in _grams(x, y, sigma):
        s = float(infoplane.renyi_entropy(k, alpha))
        assert -tol <= s <= math.log2(n) + tol


@SETTINGS
@given(problems(), alphas)
def test_invariant_to_permuting_samples(problem, alpha):
    x, y, sigma, rng = problem
    perm = torch.from_numpy(rng.permutation(x.shape[0]))
    kt, ky = _grams(x, y, sigma)
    kt_p, ky_p = _grams(x[perm], y[perm], sigma)
    for f in (
        lambda a, b: infoplane.renyi_entropy(a, alpha),
        lambda a, b: infoplane.mutual_information(a, b, alpha=alpha),
        lambda a, b: infoplane.conditional_entropy(a, b, alpha=alpha),
    ):
        assert abs(float(f(kt, ky)) - float(f(kt_p, ky_p))) < 2 * _tol(alpha, x.shape[0])


@SETTINGS
@given(problems(), alphas, st.floats(-1e3, 1e3))
def test_invariant_to_translating_and_rotating_features(problem, alpha, shift):
    x, y, sigma, rng = problem
    d = x.shape[1]
    moved = x @ _random_orthogonal(d, rng) + shift * torch.from_numpy(rng.normal(size=d))
    kt, ky = _grams(x, y, sigma)
    kt_m = infoplane.gaussian_gram(moved, sigma)
    delta = float((kt - kt_m).abs().max())
    assert delta < 1e-8
    tol = 2 * _tol(alpha, x.shape[0], delta)
    s, s_m = infoplane.renyi_entropy(kt, alpha), infoplane.renyi_entropy(kt_m, alpha)
    assert abs(float(s - s_m)) < tol
    mi = infoplane.mutual_information(kt, ky, alpha=alpha)
    mi_m = infoplane.mutual_information(kt_m, ky, alpha=alpha)
    assert abs(float(mi - mi_m)) < tol


@SETTINGS
@given(problems(), problems(), alphas)
def test_mutual_information_is_symmetric_and_below_each_entropy(p1, p2, alpha):
    x, y, sigma, _ = p1
    n = x.shape[0]
    x2, _, sigma2, _ = p2
    kt, ky = _grams(x, y, sigma)
    # a second Gaussian Gram on the same N samples: the other draw's features, cut or tiled
    kt2 = infoplane.gaussian_gram(x2[torch.arange(n) % x2.shape[0]] + 1e-3 * x[:, :1], sigma2)
    tol = 2 * _tol(alpha, n)
    for a, b in ((kt, ky), (kt, kt2), (ky, ky), (kt, kt)):
        s_a = float(infoplane.renyi_entropy(a, alpha))
        s_b = float(infoplane.renyi_entropy(b, alpha))
        s_ab = float(infoplane.joint_entropy(a, b, alpha=alpha))
        i_ab = float(infoplane.mutual_information(a, b, alpha=alpha))
        assert abs(i_ab - float(infoplane.mutual_information(b, a, alpha=alpha))) < tol
        assert max(s_a, s_b) <= s_ab + tol
        assert i_ab <= min(s_a, s_b) + tol


@SETTINGS
@given(problems(), problems())
def test_subadditivity_and_nonnegative_information_at_alpha_one(p1, p2):
    x, y, sigma, _ = p1
    n = x.shape[0]
    x2, y2, sigma2, _ = p2
    kt, ky = _grams(x, y, sigma)
    kt2 = infoplane.gaussian_gram(x2[torch.arange(n) % x2.shape[0]], sigma2)
    ky2 = infoplane.label_gram(y2[torch.arange(n) % y2.shape[0]])
    for a, b in ((kt, ky), (kt, kt2), (ky, ky2), (kt2, ky)):
        s_ab = float(infoplane.joint_entropy(a, b, alpha=1.0))
        s_sum = float(infoplane.renyi_entropy(a, 1.0) + infoplane.renyi_entropy(b, 1.0))
        assert s_ab <= s_sum + ROUND_OFF
        assert float(infoplane.mutual_information(a, b, alpha=1.0)) >= -ROUND_OFF
    tc = float(infoplane.total_correlation(kt, ky, kt2, ky2, alpha=1.0))
    assert tc >= -ROUND_OFF


@SETTINGS
@given(problems(), st.sampled_from([-1e-6, 1e-6]))
def test_continuity_at_alpha_one(problem, delta):
    x, y, sigma, _ = problem
    for k in _grams(x, y, sigma):
        s1 = float(infoplane.renyi_entropy(k, 1.0))
        assert abs(float(infoplane.renyi_entropy(k, 1.0 + delta)) - s1) < 1e-5
    kt, ky = _grams(x, y, sigma)
    mi1 = float(infoplane.mutual_information(kt, ky, alpha=1.0))
    assert abs(float(infoplane.mutual_information(kt, ky, alpha=1.0 + delta)) - mi1) < 1e-5


@SETTINGS
@given(problems(), alphas)
def test_batched_entropy_equals_each_matrix(problem, alpha):
    x, y, sigma, _ = problem
    kt, ky = _grams(x, y, sigma)
    batch = torch.stack([kt, ky, kt * ky])
    s = infoplane.renyi_entropy(batch, alpha)
    for i in range(3):
        assert abs(float(s[i]) - float(infoplane.renyi_entropy(batch[i], alpha))) < 1e-12
