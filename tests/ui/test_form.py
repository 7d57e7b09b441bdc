"""Clinical form: as-you-type validation, unit mix-up suggestion, write-back without echo."""

from __future__ import annotations

from sinusapp.clinical import ClinicalInputs
from sinusapp.ui.form import ClinicalForm


def _type(qtbot, edit, text):
    edit.clear()
    qtbot.keyClicks(edit, text)


def test_good_values_make_the_form_valid(qtbot):
    f = ClinicalForm()
    qtbot.addWidget(f)
    assert not f.is_valid() and f.inputs() is None
    with qtbot.waitSignal(f.validity_changed, check_params_cb=lambda v: v is True):
        f.asthma.yes.click()
        f.allergic_rhinitis.no.click()
        _type(qtbot, f.eosinophils, "450")
    ci = f.inputs()
    assert isinstance(ci, ClinicalInputs)
    assert ci.asthma and not ci.allergic_rhinitis and ci.eosinophils_per_ul == 450
    assert not any(lab.isVisibleTo(f) for lab in f.msg.values())


def test_unit_mixup_warning_offers_the_other_unit(qtbot):
    f = ClinicalForm()
    qtbot.addWidget(f)
    f.asthma.no.click()
    f.allergic_rhinitis.no.click()
    _type(qtbot, f.eosinophils, "0.45")
    lab = f.msg["eosinophils"]
    assert lab.isVisibleTo(f)
    assert "0.45 cells/µL" in lab.text() and "did you mean" in lab.text()
    assert f.is_valid()  # a warning does not block
    lab.linkActivated.emit("unit:1e9_per_l")
    assert f.eosinophil_unit.currentData() == "1e9_per_l"
    assert not lab.isVisibleTo(f)
    assert f.inputs().eosinophils_per_ul == 450


def test_negative_and_garbage_values_are_errors_shown_per_field(qtbot):
    f = ClinicalForm()
    qtbot.addWidget(f)
    f.asthma.yes.click()
    f.allergic_rhinitis.yes.click()
    _type(qtbot, f.eosinophils, "-5")
    assert not f.is_valid()
    assert "negative" in f.msg["eosinophils"].text()
    assert "e5534b" in f.eosinophils.styleSheet()
    _type(qtbot, f.age_years, "abc")
    assert "not a number" in f.msg["age_years"].text()
    _type(qtbot, f.eosinophils, "300")
    _type(qtbot, f.age_years, "150")
    assert "outside" in f.msg["age_years"].text()
    assert not f.is_valid()
    _type(qtbot, f.age_years, "52")
    assert f.is_valid()


def test_user_edits_emit_changed_but_set_raw_does_not(qtbot):
    f = ClinicalForm()
    qtbot.addWidget(f)
    seen = []
    f.changed.connect(seen.append)
    f.asthma.yes.click()
    assert seen and seen[-1]["asthma"] is True
    n = len(seen)
    raw = {
        "asthma": False,
        "allergic_rhinitis": True,
        "eosinophils": "0.3",
        "eosinophil_unit": "1e9_per_l",
        "age_years": 40,
        "sex": "female",
        "smoking": True,
    }
    f.set_raw(raw)
    assert len(seen) == n
    got = f.raw()
    assert got["asthma"] is False and got["allergic_rhinitis"] is True
    assert got["eosinophils"] == "0.3" and got["eosinophil_unit"] == "1e9_per_l"
    assert got["age_years"] == "40" and got["sex"] == "female" and got["smoking"] is True
    assert f.is_valid() and f.inputs().eosinophils_per_ul == 300
    # clicking Yes then No leaves exactly one pressed
    f.asthma.yes.click()
    f.asthma.no.click()
    assert f.asthma.value() is False and not f.asthma.yes.isChecked()
