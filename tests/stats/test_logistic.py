"""Separation detection, Firth's fit and univariate odds ratios against closed forms.

Reference values used here (exact results, not simulations):
- 2×2 table, maximum likelihood: log OR = log(ad / bc), SE = sqrt(1/a + 1/b + 1/c + 1/d)
  (what R's ``glm(y ~ x, binomial)`` returns for a binary x).
- 2×2 table, Firth: the saturated model's penalised estimate is the Haldane-corrected log
  odds ratio log((a+½)(d+½) / ((b+½)(c+½))) and intercept log((c+½)/(d+½)) (what R's
  ``logistf(y ~ x)`` returns; Firth 1993, Heinze & Schemper 2002).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from sinusapp.stats.logistic import (
    describe_separation,
    detect_separation,
    firth_logistic,
    univariate_logistic,
)


def table(a: int, b: int, c: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """x = 1: a events, b non-events; x = 0: c events, d non-events."""
    x = np.r_[np.ones(a + b), np.zeros(c + d)]
    y = np.r_[np.ones(a), np.zeros(b), np.ones(c), np.zeros(d)]
    return y, x


@pytest.mark.parametrize("cells", [(10, 5, 3, 12), (1, 9, 20, 7), (0, 1, 3, 16), (7, 0, 4, 9)])
def test_firth_2x2_is_the_haldane_corrected_odds_ratio(cells):
    a, b, c, d = cells
    y, x = table(a, b, c, d)
    fit = firth_logistic(y, x)
    assert fit.params[1] == pytest.approx(
        math.log((a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5))), abs=1e-6
    )
    assert fit.params[0] == pytest.approx(math.log((c + 0.5) / (d + 0.5)), abs=1e-6)


def test_firth_maximises_the_penalised_likelihood():
    rng = np.random.default_rng(4)
    x = np.column_stack([rng.normal(size=40), rng.random(40) < 0.3, rng.lognormal(5, 0.5, 40)])
    y = (rng.random(40) < 1 / (1 + np.exp(-(x[:, 0] + x[:, 1])))).astype(float)
    fit = firth_logistic(y, x)
    design = np.column_stack([np.ones(40), x])

    def neg(b):
        eta = design @ b
        w = 1 / (1 + np.exp(-eta)) * (1 / (1 + np.exp(eta)))
        return -(
            np.sum(y * eta - np.logaddexp(0, eta))
            + 0.5 * np.linalg.slogdet(design.T @ (w[:, None] * design))[1]
        )

    best = minimize(neg, fit.params, method="Nelder-Mead", options={"xatol": 1e-10})
    assert -best.fun <= fit.penalised_loglik + 1e-7
    assert neg(fit.params) == pytest.approx(-fit.penalised_loglik, abs=1e-9)


def test_univariate_ml_matches_the_2x2_closed_form():
    y, x = table(12, 8, 9, 21)
    res = univariate_logistic(y, x)
    assert res.method == "ml"
    assert res.beta == pytest.approx(math.log(12 * 21 / (8 * 9)), abs=1e-8)
    assert res.se == pytest.approx(math.sqrt(1 / 12 + 1 / 8 + 1 / 9 + 1 / 21), rel=1e-6)
    assert res.odds_ratio == pytest.approx(12 * 21 / (8 * 9), rel=1e-7)
    assert res.low < res.odds_ratio < res.high


def test_univariate_switches_to_firth_when_the_factor_separates():
    y, x = table(6, 0, 10, 14)  # every patient with the factor had the event
    res = univariate_logistic(y, x)
    assert res.method == "firth"
    assert res.beta == pytest.approx(math.log(6.5 * 14.5 / (0.5 * 10.5)), abs=1e-6)


def test_separation_detected_complete_quasi_and_not_for_overlap():
    y, x = table(6, 0, 10, 14)  # quasi-complete: one empty cell
    res = detect_separation(y, x)
    assert res.separated and res.columns == (0,)
    assert "all 6 patients with Asthma = yes" in describe_separation(y, x, res, labels=["Asthma"])
    # complete separation by a continuous factor among others that do not separate
    rng = np.random.default_rng(0)
    score = np.r_[rng.uniform(0, 0.4, 20), rng.uniform(0.6, 1, 20)]
    yc = np.r_[np.zeros(20), np.ones(20)]
    other = rng.random(40) < 0.5
    res = detect_separation(yc, np.column_stack([other, score]))
    assert res.separated and 1 in res.columns
    # overlapping data: the MLE exists
    y2, x2 = table(10, 5, 3, 12)
    assert not detect_separation(y2, x2).separated
    yo = (rng.random(200) < 0.4).astype(float)
    assert not detect_separation(yo, rng.normal(size=(200, 3))).separated
