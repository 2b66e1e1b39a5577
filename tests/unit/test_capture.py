"""Forward-hook capture: hook hygiene, train/eval restoration, in-place ops, layer selection."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from infoplane import InformationPlane
from infoplane.capture import (
    ACTIVATION_TYPES,
    FunctionalActivation,
    capture,
    default_layers,
    eval_mode,
    first_tensor,
    hooks_left,
    is_activation,
    layer_names,
    missing_layers,
    trace_functional,
)
from infoplane.errors import (
    InfoPlaneError,
    InvalidInputError,
    InvalidTypeError,
    LayerNotFoundError,
)
from infoplane.experiments.models import DigitsCNN, DigitsMLP
from tests.helpers.hooks import assert_no_hooks, hooks_report, training_flags


# ------------------------------------------------------------------------------------ models
class Boom(RuntimeError):
    """The error a deliberately broken module raises."""


class Raising(nn.Module):
    """Raises ``exc`` in its forward."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.exc


def small_mlp(tail: nn.Module | None = None) -> nn.Sequential:
    """Linear -> Tanh -> Linear -> ReLU [-> tail] -> Linear, with BatchNorm and Dropout."""
    parts: OrderedDict[str, nn.Module] = OrderedDict(
        fc1=nn.Linear(6, 8),
        act1=nn.Tanh(),
        bn1=nn.BatchNorm1d(8),
        fc2=nn.Linear(8, 5),
        act2=nn.ReLU(),
        drop=nn.Dropout(0.5),
    )
    if tail is not None:
        parts["tail"] = tail
    parts["head"] = nn.Linear(5, 3)
    return nn.Sequential(parts)


