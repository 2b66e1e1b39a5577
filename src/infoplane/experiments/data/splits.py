"""The result of a loader, and the one conversion of stored pixels into image tensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class DatasetSplits:
    """A train/test split of an image classification dataset.

    Attributes:
        x_train: ``float32`` images ``[N_train, C, H, W]``.
        y_train: ``int64`` labels ``[N_train]`` in ``[0, num_classes)``.
        x_test: ``float32`` images ``[N_test, C, H, W]``.
        y_test: ``int64`` labels ``[N_test]``.
        num_classes: the number of classes.
        name: the canonical dataset name (``"mnist"``, ...).
        input_shape: ``(C, H, W)`` of one image.
        classes: the class names, index ``k`` naming label ``k``, or ``None``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    name: str
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...] | None = None

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.x_test.shape[0])


def to_images(array: np.ndarray, scale: str, pad: int = 0) -> torch.Tensor:
    """``uint8`` pixels ``[N, C, H, W]`` as ``float32`` images, divided by 255 when ``scale`` is
    ``"unit"``, with ``pad`` rows and columns of zeros on each side (one allocation)."""
    n, c, h, w = array.shape
    out = torch.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=torch.float32)
    out[:, :, pad : pad + h, pad : pad + w] = torch.from_numpy(np.ascontiguousarray(array))
    if scale == "unit":
        out.div_(255.0)
    return out


__all__ = ["DatasetSplits"]
