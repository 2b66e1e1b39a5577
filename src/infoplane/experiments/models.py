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
of the paper: the output of each hidden layer's non-linearity, taken before any pooling and before
the BatchNorm that follows it. Each of these is its own activation module, called exactly once per
forward pass, so a forward hook on it sees exactly one layer. The names are listed in forward order;
the model output is not among them (the measurement adds it as ``"output"``).

Weights keep PyTorch's default initialisation (Kaiming-uniform with ``a = √5`` for ``nn.Linear``
and ``nn.Conv2d``, weight 1 and bias 0 for BatchNorm), as the authors' code does; seed with
``torch.manual_seed`` before construction for reproducible weights. The constructors never move a
model to a device: call ``.to(device)`` yourself.

Build a model by name with :func:`build_model`::

    model = build_model("mlp", activation="relu")
    model.measured_layers  # ('layer1.act', 'layer2.act', 'layer3.act', 'layer4.act')
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from infoplane.errors import InvalidInputError, InvalidParameterError, InvalidTypeError

__all__ = [
    "CNN",
    "MLP",
    "VGG16",
    "VGG16_WIDTH",
    "DigitsCNN",
    "DigitsMLP",
    "LayeredNet",
    "available_activations",
    "available_models",
    "build_model",
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


def _normalise_name(name: str) -> str:
    return name.strip().lower()


def make_activation(name: str) -> nn.Module:
    """A new activation module for ``name`` (``"tanh"``, ``"relu"``, ...).

    Each call returns a fresh instance, so no two layers share a module and a forward hook on one
    activation captures exactly one layer. ``"leaky-relu"`` is read as ``"leaky_relu"``.

    Raises:
        InvalidTypeError: ``name`` is not a string.
        InvalidParameterError: ``name`` is not one of :func:`available_activations`.
    """
    if not isinstance(name, str):
        raise InvalidTypeError(
            f"make_activation: expected activation a string, got {type(name).__name__}. "
            f"Use one of: {', '.join(available_activations())}."
        )
    key = _normalise_name(name).replace("-", "_")
    if key not in _ACTIVATIONS:
        raise InvalidParameterError(
            f"make_activation: expected activation one of {', '.join(available_activations())}, "
            f"got {name!r}. Pick one of these names."
        )
    return _ACTIVATIONS[key]()


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------


def _positive_int(who: str, arg: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidParameterError(
            f"{who}: expected {arg} an integer >= {minimum}, got {value!r}. "
            f"Pass an integer >= {minimum}."
        )
    return int(value)


def _positive_ints(who: str, arg: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise InvalidParameterError(
            f"{who}: expected {arg} a non-empty sequence of positive integers, got {value!r}. "
            f"Pass e.g. (64, 32)."
        )
    return tuple(_positive_int(who, f"every entry of {arg}", v) for v in value)


def _check_activation(who: str, activation: Any) -> str:
    try:
        make_activation(activation)
    except (InvalidTypeError, InvalidParameterError):
        raise InvalidParameterError(
            f"{who}: expected activation one of {', '.join(available_activations())}, "
            f"got {activation!r}. Pick one of these names."
        ) from None
    return activation


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
    """``linear`` → ``act`` [→ ``bn`` (BatchNorm1d)] [→ ``drop``]: ``[N, in] -> [N, out]``."""
    parts: OrderedDict[str, nn.Module] = OrderedDict()
    parts["linear"] = nn.Linear(in_features, out_features)
    parts["act"] = make_activation(activation)
    if batch_norm:
        parts["bn"] = nn.BatchNorm1d(out_features)
    if dropout > 0:
        parts["drop"] = nn.Dropout(dropout)
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
        measured_layers: dotted module names of the hidden non-linearities, in forward order.
        input_shape: the shape of one sample, e.g. ``(1, 28, 28)`` or ``(784,)``.
        num_classes: the width of the logits.
    """

    measured_layers: tuple[str, ...]
    input_shape: tuple[int, ...]
    num_classes: int

    def _set_meta(
        self, measured_layers: Sequence[str], input_shape: Sequence[int], num_classes: int
    ) -> None:
        self.measured_layers = tuple(measured_layers)
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


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

    Shapes:
        input ``[N, ...]`` with ``in_features`` values per sample (flattened), output ``[N,
        num_classes]`` logits. ``measured_layers`` are ``layer1.act`` ... ``layerK.act``, of shapes
        ``[N, hidden[k]]``.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: Sequence[int] = (1024, 20, 20, 20),
        num_classes: int = 10,
        activation: str = "tanh",
        batch_norm: bool = True,
    ) -> None:
        who = type(self).__name__
        in_features = _positive_int(who, "in_features", in_features)
        hidden = _positive_ints(who, "hidden", hidden)
        num_classes = _positive_int(who, "num_classes", num_classes)
        activation = _check_activation(who, activation)
        batch_norm = _check_flag(who, "batch_norm", batch_norm)

        stages: OrderedDict[str, nn.Module] = OrderedDict()
        stages["flatten"] = nn.Flatten(start_dim=1)
        width = in_features
        for k, out in enumerate(hidden, start=1):
            stages[f"layer{k}"] = _dense_block(width, out, activation, batch_norm)
            width = out
        stages["head"] = nn.Linear(width, num_classes)
        super().__init__(stages)
        self.in_features = in_features
        self._set_meta(
            [f"layer{k}.act" for k in range(1, len(hidden) + 1)], (in_features,), num_classes
        )

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
        in_channels = _positive_int(who, "in_channels", in_channels)
        image_size = _positive_int(who, "image_size", image_size)
        channels = _positive_ints(who, "channels", channels)
        dense = _positive_int(who, "dense", dense)
        num_classes = _positive_int(who, "num_classes", num_classes)
        activation = _check_activation(who, activation)
        batch_norm = _check_flag(who, "batch_norm", batch_norm)
        if isinstance(pool_after, (str, bytes)) or not isinstance(pool_after, Sequence):
            raise InvalidParameterError(
                f"{who}: expected pool_after a sequence of convolution indices, got "
                f"{pool_after!r}. Pass e.g. (2, 3)."
            )
        pools = {_positive_int(who, "every entry of pool_after", p) for p in pool_after}
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
        self._set_meta(measured, (in_channels, image_size, image_size), num_classes)

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


class VGG16(LayeredNet):
    """VGG-16 with BatchNorm (Simonyan & Zisserman, ICLR 2015), as used on CIFAR-10 in
    Wickstrøm et al. (arXiv:1909.11396).

    Stages: ``conv1`` ... ``conv13``, each a 3×3 convolution with padding 1 (``conv``) → ``bn``
    (BatchNorm2d, omitted when ``batch_norm=False``) → ``act``; ``pool1`` ... ``pool5`` (2×2
    max-pooling) at each ``"M"`` of ``width``; ``flatten``; ``fc1`` and ``fc2``, each ``linear`` →
    ``act`` → ``drop`` (Dropout, omitted when ``dropout=0``); ``head``, a Linear layer producing
    logits.

    Args:
        in_channels: input channels (3 for CIFAR-10).
        image_size: height = width of the input images (32 for CIFAR-10).
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
        in_channels = _positive_int(who, "in_channels", in_channels)
        image_size = _positive_int(who, "image_size", image_size)
        num_classes = _positive_int(who, "num_classes", num_classes)
        activation = _check_activation(who, activation)
        batch_norm = _check_flag(who, "batch_norm", batch_norm)
        dense = _positive_int(who, "dense", dense)
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, numbers.Real)
            or not 0.0 <= float(dropout) < 1.0
        ):
            raise InvalidParameterError(
                f"{who}: expected dropout a probability in [0, 1), got {dropout!r}."
            )
        dropout = float(dropout)
        if isinstance(width, (str, bytes)) or not isinstance(width, Sequence):
            raise InvalidParameterError(
                f"{who}: expected width a sequence of filter counts and 'M', got {width!r}."
            )
        spec: list[int | str] = [
            "M" if w == "M" else _positive_int(who, "every entry of width (or 'M')", w)
            for w in width
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

        stages: OrderedDict[str, nn.Module] = OrderedDict()
        measured: list[str] = []
        size, channels, n_conv, n_pool = image_size, in_channels, 0, 0
        for w in spec:
            if w == "M":
                n_pool += 1
                stages[f"pool{n_pool}"] = nn.MaxPool2d(kernel_size=2)
                size //= 2
            else:
                n_conv += 1
                stages[f"conv{n_conv}"] = _conv_block(
                    channels, int(w), activation, "before" if batch_norm else None
                )
                measured.append(f"conv{n_conv}.act")
                channels = int(w)
        stages["flatten"] = nn.Flatten(start_dim=1)
        stages["fc1"] = _dense_block(channels * size * size, dense, activation, False, dropout)
        stages["fc2"] = _dense_block(dense, dense, activation, False, dropout)
        measured += ["fc1.act", "fc2.act"]
        stages["head"] = nn.Linear(dense, num_classes)
        super().__init__(stages)
        self._set_meta(measured, (in_channels, image_size, image_size), num_classes)

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
    output ``[N, 10]`` logits; measured layers ``layer1.act``, ``layer2.act``, ``layer3.act``.
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden: Sequence[int] = (64, 32, 16),
        num_classes: int = 10,
        activation: str = "tanh",
        batch_norm: bool = True,
    ) -> None:
        super().__init__(in_features, hidden, num_classes, activation, batch_norm)


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


def build_model(name: str, **kwargs: Any) -> LayeredNet:
    """A model by registry name (``"mlp"``, ``"cnn"``, ``"vgg16"``, ``"digits-mlp"``,
    ``"digits-cnn"``), built with ``kwargs`` passed to its constructor.

    Names are case-insensitive and ``_`` reads as ``-`` (``"digits_mlp"``). The model stays on the
    CPU with PyTorch's default initialisation; seed torch beforehand for reproducible weights.

    Raises:
        InvalidTypeError: ``name`` is not a string.
        InvalidParameterError: an unknown name, an argument the model does not take, or an
            invalid argument value.
    """
    if not isinstance(name, str):
        raise InvalidTypeError(
            f"build_model: expected name a string, got {type(name).__name__}. "
            f"Use one of: {', '.join(available_models())}."
        )
    key = _normalise_name(name).replace("_", "-")
    if key not in _MODELS:
        raise InvalidParameterError(
            f"build_model: expected name one of {', '.join(available_models())}, got {name!r}. "
            f"Pick one of these names."
        )
    cls = _MODELS[key]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise InvalidParameterError(
            f"build_model: expected arguments of {key} among {', '.join(accepted)}, got "
            f"{', '.join(unknown)}. Remove or rename them."
        )
    return cls(**kwargs)


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
        modules = dict(model.named_modules())
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None else torch.get_default_dtype()
        was_training = model.training
        handles = []
        try:
            for layer in layers:

                def hook(_m: nn.Module, _i: Any, out: torch.Tensor, layer: str = layer) -> None:
                    shapes[layer] = tuple(out.shape[1:])

                handles.append(modules[layer].register_forward_hook(hook))
            model.eval()
            with torch.no_grad():
                model(torch.zeros((2, *shape), device=device, dtype=dtype))
        finally:
            for handle in handles:
                handle.remove()
            model.train(was_training)
    lines.append("measured layers (shape per sample):")
    for layer in layers:
        dims = "×".join(str(d) for d in shapes[layer]) if layer in shapes else "?"
        lines.append(f"  {layer:<12} {dims}")
    return "\n".join(lines)