class Nested(nn.Module):
    """Two levels of containers: ``encoder.block.act`` is a dotted name three deep."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.block = nn.Sequential(OrderedDict(lin=nn.Linear(4, 6), act=nn.Tanh()))
        self.encoder.proj = nn.Linear(6, 5)
        self.encoder.proj_act = nn.ReLU()
        self.unused = nn.Linear(5, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder.block(x)
        h = self.encoder.proj_act(self.encoder.proj(h))
        return self.head(h)


class InplaceNet(nn.Module):
    """``ReLU(inplace=True)`` followed by in-place ops on the same storage."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(5, 7)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(7, 4)
        self.relu2 = nn.ReLU(inplace=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.fc1(x))
        h.mul_(3.0).add_(1.0)  # mutates the tensor the hook saw
        g = self.relu2(self.fc2(h))
        g.sub_(0.5)
        return self.head(g)

    def reference(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The activations at hook time, computed without any in-place op."""
        relu = torch.relu(self.fc1(x))
        relu2 = torch.relu(self.fc2(relu * 3.0 + 1.0))
        return {"relu": relu, "relu2": relu2}


class TupleOut(nn.Module):
    """Returns ``(tensor, aux)``, ``{"a": tensor, ...}`` or a nested structure."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor):
        t = torch.tanh(x)
        if self.kind == "tuple":
            return t, t * 0.0 + 7.0
        if self.kind == "dict":
            return {"out": t, "aux": t + 1.0}
        if self.kind == "nested":
            return [None, ("label", {"z": t}), t + 5.0]
        return ("no", "tensor")


class MultiOutNet(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.multi = TupleOut(kind)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.multi(self.fc(x))
        return self.head(first_tensor(out) if self.multi.kind != "none" else self.fc(x))


class SharedTwice(nn.Module):
    """One activation module called twice in the forward."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.act(x))))


class Wrapped(nn.Module):
    """Holds the user's model as ``.module``, like DistributedDataParallel and DataParallel."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


@pytest.fixture
def x6() -> torch.Tensor:
    return torch.randn(12, 6, generator=torch.Generator().manual_seed(0))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# ------------------------------------------------------------------------------------ hooks_left
HOOK_KINDS = {
    "forward": lambda m: m.register_forward_hook(lambda *a: None),
    "forward_kwargs": lambda m: m.register_forward_hook(lambda *a: None, with_kwargs=True),
    "forward_pre": lambda m: m.register_forward_pre_hook(lambda *a: None),
    "forward_pre_kwargs": lambda m: m.register_forward_pre_hook(lambda *a: None, with_kwargs=True),
    "backward_legacy": lambda m: m.register_backward_hook(lambda *a: None),
    "full_backward": lambda m: m.register_full_backward_hook(lambda *a: None),
    "full_backward_pre": lambda m: m.register_full_backward_pre_hook(lambda *a: None),
}


@pytest.mark.parametrize("kind", sorted(HOOK_KINDS))
@pytest.mark.parametrize("where", ["", "fc2", "act2"])
def test_hooks_left_and_helper_see_every_kind_of_hook(kind: str, where: str) -> None:
    model = small_mlp()
    assert hooks_left(model) == []
    assert_no_hooks(model)
    module = model.get_submodule(where)
    handle = HOOK_KINDS[kind](module)
    expected = where or "<root>"
    assert hooks_left(model) == [expected]
    assert list(hooks_report(model)) == [expected]
    with pytest.raises(AssertionError, match=rf"{expected}: "):
        assert_no_hooks(model)
    handle.remove()
    assert hooks_left(model) == []
    assert_no_hooks(model)


def test_assert_no_hooks_names_every_offending_module() -> None:
    model = Nested()
    handles = [
        model.encoder.block.act.register_forward_hook(lambda *a: None),
        model.head.register_full_backward_hook(lambda *a: None),
    ]
    with pytest.raises(AssertionError) as info:
        assert_no_hooks(model)
    message = str(info.value)
    assert "encoder.block.act: forward x1" in message
    assert "head: backward" in message
    assert "hooks_left reported: ['encoder.block.act', 'head']" in message
    for h in handles:
        h.remove()
    assert_no_hooks(model)


def test_assert_no_hooks_sees_global_module_hooks() -> None:
    model = small_mlp()
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *a: None)
    try:
        with pytest.raises(AssertionError, match="<global>: global forward"):
            assert_no_hooks(model)
    finally:
        handle.remove()
    assert_no_hooks(model)


# ------------------------------------------------------------------------------------ capture
def test_capture_values_equal_a_manual_forward(x6: torch.Tensor) -> None:
    model = small_mlp().eval()
    with torch.no_grad(), capture(model, ["act2", "act1"]) as acts:
        out = model(x6)
    assert list(acts) == ["act1", "act2"]  # forward order, not the order asked
    with torch.no_grad():
        act1 = torch.tanh(model.fc1(x6))
        act2 = torch.relu(model.fc2(model.bn1(act1)))
        torch.testing.assert_close(model.head(act2), out, rtol=0, atol=0)
    torch.testing.assert_close(acts["act1"], act1, rtol=0, atol=0)
    torch.testing.assert_close(acts["act2"], act2, rtol=0, atol=0)
    assert not acts["act1"].requires_grad
    assert_no_hooks(model)


def test_capture_detaches_under_grad(x6: torch.Tensor) -> None:
    model = small_mlp()
    with capture(model, ["act1"]) as acts:
        model(x6).sum().backward()
    assert not acts["act1"].requires_grad
    assert model.fc1.weight.grad is not None
    assert_no_hooks(model)


EXCEPTIONS = [
    pytest.param(Boom("broken layer"), Boom, id="runtime-error"),
    pytest.param(KeyboardInterrupt(), KeyboardInterrupt, id="keyboard-interrupt"),
    pytest.param(SystemExit(3), SystemExit, id="system-exit"),
]


@pytest.mark.parametrize(("exc", "exc_type"), EXCEPTIONS)
def test_capture_removes_hooks_when_the_forward_raises(
    x6: torch.Tensor, exc: BaseException, exc_type: type[BaseException]
) -> None:
    model = small_mlp(tail=Raising(exc))
    with pytest.raises(exc_type), capture(model, ["act1", "act2", "head"]) as acts:
        model(x6)
    assert set(acts) == {"act1", "act2"}  # layers before the failure were captured
    assert_no_hooks(model)


@pytest.mark.parametrize(("exc", "exc_type"), EXCEPTIONS)
def test_capture_removes_hooks_when_another_hook_raises(
    x6: torch.Tensor, exc: BaseException, exc_type: type[BaseException]
) -> None:
    """An interrupt raised from inside a (user's) hook during the captured forward."""
    model = small_mlp()

    def interrupt(*_: object) -> None:
        raise exc

    user = model.fc2.register_forward_hook(interrupt)
    try:
        with pytest.raises(exc_type), capture(model, ["act1", "act2"]):
            model(x6)
        assert hooks_left(model) == ["fc2"]  # only the user's own hook is still there
    finally:
        user.remove()
    assert_no_hooks(model)


def test_capture_removes_hooks_when_the_body_raises(x6: torch.Tensor) -> None:
    model = small_mlp()
    with pytest.raises(KeyboardInterrupt), capture(model, ["act1"]):
        model(x6)
        raise KeyboardInterrupt
    assert_no_hooks(model)


def test_capture_bad_name_registers_nothing() -> None:
    model = small_mlp()
    with pytest.raises(LayerNotFoundError), capture(model, ["act1", "nope"]):
        pass  # pragma: no cover - never entered
    assert_no_hooks(model)


# ------------------------------------------------------------------------------------ eval_mode
def mixed_mode_model() -> nn.Sequential:
    """Parent in train mode with one submodule deliberately frozen in eval."""
    model = small_mlp().train()
    model.bn1.eval()
    return model


def dropout_train_parent_eval() -> nn.Sequential:
    """Parent in eval mode with one submodule deliberately left in train."""
    model = small_mlp().eval()
    model.drop.train()
    return model


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: small_mlp().train(), id="all-train"),
        pytest.param(lambda: small_mlp().eval(), id="all-eval"),
        pytest.param(mixed_mode_model, id="bn-eval-parent-train"),
        pytest.param(dropout_train_parent_eval, id="dropout-train-parent-eval"),
    ],
)
@pytest.mark.parametrize("fails", [False, True])
def test_eval_mode_restores_each_modules_flag(make, fails: bool) -> None:
    model = make()
    before = training_flags(model)
    try:
        with eval_mode(model):
            assert not any(training_flags(model).values())
            if fails:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        assert fails
    assert training_flags(model) == before


