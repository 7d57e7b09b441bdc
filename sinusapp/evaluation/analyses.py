"""The analyses of the report beyond Table 1 / Table 2: univariate odds ratios and factor
selection, cross-validation ROC per fold, bootstrap optimism-corrected calibration.

Each function computes; :mod:`sinusapp.evaluation.report` writes and draws.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sinusapp.stats.calibration import OptimismCorrectedCalibration, bootstrap_calibration
from sinusapp.stats.logistic import UnivariateLogistic, univariate_logistic
from sinusapp.stats.roc import RocCurve, YoudenCutoff, auc_ci, roc_curve, youden_cutoff

__all__ = [
    "PAPER_FACTORS",
    "SELECTION_P",
    "CrossValidation",
    "UnivariateRow",
    "cross_validation",
    "optimism_corrected",
    "univariate_analysis",
]

log = logging.getLogger(__name__)

#: The clinical factors of He et al.'s nomogram (chosen by their univariate analysis).
PAPER_FACTORS: tuple[str, ...] = ("asthma", "allergic_rhinitis", "eosinophils_per_ul")
#: Univariate p below which a factor is a candidate for the multivariable model (the paper's).
SELECTION_P = 0.05
#: Odds ratios of continuous factors per a readable step: per 1 cell/µL would read 1.002.
_OR_STEP: dict[str, tuple[float, str]] = {
    "age": (10.0, "10 years"),
    "age_years": (10.0, "10 years"),
    "eosinophils_per_ul": (100.0, "100 cells/µL"),
}


@dataclass(frozen=True, slots=True)
class UnivariateRow:
    """One Table-1 factor's univariate logistic regression in the training cohort."""

    key: str
    label: str
    fit: UnivariateLogistic | None
    step: float
    per: str
    selected: bool
    note: str = ""

    @property
    def odds_ratio(self) -> tuple[float, float, float]:
        """OR per ``step`` with its 95 % CI (NaN when the fit was impossible)."""
        if self.fit is None:
            return (math.nan, math.nan, math.nan)
        z = 1.959963984540054
        b, se, s = self.fit.beta, self.fit.se, self.step
        return (math.exp(b * s), math.exp((b - z * se) * s), math.exp((b + z * se) * s))


def univariate_analysis(
    y: np.ndarray, columns: Mapping[str, tuple[str, np.ndarray]]
) -> tuple[UnivariateRow, ...]:
    """Univariate logistic regression of ``y`` on each factor (``key → (label, values)``,
    values as floats with NaN = missing; binary factors 0/1, sex as female = 1).

    A factor is *selected* when its Wald p < :data:`SELECTION_P`, the paper's screening rule.
    A factor that separates the outcome is fitted with Firth's penalised likelihood.
    """
    rows = []
    for key, (label, x) in columns.items():
        step, per = _OR_STEP.get(key, (1.0, "yes vs no" if _is_binary(x) else "1 unit"))
        fit: UnivariateLogistic | None
        try:
            fit = univariate_logistic(y, x)
            note = "Firth (separation)" if fit.method == "firth" else ""
        except (ValueError, RuntimeError) as exc:
            fit, note = None, f"not estimable: {exc}"
        selected = fit is not None and fit.p < SELECTION_P
        rows.append(UnivariateRow(key, label, fit, step, per, selected, note))
    return tuple(rows)


def _is_binary(x: np.ndarray) -> bool:
    v = x[np.isfinite(x)]
    return bool(v.size) and bool(np.all(np.isin(v, (0.0, 1.0))))


