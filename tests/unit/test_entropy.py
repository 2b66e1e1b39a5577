"""Matrix-based Rényi entropy and the measures built on it, against the naive float64 reference,
closed forms, plug-in entropies of discrete data and scikit-learn's mutual information
(Sanchez Giraldo et al., IEEE TIT 2015; Yu et al., IEEE TPAMI 2019)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

import infoplane
from infoplane import widths
from infoplane.functional.spectrum import entropy_from_eigenvalues
from tests.helpers import reference as ref

pytestmark = pytest.mark.usefixtures("single_thread")

ALPHAS = [0.5, 1.0, 1.01, 2.0, 3.0]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _gram(n, d, width=1.0, seed=0):
    """Gaussian Gram of random data with sigma = width x the median distance."""
    x = _data((n, d), seed)
    return infoplane.gaussian_gram(x, width * ref.median_distance(x.numpy()))


def _near(got, expected, tol=1e-10):
    """``|got - expected| < tol`` for scalars (0-d tensors or floats), with a readable failure."""
    got, expected = float(got), float(expected)
    assert abs(got - expected) < tol, f"{got!r} != {expected!r} (tol {tol:g})"


def _labels(n, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, k, (n,), generator=g)


# (n, d, width): well-conditioned spectra, whose eigenvalues all lie far above round-off, so
# even alpha = 0.5 (which weighs small eigenvalues most) must agree to 1e-10.
GAUSS_CASES = [(2, 3, 1.0), (10, 20, 1.0), (30, 40, 0.7), (40, 60, 2.0)]
# low-dimensional data: fast-decaying spectra, many eigenvalues at round-off level
LOWDIM_CASES = [(25, 2, 1.0), (30, 1, 0.5)]


def _gauss_id(case):
    return "n{}-d{}-w{}".format(*case)


# ----------------------------------------------------------------------------- single entropy
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("case", GAUSS_CASES, ids=_gauss_id)
def test_renyi_entropy_matches_reference(case, alpha):
    k = _gram(*case, seed=case[0])
    s = infoplane.renyi_entropy(k, alpha)
    assert s.dtype == torch.float64 and s.shape == ()
    _near(s, ref.renyi_entropy(k.numpy(), alpha))


@pytest.mark.parametrize("alpha", [1.0, 1.01, 2.0, 3.0])
@pytest.mark.parametrize("case", LOWDIM_CASES, ids=_gauss_id)
def test_renyi_entropy_matches_reference_on_fast_decaying_spectra(case, alpha):
    k = _gram(*case, seed=case[0])
    _near(infoplane.renyi_entropy(k, alpha), ref.renyi_entropy(k.numpy(), alpha))


@pytest.mark.parametrize("case", LOWDIM_CASES, ids=_gauss_id)
def test_renyi_entropy_alpha_half_on_fast_decaying_spectra(case):
    """alpha < 1 magnifies eigenvalues near round-off; two solvers agree to ~1e-7 there."""
    k = _gram(*case, seed=case[0])
    _near(infoplane.renyi_entropy(k, 0.5), ref.renyi_entropy(k.numpy(), 0.5), 1e-6)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("n", [2, 7, 64])
def test_closed_forms_identity_and_all_ones(n, alpha):
    eye = torch.eye(n, dtype=torch.float64)
    ones = torch.ones(n, n, dtype=torch.float64)
    _near(infoplane.renyi_entropy(eye / n, alpha), math.log2(n), 1e-12)
    _near(infoplane.renyi_entropy(eye, alpha), math.log2(n), 1e-12)
    assert abs(float(infoplane.renyi_entropy(ones / n, alpha))) < 1e-12
    assert abs(float(infoplane.renyi_entropy(ones, alpha))) < 1e-12


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize(
    ("n", "k", "seed"), [(2, 2, 0), (20, 3, 1), (100, 10, 2), (50, 1, 3), (9, 9, 4)]
)
def test_indicator_kernel_gives_plugin_renyi_entropy(n, k, seed, alpha):
    y = _labels(n, k, seed)
    s = infoplane.renyi_entropy(infoplane.label_gram(y), alpha)
    _near(s, ref.plugin_renyi(y.numpy(), alpha))


def test_one_sample_per_class_and_single_class():
    n = 12
    for alpha in ALPHAS:
        distinct = infoplane.label_gram(torch.arange(n))
        single = infoplane.label_gram(torch.zeros(n, dtype=torch.long))
        _near(infoplane.renyi_entropy(distinct, alpha), math.log2(n), 1e-12)
        _near(infoplane.mutual_information(distinct, distinct, alpha=alpha), math.log2(n), 1e-12)
        assert abs(float(infoplane.renyi_entropy(single, alpha))) < 1e-12


@pytest.mark.parametrize("case", GAUSS_CASES + LOWDIM_CASES, ids=_gauss_id)
def test_alpha_two_frobenius_path_equals_eigenvalue_path(case):
    k = _gram(*case, seed=case[0] + 1)
    frob = infoplane.renyi_entropy(k, 2.0)
    a = infoplane.normalize_gram(k)
    eig = entropy_from_eigenvalues(torch.linalg.eigvalsh(a), 2.0)
    _near(frob, eig)
    _near(frob, ref.renyi_entropy_frobenius(k.numpy()), 1e-12)
    _near(frob, ref.renyi_entropy(k.numpy(), 2.0))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_unnormalized_and_normalized_grams_give_the_same_entropy(alpha):
    k = _gram(15, 10, seed=5)
    scaled = 3.0 * k + torch.diag(torch.linspace(0.5, 2.0, 15, dtype=torch.float64))
    a = infoplane.normalize_gram(scaled)
    _near(infoplane.renyi_entropy(scaled, alpha), infoplane.renyi_entropy(a, alpha), 1e-12)
    _near(infoplane.renyi_entropy(scaled, alpha), ref.renyi_entropy(scaled.numpy(), alpha))


# ----------------------------------------------------------------------------- joint measures
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("n", [2, 12, 40])
def test_joint_conditional_mutual_total_match_reference(n, alpha):
    x = _data((n, 30), seed=n)
    t = torch.tanh(x @ _data((30, 25), seed=n + 1) / 4.0)
    kx = infoplane.gaussian_gram(x, ref.median_distance(x.numpy()))
    kt = infoplane.gaussian_gram(t, ref.median_distance(t.numpy()))
    ky = infoplane.label_gram(_labels(n, 3, seed=n))
    kxn, ktn, kyn = kx.numpy(), kt.numpy(), ky.numpy()
    checks = [
        (infoplane.joint_entropy(kx, kt, alpha=alpha), ref.joint_entropy(kxn, ktn, alpha=alpha)),
        (infoplane.joint_entropy(kx, alpha=alpha), ref.renyi_entropy(kxn, alpha)),
        (
            infoplane.joint_entropy(kx, kt, ky, alpha=alpha),
            ref.joint_entropy(kxn, ktn, kyn, alpha=alpha),
        ),
        (
            infoplane.conditional_entropy(kt, ky, alpha=alpha),
            ref.conditional_entropy(ktn, kyn, alpha),
        ),
        (
            infoplane.conditional_entropy(ky, kt, alpha=alpha),
            ref.conditional_entropy(kyn, ktn, alpha),
        ),
        (
            infoplane.mutual_information(kx, kt, alpha=alpha),
            ref.mutual_information(kxn, ktn, alpha),
        ),
        (
            infoplane.mutual_information(kt, ky, alpha=alpha),
            ref.mutual_information(ktn, kyn, alpha),
        ),
        (
            infoplane.total_correlation(kx, kt, alpha=alpha),
            ref.total_correlation(kxn, ktn, alpha=alpha),
        ),
        (
            infoplane.total_correlation(kx, kt, ky, alpha=alpha),
            ref.total_correlation(kxn, ktn, kyn, alpha=alpha),
        ),
    ]
    for got, expected in checks:
        assert got.dtype == torch.float64
        _near(got, expected)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_identities_between_the_measures(alpha):
    ka, kb = _gram(20, 15, seed=6), _gram(20, 8, seed=7)
    s_a = float(infoplane.renyi_entropy(ka, alpha))
    s_b = float(infoplane.renyi_entropy(kb, alpha))
    s_ab = float(infoplane.joint_entropy(ka, kb, alpha=alpha))
    mi = float(infoplane.mutual_information(ka, kb, alpha=alpha))
    _near(infoplane.conditional_entropy(ka, kb, alpha=alpha), (s_ab - s_b), 1e-12)
    _near(mi, (s_a + s_b - s_ab), 1e-12)
    _near(mi, infoplane.total_correlation(ka, kb, alpha=alpha), 1e-12)
    _near(mi, infoplane.mutual_information(kb, ka, alpha=alpha), 1e-12)
    _near(
        infoplane.joint_entropy(ka, kb, alpha=alpha),
        infoplane.joint_entropy(kb, ka, alpha=alpha),
        1e-12,
    )


@pytest.mark.parametrize("alpha", ALPHAS)
def test_self_information_of_gaussian_and_label_kernels(alpha):
    """A o A of a Gaussian Gram is the Gram of width sigma / sqrt(2); labels: I(Y;Y) = S(Y)."""
    x, sigma = _data((18, 12), seed=8), 4.0
    k = infoplane.gaussian_gram(x, sigma)
    k_half = infoplane.gaussian_gram(x, sigma / math.sqrt(2.0))
    _near(infoplane.joint_entropy(k, k, alpha=alpha), infoplane.renyi_entropy(k_half, alpha))
    i_tt = float(infoplane.mutual_information(k, k, alpha=alpha))
    assert i_tt < float(infoplane.renyi_entropy(k, alpha)) - 1e-3
    ky = infoplane.label_gram(_labels(18, 4, seed=8))
    s_y = float(infoplane.renyi_entropy(ky, alpha))
    _near(infoplane.mutual_information(ky, ky, alpha=alpha), s_y, 1e-12)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_joint_entropy_of_channel_grams_equals_tensor_kernel_entropy(alpha):
    x = _data((14, 6, 3, 3), seed=9)
    sigma = 1.5 * ref.median_distance(x.numpy())
    channels = [infoplane.gaussian_gram(x[:, c], sigma) for c in range(6)]
    s_tensor = float(infoplane.renyi_entropy(infoplane.gaussian_gram(x, sigma), alpha))
    _near(infoplane.joint_entropy(*channels, alpha=alpha), s_tensor)


@pytest.mark.parametrize("seed", range(4))
def test_discrete_mutual_information_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 60 + 20 * seed
    x = rng.integers(0, 4, n)
    y = (x + rng.integers(0, 2 + seed, n)) % 5  # dependent on x, with noise
    kx, ky = infoplane.label_gram(x), infoplane.label_gram(y)
    expected = mutual_info_score(x, y) / math.log(2.0)
    _near(infoplane.mutual_information(kx, ky, alpha=1.0), expected)
    pairs = x * 5 + y
    _near(infoplane.joint_entropy(kx, ky, alpha=1.0), ref.plugin_renyi(pairs, 1.0))
    for alpha in ALPHAS:
        _near(infoplane.joint_entropy(kx, ky, alpha=alpha), ref.plugin_renyi(pairs, alpha))


def test_renyi_information_of_order_two_can_be_negative():
    """Rényi entropies of order != 1 are not subadditive: the plug-in I_2 of these labels is
    2 log2(1.6) - log2(8/3) = log2(0.96) < 0, and the estimator reports it unclipped."""
    kx = infoplane.label_gram(torch.tensor([0, 0, 0, 1]))
    ky = infoplane.label_gram(torch.tensor([0, 0, 1, 0]))
    _near(infoplane.mutual_information(kx, ky, alpha=2.0), math.log2(0.96), 1e-12)
    assert float(infoplane.mutual_information(kx, ky, alpha=1.0)) > 0


# ----------------------------------------------------------------------------- batches, types
def test_batched_grams_equal_per_matrix():
    grams = torch.stack([_gram(9, 5, seed=s) for s in range(6)]).reshape(2, 3, 9, 9)
    labels = torch.stack([infoplane.label_gram(_labels(9, 3, seed=s)) for s in range(3)])
    for alpha in ALPHAS:
        s = infoplane.renyi_entropy(grams, alpha)
        assert s.shape == (2, 3)
        mi = infoplane.mutual_information(grams, labels, alpha=alpha)  # labels broadcast over dim 0
        joint = infoplane.joint_entropy(grams, labels, alpha=alpha)
        cond = infoplane.conditional_entropy(grams, labels, alpha=alpha)
        tc = infoplane.total_correlation(grams, labels, grams, alpha=alpha)
        for i in range(2):
            for j in range(3):
                g, lab = grams[i, j], labels[j]
                _near(s[i, j], infoplane.renyi_entropy(g, alpha), 1e-12)
                _near(mi[i, j], infoplane.mutual_information(g, lab, alpha=alpha), 1e-12)
                _near(joint[i, j], infoplane.joint_entropy(g, lab, alpha=alpha), 1e-12)
                _near(cond[i, j], infoplane.conditional_entropy(g, lab, alpha=alpha), 1e-12)
                _near(tc[i, j], infoplane.total_correlation(g, lab, g, alpha=alpha), 1e-12)


def test_numpy_input_equals_torch_input():
    ka, kb = _gram(11, 4, seed=10), infoplane.label_gram(_labels(11, 3, seed=10))
    for alpha in ALPHAS:
        for fn in (infoplane.mutual_information, infoplane.conditional_entropy):
            assert fn(ka.numpy(), kb.numpy(), alpha=alpha) == fn(ka, kb, alpha=alpha)
        assert infoplane.renyi_entropy(ka.numpy(), alpha) == infoplane.renyi_entropy(ka, alpha)
        assert infoplane.joint_entropy(ka.numpy(), kb, alpha=alpha) == infoplane.joint_entropy(
            ka, kb, alpha=alpha
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("alpha", [0.5, 1.01, 2.0])
def test_low_precision_grams_are_upcast(dtype, alpha):
    k = _gram(20, 30, seed=11)
    low = k.to(dtype)
    s = infoplane.renyi_entropy(low, alpha)
    mi = infoplane.mutual_information(low, low, alpha=alpha)
    assert s.dtype == torch.float64 and bool(torch.isfinite(s)) and bool(torch.isfinite(mi))
    _near(s, ref.renyi_entropy(low.double().numpy(), alpha))
    tol = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    assert abs(float(s) - float(infoplane.renyi_entropy(k, alpha))) < tol


def test_half_precision_activations_end_to_end():
    x = _data((16, 3, 4, 4), seed=12)
    for dtype in (torch.float16, torch.bfloat16):
        k = infoplane.gaussian_gram(x.to(dtype), 4.0)
        k32 = infoplane.gaussian_gram(x.float(), 4.0)
        s, s32 = infoplane.renyi_entropy(k), infoplane.renyi_entropy(k32)
        assert bool(torch.isfinite(s)) and abs(float(s) - float(s32)) < 2e-2


# ----------------------------------------------------------------------------- degenerate data
@pytest.mark.parametrize("alpha", ALPHAS)
def test_duplicated_samples_with_tiny_width_give_the_plugin_entropy(alpha):
    base = _data((3, 5), seed=13) * 10.0
    counts = [2, 3, 5]
    x = torch.cat([base[i].expand(c, 5) for i, c in enumerate(counts)])
    s = infoplane.renyi_entropy(infoplane.gaussian_gram(x, 1e-3), alpha)
    _near(s, ref.plugin_renyi(np.repeat([0, 1, 2], counts), alpha))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_duplicated_samples_match_reference(alpha):
    x = _data((10, 20), seed=14)
    x = torch.cat([x, x[:4], x[:2]])
    k = infoplane.gaussian_gram(x, ref.median_distance(x.numpy()))
    _near(infoplane.renyi_entropy(k, alpha), ref.renyi_entropy(k.numpy(), alpha))


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize(
    "x", [torch.zeros(32, 8, 4, 4), torch.full((20, 10), -2.5)], ids=["dead-relu", "constant"]
)
def test_identical_samples_have_zero_entropy_and_zero_information(x, alpha):
    y = _labels(x.shape[0], 4, seed=15)
    with pytest.warns(UserWarning, match="identical"):
        sigma = widths.median_distance(x)
    kt, ky = infoplane.gaussian_gram(x, sigma), infoplane.label_gram(y)
    assert abs(float(infoplane.renyi_entropy(kt, alpha))) < 1e-12
    assert abs(float(infoplane.mutual_information(kt, ky, alpha=alpha))) < 1e-12
    _near(infoplane.conditional_entropy(ky, kt, alpha=alpha), ref.plugin_renyi(y.numpy(), alpha))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_single_class_has_zero_label_entropy_and_information(alpha):
    kt = _gram(25, 10, seed=16)
    ky = infoplane.label_gram(torch.full((25,), 7))
    assert abs(float(infoplane.renyi_entropy(ky, alpha))) < 1e-12
    assert abs(float(infoplane.mutual_information(kt, ky, alpha=alpha))) < 1e-12
    _near(
        infoplane.conditional_entropy(kt, ky, alpha=alpha),
        infoplane.renyi_entropy(kt, alpha),
        1e-12,
    )


RULES = {
    "median": widths.median_distance,
    "knn": lambda x: widths.knn_distance(x, 3),
    "silverman": widths.silverman,
    "scott": widths.scott,
    "alignment": lambda x: widths.alignment_sigma(x, infoplane.label_gram(_labels(24, 3, seed=17))),
}


@pytest.mark.parametrize("scale", [1e-30, 1e30])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_extreme_scales_after_width_selection_leave_entropy_unchanged(rule, scale):
    x = _data((24, 6, 2), seed=17)
    ky = infoplane.label_gram(_labels(24, 3, seed=17))
    s_ref = {}
    for data in (x, x * scale):
        sigma = RULES[rule](data)
        kt = infoplane.gaussian_gram(data, sigma)
        s_ref[data is x] = [float(infoplane.renyi_entropy(kt, alpha)) for alpha in ALPHAS] + [
            float(infoplane.mutual_information(kt, ky, alpha=1.01))
        ]
    np.testing.assert_allclose(s_ref[False], s_ref[True], rtol=0, atol=1e-8)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("distance", [0.0, 0.3, 1.7, 40.0])
def test_two_samples_closed_form(distance, alpha):
    x = torch.tensor([[0.0, 0.0], [distance, 0.0]], dtype=torch.float64)
    k = math.exp(-(distance**2) / 2.0)
    lam = [(1 + k) / 2, (1 - k) / 2]
    s = float(infoplane.renyi_entropy(infoplane.gaussian_gram(x, 1.0), alpha))
    _near(s, ref.renyi_of_eigenvalues(np.array(lam), alpha), 1e-12)
    if alpha == 2.0:
        assert abs(s + math.log2((1 + k * k) / 2)) < 1e-12


@pytest.mark.parametrize("alpha", ALPHAS)
def test_translation_by_a_large_offset_leaves_entropy_unchanged(alpha):
    x = _data((30, 20), seed=18)
    sigma = ref.median_distance(x.numpy())
    s = float(infoplane.renyi_entropy(infoplane.gaussian_gram(x, sigma), alpha))
    s_shift = float(infoplane.renyi_entropy(infoplane.gaussian_gram(x + 1e6, sigma), alpha))
    _near(s, s_shift, 1e-8)


# ----------------------------------------------------------------------------- devices
@CUDA
def test_entropies_stay_on_the_cuda_device():
    ka, kb = _gram(12, 5, seed=19).cuda(), infoplane.label_gram(_labels(12, 3, seed=19)).cuda()
    outs = [
        infoplane.renyi_entropy(ka),
        infoplane.joint_entropy(ka, kb),
        infoplane.conditional_entropy(ka, kb),
        infoplane.mutual_information(ka, kb),
        infoplane.total_correlation(ka, kb),
    ]
    for out in outs:
        assert out.device.type == "cuda"
    expected = ref.mutual_information(ka.cpu().numpy(), kb.cpu().numpy(), 1.01)
    _near(outs[3], expected)


@pytest.mark.parametrize("alpha", [*ALPHAS, math.inf])
def test_padded_spectra_keep_each_rows_rank_tolerance(alpha):
    """Spectra of different lengths zero-padded to one batch, with each row's own N for the
    rank tolerance, give each row's entropy alone. A row of N = 4 holds an eigenvalue at
    6 N eps lambda_max, kept at N = 4 but dropped at the padded width 64: with ``size`` the
    batch keeps it, as the row alone does."""
    eps = torch.finfo(torch.float64).eps
    rows = [
        torch.tensor([0.5, 0.3, 0.2 - 24 * eps, 24 * eps], dtype=torch.float64),
        torch.softmax(_data(64, seed=1), 0),
        torch.softmax(_data(17, seed=2), 0),
    ]
    padded = torch.zeros(3, 64, dtype=torch.float64)
    for i, lam in enumerate(rows):
        padded[i, : lam.numel()] = lam
    size = torch.tensor([[4.0], [64.0], [17.0]], dtype=torch.float64)
    got = entropy_from_eigenvalues(padded, alpha, size=size)
    for i, lam in enumerate(rows):
        _near(got[i], entropy_from_eigenvalues(lam, alpha), 1e-13)
    if alpha < 1.0:  # the tiny eigenvalue counts: (24 eps)^0.5 ~ 7e-8 of the sum
        alone = entropy_from_eigenvalues(padded[0], alpha)  # the tolerance of N = 64 drops it
        assert abs(float(got[0]) - float(alone)) > 1e-8
