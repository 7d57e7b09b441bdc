"""Calibration of predicted probabilities: slope, intercept, Brier score, curves, Hosmer–Lemeshow.

Conventions:

- ``y_true``: booleans or 0/1, True/1 = event. ``prob``: predicted probabilities of the event.
- Probabilities are clipped to [1e-8, 1 − 1e-8] before taking the logit, so a model that
  predicts exactly 0 or 1 still gets a finite calibration fit.
- **Slope**: β of the logistic regression ``logit P(y) = α + β · logit(prob)`` (1 = ideal,
  < 1 = predictions too extreme, as after overfitting).
- **Intercept** (*calibration-in-the-large*): α of ``logit P(y) = α + offset(logit(prob))``,
  i.e. the slope fixed at 1 (0 = ideal, > 0 = risks underestimated on average). This is the
  recommended definition (Van Calster et al. 2016, Steyerberg); note that it is *not* the
  intercept of the slope fit.
- **Brier score**: mean of (prob − y)².
- **c**: the AUC of ``prob`` (ties count ½), as :func:`sinusapp.stats.roc.auc_ci`.
- Binned curve: patients sorted by predicted risk and split into ``bins`` groups of (nearly)
  equal size; per group the mean predicted risk, the observed event rate and its Wilson 95 %
  interval.
- Smoothed curve: LOWESS of y on prob with ``frac = 2/3`` and no robustness iterations, as
  ``rms::val.prob`` (``lowess(p, y, iter = 0)``).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as _sps

from sinusapp.stats._arrays import as_outcome, as_scores
from sinusapp.stats.roc import auc_ci

__all__ = [
    "CalibrationResult",
    "HosmerLemeshowResult",
    "calibration",
    "hosmer_lemeshow",
    "logit",
]

log = logging.getLogger(__name__)

_EPS = 1e-8


def logit(p: ArrayLike) -> NDArray[np.float64]:
    """``log(p / (1 − p))`` with p clipped to [1e-8, 1 − 1e-8]."""
    q = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Calibration of a set of predicted probabilities (see the module docstring).

    Attributes
    ----------
    slope, intercept:
        Calibration slope and calibration-in-the-large intercept.
    brier:
        Brier score.
    c:
        Concordance (AUC).
    n, events:
        Number of patients and of events.
    bin_predicted, bin_observed, bin_low, bin_high, bin_count:
        The binned curve: mean predicted risk, observed rate, Wilson 95 % CI, group size.
    smooth_predicted, smooth_observed:
        The LOWESS curve, sorted by predicted risk.
    """

    slope: float
    intercept: float
    brier: float
    c: float
    n: int
    events: int
    bin_predicted: NDArray[np.float64]
    bin_observed: NDArray[np.float64]
    bin_low: NDArray[np.float64]
    bin_high: NDArray[np.float64]
    bin_count: NDArray[np.int64]
    smooth_predicted: NDArray[np.float64]
    smooth_observed: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class HosmerLemeshowResult:
    """Hosmer–Lemeshow goodness-of-fit test.

    Attributes
    ----------
    statistic:
        Σ over groups of (O₁ − E₁)² / E₁ + (O₀ − E₀)² / E₀.
    df:
        Number of (non-empty) groups − 2.
    p:
        Upper tail of χ²(df) at ``statistic``.
    observed, expected, count:
        Per group: observed events, expected events (sum of prob), group size.
    """

    statistic: float
    df: int
    p: float
    observed: NDArray[np.float64]
    expected: NDArray[np.float64]
    count: NDArray[np.int64]


