"""Pure tensor maths of infoplane: Gram matrices and entropies (widths: :mod:`infoplane.widths`)."""

from infoplane.functional.entropy import (
    conditional_entropy,
    joint_entropy,
    mutual_information,
    renyi_entropy,
    total_correlation,
)
from infoplane.functional.kernels import (
    gaussian_gram,
    label_gram,
    normalize_gram,
    squared_distances,
)

__all__ = [
    "conditional_entropy",
    "gaussian_gram",
    "joint_entropy",
    "label_gram",
    "mutual_information",
    "normalize_gram",
    "renyi_entropy",
    "squared_distances",
    "total_correlation",
]
