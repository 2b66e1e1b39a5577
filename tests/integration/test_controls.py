"""The controls measured beside every estimate: the null floor and the fixed-width control.

Each is checked where its answer is known: on independent data the floor and the estimate agree
within their spread; on a perfectly informative layer the estimate is far above the floor; the
fixed-width control equals the functional API at the held widths, and equals the estimate when
the widths cannot move. Each split keeps its own width state.
"""

from __future__ import annotations

import statistics
import zlib

import pytest
import torch
from torch import nn

from infoplane import InformationPlane, gaussian_gram, label_gram, mutual_information
from infoplane.errors import InvalidParameterError, InvalidTypeError, LayerNotFoundError
from infoplane.experiments.models import DigitsMLP


class Identity(nn.Module):
    """The layer ``t`` is a fixed function of the input: the model returns ``x`` itself."""

    def __init__(self) -> None:
        super().__init__()
        self.t = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.t(x)


def _plane(model: nn.Module, **kw) -> InformationPlane:
    return InformationPlane(model, layers=["t"], include_output=False, **kw)


def test_null_floor_matches_the_estimate_on_independent_data() -> None:
    """Random t and random labels (METHOD.md's example): the alignment width makes I(T;Y) large,
    and the floor, measured at the same widths with the labels permuted, is just as large."""
    est, null = [], []
    for seed in range(12):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(100, 8, generator=g, dtype=torch.float64)
        y = torch.randint(0, 10, (100,), generator=g)
        r = _plane(Identity(), alpha=1.0, run=seed).measure(x, y, step=0)["t"]
        est.append(r["i_ty"])
        null.append(r["i_ty_null"])
    spread = statistics.stdev(est) + statistics.stdev(null)
    assert statistics.mean(est) > 0.5  # the estimator's bias: far from the true value 0
    assert abs(statistics.mean(est) - statistics.mean(null)) < spread


def test_informative_layer_is_far_above_its_floor() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(100) % 10
    x = torch.nn.functional.one_hot(y, 10).double() * 5 + 0.01 * torch.randn(
        100, 10, generator=g, dtype=torch.float64
    )
    r = _plane(Identity(), alpha=1.0, width=1.0, x_width=1.0).measure(x, y, step=0)["t"]
    assert r["i_ty"] == pytest.approx(r["h_y"], abs=1e-6)  # I(T;Y) = S(Y) = log2 10
    assert r["i_ty"] - r["i_ty_null"] > 2.5
    assert r["i_xt"] - r["i_xt_null"] > 2.5


def _documented_permutations(run: int, split: str, n: int, draws: int):
    """The null draws' permutations as documented: one generator seeded by (run, split), the
    draws' (X, Y) permutations taken in turn."""
    g = torch.Generator().manual_seed(run * 1_000_003 + zlib.crc32(split.encode()))
    perms = [torch.randperm(n, generator=g) for _ in range(2 * draws)]
    return perms[0::2], perms[1::2]


