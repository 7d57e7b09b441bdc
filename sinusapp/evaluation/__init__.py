"""Paper-style evaluation report: a layer above :mod:`sinusapp.stats` and :mod:`sinusapp.nomogram`.

The statistics (:mod:`sinusapp.stats`) and the nomogram model (:mod:`sinusapp.nomogram`) are
the building blocks; this package combines them into the tables and figures of He et al.
(2023) — Table 1, univariate analysis, Table 2, DeLong tests, ROC / calibration / decision
curves, the nomogram figure — written by :func:`write_evaluation`. It needs matplotlib, which
it imports only when a figure is drawn.
"""

from sinusapp.evaluation.report import (
    COHORTS,
    MODELS,
    DelongRow,
    DscSummary,
    EvaluationSummary,
    ModelPerformance,
    write_evaluation,
)

__all__ = [
    "COHORTS",
    "MODELS",
    "DelongRow",
    "DscSummary",
    "EvaluationSummary",
    "ModelPerformance",
    "write_evaluation",
]
