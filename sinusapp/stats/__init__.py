"""Statistics of the paper, computed as the established R packages compute them.

- ROC analysis as ``pROC`` (higher score = case, positive when score ≥ threshold):
  :func:`roc_curve`, :func:`auc_ci` (DeLong CI), :func:`delong_test` (paired, as
  ``roc.test``), :func:`youden_cutoff`, :func:`metrics_at`, :func:`auc_bootstrap_ci`
  (stratified bootstrap, as ``ci.auc(method = "bootstrap")``), :func:`delong_unpaired_test`.
- Calibration: :func:`calibration` (slope, calibration-in-the-large, Brier, c, binned and
  LOWESS curves), :func:`hosmer_lemeshow` (``external=True``: g degrees of freedom),
  :func:`bootstrap_calibration` (optimism-corrected, as ``rms::calibrate``).
- Logistic regression guards: :func:`detect_separation`, :func:`firth_logistic`,
  :func:`univariate_logistic` (odds ratios of Table-1 factors).
- Decision curves as ``dcurves``: :func:`net_benefit` (treat when risk ≥ threshold).
- Univariate screening as the paper's Table 1: :func:`univariate_screening`
  (Mann–Whitney U / Pearson chi-square, p < 0.05).

The paper-style evaluation (tables and figures) is :func:`sinusapp.evaluation.write_evaluation`,
a layer above this package and :mod:`sinusapp.nomogram` (this package imports neither).
"""

from sinusapp.stats.calibration import (
    CalibrationResult,
    HosmerLemeshowResult,
    OptimismCorrectedCalibration,
    bootstrap_calibration,
    calibration,
    hosmer_lemeshow,
)
from sinusapp.stats.decision import DecisionCurve, net_benefit
from sinusapp.stats.logistic import (
    FirthFit,
    SeparationResult,
    UnivariateLogistic,
    detect_separation,
    firth_logistic,
    univariate_logistic,
)
from sinusapp.stats.roc import (
    AucResult,
    BinaryMetrics,
    BootstrapAucCi,
    DelongTestResult,
    RocCurve,
    YoudenCutoff,
    auc_bootstrap_ci,
    auc_ci,
    delong_test,
    delong_unpaired_test,
    metrics_at,
    roc_curve,
    youden_cutoff,
)
from sinusapp.stats.screening import (
    ContinuousSummary,
    ScreeningResult,
    chi_square_test,
    mann_whitney_test,
    univariate_screening,
)

__all__ = [
    "AucResult",
    "BinaryMetrics",
    "BootstrapAucCi",
    "CalibrationResult",
    "ContinuousSummary",
    "DecisionCurve",
    "DelongTestResult",
    "FirthFit",
    "HosmerLemeshowResult",
    "OptimismCorrectedCalibration",
    "RocCurve",
    "ScreeningResult",
    "SeparationResult",
    "UnivariateLogistic",
    "YoudenCutoff",
    "auc_bootstrap_ci",
    "auc_ci",
    "bootstrap_calibration",
    "calibration",
    "chi_square_test",
    "delong_test",
    "delong_unpaired_test",
    "detect_separation",
    "firth_logistic",
    "hosmer_lemeshow",
    "mann_whitney_test",
    "metrics_at",
    "net_benefit",
    "roc_curve",
    "univariate_logistic",
    "univariate_screening",
    "youden_cutoff",
]