def selection_text(rows: Sequence[UnivariateRow], used: Sequence[str]) -> str:
    """Explain which factors the univariate step selects and why the nomogram uses ``used``."""
    selected = [r.key for r in rows if r.selected]
    labels = {r.key: r.label.split(",")[0] for r in rows}
    sel_text = ", ".join(labels[k] for k in selected) or "no factor"
    used_text = ", ".join(labels.get(k, k) for k in used)
    text = (
        f"Univariate selection (Wald p < {SELECTION_P} in the training cohort) picks: "
        f"{sel_text}. The clinical model and the nomogram use {used_text}."
    )
    missing = [k for k in used if k not in selected]
    extra = [k for k in selected if k not in used]
    if not missing and not extra:
        return text + " The two agree."
    parts = []
    if missing:
        parts.append(
            ", ".join(labels.get(k, k) for k in missing)
            + " did not reach p < 0.05 here but "
            + ("is" if len(missing) == 1 else "are")
            + " kept"
        )
    if extra:
        parts.append(
            ", ".join(labels[k] for k in extra)
            + " reached p < 0.05 but "
            + ("is" if len(extra) == 1 else "are")
            + " not added"
        )
    reason = (
        " because the factor list is fixed in advance (He et al.'s three factors, so the "
        "nomogram can be compared with the paper's); re-selecting factors on each dataset "
        "would make the comparison data-dependent and, in a small cohort, overfit"
        if tuple(used) == PAPER_FACTORS
        else " because the factor list was given to the evaluation"
    )
    return text + " " + "; ".join(parts) + reason + "."


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """The DLR-score's out-of-fold ROC analysis in the training cohort (paper Fig. 3A)."""

    folds: tuple[int, ...]
    curves: tuple[RocCurve, ...]
    aucs: tuple[float, ...]
    n: tuple[int, ...]
    events: tuple[int, ...]
    pooled_auc: float
    pooled_curve: RocCurve
    cutoff: YoudenCutoff

    @property
    def mean_auc(self) -> float:
        """Mean of the per-fold AUCs."""
        return float(np.mean(self.aucs))

    @property
    def sd_auc(self) -> float:
        """SD (n − 1) of the per-fold AUCs."""
        return float(np.std(self.aucs, ddof=1)) if len(self.aucs) > 1 else math.nan


def cross_validation(
    y: np.ndarray, score: np.ndarray, fold: Sequence[Any]
) -> CrossValidation | None:
    """Per-fold ROC of out-of-fold scores; ``None`` when ``fold`` is missing for any patient
    or a fold lacks cases or controls (then no per-fold curve can be drawn)."""
    try:
        f = np.array([int(v) for v in fold])
    except (TypeError, ValueError):
        return None
    ids = tuple(int(v) for v in np.unique(f))
    if len(ids) < 2:
        return None
    curves, aucs, ns, es = [], [], [], []
    for k in ids:
        sel = f == k
        yk = y[sel]
        if yk.sum() == 0 or yk.sum() == yk.size:
            log.warning("fold %d has no case or no control: no per-fold ROC", k)
            return None
        curves.append(roc_curve(yk, score[sel]))
        aucs.append(auc_ci(yk, score[sel]).auc)
        ns.append(int(yk.size))
        es.append(int(yk.sum()))
    return CrossValidation(
        folds=ids,
        curves=tuple(curves),
        aucs=tuple(aucs),
        n=tuple(ns),
        events=tuple(es),
        pooled_auc=auc_ci(y, score).auc,
        pooled_curve=roc_curve(y, score),
        cutoff=youden_cutoff(y, score),
    )


def optimism_corrected(
    records: Sequence[Mapping[str, Any]],
    prob: np.ndarray,
    *,
    fit: Callable[[Sequence[Mapping[str, Any]]], Any],
    n_boot: int,
    seed: int,
) -> OptimismCorrectedCalibration:
    """:func:`~sinusapp.stats.bootstrap_calibration` of a model refitted by ``fit`` (records →
    object with ``predict_proba(records)``) on each bootstrap sample of ``records``."""
    y = np.array([bool(r["recurrence"]) for r in records])
    rows = list(records)

    def refit(idx: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        model = fit([rows[i] for i in idx])
        all_p = np.asarray(model.predict_proba(rows), dtype=float)
        return lambda which: all_p[which]

    return bootstrap_calibration(y, prob, refit=refit, n_boot=n_boot, seed=seed)