@pytest.mark.parametrize("draws", [1, 5, 19])
def test_null_distribution_equals_the_functional_api_on_the_permuted_samples(draws) -> None:
    """An independent computation: permute the samples as documented and measure each draw with
    the functional API at the same widths; the record holds their mean, 95% quantile and the
    permutation p-value (1 + #{draw >= estimate}) / (B + 1)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(60, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (60,), generator=g)
    run, split = 7, "test"
    plane = _plane(Identity(), alpha=1.3, width=0.9, x_width=1.7, run=run, null_permutations=draws)
    r = plane.measure(x, y, step=3, split=split)["t"]
    pxs, pys = _documented_permutations(run, split, 60, draws)
    k_t = gaussian_gram(x, 0.9)
    for name, values in (
        (
            "i_xt",
            [float(mutual_information(gaussian_gram(x[p], 1.7), k_t, alpha=1.3)) for p in pxs],
        ),
        ("i_ty", [float(mutual_information(k_t, label_gram(y[p]), alpha=1.3)) for p in pys]),
    ):
        drawn = torch.tensor(values, dtype=torch.float64)
        assert r[f"{name}_null"] == pytest.approx(statistics.fmean(values), abs=1e-10)
        assert r[f"{name}_null_q95"] == pytest.approx(float(drawn.quantile(0.95)), abs=1e-10)
        above = sum(v >= r[name] for v in values)
        assert r[f"{name}_p"] == pytest.approx((1 + above) / (draws + 1), abs=1e-12)


def test_permutation_p_value_is_uniform_on_independent_data() -> None:
    """Independent T and Y at a fixed width: the p-value of I(T;Y) is (super-)uniform on
    {1/20, ..., 1}, so it is <= 0.05 in about 5% of replicates (binomial 99.9% bound)."""
    hits = 0
    reps = 200
    for seed in range(reps):
        g = torch.Generator().manual_seed(100 + seed)
        x = torch.randn(40, 6, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (40,), generator=g)
        r = _plane(Identity(), width=2.0, x_width=2.0, run=seed).measure(x, y, step=0)["t"]
        hits += r["i_ty_p"] <= 0.05
    assert hits <= 22  # P(Binomial(200, 0.05) > 22) < 0.001


def test_fixed_width_control_equals_the_estimate_when_the_batch_does_not_change() -> None:
    """A memoryless width rule references the first batch; the same batch again has the same
    scale, so the control's width and values equal the estimate's."""
    g = torch.Generator().manual_seed(1)
    plane = _plane(Identity(), width=0.8, x_width=2.0)
    x = torch.randn(50, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (50,), generator=g)
    for step in range(3):
        r = plane.measure(x, y, step=step)["t"]
        assert r["sigma_fixed"] == pytest.approx(0.8, rel=1e-14)
        assert r["i_xt_fixed"] == pytest.approx(r["i_xt"], abs=1e-12)
        assert r["i_ty_fixed"] == pytest.approx(r["i_ty"], abs=1e-12)
        assert r["h_t_fixed"] == pytest.approx(r["h_t"], abs=1e-12)


def test_fixed_width_control_is_scale_free() -> None:
    """T = c X with c moving 1 -> 0.2 carries the same information: at a fixed absolute width
    the entropy would move, the control does not (to round-off)."""
    g = torch.Generator().manual_seed(8)
    x = torch.randn(60, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (60,), generator=g)

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.t = nn.Identity()
            self.c = 1.0

        def forward(self, v):
            return self.t(self.c * v)

    model = Scaled()
    plane = _plane(model, width=1.2, x_width=2.0)
    got = []
    for step, c in enumerate((1.0, 0.6, 0.2)):
        model.c = c
        got.append(plane.measure(x, y, step=step)["t"])
    for r in got[1:]:
        assert r["i_xt_fixed"] == pytest.approx(got[0]["i_xt_fixed"], abs=1e-10)
        assert r["i_ty_fixed"] == pytest.approx(got[0]["i_ty_fixed"], abs=1e-10)
    assert got[2]["sigma_fixed"] == pytest.approx(0.2 * got[0]["sigma_fixed"], rel=1e-12)
    assert got[2]["h_t"] < got[0]["h_t"] - 0.5  # the estimate at its absolute width moved


def _median_distance(t: torch.Tensor) -> float:
    d = torch.cdist(t, t)
    iu = torch.triu_indices(len(t), len(t), offset=1)
    return float(d[iu[0], iu[1]].median())


def test_fixed_width_control_starts_once_the_moving_average_settled() -> None:
    """The alignment rule's moving average: the control is NaN until the rule has settled (its
    warm-up over and its first width's weight below 10%), then holds the ratio of width to the
    batch's median distance found at that reference step."""
    plane = _plane(Identity(), alpha=1.0, x_width=2.0)
    g = torch.Generator().manual_seed(2)
    records = []
    batches = []
    for step in range(30):
        x = torch.randn(60, 4, generator=g, dtype=torch.float64) * (1 + 0.02 * step)
        y = torch.randint(0, 3, (60,), generator=g)
        batches.append((x, y))
        records.append(plane.measure(x, y, step=step)["t"])
    started = [i for i, r in enumerate(records) if r["sigma_fixed"] == r["sigma_fixed"]]
    assert started and started[0] == 22 and started == list(range(22, 30))
    ref = started[0]
    ratio = records[ref]["sigma"] / _median_distance(batches[ref][0])
    x, y = batches[-1]
    width = ratio * _median_distance(x)
    assert records[-1]["sigma_fixed"] == pytest.approx(width, rel=1e-10)
    k_t = gaussian_gram(x, width)
    want_xt = mutual_information(gaussian_gram(x, 2.0), k_t, alpha=1.0)
    want_ty = mutual_information(k_t, label_gram(y), alpha=1.0)
    assert records[-1]["i_xt_fixed"] == pytest.approx(float(want_xt), abs=1e-9)
    assert records[-1]["i_ty_fixed"] == pytest.approx(float(want_ty), abs=1e-9)


def test_fixed_widths_given_by_the_user_are_used() -> None:
    """Absolute widths (not scale-free), used from the first batch on."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (40,), generator=g)
    plane = _plane(Identity(), alpha=2.0, fixed_widths={"t": 0.5, "input": 1.5})
    r = plane.measure(x, y, step=0)["t"]
    want = mutual_information(gaussian_gram(x, 1.5), gaussian_gram(x, 0.5), alpha=2.0)
    assert r["i_xt_fixed"] == pytest.approx(float(want), abs=1e-10)
    assert r["sigma_fixed"] == 0.5


def test_saturation_is_flagged() -> None:
    """A tiny width makes the Gram the identity: S(T) = log2 N, flagged; a sensible width is
    not."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(50, 4, generator=g, dtype=torch.float64)
    y = torch.arange(50) % 5
    tiny = _plane(Identity(), width=1e-3, x_width=2.0).measure(x, y, step=0)["t"]
    assert tiny["saturated"] == 1.0 and tiny["saturated_fixed"] == 1.0
    fine = _plane(Identity(), width=2.0, x_width=2.0).measure(x, y, step=0)["t"]
    assert fine["saturated"] == 0.0 and fine["saturated_fixed"] == 0.0


