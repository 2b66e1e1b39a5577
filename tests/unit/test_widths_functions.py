"""Kernel-width rules against their textbook definitions (naive float64 reference): median
heuristic, k-th neighbour distance, Silverman and Scott rules, kernel alignment (Cristianini et
al., NIPS 2001) and the label-alignment rule of Wickstrøm et al. (arXiv:1909.11396) with its
moving average."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import infoplane
from infoplane import widths
from infoplane.widths import _functions as bandwidth_impl
from tests.helpers import reference as ref

pytestmark = pytest.mark.usefixtures("single_thread")

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
# N = 2, 3 give 1 and 3 pairs (odd), N = 4, 9 give 6 and 36 pairs (even median: two middles)
SHAPES = [(2, 3), (3, 1), (4, 5), (9, 2, 2, 3), (30, 16)]


def _data(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _labels(n, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, k, (n,), generator=g)


def _rel(got, expected, tol=1e-10):
    got = float(got)
    assert abs(got - expected) <= tol * abs(expected), f"{got!r} != {expected!r}"


def _check_scalar(value, device="cpu"):
    assert isinstance(value, torch.Tensor) and value.shape == ()
    assert value.dtype == torch.float64 and value.device.type == device


# ----------------------------------------------------------------------------- stateless rules
@pytest.mark.parametrize("shape", SHAPES)
def test_median_distance_matches_numpy_median(shape):
    x = _data(shape, seed=1)
    got = widths.median_distance(x)
    _check_scalar(got)
    _rel(got, ref.median_distance(x.numpy()))


def test_median_of_an_even_number_of_pairs_is_the_mean_of_the_two_middle_ones():
    # 4 points on a line: pair distances 1, 2, 3, 1, 2, 1 -> sorted 1 1 1 2 2 3, median 1.5
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    assert float(widths.median_distance(x)) == 1.5


@pytest.mark.parametrize("shape", SHAPES)
def test_knn_distance_matches_reference(shape):
    x = _data(shape, seed=2)
    n = shape[0]
    for k in sorted({1, min(3, n - 1), n - 1}):
        got = widths.knn_distance(x, k)
        _check_scalar(got)
        _rel(got, ref.knn_distance(x.numpy(), k))
    assert float(widths.knn_distance(x, np.int64(1))) == float(widths.knn_distance(x, 1))


def test_knn_counts_duplicates_as_neighbours_at_distance_zero():
    x = _data((6, 3), seed=3)
    x = torch.cat([x, x])  # every sample has a twin: its nearest neighbour is at distance 0
    assert ref.knn_distance(x.numpy(), 1) == 0.0
    with pytest.warns(UserWarning, match="mean pairwise distance"):
        fallback = widths.knn_distance(x, 1)
    _rel(fallback, float(np.mean(ref.upper_distances(x.numpy()))))
    _rel(widths.knn_distance(x, 2), ref.knn_distance(x.numpy(), 2))


def test_median_of_mostly_duplicated_samples_falls_back_to_the_mean_distance():
    """A mostly dead ReLU layer: 8 of 10 samples are zero, so 28 of the 45 pairs are at 0."""
    x = torch.zeros(10, 4, dtype=torch.float64)
    x[8:] = _data((2, 4), seed=3).abs()
    assert ref.median_distance(x.numpy()) == 0.0
    with pytest.warns(UserWarning, match="half of the sample pairs"):
        sigma = widths.median_distance(x)
    _rel(sigma, float(np.mean(ref.upper_distances(x.numpy()))))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rule", ["silverman", "scott"])
def test_silverman_and_scott_match_textbook(shape, rule):
    x = _data(shape, seed=4) * torch.linspace(0.5, 3.0, int(np.prod(shape[1:]))).reshape(shape[1:])
    got = getattr(widths, rule)(x)
    _check_scalar(got)
    _rel(got, getattr(ref, rule)(x.numpy()))


@pytest.mark.parametrize("name", ["median_distance", "silverman", "scott", "knn_distance"])
def test_rules_accept_numpy_and_low_precision(name):
    fn = getattr(widths, name)
    x = _data((12, 7), seed=5)
    assert float(fn(x.numpy())) == float(fn(x))
    half = x.half()
    _rel(fn(half), float(fn(half.double())), 1e-12)


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_every_rule_scales_with_the_data(scale):
    """sigma(c x) = c sigma(x): widths follow the data, so entropies do not depend on units."""
    x = _data((20, 4, 3), seed=6)
    ky = infoplane.label_gram(_labels(20, 3, seed=6))
    rules = [
        widths.median_distance,
        lambda v: widths.knn_distance(v, 4),
        widths.silverman,
        widths.scott,
        lambda v: widths.alignment_sigma(v, ky),
    ]
    for rule in rules:
        _rel(rule(x * scale) / scale, float(rule(x)), 1e-10)


@pytest.mark.parametrize(
    "fn",
    [
        widths.median_distance,
        lambda v: widths.knn_distance(v, 2),
        widths.silverman,
        widths.scott,
    ],
    ids=["median", "knn", "silverman", "scott"],
)
def test_identical_samples_fall_back_to_one_with_a_warning(fn):
    with pytest.warns(UserWarning, match="identical"):
        sigma = fn(torch.zeros(8, 3, 2))
    assert float(sigma) == 1.0


# ----------------------------------------------------------------------------- alignment
@pytest.mark.parametrize("target", ["labels", "gaussian"])
def test_kernel_alignment_matches_frobenius_inner_products(target):
    x = _data((16, 6), seed=7)
    if target == "labels":
        other = infoplane.label_gram(_labels(16, 3, seed=7))
    else:
        other = infoplane.gaussian_gram(_data((16, 2), seed=8), 1.0)
    sigmas = [0.1, 0.7, 2.0, 5.0, 40.0]
    got = widths.kernel_alignment(x, other, sigmas)
    assert got.shape == (5,) and got.dtype == torch.float64
    expected = [ref.alignment(ref.gaussian_gram(x.numpy(), s), other.numpy()) for s in sigmas]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=0)
    assert bool(((got > 0) & (got <= 1 + 1e-12)).all())
    for form in (torch.tensor(sigmas, dtype=torch.float64), np.array(sigmas), tuple(sigmas)):
        assert torch.equal(widths.kernel_alignment(x, other, form), got)
    assert torch.equal(widths.kernel_alignment(x.numpy(), other.numpy(), sigmas), got)


def test_kernel_alignment_chunks_over_candidates(monkeypatch):
    x = _data((10, 3), seed=9)
    ky = infoplane.label_gram(_labels(10, 2, seed=9))
    sigmas = torch.linspace(0.2, 6.0, 23, dtype=torch.float64)
    whole = widths.kernel_alignment(x, ky, sigmas)
    for name in ("_ALIGN_CHUNK_ELEMENTS", "_CPU_ALIGN_CHUNK_ELEMENTS"):  # 4 candidates a time
        monkeypatch.setattr(bandwidth_impl, name, 45 * 4, raising=False)
    assert torch.equal(widths.kernel_alignment(x, ky, sigmas), whole)


def test_kernel_alignment_is_differentiable_in_the_samples_and_the_widths():
    """Samples or widths that require grad: the same values, and gradients that agree with
    finite differences (``torch.autograd.gradcheck``, float64)."""
    x = _data((9, 3), seed=21)
    ky = infoplane.label_gram(_labels(9, 3, seed=21))
    sigmas = torch.tensor([0.4, 1.1, 3.0], dtype=torch.float64)
    plain = widths.kernel_alignment(x, ky, sigmas)
    xg, sg = x.clone().requires_grad_(), sigmas.clone().requires_grad_()
    tracked = widths.kernel_alignment(xg, ky, sg)
    assert tracked.requires_grad
    torch.testing.assert_close(tracked.detach(), plain, rtol=1e-14, atol=0)
    assert torch.autograd.gradcheck(lambda a: widths.kernel_alignment(a, ky, sigmas), (xg,))
    assert torch.autograd.gradcheck(lambda s: widths.kernel_alignment(x, ky, s), (sg,))


def test_width_searches_take_inputs_that_require_grad():
    """The searches pick a grid point, a discrete choice: inputs that require grad (activations
    taken outside ``no_grad``) give the same width as detached ones instead of failing."""
    y = _labels(24, 3, seed=22)
    x = _data((24, 5), seed=22) + 2.0 * torch.nn.functional.one_hot(y, 5).double()
    ky = infoplane.label_gram(y)
    xg = x.clone().requires_grad_()
    assert torch.equal(widths.alignment_sigma(xg, ky).detach(), widths.alignment_sigma(x, ky))
    d2 = infoplane.squared_distances(x)
    d2g = d2.clone().requires_grad_()
    grid = widths.candidate_grid(d2, 40)
    assert torch.equal(widths.best_width(d2g, ky, grid), widths.best_width(d2, ky, grid))
    kyg = ky.clone().requires_grad_()  # a differentiable target Gram
    assert torch.equal(widths.best_width(d2, kyg, grid), widths.best_width(d2, ky, grid))
    rules = [infoplane.widths.LabelAlignment(), infoplane.widths.LabelAlignment()]
    got = [rule.update(d, 5, ky, step=0) for rule, d in zip(rules, (d2g, d2), strict=True)]
    assert torch.equal(got[0], got[1]) and not got[0].requires_grad


@pytest.mark.parametrize(("num", "low", "high"), [(1, 0.3, 10.0), (7, 0.3, 10.0), (50, 1.0, 2.0)])
def test_candidate_grid_convention(num, low, high):
    x = _data((12, 5), seed=10)
    grid = widths.candidate_grid(infoplane.squared_distances(x), num, low=low, high=high)
    assert grid.shape == (num,) and grid.dtype == torch.float64
    np.testing.assert_allclose(grid.numpy(), ref.candidate_grid(x.numpy(), num, low, high), 1e-12)
    mean = float(np.mean(ref.upper_distances(x.numpy())))
    assert float(grid[0]) == pytest.approx(low * mean / math.sqrt(2.0), rel=1e-12)


def test_candidate_grid_of_identical_samples_uses_unit_mean():
    grid = widths.candidate_grid(torch.zeros(5, 5, dtype=torch.float64), 3)
    np.testing.assert_allclose(grid.numpy(), np.array([0.3, 5.15, 10.0]) / math.sqrt(2.0))


@pytest.mark.parametrize(("num", "seed"), [(1, 11), (9, 12), (100, 13), (300, 14)])
def test_alignment_sigma_is_the_reference_argmax(num, seed):
    n = 24
    y = _labels(n, 3, seed=seed)
    # class-dependent means make the alignment peak inside the grid
    x = _data((n, 5), seed=seed) + 2.0 * torch.nn.functional.one_hot(y, 5).double()
    ky = infoplane.label_gram(y)
    got = widths.alignment_sigma(x, ky, num_candidates=num)
    _check_scalar(got)
    expected, scores = ref.alignment_sigma(x.numpy(), ky.numpy(), num)
    _rel(got, expected, 1e-12)
    grid = ref.candidate_grid(x.numpy(), num)
    assert np.isclose(grid, float(got), rtol=1e-12).any()
    if num > 2:
        assert 0 < int(np.argmax(scores)) < num - 1  # a true interior maximum, not an end point


def test_alignment_sigma_custom_range():
    x, y = _data((15, 3), seed=15), _labels(15, 2, seed=15)
    ky = infoplane.label_gram(y)
    got = widths.alignment_sigma(x, ky, num_candidates=20, low=0.05, high=0.5)
    expected, _ = ref.alignment_sigma(x.numpy(), ky.numpy(), 20, 0.05, 0.5)
    _rel(got, expected, 1e-12)


# ----------------------------------------------------------------------------- WidthRule classes
def test_rule_classes_equal_the_functions():
    x = _data((14, 3, 4), seed=16)
    d2, dim = infoplane.squared_distances(x), 12
    assert float(widths.Median()(d2, dim)) == float(widths.median_distance(x))
    assert float(widths.KNN(4)(d2, dim)) == float(widths.knn_distance(x, 4))
    assert float(widths.Silverman()(d2, dim)) == float(widths.silverman(x))
    assert float(widths.Scott()(d2, dim)) == float(widths.scott(x))
    fixed = widths.Fixed(2.5)(d2, dim)
    _check_scalar(fixed)
    assert float(fixed) == 2.5


def test_knn_rule_with_k_above_the_batch_size_warns_and_uses_the_farthest_neighbour():
    x = _data((5, 2), seed=17)
    d2 = infoplane.squared_distances(x)
    with pytest.warns(UserWarning, match="k = 10"):
        sigma = widths.KNN(10)(d2, 2)
    _rel(sigma, ref.knn_distance(x.numpy(), 4))


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ("alignment", widths.LabelAlignment),
        ("authors", widths.AuthorsAlignment),
        ("median", widths.Median),
        ("knn", widths.KNN),
        ("silverman", widths.Silverman),
        ("scott", widths.Scott),
        (3, widths.Fixed),
        (0.25, widths.Fixed),
        (torch.tensor(1.5), widths.Fixed),
    ],
)
def test_make_width_rule(spec, cls):
    rule = widths.make_width_rule(spec)
    assert type(rule) is cls
    assert rule.describe()["rule"] == rule.name
    assert widths.make_width_rule(rule) is rule
    if cls is widths.Fixed:
        assert rule.sigma == float(spec)


def _batches(steps, n=20, seed=20):
    out = []
    for t in range(steps):
        y = _labels(n, 3, seed=seed + t)
        x = _data((n, 6), seed=seed + 100 + t) * (1.0 + 0.3 * t)  # widths drift over steps
        x = x + 1.5 * torch.nn.functional.one_hot(y, 6).double()
        out.append((x, y))
    return out


def test_label_alignment_moving_average_and_warmup_grid():
    beta, warmup_steps, warmup_num, num = 0.8, 3, 41, 6
    rule = widths.LabelAlignment(
        num_candidates=num, warmup_candidates=warmup_num, warmup_steps=warmup_steps, beta=beta
    )
    sigma_prev = None
    for t, (x, y) in enumerate(_batches(7)):
        ky = infoplane.label_gram(y)
        grid_size = warmup_num if t < warmup_steps else num
        best, _ = ref.alignment_sigma(x.numpy(), ky.numpy(), grid_size)
        # the candidate comes from the grid of the right size
        assert np.isclose(ref.candidate_grid(x.numpy(), grid_size), best, rtol=1e-12).any()
        _rel(rule.best_candidate(infoplane.squared_distances(x), ky), best, 1e-12)
        expected = best if sigma_prev is None else beta * sigma_prev + (1 - beta) * best
        got = rule(infoplane.squared_distances(x), 6, ky)
        _check_scalar(got)
        _rel(got, expected, 1e-12)
        assert rule.steps == t + 1
        sigma_prev = expected


def test_label_alignment_grid_switch_changes_the_candidate():
    """Warmup (fine grid) and later (coarse grid) pick different candidates for the same batch."""
    x, y = _batches(1, seed=31)[0]
    d2, ky = infoplane.squared_distances(x), infoplane.label_gram(y)
    rule = widths.LabelAlignment(num_candidates=4, warmup_candidates=300, warmup_steps=1)
    fine = rule.best_candidate(d2, ky)
    rule(d2, 6, ky)
    coarse = rule.best_candidate(d2, ky)
    _rel(fine, ref.alignment_sigma(x.numpy(), ky.numpy(), 300)[0], 1e-12)
    _rel(coarse, ref.alignment_sigma(x.numpy(), ky.numpy(), 4)[0], 1e-12)
    assert float(fine) != float(coarse)


def test_label_alignment_state_dict_round_trip_continues_identically():
    config = dict(num_candidates=9, warmup_candidates=25, warmup_steps=2, beta=0.9)
    batches = [
        (infoplane.squared_distances(x), infoplane.label_gram(y)) for x, y in _batches(8, seed=40)
    ]
    original = widths.LabelAlignment(**config)
    for d2, ky in batches[:3]:
        original(d2, 6, ky)
    state = json.loads(json.dumps(original.state_dict()))  # plain data, survives a file
    assert state["steps"] == 3
    resumed = widths.LabelAlignment(**config)
    resumed.load_state_dict(state)
    for d2, ky in batches[3:]:
        assert torch.equal(resumed(d2, 6, ky), original(d2, 6, ky))
    assert resumed.state_dict() == original.state_dict()
    fresh = widths.LabelAlignment(**config)
    fresh.load_state_dict(widths.LabelAlignment(**config).state_dict())
    assert fresh.sigma is None and fresh.steps == 0


def test_label_alignment_describe_and_stateless_rules_have_empty_state():
    rule = widths.LabelAlignment()
    assert rule.describe() == {
        "rule": "alignment",
        "num_candidates": 100,
        "warmup_candidates": 300,
        "warmup_steps": 20,
        "beta": 0.9,
        "low": 0.3,
        "high": 10.0,
    }
    for stateless in (widths.Median(), widths.KNN(), widths.Fixed(1.0)):
        assert stateless.state_dict() == {}


# ----------------------------------------------------------------------------- devices
@CUDA
def test_widths_stay_on_the_cuda_device():
    x = _data((12, 4), seed=50).cuda()
    ky = infoplane.label_gram(_labels(12, 3, seed=50)).cuda()
    d2 = infoplane.squared_distances(x)
    outs = [
        widths.median_distance(x),
        widths.knn_distance(x, 2),
        widths.silverman(x),
        widths.scott(x),
        widths.alignment_sigma(x, ky),
        widths.kernel_alignment(x, ky, [1.0, 2.0]),
        widths.candidate_grid(d2, 5),
        widths.LabelAlignment()(d2, 4, ky),
    ]
    for out in outs:
        assert out.device.type == "cuda"
    _rel(outs[0], ref.median_distance(x.cpu().numpy()))
