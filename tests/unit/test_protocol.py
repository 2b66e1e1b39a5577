"""The authors' protocol in the models (Wickstrøm et al., arXiv:1909.11396; their code,
github.com/Wickstrom/InformationTheoryExperiment, python/): the MLP's measured point after the
BatchNorm, their initialisation checked against the closed-form statistics, and the VGG-16
classifier order Dropout → Linear → activation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from infoplane.capture import capture
from infoplane.errors import InvalidParameterError
from infoplane.experiments.models import (
    CNN,
    MLP,
    VGG16,
    DigitsMLP,
    build_model,
    init_weights,
)
from tests.helpers.hooks import assert_no_hooks, training_flags

# --------------------------------------------------------------------------------------------------
# 1. The MLP's measured point
# --------------------------------------------------------------------------------------------------


def _trained_once(model: nn.Module, x: torch.Tensor) -> None:
    """One SGD step in train mode, so the BatchNorm running statistics and weights are not the
    initial ones (an eval-mode BatchNorm at its initial state is nearly the identity)."""
    y = torch.arange(x.shape[0]) % model.num_classes
    opt = torch.optim.SGD(model.parameters(), lr=0.09)
    model.train()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def _block_by_hand(block: nn.Sequential, h: torch.Tensor) -> torch.Tensor:
    """Linear → tanh → eval-mode BatchNorm1d written out in float64 from the parameters."""
    lin, bn = block.linear, block.bn
    z = torch.tanh(h @ lin.weight.double().T + lin.bias.double())
    mean, var = bn.running_mean.double(), bn.running_var.double()
    return (z - mean) / torch.sqrt(var + bn.eps) * bn.weight.double() + bn.bias.double()


@pytest.mark.parametrize("cls", [MLP, DigitsMLP])
def test_block_measure_records_each_block_after_its_batchnorm(cls: type[MLP]) -> None:
    torch.manual_seed(0)
    model = cls(measure="block")
    k = len(model.measured_layers)
    assert model.measured_layers == tuple(f"layer{i}" for i in range(1, k + 1))
    x = torch.randn(32, *model.input_shape, generator=torch.Generator().manual_seed(1))
    _trained_once(model, x)
    flags = training_flags(model.eval())
    with torch.no_grad(), capture(model, model.measured_layers) as acts:
        model(x)
    assert_no_hooks(model)
    assert list(acts) == list(model.measured_layers)  # forward order, each once
    h = x.reshape(x.shape[0], -1).double()
    for i in range(1, k + 1):
        h = _block_by_hand(getattr(model, f"layer{i}"), h)
        torch.testing.assert_close(acts[f"layer{i}"].double(), h, rtol=1e-4, atol=1e-4)
    assert training_flags(model) == flags


def test_activation_measure_is_the_default_and_precedes_the_batchnorm() -> None:
    torch.manual_seed(0)
    default, explicit = MLP(), MLP(measure="activation")
    assert default.measured_layers == explicit.measured_layers
    assert default.measured_layers == ("layer1.act", "layer2.act", "layer3.act", "layer4.act")
    x = torch.randn(16, 784, generator=torch.Generator().manual_seed(2)) * 3
    with torch.no_grad(), capture(default, default.measured_layers) as acts:
        default.eval()(x)
    first = torch.tanh(x @ default.layer1.linear.weight.T + default.layer1.linear.bias)
    torch.testing.assert_close(acts["layer1.act"], first)


def test_without_batchnorm_both_points_carry_the_same_values() -> None:
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(3))
    outs = {}
    for measure in ("activation", "block"):
        torch.manual_seed(0)
        model = DigitsMLP(batch_norm=False, measure=measure).eval()
        with torch.no_grad(), capture(model, model.measured_layers) as acts:
            model(x)
        outs[measure] = list(acts.values())
    for a, b in zip(outs["activation"], outs["block"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("bad", ["after", "", 1, None])
def test_unknown_measure_point_is_rejected_with_the_valid_ones(bad: object) -> None:
    with pytest.raises(InvalidParameterError, match="measure") as info:
        build_model("mlp", measure=bad)
    assert "activation" in str(info.value) and "block" in str(info.value)


def test_measure_is_an_mlp_option_only() -> None:
    with pytest.raises(InvalidParameterError, match="measure"):
        build_model("cnn", measure="block")


# --------------------------------------------------------------------------------------------------
# 4. The authors' initialisation
# --------------------------------------------------------------------------------------------------


def _kurtosis(w: torch.Tensor) -> float:
    """E[w^4] / E[w^2]^2 about zero: 1.8 for a centred uniform, 3 for a centred normal."""
    w = w.double().flatten()
    return float((w**4).mean() / (w**2).mean() ** 2)


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


# closed forms: Xavier-uniform U(-a, a), a = gain sqrt(6 / (fan_in + fan_out)), variance a^2 / 3;
# Kaiming-normal N(0, gain^2 / fan_in) with gain sqrt(2) (ReLU, and leaky ReLU with slope 0)
GAINS = {"tanh": 5.0 / 3.0, "sigmoid": 1.0, "relu": math.sqrt(2.0), "leaky_relu": math.sqrt(2.0)}


def _big_layers(activation: str) -> list[torch.Tensor]:
    """A 1000 × 1000 Linear weight and a 256 × 256 × 3 × 3 Conv2d weight (about 10^6 values each),
    initialised by the authors' scheme."""
    torch.manual_seed(0)
    mlp = build_model(
        "mlp", in_features=1000, hidden=(1000,), activation=activation, init="authors"
    )
    vgg = build_model(
        "vgg16",
        activation=activation,
        image_size=2,
        width=(8, 256, 256, "M"),
        dense=8,
        init="authors",
    )
    return [mlp.layer1.linear.weight.detach(), vgg.conv3.conv.weight.detach()]


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_authors_init_is_xavier_uniform_with_the_activation_gain(activation: str) -> None:
    for w in _big_layers(activation):
        fan_in, fan_out = _fans(w)
        bound = GAINS[activation] * math.sqrt(6.0 / (fan_in + fan_out))
        var = float(w.double().var(unbiased=False))
        # the sample variance of n uniforms has relative standard error sqrt(0.8 / n) < 0.1 %
        assert var == pytest.approx(bound**2 / 3.0, rel=0.01)
        assert float(w.abs().max()) <= bound
        assert float(w.abs().max()) > 0.999 * bound
        assert _kurtosis(w) == pytest.approx(1.8, abs=0.02)
        assert abs(float(w.double().mean())) < 0.01 * bound


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_authors_init_is_kaiming_normal_fan_in(activation: str) -> None:
    for w in _big_layers(activation):
        fan_in, _ = _fans(w)
        std = GAINS[activation] / math.sqrt(fan_in)
        var = float(w.double().var(unbiased=False))
        # the sample variance of n normals has relative standard error sqrt(2 / n) < 0.15 %
        assert var == pytest.approx(std**2, rel=0.01)
        assert _kurtosis(w) == pytest.approx(3.0, abs=0.05)
        assert abs(float(w.double().mean())) < 0.01 * std


