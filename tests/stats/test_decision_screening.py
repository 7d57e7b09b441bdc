"""Net benefit (dcurves convention) and univariate screening (the paper's Table 1 tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from sinusapp.stats import chi_square_test, net_benefit, univariate_screening


def test_net_benefit_small_example_by_hand():
    y = [1, 1, 0, 0, 0]
    risk = [0.8, 0.3, 0.5, 0.2, 0.1]
    dc = net_benefit(y, risk, [0.2, 0.5])
    # pt 0.2: treated (risk >= 0.2) = 0.8, 0.3, 0.5, 0.2 -> tp 2, fp 2; odds 0.25
    # pt 0.5: treated = 0.8, 0.5 -> tp 1, fp 1; odds 1
    np.testing.assert_allclose(dc.net_benefit, [2 / 5 - 2 / 5 * 0.25, 1 / 5 - 1 / 5])
    np.testing.assert_allclose(dc.treat_all, [0.4 - 0.6 * 0.25, 0.4 - 0.6])
    np.testing.assert_array_equal(dc.treat_none, [0, 0])
    assert dc.prevalence == pytest.approx(0.4)


def test_threshold_zero_is_evaluated_just_above_zero_as_dcurves():
    dc = net_benefit([1, 0, 0], [0.0, 0.5, 0.0], [0.0])
    # the case with risk exactly 0 is not treated; the control with 0.5 is (odds ~ 1e-9)
    assert dc.net_benefit[0] == pytest.approx(0.0, abs=1e-8)
    assert dc.treat_all[0] == pytest.approx(1 / 3)


def test_net_benefit_refuses_threshold_one():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        net_benefit([0, 1], [0.2, 0.8], [0.5, 1.0])


@pytest.mark.realdata
def test_net_benefit_on_dcurves_data_by_counting(dcurves_binary):
    y, risk = dcurves_binary["cancer"].tolist(), dcurves_binary["risk"].tolist()
    thresholds = [i / 100 for i in range(0, 100, 7)]
    dc = net_benefit(y, risk, thresholds)
    n = len(y)
    for k, pt in enumerate(thresholds):
        tp = sum(1 for r, t in zip(risk, y, strict=True) if r >= pt and t == 1)
        fp = sum(1 for r, t in zip(risk, y, strict=True) if r >= pt and t == 0)
        assert dc.net_benefit[k] == pytest.approx(tp / n - fp / n * pt / (1 - pt))
        prev = sum(y) / n
        assert dc.treat_all[k] == pytest.approx(prev - (1 - prev) * pt / (1 - pt))
    # at pt = 0 treating by the model is treating everyone with risk >= 0, i.e. all
    assert dc.net_benefit[0] == pytest.approx(dc.treat_all[0])
    # a binary "risk" (family history) is a valid test too
    fam = net_benefit(dcurves_binary["cancer"], dcurves_binary["famhistory"], [0.1])
    tp = sum(1 for f, t in zip(dcurves_binary["famhistory"], y, strict=True) if f and t)
    fp = sum(1 for f, t in zip(dcurves_binary["famhistory"], y, strict=True) if f and not t)
    assert fam.net_benefit[0] == pytest.approx(tp / n - fp / n / 9)


@pytest.mark.parametrize(
    ("case", "n_case", "control", "n_control", "paper_p"),
    [
        (27, 85, 36, 115, 0.945),  # female, training cohort
        (32, 85, 6, 115, 0.001),  # asthma, training (paper: < 0.001)
        (4, 14, 8, 51, 0.271),  # asthma, testing
        (11, 14, 17, 51, 0.002),  # allergic rhinitis, testing
        (2, 14, 1, 51, 0.052),  # diabetes, testing
        (6, 14, 12, 51, 0.152),  # drinking, testing
    ],
)
def test_chi_square_reproduces_the_papers_table_1(case, n_case, control, n_control, paper_p):
    _, p = chi_square_test([[case, n_case - case], [control, n_control - control]])
    if paper_p == 0.001:
        assert p < 0.001
    else:
        assert round(p, 3) == paper_p


def test_mann_whitney_against_normal_approximation_by_hand():
    cases = [3.0, 5.0, 5.0, 8.0, 9.0]
    controls = [1.0, 2.0, 5.0, 4.0]
    res = univariate_screening(
        [1] * 5 + [0] * 4, {"x": cases + controls}, kinds={"x": "continuous"}
    )[0]
    u = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in cases for b in controls)
    assert res.statistic == pytest.approx(u)
    n1, n2 = 5, 4
    n = n1 + n2
    ties = [3]  # the value 5 appears three times
    var = n1 * n2 / 12 * ((n + 1) - sum(t**3 - t for t in ties) / (n * (n - 1)))
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(var)
    assert res.p == pytest.approx(2 * norm.sf(z))
    assert res.cases.mean == pytest.approx(6.0)
    assert res.controls.n == 4
    assert res.test == "Mann–Whitney U"


def test_screening_infers_kinds_and_flags_significance():
    rng = np.random.default_rng(0)
    y = np.array([1] * 60 + [0] * 60)
    strong = np.concatenate([rng.normal(2, 1, 60), rng.normal(0, 1, 60)])
    flag = np.array([True] * 45 + [False] * 15 + [True] * 10 + [False] * 50)
    sex = np.array(["F", "M"] * 60, dtype=object)
    res = {r.name: r for r in univariate_screening(y, {"strong": strong, "flag": flag, "sex": sex})}
    assert res["strong"].kind == "continuous" and res["strong"].significant
    assert res["flag"].kind == "categorical" and res["flag"].significant
    assert res["flag"].levels == ("no", "yes")
    assert res["flag"].case_counts == (15, 45)
    assert res["flag"].control_counts == (50, 10)
    assert res["sex"].levels == ("F", "M") and not res["sex"].significant


@pytest.mark.realdata
def test_screening_on_asah(asah):
    res = univariate_screening(
        asah["y"],
        {"age": asah["age"], "gender": asah["gender"], "wfns": asah["wfns"]},
        kinds={"wfns": "categorical"},
    )
    age, gender, wfns = res
    assert age.cases.n + age.controls.n == 113
    assert gender.levels == ("Female", "Male")
    assert sum(gender.case_counts) == 41 and sum(gender.control_counts) == 72
    assert wfns.levels == ("1", "2", "3", "4", "5")
    assert wfns.significant and wfns.p < 1e-5
