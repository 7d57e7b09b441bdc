"""Headless tests of the clinical inputs model (no Qt)."""

from __future__ import annotations

import json

import pytest

from sinusapp.clinical import (
    ClinicalInputs,
    EosinophilUnit,
    Sex,
    parse_number,
    parse_yes_no,
    validate_clinical,
)
from sinusapp.errors import ClinicalInputError
from sinusapp.findings import Severity

GOOD = {"asthma": "yes", "allergic_rhinitis": "no", "eosinophils": "450"}


def by_field(messages):
    return {m.field: m for m in messages}


def test_good_inputs_have_no_messages_and_convert():
    assert validate_clinical(GOOD) == []
    ci = ClinicalInputs.from_dict(GOOD)
    assert ci.asthma is True and ci.allergic_rhinitis is False
    assert ci.eosinophils_per_ul == 450.0
    assert ci.nomogram_factors() == {
        "asthma": True,
        "allergic_rhinitis": False,
        "eosinophils_per_ul": 450.0,
    }


def test_unit_1e9_per_l_converts_to_cells_per_ul():
    ci = ClinicalInputs.from_dict({**GOOD, "eosinophils": "0,45", "eosinophil_unit": "1e9_per_l"})
    assert ci.eosinophil_unit is EosinophilUnit.E9_PER_L
    assert ci.eosinophils_per_ul == pytest.approx(450.0)
    assert EosinophilUnit.E9_PER_L.from_per_ul(450.0) == pytest.approx(0.45)


def test_missing_required_fields_are_errors_per_field():
    msgs = by_field(validate_clinical({}))
    assert set(msgs) == {"asthma", "allergic_rhinitis", "eosinophils"}
    assert all(m.code == "missing" and m.severity is Severity.ERROR for m in msgs.values())


def test_negative_count_refused():
    msgs = by_field(validate_clinical({**GOOD, "eosinophils": "-3"}))
    assert msgs["eosinophils"].code == "negative"
    assert msgs["eosinophils"].severity is Severity.ERROR
    with pytest.raises(ClinicalInputError, match="negative"):
        ClinicalInputs.from_dict({**GOOD, "eosinophils": -3})


def test_low_count_in_cells_per_ul_warns_unit_mixup():
    m = by_field(validate_clinical({**GOOD, "eosinophils": "0.45"}))["eosinophils"]
    assert m.code == "unit_mixup" and m.severity is Severity.WARNING
    assert "0.45 cells/µL" in m.message and "×10⁹/L" in m.message
    assert m.suggestion == "1e9_per_l"
    # a warning does not block: the object is built and carries the warning
    ci = ClinicalInputs.from_dict({**GOOD, "eosinophils": "0.45"})
    assert [w.code for w in ci.warnings] == ["unit_mixup"]


def test_large_count_in_1e9_per_l_is_a_unit_error():
    m = by_field(validate_clinical({**GOOD, "eosinophils": "450", "eosinophil_unit": "1e9_per_l"}))
    assert m["eosinophils"].code == "unit_mixup"
    assert m["eosinophils"].severity is Severity.ERROR
    assert m["eosinophils"].suggestion == "per_ul"


def test_out_of_range_and_high_counts():
    assert by_field(validate_clinical({**GOOD, "eosinophils": "12000"}))["eosinophils"].code == (
        "out_of_range"
    )
    high = by_field(validate_clinical({**GOOD, "eosinophils": "7000"}))["eosinophils"]
    assert high.code == "high" and high.severity is Severity.WARNING


def test_not_a_number_and_bad_choices():
    msgs = by_field(
        validate_clinical({**GOOD, "eosinophils": "abc", "asthma": "maybe", "sex": "x"})
    )
    assert msgs["eosinophils"].code == "not_a_number"
    assert msgs["asthma"].code == "invalid_choice"
    assert msgs["sex"].code == "invalid_choice"


@pytest.mark.parametrize(
    ("age", "code", "severity"),
    [
        ("-1", "negative", Severity.ERROR),
        ("130", "out_of_range", Severity.ERROR),
        ("12", "not_adult", Severity.WARNING),
    ],
)
def test_age_checks(age, code, severity):
    m = by_field(validate_clinical({**GOOD, "age_years": age}))["age_years"]
    assert (m.code, m.severity) == (code, severity)


def test_round_trip_dict_and_json():
    ci = ClinicalInputs.from_dict(
        {**GOOD, "age_years": "44", "sex": "F", "smoking": "yes", "diabetes": False}
    )
    d = ci.to_dict()
    json.dumps(d)
    assert d["eosinophils_per_ul"] == 450.0 and d["sex"] == "female"
    again = ClinicalInputs.from_dict(d)
    assert again == ci
    assert again.sex is Sex.FEMALE and again.smoking is True and again.hypertension is None


def test_from_dict_accepts_eosinophils_per_ul_only():
    ci = ClinicalInputs.from_dict({"asthma": 1, "allergic_rhinitis": 0, "eosinophils_per_ul": 300})
    assert ci.eosinophils_per_ul == 300.0


def test_constructor_validates():
    with pytest.raises(ClinicalInputError):
        ClinicalInputs(asthma=True, allergic_rhinitis=False, eosinophils=-1.0)


def test_parsers():
    assert parse_yes_no("Yes") is True and parse_yes_no("") is None and parse_yes_no(0) is False
    assert parse_number(" 1 200 ") == 1200.0
    with pytest.raises(ValueError):
        parse_number("nan")


def test_normalise_raw_accepts_csv_and_json_spellings():
    from sinusapp.clinical import normalise_raw

    raw = normalise_raw(
        {
            "case_id": "X",
            "asthma": True,
            "allergic_rhinitis": False,
            "eosinophils_per_ul": 620.0,
            "age": 46,
            "sex": "M",
            "drinking": True,
        }
    )
    assert raw == {
        "asthma": True,
        "allergic_rhinitis": False,
        "eosinophils": 620.0,
        "eosinophil_unit": "per_ul",
        "age_years": 46,
        "sex": "male",
        "drinking": True,
    }
    ci = ClinicalInputs.from_dict(
        {
            "asthma": "no",
            "allergic_rhinitis": "no",
            "eosinophils_per_ul": 100,
            "age": 30,
            "sex": "F",
        }
    )
    assert ci.age_years == 30 and ci.sex is Sex.FEMALE


@pytest.mark.parametrize("text", ["1,500", "2,000", " 1,250 "])
def test_comma_that_may_be_a_thousands_separator_is_asked(text):
    msgs = validate_clinical({"asthma": "no", "allergic_rhinitis": "no", "eosinophils": text})
    (m,) = [m for m in msgs if m.field == "eosinophils"]
    assert m.code == "ambiguous_separator" and m.severity is Severity.ERROR
    digits = text.strip().replace(",", "")
    assert m.choices == (digits, text.strip().replace(",", "."))
    with pytest.raises(ClinicalInputError, match="ambiguous"):
        ClinicalInputs.from_dict({"asthma": "no", "allergic_rhinitis": "no", "eosinophils": text})


@pytest.mark.parametrize("text", ["0,45", "0,450", "12,5", "1500", "1.500"])
def test_decimal_comma_without_ambiguity_is_read(text):
    msgs = validate_clinical({"asthma": "no", "allergic_rhinitis": "no", "eosinophils": text})
    assert not [m for m in msgs if m.code == "ambiguous_separator"]
