"""Every public entry point of the estimator core rejects bad input with one of infoplane's
exceptions and a one-line message that names the function (one table-driven test)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import infoplane
from infoplane import widths
from infoplane.errors import (
    DeviceMismatchError,
    InfoPlaneError,
    InvalidInputError,
    InvalidParameterError,
    InvalidTypeError,
)

pytestmark = pytest.mark.usefixtures("single_thread")

P, I, T, D = InvalidParameterError, InvalidInputError, InvalidTypeError, DeviceMismatchError
NAN, INF = float("nan"), float("inf")

X = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
Y = torch.tensor([0, 1, 0, 2, 1])
G = infoplane.gaussian_gram(X, 1.0)
G4 = infoplane.gaussian_gram(X[:4], 1.0)  # a Gram of another N
KY = infoplane.label_gram(Y)
D2 = infoplane.squared_distances(X)
META = G.to("meta")  # a tensor on another device, without needing a GPU


def _with(t, index, value):
    t = t.clone()
    t[index] = value
    return t


ASYM = _with(G, (0, 1), 0.5)
NAN_X, INF_X = _with(X, (1, 2), NAN), _with(X, (0, 0), -INF)
NEG_DIAG = G - 2 * torch.eye(5, dtype=torch.float64)
NEG_D2 = _with(_with(D2, (0, 1), -1.0), (1, 0), -1.0)
# symmetric, unit diagonal, v K v < 0 for v = (1, -1, 1, 0, 0): not a Gram of any kernel
NOT_PSD = G.clone()
for (i, j), value in {(0, 1): 0.99, (0, 2): -0.99, (1, 2): 0.99}.items():
    NOT_PSD[i, j] = NOT_PSD[j, i] = value


def case(id_, fn, *args, exc, frag, who=None, **kwargs):
    """One row: call ``fn(*args, **kwargs)``, expect ``exc`` from ``who`` with ``frag``."""
    who = who or fn.__name__
    return pytest.param(who, fn, args, kwargs, exc, frag, id=f"{who}-{id_}")


# Bad Grams, for every function that takes Grams: (id, gram, exception, fragment)
BAD_GRAMS = [
    ("non-square", torch.ones(5, 4), I, "square matrix"),
    ("1-d", torch.ones(5), I, "square matrix"),
    ("N=1", torch.ones(1, 1), I, "N >= 2"),
    ("empty", torch.empty(0, 0), I, "N >= 2"),
    ("asymmetric", ASYM, I, "symmetric"),
    ("nan", _with(G, (1, 1), NAN), I, "finite"),
    ("inf", _with(G, (0, 3), INF), I, "finite"),
    ("negative-diagonal", NEG_DIAG, I, "positive diagonal"),
    ("zero-diagonal", _with(G, (2, 2), 0.0), I, "positive diagonal"),
    ("bool", torch.ones(5, 5, dtype=torch.bool), T, "floating dtype"),
    ("string", "gram", T, "torch.Tensor or numpy array"),
    ("none", None, T, "torch.Tensor or numpy array"),
    ("numpy-strings", np.array([["a", "b"], ["c", "d"]]), T, "numeric"),
]
GRAM_TAKERS = [
    (infoplane.renyi_entropy, lambda g: (g,)),
    (infoplane.normalize_gram, lambda g: (g,)),
    (infoplane.joint_entropy, lambda g: (G, g)),
    (infoplane.conditional_entropy, lambda g: (g, G)),
    (infoplane.mutual_information, lambda g: (G, g)),
    (infoplane.total_correlation, lambda g: (G, KY, g)),
]
# Bad samples, for every function that takes samples x [N, ...]
BAD_DATA = [
    ("N=1", X[:1], I, "N >= 2"),
    ("no-samples", torch.empty(0, 3), I, "non-empty"),
    ("no-features", torch.empty(5, 0), I, "non-empty"),
    ("0-d", torch.tensor(1.0), I, "0-d"),
    ("nan", NAN_X, I, "NaN/Inf"),
    ("inf", INF_X, I, "NaN/Inf"),
    ("bool", X > 0, T, "real numeric dtype"),
    ("complex", X.to(torch.complex128), T, "real numeric dtype"),
    ("string", "x", T, "torch.Tensor or numpy array"),
    ("none", None, T, "torch.Tensor or numpy array"),
    ("ragged", [[1.0, 2.0], [3.0]], T, "unconvertible"),
    ("object-array", np.array([{"a": 1}, {"b": 2}]), T, "dtype object"),
]
DATA_TAKERS = [
    (infoplane.gaussian_gram, lambda x: (x, 1.0)),
    (infoplane.squared_distances, lambda x: (x,)),
    (widths.median_distance, lambda x: (x,)),
    (widths.knn_distance, lambda x: (x, 1)),
    (widths.silverman, lambda x: (x,)),
    (widths.scott, lambda x: (x,)),
    (widths.kernel_alignment, lambda x: (x, _same_n(x), [1.0])),
    (widths.alignment_sigma, lambda x: (x, _same_n(x))),
]


def _same_n(x):
    """A label Gram of the right size for ``x`` where it has one (so x's own check answers)."""
    n = x.shape[0] if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] >= 2 else 5
    return infoplane.label_gram(torch.arange(n) % 2)


