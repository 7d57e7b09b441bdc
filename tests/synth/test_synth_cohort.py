"""The cohort: Table-1 marginals, latent structure, oracle AUCs, exact paper sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sinusapp.synth.cohort import CENTERS, auc, oracle_aucs, sample_cohort

N_LARGE = 6000


@pytest.fixture(scope="module", params=["A", "B"])
def large(request):
    return request.param, sample_cohort(n_cases=N_LARGE, seed=123, center=request.param)


def test_table1_marginals_within_sampling_error(large) -> None:
    center, cases = large
    spec = CENTERS[center]
    y = np.array([c.recurrence for c in cases])
    assert abs(y.mean() - spec.prevalence) < 1.0 / N_LARGE + 1e-9
    for group, stats in ((1, spec.recurrence), (0, spec.non_recurrence)):
        sub = [c for c in cases if c.recurrence == group]
        n = len(sub)
        for key, rate in (
            ("asthma", stats.asthma),
            ("allergic_rhinitis", stats.allergic_rhinitis),
            ("hypertension", stats.hypertension),
            ("diabetes", stats.diabetes),
            ("smoking", stats.smoking),
            ("drinking", stats.drinking),
        ):
            obs = np.mean([c.clinical[key] for c in sub])
            se = math.sqrt(rate * (1 - rate) / n)
            assert abs(obs - rate) < 4 * se + 1e-3, (center, group, key, obs, rate)
        female = np.mean([c.clinical["sex"] == "F" for c in sub])
        assert abs(female - stats.female) < 4 * math.sqrt(stats.female * (1 - stats.female) / n)
        eos = np.array([c.clinical["eosinophils_per_ul"] for c in sub])
        assert eos.min() >= 0
        assert abs(eos.mean() - stats.eos_mean) < 4 * stats.eos_sd / math.sqrt(n) + 2
        assert abs(eos.std() - stats.eos_sd) < 0.15 * stats.eos_sd
        assert np.median(eos) < eos.mean()  # right-skewed
        age = np.array([c.clinical["age"] for c in sub])
        assert abs(age.mean() - stats.age_mean) < 4 * stats.age_sd / math.sqrt(n) + 0.5


def test_oracle_auc_and_imaging_plus_clinical_beats_each_alone(large) -> None:
    _, cases = large
    a = oracle_aucs(cases)
    assert 0.5 < a["oracle_auc"] < 1.0
    assert a["oracle_auc"] > a["clinical_only_auc"] + 0.01
    assert a["oracle_auc"] > a["imaging_only_auc"] + 0.01
    assert a["clinical_only_auc"] > 0.6 and a["imaging_only_auc"] > 0.6


def test_true_probability_is_calibrated(large) -> None:
    _, cases = large
    p = np.array([c.true_probability for c in cases])
    y = np.array([c.recurrence for c in cases])
    for lo, hi in ((0.0, 0.2), (0.2, 0.5), (0.5, 0.8), (0.8, 1.0)):
        sel = (p >= lo) & (p < hi)
        if sel.sum() > 200:
            assert abs(y[sel].mean() - p[sel].mean()) < 0.05


def test_latent_inflammation_links_clinic_and_imaging(large) -> None:
    _, cases = large
    t = np.array([c.latent_t2 for c in cases])
    eth = np.array([c.ethmoid_predominance for c in cases])
    asthma = np.array([c.clinical["asthma"] for c in cases])
    assert np.corrcoef(t, eth)[0, 1] > 0.3
    assert t[asthma == 1].mean() > t[asthma == 0].mean() + 0.5


def test_paper_sizes_and_determinism() -> None:
    a = sample_cohort(n_cases=200, seed=1, center="A", n_recurrence=85)
    b = sample_cohort(n_cases=65, seed=1, center="B", n_recurrence=14)
    assert sum(c.recurrence for c in a) == 85 and sum(c.recurrence for c in b) == 14
    assert {c.cohort for c in a} == {"train"} and {c.cohort for c in b} == {"test"}
    again = sample_cohort(n_cases=200, seed=1, center="A", n_recurrence=85)
    assert [c.row() for c in a] == [c.row() for c in again]
    # centre B's scanners differ from centre A's
    px_a = {c.scanner_params["pixel_spacing_mm"] for c in a}
    px_b = {c.scanner_params["pixel_spacing_mm"] for c in b}
    assert max(px_a) < min(px_b) + 0.01


def test_auc_helper() -> None:
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert math.isnan(auc(np.array([1, 1]), np.array([0.1, 0.2])))
