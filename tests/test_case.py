"""The Qt-free case model: what-if never reaches the patient; entered inputs, analysed result
and saved record agree (headless, no Qt)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from sinusapp.case import (
    CaseEvent,
    CaseModel,
    format_case_risk,
    format_ci95,
    format_probability,
    format_risk_group,
    nomogram_range_messages,
)
from sinusapp.model import FakePredictor
from sinusapp.pipeline import analyse
from sinusapp.records import CaseRecords

RAW = {
    "asthma": True,
    "allergic_rhinitis": False,
    "eosinophils": "620",
    "eosinophil_unit": "per_ul",
}


@pytest.fixture(scope="module")
def volume():
    from tests.ui.phantom import phantom_volume

    return phantom_volume(shape=(16, 48, 48), spacing_mm=(1.5, 0.8, 0.8))[0]


def _analysed(model: CaseModel, volume, nomogram):
    inputs = model.clinical_inputs()
    assert inputs is not None
    result = analyse(
        volume,
        inputs.to_dict(),
        predictor=FakePredictor(dlr_score=0.7, locate=False),
        nomogram=nomogram,
    )
    return model.accept_result(result)


def test_case_model_does_not_import_qt():
    import subprocess

    code = "import sys, sinusapp.case; assert 'PySide6' not in sys.modules, sorted(sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_what_if_never_reaches_the_entries_the_result_or_the_record(
    tmp_path, volume, fitted_nomogram
):
    records = CaseRecords(tmp_path / "records.sqlite")
    m = CaseModel(nomogram=fitted_nomogram, records=records)
    events: list[str] = []
    m.add_listener(events.append)
    m.open_case(volume=volume)
    m.set_clinical(RAW)
    result = _analysed(m, volume, fitted_nomogram)
    m.save_result(mask_npz=None)
    analysed_p = result.probability
    events.clear()

    m.set_what_if("eosinophils_per_ul", 100.0)
    m.set_what_if("dlr_score", 0.1)
    assert m.is_what_if
    assert m.prediction.probability < analysed_p
    assert events == [CaseEvent.PREDICTION, CaseEvent.PREDICTION]  # nothing else moved
    assert m.clinical_raw == RAW
    assert m.result is result and m.result.probability == analysed_p
    m.save_clinical()  # a debounced save while the what-if is on screen
    rec = records.load(series_uid=m.series_uid)
    assert rec.clinical == RAW
    assert rec.result["probability"] == pytest.approx(analysed_p)
    assert rec.result["clinical_inputs"]["eosinophils_per_ul"] == pytest.approx(620.0)

    # "restart": a new model reopens the record: the patient's risk, no what-if
    m2 = CaseModel(nomogram=fitted_nomogram, records=records)
    m2.open_case(volume=volume, series_uid=m.series_uid, clinical_raw=rec.clinical, result=result)
    assert not m2.is_what_if
    assert m2.prediction.probability == pytest.approx(analysed_p)

    m.reset_what_if()
    assert not m.is_what_if and m.prediction.probability == pytest.approx(analysed_p)


def test_what_if_equal_to_the_patient_is_no_what_if(volume, fitted_nomogram):
    m = CaseModel(nomogram=fitted_nomogram)
    m.open_case(volume=volume)
    m.set_clinical(RAW)
    _analysed(m, volume, fitted_nomogram)
    m.set_what_if("asthma", False)
    assert m.is_what_if
    m.set_what_if("asthma", True)
    assert not m.is_what_if
    with pytest.raises(ValueError, match="unknown what-if factor 'age'"):
        m.set_what_if("age", 3)


def test_entry_changed_after_the_analysis_updates_the_analysed_result(
    tmp_path, volume, fitted_nomogram
):
    records = CaseRecords(tmp_path / "records.sqlite")
    m = CaseModel(nomogram=fitted_nomogram, records=records)
    m.open_case(volume=volume)
    m.set_clinical(RAW)
    first = _analysed(m, volume, fitted_nomogram)
    m.save_result(mask_npz=None)
    m.set_what_if("dlr_score", 0.2)
    m.set_clinical({**RAW, "eosinophils": "1500"})
    assert not m.is_what_if  # a new entry drops the what-if
    expected = fitted_nomogram.predict(
        dlr_score=first.dlr_score, asthma=True, allergic_rhinitis=False, eosinophils_per_ul=1500.0
    )
    assert m.result.probability == pytest.approx(expected.probability)
    assert m.result.dlr_score == first.dlr_score
    assert m.result.clinical_inputs["eosinophils_per_ul"] == 1500.0
    assert m.prediction.probability == pytest.approx(expected.probability)
    m.save_clinical()
    rec = records.load(series_uid=m.series_uid)
    assert rec.clinical["eosinophils"] == "1500"
    assert rec.result["probability"] == pytest.approx(expected.probability)
    assert records.load_mask(series_uid=m.series_uid) is not None

    # an invalid entry leaves the analysed result as it was (and blocks a new analysis)
    m.set_clinical({**RAW, "eosinophils": "1500", "age_years": "150"})
    assert m.result.probability == pytest.approx(expected.probability)
    blockers = m.analyse_blockers()
    assert any("Age" in b and "150" in b for b in blockers), blockers


def test_reopened_record_written_by_an_old_what_if_shows_the_analysed_inputs(
    volume, fitted_nomogram
):
    m = CaseModel(nomogram=fitted_nomogram)
    m.open_case(volume=volume)
    m.set_clinical(RAW)
    result = _analysed(m, volume, fitted_nomogram)
    m2 = CaseModel(nomogram=fitted_nomogram)
    # the bug this model fixes: a what-if wrote 150 cells/µL into the saved entries
    m2.open_case(volume=volume, clinical_raw={**RAW, "eosinophils": "150"}, result=result)
    assert m2.clinical_raw["eosinophils"] == "620"
    assert m2.prediction.probability == pytest.approx(result.probability)


def test_another_patients_entries_are_not_carried_over(volume, fitted_nomogram):
    from dataclasses import replace

    m = CaseModel(nomogram=fitted_nomogram)
    m.open_case(volume=volume)
    m.set_clinical(RAW)
    other = replace(volume, info=replace(volume.info, patient_id="OTHER", series_uid="1.2.3"))
    m.open_case(volume=other)
    assert m.clinical_raw == {}
    m.set_clinical(RAW)
    same = replace(other, info=replace(other.info, series_uid="1.2.4"))
    m.open_case(volume=same)
    assert m.clinical_raw == RAW


def test_blockers_name_the_fields(volume, fitted_nomogram):
    m = CaseModel(nomogram=fitted_nomogram)
    assert m.analyse_blockers() == ["Open a series to analyse it."]
    m.open_case(volume=volume)
    m.set_clinical({"asthma": True})
    text = " ".join(m.analyse_blockers())
    assert "Allergic rhinitis" in text and "Eosinophil count" in text and "Asthma" not in text
    m.set_clinical({**RAW, "age_years": "150"})
    assert m.analyse_blockers() == ["Correct Age: Age 150 years is outside 0–120 years."]
    m.set_clinical(RAW)
    assert m.analyse_blockers() == []


def test_probability_text_never_claims_certainty():
    assert format_probability(0.9996) == ">99 %"
    assert format_probability(0.001) == "<1 %"
    assert format_probability(0.374) == "37 %"
    assert format_probability(float("nan")) == "—"


def test_ci_beyond_the_nomogram_reads_as_words_not_a_dash_into_a_sign():
    """Issue 12: "59 %–>99 %" (a dash run into ">") read as a formula."""
    assert format_ci95(0.59, 0.9996) == "59 % to >99 %"
    assert format_ci95(0.001, 0.04) == "<1 % to 4 %"
    assert format_ci95(0.2149, 0.4951) == "21 % to 50 %"
    assert format_ci95(0.9991, 0.99999) == ">99 % to >99 %"


def test_value_beyond_the_nomogram_axis_is_warned(fitted_nomogram):
    f = next(f for f in fitted_nomogram.factors if f.name == "eosinophils_per_ul")
    hi = f.axis_range[1]
    msgs = nomogram_range_messages({**RAW, "eosinophils": f"{hi * 1.8:g}"}, fitted_nomogram)
    assert [m.code for m in msgs] == ["beyond_nomogram"]
    assert f"{hi:g}" in msgs[0].message
    assert nomogram_range_messages({**RAW, "eosinophils": f"{hi / 2:g}"}, fitted_nomogram) == []
    # ×10⁹/L is converted before the comparison
    raw = {**RAW, "eosinophils": f"{hi * 1.8 / 1000:g}", "eosinophil_unit": "1e9_per_l"}
    assert [m.code for m in nomogram_range_messages(raw, fitted_nomogram)] == ["beyond_nomogram"]
    assert nomogram_range_messages(RAW, None) == []
    assert np.isfinite(hi)


def test_export_paths_differ_by_patient_series_and_never_replace(tmp_path):
    import datetime as dt

    from sinusapp.case import export_paths

    when = dt.datetime(2026, 12, 1, 9, 30, 5)
    a = export_paths(tmp_path, patient_id="P 1/x", series_number=3, series_uid="1.2.345", when=when)
    b = export_paths(tmp_path, patient_id="P2", series_number=3, series_uid="1.2.345", when=when)
    assert a["report.dcm"].name == "patient-P_1_x_series-3-345_20261201-093005_report.dcm"
    assert a["report.dcm"] != b["report.dcm"]
    a["lesion_seg.dcm"].write_bytes(b"x")  # one file of the stem taken: a new stem for all
    again = export_paths(
        tmp_path, patient_id="P 1/x", series_number=3, series_uid="1.2.345", when=when
    )
    assert all(
        p.name.startswith("patient-P_1_x_series-3-345_20261201-093005-2_") for p in again.values()
    )


def test_headless_run_goes_through_the_case_model_with_the_inputs_as_entered(
    tmp_path, series_writer, fitted_nomogram
):
    """`sinusapp predict` and the GUI share the case model: the CLI's entries are kept as
    typed, its result is the model's analysed result, and result.json is that result."""
    import json

    from sinusapp.headless import run_headless

    series_writer(tmp_path / "ct", n=24, rows=48, cols=40, spacing=1.0, pixel_spacing=(1.0, 1.0))
    nomo_path = tmp_path / "nomogram.json"
    fitted_nomogram.save(nomo_path)
    entered = {
        "asthma": "yes",
        "allergic_rhinitis": "no",
        "eosinophils": "0.45",
        "eosinophil_unit": "1e9_per_l",
        "age_years": None,
        "sex": None,
    }
    out = run_headless(
        tmp_path / "ct",
        entered,
        json_path=tmp_path / "result.json",
        nomogram_path=nomo_path,
        predictor=FakePredictor(dlr_score=0.3, locate=False),
    )
    case = out.case
    assert isinstance(case, CaseModel)
    assert case.clinical_raw == entered  # as typed, unit and all
    assert case.result is out.result and not case.is_what_if
    assert case.prediction.probability == pytest.approx(out.result.probability)
    assert json.loads((tmp_path / "result.json").read_text()) == json.loads(
        json.dumps(out.result.to_json_dict())
    )
    # the analysed inputs are the entered ones, converted (0.45 ×10⁹/L = 450 cells/µL)
    assert out.result.clinical_inputs["eosinophils_per_ul"] == pytest.approx(450.0)