def test_plane_restores_mixed_modes_and_uses_eval(x6: torch.Tensor) -> None:
    model = mixed_mode_model()
    before = training_flags(model)
    assert before["<root>"] and not before["bn1"]
    y = torch.arange(12) % 3
    plane = InformationPlane(model, ["act1", "act2"], x_width=1.0, width=1.0)
    first = plane.measure(x6, y, step=0)
    assert training_flags(model) == before
    assert_no_hooks(model)
    # Dropout active during measurement would make two measurements differ.
    second = plane.measure(x6, y, step=1)
    assert first == second
    assert training_flags(model) == before


@pytest.mark.parametrize(("exc", "exc_type"), EXCEPTIONS)
def test_plane_cleans_up_when_the_forward_raises(
    x6: torch.Tensor, exc: BaseException, exc_type: type[BaseException]
) -> None:
    model = small_mlp(tail=Raising(exc)).train()
    model.fc2.eval()
    before = training_flags(model)
    plane = InformationPlane(model, ["act1", "act2"])
    with pytest.raises(exc_type):
        plane.measure(x6, torch.arange(12) % 3, step=0)
    assert training_flags(model) == before
    assert_no_hooks(model)
    assert len(plane.history) == 0


# ------------------------------------------------------------------------------------ in place
def test_inplace_relu_captures_the_activation_at_hook_time() -> None:
    model = InplaceNet().eval()
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model.reference(x)
        with capture(model, ["relu", "relu2"]) as acts:
            model(x)
    for name in ("relu", "relu2"):
        torch.testing.assert_close(acts[name], ref[name], rtol=1e-6, atol=1e-6)
        assert bool((acts[name] >= 0).all())  # the mutated tensors have negative entries (-0.5)
    assert_no_hooks(model)


