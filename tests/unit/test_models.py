"""Tests of the experiment networks (Wickstrøm et al., arXiv:1909.11396; VGG: Simonyan & Zisserman
2015): shapes, the measured layers, block order, activations, registry, determinism, training."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from infoplane.errors import InvalidInputError, InvalidParameterError, InvalidTypeError
from infoplane.experiments.models import (
    CNN,
    MLP,
    VGG16,
    DigitsCNN,
    DigitsMLP,
    LayeredNet,
    available_activations,
    available_inits,
    available_models,
    build_model,
    lookup_name,
    make_activation,
    model_summary,
)

ACTIVATION_TYPES = (
    nn.Tanh,
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.Sigmoid,
    nn.SiLU,
    nn.Softplus,
)

# name -> (input shape of one sample, expected per-sample shapes at the measured layers)
PAPER_SHAPES: dict[str, tuple[tuple[int, ...], list[tuple[int, ...]]]] = {
    "mlp": ((1, 28, 28), [(1024,), (20,), (20,), (20,)]),
    "cnn": ((1, 28, 28), [(4, 28, 28), (8, 28, 28), (16, 14, 14), (256,)]),
    "vgg16": (
        (3, 32, 32),
        [(64, 32, 32)] * 2
        + [(128, 16, 16)] * 2
        + [(256, 8, 8)] * 3
        + [(512, 4, 4)] * 3
        + [(512, 2, 2)] * 3
        + [(4096,), (4096,)],
    ),
    "digits-mlp": ((64,), [(64,), (32,), (16,)]),
    "digits-cnn": ((1, 8, 8), [(8, 8, 8), (16, 8, 8), (64,)]),
}

SMALL_MODELS = ["mlp", "cnn", "digits-mlp", "digits-cnn"]


@pytest.fixture(scope="module")
def vgg() -> VGG16:
    torch.manual_seed(0)
    return VGG16().eval()


def _model(name: str, vgg: VGG16) -> LayeredNet:
    if name == "vgg16":
        return vgg
    torch.manual_seed(0)
    return build_model(name)


def _batch(name: str) -> torch.Tensor:
    shape, _ = PAPER_SHAPES[name]
    n = 2 if name == "vgg16" else 8
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(1))


def _assert_no_hooks(model: nn.Module) -> None:
    for module in model.modules():
        assert not module._forward_hooks
        assert not module._forward_pre_hooks


class _Recorder:
    """Forward hooks on every named submodule, recording call order and output shapes."""

    def __init__(self, model: nn.Module) -> None:
        self.calls: list[str] = []
        self.shapes: dict[str, list[tuple[int, ...]]] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = [
            module.register_forward_hook(self._hook(name))
            for name, module in model.named_modules()
            if name
        ]

    def _hook(self, name: str):  # a hook factory
        def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
            self.calls.append(name)
            self.shapes.setdefault(name, []).append(tuple(out.shape))
            self.outputs[name] = out.detach().clone()

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


@pytest.fixture
def record() -> Iterator[list[_Recorder]]:
    made: list[_Recorder] = []
    yield made
    for recorder in made:
        recorder.remove()


# --------------------------------------------------------------------------------------------------
# Output shapes and logits
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*SMALL_MODELS, "vgg16"])
def test_output_is_logits_of_the_head(name: str, vgg: VGG16, record: list[_Recorder]) -> None:
    model = _model(name, vgg)
    x = _batch(name)
    recorder = _Recorder(model)
    record.append(recorder)
    out = model(x)
    assert out.shape == (x.shape[0], 10)
    assert torch.isfinite(out).all()
    # The model returns the head's Linear output untouched: no softmax or other post-processing.
    assert isinstance(model.head, nn.Linear)
    assert recorder.calls[-1] == "head"
    torch.testing.assert_close(out.detach(), recorder.outputs["head"], rtol=0, atol=0)
    assert not any(isinstance(m, (nn.Softmax, nn.LogSoftmax)) for m in model.modules())
    assert not torch.allclose(out.sum(dim=1), torch.ones(x.shape[0]))


def test_vgg16_matches_the_paper_architecture(vgg: VGG16) -> None:
    convs = [m for m in vgg.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in vgg.modules()) == 13
    assert sum(isinstance(m, nn.MaxPool2d) for m in vgg.modules()) == 5
    linears = [m for m in vgg.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (512, 4096),
        (4096, 4096),
        (4096, 10),
    ]
    drops = [m for m in vgg.modules() if isinstance(m, nn.Dropout)]
    assert [d.p for d in drops] == [0.5, 0.5]
    # Conv block order is conv -> BatchNorm -> activation (VGG-BN).
    assert [n for n, _ in vgg.conv1.named_children()] == ["conv", "bn", "act"]
    # 15 measured hidden layers; with the softmax output the paper's 16.
    assert len(vgg.measured_layers) == 15


def test_vgg16_options_change_the_structure() -> None:
    torch.manual_seed(0)
    model = VGG16(
        image_size=16, width=(8, "M", 16, "M"), dense=32, batch_norm=False, dropout=0.0
    ).eval()
    assert model.measured_layers == ("conv1.act", "conv2.act", "fc1.act", "fc2.act")
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in model.modules())
    assert model.fc1.linear.in_features == 16 * 4 * 4
    assert model(torch.randn(3, 3, 16, 16)).shape == (3, 10)


# --------------------------------------------------------------------------------------------------
# Measured layers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*SMALL_MODELS, "vgg16"])
def test_measured_layers_are_named_activations_in_forward_order(
    name: str, vgg: VGG16, record: list[_Recorder]
) -> None:
    model = _model(name, vgg)
    modules = dict(model.named_modules())
    assert "output" not in model.measured_layers
    assert len(set(model.measured_layers)) == len(model.measured_layers)
    for layer in model.measured_layers:
        assert layer in modules
        assert isinstance(modules[layer], ACTIVATION_TYPES)
    # Every activation of the network is measured: none is left out.
    acts = [n for n, m in model.named_modules() if isinstance(m, ACTIVATION_TYPES)]
    assert sorted(acts) == sorted(model.measured_layers)

    recorder = _Recorder(model)
    record.append(recorder)
    with torch.no_grad():
        model.eval()(_batch(name))
    called = [c for c in recorder.calls if c in model.measured_layers]
    assert called == list(model.measured_layers)  # forward order, each exactly once

    _, expected = PAPER_SHAPES[name]
    n = _batch(name).shape[0]
    got = [recorder.shapes[layer] for layer in model.measured_layers]
    assert got == [[(n, *shape)] for shape in expected]


@pytest.mark.parametrize("name", ["cnn", "vgg16", "digits-cnn"])
def test_convolutions_are_measured_before_pooling(
    name: str, vgg: VGG16, record: list[_Recorder]
) -> None:
    model = _model(name, vgg)
    recorder = _Recorder(model)
    record.append(recorder)
    with torch.no_grad():
        model.eval()(_batch(name))
    top = [c for c in recorder.calls if "." not in c]
    pools = [i for i, c in enumerate(top) if c.startswith("pool")]
    assert pools, "the network has pooling"
    for i in pools:
        before = top[i - 1]
        assert before.startswith("conv")
        # The pool input is the measured activation; the pool halves its size.
        measured = recorder.shapes[f"{before}.act"][0]
        pooled = recorder.shapes[top[i]][0]
        assert pooled == (*measured[:2], measured[2] // 2, measured[3] // 2)
    if name == "cnn":
        assert top == ["conv1", "conv2", "pool1", "conv3", "pool2", "flatten", "fc1", "head"]


# --------------------------------------------------------------------------------------------------
# Block order and BatchNorm placement
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [MLP, DigitsMLP])
def test_mlp_batchnorm_follows_the_activation(cls: type[MLP], record: list[_Recorder]) -> None:
    torch.manual_seed(0)
    model = cls()
    hidden = [m.out_features for n, m in model.named_modules() if n.endswith(".linear")]
    for k in range(1, len(hidden) + 1):
        block = getattr(model, f"layer{k}")
        children = list(block.named_children())
        assert [n for n, _ in children] == ["linear", "act", "bn"]
        assert [type(m) for _, m in children] == [nn.Linear, nn.Tanh, nn.BatchNorm1d]
    assert [n for n, _ in model.named_children()][-1] == "head"

    # Functionally: in training mode each block output is batch-normalised, its activation is not.
    recorder = _Recorder(model)
    record.append(recorder)
    x = torch.randn(64, *model.input_shape) * 3 + 1
    model.train()(x)
    for k in range(1, len(hidden) + 1):
        act, out = recorder.outputs[f"layer{k}.act"], recorder.outputs[f"layer{k}"]
        assert act.abs().max() <= 1  # tanh range: the measured point precedes the BatchNorm
        torch.testing.assert_close(out.mean(0), torch.zeros(out.shape[1]), atol=1e-5, rtol=0)
        torch.testing.assert_close(
            out.var(0, unbiased=False), torch.ones(out.shape[1]), atol=1e-2, rtol=0
        )


def test_mlp_without_batchnorm_has_none() -> None:
    model = MLP(batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    assert [n for n, _ in model.layer1.named_children()] == ["linear", "act"]


def test_cnn_batchnorm_option_follows_the_activation() -> None:
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in CNN().modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in DigitsCNN(batch_norm=False).modules())
    for model in (CNN(batch_norm=True), DigitsCNN()):  # DigitsCNN normalises by default
        for k in range(1, len(model.measured_layers)):
            block = getattr(model, f"conv{k}")
            assert [n for n, _ in block.named_children()] == ["conv", "act", "bn"]
            assert isinstance(block.bn, nn.BatchNorm2d)
        assert [n for n, _ in model.fc1.named_children()] == ["linear", "act", "bn"]


# --------------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------------


def test_paper_and_common_activations_are_available() -> None:
    names = set(available_activations())
    assert {"tanh", "relu", "leaky_relu", "elu", "gelu", "sigmoid", "silu"} <= names
    assert make_activation("leaky-relu").__class__ is nn.LeakyReLU
    assert make_activation(" ReLU ").__class__ is nn.ReLU


@pytest.mark.parametrize("name", [*SMALL_MODELS, "vgg16"])
def test_each_layer_owns_its_activation_module(name: str, vgg: VGG16) -> None:
    model = _model(name, vgg)
    modules = dict(model.named_modules())
    acts = [modules[layer] for layer in model.measured_layers]
    assert len({id(a) for a in acts}) == len(acts)
    # named_modules() deduplicates shared modules: a shared one would hide a layer name.
    all_acts = [m for m in model.modules() if isinstance(m, ACTIVATION_TYPES)]
    assert len(all_acts) == len(model.measured_layers)


@pytest.mark.parametrize("activation", available_activations())
@pytest.mark.parametrize("cls", [DigitsMLP, DigitsCNN])
def test_every_activation_builds_and_runs(activation: str, cls: type[LayeredNet]) -> None:
    model = cls(activation=activation)
    expected = type(make_activation(activation))
    modules = dict(model.named_modules())
    assert all(type(modules[layer]) is expected for layer in model.measured_layers)
    out = model.eval()(torch.randn(4, *model.input_shape))
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()
    assert model_summary(build_model("vgg16", activation=activation, width=(4, "M"), dense=8))


@pytest.mark.parametrize("bad", ["swish", "", "tanhh", 3, None])
@pytest.mark.parametrize("name", ["mlp", "cnn", "vgg16", "digits-mlp", "digits-cnn"])
def test_unknown_activation_is_rejected_with_the_valid_names(name: str, bad: object) -> None:
    with pytest.raises(InvalidParameterError) as info:
        build_model(name, activation=bad)
    message = str(info.value)
    assert "activation" in message
    assert all(valid in message for valid in available_activations())


def test_make_activation_rejects_bad_names() -> None:
    with pytest.raises(InvalidParameterError, match="tanh"):
        make_activation("swish")
    with pytest.raises(InvalidTypeError):
        make_activation(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # the built-in base still catches it
        make_activation("swish")


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------


def test_registry_names_and_classes() -> None:
    assert set(available_models()) == {"mlp", "cnn", "vgg16", "digits-mlp", "digits-cnn"}
    classes = {"mlp": MLP, "cnn": CNN, "digits-mlp": DigitsMLP, "digits-cnn": DigitsCNN}
    for name, cls in classes.items():
        assert type(build_model(name)) is cls
    assert type(build_model("DIGITS_MLP")) is DigitsMLP
    model = build_model("mlp", hidden=(16, 8), activation="relu", batch_norm=False)
    assert model.measured_layers == ("layer1.act", "layer2.act")
    assert isinstance(model.layer2.act, nn.ReLU)


def test_unknown_model_name_lists_valid_names() -> None:
    with pytest.raises(InvalidParameterError) as info:
        build_model("resnet18")
    assert all(name in str(info.value) for name in available_models())
    with pytest.raises(InvalidTypeError):
        build_model(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("registry", "spelling", "key"),
    [
        (("leaky_relu", "relu"), " Leaky-ReLU ", "leaky_relu"),
        (("leaky_relu", "relu"), "LEAKY_RELU", "leaky_relu"),
        (("digits-mlp", "mlp"), "digits_mlp", "digits-mlp"),
        (("digits-mlp", "mlp"), "Digits-MLP", "digits-mlp"),
    ],
)
def test_lookup_name_ignores_case_blanks_and_separators(registry, spelling, key) -> None:
    assert lookup_name(dict.fromkeys(registry), spelling, "name", "test") == key


def test_lookup_name_errors_name_the_caller_and_the_valid_keys() -> None:
    registry = dict.fromkeys(("b", "a"))
    with pytest.raises(InvalidParameterError) as info:
        lookup_name(registry, "c", "thing", "caller", fix="Do this.")
    assert str(info.value) == "caller: expected thing one of a, b, got 'c'. Do this."
    with pytest.raises(InvalidTypeError, match="caller: expected thing a string among a, b"):
        lookup_name(registry, 1.5, "thing", "caller")
    with pytest.raises(InvalidParameterError, match="got NoneType"):
        lookup_name(registry, None, "thing", "caller", InvalidParameterError)


def test_models_and_activations_share_one_spelling_rule() -> None:
    # the same spelling variations reach both registries
    assert type(make_activation("LEAKY_RELU")) is nn.LeakyReLU
    assert type(build_model(" Digits-MLP ", activation="Leaky-ReLU").layer1.act) is nn.LeakyReLU
    assert available_inits() == ("authors", "pytorch")


def test_unknown_keyword_lists_accepted_ones() -> None:
    with pytest.raises(InvalidParameterError) as info:
        build_model("cnn", widths=(4, 8))
    message = str(info.value)
    assert "widths" in message
    assert "channels" in message and "pool_after" in message and "init" in message


@pytest.mark.parametrize(
    ("name", "kwargs", "fragment"),
    [
        ("mlp", {"in_features": 0}, "in_features"),
        ("mlp", {"hidden": ()}, "hidden"),
        ("mlp", {"hidden": (16, -1)}, "hidden"),
        ("mlp", {"hidden": "16"}, "hidden"),
        ("mlp", {"num_classes": 2.5}, "num_classes"),
        ("mlp", {"batch_norm": "yes"}, "batch_norm"),
        ("cnn", {"channels": (4, 0)}, "channels"),
        ("cnn", {"image_size": 3}, "image_size"),
        ("cnn", {"pool_after": (4,)}, "pool_after"),
        ("cnn", {"dense": True}, "dense"),
        ("vgg16", {"dropout": 1.0}, "dropout"),
        ("vgg16", {"dropout": -0.1}, "dropout"),
        ("vgg16", {"width": (64, "X")}, "width"),
        ("vgg16", {"width": ("M",)}, "width"),
        ("vgg16", {"image_size": 16}, "image_size"),
    ],
)
def test_invalid_arguments_are_rejected(name: str, kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidParameterError, match=fragment):
        build_model(name, **kwargs)


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


def test_mlp_flattens_any_trailing_shape() -> None:
    torch.manual_seed(0)
    model = MLP().eval()
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(model(x), model(x.reshape(3, 784)))
    with pytest.raises(InvalidInputError, match="784"):
        model(torch.randn(3, 783))
    with pytest.raises(InvalidInputError):
        model(torch.randn(784))


@pytest.mark.parametrize("cls", [CNN, DigitsCNN])
def test_cnn_accepts_images_or_flat_rows(cls: type[CNN]) -> None:
    torch.manual_seed(0)
    model = cls().eval()
    x = torch.randn(3, *model.input_shape)
    torch.testing.assert_close(model(x), model(x.reshape(3, -1)))
    with pytest.raises(InvalidInputError, match="expected x"):
        model(torch.randn(3, 2, *model.input_shape[1:]))


def test_vgg16_rejects_wrong_image_size(vgg: VGG16) -> None:
    with pytest.raises(InvalidInputError, match="3, 32, 32"):
        vgg(torch.randn(2, 3, 28, 28))


# --------------------------------------------------------------------------------------------------
# Determinism and training
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", available_models())
def test_same_seed_gives_identical_parameters(name: str) -> None:
    kwargs = {"dense": 64} if name == "vgg16" else {}
    torch.manual_seed(123)
    a = build_model(name, **kwargs).state_dict()
    torch.manual_seed(123)
    b = build_model(name, **kwargs).state_dict()
    torch.manual_seed(124)
    c = build_model(name, **kwargs).state_dict()
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_constructors_leave_models_on_the_cpu_in_float32() -> None:
    for name in SMALL_MODELS:
        model = build_model(name)
        assert {p.device.type for p in model.parameters()} == {"cpu"}
        assert {p.dtype for p in model.parameters()} == {torch.float32}
        assert model.training


@pytest.mark.parametrize("cls", [DigitsMLP, DigitsCNN])
def test_digits_models_train(cls: type[LayeredNet]) -> None:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = cls()
    x = torch.rand(100, *model.input_shape, generator=gen)  # pixels scaled to [0, 1]
    teacher = torch.randn(64, 10, generator=gen)  # labels a random linear rule of the pixels
    y = ((x.reshape(100, 64) - 0.5) @ teacher).argmax(dim=1)
    loss_fn = nn.CrossEntropyLoss()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.09)  # the paper's optimiser
    model.train()
    losses = []
    for _ in range(20):
        optimiser.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.5 * losses[0]


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------


def test_model_summary_lists_layers_and_restores_state() -> None:
    model = CNN()
    model.train()
    text = model_summary(model)
    assert "CNN" in text
    assert f"{sum(p.numel() for p in model.parameters()):,}" in text
    for layer, dims in zip(
        model.measured_layers, ["4×28×28", "8×28×28", "16×14×14", "256"], strict=True
    ):
        assert layer in text and dims in text
    assert model.training
    _assert_no_hooks(model)


def test_model_summary_cleans_up_when_the_forward_fails() -> None:
    model = DigitsMLP().eval()
    with pytest.raises(InvalidInputError):
        model_summary(model, input_shape=(65,))
    assert not model.training
    _assert_no_hooks(model)
