"""Randomized Rényi entropy (infoplane.functional.approx) against exact float64 eigenvalues."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from infoplane.errors import (
    InfoPlaneError,
    InvalidInputError,
    InvalidParameterError,
    InvalidTypeError,
)
from infoplane.functional import approx
from infoplane.functional.approx import (
    AUTO_EXACT_MAX_N,
    ApproximationWarning,
    approx_renyi_entropy,
    exact_threshold,
)

ALPHAS = (0.5, 1.0, 1.01, 2.0, 3.0)
# |estimate - exact| <= ERROR_FACTOR * error estimate (+ round-off) on every spectrum below.
ERROR_FACTOR = 3.0


def entropy_from_eigenvalues(lam: torch.Tensor, alpha: float) -> float:
    lam = lam.clamp_min(0.0)
    lam = lam / lam.sum()
    lam = lam[lam > lam.max() * lam.numel() * torch.finfo(torch.float64).eps]
    if alpha == 1.0:
        return float(-(lam * lam.log2()).sum())
    return float(torch.log2(lam.pow(alpha).sum()) / (1.0 - alpha))


def exact_entropy(a: torch.Tensor, alpha: float) -> float:
    return entropy_from_eigenvalues(torch.linalg.eigvalsh(a.double()), alpha)


def clustered_gram(n: int, sigma_scale: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Normalized Gaussian Gram of a 6-cluster mixture in 20 dims, sigma from the median."""
    g = torch.Generator().manual_seed(seed)
    centers = 3.0 * torch.randn(6, 20, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 6, (n,), generator=g)
    x = centers[labels] + torch.randn(n, 20, generator=g, dtype=torch.float64)
    d2 = torch.cdist(x, x).square()
    sigma = sigma_scale * d2[torch.triu_indices(n, n, 1).unbind()].median().sqrt()
    return torch.exp(-d2 / (2.0 * sigma**2)) / n


