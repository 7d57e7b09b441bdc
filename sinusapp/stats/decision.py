"""Decision-curve analysis (Vickers & Elkin 2006), with the conventions of R's ``dcurves``.

At a threshold probability ``pt`` a patient is *treated* (called high risk) when
``risk ≥ pt``. With N patients, TP treated events and FP treated non-events,

    net benefit = TP / N − FP / N · pt / (1 − pt).

"Treat all" is the same formula with everyone treated: ``prevalence − (1 − prevalence) ·
pt / (1 − pt)``; "treat none" is 0 at every threshold. Thresholds must lie in [0, 1); as in
dcurves (``risk >= threshold`` in ``.calculate_test_consequences``), a threshold of exactly
0 is evaluated at 1e-9, so a patient with a predicted risk of exactly 0 is never treated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sinusapp.stats._arrays import as_outcome, as_scores

__all__ = ["DecisionCurve", "net_benefit"]


@dataclass(frozen=True, slots=True)
class DecisionCurve:
    """Net benefit of a model and of the default strategies, per threshold.

    Attributes
    ----------
    thresholds:
        Threshold probabilities ``pt``.
    net_benefit:
        The model's net benefit (treat when risk ≥ pt).
    treat_all:
        Net benefit of treating everyone.
    treat_none:
        Net benefit of treating no one (zeros).
    prevalence:
        Event rate in the data.
    """

    thresholds: NDArray[np.float64]
    net_benefit: NDArray[np.float64]
    treat_all: NDArray[np.float64]
    treat_none: NDArray[np.float64]
    prevalence: float


def net_benefit(y_true: ArrayLike, risk: ArrayLike, thresholds: ArrayLike) -> DecisionCurve:
    """Net benefit at each threshold (dcurves convention: treat when risk ≥ threshold)."""
    y = as_outcome(y_true)
    r = as_scores(risk, n=y.size, name="risk")
    pt = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if pt.ndim != 1 or pt.size == 0:
        raise ValueError("thresholds must be a non-empty 1-D sequence")
    if np.any(~np.isfinite(pt)) or np.any(pt < 0) or np.any(pt >= 1):
        raise ValueError("thresholds must lie in [0, 1)")
    n = y.size
    effective = np.where(pt == 0, 1e-9, pt)
    odds = effective / (1 - effective)
    treated = r[None, :] >= effective[:, None]
    tp = np.sum(treated & y[None, :], axis=1)
    fp = np.sum(treated & ~y[None, :], axis=1)
    prevalence = float(y.mean())
    return DecisionCurve(
        thresholds=pt,
        net_benefit=tp / n - fp / n * odds,
        treat_all=prevalence - (1 - prevalence) * odds,
        treat_none=np.zeros_like(pt),
        prevalence=prevalence,
    )