def test_result_json_round_trip_keeps_quality_warnings_and_numbers(volume, fitted_nomogram):
    from sinusapp.case import result_from_json

    model = CaseModel(nomogram=fitted_nomogram)
    model.open_case(volume=volume)
    model.set_clinical(RAW)
    result = _analysed(model, volume, fitted_nomogram)
    data = result.to_json_dict()
    assert data["quality"]["checked"]
    back = result_from_json(data, volume=volume, mask=result.mask)
    assert back.to_json_dict() == data
    assert back.quality == result.quality and back.quality_checked
    # a record written before the gate existed says the checks were not run
    old = {k: v for k, v in data.items() if k != "quality"}
    assert not result_from_json(old, volume=volume, mask=None).quality_checked


def test_risk_group_says_how_the_probability_relates_to_the_cutoff():
    """ "66 %" beside "LOW RISK (cutoff 76 %)" read as a contradiction (session 31); the GUI,
    the nomogram caption and the report share this one wording."""
    assert format_risk_group(risk_group="low", cutoff=0.76) == "Low risk: below the 76 % cutoff"
    assert (
        format_risk_group(risk_group="high", cutoff=0.3) == "High risk: at or above the 30 % cutoff"
    )
    assert format_risk_group(risk_group=" HIGH ", cutoff=0.3).startswith("High risk: at or")
    assert format_risk_group(risk_group="low", cutoff=float("nan")) == (
        "Low risk (cutoff not recorded)"
    )
    assert format_risk_group(risk_group="", cutoff=0.5) == "Risk group not recorded"