def known_spectrum(lam: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``Q diag(lam) Q^T / sum(lam)`` with a random orthogonal ``Q``."""
    n = lam.numel()
    g = torch.Generator().manual_seed(seed)
    q = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64)).Q
    lam = lam.double() / lam.sum()
    a = (q * lam) @ q.T
    return 0.5 * (a + a.T)


def power_law(n: int) -> torch.Tensor:
    return torch.arange(1, n + 1, dtype=torch.float64).pow(-1.5) + 1e-3


SPECTRA = {
    "gauss_median_sigma": lambda: clustered_gram(1000),
    "gauss_quarter_sigma": lambda: clustered_gram(1000, sigma_scale=0.25),
    "known_power_law": lambda: known_spectrum(power_law(800)),
    "near_identity": lambda: torch.eye(700, dtype=torch.float64) / 700,
}


@pytest.fixture(scope="module")
def grams() -> dict[str, torch.Tensor]:
    return {name: make() for name, make in SPECTRA.items()}


@pytest.fixture(scope="module")
def eigenvalues(grams) -> dict[str, torch.Tensor]:
    return {name: torch.linalg.eigvalsh(a) for name, a in grams.items()}


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("name", list(SPECTRA))
def test_matches_exact_within_error_estimate(grams, eigenvalues, name, alpha):
    a = grams[name]
    exact = entropy_from_eigenvalues(eigenvalues[name], alpha)
    value, error = approx_renyi_entropy(a, alpha, return_error=True)
    assert value.dtype == torch.float64 and value.dim() == 0
    assert error.dtype == torch.float64 and float(error) >= 0.0
    diff = abs(float(value) - exact)
    assert diff <= ERROR_FACTOR * float(error) + 1e-9 * max(1.0, exact), (diff, float(error))
    assert diff / exact < (0.02 if alpha < 1.0 else 0.01)


def test_near_identity_is_log2_n():
    n = 900
    a = torch.eye(n, dtype=torch.float64) / n
    for alpha in ALPHAS:
        assert float(approx_renyi_entropy(a, alpha)) == pytest.approx(math.log2(n), abs=1e-9)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_rank_one_is_zero(alpha):
    n = 800
    a = torch.full((n, n), 1.0 / n, dtype=torch.float64)
    value, error = approx_renyi_entropy(a, alpha, return_error=True)
    assert 0.0 <= float(value) < 1e-6
    assert math.isfinite(float(error))


def test_alpha_two_is_the_exact_frobenius_form(grams):
    a = grams["gauss_median_sigma"]
    value, error = approx_renyi_entropy(a, 2.0, return_error=True)
    assert float(value) == pytest.approx(float(-torch.log2(a.square().sum())), abs=1e-12)
    assert float(error) == 0.0


def test_continuity_through_alpha_one(grams, eigenvalues):
    a = grams["gauss_quarter_sigma"]
    s1, e1 = approx_renyi_entropy(a, 1.0, return_error=True)
    s1001, e1001 = approx_renyi_entropy(a, 1.001, return_error=True)
    s101, e101 = approx_renyi_entropy(a, 1.01, return_error=True)
    # Rényi entropy does not increase with alpha, and the steps scale with (alpha - 1).
    assert float(s1) >= float(s1001) >= float(s101)
    step_small = float(s1) - float(s1001)
    step_large = float(s1) - float(s101)
    assert step_small == pytest.approx(0.1 * step_large, rel=0.1)
    # The error estimate is not amplified by 1 / (1 - alpha).
    assert float(e1001) < 1.5 * float(e1) and float(e101) < 1.5 * float(e1)
    for alpha, value in ((1.001, s1001), (1.01, s101)):
        exact = entropy_from_eigenvalues(eigenvalues["gauss_quarter_sigma"], alpha)
        assert abs(float(value) - exact) / exact < 0.005


@pytest.mark.parametrize("alpha", (0.5, 1.0, 1.01, 3.0))
@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.full((300, 300), 1.0 / 300, dtype=torch.float64),  # rank one
        lambda: known_spectrum(torch.tensor([3.0, 1.0] + [0.0] * 398)),  # rank two
        lambda: known_spectrum(torch.tensor([1.0] * 3 + [0.0] * 497)),  # rank three, flat
        lambda: known_spectrum(torch.tensor([1.0] + [1e-14] * 299)),  # round-off tail
        lambda: torch.tensor([[0.5, 0.5], [0.5, 0.5]], dtype=torch.float64),  # N = 2, rank one
        lambda: torch.eye(2, dtype=torch.float64) / 2,  # N = 2, flat
        lambda: torch.eye(3, dtype=torch.float64) / 3,  # N = 3, flat
    ],
    ids=["rank1", "rank2", "rank3", "tiny_tail", "n2_rank1", "n2_flat", "n3_flat"],
)
@pytest.mark.parametrize("rank", [0, 100])
def test_degenerate_spectra_never_negative_or_nan(make, alpha, rank):
    a = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, error = approx_renyi_entropy(a, alpha, rank=rank, return_error=True)
    v = float(value)
    assert math.isfinite(v) and math.isfinite(float(error))
    assert 0.0 <= v <= math.log2(a.shape[0])
    assert abs(v - exact_entropy(a, alpha)) < 1e-3 * max(1.0, v) + 3.0 * float(error)


def test_same_seed_is_bit_identical(grams):
    a = grams["gauss_quarter_sigma"]
    first = approx_renyi_entropy(a, 1.01, seed=7, return_error=True)
    second = approx_renyi_entropy(a, 1.01, seed=7, return_error=True)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    other = approx_renyi_entropy(a, 1.01, seed=8)
    assert not torch.equal(first[0], other)
    gen = torch.Generator().manual_seed(7)
    assert torch.equal(approx_renyi_entropy(a, 1.01, generator=gen), first[0])


def test_error_estimate_shrinks_with_more_probes():
    # Five distinct eigenvalues: Lanczos is exact after five steps, so the error estimate is
    # the probe standard error alone (no deflation), which falls like 1 / sqrt(num_probes).
    lam = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0]).repeat_interleave(120)
    a = known_spectrum(lam)
    exact = exact_entropy(a, 1.0)
    errors = []
    for m in (8, 32, 128):
        value, error = approx_renyi_entropy(a, 1.0, rank=0, num_probes=m, return_error=True)
        assert abs(float(value) - exact) <= 4.0 * float(error)
        errors.append(float(error))
    assert errors[0] > 1.5 * errors[1] > 0.0
    assert errors[1] > 1.5 * errors[2] > 0.0
    assert errors[0] > 2.5 * errors[2]


def test_error_estimate_covers_plain_lanczos_without_deflation(grams, eigenvalues):
    a = grams["gauss_median_sigma"]
    exact = entropy_from_eigenvalues(eigenvalues["gauss_median_sigma"], 1.01)
    value, error = approx_renyi_entropy(a, 1.01, rank=0, num_probes=32, return_error=True)
    assert abs(float(value) - exact) <= ERROR_FACTOR * float(error)


def test_unnormalized_trace_is_divided_out(grams):
    a = grams["known_power_law"]
    ref = approx_renyi_entropy(a, 1.01)
    assert float(approx_renyi_entropy(3.0 * a, 1.01)) == pytest.approx(float(ref), rel=1e-10)


def test_float32_input_is_computed_in_float64(grams):
    a = grams["gauss_median_sigma"]
    ref = approx_renyi_entropy(a, 1.01)
    value = approx_renyi_entropy(a.float(), 1.01)
    assert value.dtype == torch.float64
    assert float(value) == pytest.approx(float(ref), rel=1e-4)


def test_clamping_out_of_range_warns(monkeypatch, grams):
    a = grams["near_identity"]
    n = a.shape[0]

    def too_large(sketch, alpha):
        return (
            torch.tensor(math.log2(n) + 0.5, dtype=torch.float64),
            torch.tensor(0.01, dtype=torch.float64),
        )

    monkeypatch.setattr(approx, "_entropy_terms", too_large)
    with pytest.warns(ApproximationWarning, match="clamped"):
        value = approx_renyi_entropy(a, 1.01)
    assert float(value) == pytest.approx(math.log2(n))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(grams, eigenvalues):
    a = grams["gauss_quarter_sigma"]
    value = approx_renyi_entropy(a.cuda(), 1.01)
    assert value.device.type == "cuda"
    exact = entropy_from_eigenvalues(eigenvalues["gauss_quarter_sigma"], 1.01)
    assert float(value) == pytest.approx(exact, rel=0.01)


def test_threshold_is_exposed():
    assert isinstance(AUTO_EXACT_MAX_N, int) and AUTO_EXACT_MAX_N >= 2
    assert exact_threshold() == AUTO_EXACT_MAX_N


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((torch.ones(3, 4) / 3,), {}, InvalidInputError),
        ((torch.ones(2, 3, 3) / 3,), {}, InvalidInputError),
        ((torch.ones(1, 1),), {}, InvalidInputError),
        ((torch.full((3, 3), float("nan")),), {}, InvalidInputError),
        (
            (
                torch.eye(3).index_put(
                    (torch.tensor([0]), torch.tensor([1])), torch.tensor(float("inf"))
                ),
            ),
            {},
            InvalidInputError,
        ),
        ((torch.zeros(3, 3),), {}, InvalidInputError),
        ((torch.eye(3) / 3, 0.0), {}, InvalidParameterError),
        ((torch.eye(3) / 3, -1.0), {}, InvalidParameterError),
        ((torch.eye(3) / 3, float("nan")), {}, InvalidParameterError),
        ((torch.eye(3) / 3, float("inf")), {}, InvalidParameterError),
        ((torch.eye(3) / 3, True), {}, InvalidParameterError),
        ((torch.eye(3) / 3,), {"num_probes": 1}, InvalidParameterError),
        ((torch.eye(3) / 3,), {"lanczos_steps": 0}, InvalidParameterError),
        ((torch.eye(3) / 3,), {"rank": -1}, InvalidParameterError),
        ((torch.eye(3) / 3,), {"dtype": torch.int64}, InvalidParameterError),
        ((torch.eye(3) / 3,), {"seed": -1}, InvalidParameterError),
        ((torch.eye(3) / 3,), {"generator": 3}, InvalidTypeError),
        (([[0.5, 0.0], [0.0, 0.5]],), {}, InvalidTypeError),
        ((torch.eye(3, dtype=torch.complex128) / 3,), {}, InvalidTypeError),
    ],
)
def test_bad_inputs_raise_one_line_errors(args, kwargs, error):
    with pytest.raises(error) as info:
        approx_renyi_entropy(*args, **kwargs)
    assert isinstance(info.value, InfoPlaneError)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("approx_renyi_entropy: expected ")


def test_auto_method_picks_by_size_and_says_when_it_approximates():
    from infoplane import mutual_information, renyi_entropy
    from infoplane.functional.approx import AUTO_EXACT_MAX_N, ApproximationWarning

    gen = torch.Generator().manual_seed(3)
    for n, approximated in ((AUTO_EXACT_MAX_N, False), (AUTO_EXACT_MAX_N + 100, True)):
        x = torch.randn(n, 8, generator=gen, dtype=torch.float64)
        d2 = torch.cdist(x, x).square()
        gram = torch.exp(-d2 / (2 * d2.mean()))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            auto = renyi_entropy(gram, 1.01, method="auto")
        said = [w for w in caught if issubclass(w.category, ApproximationWarning)]
        assert bool(said) == approximated
        expected = renyi_entropy(gram, 1.01, method="approx" if approximated else "exact")
        assert torch.equal(auto, expected)
        if approximated:
            assert "N = " in str(said[0].message) and "method='exact'" in str(said[0].message)
            exact = renyi_entropy(gram, 1.01, method="exact")
            assert abs(float(auto - exact)) < 0.01 * float(exact)
            with pytest.warns(ApproximationWarning):
                mi = mutual_information(gram, gram, method="auto")
            assert torch.isfinite(mi)


def test_public_functions_never_form_the_normalized_gram():
    """The randomized path of the public functions: a Gram with a constant diagonal (Gaussian,
    label) reaches the estimator as it is (its trace divided out): bit for bit the estimator's
    value on that Gram. Another diagonal is normalized inside the products: the same value as
    on the normalized Gram, to round-off. Both agree with the exact entropy to the estimator's
    accuracy."""
    import infoplane

    gen = torch.Generator().manual_seed(11)
    x = torch.randn(300, 6, generator=gen, dtype=torch.float64)
    gram = infoplane.gaussian_gram(x, 2.0)
    assert bool((torch.diagonal(gram) == 1.0).all())
    got = infoplane.renyi_entropy(gram, 1.01, method="approx")
    assert torch.equal(got, approx_renyi_entropy(gram, 1.01))
    normalized = infoplane.normalize_gram(gram)
    assert abs(float(got - approx_renyi_entropy(normalized, 1.01))) < 1e-11
    assert abs(float(got) - exact_entropy(normalized, 1.01)) < 2e-3 * float(got)
    joint = infoplane.joint_entropy(gram, gram.sqrt(), alpha=1.01, method="approx")
    assert torch.equal(joint, approx_renyi_entropy(gram * gram.sqrt(), 1.01))

    scale = torch.rand(300, generator=gen, dtype=torch.float64) + 0.5
    skewed = gram * scale[:, None] * scale[None, :]  # the same normalized Gram
    for alpha in (0.5, 1.0, 1.01, 2.0, 3.0):
        got = infoplane.renyi_entropy(skewed, alpha, method="approx")
        want = approx_renyi_entropy(infoplane.normalize_gram(skewed), alpha)
        assert abs(float(got - want)) < 1e-11, alpha


@pytest.mark.parametrize("n", [7, 300])
def test_the_scaled_operator_is_the_normalized_gram(monkeypatch, n):
    """``_Scaled(K, d)`` against ``diag(d) K diag(d)`` formed in float64: products, trace,
    squared Frobenius norm (over row blocks of 3 rows, so partial blocks occur) and the dense
    matrix; with ``d`` None it is K itself."""
    monkeypatch.setattr(approx, "_FROBENIUS_BLOCK", 3 * n)
    gen = torch.Generator().manual_seed(n)
    f = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    k = f @ f.T + torch.diag(torch.rand(n, generator=gen, dtype=torch.float64) + 0.1)
    d = (torch.diagonal(k) * n).rsqrt()
    want = k * d[:, None] * d[None, :]
    op = approx._Scaled(k, d)
    v = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(op @ v, want @ v, rtol=1e-13, atol=1e-15)
    assert abs(float(op.trace()) - 1.0) < 1e-14
    torch.testing.assert_close(op.frobenius2(), want.square().sum(), rtol=1e-13, atol=0)
    torch.testing.assert_close(op.dense(), want, rtol=1e-15, atol=0)
    plain = approx._Scaled(k)
    assert torch.equal(plain @ v, k @ v) and torch.equal(plain.dense(), k)
    assert torch.equal(plain.frobenius2(), torch.linalg.vector_norm(k).square())


@pytest.mark.parametrize(("n", "k", "rank"), [(50, 8, 8), (400, 64, 64), (9, 9, 9), (120, 10, 3)])
def test_lu_basis_spans_the_columns_it_was_given(n, k, rank):
    """``_lu_basis(y)`` is ``P L`` of ``y = P L U``: it times the LU's ``U`` gives ``y`` back,
    its entries are at most 1 with ones where the pivots went, and it spans the columns of
    ``y`` (the same orthogonal projector as y's QR); a rank-deficient ``y`` still gives a
    finite basis of full column rank that contains them."""
    gen = torch.Generator().manual_seed(n + k)
    y = torch.randn(n, rank, generator=gen, dtype=torch.float64) @ torch.randn(
        rank, k, generator=gen, dtype=torch.float64
    )
    y[0] *= 1e-3  # the first pivot must come from another row
    basis = approx._lu_basis(y)
    upper = torch.linalg.lu_factor_ex(y)[0][:k].triu()
    torch.testing.assert_close(basis @ upper, y, rtol=0, atol=1e-12 * float(y.abs().max()))
    assert float(basis.abs().max()) == 1.0 and int((basis == 1.0).sum()) >= k
    assert torch.linalg.matrix_rank(basis) == k
    q = torch.linalg.qr(basis).Q
    assert float((y - q @ (q.T @ y)).abs().max()) < 1e-12 * float(y.abs().max())
    if rank == k:
        p = torch.linalg.qr(y).Q
        torch.testing.assert_close(q @ q.T, p @ p.T, rtol=0, atol=1e-12)


def test_lanczos_never_leaves_the_deflated_remainder():
    """The probes' Lanczos vectors stay orthogonal to ``Q`` (one Gram-Schmidt pass against it
    per step, two against the basis): on a spectrum with a gap of four decades after the
    deflated part, every quadrature node lies in the remainder's spectrum. A basis that took
    back a part of ``Q``'s span would make nodes near the deflated eigenvalues (1e-2 and up)."""
    lam = torch.cat([torch.logspace(0, -2, 32), torch.logspace(-6, -9, 368)])
    lam = (lam / lam.sum()).double()
    a = approx._Scaled(known_spectrum(lam, seed=3))
    gen = torch.Generator().manual_seed(5)
    q = approx._orthonormalize(
        a @ approx._lu_basis(a @ torch.randn(400, 32, generator=gen).double())
    )
    z = torch.randint(0, 2, (400, 6), generator=gen).to(torch.float64) * 2 - 1
    v = approx._project_off(q, approx._project_off(q, z))
    v = v / torch.linalg.vector_norm(v, dim=0)
    steps = 40
    alphas, betas = approx._lanczos(a, q, v, a @ v, steps, torch.tensor(1e-300))
    nodes, _ = approx._quadrature(alphas, betas, steps)
    top = float(lam[32])  # the remainder's largest eigenvalue
    assert float(nodes.max()) <= top * (1 + 1e-6), float(nodes.max()) / top
    assert float(nodes.min()) >= -1e-15