# alpha = inf is the min-entropy order of the entropies (tests/unit/test_functional_orders.py)
BAD_ALPHAS = [0.0, -1.0, NAN, -INF, None, "2", True]
MULTI = [
    infoplane.joint_entropy,
    infoplane.conditional_entropy,
    infoplane.mutual_information,
    infoplane.total_correlation,
]

CASES = [
    *[
        case(f"gram-{gid}", fn, *make(g), exc=exc, frag=frag)
        for fn, make in GRAM_TAKERS
        for gid, g, exc, frag in BAD_GRAMS
    ],
    *[
        case(f"x-{xid}", fn, *make(x), exc=exc, frag=frag)
        for fn, make in DATA_TAKERS
        for xid, x, exc, frag in BAD_DATA
    ],
    *[
        case(f"alpha-{a!r}", fn, G, KY, alpha=a, exc=P, frag="alpha")
        for fn in MULTI
        for a in BAD_ALPHAS
    ],
    *[case(f"alpha-{a!r}", infoplane.renyi_entropy, G, a, exc=P, frag="alpha") for a in BAD_ALPHAS],
    case(
        "alpha-vector", infoplane.renyi_entropy, G, torch.tensor([1.0, 2.0]), exc=P, frag="scalar"
    ),
    # the width of the Gaussian kernel
    *[
        case(f"sigma-{s!r}", infoplane.gaussian_gram, X, s, exc=P, frag="sigma")
        for s in (0.0, -1.0, NAN, INF, -INF, None, "1.0", True)
    ],
    case("sigma-vector", infoplane.gaussian_gram, X, torch.ones(2), exc=P, frag="scalar"),
    *[
        case(f"dtype-{dt}", fn, X, *extra, dtype=dt, exc=P, frag="floating dtype")
        for fn, extra in ((infoplane.gaussian_gram, (1.0,)), (infoplane.squared_distances, ()))
        for dt in (torch.int64, torch.bool, "float64")
    ],
    case("sparse", infoplane.gaussian_gram, X.to_sparse(), 1.0, exc=T, frag="dense tensor"),
    case("overflow", infoplane.squared_distances, X * 1e160, exc=I, frag="fit in"),
    # Grams that are not positive semi-definite beyond round-off, and sparse Grams
    case("not-psd-2x2", infoplane.renyi_entropy, [[1.0, 2.0], [2.0, 1.0]], exc=I, frag="semi-def"),
    *[
        case("not-psd", fn, *make(NOT_PSD), exc=I, frag="positive semi-definite")
        for fn, make in GRAM_TAKERS
        if fn not in (infoplane.normalize_gram, infoplane.joint_entropy)
    ],
    case("not-psd", infoplane.joint_entropy, NOT_PSD, exc=I, frag="positive semi-definite"),
    case("not-psd-alpha-2", infoplane.renyi_entropy, NOT_PSD, 2.0, exc=I, frag="semi-definite"),
    *[case("sparse", fn, *make(G.to_sparse()), exc=T, frag="dense") for fn, make in GRAM_TAKERS],
    # batch shapes that do not broadcast
    *[
        case("batch-shapes", fn, torch.stack([G, G]), torch.stack([G, G, G]), exc=I, frag="broadc")
        for fn in MULTI
    ],
    # labels
    case("float-ids", infoplane.label_gram, Y.double(), exc=T, frag="integer class ids"),
    case("bool-ids", infoplane.label_gram, Y > 0, exc=T, frag="integer class ids"),
    case("negative-ids", infoplane.label_gram, Y - 1, exc=I, frag="non-negative"),
    case("ids-too-large", infoplane.label_gram, Y, 2, exc=I, frag="below num_classes = 2"),
    case("one-label", infoplane.label_gram, Y[:1], exc=I, frag="N >= 2"),
    case("no-labels", infoplane.label_gram, torch.zeros(0, dtype=torch.long), exc=I, frag="N >= 2"),
    case("3-d", infoplane.label_gram, Y.reshape(5, 1, 1), exc=I, frag="class ids [N]"),
    case("one-hot-width", infoplane.label_gram, torch.eye(5)[:, :3], 5, exc=I, frag="= 5 columns"),
    case("one-hot-negative", infoplane.label_gram, -torch.eye(3), exc=I, frag="non-negative"),
    case("one-hot-nan", infoplane.label_gram, torch.eye(3) * NAN, exc=I, frag="NaN/Inf"),
    case("one-hot-one-row", infoplane.label_gram, torch.eye(5)[:1], exc=I, frag="N >= 2"),
    case("string-ids", infoplane.label_gram, np.array(["a", "b"]), exc=T, frag="numeric"),
    case("none", infoplane.label_gram, None, exc=T, frag="torch.Tensor"),
    case("string", infoplane.label_gram, "abc", exc=T, frag="torch.Tensor"),
    case("gauss-ids-too-large", infoplane.label_gram, Y, 2, sigma=0.5, exc=I, frag="below num_"),
    case("gauss-sigma", infoplane.label_gram, Y, sigma=-1.0, exc=P, frag="sigma"),
    case("int-dtype", infoplane.label_gram, Y, dtype=torch.int64, exc=P, frag="floating dtype"),
    *[
        case(f"num_classes-{k!r}", infoplane.label_gram, Y, k, exc=P, frag="num_classes")
        for k in (0, -2, 2.5, "3", True)
    ],
    # several Grams: how many, of which N, on which device, which method
    case("no-gram", infoplane.joint_entropy, exc=I, frag="at least one"),
    case("no-gram", infoplane.total_correlation, exc=I, frag="at least one"),
    case("one-list", infoplane.joint_entropy, [G, KY], exc=I, frag="(*grams)"),
    case("one-tuple", infoplane.total_correlation, (G, KY), exc=I, frag="separate arguments"),
    *[case("sizes", fn, G, G4, exc=I, frag="same N") for fn in MULTI],
    *[case("device", fn, G, META, exc=D, frag="got meta") for fn in MULTI],
    *[case("method", fn, G, G, method="fast", exc=P, frag="method") for fn in MULTI],
    case("method", infoplane.renyi_entropy, G, method=None, exc=P, frag="method"),
    # widths
    *[
        case(f"k-{k!r}", widths.knn_distance, X, k, exc=P, frag="k as an integer")
        for k in (0, 5, -1, 1.5, True, None, "2")
    ],
    *[
        case(f"sigmas-{i}", widths.kernel_alignment, X, KY, s, exc=P, frag="sigmas")
        for i, s in enumerate(([], [1.0, -1.0], [NAN], [INF], "ab", None, [[1.0], [2.0, 3.0]], 0.0))
    ],
    case("y-gram-n", widths.kernel_alignment, X, G4, [1.0], exc=I, frag="shape (5, 5)"),
    case("y-gram-asym", widths.kernel_alignment, X, ASYM, [1.0], exc=I, frag="symmetric"),
    case("y-gram-none", widths.kernel_alignment, X, None, [1.0], exc=T, frag="y_gram"),
    case("device", widths.kernel_alignment, X, META, [1.0], exc=D, frag="got meta"),
    case("y-gram-n", widths.alignment_sigma, X, G4, exc=I, frag="shape (5, 5)"),
    case("y-gram-batch", widths.alignment_sigma, X, torch.stack([KY, KY]), exc=I, frag="shape"),
    case("device", widths.alignment_sigma, X, META, exc=D, frag="got meta"),
    case("num-0", widths.alignment_sigma, X, KY, num_candidates=0, exc=P, frag="num_candidates"),
    case("num-2.5", widths.alignment_sigma, X, KY, num_candidates=2.5, exc=P, frag="num_cand"),
    case("low-0", widths.alignment_sigma, X, KY, low=0.0, exc=P, frag="low"),
    case("high-nan", widths.alignment_sigma, X, KY, high=NAN, exc=P, frag="high"),
    case("range", widths.alignment_sigma, X, KY, low=5.0, high=1.0, exc=P, frag="low <= high"),
    case("non-square", widths.candidate_grid, D2[:, :4], exc=I, frag="[N, N]"),
    case("N=1", widths.candidate_grid, D2[:1, :1], exc=I, frag="N >= 2"),
    case("negative", widths.candidate_grid, NEG_D2, exc=I, frag="non-negative"),
    case("nan", widths.candidate_grid, D2 * NAN, exc=I, frag="NaN/Inf"),
    case("string", widths.candidate_grid, "d2", exc=T, frag="torch.Tensor"),
    case("num-0", widths.candidate_grid, D2, 0, exc=P, frag="num"),
    case("num-bool", widths.candidate_grid, D2, True, exc=P, frag="num"),
    case("range", widths.candidate_grid, D2, 5, low=2.0, high=1.0, exc=P, frag="low <= high"),
    # rule objects
    *[
        case(f"sigma-{s!r}", widths.Fixed, s, exc=P, frag="sigma")
        for s in (0.0, -2.0, NAN, INF, None, "1")
    ],
    *[case(f"k-{k!r}", widths.KNN, k, exc=P, frag="k as an integer") for k in (0, -3, 2.5, True)],
    *[
        case(f"{kw}", widths.LabelAlignment, exc=P, frag=frag, **kw)
        for kw, frag in (
            ({"beta": 1.0}, "beta"),
            ({"beta": -0.1}, "beta"),
            ({"beta": NAN}, "beta"),
            ({"beta": True}, "beta"),
            ({"num_candidates": 0}, "num_candidates"),
            ({"warmup_candidates": -1}, "warmup_candidates"),
            ({"warmup_steps": -1}, "warmup_steps"),
            ({"warmup_steps": 1.5}, "warmup_steps"),
            ({"low": -1.0}, "low"),
            ({"low": 3.0, "high": 2.0}, "low <= high"),
        )
    ],
    *[
        case(
            cid,
            lambda y: widths.LabelAlignment()(D2, 3, y),
            yg,
            exc=e,
            frag=f,
            who="LabelAlignment",
        )
        for cid, yg, e, f in (
            ("call-without-labels", None, I, "label Gram"),
            ("call-y-gram-n", G4, I, "shape (5, 5)"),
            ("call-device", META, D, "got meta"),
        )
    ],
    *[
        case(f"{spec!r}", widths.make_width_rule, spec, exc=P, frag=frag)
        for spec, frag in (
            ("bogus", "expected a rule in"),
            ("Median", "expected a rule in"),
            (None, "NoneType"),
            ([1.0], "list"),
            (True, "bool"),
            (0.0, "spec"),
            (-1, "spec"),
            (NAN, "spec"),
        )
    ],
]


