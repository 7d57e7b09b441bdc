"""Nomogram fit, points, probability, CI, risk group, input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sinusapp.errors import ClinicalInputError, InputError
from sinusapp.nomogram import CLINICAL_FACTORS, Factor, Nomogram
from sinusapp.stats import auc_ci, youden_cutoff

NAMES = ("dlr_score", "asthma", "allergic_rhinitis", "eosinophils_per_ul")
PATIENT = {"dlr_score": 0.6, "asthma": True, "allergic_rhinitis": False, "eosinophils_per_ul": 450}


def design(cohort):
    x = np.column_stack([np.asarray(cohort[n], dtype=float) for n in NAMES])
    return np.column_stack([np.ones(len(x)), x])


def expit(v):
    return 1 / (1 + np.exp(-v))


def test_fit_is_the_maximum_likelihood_logistic_regression(cohort, nomogram):
    x = design(cohort)
    y = cohort["recurrence"].astype(float)
    beta = np.array([nomogram.intercept, *(nomogram.coefficients[n] for n in NAMES)])
    mu = expit(x @ beta)
    # score equations of the unpenalised MLE vanish (scaled per column)
    score = x.T @ (y - mu) / np.abs(x).sum(axis=0)
    np.testing.assert_allclose(score, 0, atol=1e-7)
    # covariance = inverse Fisher information, as R's vcov(glm)
    fisher = x.T @ (x * (mu * (1 - mu))[:, None])
    np.testing.assert_allclose(nomogram.covariance, np.linalg.inv(fisher), rtol=1e-5)
    # signal recovered: every true effect is positive
    assert all(nomogram.coefficients[n] > 0 for n in NAMES)
    assert nomogram.training.n == 300
    assert nomogram.training.events == int(y.sum())
    assert nomogram.training.auc == pytest.approx(auc_ci(y, mu).auc)
    cut = youden_cutoff(y, mu)
    assert nomogram.cutoff == pytest.approx(cut.threshold)


def test_fit_accepts_a_list_of_row_dicts(cohort, nomogram):
    rows = [{k: v[i] for k, v in cohort.items()} for i in range(len(cohort["recurrence"]))]
    again = Nomogram.fit(rows)
    assert again.intercept == pytest.approx(nomogram.intercept)
    assert dict(again.coefficients) == pytest.approx(dict(nomogram.coefficients))


def test_points_follow_rms(nomogram):
    spans = {}
    for f in nomogram.factors:
        lo, hi = f.axis_range
        pts = [nomogram.points_for(f.name, lo), nomogram.points_for(f.name, hi)]
        assert min(pts) == pytest.approx(0.0)  # lowest-risk end is 0 points
        spans[f.name] = max(pts)
        assert spans[f.name] == pytest.approx(
            abs(nomogram.coefficients[f.name] * (hi - lo)) * nomogram.points_per_logit
        )
    assert max(spans.values()) == pytest.approx(100.0)
    widest = max(spans, key=spans.get)
    for name, span in spans.items():
        f = nomogram.factor(name)
        ratio = abs(nomogram.coefficients[name] * (f.axis_range[1] - f.axis_range[0])) / abs(
            nomogram.coefficients[widest]
            * (nomogram.factor(widest).axis_range[1] - nomogram.factor(widest).axis_range[0])
        )
        assert span == pytest.approx(100 * ratio)


def test_total_points_give_the_logistic_prediction(cohort, nomogram):
    x = design(cohort)
    beta = np.array([nomogram.intercept, *(nomogram.coefficients[n] for n in NAMES)])
    rng = np.random.default_rng(5)
    for i in rng.choice(len(x), size=25, replace=False):
        pred = nomogram.predict(**{n: cohort[n][i] for n in NAMES})
        assert pred.total_points == pytest.approx(sum(pred.points.values()))
        assert float(nomogram.probability_for_points(pred.total_points)) == pytest.approx(
            expit(x[i] @ beta), rel=1e-10
        )
        assert pred.probability == pytest.approx(expit(x[i] @ beta), rel=1e-10)
        assert pred.linear_predictor == pytest.approx(x[i] @ beta)
    np.testing.assert_allclose(nomogram.predict_proba(cohort), expit(x @ beta), rtol=1e-10)


def test_ci_is_the_delta_method_on_the_logit(nomogram):
    pred = nomogram.predict(**PATIENT)
    v = np.array([1.0, 0.6, 1.0, 0.0, 450.0])
    se = math.sqrt(v @ nomogram.covariance @ v)
    assert pred.linear_predictor_se == pytest.approx(se)
    lo, hi = pred.ci95
    assert lo == pytest.approx(expit(pred.linear_predictor - 1.959964 * se), rel=1e-6)
    assert hi == pytest.approx(expit(pred.linear_predictor + 1.959964 * se), rel=1e-6)
    assert 0 < lo < pred.probability < hi < 1


def test_risk_group_at_the_training_cutoff(nomogram):
    low = nomogram.predict(
        dlr_score=0.05, asthma=False, allergic_rhinitis=False, eosinophils_per_ul=20
    )
    high = nomogram.predict(
        dlr_score=0.95, asthma=True, allergic_rhinitis=True, eosinophils_per_ul=900
    )
    assert low.probability < nomogram.cutoff <= high.probability
    assert (low.risk_group, high.risk_group) == ("low", "high")
    assert high.cutoff == nomogram.cutoff


def test_binary_inputs_accept_bool_and_0_1_and_yes_no(nomogram):
    a = nomogram.predict(**PATIENT)
    b = nomogram.predict(**{**PATIENT, "asthma": 1, "allergic_rhinitis": "no"})
    assert a.probability == b.probability


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"eosinophils_per_ul": 50000},
            r"Eosinophils \(cells/µL\) = 50000 .* outside the plausible",
        ),
        ({"eosinophils_per_ul": -5}, "outside the plausible"),
        ({"dlr_score": 1.5}, "DLR-score = 1.5 is outside"),
        ({"dlr_score": True}, "DLR-score must be a number"),
        ({"dlr_score": float("nan")}, "not a finite number"),
        ({"asthma": "maybe"}, "Asthma must be yes or no"),
        ({"asthma": 2}, "Asthma must be yes or no"),
        ({"asthma": None}, "Asthma is missing"),
        ({"smoking": True}, "unknown clinical factor"),
    ],
)
def test_bad_inputs_raise_clinical_input_error(nomogram, change, message):
    with pytest.raises(ClinicalInputError, match=message):
        nomogram.predict(**{**PATIENT, **change})


def test_missing_factor_is_named(nomogram):
    args = dict(PATIENT)
    del args["eosinophils_per_ul"]
    with pytest.raises(ClinicalInputError, match=r"missing .*Eosinophils.*eosinophils_per_ul"):
        nomogram.predict(**args)


def test_value_outside_training_range_is_flagged_not_refused(nomogram):
    _, hi = nomogram.training_ranges["eosinophils_per_ul"]
    assert not nomogram.predict(**PATIENT).warnings
    pred = nomogram.predict(**{**PATIENT, "eosinophils_per_ul": hi + 2000})
    assert [w.code for w in pred.warnings] == ["outside_training_range"]
    assert "Eosinophils" in pred.warnings[0].message
    assert pred.warnings[0].value == hi + 2000
    assert pred.points["eosinophils_per_ul"] > 100  # extrapolated beyond the axis


def test_fit_refuses_bad_tables(cohort):
    with pytest.raises(InputError, match="no column 'asthma'"):
        Nomogram.fit({k: v for k, v in cohort.items() if k != "asthma"})
    with pytest.raises(InputError, match="0 events"):
        Nomogram.fit({**cohort, "recurrence": np.zeros(300, dtype=bool)})
    bad = dict(cohort)
    bad["eosinophils_per_ul"] = cohort["eosinophils_per_ul"].copy()
    bad["eosinophils_per_ul"][7] = 1e6
    with pytest.raises(ClinicalInputError, match="row 7"):
        Nomogram.fit(bad)


def test_custom_factor_list_and_negative_coefficient(cohort):
    table = dict(cohort)
    table["protective"] = -np.asarray(cohort["eosinophils_per_ul"])  # negative effect
    factors = (*CLINICAL_FACTORS[:2], Factor("protective", "Protective marker", "u", "continuous"))
    nomo = Nomogram.fit(table, factors=factors, title="Custom")
    assert nomo.factor_names == ("asthma", "allergic_rhinitis", "protective")
    assert nomo.coefficients["protective"] < 0
    lo, hi = nomo.factor("protective").axis_range
    assert nomo.points_for("protective", hi) == pytest.approx(0.0)
    assert nomo.points_for("protective", lo) > 0
    assert lo <= nomo.training_ranges["protective"][0]
