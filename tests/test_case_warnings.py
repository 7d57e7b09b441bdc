"""The GUI's path (the Qt-free case model, :func:`sinusapp.case.analyse_case`) carries the
same warnings as ``sinusapp predict``: every clinical validator warning, a borderline risk,
and a nomogram that was fitted on another model's DLR-scores; they follow the entries when
the surgeon changes them, and reach the GUI's report (headless, no Qt)."""

from __future__ import annotations

import dataclasses

import pytest

from sinusapp.case import CaseModel, analyse_case
from sinusapp.clinical import ClinicalInputs
from sinusapp.model import FakePredictor
from sinusapp.nomogram import Nomogram


def _raw(eosinophils: str) -> dict[str, object]:
    return {
        "asthma": True,
        "allergic_rhinitis": False,
        "eosinophils": eosinophils,
        "eosinophil_unit": "per_ul",
    }


@pytest.fixture(scope="module")
def volume():
    from tests.ui.phantom import phantom_volume

    return phantom_volume(shape=(16, 48, 48), spacing_mm=(1.5, 0.8, 0.8))[0]


def _gui_result(volume, nomogram, raw, *, predictor=None):
    """What the GUI's worker computes for the entered ``raw`` values."""
    predictor = predictor or FakePredictor(dlr_score=0.7, locate=False)
    return analyse_case(
        volume=volume,
        clinical=ClinicalInputs.from_dict(raw).to_dict(),  # as MainWindow.start_analysis
        get_predictor=lambda: predictor,
        nomogram=nomogram,
    )


def _codes(result) -> set[str]:
    return {w.code for w in result.warnings}


@pytest.mark.parametrize(
    ("eosinophils", "code", "words"),
    [
        ("0.45", "clinical_eosinophils_unit_mixup", "implausibly low"),
        ("6000", "clinical_eosinophils_high", "hypereosinophilia"),
    ],
    ids=["0.45-per-ul", "6000-per-ul"],
)
def test_clinical_warnings_reach_the_gui_result_and_its_report(
    volume, fitted_nomogram, eosinophils, code, words
) -> None:
    from sinusapp.report import ReportContext

    result = _gui_result(volume, fitted_nomogram, _raw(eosinophils))
    (w,) = [w for w in result.warnings if w.code == code]
    assert words in w.message
    assert any(f.code == code for f in ReportContext.from_result(result).findings)
    # exactly the clinical findings the headless path adds for the same inputs
    expected = {
        f"clinical_{m.field}_{m.code}" for m in ClinicalInputs.from_dict(_raw(eosinophils)).warnings
    }
    assert {c for c in _codes(result) if c.startswith("clinical_")} == expected


def test_the_warnings_follow_the_entries_after_the_analysis(volume, fitted_nomogram) -> None:
    m = CaseModel(nomogram=fitted_nomogram)
    m.open_case(volume=volume)
    m.set_clinical(_raw("0.45"))
    m.accept_result(_gui_result(volume, fitted_nomogram, _raw("0.45")))
    assert "clinical_eosinophils_unit_mixup" in _codes(m.result)
    recomputed = ("clinical_", "borderline_risk", "outside_training_range")
    others = [w for w in m.result.warnings if not w.code.startswith(recomputed)]
    assert any(w.code == "nomogram_model_unknown" for w in others)
    m.set_clinical(_raw("450"))  # corrected: the nomogram part is recomputed
    assert not any(c.startswith("clinical_") for c in _codes(m.result))
    m.set_clinical(_raw("6000"))
    assert "clinical_eosinophils_high" in _codes(m.result)
    assert "clinical_eosinophils_unit_mixup" not in _codes(m.result)
    # the other findings (the CT's, the pairing) are kept through every recomputation
    assert all(w in m.result.warnings for w in others)


def test_a_borderline_risk_is_shown_on_the_gui_path(volume, fitted_nomogram, monkeypatch):
    real_predict = Nomogram.predict

    def near_cutoff(self, **factors):  # the same prediction, 1 point above the cutoff
        return dataclasses.replace(real_predict(self, **factors), probability=self.cutoff + 0.01)

    result = _gui_result(volume, fitted_nomogram, _raw("450"))
    near = abs(result.probability - result.cutoff) < 0.03
    assert ("borderline_risk" in _codes(result)) is near
    monkeypatch.setattr(Nomogram, "predict", near_cutoff)
    result = _gui_result(volume, fitted_nomogram, _raw("450"))
    (w,) = [w for w in result.warnings if w.code == "borderline_risk"]
    assert "Borderline" in w.message and w.value == pytest.approx(0.01)


def test_a_nomogram_of_another_model_is_flagged_in_the_gui(volume, fitted_nomogram) -> None:
    predictor = FakePredictor(dlr_score=0.7, locate=False)
    other = dataclasses.replace(
        fitted_nomogram, dlr_model={"name": "other", "version": "9", "sha256": "a" * 64}
    )
    result = _gui_result(volume, other, _raw("450"), predictor=predictor)
    (w,) = [w for w in result.warnings if w.code == "nomogram_model_mismatch"]
    assert w.severity.value == "error" and "do not hold for this model" in w.message
    paired = dataclasses.replace(fitted_nomogram, dlr_model=predictor.model_info)
    result = _gui_result(volume, paired, _raw("450"), predictor=predictor)
    assert not {"nomogram_model_mismatch", "nomogram_model_unknown"} & _codes(result)
    # a nomogram that records no model: a warning, as `sinusapp predict` logs
    result = _gui_result(volume, fitted_nomogram, _raw("450"), predictor=predictor)
    assert "nomogram_model_unknown" in _codes(result)
