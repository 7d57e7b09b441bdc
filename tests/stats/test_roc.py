"""ROC, AUC/DeLong, paired DeLong test, Youden cutoff and metrics, against definitions and pROC."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from sinusapp.stats import auc_ci, delong_test, metrics_at, roc_curve, youden_cutoff


# ---------------------------------------------------------------- brute force from definitions
def psi(x: float, y: float) -> float:
    return 1.0 if x > y else 0.5 if x == y else 0.0


def brute_placements(y, s):
    cases = [v for v, t in zip(s, y, strict=True) if t]
    controls = [v for v, t in zip(s, y, strict=True) if not t]
    v10 = [sum(psi(x, c) for c in controls) / len(controls) for x in cases]
    v01 = [sum(psi(x, c) for x in cases) / len(cases) for c in controls]
    return v10, v01


def sample_var(v):
    mean = sum(v) / len(v)
    return sum((a - mean) ** 2 for a in v) / (len(v) - 1)


def sample_cov(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    return sum((p - ma) * (q - mb) for p, q in zip(a, b, strict=True)) / (len(a) - 1)


def brute_auc_var(y, s):
    v10, v01 = brute_placements(y, s)
    auc = sum(v10) / len(v10)
    return auc, sample_var(v10) / len(v10) + sample_var(v01) / len(v01)


# ---------------------------------------------------------------- hand-checkable examples
def test_roc_curve_small_example_by_hand():
    y = [0, 0, 1, 1]
    s = [0.1, 0.4, 0.35, 0.8]
    curve = roc_curve(y, s)
    np.testing.assert_allclose(curve.thresholds, [-np.inf, 0.225, 0.375, 0.6, np.inf])
    np.testing.assert_allclose(curve.sensitivities, [1, 1, 0.5, 0.5, 0])
    np.testing.assert_allclose(curve.specificities, [0, 0.5, 0.5, 1, 1])
    assert auc_ci(y, s).auc == pytest.approx(0.75)


def test_ties_count_one_half_and_direction_is_not_flipped():
    assert auc_ci([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]).auc == pytest.approx(0.5)
    # a marker that is lower in cases keeps its AUC < 0.5 (pROC direction "<", never "auto")
    assert auc_ci([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]).auc == pytest.approx(0.0)


def test_metrics_at_counts_by_hand():
    y = [1, 1, 1, 0, 0, 0, 0]
    s = [0.9, 0.5, 0.2, 0.5, 0.3, 0.1, 0.05]
    m = metrics_at(y, s, 0.5)  # positive when score >= 0.5
    assert (m.tp, m.fn, m.fp, m.tn) == (2, 1, 1, 3)
    assert m.sensitivity == pytest.approx(2 / 3)
    assert m.specificity == pytest.approx(3 / 4)
    assert m.accuracy == pytest.approx(5 / 7)
    assert m.ppv == pytest.approx(2 / 3)
    assert m.npv == pytest.approx(3 / 4)
    assert m.fpr == pytest.approx(1 / 4)
    assert m.fnr == pytest.approx(1 / 3)
    none_positive = metrics_at(y, s, 2.0)
    assert math.isnan(none_positive.ppv)


def test_youden_small_example():
    y = [0, 0, 1, 1]
    s = [0.1, 0.4, 0.35, 0.8]
    cut = youden_cutoff(y, s)
    # J = 0.5 at 0.225 (se 1, sp .5) and at 0.6 (se .5, sp 1): ties -> the lowest threshold
    assert cut.threshold == pytest.approx(0.225)
    assert (cut.sensitivity, cut.specificity) == (1.0, 0.5)
    assert cut.youden_j == pytest.approx(0.5)


def test_identical_scores_in_delong_test():
    y = [0, 1, 0, 1, 1, 0]
    s = [0.1, 0.7, 0.3, 0.6, 0.2, 0.4]
    res = delong_test(y, s, s)
    assert (res.z, res.p, res.difference) == (0.0, 1.0, 0.0)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="0/1"):
        auc_ci([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="at least one case"):
        auc_ci([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        auc_ci([0, 1, 1], [0.1, float("nan"), 0.3])
    with pytest.raises(ValueError, match="has 2 values"):
        auc_ci([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="alternative"):
        delong_test([0, 1, 0, 1], [1, 2, 3, 4], [4, 3, 2, 1], alternative="both")


# ---------------------------------------------------------------- aSAH (pROC's dataset)
@pytest.mark.realdata
def test_asah_auc_and_delong_variance_against_brute_force(asah):
    for marker in ("s100b", "ndka", "wfns"):
        res = auc_ci(asah["y"], asah[marker])
        auc, var = brute_auc_var(asah["y"].tolist(), asah[marker].tolist())
        assert res.auc == pytest.approx(auc, abs=1e-12)
        assert res.variance == pytest.approx(var, rel=1e-10)
        half = norm.ppf(0.975) * math.sqrt(var)
        assert res.low == pytest.approx(max(0, auc - half), abs=1e-12)
        assert res.high == pytest.approx(min(1, auc + half), abs=1e-12)
        assert (res.n_cases, res.n_controls) == (41, 72)


@pytest.mark.realdata
def test_asah_matches_published_proc_values(asah):
    s100b = auc_ci(asah["y"], asah["s100b"])
    assert round(s100b.auc, 4) == 0.7314
    assert (round(s100b.low, 4), round(s100b.high, 4)) == (0.6301, 0.8326)
    # pROC prints 0.6119(6): the reference 0.6119 is the value truncated to 4 decimals
    ndka = auc_ci(asah["y"], asah["ndka"]).auc
    assert 0.6119 <= ndka < 0.6120
    assert ndka * 41 * 72 == pytest.approx(1806.5)  # Mann-Whitney U of the cases
    test = delong_test(asah["y"], asah["s100b"], asah["ndka"])
    assert round(test.z, 4) == 1.3908
    assert round(test.p, 4) == 0.1643
    # pROC coords(roc(aSAH$outcome, aSAH$s100b), "best"): 0.205, sp 0.8056, se 0.6341
    cut = youden_cutoff(asah["y"], asah["s100b"])
    assert cut.threshold == pytest.approx(0.205)
    assert cut.specificity == pytest.approx(58 / 72)
    assert cut.sensitivity == pytest.approx(26 / 41)


@pytest.mark.realdata
def test_asah_paired_delong_against_brute_force(asah):
    y = asah["y"].tolist()
    a10, a01 = brute_placements(y, asah["s100b"].tolist())
    b10, b01 = brute_placements(y, asah["wfns"].tolist())
    m, n = len(a10), len(a01)
    var = (sample_var(a10) + sample_var(b10) - 2 * sample_cov(a10, b10)) / m + (
        sample_var(a01) + sample_var(b01) - 2 * sample_cov(a01, b01)
    ) / n
    diff = sum(a10) / m - sum(b10) / m
    z = diff / math.sqrt(var)
    res = delong_test(asah["y"], asah["s100b"], asah["wfns"])
    assert res.difference == pytest.approx(diff, abs=1e-12)
    assert res.z == pytest.approx(z, rel=1e-10)
    assert res.p == pytest.approx(2 * norm.sf(abs(z)), rel=1e-10)
    q = norm.ppf(0.975) * math.sqrt(var)
    assert (res.low, res.high) == (pytest.approx(diff - q), pytest.approx(diff + q))
    # swapping the curves flips z; one-sided p-values split the two-sided one
    swapped = delong_test(asah["y"], asah["wfns"], asah["s100b"])
    assert swapped.z == pytest.approx(-res.z)
    less = delong_test(asah["y"], asah["s100b"], asah["wfns"], alternative="less")
    greater = delong_test(asah["y"], asah["s100b"], asah["wfns"], alternative="greater")
    assert less.p + greater.p == pytest.approx(1.0)
    assert min(less.p, greater.p) * 2 == pytest.approx(res.p)
    assert math.isinf(greater.high) and math.isinf(less.low)


@pytest.mark.realdata
def test_asah_roc_curve_and_youden_by_counting(asah):
    y, s = asah["y"], asah["s100b"]
    curve = roc_curve(y, s)
    values = sorted(set(s.tolist()))
    assert curve.thresholds.size == len(values) + 1
    best = None
    for thr, se, sp in zip(curve.thresholds, curve.sensitivities, curve.specificities, strict=True):
        tp = sum(1 for v, t in zip(s, y, strict=True) if t and v >= thr)
        tn = sum(1 for v, t in zip(s, y, strict=True) if not t and v < thr)
        assert se == pytest.approx(tp / 41)
        assert sp == pytest.approx(tn / 72)
        if math.isfinite(thr) and (best is None or se + sp > best[0] + 1e-12):
            best = (se + sp, thr)
    assert youden_cutoff(y, s).threshold == pytest.approx(best[1])
    # trapezoidal area under the curve equals the Mann-Whitney AUC
    fpr, tpr = curve.fpr[::-1], curve.sensitivities[::-1]
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc_ci(y, s).auc)


# ---------------------------------------------------------------- bootstrap CI, unpaired test
@pytest.mark.realdata
def test_asah_bootstrap_ci_agrees_with_procs_delong_interval(asah):
    """pROC: ci.auc(aSAH$outcome, aSAH$s100b) = 0.7314 (DeLong 0.6301–0.8326); the stratified
    bootstrap interval (method = "bootstrap", 2000 replicates) lies within Monte-Carlo error
    and the skew of the AUC's distribution of it (numpy's random numbers, not R's)."""
    from sinusapp.stats import auc_bootstrap_ci

    res = auc_bootstrap_ci(asah["y"], asah["s100b"], seed=1)
    assert round(res.auc, 4) == 0.7314
    assert res.n_boot == 2000 and res.stratified
    assert res.low == pytest.approx(0.6301, abs=0.02)
    assert res.high == pytest.approx(0.8326, abs=0.02)
    assert res.low < res.auc < res.high
    again = auc_bootstrap_ci(asah["y"], asah["s100b"], seed=1)
    assert (again.low, again.high) == (res.low, res.high)  # seeded: reproducible
    loose = auc_bootstrap_ci(asah["y"], asah["s100b"], seed=1, stratified=False, n_boot=500)
    assert loose.low == pytest.approx(0.6301, abs=0.03)