def _wilson(k: NDArray[np.float64], n: NDArray[np.float64], z: float = 1.959964):
    p = k / n
    den = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def _logistic_fit(y: NDArray[np.bool_], x: NDArray[np.float64] | None, offset) -> NDArray:
    import statsmodels.api as sm

    exog = np.ones((y.size, 1)) if x is None else sm.add_constant(x, has_constant="add")
    model = sm.GLM(y.astype(float), exog, family=sm.families.Binomial(), offset=offset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit()
    if not bool(getattr(res, "converged", True)):
        # (quasi-)separation: the slope is not estimable; say so rather than return a number
        log.warning("calibration fit did not converge (separated data); slope/intercept are NaN")
        return np.full(exog.shape[1], np.nan)
    return np.asarray(res.params, dtype=float)


def calibration(y_true: ArrayLike, prob: ArrayLike, *, bins: int = 10) -> CalibrationResult:
    """Calibration slope, intercept, Brier score, c and the curves (see the module docstring)."""
    y = as_outcome(y_true)
    p = as_scores(prob, n=y.size, name="prob")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("prob must lie in [0, 1]")
    if bins < 1:
        raise ValueError(f"bins must be ≥ 1, got {bins}")
    lp = logit(p)
    slope = float(_logistic_fit(y, lp, None)[1])
    intercept = float(_logistic_fit(y, None, lp)[0])
    brier = float(np.mean((p - y) ** 2))
    c = auc_ci(y, p).auc

    order = np.argsort(p, kind="stable")
    groups = [g for g in np.array_split(order, min(bins, y.size)) if g.size]
    count = np.array([g.size for g in groups], dtype=np.int64)
    pred = np.array([p[g].mean() for g in groups])
    k = np.array([y[g].sum() for g in groups], dtype=float)
    obs = k / count
    low, high = _wilson(k, count.astype(float))

    from statsmodels.nonparametric.smoothers_lowess import lowess

    smooth = lowess(y.astype(float), p, frac=2 / 3, it=0, return_sorted=True)
    return CalibrationResult(
        slope=slope,
        intercept=intercept,
        brier=brier,
        c=c,
        n=int(y.size),
        events=int(y.sum()),
        bin_predicted=pred,
        bin_observed=obs,
        bin_low=low,
        bin_high=high,
        bin_count=count,
        smooth_predicted=smooth[:, 0],
        smooth_observed=np.clip(smooth[:, 1], 0, 1),
    )


def hosmer_lemeshow(
    y_true: ArrayLike, prob: ArrayLike, *, groups: int = 10
) -> HosmerLemeshowResult:
    """Hosmer–Lemeshow test with groups at the quantiles of the predicted risk.

    As ``ResourceSelection::hoslem.test``: breaks at ``quantile(prob, seq(0, 1, 1/groups))``
    (R's default type 7 = numpy's linear), duplicate breaks merged, intervals closed on the
    right with the lowest included. One deliberate difference: ``df = number of groups actually
    formed − 2``; hoslem.test keeps ``groups − 2`` even when tied probabilities merge breaks,
    which overstates the degrees of freedom.
    """
    y = as_outcome(y_true)
    p = as_scores(prob, n=y.size, name="prob")
    if groups < 3:
        raise ValueError(f"groups must be ≥ 3, got {groups}")
    breaks = np.unique(np.quantile(p, np.linspace(0, 1, groups + 1)))
    # right-closed intervals (a, b], the first one [min, b]
    idx = np.clip(np.searchsorted(breaks, p, side="left") - 1, 0, max(breaks.size - 2, 0))
    n_groups = max(breaks.size - 1, 1)
    count = np.bincount(idx, minlength=n_groups).astype(np.int64)
    observed = np.bincount(idx, weights=y.astype(float), minlength=n_groups).astype(float)
    expected = np.bincount(idx, weights=p, minlength=n_groups).astype(float)
    keep = count > 0
    count, observed, expected = count[keep], observed[keep], expected[keep]
    exp0 = count - expected
    obs0 = count - observed
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (observed - expected) ** 2 / expected + (obs0 - exp0) ** 2 / exp0
    statistic = float(np.nansum(terms))
    df = int(count.size - 2)
    p_value = float(_sps.chi2.sf(statistic, df)) if df > 0 else float("nan")
    return HosmerLemeshowResult(
        statistic=statistic,
        df=df,
        p=p_value,
        observed=observed,
        expected=expected,
        count=count,
    )
