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


def test_null_floor_equals_the_functional_api_on_the_permuted_samples() -> None:
    """An independent computation: permute the samples as documented (seeded by run and split)
    and measure with the functional API at the same widths."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(60, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (60,), generator=g)
    run, split = 7, "test"
    r = _plane(Identity(), alpha=1.3, width=0.9, x_width=1.7, run=run).measure(
        x, y, step=3, split=split
    )["t"]
    perm = torch.Generator().manual_seed(run * 1_000_003 + zlib.crc32(split.encode()))
    px = torch.randperm(60, generator=perm)
    py = torch.randperm(60, generator=perm)
    k_t = gaussian_gram(x, 0.9)
    want_xt = mutual_information(gaussian_gram(x[px], 1.7), k_t, alpha=1.3)
    want_ty = mutual_information(k_t, label_gram(y[py]), alpha=1.3)
    assert r["i_xt_null"] == pytest.approx(float(want_xt), abs=1e-10)
    assert r["i_ty_null"] == pytest.approx(float(want_ty), abs=1e-10)


def test_fixed_width_control_equals_the_estimate_when_widths_cannot_move() -> None:
    g = torch.Generator().manual_seed(1)
    plane = _plane(Identity(), width=0.8, x_width=2.0)
    for step in range(3):
        x = torch.randn(50, 4, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (50,), generator=g)
        r = plane.measure(x, y, step=step)["t"]
        assert r["i_xt_fixed"] == r["i_xt"]
        assert r["i_ty_fixed"] == r["i_ty"]


def test_fixed_width_control_holds_the_first_batch_widths() -> None:
    """With the adaptive alignment rule, the control uses the widths of the split's first
    batch at every later step: equal to the functional API at those widths."""
    torch.manual_seed(0)
    model = DigitsMLP()
    plane = InformationPlane(model, layers=["layer1.act"], include_output=False, alpha=1.0)
    g = torch.Generator().manual_seed(2)
    xs = [torch.rand(80, 64, generator=g) for _ in range(3)]
    ys = [torch.randint(0, 10, (80,), generator=g) for _ in range(3)]
    first = plane.measure(xs[0], ys[0], step=0)["layer1.act"]
    held = plane.state_dict()["fixed"]["train"]  # [input, layer1.act]
    assert held[1] == first["sigma"]
    last = plane.measure(xs[2], ys[2], step=2)["layer1.act"]
    acts = {}
    handle = model.get_submodule("layer1.act").register_forward_hook(
        lambda m, i, o: acts.__setitem__("t", o.detach().double())
    )
    try:
        model.eval()
        with torch.no_grad():
            model(xs[2])
    finally:
        handle.remove()
    want_xt = mutual_information(
        gaussian_gram(xs[2].double(), held[0]), gaussian_gram(acts["t"], held[1]), alpha=1.0
    )
    want_ty = mutual_information(gaussian_gram(acts["t"], held[1]), label_gram(ys[2]), alpha=1.0)
    assert last["i_xt_fixed"] == pytest.approx(float(want_xt), abs=1e-9)
    assert last["i_ty_fixed"] == pytest.approx(float(want_ty), abs=1e-9)
    assert last["sigma"] != held[1]  # the adaptive width moved; the control's did not


def test_fixed_widths_given_by_the_user_are_used() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (40,), generator=g)
    plane = _plane(Identity(), alpha=2.0, fixed_widths={"t": 0.5, "input": 1.5})
    r = plane.measure(x, y, step=0)["t"]
    want = mutual_information(gaussian_gram(x, 1.5), gaussian_gram(x, 0.5), alpha=2.0)
    assert r["i_xt_fixed"] == pytest.approx(float(want), abs=1e-10)


@pytest.mark.parametrize("x_width", ["median", 1.5])
def test_the_input_is_held_at_its_first_width_whatever_its_rule(x_width) -> None:
    """An adaptive input rule (its width moves) and a fixed one (the control shares the
    estimate's K_X): the control's input Gram is at the held width at every later step."""
    g = torch.Generator().manual_seed(5)
    plane = _plane(Identity(), alpha=1.01, x_width=x_width, width=0.7)
    batches = [
        (torch.randn(40, 3, generator=g, dtype=torch.float64) * (1 + s), torch.arange(40) % 2)
        for s in range(3)
    ]
    for step, (x, y) in enumerate(batches):
        plane.measure(x, y, step=step)
    held = plane.state_dict()["fixed"]["train"]
    x, y = batches[-1]
    got = plane.measure(x, y, step=3)["t"]
    want = mutual_information(gaussian_gram(x, held[0]), gaussian_gram(x, held[1]), alpha=1.01)
    assert got["i_xt_fixed"] == pytest.approx(float(want), abs=1e-10)
    assert got["sigma"] == 0.7 and (held[0] == 1.5) == (x_width == 1.5)
    assert plane._measurer._holds_input_width("train") == (x_width == 1.5)  # K_X shared


def test_controls_can_be_turned_off_and_are_recorded() -> None:
    x = torch.randn(30, 4, dtype=torch.float64)
    y = torch.arange(30) % 3
    off = _plane(Identity(), controls=()).measure(x, y, step=0)["t"]
    assert set(off) == {"i_xt", "i_ty", "h_t", "h_x", "h_y", "sigma"}
    plane = _plane(Identity(), controls=("null",))
    on = plane.measure(x, y, step=0)["t"]
    assert set(on) - set(off) == {"i_xt_null", "i_ty_null"}
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