def test_bootstrap_ci_counts_and_refuses_too_few_replicates():
    from sinusapp.stats import auc_bootstrap_ci

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(30), np.zeros(50)].astype(bool)
    s = np.r_[rng.normal(1, 1, 30), rng.normal(0, 1, 50)]
    res = auc_bootstrap_ci(y, s, n_boot=400)
    # each replicate's AUC equals the pair count of the resample (checked for the point)
    assert res.auc == pytest.approx(auc_ci(y, s).auc, abs=1e-12)
    with pytest.raises(ValueError, match="n_boot"):
        auc_bootstrap_ci(y, s, n_boot=10)


@pytest.mark.realdata
def test_asah_unpaired_delong_by_its_formula(asah):
    """roc.test(paired = FALSE): z = (A1 − A2) / sqrt(V1 + V2), the DeLong variances that
    the pROC-checked auc_ci gives."""
    from sinusapp.stats import delong_unpaired_test

    male = asah["gender"] == "Male"
    a = auc_ci(asah["y"][male], asah["s100b"][male])
    b = auc_ci(asah["y"][~male], asah["s100b"][~male])
    res = delong_unpaired_test(asah["y"][male], asah["s100b"][male], asah["y"][~male],
                               asah["s100b"][~male])  # fmt: skip
    z = (a.auc - b.auc) / math.sqrt(a.variance + b.variance)
    assert res.z == pytest.approx(z, rel=1e-12)
    assert res.p == pytest.approx(2 * norm.sf(abs(z)), rel=1e-12)
    same = delong_unpaired_test(asah["y"], asah["s100b"], asah["y"], asah["s100b"])
    assert (same.z, same.p) == (0.0, 1.0)
