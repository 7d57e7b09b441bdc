"""One analysis run, headless: pipeline.analyse and run_headless with injected fakes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from sinusapp.dicom import load_volume
from sinusapp.errors import ClinicalInputError, OutputError
from sinusapp.headless import run_headless
from sinusapp.model import FakePredictor
from sinusapp.pipeline import analyse

CLINICAL = {
    "asthma": "yes",
    "allergic_rhinitis": "no",
    "eosinophils": 0.45,
    "eosinophil_unit": "1e9_per_l",
    "age_years": 50,
    "sex": "female",
}


@pytest.fixture
def ct_folder(tmp_path: Path, series_writer) -> Path:
    series_writer(tmp_path / "ct", n=24, rows=48, cols=40, spacing=1.0, pixel_spacing=(1.0, 1.0))
    return tmp_path / "ct"


def test_analyse_combines_prediction_and_nomogram(ct_folder: Path, fitted_nomogram) -> None:
    volume = load_volume(ct_folder)
    seen: list[float] = []
    result = analyse(
        volume,
        {"asthma": True, "allergic_rhinitis": False, "eosinophils_per_ul": 450.0},
        predictor=FakePredictor(dlr_score=0.6, locate=False),
        nomogram=fitted_nomogram,
        progress=lambda f, s: seen.append(f),
    )
    expected = fitted_nomogram.predict(
        dlr_score=0.6, asthma=True, allergic_rhinitis=False, eosinophils_per_ul=450.0
    )
    assert result.probability == pytest.approx(expected.probability)
    assert result.probability_ci95 == pytest.approx(expected.ci95)
    assert result.total_points == pytest.approx(expected.total_points)
    assert result.mask.shape == volume.shape and result.mask.any()
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert result.model is not None and result.model.name == "fake"
    d = result.to_json_dict()
    for key in (
        "dlr_score",
        "probability",
        "probability_ci95",
        "risk_group",
        "cutoff",
        "points",
        "clinical_inputs",
        "lesion_volume_ml",
        "per_sinus",
        "series",
        "model",
        "warnings",
        "software_version",
    ):
        assert key in d, key
    json.dumps(d)  # serialisable


def test_run_headless_writes_json_report_and_seg(
    ct_folder: Path, tmp_path: Path, fitted_nomogram
) -> None:
    nomo_path = tmp_path / "nomogram.json"
    fitted_nomogram.save(nomo_path)
    out = run_headless(
        ct_folder,
        CLINICAL,
        json_path=tmp_path / "out" / "result.json",
        report_path=tmp_path / "out" / "report.pdf",
        seg_path=tmp_path / "out" / "seg.dcm",
        nomogram_path=nomo_path,
        predictor=FakePredictor(dlr_score=0.3, locate=False),
    )
    data = json.loads((tmp_path / "out" / "result.json").read_text())
    assert data["clinical_inputs"]["eosinophils_per_ul"] == pytest.approx(450.0)  # unit converted
    assert data["dlr_score"] == pytest.approx(0.3)
    assert (
        0 <= data["probability_ci95"][0] <= data["probability"] <= data["probability_ci95"][1] <= 1
    )
    assert (tmp_path / "out" / "report.pdf").read_bytes().startswith(b"%PDF")
    seg = pydicom.dcmread(tmp_path / "out" / "seg.dcm")
    assert seg.Modality == "SEG"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == out.result.volume.info.series_uid


def test_bad_clinical_value_fails_before_reading_the_ct(tmp_path: Path) -> None:
    with pytest.raises(ClinicalInputError, match=r"(?i)eosinophil"):
        run_headless(
            tmp_path / "does-not-matter",
            {**CLINICAL, "eosinophils": -5},
            predictor=FakePredictor(locate=False),
        )


def test_unwritable_output_is_refused_up_front(
    ct_folder: Path, tmp_path: Path, fitted_nomogram
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    nomo_path = tmp_path / "nomogram.json"
    fitted_nomogram.save(nomo_path)
    with pytest.raises(OutputError):
        run_headless(
            ct_folder,
            CLINICAL,
            json_path=blocker / "sub" / "result.json",
            nomogram_path=nomo_path,
            predictor=FakePredictor(locate=False),
        )
    assert np.all(blocker.read_text() == "x")