def test_inplace_reference_differs_from_the_mutated_tensor() -> None:
    """Control: a hook keeping the tensor without a copy does see the mutation."""
    model = InplaceNet().eval()
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))
    kept: dict[str, torch.Tensor] = {}
    handle = model.relu.register_forward_hook(lambda m, i, o: kept.setdefault("relu", o))
    try:
        with torch.no_grad():
            ref = model.reference(x)
            model(x)
    finally:
        handle.remove()
    torch.testing.assert_close(kept["relu"], ref["relu"] * 3.0 + 1.0)
    assert not torch.allclose(kept["relu"], ref["relu"])


def test_inplace_model_measures_like_its_out_of_place_twin() -> None:
    inplace = InplaceNet().eval()
    twin = InplaceNet().eval()
    twin.load_state_dict(inplace.state_dict())
    twin.relu.inplace = False
    twin.relu2.inplace = False
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(2))
    y = torch.arange(30) % 3
    kwargs = {"x_width": 1.5, "width": {"relu": 2.0, "relu2": 1.0, "output": 0.5}}
    a = InformationPlane(inplace, ["relu", "relu2"], **kwargs).measure(x, y, step=0)
    b = InformationPlane(twin, ["relu", "relu2"], **kwargs).measure(x, y, step=0)
    for layer in a:
        for key in a[layer]:
            assert a[layer][key] == pytest.approx(b[layer][key], abs=1e-9)
    assert_no_hooks(inplace)


# ------------------------------------------------------------------------------------ selection
def test_nested_dotted_names() -> None:
    model = Nested().eval()
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        with capture(model, ["encoder.proj_act", "encoder.block.act"]) as acts:
            model(x)
        block = torch.tanh(model.encoder.block.lin(x))
        proj = torch.relu(model.encoder.proj(block))
    assert list(acts) == ["encoder.block.act", "encoder.proj_act"]
    torch.testing.assert_close(acts["encoder.block.act"], block, rtol=0, atol=0)
    torch.testing.assert_close(acts["encoder.proj_act"], proj, rtol=0, atol=0)
    assert_no_hooks(model)


@pytest.mark.parametrize(
    ("bad", "close"),
    [
        ("encoder.block.actt", "encoder.block.act"),
        ("encoder.blok.act", "encoder.block.act"),
        ("encoder.proj_ac", "encoder.proj_act"),
        ("Head", "head"),
    ],
)
@pytest.mark.parametrize("entry", ["capture", "plane"])
def test_unknown_name_lists_close_valid_names(bad: str, close: str, entry: str) -> None:
    model = Nested()
    with pytest.raises(LayerNotFoundError) as info:
        if entry == "capture":
            with capture(model, [bad]):
                pass  # pragma: no cover
        else:
            InformationPlane(model, [bad])
    message = str(info.value)
    assert repr(bad) in message
    assert repr(close) in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, InfoPlaneError)
    assert_no_hooks(model)


@pytest.mark.parametrize("bad", ["", "zzzzzz"])
def test_unknown_name_without_close_match_lists_valid_names(bad: str) -> None:
    model = Nested()
    with pytest.raises(LayerNotFoundError, match=r"Valid names include \['encoder'"):
        InformationPlane(model, [bad])