@pytest.mark.parametrize("name", ["mlp", "cnn", "digits-mlp", "digits-cnn", "vgg16"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_authors_init_zeroes_every_bias_and_keeps_batchnorm(name: str, activation: str) -> None:
    torch.manual_seed(0)
    small = {"width": (4, "M"), "dense": 8} if name == "vgg16" else {}
    model = build_model(name, activation=activation, init="authors", **small)
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert layers[-1] is model.head  # the output layer is initialised too
    for layer in layers:
        assert torch.count_nonzero(layer.bias) == 0
        assert torch.count_nonzero(layer.weight) == layer.weight.numel()
    for bn in (m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))
        assert torch.equal(bn.bias, torch.zeros_like(bn.bias))


def test_pytorch_init_leaves_the_default_weights() -> None:
    torch.manual_seed(5)
    plain = CNN().state_dict()
    torch.manual_seed(5)
    same = build_model("cnn", init="pytorch").state_dict()
    torch.manual_seed(5)
    authors = build_model("cnn", init="authors").state_dict()
    assert all(torch.equal(plain[k], same[k]) for k in plain)
    # PyTorch's default biases are uniform and non-zero; the authors' are zero
    assert torch.count_nonzero(plain["conv1.conv.bias"]) > 0
    assert torch.count_nonzero(authors["conv1.conv.bias"]) == 0


def test_init_weights_takes_the_activation_of_a_plain_module() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2000, 500), nn.Tanh(), nn.Linear(500, 3))
    assert init_weights(net, "authors", activation="relu") is net
    w = net[0].weight.detach().double()
    assert float(w.var(unbiased=False)) == pytest.approx(2.0 / 2000, rel=0.01)
    assert torch.count_nonzero(net[2].bias) == 0
    with pytest.raises(InvalidParameterError, match="activation"):
        init_weights(nn.Sequential(nn.Linear(3, 3)), "authors")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"init": "xavier"}, "init"),
        ({"init": 3}, "init"),
        ({"init": "authors", "activation": "gelu"}, "leaky_relu, relu, sigmoid, tanh"),
    ],
)
def test_bad_init_is_rejected_with_the_valid_names(kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidParameterError, match=fragment):
        build_model("digits-mlp", **kwargs)