def test_the_cases_list_says_the_risk_in_the_same_words():
    """The cases list said "37 % HIGH" beside the badge's "High risk: ..."."""
    assert format_case_risk(probability=0.372, risk_group="high") == "37 % (high risk)"
    assert format_case_risk(probability=0.05, risk_group=" LOW ") == "5 % (low risk)"
    assert format_case_risk(probability=None, risk_group="high") == "not analysed"
    assert format_case_risk(probability=0.5, risk_group="") == "50 %"
    assert format_case_risk(probability=0.5, risk_group="borderline") == "50 % (borderline)"


def test_failure_status_names_the_check_that_stopped_the_analysis():
    from sinusapp.case import analysis_failure_status
    from sinusapp.errors import InputQualityError
    from sinusapp.findings import Finding, Severity

    stop = InputQualityError(
        "stopped",
        findings=(
            Finding("air_calibration", Severity.ERROR, "Air reads -495 HU", -495.3, "HU"),
            Finding("thick_slices", Severity.WARNING, "3 mm slices", 3.0, "mm"),
            Finding("not_a_head", Severity.ERROR, "no head"),
        ),
    )
    assert analysis_failure_status(stop) == (
        "Analysis stopped by the input check: air calibration -495.3 HU; not a head"
    )
    assert analysis_failure_status(RuntimeError("boom")) == "Analysis failed"