@pytest.mark.parametrize(
    ("layers", "error", "match"),
    [
        ("encoder.proj_act", InvalidTypeError, "list of module names"),
        ([3], InvalidTypeError, "layer names as strings"),
        (["head", "head"], InvalidInputError, "distinct layer names"),
    ],
)
def test_bad_layer_lists(layers, error, match: str) -> None:
    model = Nested()
    with pytest.raises(error, match=match):
        InformationPlane(model, layers)
    with pytest.raises(error, match=match), capture(model, layers):
        pass  # pragma: no cover
    assert_no_hooks(model)


def test_layer_that_does_not_run_is_named() -> None:
    model = Nested()
    x = torch.randn(10, 4)
    with torch.no_grad(), capture(model, ["unused", "head"]) as acts:
        model(x)
    assert list(acts) == ["head"]
    plane = InformationPlane(model, ["encoder.proj_act", "unused"])
    with pytest.raises(LayerNotFoundError, match=r"got none from \['unused'\]"):
        plane.measure(x, torch.arange(10) % 2, step=0)
    assert_no_hooks(model)
    assert len(plane.history) == 0


def test_module_that_runs_twice_is_measured_once_per_call() -> None:
    model = SharedTwice().eval()
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        first = torch.tanh(x)
        second = torch.tanh(model.fc1(first))
        with capture(model, ["fc1", "act"]) as acts:
            model(x)
        with capture(model, ["act:1"]) as only_second:
            model(x)
    assert list(acts) == ["act:0", "fc1", "act:1"]  # forward order, first call renamed in place
    torch.testing.assert_close(acts["act:0"], first, rtol=0, atol=0)
    torch.testing.assert_close(acts["act:1"], second, rtol=0, atol=0)
    assert list(only_second) == ["act:1"]
    torch.testing.assert_close(only_second["act:1"], second, rtol=0, atol=0)
    assert missing_layers(["act", "act:1", "act:2", "fc2"], acts) == ["act:2", "fc2"]
    assert_no_hooks(model)


def test_module_called_once_keeps_its_plain_name(x6: torch.Tensor) -> None:
    model = small_mlp().eval()
    with torch.no_grad(), capture(model, ["act1", "act2:0"]) as acts:
        model(x6)
    assert list(acts) == ["act1", "act2:0"]
    assert_no_hooks(model)


@pytest.mark.parametrize("kind", ["tuple", "dict", "nested"])
def test_tuple_and_dict_outputs_take_the_first_tensor(kind: str) -> None:
    model = MultiOutNet(kind).eval()
    x = torch.randn(9, 4, generator=torch.Generator().manual_seed(4))
    with torch.no_grad(), capture(model, ["multi"]) as acts:
        model(x)
        want = torch.tanh(model.fc(x))  # not the auxiliary outputs (t + 1, t + 5, 7)
    torch.testing.assert_close(acts["multi"], want, rtol=0, atol=0)
    assert_no_hooks(model)
    result = InformationPlane(model, ["multi"], x_width=1.0).measure(x, torch.arange(9) % 3, step=0)
    assert list(result) == ["multi", "output"]
    assert_no_hooks(model)


def test_output_without_a_tensor_is_an_error() -> None:
    model = MultiOutNet("none")
    with pytest.raises(InvalidTypeError, match=r"layer 'multi' to output a tensor"):
        with capture(model, ["multi"]):
            model(torch.randn(4, 4))
    assert_no_hooks(model)


@pytest.mark.parametrize("build", [DigitsMLP, DigitsCNN])
def test_wrapped_model_accepts_unwrapped_names(build) -> None:
    inner = build().eval()
    wrapped = Wrapped(inner)
    layers = list(inner.measured_layers)
    assert default_layers(wrapped) == layers
    x = torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    y = torch.arange(20) % 10
    with torch.no_grad(), capture(wrapped, layers) as via_wrapper:
        wrapped(x)
    with torch.no_grad(), capture(inner, layers) as direct:
        inner(x)
    assert list(via_wrapper) == layers
    for name in layers:
        torch.testing.assert_close(via_wrapper[name], direct[name], rtol=0, atol=0)
    a = InformationPlane(wrapped).measure(x, y, step=0)
    b = InformationPlane(inner).measure(x, y, step=0)
    # The same numbers, bit for bit (the fixed-width control is NaN in both at the first step).
    assert {k: {q: repr(v) for q, v in r.items()} for k, r in a.items()} == {
        k: {q: repr(v) for q, v in r.items()} for k, r in b.items()
    }
    assert_no_hooks(wrapped)