# --------------------------------------------------------------------------------------------------
# 5. The VGG-16 classifier
# --------------------------------------------------------------------------------------------------


def test_vgg16_classifier_is_dropout_then_linear_then_activation() -> None:
    torch.manual_seed(0)
    model = VGG16(image_size=4, width=(8, "M"), dense=2000)
    for fc in (model.fc1, model.fc2):
        assert [n for n, _ in fc.named_children()] == ["drop", "linear", "act"]
        assert [type(m) for _, m in fc.named_children()] == [nn.Dropout, nn.Linear, nn.ReLU]
    assert model.measured_layers[-2:] == ("fc1.act", "fc2.act")

    # Functionally, in train mode: fc2's Linear sees fc1's activation with dropout applied (about
    # half zeroed, the rest doubled), and the measured activation is the Linear output rectified.
    seen: dict[str, torch.Tensor] = {}
    handles = [
        model.fc2.linear.register_forward_hook(
            lambda _m, i, o: seen.update(lin_in=i[0].detach(), lin_out=o.detach())
        ),
        model.fc1.act.register_forward_hook(lambda _m, _i, o: seen.update(fc1=o.detach())),
        model.fc2.act.register_forward_hook(lambda _m, _i, o: seen.update(fc2=o.detach())),
    ]
    try:
        model.train()(torch.randn(4, 3, 4, 4, generator=torch.Generator().manual_seed(1)))
    finally:
        for handle in handles:
            handle.remove()
    kept = seen["lin_in"] != 0
    torch.testing.assert_close(seen["lin_in"][kept], 2.0 * seen["fc1"][kept])
    dropped = (~kept & (seen["fc1"] != 0)).sum() / (seen["fc1"] != 0).sum()
    assert 0.4 < float(dropped) < 0.6
    torch.testing.assert_close(seen["fc2"], seen["lin_out"].clamp_min(0))


def test_vgg16_with_dropout_zero_has_no_dropout_module() -> None:
    model = VGG16(image_size=4, width=(8, "M"), dense=16, dropout=0.0)
    assert [n for n, _ in model.fc1.named_children()] == ["linear", "act"]


def test_vgg16_takes_one_input_channel() -> None:
    torch.manual_seed(0)
    model = build_model("vgg16", in_channels=1, dense=32, init="authors").eval()
    assert model.input_shape == (1, 32, 32)
    assert model.conv1.conv.in_channels == 1
    assert len(model.measured_layers) == 15  # with the softmax output, the paper's 16
    with torch.no_grad():
        assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)
