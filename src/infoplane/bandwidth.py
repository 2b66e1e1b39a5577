"""Kernel widths, the public namespace ``infoplane.bandwidth``.

The pure width functions of a batch (:mod:`infoplane.functional.bandwidth`: ``median_distance``,
``knn_distance``, ``silverman``, ``scott``, ``kernel_alignment``, the candidate grids and the
alignment search) and the rules applied step after step (:mod:`infoplane.widths`: ``WidthRule``,
``LabelAlignment``, ``AuthorsAlignment``, ``make_width_rule``, ...), under one name.
"""

from infoplane import widths as _widths
from infoplane.functional import bandwidth as _functional
from infoplane.functional.bandwidth import *  # noqa: F403
from infoplane.widths import *  # noqa: F403

__all__ = sorted([*_functional.__all__, *_widths.__all__])
