"""Pure tensor maths of infoplane: Gram matrices, entropies and kernel widths."""

from infoplane.functional import bandwidth
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
    "bandwidth",
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
