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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as _sps

from sinusapp.stats._arrays import as_outcome, as_scores
from sinusapp.stats.roc import auc_ci

__all__ = [
    "CalibrationResult",
    "HosmerLemeshowResult",
    "OptimismCorrectedCalibration",
    "bootstrap_calibration",
    "calibration",
    "calibration_intercept",
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
        Number of (non-empty) groups − 2 (development sample), or the number of groups
        (``external=True``: a cohort the model was not fitted on).
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
    # in exact arithmetic low ≤ p ≤ high; in floating point an all-event group gives
    # high = 1 − 1e-16 < p = 1 (and an event-free one low = 1e-17 > 0), so bound by p
    low = np.minimum(np.clip(centre - half, 0, 1), p)
    high = np.maximum(np.clip(centre + half, 0, 1), p)
    return low, high


def _logistic_fit(
    y: NDArray[np.bool_], x: NDArray[np.float64] | None, offset, *, quiet: bool = False
) -> NDArray:
    import statsmodels.api as sm

    # one covariate: (quasi-)complete separation iff no case lies below a control (or the
    # reverse); IRLS then stops at an arbitrary huge slope while "converging"
    if (
        x is not None
        and y.any()
        and not y.all()
        and (x[y].min() >= x[~y].max() or x[y].max() <= x[~y].min())
    ):
        if not quiet:
            log.warning("calibration fit: the predictions separate the outcome; slope is NaN")
        return np.full(2, np.nan)
    exog = np.ones((y.size, 1)) if x is None else sm.add_constant(x, has_constant="add")
    model = sm.GLM(y.astype(float), exog, family=sm.families.Binomial(), offset=offset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit()
    if not bool(getattr(res, "converged", True)):
        # (quasi-)separation: the slope is not estimable; say so rather than return a number
        if not quiet:
            log.warning(
                "calibration fit did not converge (separated data); slope/intercept are NaN"
            )
        return np.full(exog.shape[1], np.nan)
    return np.asarray(res.params, dtype=float)


def calibration_intercept(y: NDArray[np.bool_], lp: NDArray[np.float64]) -> float:
    """Calibration-in-the-large: the intercept ``a`` of ``logit P(y) = a + lp`` (``lp`` the
    model's logit as offset), by the maximum-likelihood equation ``sum(expit(a + lp)) =
    sum(y)`` solved with Brent's method; NaN when every patient or none had the outcome.

    The equation is monotone in ``a`` and always has one root otherwise, but IRLS (a GLM
    with an offset) loses it when some predictions are extreme: a bootstrap refit that gives
    an event a probability of 1e-12 made statsmodels report "converged" at a = -9e14. The
    root is the same number IRLS finds when it does converge.
    """
    from scipy.optimize import brentq
    from scipy.special import expit

    y = np.asarray(y, dtype=bool)
    lp = np.asarray(lp, dtype=float)
    events = float(np.count_nonzero(y))
    if events == 0 or events == y.size or not np.all(np.isfinite(lp)):
        return float("nan")

    def excess(a: float) -> float:
        return float(np.sum(expit(a + lp))) - events

    lo, hi = -1.0, 1.0
    while excess(lo) > 0:
        lo *= 2
    while excess(hi) < 0:
        hi *= 2
    return float(brentq(excess, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500))


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
    intercept = calibration_intercept(y, lp)
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
    y_true: ArrayLike, prob: ArrayLike, *, groups: int = 10, external: bool = False
) -> HosmerLemeshowResult:
    """Hosmer–Lemeshow test with groups at the quantiles of the predicted risk.

    As ``ResourceSelection::hoslem.test``: breaks at ``quantile(prob, seq(0, 1, 1/groups))``
    (R's default type 7 = numpy's linear), duplicate breaks merged, intervals closed on the
    right with the lowest included. One deliberate difference: ``df = number of groups actually
    formed − 2``; hoslem.test keeps ``groups − 2`` even when tied probabilities merge breaks,
    which overstates the degrees of freedom.

    ``external=True`` is for predictions of a model fitted on *other* patients (a testing /
    external cohort): nothing was estimated from these data, so the statistic is referred to
    χ² with **g** degrees of freedom (g = groups formed), as Hosmer & Lemeshow recommend for
    validation samples (Applied Logistic Regression, 3rd ed., §5.2.2; Hosmer, Lemeshow &
    Klar 1988); the g − 2 of the development sample would make the test anti-conservative.
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
    df = int(count.size if external else count.size - 2)
    p_value = float(_sps.chi2.sf(statistic, df)) if df > 0 else float("nan")
    return HosmerLemeshowResult(
        statistic=statistic,
        df=df,
        p=p_value,
        observed=observed,
        expected=expected,
        count=count,
    )


@dataclass(frozen=True, slots=True)
class OptimismCorrectedCalibration:
    """Bootstrap optimism-corrected calibration (as ``rms::calibrate`` / ``rms::validate``).

    Attributes
    ----------
    grid:
        Predicted probabilities at which the curves are evaluated.
    apparent:
        LOWESS observed proportion at ``grid``, model and curve from the same patients.
    corrected:
        ``apparent − optimism`` at ``grid`` (clipped to [0, 1]).
    optimism:
        Mean over replicates of (curve on the bootstrap sample − curve of the same bootstrap
        model on the original patients) at ``grid``.
    slope_apparent, slope_corrected, intercept_apparent, intercept_corrected, c_apparent,
    c_corrected:
        The same correction applied to the calibration slope, calibration-in-the-large and
        c (AUC): Harrell's ``validate``; ``slope_corrected`` is the shrinkage factor.
    mean_absolute_error:
        Mean |corrected − grid| over the grid (rms's "Mean absolute error").
    n_boot, n_failed:
        Replicates used, and replicates whose refit failed (skipped).
    """

    grid: NDArray[np.float64]
    apparent: NDArray[np.float64]
    corrected: NDArray[np.float64]
    optimism: NDArray[np.float64]
    slope_apparent: float
    slope_corrected: float
    intercept_apparent: float
    intercept_corrected: float
    c_apparent: float
    c_corrected: float
    mean_absolute_error: float
    n_boot: int
    n_failed: int


def _lowess_at(y: NDArray, p: NDArray, grid: NDArray) -> NDArray[np.float64]:
    """LOWESS of y on p (frac 2/3, no robustness iterations, as rms) interpolated at grid."""
    from statsmodels.nonparametric.smoothers_lowess import lowess

    fit = lowess(y.astype(float), p, frac=2 / 3, it=0, return_sorted=True)
    xs, idx = np.unique(fit[:, 0], return_index=True)
    return np.interp(grid, xs, fit[idx, 1])


def _slope_intercept_c(y: NDArray, p: NDArray) -> tuple[float, float, float]:
    lp = logit(p)
    slope = float(_logistic_fit(y, lp, None, quiet=True)[1])
    intercept = calibration_intercept(y, lp)
    return slope, intercept, auc_ci(y, p).auc


def _strictly_probabilities(p: NDArray) -> bool:
    """All finite and strictly between 0 and 1 (so their logits are finite)."""
    p = np.asarray(p, dtype=float)
    return bool(np.all(np.isfinite(p)) and np.all((p > 0.0) & (p < 1.0)))


def bootstrap_calibration(
    y_true: ArrayLike,
    prob: ArrayLike,
    *,
    refit: Callable[[NDArray[np.int64]], Callable[[NDArray[np.int64]], NDArray[np.float64]]],
    n_boot: int = 200,
    seed: int = 0,
    grid_points: int = 50,
) -> OptimismCorrectedCalibration:
    """Optimism-corrected calibration of a model by the bootstrap (Harrell; ``rms::calibrate``,
    ``method = "boot"``, ``B`` replicates).

    ``prob`` are the model's apparent predictions for the patients it was fitted on.
    ``refit(idx)`` refits the *whole* modelling procedure on the patients ``idx`` (indices
    with repeats) and returns a function mapping patient indices to predicted probabilities.
    For each replicate b: draw ``n`` patients with replacement, refit, compute the LOWESS
    curve (and slope, intercept, c) on the bootstrap sample (apparent_b) and, with the same
    model, on the original patients (test_b); optimism = mean(apparent_b − test_b); the
    corrected value is the apparent one minus the optimism. The grid spans the 1st–99th
    percentiles of ``prob``. A replicate whose refit raises (e.g. too few events drawn) or
    diverges (predicts exactly 0 or 1 for some patient) is skipped and counted in
    ``n_failed``, as ``rms`` drops divergent fits.
    """
    y = as_outcome(y_true)
    p = as_scores(prob, n=y.size, name="prob")
    if n_boot < 1:
        raise ValueError(f"n_boot must be ≥ 1, got {n_boot}")
    lo, hi = np.quantile(p, [0.01, 0.99])
    grid = np.linspace(lo, hi, grid_points)
    apparent = _lowess_at(y, p, grid)
    s_app, i_app, c_app = _slope_intercept_c(y, p)
    rng = np.random.default_rng(seed)
    everyone = np.arange(y.size)
    diffs, d_slope, d_int, d_c = [], [], [], []
    failed = 0
    for _ in range(n_boot):
        idx = rng.integers(0, y.size, size=y.size)
        yb = y[idx]
        if yb.sum() < 2 or yb.size - yb.sum() < 2:
            failed += 1
            continue
        try:
            predict = refit(idx)
            pb, po = predict(idx), predict(everyone)
        except (ValueError, RuntimeError, ArithmeticError) as exc:
            log.debug("bootstrap replicate skipped: %s", exc)
            failed += 1
            continue
        if not (_strictly_probabilities(pb) and _strictly_probabilities(po)):
            # A refit that diverged (quasi-separation in the bootstrap sample) predicts 0 or 1
            # exactly; logit() clips those to ±18.4, so its slope and intercept would measure
            # the clip, not the model. rms drops divergent fits. (The 3e10 intercept of the
            # 40-case cohort came from IRLS, fixed in calibration_intercept, not from these.)
            log.debug("bootstrap replicate skipped: predictions of exactly 0 or 1")
            failed += 1
            continue
        diffs.append(_lowess_at(yb, pb, grid) - _lowess_at(y, po, grid))
        sb, ib, cb = _slope_intercept_c(yb, pb)
        so, io, co = _slope_intercept_c(y, po)
        d_slope.append(sb - so)
        d_int.append(ib - io)
        d_c.append(cb - co)
    if not diffs:
        raise ValueError(f"every one of the {n_boot} bootstrap refits failed")
    optimism = np.mean(diffs, axis=0)
    corrected = np.clip(apparent - optimism, 0, 1)
    return OptimismCorrectedCalibration(
        grid=grid,
        apparent=apparent,
        corrected=corrected,
        optimism=optimism,
        slope_apparent=s_app,
        slope_corrected=s_app - float(np.nanmean(d_slope)),
        intercept_apparent=i_app,
        intercept_corrected=i_app - float(np.nanmean(d_int)),
        c_apparent=c_app,
        c_corrected=c_app - float(np.nanmean(d_c)),
        mean_absolute_error=float(np.mean(np.abs(corrected - grid))),
        n_boot=len(diffs),
        n_failed=failed,
    )
