"""The networks of the information-plane experiments, with the layers to measure named.

The architectures follow Wickstrøm, Løkse, Kampffmeyer, Yu, Príncipe and Jenssen, "Information
Plane Analysis of Deep Neural Networks via Matrix-Based Rényi's Entropy and Tensor Kernels"
(arXiv:1909.11396):

* :class:`MLP` -- 784-1024-20-20-20-10 on MNIST, each hidden block Linear → activation →
  BatchNorm1d (the normalisation comes *after* the non-linearity, as in the paper).
* :class:`CNN` -- three 3×3 convolutions with 4, 8 and 16 filters, max-pooling after the 2nd and
  the 3rd, a dense layer of 256 units, on MNIST.
* :class:`VGG16` -- VGG-16 with BatchNorm (Simonyan & Zisserman, "Very Deep Convolutional Networks
  for Large-Scale Image Recognition", ICLR 2015) and dropout in the classifier, on CIFAR-10.
* :class:`DigitsMLP` and :class:`DigitsCNN` -- small versions of the first two for the 8×8 digits
  of scikit-learn, fast enough for a demonstration run on a laptop CPU.

Every model returns **logits** ``[N, num_classes]``: it contains no softmax, so it trains with
``nn.CrossEntropyLoss``, and the information-plane measurement applies the softmax itself to obtain
the output layer ``T`` of the paper. Every model also carries ``measured_layers``, the dotted names
(valid in ``model.named_modules()``) of the modules whose output is a hidden representation ``T``
of the paper, in forward order: by default the output of each hidden layer's non-linearity, taken
before any pooling and before a BatchNorm that follows it. The authors' code measures the MLP at the
*block output* instead (Linear → activation → BatchNorm1d, recorded after the BatchNorm;
``python/FC_Hero.py`` of github.com/Wickstrom/InformationTheoryExperiment returns each
``layerK(x)``): ``MLP(measure="block")`` measures ``layer1`` ... ``layerK``. Each measured module is
called exactly once per forward pass, so a forward hook on it sees exactly one layer. The model
output is not among them (the measurement adds it as ``"output"``).

Weights: the constructors keep PyTorch's default initialisation (Kaiming-uniform with ``a = √5``
for ``nn.Linear`` and ``nn.Conv2d``, weight 1 and bias 0 for BatchNorm). The authors initialise
differently (``Network.weight_init`` in ``python/network.py``, applied to every Linear and Conv2d
of their MLP, CNN and VGG-16): Xavier-uniform with gain ``calculate_gain(activation)`` (5/3 for
tanh) for tanh and sigmoid networks, Kaiming-normal (fan-in, gain √2) for ReLU and leaky-ReLU
networks, zero biases. ``build_model(..., init="authors")`` or :func:`init_weights` applies theirs;
the paper presets do. Seed with ``torch.manual_seed`` before construction for reproducible weights.
The constructors never move a model to a device: call ``.to(device)`` yourself.

Build a model by name with :func:`build_model`::

    model = build_model("mlp", activation="relu")
    model.measured_layers  # ('layer1.act', 'layer2.act', 'layer3.act', 'layer4.act')
    model = build_model("mlp", activation="tanh", measure="block", init="authors")
    model.measured_layers  # ('layer1', 'layer2', 'layer3', 'layer4'): after each BatchNorm
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from infoplane._validation import check_integer
from infoplane.capture import capture, eval_mode
from infoplane.errors import InvalidInputError, InvalidParameterError, InvalidTypeError

__all__ = [
    "CNN",
    "INITS",
    "MLP",
    "MLP_MEASURE_POINTS",
    "VGG16",
    "VGG16_WIDTH",
    "DigitsCNN",
    "DigitsMLP",
    "LayeredNet",
    "available_activations",
    "available_inits",
    "available_models",
    "build_model",
    "init_weights",
    "lookup_name",
    "make_activation",
    "model_summary",
]

# --------------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------------

#: Non-linearities selectable by name. None of them works in place, so a hook that keeps a layer's
#: output keeps what the layer produced.
_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
}


def available_activations() -> tuple[str, ...]:
    """Names accepted by the ``activation`` argument of every model, sorted."""
    return tuple(sorted(_ACTIVATIONS))


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def lookup_name(
    registry: Mapping[str, Any],
    name: Any,
    arg: str,
    who: str,
    non_string: type[Exception] = InvalidTypeError,
    fix: str = "Pick one of these names.",
) -> str:
    """The key of ``registry`` that ``name`` spells, or an error that lists the valid keys.

    Case, surrounding blanks and ``-`` versus ``_`` do not matter (``" Leaky-ReLU"`` finds
    ``"leaky_relu"``, ``"DIGITS_MLP"`` finds ``"digits-mlp"``). ``arg`` names the argument and
    ``who`` the caller in the message; ``fix`` ends the message of an unknown name.

    Raises:
        non_string (default InvalidTypeError): ``name`` is not a string.
        InvalidParameterError: ``name`` spells none of the keys.
    """
    valid = ", ".join(sorted(registry))
    if not isinstance(name, str):
        raise non_string(
            f"{who}: expected {arg} a string among {valid}, got {type(name).__name__} "
            f"{name!r}. {fix}"
        )
    wanted = _canonical(name)
    for key in registry:
        if _canonical(key) == wanted:
            return key
    raise InvalidParameterError(f"{who}: expected {arg} one of {valid}, got {name!r}. {fix}")


def make_activation(name: str) -> nn.Module:
    """A new activation module for ``name`` (``"tanh"``, ``"relu"``, ...).

    Each call returns a fresh instance, so no two layers share a module and a forward hook on one
    activation captures exactly one layer. ``"leaky-relu"`` is read as ``"leaky_relu"``.

    Raises:
        InvalidTypeError: ``name`` is not a string.
        InvalidParameterError: ``name`` is not one of :func:`available_activations`.
    """
    return _ACTIVATIONS[lookup_name(_ACTIVATIONS, name, "activation", "make_activation")]()


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------


def _positive_ints(who: str, arg: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise InvalidParameterError(
            f"{who}: expected {arg} a non-empty sequence of positive integers, got {value!r}. "
            f"Pass e.g. (64, 32)."
        )
    return tuple(check_integer(v, f"every entry of {arg}", who) for v in value)


def _check_activation(who: str, activation: Any) -> str:
    """The registry name of ``activation``; a non-string is an invalid value here."""
    return lookup_name(_ACTIVATIONS, activation, "activation", who, InvalidParameterError)


def _check_flag(who: str, arg: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameterError(f"{who}: expected {arg} True or False, got {value!r}.")
    return value


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


def _dense_block(
    in_features: int, out_features: int, activation: str, batch_norm: bool, dropout: float = 0.0
) -> nn.Sequential:
    """[``drop`` →] ``linear`` → ``act`` [→ ``bn`` (BatchNorm1d)]: ``[N, in] -> [N, out]``.

    The dropout comes first, as in the authors' VGG-16 classifier (``nn.Dropout()`` →
    ``nn.Linear`` → activation in ``python/VGG16.py`` of Wickstrom/InformationTheoryExperiment).
    """
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    if dropout > 0:
        parts["drop"] = nn.Dropout(dropout)
    parts["linear"] = nn.Linear(in_features, out_features)
    parts["act"] = make_activation(activation)
    if batch_norm:
        parts["bn"] = nn.BatchNorm1d(out_features)
    return nn.Sequential(parts)


def _conv_block(
    in_channels: int, out_channels: int, activation: str, batch_norm: str | None
) -> nn.Sequential:
    """A 3×3 convolution with padding 1: ``[N, C_in, H, W] -> [N, C_out, H, W]``.

    ``batch_norm`` is ``None`` (conv → act), ``"before"`` (conv → bn → act, the VGG-BN order) or
    ``"after"`` (conv → act → bn, the order of the paper's small networks).
    """
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    parts["conv"] = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
    if batch_norm == "before":
        parts["bn"] = nn.BatchNorm2d(out_channels)
    parts["act"] = make_activation(activation)
    if batch_norm == "after":
        parts["bn"] = nn.BatchNorm2d(out_channels)
    return nn.Sequential(parts)


class LayeredNet(nn.Sequential):
    """A feed-forward stack of named stages, with the points to measure named.

    Attributes:
        measured_layers: dotted module names of the measured hidden layers, in forward order.
        input_shape: the shape of one sample, e.g. ``(1, 28, 28)`` or ``(784,)``.
        num_classes: the width of the logits.
        activation: the registry name of the hidden non-linearity (it selects the authors'
            initialisation in :func:`init_weights`).
    """

    measured_layers: tuple[str, ...]
    input_shape: tuple[int, ...]
    num_classes: int
    activation: str

    def _set_meta(
        self,
        measured_layers: Sequence[str],
        input_shape: Sequence[int],
        num_classes: int,
        activation: str,
    ) -> None:
        self.measured_layers = tuple(measured_layers)
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.activation = activation


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


#: Where :class:`MLP` measures each hidden block (``measure``): the suffix of the measured module.
MLP_MEASURE_POINTS: dict[str, str] = {"activation": ".act", "block": ""}


class MLP(LayeredNet):
    """The paper's multilayer perceptron (Wickstrøm et al., arXiv:1909.11396, MNIST experiments).

    Stages: ``flatten``; ``layer1`` ... ``layerK``, each ``linear`` → ``act`` → ``bn``
    (BatchNorm1d after the activation, as in the paper; no ``bn`` when ``batch_norm=False``);
    ``head``, a Linear layer producing logits.

    Args:
        in_features: number of input features after flattening (784 for MNIST).
        hidden: widths of the hidden layers (the paper: 1024, 20, 20, 20).
        num_classes: number of logits.
        activation: a name from :func:`available_activations` (the paper: tanh and relu).
        batch_norm: whether each hidden block ends with BatchNorm1d.
        measure: the measured point of each hidden block: ``"activation"`` (default; the output
            of ``layerK.act``, before the BatchNorm) or ``"block"`` (the output of ``layerK``,
            after the BatchNorm: the authors' point, ``python/FC_Hero.py`` of
            Wickstrom/InformationTheoryExperiment; the paper presets use it). Without BatchNorm
            both points carry the same values.

    Shapes:
        input ``[N, ...]`` with ``in_features`` values per sample (flattened), output ``[N,
        num_classes]`` logits. ``measured_layers`` are ``layer1.act`` ... ``layerK.act`` (or
        ``layer1`` ... ``layerK`` with ``measure="block"``), of shapes ``[N, hidden[k]]``.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: Sequence[int] = (1024, 20, 20, 20),
        num_classes: int = 10,
        activation: str = "tanh",
        batch_norm: bool = True,
        measure: str = "activation",
    ) -> None:
        who = type(self).__name__
        in_features = check_integer(in_features, "in_features", who)
        hidden = _positive_ints(who, "hidden", hidden)
        num_classes = check_integer(num_classes, "num_classes", who)
        activation = _check_activation(who, activation)
        batch_norm = _check_flag(who, "batch_norm", batch_norm)
        suffix = MLP_MEASURE_POINTS[
            lookup_name(MLP_MEASURE_POINTS, measure, "measure", who, InvalidParameterError)
        ]

        stages: OrderedDict[str, nn.Module] = OrderedDict()
        stages["flatten"] = nn.Flatten(start_dim=1)
        width = in_features
        for k, out in enumerate(hidden, start=1):
            stages[f"layer{k}"] = _dense_block(width, out, activation, batch_norm)
            width = out
        stages["head"] = nn.Linear(width, num_classes)
        super().__init__(stages)
        self.in_features = in_features
        measured = [f"layer{k}{suffix}" for k in range(1, len(hidden) + 1)]
        self._set_meta(measured, (in_features,), num_classes, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, ...]`` with ``in_features`` values per sample -> logits ``[N, num_classes]``."""
        if x.dim() < 2 or math.prod(x.shape[1:]) != self.in_features:
            raise InvalidInputError(
                f"{type(self).__name__}: expected x of shape [N, ...] with {self.in_features} "
                f"values per sample, got shape {tuple(x.shape)}. Keep the batch dimension first."
            )
        return super().forward(x)


class CNN(LayeredNet):
    """The paper's small convolutional network (Wickstrøm et al., arXiv:1909.11396, MNIST).

    Stages: ``conv1`` ... ``convK``, each a 3×3 convolution with padding 1 (``conv``) → ``act``
    [→ ``bn``, BatchNorm2d after the activation as in the paper's MLP]; ``pool1``, ``pool2``, ...
    (2×2 max-pooling) after the convolutions listed in ``pool_after``; ``flatten``; ``fc1``
    (``linear`` → ``act`` [→ ``bn``]); ``head``, a Linear layer producing logits.

    Args:
        in_channels: input channels (1 for MNIST).
        image_size: height = width of the input images (28 for MNIST).
        channels: filters of the convolutions (the paper: 4, 8, 16).
        dense: units of the dense hidden layer (the paper: 256).
        num_classes: number of logits.
        activation: a name from :func:`available_activations` (the paper: tanh and relu).
        batch_norm: whether each hidden block ends with BatchNorm (off in the paper's CNN).
        pool_after: 1-based indices of the convolutions followed by max-pooling (the paper: 2, 3).

    Shapes:
        input ``[N, in_channels, image_size, image_size]`` (or the same flattened, ``[N, C·H·W]``),
        output ``[N, num_classes]`` logits. With the defaults the measured layers ``conv1.act``,
        ``conv2.act``, ``conv3.act``, ``fc1.act`` have shapes ``[N, 4, 28, 28]``, ``[N, 8, 28,
        28]``, ``[N, 16, 14, 14]`` (before pooling) and ``[N, 256]``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        channels: Sequence[int] = (4, 8, 16),
        dense: int = 256,
        num_classes: int = 10,
        activation: str = "tanh",
        batch_norm: bool = False,
        pool_after: Sequence[int] = (2, 3),
    ) -> None:
        who = type(self).__name__
        in_channels = check_integer(in_channels, "in_channels", who)
        image_size = check_integer(image_size, "image_size", who)
        channels = _positive_ints(who, "channels", channels)
        dense = check_integer(dense, "dense", who)
        num_classes = check_integer(num_classes, "num_classes", who)
        activation = _check_activation(who, activation)
        batch_norm = _check_flag(who, "batch_norm", batch_norm)
        if isinstance(pool_after, (str, bytes)) or not isinstance(pool_after, Sequence):
            raise InvalidParameterError(
                f"{who}: expected pool_after a sequence of convolution indices, got "
                f"{pool_after!r}. Pass e.g. (2, 3)."
            )
        pools = {check_integer(p, "every entry of pool_after", who) for p in pool_after}
        if any(p > len(channels) for p in pools):
            raise InvalidParameterError(
                f"{who}: expected pool_after indices between 1 and {len(channels)} (the number of "
                f"convolutions), got {tuple(pool_after)!r}."
            )
        if image_size // 2 ** len(pools) < 1:
            raise InvalidParameterError(
                f"{who}: expected image_size >= {2 ** len(pools)} for {len(pools)} max-poolings, "
                f"got {image_size}. Use larger images or fewer poolings."
            )

        stages: OrderedDict[str, nn.Module] = OrderedDict()
        measured: list[str] = []
        size, width, n_pool = image_size, in_channels, 0
        for k, out in enumerate(channels, start=1):
            stages[f"conv{k}"] = _conv_block(
                width, out, activation, "after" if batch_norm else None
            )
            measured.append(f"conv{k}.act")
            width = out
            if k in pools:
                n_pool += 1
                stages[f"pool{n_pool}"] = nn.MaxPool2d(kernel_size=2)
                size //= 2
        stages["flatten"] = nn.Flatten(start_dim=1)
        stages["fc1"] = _dense_block(width * size * size, dense, activation, batch_norm)
        measured.append("fc1.act")
        stages["head"] = nn.Linear(dense, num_classes)
        super().__init__(stages)
        self._set_meta(measured, (in_channels, image_size, image_size), num_classes, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` or ``[N, C·H·W]`` -> logits ``[N, num_classes]``."""
        c, h, w = self.input_shape
        if x.dim() == 2 and x.shape[1] == c * h * w:
            x = x.reshape(x.shape[0], c, h, w)
        elif x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise InvalidInputError(
                f"{type(self).__name__}: expected x of shape [N, {c}, {h}, {w}] or [N, {c * h * w}]"
                f", got shape {tuple(x.shape)}. Reshape the batch to images."
            )
        return super().forward(x)


#: The convolutional configuration "D" of Simonyan & Zisserman (2015): filters per 3×3
#: convolution, ``"M"`` for a 2×2 max-pooling.
VGG16_WIDTH: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip


def _check_dropout(who: str, dropout: Any) -> float:
    if (
        isinstance(dropout, bool)
        or not isinstance(dropout, numbers.Real)
        or not 0.0 <= float(dropout) < 1.0
    ):
        raise InvalidParameterError(
            f"{who}: expected dropout a probability in [0, 1), got {dropout!r}."
        )
    return float(dropout)


def _check_vgg_width(who: str, width: Any, image_size: int) -> list[int | str]:
    """``width`` as filter counts and ``"M"``, with at least one convolution and room to pool."""
    if isinstance(width, (str, bytes)) or not isinstance(width, Sequence):
        raise InvalidParameterError(
            f"{who}: expected width a sequence of filter counts and 'M', got {width!r}."
        )
    spec: list[int | str] = [
        "M" if w == "M" else check_integer(w, "every entry of width (or 'M')", who) for w in width
    ]
    n_pools = spec.count("M")
    if n_pools == len(spec):
        raise InvalidParameterError(
            f"{who}: expected width with at least one convolution, got {tuple(width)!r}."
        )
    if image_size // 2**n_pools < 1:
        raise InvalidParameterError(
            f"{who}: expected image_size >= {2**n_pools} for {n_pools} max-poolings, got "
            f"{image_size}. Use larger images or fewer 'M' entries in width."
        )
    return spec


def _vgg_features(
    spec: Sequence[int | str], in_channels: int, activation: str, batch_norm: bool
) -> tuple[OrderedDict[str, nn.Module], list[str], int, int]:
    """The convolutional stages of ``spec``: (stages, measured names, channels, pooling count)."""
    stages: OrderedDict[str, nn.Module] = OrderedDict()
    measured: list[str] = []
    channels, n_conv, n_pool = in_channels, 0, 0
    for w in spec:
        if w == "M":
            n_pool += 1
            stages[f"pool{n_pool}"] = nn.MaxPool2d(kernel_size=2)
        else:
            n_conv += 1
            stages[f"conv{n_conv}"] = _conv_block(
                channels, int(w), activation, "before" if batch_norm else None
            )
            measured.append(f"conv{n_conv}.act")
            channels = int(w)
    return stages, measured, channels, n_pool


class VGG16(LayeredNet):
    """VGG-16 with BatchNorm (Simonyan & Zisserman, ICLR 2015), as used on CIFAR-10 in
    Wickstrøm et al. (arXiv:1909.11396).

    Stages: ``conv1`` ... ``conv13``, each a 3×3 convolution with padding 1 (``conv``) → ``bn``
    (BatchNorm2d, omitted when ``batch_norm=False``) → ``act``; ``pool1`` ... ``pool5`` (2×2
    max-pooling) at each ``"M"`` of ``width``; ``flatten``; ``fc1`` and ``fc2``, each ``drop``
    (Dropout, omitted when ``dropout=0``) → ``linear`` → ``act``, the authors' classifier order
    (``python/VGG16.py`` of Wickstrom/InformationTheoryExperiment); ``head``, a Linear layer
    producing logits.

    Args:
        in_channels: input channels (3 for CIFAR-10, 1 for Fashion-MNIST).
        image_size: height = width of the input images (32 for CIFAR-10 and for Fashion-MNIST
            padded by 2 pixels on each side).
        num_classes: number of logits.
        activation: a name from :func:`available_activations` (the paper: relu).
        batch_norm: whether each convolution is followed by BatchNorm2d.
        dropout: dropout probability in the classifier, in ``[0, 1)``.
        width: filters per convolution and ``"M"`` for pooling (default :data:`VGG16_WIDTH`).
        dense: units of the two dense hidden layers.

    Shapes:
        input ``[N, in_channels, image_size, image_size]``, output ``[N, num_classes]`` logits. On
        32×32 images the 13 measured convolution outputs go from ``[N, 64, 32, 32]`` to ``[N, 512,
        2, 2]`` (before pooling), then ``fc1.act`` and ``fc2.act`` are ``[N, 4096]``: with the
        softmax output, the paper's 16 measured layers.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        num_classes: int = 10,
        activation: str = "relu",
        batch_norm: bool = True,
        dropout: float = 0.5,
        width: Sequence[int | str] = VGG16_WIDTH,
        dense: int = 4096,
    ) -> None:
        who = type(self).__name__
        in_channels = check_integer(in_channels, "in_channels", who)
        image_size = check_integer(image_size, "image_size", who)
        num_classes = check_integer(num_classes, "num_classes", who)
        activation = _check_activation(who, activation)
        batch_norm = _check_flag(who, "batch_norm", batch_norm)
        dense = check_integer(dense, "dense", who)
        dropout = _check_dropout(who, dropout)
        spec = _check_vgg_width(who, width, image_size)

        stages, measured, channels, n_pool = _vgg_features(
            spec, in_channels, activation, batch_norm
        )
        size = image_size // 2**n_pool
        stages["flatten"] = nn.Flatten(start_dim=1)
        stages["fc1"] = _dense_block(channels * size * size, dense, activation, False, dropout)
        stages["fc2"] = _dense_block(dense, dense, activation, False, dropout)
        measured += ["fc1.act", "fc2.act"]
        stages["head"] = nn.Linear(dense, num_classes)
        super().__init__(stages)
        self._set_meta(measured, (in_channels, image_size, image_size), num_classes, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` -> logits ``[N, num_classes]``."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            raise InvalidInputError(
                f"{type(self).__name__}: expected x of shape [N, {c}, {h}, {w}], got shape "
                f"{tuple(x.shape)}."
            )
        return super().forward(x)


class DigitsMLP(MLP):
    """A small :class:`MLP` for scikit-learn's 8×8 digits: 64-64-32-16-10, BatchNorm after tanh.

    The same structure as the paper's MLP (Wickstrøm et al., arXiv:1909.11396), scaled down so a
    few epochs on ~1300 samples take seconds on a CPU. Input ``[N, 64]`` or ``[N, 1, 8, 8]``,
    output ``[N, 10]`` logits; measured layers ``layer1.act``, ``layer2.act``, ``layer3.act``
    (``layer1`` ... ``layer3`` with ``measure="block"``, as :class:`MLP`).
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden: Sequence[int] = (64, 32, 16),
        num_classes: int = 10,
        activation: str = "tanh",
        batch_norm: bool = True,
        measure: str = "activation",
    ) -> None:
        super().__init__(in_features, hidden, num_classes, activation, batch_norm, measure)


class DigitsCNN(CNN):
    """A small :class:`CNN` for scikit-learn's 8×8 digits: conv 8, conv 16, pool, dense 64.

    The same structure as the paper's CNN (Wickstrøm et al., arXiv:1909.11396), scaled down, with
    one difference: BatchNorm after each activation is on by default (as in the paper's MLP).
    Without it, plain SGD at the paper's learning rate (0.09) needs far more than the ~13 steps
    per epoch that 1300 samples give (about 88 % test accuracy after 10 epochs with tanh, 70 %
    with ReLU, against about 98 % with BatchNorm); pass ``batch_norm=False`` for the paper's
    plain CNN. The measured points stay before the BatchNorm.

    Input ``[N, 1, 8, 8]`` or ``[N, 64]``, output ``[N, 10]`` logits; measured layers ``conv1.act``
    ``[N, 8, 8, 8]``, ``conv2.act`` ``[N, 16, 8, 8]`` (before pooling), ``fc1.act`` ``[N, 64]``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 8,
        channels: Sequence[int] = (8, 16),
        dense: int = 64,
        num_classes: int = 10,
        activation: str = "tanh",
        batch_norm: bool = True,
        pool_after: Sequence[int] = (2,),
    ) -> None:
        super().__init__(
            in_channels, image_size, channels, dense, num_classes, activation, batch_norm,
            pool_after,
        )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------

_MODELS: dict[str, type[LayeredNet]] = {
    "mlp": MLP,
    "cnn": CNN,
    "vgg16": VGG16,
    "digits-mlp": DigitsMLP,
    "digits-cnn": DigitsCNN,
}


def available_models() -> tuple[str, ...]:
    """Names accepted by :func:`build_model`, sorted."""
    return tuple(sorted(_MODELS))


# --------------------------------------------------------------------------------------------------
# Initialisation
# --------------------------------------------------------------------------------------------------

#: The authors' initialiser of each activation (``Network.weight_init`` in ``python/network.py`` of
#: Wickstrom/InformationTheoryExperiment): Xavier-uniform with ``calculate_gain(activation)`` for
#: saturating non-linearities, Kaiming-normal (fan-in, ``a = 0``) for rectifiers.
_AUTHORS_INIT: dict[str, str] = {
    "leaky_relu": "kaiming_normal",
    "relu": "kaiming_normal",
    "sigmoid": "xavier_uniform",
    "tanh": "xavier_uniform",
}

#: Weight initialisations accepted by :func:`init_weights` and ``build_model(..., init=...)``.
INITS: tuple[str, ...] = ("authors", "pytorch")


def available_inits() -> tuple[str, ...]:
    """Names accepted by the ``init`` argument of :func:`build_model` and :func:`init_weights`."""
    return INITS


def init_weights(
    model: nn.Module, init: str = "authors", activation: str | None = None
) -> nn.Module:
    """Re-initialise ``model``'s weights in place by the scheme ``init``; return ``model``.

    ``"pytorch"`` leaves the weights as they are (PyTorch's default from construction).
    ``"authors"`` does what the authors' ``Network.weight_init`` does (``python/network.py`` of
    github.com/Wickstrom/InformationTheoryExperiment, applied to every module of their MLP, CNN and
    VGG-16): for every ``nn.Linear`` and ``nn.Conv2d``, the output layer included,

    * tanh or sigmoid networks: ``xavier_uniform_(weight, gain=calculate_gain(activation))``,
      i.e. ``U(-a, a)`` with ``a = gain √(6 / (fan_in + fan_out))`` and gain 5/3 for tanh, 1 for
      sigmoid;
    * ReLU or leaky-ReLU networks: ``kaiming_normal_(weight, nonlinearity=activation)``, i.e.
      ``N(0, 2 / fan_in)`` (fan-in mode, negative slope 0 as in their call);
    * biases 0. BatchNorm keeps weight 1 and bias 0.

    Args:
        model: the network (its parameters are overwritten; seed torch first for reproducibility).
        init: ``"authors"`` or ``"pytorch"``.
        activation: the network's non-linearity; default ``model.activation`` (every model of this
            module declares it).

    Raises:
        InvalidParameterError: an unknown ``init``, or ``"authors"`` with an activation the authors
            define no initialiser for (they cover tanh, sigmoid, relu and leaky_relu).
    """
    who = "init_weights"
    scheme = lookup_name(dict.fromkeys(INITS), init, "init", who, InvalidParameterError)
    if scheme == "pytorch":
        return model
    act = activation if activation is not None else getattr(model, "activation", None)
    if act is None:
        raise InvalidParameterError(
            f"{who}: expected activation (the model declares none), got None. "
            "Pass activation='tanh' or 'relu'."
        )
    act = lookup_name(
        _AUTHORS_INIT, act, "activation for init='authors'", who, InvalidParameterError
    )
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            if _AUTHORS_INIT[act] == "kaiming_normal":
                nn.init.kaiming_normal_(module.weight, nonlinearity=act)
            else:
                nn.init.xavier_uniform_(module.weight, gain=nn.init.calculate_gain(act))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def build_model(name: str, init: str = "pytorch", **kwargs: Any) -> LayeredNet:
    """A model by registry name (``"mlp"``, ``"cnn"``, ``"vgg16"``, ``"digits-mlp"``,
    ``"digits-cnn"``), built with ``kwargs`` passed to its constructor and initialised by ``init``.

    Names are case-insensitive and ``_`` reads as ``-`` (``"digits_mlp"``). The model stays on the
    CPU. ``init="pytorch"`` (default) keeps PyTorch's default initialisation; ``init="authors"``
    applies the authors' (:func:`init_weights`). Seed torch beforehand for reproducible weights.

    Raises:
        InvalidTypeError: ``name`` is not a string.
        InvalidParameterError: an unknown name, an argument the model does not take, or an
            invalid argument value.
    """
    key = lookup_name(_MODELS, name, "name", "build_model")
    cls = _MODELS[key]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise InvalidParameterError(
            f"build_model: expected arguments of {key} among {', '.join([*accepted, 'init'])}, "
            f"got {', '.join(unknown)}. Remove or rename them."
        )
    lookup_name(dict.fromkeys(INITS), init, "init", "build_model", InvalidParameterError)
    return init_weights(cls(**kwargs), init)


def model_summary(model: nn.Module, input_shape: Sequence[int] | None = None) -> str:
    """A short text description: class, parameter count, and each measured layer's shape.

    The shapes come from one forward pass of a zero batch of two samples of ``input_shape``
    (default: ``model.input_shape``), in eval mode and without gradients; the model's mode is
    restored and the hooks are removed afterwards, whatever happens. Without an input shape only
    the names are listed. Works for any module with a ``measured_layers`` attribute.
    """
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines = [f"{type(model).__name__}: {n_params:,} parameters ({n_train:,} trainable)"]
    layers: tuple[str, ...] = tuple(getattr(model, "measured_layers", ()))
    shape = tuple(input_shape) if input_shape is not None else getattr(model, "input_shape", None)
    shapes: dict[str, tuple[int, ...]] = {}
    if shape is not None and layers:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None else torch.get_default_dtype()
        with eval_mode(model), torch.no_grad(), capture(model, layers, who="model_summary") as acts:
            model(torch.zeros((2, *shape), device=device, dtype=dtype))
        shapes = {layer: tuple(t.shape[1:]) for layer, t in acts.items()}
    lines.append("measured layers (shape per sample):")
    for layer in layers:
        dims = "×".join(str(d) for d in shapes[layer]) if layer in shapes else "?"
        lines.append(f"  {layer:<12} {dims}")
    return "\n".join(lines)