def test_controls_can_be_turned_off_and_are_recorded() -> None:
    x = torch.randn(30, 4, dtype=torch.float64)
    y = torch.arange(30) % 3
    off = _plane(Identity(), controls=()).measure(x, y, step=0)["t"]
    assert set(off) == {"i_xt", "i_ty", "h_t", "h_x", "h_y", "sigma", "saturated"}
    plane = _plane(Identity(), controls=("null",))
    on = plane.measure(x, y, step=0)["t"]
    assert set(on) - set(off) == {
        "i_xt_null",
        "i_ty_null",
        "i_xt_null_q95",
        "i_ty_null_q95",
        "i_xt_p",
        "i_ty_p",
    }
    (record,) = plane.history.records
    assert record["i_ty_null"] == on["i_ty_null"]
    assert record["i_xt_fixed"] != record["i_xt_fixed"]  # NaN: the control was off
    assert plane.history.config["controls"] == ["null"]


@pytest.mark.parametrize(
    ("controls", "error"),
    [
        ("null", InvalidTypeError),
        (("null", "null"), InvalidParameterError),
        (("shuffle",), InvalidParameterError),
    ],
)
def test_bad_controls_are_refused(controls, error) -> None:
    with pytest.raises(error, match="controls"):
        _plane(Identity(), controls=controls)


def test_bad_fixed_widths_are_refused() -> None:
    with pytest.raises(LayerNotFoundError, match="fixed_widths"):
        _plane(Identity(), fixed_widths={"nope": 1.0})
    with pytest.raises(InvalidParameterError, match="fixed_widths"):
        _plane(Identity(), fixed_widths={"t": -1.0})


def test_each_split_keeps_its_own_width_state() -> None:
    """Measuring test batches between training steps leaves the training widths exactly as a
    plane that measures training batches alone."""
    torch.manual_seed(0)
    model = DigitsMLP()
    g = torch.Generator().manual_seed(5)
    batches = [
        (torch.rand(60, 64, generator=g), torch.randint(0, 10, (60,), generator=g))
        for _ in range(2)
    ]
    alone = InformationPlane(model, controls=())
    mixed = InformationPlane(model, controls=())
    for step, (x, y) in enumerate(batches * 3):
        a = alone.measure(x, y, step=step)
        m = mixed.measure(x, y, step=step)
        mixed.measure(torch.rand(60, 64, generator=g), y, step=step, split="test")
        assert a == m
    assert alone.widths("train").state_dict() == mixed.widths("train").state_dict()
    assert mixed.widths("test").state_dict() != mixed.widths("train").state_dict()


def test_measure_accepts_an_input_that_requires_grad() -> None:
    """The tracker measures without building a graph; no autograd error reaches the user."""
    x = torch.randn(40, 4, dtype=torch.float64, requires_grad=True)
    y = torch.arange(40) % 2
    r = _plane(Identity(), width=1.0, x_width=1.0).measure(x, y, step=0)["t"]
    want = mutual_information(gaussian_gram(x.detach(), 1.0), label_gram(y))
    assert r["i_ty"] == pytest.approx(float(want), abs=1e-10)


def test_probe_null_distribution_averages_each_draw_over_the_mini_batches() -> None:
    """A probe of k mini-batches: draw b is averaged over the batches and compared with the
    averaged estimate (an exchangeable pair under the null), computed here from single-batch
    measurements with the same permutations."""
    g = torch.Generator().manual_seed(9)
    x = torch.randn(120, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (120,), generator=g)
    kw = {"alpha": 1.0, "width": 0.9, "x_width": 1.7, "null_permutations": 9}
    probe = _plane(Identity(), **kw).measure_probe((x, y), step=0, batch_size=40)["t"]
    pxs, pys = _documented_permutations(0, "test", 40, 9)
    est = {"i_xt": [], "i_ty": []}
    draws = {"i_xt": [], "i_ty": []}
    for b in range(3):
        xb, yb = x[40 * b : 40 * (b + 1)], y[40 * b : 40 * (b + 1)]
        k_t = gaussian_gram(xb, 0.9)
        k_x = gaussian_gram(xb, 1.7)
        est["i_xt"].append(float(mutual_information(k_x, k_t, alpha=1.0)))
        est["i_ty"].append(float(mutual_information(k_t, label_gram(yb), alpha=1.0)))
        draws["i_xt"].append(
            [float(mutual_information(gaussian_gram(xb[p], 1.7), k_t, alpha=1.0)) for p in pxs]
        )
        draws["i_ty"].append(
            [float(mutual_information(k_t, label_gram(yb[p]), alpha=1.0)) for p in pys]
        )
    for name in ("i_xt", "i_ty"):
        mean_est = statistics.fmean(est[name])
        mean_draws = torch.tensor(draws[name], dtype=torch.float64).mean(dim=0)
        assert probe[name] == pytest.approx(mean_est, abs=1e-10)
        assert probe[f"{name}_null"] == pytest.approx(float(mean_draws.mean()), abs=1e-10)
        above = int((mean_draws >= probe[name]).sum())
        assert probe[f"{name}_p"] == pytest.approx((1 + above) / 10, abs=1e-12)