@pytest.mark.parametrize(("who", "fn", "args", "kwargs", "exc", "fragment"), CASES)
def test_bad_input_raises_a_one_line_library_error(who, fn, args, kwargs, exc, fragment):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    err = info.value
    assert type(err) is exc  # the documented class, not a wider or a built-in one
    assert isinstance(err, InfoPlaneError)
    assert isinstance(err, ValueError if exc in (P, I, D) else TypeError)
    message = str(err)
    assert "\n" not in message, message
    assert message.startswith(f"{who}: "), message
    assert fragment in message, message


@pytest.mark.parametrize("where", [(3, 500), (499, 260), (300, 299)])
def test_the_symmetry_check_finds_an_asymmetry_in_any_tile_of_a_batch(where):
    """The check runs tile by tile (256 x 256): an asymmetry in an off-diagonal tile of the second
    matrix of a batch is found with its relative size; round-off below 1e-10 passes, and the
    exactly symmetric batch passes unchanged."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 520, 4, generator=g, dtype=torch.float64)
    gram = torch.exp(-torch.cdist(x, x).square() / 8.0)
    gram = (gram + gram.transpose(-1, -2)) / 2.0
    assert infoplane.normalize_gram(gram).shape == gram.shape  # exactly symmetric: accepted
    i, j = where
    nudged = gram.clone()
    nudged[1, i, j] += 1e-12  # round-off: accepted
    infoplane.renyi_entropy(nudged[1], 2.0)
    nudged[1, i, j] += 3e-6
    with pytest.raises(InvalidInputError, match=r"relative asymmetry of 3(\.0\d*)?e-06"):
        infoplane.normalize_gram(nudged)
