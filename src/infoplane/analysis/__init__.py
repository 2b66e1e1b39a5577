"""Analysis of an information-plane history: tables over runs, per-layer summaries, and the
findings of Wickstrøm et al. (arXiv:1909.11396; Entropy 25(6):899, 2023) checked under the
controls infoplane records.

* :mod:`~infoplane.analysis.tables`: histories as pandas DataFrames; the mean, spread and 95%
  confidence interval over runs (:func:`aggregate`), the tests over runs (Student's t, Fisher's
  combination, Hommel's adjustment), saturation, the smoothing window, the main split.
* :mod:`~infoplane.analysis.summaries`: fitting and compression per layer tested over runs (a
  cross-fitted peak for the fall), the permutation test against the null floor, the data
  processing inequality, early stopping, train against test.
* :mod:`~infoplane.analysis.findings`: one function per finding of the paper, each returning a
  :class:`Finding` (numbers, verdicts under the adaptive widths, the fixed-width control and the
  null floor, each from a test at 0.05, the controlled headline, caveats);
  :func:`check_findings` computes them all once.
* :mod:`~infoplane.analysis.wording`: the findings in sentences (used by the report).

Requires pandas (the ``experiments`` extra); ``import infoplane`` does not import this package.
"""

from __future__ import annotations

from infoplane.analysis.findings import (
    INCONCLUSIVE,
    INCONCLUSIVE_CROSS_FIT,
    NO_NULL_DISTRIBUTION,
    NO_STOP,
    NOT_APPLICABLE,
    NOT_CHECKED,
    NOT_OBSERVED,
    NOT_RECORDED,
    OBSERVED,
    PARTLY,
    SATURATED,
    Finding,
    RunTables,
    check_compression,
    check_dpi,
    check_early_stopping,
    check_estimator,
    check_findings,
    check_fitting,
    check_train_vs_test,
)
from infoplane.analysis.summaries import (
    COMPRESSION_THRESHOLD,
    DPI_TOL,
    DPI_TOLERANCES,
    compression_summary,
    dpi_table,
    early_stopping,
    train_vs_test,
    trend_table,
)
from infoplane.analysis.tables import (
    AVERAGED,
    aggregate,
    history_frame,
    layer_order,
    main_split,
    metrics_frame,
    moving_average,
    smoothing_window,
    splits,
)
from infoplane.analysis.wording import findings_text, sentences

__all__ = [
    "AVERAGED",
    "COMPRESSION_THRESHOLD",
    "DPI_TOL",
    "DPI_TOLERANCES",
    "INCONCLUSIVE",
    "INCONCLUSIVE_CROSS_FIT",
    "NOT_APPLICABLE",
    "NOT_CHECKED",
    "NOT_OBSERVED",
    "NOT_RECORDED",
    "NO_NULL_DISTRIBUTION",
    "NO_STOP",
    "OBSERVED",
    "PARTLY",
    "SATURATED",
    "Finding",
    "RunTables",
    "aggregate",
    "check_compression",
    "check_dpi",
    "check_early_stopping",
    "check_estimator",
    "check_findings",
    "check_fitting",
    "check_train_vs_test",
    "compression_summary",
    "dpi_table",
    "early_stopping",
    "findings_text",
    "history_frame",
    "layer_order",
    "main_split",
    "metrics_frame",
    "moving_average",
    "sentences",
    "smoothing_window",
    "splits",
    "train_vs_test",
    "trend_table",
]
