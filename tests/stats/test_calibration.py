"""Calibration slope / intercept / Brier / curves and Hosmer-Lemeshow, from their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.stats import chi2

from sinusapp.stats import auc_ci, calibration, hosmer_lemeshow


def expit(x):
    return 1 / (1 + np.exp(-x))


def logit(p):
    return np.log(p / (1 - p))


def test_brier_and_bins_by_hand():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    res = calibration(y, p, bins=3)
    assert res.brier == pytest.approx(np.mean([0.01, 0.04, 0.49, 0.16, 0.49, 0.01]))
    np.testing.assert_allclose(res.bin_predicted, [0.15, 0.45, 0.8])
    np.testing.assert_allclose(res.bin_observed, [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(res.bin_count, [2, 2, 2])
    assert np.all(res.bin_low <= res.bin_observed) and np.all(res.bin_observed <= res.bin_high)
    assert (res.n, res.events) == (6, 3)
    assert res.c == pytest.approx(auc_ci(y, p).auc)


def test_fitted_values_of_a_logistic_model_are_perfectly_calibrated_in_sample():
    # Property of the maximum-likelihood fit: regressing y on the fitted logit returns
    # slope 1 and intercept 0, and the offset model's intercept is 0.
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    y = rng.random(400) < expit(-0.4 + 1.3 * x)
    fit = sm.GLM(y.astype(float), sm.add_constant(x), family=sm.families.Binomial()).fit()
    res = calibration(y, fit.fittedvalues)
    assert res.slope == pytest.approx(1.0, abs=1e-6)
    assert res.intercept == pytest.approx(0.0, abs=1e-6)


def test_slope_and_intercept_solve_their_score_equations():
    rng = np.random.default_rng(2)
    true_lp = rng.normal(-0.5, 1.2, size=500)
    y = rng.random(500) < expit(true_lp)
    p = expit(1.8 * true_lp + 0.7)  # overconfident and too high
    res = calibration(y, p)
    lp = logit(p)
    # intercept α (offset model): mean of expit(α + lp) equals the observed event rate
    assert np.mean(expit(res.intercept + lp)) == pytest.approx(y.mean(), abs=1e-6)
    assert res.intercept < 0  # risks were overestimated
    assert res.slope < 1  # predictions too extreme
    # the slope is the MLE of y ~ a + b·lp (both score equations vanish at the optimum)
    a = 0.0  # solve for the intercept given the reported slope by 1-D Newton
    for _ in range(50):
        mu = expit(a + res.slope * lp)
        a += np.sum(y - mu) / np.sum(mu * (1 - mu))
    mu = expit(a + res.slope * lp)
    assert np.sum((y - mu) * lp) == pytest.approx(0.0, abs=1e-4)


def test_smoothed_curve_is_sorted_and_in_range():
    rng = np.random.default_rng(3)
    p = rng.random(200)
    y = rng.random(200) < p
    res = calibration(y, p)
    assert np.all(np.diff(res.smooth_predicted) >= 0)
    assert np.all((res.smooth_observed >= 0) & (res.smooth_observed <= 1))
    # well calibrated by construction: the smooth curve stays near the diagonal
    mid = (res.smooth_predicted > 0.2) & (res.smooth_predicted < 0.8)
    assert np.max(np.abs(res.smooth_observed[mid] - res.smooth_predicted[mid])) < 0.2


def test_calibration_refuses_probabilities_outside_0_1():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration([0, 1], [0.2, 1.2])


def brute_hl(y, p, g=10):
    breaks = sorted(set(np.quantile(p, np.linspace(0, 1, g + 1)).tolist()))
    stat, groups = 0.0, 0
    for k in range(len(breaks) - 1):
        lo, hi = breaks[k], breaks[k + 1]
        members = [i for i in range(len(p)) if (lo < p[i] <= hi) or (k == 0 and p[i] == lo)]
        if not members:
            continue
        groups += 1
        o1 = sum(y[i] for i in members)
        e1 = sum(p[i] for i in members)
        o0, e0 = len(members) - o1, len(members) - e1
        stat += (o1 - e1) ** 2 / e1 + (o0 - e0) ** 2 / e0
    return stat, groups - 2


@pytest.mark.realdata
def test_hosmer_lemeshow_against_brute_force(dcurves_binary):
    y, p = dcurves_binary["cancer"], dcurves_binary["risk"]
    res = hosmer_lemeshow(y, p, groups=10)
    stat, df = brute_hl(y.tolist(), p.tolist())
    assert res.statistic == pytest.approx(stat, rel=1e-10)
    assert res.df == df == 8
    assert res.p == pytest.approx(chi2.sf(stat, df))
    assert res.count.sum() == y.size
    assert res.observed.sum() == y.sum()


def test_hosmer_lemeshow_merges_tied_breaks():
    y = np.array([0, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0])
    p = np.array([0.2] * 6 + [0.6] * 6)
    res = hosmer_lemeshow(y, p, groups=4)
    assert res.count.tolist() == [6, 6]
    assert res.df == 0 and math.isnan(res.p)
    # by hand: group 1 has 3 events vs 1.2 expected, group 2 3 vs 3.6
    expected = (3 - 1.2) ** 2 / 1.2 + (3 - 4.8) ** 2 / 4.8 + (3 - 3.6) ** 2 / 3.6 + 0.6**2 / 2.4
    assert res.statistic == pytest.approx(expected)


def test_hosmer_lemeshow_external_uses_g_degrees_of_freedom():
    """Hosmer & Lemeshow: a validation sample's statistic is referred to chi-square(g)."""
    from scipy.stats import chi2

    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 300)
    y = rng.random(300) < p
    dev = hosmer_lemeshow(y, p)
    ext = hosmer_lemeshow(y, p, external=True)
    assert ext.statistic == dev.statistic
    assert (dev.df, ext.df) == (8, 10)
    assert ext.p == pytest.approx(chi2.sf(ext.statistic, 10))


