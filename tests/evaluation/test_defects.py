"""Issue 14's defects, each pinned: in-sample DLR-scores refused, separation caught, small
cohorts evaluated, nomogram tied to its bundle, one DSC definition, eosinophils in range."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sinusapp.cli.evaluate import (
    CT_GRID,
    _plan,
    _read_scores,
    _write_scores,
    training_case_ids,
)
from sinusapp.errors import InputError, NomogramFileError
from sinusapp.evaluation import write_evaluation
from sinusapp.findings import Severity
from sinusapp.nomogram import CLINICAL_FACTORS, DEFAULT_FACTORS, Nomogram
from sinusapp.nomogram.model import SeparationError

sys.path.insert(0, str(Path(__file__).parent))
from test_evaluation import synthetic_records

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- helpers
def fake_dataset(records: list[dict]) -> SimpleNamespace:
    cases = tuple(
        SimpleNamespace(case_id=r["case_id"], cohort=r["cohort"], clinical=dict(r)) for r in records
    )
    return SimpleNamespace(
        cases=cases, by_cohort=lambda c: tuple(x for x in cases if x.cohort == c)
    )


def manifest(case_ids: list[str] | None) -> dict:
    training = {"n_train": 3}
    if case_ids is not None:
        training["case_ids"] = case_ids
    return {"training": training}


# ----------------------------------------------------------------------------- 1. in-sample
def test_bundle_scoring_its_own_training_cases_is_refused():
    recs = synthetic_records(20, 10)
    ds = fake_dataset(recs)
    train_ids = [r["case_id"] for r in recs if r["cohort"] == "train"]
    with pytest.raises(InputError, match=r"trained on 20 of this dataset's 20 training") as e:
        _plan(ds, manifest(train_ids), scores=None, independent=False)
    assert "predictions.csv" in e.value.hint
    # even --independent-bundle cannot override a manifest that lists these cases
    with pytest.raises(InputError, match="in-sample"):
        _plan(ds, manifest(train_ids[:1]), scores=None, independent=True)


def test_bundle_without_a_case_list_needs_the_users_word():
    ds = fake_dataset(synthetic_records(20, 10))
    with pytest.raises(InputError, match="does not list its training cases"):
        _plan(ds, manifest(None), scores=None, independent=False)
    assert _plan(ds, manifest(None), scores=None, independent=True) == ("independent", [])
    assert _plan(ds, manifest(["other-001"]), scores=None, independent=False)[0] == "independent"


def test_a_bundle_trained_on_the_testing_cohort_is_refused_whatever_the_scores():
    recs = synthetic_records(20, 10)
    ds = fake_dataset(recs)
    with pytest.raises(InputError, match="testing cohort"):
        _plan(ds, manifest(["test-003"]), scores=recs, independent=True)


def test_out_of_fold_scores_are_accepted_and_in_sample_ones_refused():
    recs = synthetic_records(20, 10)
    ds = fake_dataset(recs)
    train_ids = [r["case_id"] for r in recs if r["cohort"] == "train"]
    oof = [{**r, "fold": i % 5 if r["cohort"] == "train" else None} for i, r in enumerate(recs)]
    source, notes = _plan(ds, manifest(train_ids), scores=oof, independent=False)
    assert source == "out-of-fold" and "apparent" in notes[0]
    # a scores file without folds for the bundle's own training cases = in-sample scores
    final = [{**r, "fold": None} for r in recs]
    with pytest.raises(InputError, match="no out-of-fold score"):
        _plan(ds, manifest(train_ids), scores=final, independent=False)
    with pytest.raises(InputError, match="train_scores must be one of"):
        write_evaluation(recs, out_dir=Path("/nonexistent"), train_scores="in-sample")


def test_training_case_ids_from_the_manifest():
    assert training_case_ids({"training": {"case_ids": ["A1", "A2"]}}) == {"A1", "A2"}
    assert training_case_ids({"training": {}}) is None
    assert training_case_ids({}) is None
    # `sinusapp train` writes the list (so a new bundle always knows its training cases)
    source = (REPO / "sinusapp" / "model" / "train.py").read_text(encoding="utf-8")
    assert '"case_ids": sorted(c.case_id for c in train_p)' in source


# ----------------------------------------------------------------------------- 3. separation
def separated_cohort(n: int = 80, seed: int = 1) -> list[dict]:
    """Every asthma patient recurred (the issue's example)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        asthma = bool(rng.random() < 0.25)
        y = True if asthma else bool(rng.random() < 0.35)
        rows.append(
            {
                "case_id": f"s{i}",
                "recurrence": y,
                "dlr_score": float(np.clip(rng.normal(0.55 if y else 0.4, 0.15), 0.01, 0.99)),
                "asthma": asthma,
                "allergic_rhinitis": bool(rng.random() < 0.4),
                "eosinophils_per_ul": float(round(rng.lognormal(5.5, 0.5))),
            }
        )
    return rows


def test_separation_is_refused_naming_the_factor():
    rows = separated_cohort()
    n_asthma = sum(r["asthma"] for r in rows)
    with pytest.raises(SeparationError, match=rf"Asthma \(all {n_asthma} patients with Asthma"):
        Nomogram.fit(rows)
    try:
        Nomogram.fit(rows)
    except SeparationError as exc:
        assert exc.factors == ("asthma",)


def test_firth_fit_under_separation_is_finite_and_below_certainty():
    rows = separated_cohort()
    nomo = Nomogram.fit(rows, penalty="firth")
    assert nomo.penalty == "firth"
    assert 0 < nomo.coefficients["asthma"] < 10  # ML would run off to ~23 with SE 1.5e4
    pred = nomo.predict(dlr_score=0.6, asthma=True, allergic_rhinitis=False, eosinophils_per_ul=300)
    assert pred.probability < 0.999 and pred.ci95[0] > 0.05
    assert Nomogram.from_dict(nomo.to_dict()).penalty == "firth"
    assert "Firth" in nomo.to_dict()["model"]


def test_evaluation_of_a_separated_cohort_says_firth(tmp_path):
    recs = synthetic_records(60, 40, seed=2)
    for r in recs:
        if r["cohort"] == "train" and r["asthma"]:
            r["recurrence"] = True
    s = write_evaluation(recs, out_dir=tmp_path, n_boot=200, n_boot_calibration=10)
    assert s.nomogram.penalty == "firth" and s.clinical_model.penalty == "firth"
    assert any("Firth" in n and "Asthma" in n for n in s.notes)
    assert "Firth's penalised likelihood" in (tmp_path / "report.md").read_text()


# ----------------------------------------------------------------------------- 2. small cohort
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forty_case_cohort_gives_the_full_report(tmp_path, seed):
    recs = synthetic_records(20, 20, seed=seed)
    s = write_evaluation(recs, out_dir=tmp_path, n_boot=200, n_boot_calibration=20)
    for stem in ("roc_curves", "calibration_curves", "decision_curves", "nomogram"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000
    assert (tmp_path / "report.md").is_file()
    assert s.n == {"train": 20, "test": 20}


@pytest.mark.parametrize("n", [4, 10, 14, 19, 24, 29])
def test_all_event_bins_keep_their_interval_around_the_rate(n):
    """The issue's bin sizes: the Wilson bound of an all-event bin was 1 − 1e-16 < 1."""
    from sinusapp.stats import calibration

    y = np.r_[np.zeros(n), np.ones(n), np.ones(n)]  # the top bins are all events
    p = np.linspace(0.05, 0.95, y.size)
    cal = calibration(y, p, bins=3)
    assert np.all(cal.bin_low <= cal.bin_observed) and np.all(cal.bin_observed <= cal.bin_high)
    assert cal.bin_high[-1] == 1.0 and cal.bin_low[0] == 0.0


# ----------------------------------------------------------------------------- 4. pairing
def test_nomogram_records_its_model_and_refuses_another(tmp_path):
    info = {"name": "m", "version": "2", "sha256": "cd" * 32}
    rows = separated_cohort()
    for r in rows:
        r["asthma"] = False
    nomo = Nomogram.fit(rows, dlr_model=info)
    nomo.save(tmp_path / "n.json")
    back = Nomogram.load(tmp_path / "n.json")
    assert dict(back.dlr_model) == info
    assert json.loads((tmp_path / "n.json").read_text())["dlr_model"]["sha256"] == "cd" * 32
    assert back.model_pairing(info) is None
    other = back.model_pairing({"name": "new", "sha256": "ef" * 32})
    assert other.severity is Severity.ERROR and other.code == "nomogram_model_mismatch"
    unknown = Nomogram.fit(rows).model_pairing(info)
    assert unknown.severity is Severity.WARNING and unknown.code == "nomogram_model_unknown"

    from sinusapp.headless import _check_nomogram_pairing

    with pytest.raises(NomogramFileError, match="fitted on the DLR-scores of model 'm'"):
        _check_nomogram_pairing(back, {"name": "new", "sha256": "ef" * 32}, nomogram_path=None)
    _check_nomogram_pairing(back, info, nomogram_path=None)  # the pair: accepted


def test_shipped_nomogram_is_paired_with_the_shipped_bundle():
    data = json.loads((REPO / "models" / "nomogram.json").read_text())
    bundle = json.loads((REPO / "models" / "sinus_unet" / "manifest.json").read_text())
    assert data["dlr_model"]["sha256"] == bundle["weights"]["sha256"]


# ----------------------------------------------------------------------------- 5. one DSC
def _write_predictions(path, recs, folds, *, dlr_score, dsc):
    """A training run's predictions.csv for ``recs``: one fold value per case."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["cohort", "case_id", "fold", "recurrence", "dlr_score", "dsc"])
        for r, fold in zip(recs, folds, strict=True):
            w.writerow([r["cohort"], r["case_id"], fold, int(r["recurrence"]), dlr_score, dsc])


def test_only_ct_grid_dsc_is_read_from_a_scores_file(tmp_path):
    recs = synthetic_records(6, 4)
    ds = fake_dataset(recs)
    # training's predictions.csv: DSC on the model's 2 mm grid, fold per training case
    train_csv = tmp_path / "predictions.csv"
    folds = [i % 2 if r["cohort"] == "train" else "" for i, r in enumerate(recs)]
    _write_predictions(train_csv, recs, folds, dlr_score=0.5, dsc=0.75)
    got = _read_scores(train_csv, ds)
    assert all(math.isnan(r["dsc"]) for r in got)
    assert [r["fold"] for r in got if r["cohort"] == "train"] == [0, 1, 0, 1, 0, 1]
    # evaluate's own scores.csv: DSC on the CT grid, kept
    for r in got:
        r.update(dsc=0.7, dsc_grid=CT_GRID, lesion_volume_ml=1.0)
    _write_scores(got, tmp_path / "scores.csv")
    again = _read_scores(tmp_path / "scores.csv", ds)
    assert all(r["dsc"] == pytest.approx(0.7) and r["dsc_grid"] == CT_GRID for r in again)


def test_held_out_scores_of_a_training_run_are_read(tmp_path):
    """`sinusapp train --folds 0` on a cohort with held-out cases writes fold "holdout" for
    them (scored by a model that never trained on them); evaluate read that as a bad fold."""
    recs = synthetic_records(6, 4)
    ds = fake_dataset(recs)
    path = tmp_path / "predictions.csv"
    folds = ["holdout" if r["cohort"] == "train" else "" for r in recs]
    _write_predictions(path, recs, folds, dlr_score=0.4, dsc=0.7)
    got = _read_scores(path, ds)
    assert len(got) == len(recs) and all(r["fold"] is None for r in got)
    assert all(r["dlr_score"] == pytest.approx(0.4) for r in got)
    bad = tmp_path / "bad.csv"  # any other word is still refused
    bad.write_text(path.read_text().replace("holdout", "fold-a"))
    with pytest.raises(InputError, match="fold 'fold-a'"):
        _read_scores(bad, ds)


# ----------------------------------------------------------------------------- 6. eosinophils
def test_generator_stays_inside_the_validated_eosinophil_range():
    from sinusapp.clinical import EOSINOPHILS_MAX_PER_UL
    from sinusapp.synth.cohort import sample_cohort

    cases = sample_cohort(n_cases=65, seed=150, center="B")  # drew 15,060 cells/µL before
    eos = [c.clinical["eosinophils_per_ul"] for c in cases]
    assert max(eos) == EOSINOPHILS_MAX_PER_UL
    lo, hi = DEFAULT_FACTORS[3].valid_range
    assert all(lo <= v <= hi for v in eos)
    assert CLINICAL_FACTORS[2].name == "eosinophils_per_ul"
