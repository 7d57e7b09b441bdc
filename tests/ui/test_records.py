"""Case records (headless): clinical entries and results saved and read back."""

from __future__ import annotations

import numpy as np

from sinusapp.records import CaseRecords, records_path


def test_save_and_reload_clinical_and_result(tmp_path):
    rec = CaseRecords(tmp_path / "r.sqlite")
    assert rec.load(series_uid="1.2") is None
    rec.save_clinical(
        series_uid="1.2", clinical={"asthma": True, "eosinophils": "4"}, patient_id="P1"
    )
    got = rec.load(series_uid="1.2")
    assert got.clinical == {"asthma": True, "eosinophils": "4"} and got.result is None
    mask = np.zeros((3, 4, 5), np.uint8)
    mask[1, 2, 3] = 1
    rec.save_result(
        series_uid="1.2",
        result={
            "probability": 0.6,
            "model": {"name": "m", "version": "1.0", "sha256": "ab"},
            "software_version": "0.1.0",
        },
        clinical={"asthma": False},
        mask=mask,
    )
    again = CaseRecords(tmp_path / "r.sqlite").load(series_uid="1.2")
    assert again.result["probability"] == 0.6
    assert (again.model_name, again.model_version) == ("m", "1.0")
    assert again.clinical == {"asthma": False} and again.patient_id == "P1"
    assert np.array_equal(rec.load_mask(series_uid="1.2"), mask)
    rec.delete(series_uid="1.2")
    assert rec.load(series_uid="1.2") is None


def test_default_path_is_in_app_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SINUSAPP_HOME", str(tmp_path))
    assert records_path() == tmp_path / "records.sqlite"
    CaseRecords().save_clinical(series_uid="x", clinical={})
    assert (tmp_path / "records.sqlite").is_file()