def test_bootstrap_calibration_shrinks_an_overfitted_model():
    """rms::calibrate / validate: the apparent slope of an ML fit is 1; the optimism-corrected
    one is below 1 (shrinkage) when there are few events per factor, and close to 1 with many."""
    import statsmodels.api as sm

    from sinusapp.stats import bootstrap_calibration

    def run(n: int, k: int, seed: int):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, k))
        y = rng.random(n) < 1 / (1 + np.exp(-(0.8 * x[:, 0])))
        design = sm.add_constant(x)

        def fit(idx):
            res = sm.GLM(y[idx].astype(float), design[idx], family=sm.families.Binomial()).fit()
            prob = 1 / (1 + np.exp(-(design @ res.params)))
            return lambda which: prob[which]

        apparent = fit(np.arange(n))(np.arange(n))
        return bootstrap_calibration(y, apparent, refit=fit, n_boot=60, seed=seed)

    small = run(80, 8, 0)  # 8 noise-heavy factors, ~40 events: overfitted
    assert small.slope_apparent == pytest.approx(1.0, abs=1e-6)
    assert 0.3 < small.slope_corrected < 0.9
    assert small.c_corrected < small.c_apparent
    assert small.corrected.shape == small.grid.shape
    assert np.all((small.corrected >= 0) & (small.corrected <= 1))
    large = run(1500, 2, 1)
    assert large.slope_corrected == pytest.approx(1.0, abs=0.08)
    assert large.n_boot + large.n_failed == 60


def test_bootstrap_refits_that_diverge_are_skipped_not_averaged():
    """A refit that predicts exactly 0 or 1 (it diverged on a quasi-separated bootstrap
    sample) has infinite logits; averaged in, it put the 40-case cohort's corrected intercept
    at 3e10. It is skipped and counted as failed, as rms drops divergent fits."""
    from sinusapp.stats import bootstrap_calibration

    rng = np.random.default_rng(3)
    p = np.clip(rng.beta(2, 2, 60), 0.05, 0.95)
    y = rng.random(60) < p
    calls = {"n": 0}

    def refit(idx):
        calls["n"] += 1
        if calls["n"] % 3 == 0:  # every third refit diverges
            out = np.where(y, 1.0, 0.0)
        else:
            out = np.clip(p + rng.normal(0, 0.02, p.size), 0.01, 0.99)
        return lambda which: out[which]

    res = bootstrap_calibration(y, p, refit=refit, n_boot=30, seed=0)
    assert res.n_failed >= 9 and res.n_boot + res.n_failed == 30
    for value in (res.intercept_corrected, res.slope_corrected, res.c_corrected):
        assert np.isfinite(value)
    assert abs(res.intercept_corrected - res.intercept_apparent) < 1.0
    assert abs(res.slope_corrected - res.slope_apparent) < 1.0


def test_calibration_intercept_is_the_ml_root_even_with_extreme_predictions():
    """Calibration-in-the-large solves sum(expit(a + lp)) = sum(y). With an event predicted at
    1e-12 (a diverged bootstrap refit of the 40-case cohort) IRLS reported a = -9e14 as
    converged; the root is finite and satisfies the equation."""
    import statsmodels.api as sm
    from scipy.special import expit

    from sinusapp.stats.calibration import calibration_intercept, logit

    rng = np.random.default_rng(1)
    p = rng.uniform(0.1, 0.9, 40)
    y = rng.random(40) < p
    lp = logit(p)
    ref = sm.GLM(y.astype(float), np.ones((40, 1)), family=sm.families.Binomial(), offset=lp)
    assert calibration_intercept(y, lp) == pytest.approx(float(ref.fit().params[0]), abs=1e-10)

    p2 = np.array([1e-12, 1e-12, 0.9, 0.2, 0.3, 0.05, 0.6, 0.999998, 1e-9, 0.4] * 2)
    y2 = np.array([1, 1, 0, 0, 1, 0, 0, 1, 0, 0] * 2, bool)
    a = calibration_intercept(y2, logit(p2))
    assert np.isfinite(a) and abs(a) < 50
    assert float(np.sum(expit(a + logit(p2)))) == pytest.approx(y2.sum(), abs=1e-8)
    assert np.isnan(calibration_intercept(np.ones(5, bool), np.zeros(5)))
