"""Gram matrices against the naive float64 reference, closed forms and the tensor-kernel identity
(Wickstrøm et al., arXiv:1909.11396: one sigma for all channels = Hadamard product of per-channel
Grams = Gram of the flattened tensor)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import infoplane
from infoplane.functional import kernels
from tests.helpers import reference as ref

pytestmark = pytest.mark.usefixtures("single_thread")

SHAPES = [(2, 1), (5, 3), (17, 40), (9, 2, 3, 4)]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _data(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def _close(actual, expected, tol=1e-10):
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else actual
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- squared distances
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_squared_distances_match_reference(shape, dtype):
    x = _data(shape, dtype=dtype)
    d2 = infoplane.squared_distances(x)
    expected = ref.squared_distances(x.double().numpy())
    assert d2.dtype == torch.float64 and d2.shape == (shape[0], shape[0])
    _close(d2 / expected.max(), expected / expected.max())
    assert torch.equal(d2, d2.T)
    assert bool((torch.diagonal(d2) == 0).all()) and bool((d2 >= 0).all())


def test_squared_distances_chunked_path_matches_one_product(monkeypatch):
    x = _data((11, 50), seed=3) + 5.0
    whole = infoplane.squared_distances(x)
    monkeypatch.setattr(kernels, "_WHOLE_ELEMENTS", 11 * 49)  # 550 elements: chunked
    monkeypatch.setattr(kernels, "_CHUNK_ELEMENTS", 11 * 7)  # 7 columns per block, ragged end
    chunked = infoplane.squared_distances(x)
    _close(chunked, whole.numpy(), tol=1e-12)
    _close(chunked, ref.squared_distances(x.numpy()))


def test_distances_of_many_tensors_are_each_tensors_own_bit_for_bit(monkeypatch):
    """The tracker forms the distances of all measured tensors in one batched pass: the same
    bits as one call per tensor (chunked or not), and the naive float64 reference."""
    tensors = [_data((13, d), seed=d) + 3.0 for d in (1, 7, 50)]
    tensors.append(_data((13, 2, 3, 4), dtype=torch.float64, seed=9).reshape(13, -1))
    before = [t.clone() for t in tensors]
    together = kernels.stacked_squared_distances(tensors)
    assert together.shape == (4, 13, 13)
    assert all(torch.equal(t, b) for t, b in zip(tensors, before, strict=True))  # not translated
    for d2, x in zip(together, tensors, strict=True):
        assert torch.equal(d2, kernels.squared_distances_of_rows(x))
        _close(d2, ref.squared_distances(x.double().numpy()))
    monkeypatch.setattr(kernels, "_CHUNK_ELEMENTS", 13 * 5)  # 5 columns per block
    chunked = kernels.stacked_squared_distances(tensors)
    for d2, x in zip(chunked, tensors, strict=True):
        assert torch.equal(d2, kernels.squared_distances_of_rows(x))


@pytest.mark.parametrize("n", [257, 300, 600])
def test_blocked_distances_and_gram_are_the_one_block_bits(monkeypatch, n):
    """On CPU the product becomes distances and the Gram in square blocks (the lower block the
    upper one's transpose): the same bits as one block of the whole matrix, exactly symmetric,
    and the naive float64 reference. N = 257 and 300 leave a ragged last block."""
    x = _data((n, 7), seed=n) + 2.0
    sigma = 1.7
    blocked_d2 = infoplane.squared_distances(x)
    blocked_k = infoplane.gaussian_gram(x, sigma)
    monkeypatch.setattr(kernels, "_FINISH_BLOCK", 1 << 30)
    assert torch.equal(blocked_d2, infoplane.squared_distances(x))
    assert torch.equal(blocked_k, infoplane.gaussian_gram(x, sigma))
    assert torch.equal(blocked_k, blocked_k.T) and torch.equal(blocked_d2, blocked_d2.T)
    assert bool((torch.diagonal(blocked_k) == 1).all())
    _close(
        blocked_d2 / blocked_d2.max(), ref.squared_distances(x.numpy()) / blocked_d2.max().item()
    )
    _close(blocked_k, ref.gaussian_gram(x.numpy(), sigma))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_kernel_values_keep_their_whole_range(dtype):
    """Half precision exp runs in float32 on CPU: the flush is float32's, so every value that
    float16 or bfloat16 can hold, subnormals included, is exp's."""
    z = torch.tensor([0.0, -1.0, -10.0, -16.0, -17.5, -80.0, -1e4], dtype=dtype)
    out = kernels.exp_flushed(z.clone())
    assert torch.equal(out, torch.exp(z))
    assert bool(((out > 0) & (out < torch.finfo(dtype).tiny)).any()) == (dtype == torch.float16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_values_below_the_normal_range_are_zero(dtype):
    """exp of exponents below ln(tiny) + 1 is flushed to zero (CPU's exp leaves its fast path
    there); every other value is torch.exp's, and the gradient is exp's where it is not
    flushed."""
    low, floor = kernels.exp_range(dtype)
    tiny = torch.finfo(dtype).tiny
    z = torch.tensor(
        [0.0, -1.0, -50.0, low + 1.0, low, low - 1.0, -1e4, -float("inf")], dtype=dtype
    )
    out = kernels.exp_flushed(z.clone())
    kept = z >= low + 1e-3
    assert torch.equal(out[kept], torch.exp(z[kept]))
    assert bool((out[~kept] == 0).all())
    assert not bool(((out > 0) & (out < tiny)).any())  # never subnormal
    assert floor < 2 * tiny * math.e
    leaf = z[:6].clone().requires_grad_(True)
    with torch.enable_grad():
        y = kernels.exp_flushed(leaf)
        y.sum().backward()
    assert torch.equal(y.detach(), out[:6])
    assert torch.equal(leaf.grad[:4], torch.exp(z[:4])) and bool((leaf.grad[4:] == 0).all())


def test_gram_at_a_width_far_below_the_distances_is_the_identity():
    """0-255 pixels at the authors' input width (8 in their convention): every off-diagonal
    exponent is far below float64's range, so the Gram is exactly the identity, as the naive
    reference rounds it, with or without autograd."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 3, 8, 8), generator=g).float()
    sigma = 8.0 / math.sqrt(2.0)
    expected = torch.eye(40, dtype=torch.float64)
    assert torch.equal(infoplane.gaussian_gram(x, sigma), expected)
    np.testing.assert_array_equal(ref.gaussian_gram(x.double().numpy(), sigma), expected.numpy())
    with torch.enable_grad():
        assert torch.equal(infoplane.gaussian_gram(x.requires_grad_(True), sigma), expected)


def test_squared_distances_respects_dtype_argument():
    x = _data((6, 4))
    d2 = infoplane.squared_distances(x, dtype=torch.float32)
    assert d2.dtype == torch.float32
    _close(d2.double(), ref.squared_distances(x.numpy()), tol=1e-5)


# ----------------------------------------------------------------------------- Gaussian Gram
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", [0.3, 1.0, 7.5])
def test_gaussian_gram_matches_reference(shape, sigma):
    x = _data(shape, seed=1)
    k = infoplane.gaussian_gram(x, sigma)
    _close(k, ref.gaussian_gram(x.numpy(), sigma))
    assert k.dtype == torch.float64
    assert torch.equal(k, k.T)
    assert bool((torch.diagonal(k) == 1.0).all())
    assert bool(((k >= 0) & (k <= 1)).all())


@pytest.mark.parametrize("sigma", [0.5, 2.0, 9.0])
def test_tensor_kernel_is_hadamard_product_of_channel_grams(sigma):
    x = _data((8, 5, 3, 4), seed=2)  # [N, C, H, W]
    tensor_gram = infoplane.gaussian_gram(x, sigma)
    per_channel = [infoplane.gaussian_gram(x[:, c], sigma) for c in range(x.shape[1])]
    hadamard = torch.stack(per_channel).prod(dim=0)
    flattened = infoplane.gaussian_gram(x.reshape(8, -1), sigma)
    _close(tensor_gram, hadamard.numpy(), tol=1e-12)
    _close(tensor_gram, flattened.numpy(), tol=1e-15)
    # and both against the reference product of per-channel reference Grams
    ref_prod = np.prod([ref.gaussian_gram(x[:, c].numpy(), sigma) for c in range(5)], axis=0)
    _close(tensor_gram, ref_prod)


def test_gaussian_gram_accepts_numpy_and_tensor_sigma():
    x = _data((7, 3), seed=4)
    from_torch = infoplane.gaussian_gram(x, 1.5)
    assert torch.equal(infoplane.gaussian_gram(x.numpy(), 1.5), from_torch)
    assert torch.equal(infoplane.gaussian_gram(x, torch.tensor(1.5)), from_torch)
    assert torch.equal(infoplane.gaussian_gram(x, np.float64(1.5)), from_torch)
    assert torch.equal(infoplane.gaussian_gram(x.tolist(), 1.5), from_torch)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_input_is_upcast(dtype):
    x = _data((12, 30), seed=5)
    low = x.to(dtype)
    k_low = infoplane.gaussian_gram(low, 4.0)
    assert k_low.dtype == torch.float64 and bool(torch.isfinite(k_low).all())
    # the upcast is exact: the Gram of the rounded data, computed in float64
    _close(k_low, ref.gaussian_gram(low.double().numpy(), 4.0))
    # and close to the float32 Gram (the rounding of the data is the only difference)
    k32 = infoplane.gaussian_gram(x.float(), 4.0)
    tol = 2e-2 if dtype == torch.bfloat16 else 2e-3
    assert float((k_low - k32).abs().max()) < tol


def test_integer_data_is_accepted():
    x = torch.tensor([[0, 1], [2, 3], [4, 4]])
    _close(infoplane.gaussian_gram(x, 2.0), ref.gaussian_gram(x.numpy(), 2.0))


# ----------------------------------------------------------------------------- degenerate data
def test_duplicated_samples_give_identical_rows():
    x = _data((6, 4), seed=6)
    x = torch.cat([x, x[:3]])
    k = infoplane.gaussian_gram(x, 1.0)
    _close(k, ref.gaussian_gram(x.numpy(), 1.0))
    _close(k[6:], k[:3].numpy(), tol=1e-13)  # equal up to the round-off of the product
    _close(k[6:, :3].diagonal(), np.ones(3), tol=1e-13)


@pytest.mark.parametrize("x", [torch.zeros(10, 64), torch.full((5, 2, 3), 3.25)])
def test_identical_samples_give_all_ones(x):
    """A dead ReLU layer (all zeros) or constant samples: every distance is exactly 0."""
    assert torch.equal(infoplane.squared_distances(x), torch.zeros(x.shape[0], x.shape[0]).double())
    assert torch.equal(infoplane.gaussian_gram(x, 0.1), torch.ones(x.shape[0], x.shape[0]).double())


@pytest.mark.parametrize("offset", [1e6, -3e6])
def test_large_common_offset_does_not_change_the_gram(offset):
    """Samples are translated (first sample to the origin) before ||a||^2 + ||b||^2 - 2ab, so a
    shift of 1e6 costs ~1e-9 only; untranslated, the cancellation error would be
    eps * D * offset^2 ~ 1e-2 (checked below).
    """
    x = _data((20, 50), seed=7)
    shifted = x + offset
    k = infoplane.gaussian_gram(shifted, 3.0)
    expected = ref.gaussian_gram(x.numpy(), 3.0)
    assert float(np.abs(k.numpy() - expected).max()) < 1e-8
    xs = shifted.numpy()
    sq = (xs * xs).sum(axis=1)
    uncentred = np.exp(-np.maximum(sq[:, None] + sq[None, :] - 2 * xs @ xs.T, 0) / 18.0)
    assert float(np.abs(uncentred - expected).max()) > 1e-4  # the test can tell the difference


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_extreme_scales_with_a_scaled_width(scale):
    x = _data((15, 8), seed=8)
    k = infoplane.gaussian_gram(x, 2.0)
    k_scaled = infoplane.gaussian_gram(x * scale, 2.0 * scale)
    _close(k_scaled, k.numpy(), tol=1e-12)
    assert (
        float(
            (infoplane.squared_distances(x * scale) / scale**2 - infoplane.squared_distances(x))
            .abs()
            .max()
        )
        < 1e-12
    )


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_extreme_scales_in_float32(scale):
    x = _data((10, 6), seed=9)
    x32 = (x * scale).float()
    k = infoplane.gaussian_gram(x32, 2.0 * scale)
    assert bool(torch.isfinite(k).all())
    _close(k, ref.gaussian_gram(x.numpy(), 2.0), tol=1e-5)


def test_two_samples_closed_form():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    k = infoplane.gaussian_gram(x, 2.0)
    off = np.exp(-25.0 / 8.0)
    _close(k, np.array([[1.0, off], [off, 1.0]]), tol=1e-15)


# ----------------------------------------------------------------------------- label Gram
@pytest.mark.parametrize(
    "y",
    [[0, 1, 0, 2, 1, 1], [3, 3], [0, 1], list(range(7)), [5] * 6],
    ids=["mixed", "one-class-two", "two-classes", "one-per-class", "single-class"],
)
def test_label_gram_matches_reference(y):
    k = infoplane.label_gram(torch.tensor(y))
    _close(k, ref.label_gram(y), tol=0)
    assert k.dtype == torch.float64


@pytest.mark.parametrize("num_classes", [None, 4])
def test_label_gram_from_one_hot_numpy_and_ids_agree(num_classes):
    y = torch.tensor([0, 3, 1, 3, 0, 2])
    by_ids = infoplane.label_gram(y, num_classes)
    assert torch.equal(infoplane.label_gram(torch.nn.functional.one_hot(y, 4), num_classes), by_ids)
    assert torch.equal(infoplane.label_gram(y.numpy(), num_classes), by_ids)
    assert torch.equal(infoplane.label_gram(y.int()), by_ids)
    assert torch.equal(infoplane.label_gram(y, dtype=torch.float32), by_ids.float())


def test_label_gram_of_soft_rows_warns_and_uses_the_argmax():
    probs = torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    with pytest.warns(UserWarning, match="not one-hot"):
        k = infoplane.label_gram(probs)
    _close(k, ref.label_gram([0, 1, 0]), tol=0)


def test_label_gram_is_the_gaussian_gram_of_one_hot_rows_with_tiny_width():
    y = torch.tensor([0, 2, 1, 2, 0])
    one_hot = torch.nn.functional.one_hot(y, 3).double()
    _close(infoplane.gaussian_gram(one_hot, 1e-3), infoplane.label_gram(y).numpy(), tol=0)


# ----------------------------------------------------------------------------- normalization
@pytest.mark.parametrize("n", [2, 9, 30])
def test_normalize_gram_matches_reference(n):
    x = _data((n, 5), seed=n)
    k = infoplane.gaussian_gram(x, 1.3) * 2.5  # not unit-diagonal
    k = k + torch.diag(torch.linspace(0.1, 1.0, n, dtype=torch.float64))
    a = infoplane.normalize_gram(k)
    _close(a, ref.normalize(k.numpy()))
    assert abs(float(torch.trace(a)) - 1.0) < 1e-14
    _close(infoplane.normalize_gram(a), a.numpy(), tol=1e-15)  # idempotent


def test_normalize_gram_batched_equals_per_matrix():
    grams = torch.stack([infoplane.gaussian_gram(_data((7, 3), seed=s), 1.0 + s) for s in range(6)])
    grams = grams.reshape(2, 3, 7, 7)
    batched = infoplane.normalize_gram(grams)
    for i in range(2):
        for j in range(3):
            assert torch.equal(batched[i, j], infoplane.normalize_gram(grams[i, j]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_normalize_gram_upcasts_low_precision(dtype):
    k = infoplane.gaussian_gram(_data((6, 2), seed=10), 1.0).to(dtype)
    a = infoplane.normalize_gram(k)
    assert a.dtype == torch.float64
    _close(a, ref.normalize(k.double().numpy()))


# ----------------------------------------------------------------------------- devices
@CUDA
def test_kernels_stay_on_the_cuda_device():
    x = _data((9, 4, 2), seed=11).cuda()
    y = torch.tensor([0, 1, 0, 1, 2, 2, 0, 1, 2]).cuda()
    for out in (
        infoplane.squared_distances(x),
        infoplane.gaussian_gram(x, 1.0),
        infoplane.label_gram(y),
        infoplane.normalize_gram(infoplane.gaussian_gram(x, 1.0)),
    ):
        assert out.device.type == "cuda"
    _close(infoplane.gaussian_gram(x, 1.0), ref.gaussian_gram(x.cpu().numpy(), 1.0))
