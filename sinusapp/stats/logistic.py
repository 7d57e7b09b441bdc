"""Logistic regression guards: (quasi-)complete separation and Firth's penalised fit.

Separation
    With (quasi-)complete separation the maximum-likelihood estimate does not exist: some
    combination of factors predicts the outcome perfectly (e.g. every patient with asthma
    recurred), the coefficient runs off to infinity and an IRLS fit stops at an arbitrary large
    value (β ≈ 23, SE ≈ 10⁴) while reporting convergence. :func:`detect_separation` finds it
    with the linear program of Konis (2007), as R's ``detectseparation`` / ``safeBinaryRegression``:
    with ``zᵢ = (2yᵢ − 1) · xᵢ`` (``xᵢ`` with the intercept), maximise ``Σ zᵢᵀβ`` subject to
    ``zᵢᵀβ ≥ 0`` for every patient and ``−1 ≤ βⱼ ≤ 1``. The optimum is 0 exactly when the MLE
    exists; a positive optimum gives a direction ``β`` along which the likelihood keeps
    rising, and the factors with ``βⱼ ≠ 0`` are the ones involved. Columns are standardised
    first, so a factor in cells/µL and one coded 0/1 weigh alike.

Firth's penalised likelihood
    :func:`firth_logistic` maximises ``l(β) + ½ log det I(β)`` (Firth 1993; Heinze & Schemper
    2002; R's ``logistf``): finite estimates under separation, less small-sample bias. Newton
    steps on the modified score ``Xᵀ(y − π + h(½ − π))`` (``h`` the hat diagonal of
    ``W^½ X (XᵀWX)⁻¹ XᵀW^½``) with step halving on the penalised log-likelihood; the
    covariance is ``(XᵀWX)⁻¹`` at the estimate, as ``logistf``'s ``var``. Wald intervals from
    it are what this app reports (``logistf`` defaults to profile-likelihood intervals, which
    are a little wider and asymmetric under separation).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "FirthFit",
    "SeparationResult",
    "UnivariateLogistic",
    "describe_separation",
    "detect_separation",
    "firth_logistic",
    "univariate_logistic",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SeparationResult:
    """Outcome of :func:`detect_separation`.

    Attributes
    ----------
    separated:
        True when the maximum-likelihood estimate does not exist.
    columns:
        Indices (into the columns of ``x``, intercept excluded) of the factors in the
        separating direction.
    direction:
        The separating direction ``β`` (intercept first, on the standardised scale).
    """

    separated: bool
    columns: tuple[int, ...]
    direction: NDArray[np.float64]


def _design(x: ArrayLike, n: int) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"x must have one row per outcome ({n}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("x must be finite")
    return arr


def detect_separation(y: ArrayLike, x: ArrayLike) -> SeparationResult:
    """Whether ``y`` (0/1) is (quasi-)completely separated by ``x`` plus an intercept.

    See the module docstring (Konis's linear program). ``x``: one row per patient, one
    column per factor, without the intercept.
    """
    from scipy.optimize import linprog

    yy = np.asarray(y, dtype=float).ravel()
    xx = _design(x, yy.size)
    sd = xx.std(axis=0)
    centre = xx.mean(axis=0)
    scaled = np.where(sd > 0, (xx - centre) / np.where(sd > 0, sd, 1.0), 0.0)
    design = np.column_stack([np.ones(yy.size), scaled])
    z = (2 * yy - 1)[:, None] * design
    res = linprog(
        c=-z.sum(axis=0),
        A_ub=-z,
        b_ub=np.zeros(yy.size),
        bounds=[(-1.0, 1.0)] * design.shape[1],
        method="highs",
    )
    if res.status != 0:  # the LP is always feasible (β = 0) and bounded; be explicit anyway
        raise RuntimeError(f"separation check: the linear program failed ({res.message})")
    beta = np.asarray(res.x, dtype=float)
    separated = bool(-res.fun > 1e-7 * max(yy.size, 1))
    cols = tuple(int(j - 1) for j in np.flatnonzero(np.abs(beta) > 1e-6) if j > 0)
    return SeparationResult(separated=separated, columns=cols if separated else (), direction=beta)


@dataclass(frozen=True, slots=True)
class FirthFit:
    """Firth-penalised logistic regression (see the module docstring).

    Attributes
    ----------
    params:
        Coefficients, intercept first.
    covariance:
        ``(XᵀWX)⁻¹`` at the estimate (intercept first).
    penalised_loglik:
        ``l(β) + ½ log det(XᵀWX)`` at the estimate.
    iterations:
        Newton iterations used.
    """

    params: NDArray[np.float64]
    covariance: NDArray[np.float64]
    penalised_loglik: float
    iterations: int


def _penalised(design: NDArray, y: NDArray, beta: NDArray) -> tuple[float, NDArray, NDArray]:
    eta = design @ beta
    pi = 1 / (1 + np.exp(-eta))
    w = pi * (1 - pi)
    info = design.T @ (w[:, None] * design)
    sign, logdet = np.linalg.slogdet(info)
    loglik = float(np.sum(y * eta - np.logaddexp(0, eta)))
    value = loglik + 0.5 * logdet if sign > 0 else -np.inf
    return value, pi, info


def _modified_score(design: NDArray, y: NDArray, pi: NDArray, info: NDArray) -> NDArray:
    """Gradient of the penalised log-likelihood: ``Xᵀ(y − π + h(½ − π))``."""
    cov = np.linalg.inv(info)
    h = pi * (1 - pi) * np.einsum("ij,jk,ik->i", design, cov, design)
    return design.T @ (y - pi + h * (0.5 - pi))


def firth_logistic(
    y: ArrayLike, x: ArrayLike, *, max_iter: int = 200, tol: float = 1e-8
) -> FirthFit:
    """Fit ``logit P(y) = β₀ + xβ`` by Firth's penalised likelihood (as R's ``logistf``).

    Newton steps with the Fisher information and step halving, as ``logistf``; where they
    stall (the information is not the penalised likelihood's curvature, and with a single
    patient in a cell the steps can oscillate), the maximisation is finished by BFGS on the
    same objective with its exact gradient. Converged when the gradient's largest component
    is below ``tol`` times the number of patients.

    Raises
    ------
    ValueError
        Shapes disagree or the information matrix is singular (a constant factor).
    RuntimeError
        No convergence.
    """
    from scipy.optimize import minimize

    yy = np.asarray(y, dtype=float).ravel()
    design = np.column_stack([np.ones(yy.size), _design(x, yy.size)])
    # work on standardised columns (eosinophils in cells/µL next to 0/1 factors), then map
    # back: β_orig = β_std / sd, β₀ = β₀_std − Σ β_std · mean / sd
    centre = design[:, 1:].mean(axis=0)
    sd = design[:, 1:].std(axis=0)
    if np.any(sd == 0):
        raise ValueError("Firth fit: a factor is constant (singular information matrix)")
    z = np.column_stack([np.ones(yy.size), (design[:, 1:] - centre) / sd])
    gtol = tol * max(yy.size, 1)
    beta = np.zeros(z.shape[1])
    value, pi, info = _penalised(z, yy, beta)
    iterations = 0
    converged = False
    while iterations < 50:
        iterations += 1
        try:
            cov = np.linalg.inv(info)
        except np.linalg.LinAlgError as exc:
            if iterations == 1:
                raise ValueError(
                    "Firth fit: singular information matrix (collinear factors)"
                ) from exc
            break  # the Newton steps ran towards a singular point: let BFGS finish
        score = _modified_score(z, yy, pi, info)
        if float(np.max(np.abs(score))) < gtol:
            converged = True
            break
        step = cov @ score
        step_len = float(np.max(np.abs(step)))
        if step_len > 5.0:  # as logistf's maxstep: keep early steps from overshooting
            step *= 5.0 / step_len
        for _ in range(25):
            new_value, new_pi, new_info = _penalised(z, yy, beta + step)
            if np.isfinite(new_value) and new_value >= value:
                break
            step /= 2
        else:
            break  # no ascent along the Newton direction: let BFGS finish
        beta, value, pi, info = beta + step, new_value, new_pi, new_info
    if not converged:

        def objective(b: NDArray) -> tuple[float, NDArray]:
            v, p, inf = _penalised(z, yy, b)
            if not np.isfinite(v):
                return np.inf, np.zeros_like(b)
            return -v, -_modified_score(z, yy, p, inf)

        res = minimize(objective, beta, jac=True, method="BFGS", options={"gtol": gtol})
        beta = np.asarray(res.x, dtype=float)
        value, pi, info = _penalised(z, yy, beta)
        iterations += int(res.nit)
        if float(np.max(np.abs(_modified_score(z, yy, pi, info)))) > 1e3 * gtol:
            raise RuntimeError(f"Firth fit did not converge ({res.message})")
    # back to the original scale
    scale = np.concatenate([[1.0], 1 / sd])
    transform = np.diag(scale)
    transform[0, 1:] = -centre / sd
    params = transform @ beta
    covariance = transform @ np.linalg.inv(info) @ transform.T
    value = _penalised(design, yy, params)[0]  # on the original scale (log det differs)
    return FirthFit(
        params=params,
        covariance=(covariance + covariance.T) / 2,
        penalised_loglik=float(value),
        iterations=iterations,
    )


def describe_separation(
    y: ArrayLike, x: ArrayLike, result: SeparationResult, *, labels: Sequence[str]
) -> str:
    """One sentence naming the separating factors, with the counts for binary ones.

    e.g. ``"Asthma: all 23 patients with asthma had the outcome"``.
    """
    yy = np.asarray(y, dtype=float).ravel().astype(bool)
    xx = _design(x, yy.size)
    parts = []
    for j in result.columns:
        col = xx[:, j]
        label = labels[j]
        levels = np.unique(col)
        if levels.size == 2:
            details = []
            for level in levels:
                sel = col == level
                k, n = int(yy[sel].sum()), int(sel.sum())
                name = "yes" if level == levels.max() else "no"
                if k == n:
                    details.append(f"all {n} patients with {label} = {name} had the outcome")
                elif k == 0:
                    details.append(f"none of the {n} patients with {label} = {name} had it")
            parts.append(f"{label} ({'; '.join(details)})" if details else label)
        else:
            parts.append(label)
    return ", ".join(parts) if parts else "a combination of the factors"


@dataclass(frozen=True, slots=True)
class UnivariateLogistic:
    """A one-factor logistic regression ``logit P(y) = β₀ + β x`` (Wald inference).

    Attributes
    ----------
    beta, se:
        β of the factor and its standard error.
    odds_ratio, low, high:
        ``exp(β)`` per unit of ``x`` and its Wald 95 % CI ``exp(β ± 1.96 se)``.
    p:
        Two-sided Wald p-value.
    n:
        Patients used (rows with a missing ``x`` are dropped).
    method:
        ``"ml"`` (as R's ``glm``) or ``"firth"`` when the factor separates the outcome (the
        ML estimate does not exist; ``logistf`` instead).
    """

    beta: float
    se: float
    odds_ratio: float
    low: float
    high: float
    p: float
    n: int
    method: str


def univariate_logistic(y: ArrayLike, x: ArrayLike) -> UnivariateLogistic:
    """Fit ``y ~ x`` by logistic regression; Firth's fit when ``x`` separates ``y``.

    ``y`` is 0/1; ``x`` one value per patient (NaN = missing, dropped). Raises
    ``ValueError`` when fewer than 2 events / non-events remain or ``x`` is constant.
    """
    import warnings

    import statsmodels.api as sm
    from scipy.stats import norm

    yy = np.asarray(y, dtype=float).ravel()
    xx = np.asarray(x, dtype=float).ravel()
    if xx.size != yy.size:
        raise ValueError(f"x has {xx.size} values for {yy.size} outcomes")
    keep = np.isfinite(xx)
    yy, xx = yy[keep], xx[keep]
    events = int(yy.sum())
    if events < 2 or yy.size - events < 2:
        raise ValueError(f"need ≥ 2 events and non-events, got {events} of {yy.size}")
    if np.ptp(xx) == 0:
        raise ValueError("the factor is constant")
    if detect_separation(yy, xx).separated:
        fit = firth_logistic(yy, xx)
        beta, se, method = float(fit.params[1]), float(np.sqrt(fit.covariance[1, 1])), "firth"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.GLM(yy, sm.add_constant(xx), family=sm.families.Binomial()).fit()
        beta, se, method = float(res.params[1]), float(res.bse[1]), "ml"
    z = 1.959963984540054
    return UnivariateLogistic(
        beta=beta,
        se=se,
        odds_ratio=float(np.exp(beta)),
        low=float(np.exp(beta - z * se)),
        high=float(np.exp(beta + z * se)),
        p=float(2 * norm.sf(abs(beta / se))),
        n=int(yy.size),
        method=method,
    )
