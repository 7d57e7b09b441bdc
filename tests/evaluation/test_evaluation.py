"""write_evaluation on a synthetic cohort with a known signal: every table, figure, sane numbers."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from sinusapp.errors import InputError, OutputError
from sinusapp.evaluation import write_evaluation
from sinusapp.evaluation.report import MODELS
from sinusapp.nomogram import Nomogram


def synthetic_records(n_train: int = 240, n_test: int = 120, seed: int = 0) -> list[dict]:
    """Fake patients: a latent type-2 inflammation drives the clinical factors, the imaging
    (DLR-score) and recurrence, so the nomogram should beat both parts alone."""
    rng = np.random.default_rng(seed)
    records = []
    for cohort, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            latent = rng.normal()
            imaging = rng.normal()
            asthma = rng.random() < 1 / (1 + math.exp(-(2.0 * latent - 1.8)))
            ar = rng.random() < 1 / (1 + math.exp(-(1.6 * latent - 1.0)))
            eos = float(np.clip(round(270 + 130 * latent + rng.normal(0, 120)), 5, 4000))
            lp = -0.5 + 1.3 * latent + 1.3 * imaging
            risk = 1 / (1 + math.exp(-lp))
            y = rng.random() < risk
            dlr = 1 / (1 + math.exp(-(1.0 * imaging + 0.3 * latent + rng.normal(0, 0.7) - 0.3)))
            records.append(
                {
                    "case_id": f"{cohort}-{i:03d}",
                    "cohort": cohort,
                    "recurrence": bool(y),
                    "dlr_score": dlr,
                    "asthma": bool(asthma),
                    "allergic_rhinitis": bool(ar),
                    "eosinophils_per_ul": eos,
                    "age": float(round(rng.normal(45, 14))),
                    "sex": "female" if rng.random() < 0.32 else "male",
                    "hypertension": bool(rng.random() < 0.17),
                    "smoking": int(rng.random() < 0.24),
                    "dsc": float(np.clip(rng.normal(0.83, 0.05), 0, 1)),
                    "true_probability": risk,
                }
            )
    return records


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    calls: list[tuple[float, str]] = []
    records = synthetic_records()
    for i, r in enumerate(records):
        if r["cohort"] == "train":
            r["fold"] = i % 5  # as if out-of-fold scores of a 5-fold cross-validation
    summary = write_evaluation(
        records,
        out_dir=out,
        progress=lambda f, m: calls.append((f, m)),
        train_scores="out-of-fold",
        dlr_model={"name": "test-model", "version": "1", "sha256": "ab" * 32},
        n_boot=500,
        n_boot_calibration=40,
    )
    return out, summary, calls


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_every_table_and_figure_is_written(evaluated):
    out, summary, calls = evaluated
    expected = [
        "report.md",
        "table1.csv",
        "table2.csv",
        "delong.csv",
        "dsc.csv",
        "predictions.csv",
        "calibration.csv",
        "decision_curves.csv",
        "nomogram_coefficients.csv",
        "clinical_model_coefficients.csv",
        "nomogram.json",
        "clinical_model.json",
        "univariate.csv",
        "delong_unpaired.csv",
        "calibration_optimism_corrected.csv",
        "cv_folds.csv",
        "cv_cutoffs.csv",
    ]
    stems = ("roc_curves", "cv_roc_curves", "calibration_curves", "decision_curves", "nomogram")
    for stem in stems:
        expected += [f"{stem}.png", f"{stem}.pdf"]
    for name in expected:
        path = out / name
        assert path.is_file() and path.stat().st_size > 100, name
        assert name in summary.files
    for stem in stems:
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    report = (out / "report.md").read_text()
    for heading in (
        "Provenance and warnings",
        "Table 1",
        "Univariate analysis",
        "Table 2",
        "DeLong",
        "unpaired DeLong",
        "Cross-validation (training cohort)",
        "Calibration",
        "optimism-corrected",
        "Dice similarity coefficient, on the CT grid",
        "Oracle AUC",
    ):
        assert heading in report, heading
    assert "out-of-fold predictions" in report and "ab" * 32 in report


def test_numbers_are_sane(evaluated):
    _, s, _ = evaluated
    assert s.n == {"train": 240, "test": 120}
    for cohort in ("train", "test"):
        for model in ("dlr", "clinical", "nomogram"):
            p = s.get(model, cohort)
            assert 0.5 < p.auc.auc < 1.0
            assert p.auc.low < p.auc.auc < p.auc.high
            m = p.metrics
            assert m.tp + m.fp + m.tn + m.fn == s.n[cohort]
            assert m.fpr == pytest.approx(1 - m.specificity)
        # the nomogram combines both signals: it beats either part in the training cohort
        assert s.get("nomogram", cohort).auc.auc > s.get("clinical", cohort).auc.auc
        assert s.oracle_auc[cohort] >= s.get("nomogram", cohort).auc.auc - 0.05
    nomo_vs_clin = next(d for d in s.delong if d.cohort == "train" and d.model_b == "clinical")
    assert nomo_vs_clin.result.difference > 0 and nomo_vs_clin.result.p < 0.05
    # the same cutoff (the training one) is applied in both cohorts
    assert s.get("nomogram", "train").cutoff == s.get("nomogram", "test").cutoff
    assert s.get("nomogram", "train").cutoff == s.nomogram.cutoff
    # calibration in the training cohort is perfect in the large by construction
    assert s.calibration["train"].intercept == pytest.approx(0.0, abs=1e-6)
    assert s.calibration["train"].slope == pytest.approx(1.0, abs=1e-6)
    assert 0.6 < s.calibration["test"].slope < 1.6
    assert [d.cohort for d in s.dsc] == ["train", "test"]
    assert all(0.7 < d.mean < 0.95 for d in s.dsc)


def test_tables_content(evaluated):
    out, s, _ = evaluated
    t1 = read_csv(out / "table1.csv")
    labels = [r["Characteristic"] for r in t1]
    assert labels[:2] == ["Age, mean ± SD", "Female, No. (%)"]
    assert "Circulating eosinophil count, mean ± SD, cells/µL" in labels
    asthma = next(r for r in t1 if r["Characteristic"].startswith("Asthma"))
    assert asthma["Training cohort: p value"].endswith("*")  # the latent drives asthma
    t2 = read_csv(out / "table2.csv")
    assert len(t2) == 6
    assert {r["Model"] for r in t2} == {"DLR model", "Clinical model", "Nomogram"}
    row = next(r for r in t2 if r["Model"] == "Nomogram" and r["Cohort"] == "Testing cohort")
    perf = s.get("nomogram", "test")
    assert row["AUC (95% CI)"].startswith(f"{perf.auc.auc:.3f} (")
    assert float(row["Sensitivity"]) == pytest.approx(perf.metrics.sensitivity, abs=5e-4)
    preds = read_csv(out / "predictions.csv")
    assert len(preds) == 360
    # the saved nomogram reproduces the predictions
    nomo = Nomogram.load(out / "nomogram.json")
    first = next(r for r in preds if r["cohort"] == "test")
    assert float(first["nomogram_probability"]) == pytest.approx(
        float(
            nomo.predict_proba(
                [s_rec for s_rec in synthetic_records() if s_rec["case_id"] == first["case_id"]]
            )[0]
        ),
        abs=1e-6,
    )
    delong = read_csv(out / "delong.csv")
    assert len(delong) == 6
    # training rows of the fitted models are apparent; the DLR-score's are out-of-fold
    estimates = {(r["Cohort"], r["Model"]): r["Estimate"] for r in t2}
    assert estimates[("Training cohort", "Nomogram")] == "apparent"
    assert estimates[("Training cohort", "DLR model")] == "out-of-fold"
    assert estimates[("Testing cohort", "Nomogram")] == "validation"
    low, high = (float(v) for v in row["AUC bootstrap 95% CI"].split("–"))
    assert low < perf.auc.auc < high
    # the nomogram is tied to the model whose scores it was fitted on
    assert nomo.dlr_model["sha256"] == "ab" * 32 and nomo.penalty == "none"
    # univariate analysis: every Table-1 factor, the latent-driven asthma selected
    uni = {r["Characteristic"]: r for r in read_csv(out / "univariate.csv")}
    assert (
        uni["Asthma"]["Selected"] == "yes" and float(uni["Asthma"]["Odds ratio (95% CI)"][:5]) > 1
    )
    assert set(uni) >= {"Age", "Female", "Hypertension", "Smoking", "Allergic rhinitis"}
    # the CV analysis: 5 folds, mean AUC of the folds, CV vs testing cutoffs
    assert s.cross_validation is not None and s.cross_validation.folds == (0, 1, 2, 3, 4)
    # ... of each model: the clinical model and the nomogram refitted without the held-out fold
    cvs = s.cross_validation_models
    assert set(cvs) == {"dlr", "clinical", "nomogram"} and cvs["dlr"] is s.cross_validation
    folds_csv = read_csv(out / "cv_folds.csv")
    assert len(folds_csv) == 15 and {r["model"] for r in folds_csv} == set(MODELS.values())
    for cv_m in cvs.values():
        assert cv_m.folds == (0, 1, 2, 3, 4) and 0.5 < cv_m.pooled_auc < 1.0
        assert cv_m.mean_auc == pytest.approx(np.mean(cv_m.aucs))
    # out-of-fold, so below the apparent (in-sample) training AUC of the fitted models
    assert cvs["nomogram"].pooled_auc < s.get("nomogram", "train").auc.auc
    assert cvs["clinical"].pooled_auc < s.get("clinical", "train").auc.auc
    cuts = read_csv(out / "cv_cutoffs.csv")
    assert len(cuts) == 9
    cv_nomo = next(
        r for r in cuts if r["Model"] == "Nomogram" and r["Cutoff"].startswith("Cross-validation")
    )
    assert float(cv_nomo["Threshold"]) == pytest.approx(cvs["nomogram"].cutoff.threshold, abs=5e-4)
    md = (out / "report.md").read_text()
    assert "| Cutoff | DLR model | Clinical model | Nomogram |" in md
    # Hosmer-Lemeshow: g - 2 df where fitted, g df in the testing cohort
    cal_rows = (out / "report.md").read_text()
    assert "(8) |" in cal_rows and "(10) |" in cal_rows
    assert s.optimism is not None and s.optimism.slope_corrected < 1.0
    # Fig. 3A: panels lettered when there are several, no lone "(A)" for one model
    from sinusapp.evaluation.report import _cv_roc_figure

    titles = [ax.get_title(loc="left") for ax in _cv_roc_figure(cvs).axes]
    assert [t[:3] for t in titles] == ["(A)", "(B)", "(C)"]
    one = _cv_roc_figure({"dlr": cvs["dlr"]}).axes[0].get_title(loc="left")
    assert one.startswith("DLR model, 5-fold CV: mean AUC"), one


def test_bad_records_and_unwritable_folder(tmp_path):
    recs = synthetic_records(40, 30)
    with pytest.raises(InputError, match="cohort must be"):
        write_evaluation([{**recs[0], "cohort": "validation"}, *recs[1:]], out_dir=tmp_path)
    with pytest.raises(InputError, match="no 'dlr_score'"):
        write_evaluation(
            [{k: v for k, v in recs[0].items() if k != "dlr_score"}, *recs[1:]], out_dir=tmp_path
        )
    only_train = [r for r in recs if r["cohort"] == "train"]
    with pytest.raises(InputError, match="test cohort needs"):
        write_evaluation(only_train, out_dir=tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        write_evaluation(recs, out_dir=blocker / "sub")


def test_clinical_factor_list_is_data(tmp_path):
    from sinusapp.nomogram import CLINICAL_FACTORS

    s = write_evaluation(
        synthetic_records(120, 60, seed=3),
        out_dir=tmp_path,
        clinical_factors=CLINICAL_FACTORS[:2],
        n_boot=200,
        n_boot_calibration=10,
    )
    assert s.clinical_model.factor_names == ("asthma", "allergic_rhinitis")
    assert s.nomogram.factor_names == ("dlr_score", "asthma", "allergic_rhinitis")
    assert Nomogram.load(tmp_path / "nomogram.json").factor_names == s.nomogram.factor_names