# ------------------------------------------------------------------------------------ defaults
def test_default_layers_declared_and_activation_modules() -> None:
    assert default_layers(DigitsMLP()) == ["layer1.act", "layer2.act", "layer3.act"]
    assert default_layers(small_mlp()) == ["act1", "act2"]
    assert default_layers(Nested()) == ["encoder.block.act", "encoder.proj_act"]


def test_default_layers_without_activation_modules() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    with pytest.raises(LayerNotFoundError, match=r"layers=\[\.\.\.\]"):
        default_layers(model)
    with pytest.raises(LayerNotFoundError):
        InformationPlane(model)


def test_default_layers_are_reordered_by_execution() -> None:
    """Registration order differs from forward order: results follow the forward."""

    class Reversed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.late = nn.ReLU()
            self.early = nn.Tanh()
            self.fc = nn.Linear(4, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.late(self.fc(self.early(x))))

    model = Reversed()
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(6))
    result = InformationPlane(model, x_width=1.0).measure(x, torch.arange(10) % 2, step=0)
    assert list(result) == ["early", "late", "output"]
    assert_no_hooks(model)


# ------------------------------------------------------------------------------------ any model
def test_activation_types_are_derived_from_torch() -> None:
    """Independent list: every class torch.nn documents under "Non-linear activations"."""
    expected = {
        "ELU", "Hardshrink", "Hardsigmoid", "Hardtanh", "Hardswish", "LeakyReLU", "LogSigmoid",
        "PReLU", "ReLU", "ReLU6", "RReLU", "SELU", "CELU", "GELU", "Sigmoid", "SiLU", "Mish",
        "Softplus", "Softshrink", "Softsign", "Tanh", "Tanhshrink", "Threshold", "GLU",
    }  # fmt: skip
    assert {cls.__name__ for cls in ACTIVATION_TYPES} == expected
    for cls in ACTIVATION_TYPES:
        assert getattr(nn, cls.__name__) is cls


class GELUActivation(nn.Module):
    """Shaped like Hugging Face's transformers.activations.GELUActivation (no children)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(x)


class NewGELUActivation(GELUActivation):
    pass


class GatedReLU(nn.Module):
    """Has children: a block, not an activation, whatever its name says."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) * self.gate(x)


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (nn.GELU(), True),
        (nn.Threshold(0.1, 0.0), True),
        (nn.GLU(), True),
        (nn.LogSigmoid(), True),
        (GELUActivation(), True),
        (NewGELUActivation(), True),
        (FunctionalActivation("relu"), True),
        (nn.Softmax(dim=1), False),
        (nn.LogSoftmax(dim=1), False),
        (nn.MultiheadAttention(4, 2), False),
        (nn.Linear(2, 2), False),
        (nn.Identity(), False),
        (GatedReLU(), False),
    ],
)
def test_is_activation_rule(module: nn.Module, expected: bool) -> None:
    assert is_activation(module) is expected


def test_default_layers_find_custom_activation_modules() -> None:
    model = nn.Sequential(
        OrderedDict(fc=nn.Linear(4, 4), gelu=NewGELUActivation(), gate=GatedReLU(), out=nn.Tanh())
    )
    assert default_layers(model) == ["gelu", "out"]


