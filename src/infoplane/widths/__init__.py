"""Kernel widths (sigma) of the Gaussian kernel: one home for the pure functions and the rules.

Every width is the ``sigma`` of ``exp(-||a - b||^2 / (2 sigma^2))`` (METHOD.md's one convention;
the authors' code used ``exp(-d^2 / sigma^2)``: divide their values by sqrt(2)).

* Pure functions of one batch (:mod:`infoplane.widths._functions`): ``median_distance``,
  ``knn_distance``, ``silverman``, ``scott``, ``kernel_alignment``, the candidate grids
  ``candidate_grid`` and ``authors_grid``, the search ``best_width`` and the paper's rule on one
  batch, ``alignment_sigma``.
* Rules applied step after step (:mod:`infoplane.widths._rules`): ``WidthRule`` and its kinds
  ``Fixed``, ``Median``, ``KNN``, ``Silverman``, ``Scott``, ``LabelAlignment`` (the paper's rule
  with its moving average), ``AuthorsAlignment`` (their grid and warm-up exactly),
  ``make_width_rule`` (a rule from its name) and ``batch_widths`` (one rule per measured tensor
  of a batch, the label-alignment searches sharing their evaluation rounds).

The rules build on the functions; the functions build on :mod:`infoplane.functional`.
"""

from infoplane.widths._functions import (
    AUTHORS_HIGH,
    AUTHORS_LOW,
    alignment_sigma,
    authors_grid,
    best_width,
    candidate_grid,
    kernel_alignment,
    knn_distance,
    median_distance,
    scott,
    silverman,
)
from infoplane.widths._rules import (
    KNN,
    WIDTH_RULES,
    AuthorsAlignment,
    Fixed,
    LabelAlignment,
    Median,
    Scott,
    Silverman,
    WidthRule,
    batch_widths,
    make_width_rule,
)

__all__ = [
    "AUTHORS_HIGH",
    "AUTHORS_LOW",
    "KNN",
    "WIDTH_RULES",
    "AuthorsAlignment",
    "Fixed",
    "LabelAlignment",
    "Median",
    "Scott",
    "Silverman",
    "WidthRule",
    "alignment_sigma",
    "authors_grid",
    "batch_widths",
    "best_width",
    "candidate_grid",
    "kernel_alignment",
    "knn_distance",
    "make_width_rule",
    "median_distance",
    "scott",
    "silverman",
]
