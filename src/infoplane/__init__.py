"""infoplane: information plane analysis of deep neural networks.

Estimates the mutual information between each layer T of a network and its input X and label Y
with the matrix-based Rényi alpha-entropy of Gram matrices (Sanchez Giraldo et al., IEEE TIT 2015),
using a tensor kernel for convolutional activations (Wickstrøm et al., arXiv:1909.11396; Entropy
25(6):899, 2023). All quantities are in bits. Importing infoplane loads torch and numpy only.
"""

from infoplane import widths
from infoplane._version import __version__
from infoplane.capture import capture
from infoplane.errors import (
    DataError,
    DeviceMismatchError,
    DistributedError,
    HistoryError,
    InfoPlaneError,
    InvalidInputError,
    InvalidParameterError,
    InvalidTypeError,
    LayerNotFoundError,
    NonFiniteActivationError,
)
from infoplane.functional import (
    conditional_entropy,
    gaussian_gram,
    joint_entropy,
    label_gram,
    mutual_information,
    normalize_gram,
    renyi_entropy,
    squared_distances,
    total_correlation,
)
from infoplane.history import History
from infoplane.tracker import InformationPlane

__all__ = [
    "DataError",
    "DeviceMismatchError",
    "DistributedError",
    "History",
    "HistoryError",
    "InfoPlaneError",
    "InformationPlane",
    "InvalidInputError",
    "InvalidParameterError",
    "InvalidTypeError",
    "LayerNotFoundError",
    "NonFiniteActivationError",
    "__version__",
    "capture",
    "conditional_entropy",
    "gaussian_gram",
    "joint_entropy",
    "label_gram",
    "mutual_information",
    "normalize_gram",
    "renyi_entropy",
    "squared_distances",
    "total_correlation",
    "widths",
]