class Features(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.Tanh())
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def test_layers_as_modules_and_glob_patterns() -> None:
    model = Features().eval()
    x = torch.randn(7, 4, generator=torch.Generator().manual_seed(8))
    assert layer_names(model, ["features.*"], "t") == [f"features.{i}" for i in range(4)]
    assert layer_names(model, ["features.[13]", model.head], "t") == [
        "features.1",
        "features.3",
        "head",
    ]
    assert layer_names(Wrapped(model), [model.features[1], "head"], "t") == ["features.1", "head"]
    with torch.no_grad(), capture(model, [model.head, "features.?"]) as acts:
        out = model(x)
    assert list(acts) == [f"features.{i}" for i in range(4)] + ["head"]  # forward order
    torch.testing.assert_close(acts["head"], out, rtol=0, atol=0)
    assert_no_hooks(model)


@pytest.mark.parametrize(
    ("layers", "error", "match"),
    [
        (["features.9*"], LayerNotFoundError, "matching none"),
        ([nn.ReLU()], LayerNotFoundError, "not among model.named_modules"),
        (["features.*", "features.1"], InvalidInputError, "'features.1' twice"),
        ([None], InvalidTypeError, "strings or modules"),
    ],
)
def test_bad_modules_and_patterns(layers, error, match: str) -> None:
    model = Features()
    with pytest.raises(error, match=match), capture(model, layers):
        pass  # pragma: no cover
    assert_no_hooks(model)


