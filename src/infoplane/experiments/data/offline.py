"""The datasets that need no file: scikit-learn's bundled digits and seeded synthetic images."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch

from infoplane._validation import check_integer
from infoplane.errors import DataError, InvalidParameterError
from infoplane.experiments.data.registry import DIGIT_CLASSES
from infoplane.experiments.data.splits import DatasetSplits

_WHO = "load_dataset"


def load_digits(*, seed: int, test_size: float = 0.25) -> DatasetSplits:
    """scikit-learn's 1797 8x8 digits in [0, 1], split stratified on the label."""
    if (
        isinstance(test_size, bool)
        or not isinstance(test_size, numbers.Real)
        or not 0.0 < float(test_size) < 1.0
    ):
        raise InvalidParameterError(
            f"load_dataset: expected test_size in (0, 1) for 'digits', got {test_size!r}. "
            "Pass e.g. test_size=0.25."
        )
    try:
        from sklearn.datasets import load_digits as sklearn_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise DataError(
            "load_dataset: expected scikit-learn for the 'digits' dataset, got ImportError. "
            "Install it with pip install 'infoplane[experiments]'."
        ) from exc
    bunch = sklearn_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=float(test_size), stratify=labels, random_state=seed
    )
    return DatasetSplits(
        x_train=torch.from_numpy(np.ascontiguousarray(x_tr)).unsqueeze(1),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_te)).unsqueeze(1),
        y_test=torch.from_numpy(np.ascontiguousarray(y_te)),
        num_classes=10,
        name="digits",
        input_shape=(1, 8, 8),
        classes=DIGIT_CLASSES,
    )


def _synthetic_sizes(
    num_classes: int, n_train: int, n_test: int, input_shape: Sequence[int]
) -> tuple[int, int, int, tuple[int, ...]]:
    k = check_integer(num_classes, "num_classes", _WHO)
    if k < 2:
        raise InvalidParameterError(
            f"load_dataset: expected num_classes >= 2 for 'synthetic', got {k}. "
            "Pass num_classes=2 or more."
        )
    n_tr = check_integer(n_train, "n_train", _WHO)
    n_te = check_integer(n_test, "n_test", _WHO)
    if n_tr < k or n_te < k:
        raise InvalidParameterError(
            f"load_dataset: expected n_train and n_test >= num_classes ({k}) for 'synthetic', got "
            f"{n_tr} and {n_te}. Ask for at least one sample per class."
        )
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        input_shape = (input_shape,)  # type: ignore[assignment]
    if len(input_shape) != 3:
        raise InvalidParameterError(
            f"load_dataset: expected input_shape as (C, H, W) for 'synthetic', got "
            f"{tuple(input_shape)!r}. Pass e.g. input_shape=(1, 8, 8)."
        )
    shape = tuple(check_integer(s, "input_shape entries", _WHO) for s in input_shape)
    return k, n_tr, n_te, shape


def load_synthetic(
    *,
    seed: int,
    n_train: int = 1000,
    n_test: int = 250,
    num_classes: int = 10,
    input_shape: Sequence[int] = (1, 8, 8),
    noise: float = 0.3,
) -> DatasetSplits:
    """Seeded class prototypes (smooth random images in [0, 1]) plus Gaussian noise."""
    k, n_tr, n_te, shape = _synthetic_sizes(num_classes, n_train, n_test, input_shape)
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not noise >= 0:
        raise InvalidParameterError(
            f"load_dataset: expected noise >= 0 for 'synthetic', got {noise!r}. "
            "Pass e.g. noise=0.3."
        )
    gen = torch.Generator().manual_seed(seed)
    # Smooth random prototypes in [0, 1], one per class: spatially correlated like images.
    protos = torch.rand((k, *shape), generator=gen)
    protos = torch.nn.functional.avg_pool2d(
        protos, kernel_size=3, stride=1, padding=1, count_include_pad=False
    )
    flat = protos.reshape(k, -1)
    lo, hi = flat.min(dim=1, keepdim=True).values, flat.max(dim=1, keepdim=True).values
    protos = ((flat - lo) / (hi - lo).clamp_min(1e-6)).reshape(k, *shape)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n, dtype=torch.int64) % k
        y = y[torch.randperm(n, generator=gen)]
        x = protos[y] + float(noise) * torch.randn((n, *shape), generator=gen)
        return x.clamp_(0.0, 1.0).contiguous(), y

    x_tr, y_tr = draw(n_tr)
    x_te, y_te = draw(n_te)
    return DatasetSplits(
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        num_classes=k,
        name="synthetic",
        input_shape=shape,  # type: ignore[arg-type]
        classes=tuple(str(i) for i in range(k)),
    )


__all__ = ["load_digits", "load_synthetic"]