class FunctionalNet(nn.Module):
    """Activations called as functions and tensor methods, one of them in place."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.relu(self.fc1(x))
        g = torch.tanh(self.fc2(h))
        g.mul_(2.0)  # mutates what torch.tanh returned
        return self.head(g.sigmoid())


def test_trace_functional_exposes_functional_activations() -> None:
    model = FunctionalNet().eval()
    x = torch.randn(9, 4, generator=torch.Generator().manual_seed(9))
    with pytest.raises(LayerNotFoundError, match="trace_functional"):
        default_layers(model)
    traced = trace_functional(model)
    names = default_layers(traced)
    assert names == ["functional.relu", "functional.tanh", "functional.sigmoid"]
    with torch.no_grad(), capture(traced, names) as acts:
        out = traced(x)
        h = torch.relu(model.fc1(x))
        g = torch.tanh(model.fc2(h))
        want = model.head(torch.sigmoid(2.0 * g))
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    torch.testing.assert_close(acts["functional.relu"], h, rtol=0, atol=0)
    torch.testing.assert_close(acts["functional.tanh"], g, rtol=0, atol=0)  # before mul_
    torch.testing.assert_close(acts["functional.sigmoid"], torch.sigmoid(2.0 * g))
    assert traced.fc1.weight is model.fc1.weight  # shares parameters: train one, measure other
    assert_no_hooks(traced)
    assert_no_hooks(model)


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(x))
        if h.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return h
        return -h


def test_trace_functional_refuses_an_untraceable_model() -> None:
    with pytest.raises(InvalidInputError, match=r"torch\.fx can trace, got Untraceable"):
        trace_functional(Untraceable())
    with pytest.raises(InvalidTypeError, match=r"torch\.nn\.Module"):
        trace_functional(lambda x: x)


# ------------------------------------------------------------------------------------ tracker
def _reference(x, t, y, sigma_x: float, sigma_t: float) -> tuple[float, float]:
    """I(X;T) and I(T;Y) of one layer through the functional API (an independent path)."""
    from infoplane import gaussian_gram, label_gram, mutual_information

    k_t = gaussian_gram(t.reshape(len(t), -1), sigma_t)
    i_xt = mutual_information(gaussian_gram(x.reshape(len(x), -1), sigma_x), k_t)
    return float(i_xt), float(mutual_information(k_t, label_gram(y)))


def test_plane_measures_each_call_of_a_shared_module() -> None:
    model = SharedTwice().eval()
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(10))
    y = torch.arange(16) % 3
    plane = InformationPlane(model, ["act"], x_width=1.5, width={"act": 0.7}, controls=())
    result = plane.measure(x, y, step=0)
    assert list(result) == ["act:0", "act:1", "output"]
    assert plane.layers == ["act:0", "act:1"]
    assert plane.history.config["layers"] == ["act:0", "act:1", "output"]
    with torch.no_grad():
        calls = {"act:0": torch.tanh(x), "act:1": torch.tanh(model.fc1(torch.tanh(x)))}
    for name, t in calls.items():
        assert result[name]["sigma"] == 0.7  # the rule named for the module, one copy per call
        i_xt, i_ty = _reference(x, t, y, 1.5, 0.7)
        assert result[name]["i_xt"] == pytest.approx(i_xt, abs=1e-9)
        assert result[name]["i_ty"] == pytest.approx(i_ty, abs=1e-9)
    assert_no_hooks(model)
    # the per-call width states survive a state_dict round trip into a fresh tracker
    plane.measure(x, y, step=1)
    fresh = InformationPlane(SharedTwice(), ["act"], x_width=1.5, width="alignment")
    with pytest.raises(LayerNotFoundError):  # another configuration (alignment vs fixed rules)
        fresh.load_state_dict({**plane.state_dict(), "layers": ["act:0", "nope", "output"]})


def test_plane_resumes_per_call_alignment_widths() -> None:
    model = SharedTwice()
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(11))
    y = torch.arange(20) % 2
    straight = InformationPlane(model, ["act"], controls=())
    for step in range(3):
        want = straight.measure(x + 0.1 * step, y, step=step)
    first = InformationPlane(model, ["act"], controls=())
    for step in range(2):
        first.measure(x + 0.1 * step, y, step=step)
    resumed = InformationPlane(model, ["act"], controls=())
    resumed.load_state_dict(first.state_dict())
    assert resumed.layers == ["act:0", "act:1"]
    got = resumed.measure(x + 0.2, y, step=2)
    assert got == want


def test_plane_accepts_modules_and_patterns() -> None:
    model = Features().eval()
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(12))
    y = torch.arange(12) % 3
    by_pattern = InformationPlane(model, ["features.[13]"], x_width=1.0, width=1.0)
    by_module = InformationPlane(
        model, [model.features[3], model.features[1]], x_width=1.0, width=1.0
    )
    a, b = by_pattern.measure(x, y, step=0), by_module.measure(x, y, step=0)
    assert list(a) == ["features.1", "features.3", "output"] == list(b)
    assert a == b
    assert_no_hooks(model)


def test_plane_measures_a_traced_models_functional_activations() -> None:
    model = FunctionalNet().eval()
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(13))
    y = torch.arange(12) % 3
    traced = trace_functional(model)
    result = InformationPlane(traced, x_width=1.0, width=0.8, controls=()).measure(x, y, step=0)
    assert list(result) == [
        "functional.relu",
        "functional.tanh",
        "functional.sigmoid",
        "output",
    ]
    with torch.no_grad():
        relu = torch.relu(model.fc1(x))
    i_xt, i_ty = _reference(x, relu, y, 1.0, 0.8)
    assert result["functional.relu"]["i_xt"] == pytest.approx(i_xt, abs=1e-9)
    assert result["functional.relu"]["i_ty"] == pytest.approx(i_ty, abs=1e-9)
    assert_no_hooks(traced)


@pytest.mark.parametrize(("exc", "exc_type"), EXCEPTIONS)
def test_patterns_and_calls_leave_no_hook_when_the_forward_raises(
    x6: torch.Tensor, exc: BaseException, exc_type: type[BaseException]
) -> None:
    model = small_mlp(tail=Raising(exc))
    with pytest.raises(exc_type), capture(model, ["act*", "fc2:0", model.tail]) as acts:
        model(x6)
    assert list(acts) == ["act1", "fc2:0", "act2"]
    assert_no_hooks(model)
