"""Clinical inputs of one patient: the nomogram's factors plus Table-1 record-only factors.

The nomogram of He et al. (2023) uses **asthma**, **allergic rhinitis** and the **blood
eosinophil count** (cells/µL) next to the DLR-score. The other factors of the paper's Table 1
(age, sex, hypertension, diabetes, smoking, drinking) are kept for the record and the report;
they do not change the prediction.

Two ways in:

- :func:`validate_clinical` takes what a user typed (strings, booleans, numbers — a form's
  raw state, possibly incomplete) and returns one :class:`FieldMessage` per problem, each
  naming its field, so a form can show it next to that field as the user types. It never
  raises.
- :meth:`ClinicalInputs.from_dict` builds a valid :class:`ClinicalInputs` or raises
  :class:`~sinusapp.errors.ClinicalInputError` listing every error. Once an object exists it
  is valid (warnings such as a suspected unit mix-up are kept in :attr:`ClinicalInputs.warnings`).

Eosinophil units: ``per_ul`` = cells/µL, ``1e9_per_l`` = ×10⁹/L (1 ×10⁹/L = 1000 cells/µL).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sinusapp.errors import ClinicalInputError
from sinusapp.findings import Severity

__all__ = [
    "FIELDS",
    "NOMOGRAM_FIELDS",
    "ClinicalInputs",
    "EosinophilUnit",
    "FieldMessage",
    "Sex",
    "normalise_raw",
    "parse_number",
    "parse_yes_no",
    "validate_clinical",
]

#: cells/µL in 1 ×10⁹/L
_PER_UL_PER_1E9_PER_L = 1000.0

#: Above this many cells/µL a count is refused (no plausible blood count is that high).
EOSINOPHILS_MAX_PER_UL = 10_000.0
#: Above this many cells/µL a count is accepted with a warning (hypereosinophilia).
EOSINOPHILS_HIGH_PER_UL = 5_000.0
#: Below this many cells/µL a non-zero count suggests the value was typed in ×10⁹/L.
EOSINOPHILS_SUSPECT_LOW_PER_UL = 10.0

AGE_MAX_YEARS = 120
AGE_ADULT_YEARS = 18


class EosinophilUnit(StrEnum):
    """Unit in which the eosinophil count was entered."""

    PER_UL = "per_ul"
    E9_PER_L = "1e9_per_l"

    @property
    def label(self) -> str:
        """Human label for forms and reports."""
        return "cells/µL" if self is EosinophilUnit.PER_UL else "×10⁹/L"

    def to_per_ul(self, value: float) -> float:
        """Convert ``value`` in this unit to cells/µL."""
        return value if self is EosinophilUnit.PER_UL else value * _PER_UL_PER_1E9_PER_L

    def from_per_ul(self, value_per_ul: float) -> float:
        """Convert cells/µL to this unit."""
        return (
            value_per_ul if self is EosinophilUnit.PER_UL else value_per_ul / _PER_UL_PER_1E9_PER_L
        )


class Sex(StrEnum):
    """Patient sex as recorded (Table 1 of the paper)."""

    FEMALE = "female"
    MALE = "male"


#: The factors the nomogram uses.
NOMOGRAM_FIELDS: tuple[str, ...] = ("asthma", "allergic_rhinitis", "eosinophils")
#: Every field of the form, in display order.
FIELDS: tuple[str, ...] = (
    "asthma",
    "allergic_rhinitis",
    "eosinophils",
    "eosinophil_unit",
    "age_years",
    "sex",
    "hypertension",
    "diabetes",
    "smoking",
    "drinking",
)
_RECORD_FLAGS: tuple[str, ...] = ("hypertension", "diabetes", "smoking", "drinking")

_FIELD_LABELS = {
    "asthma": "Asthma",
    "allergic_rhinitis": "Allergic rhinitis",
    "eosinophils": "Eosinophil count",
    "eosinophil_unit": "Eosinophil unit",
    "age_years": "Age",
    "sex": "Sex",
    "hypertension": "Hypertension",
    "diabetes": "Diabetes",
    "smoking": "Smoking",
    "drinking": "Drinking",
}


@dataclass(frozen=True, slots=True)
class FieldMessage:
    """One validation message about one field.

    Attributes
    ----------
    field:
        The field concerned (one of :data:`FIELDS`).
    code:
        Stable identifier: ``missing``, ``not_a_number``, ``negative``, ``out_of_range``,
        ``unit_mixup``, ``high``, ``not_adult``, ``invalid_choice``.
    severity:
        ``error`` blocks the analysis; ``warning`` asks the user to check; ``info`` informs.
    message:
        One sentence for a clinician, with the value that was entered.
    suggestion:
        For a suspected unit mix-up, the unit the user probably meant (else ``None``).
    choices:
        For an ambiguous entry (``"1,500"``: 1500 or 1.5?), the readings to choose from,
        as text the field can take.
    """

    field: str
    code: str
    severity: Severity
    message: str
    suggestion: str | None = None
    choices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return {
            "field": self.field,
            "code": self.code,
            "severity": str(self.severity),
            "message": self.message,
            "suggestion": self.suggestion,
            "choices": list(self.choices),
        }


_YES = {"yes", "y", "true", "1", "ja", "oui", "si", "sí", "+"}
_NO = {"no", "n", "false", "0", "nein", "non", "-"}


def parse_yes_no(value: Any) -> bool | None:
    """Read a yes/no answer: ``True``/``False``, or ``None`` when empty.

    Raises
    ------
    ValueError
        When the value is neither empty nor a recognised yes/no.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text == "":
        return None
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ValueError(f"{value!r} is not yes or no")


def parse_number(value: Any) -> float | None:
    """Read a number typed by a user (``"0,45"`` and ``"0.45"`` both work); ``None`` if empty.

    Raises
    ------
    ValueError
        When the text is not a finite number.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip().replace("\u2009", "").replace(" ", "")
        if text == "":
            return None
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _fmt(value: float) -> str:
    return f"{value:g}"


def _parse_unit(value: Any) -> EosinophilUnit:
    if isinstance(value, EosinophilUnit):
        return value
    text = str(value or "").strip().lower()
    aliases = {
        "": EosinophilUnit.PER_UL,
        "per_ul": EosinophilUnit.PER_UL,
        "cells/ul": EosinophilUnit.PER_UL,
        "cells/µl": EosinophilUnit.PER_UL,
        "/ul": EosinophilUnit.PER_UL,
        "1e9_per_l": EosinophilUnit.E9_PER_L,
        "10^9/l": EosinophilUnit.E9_PER_L,
        "x10^9/l": EosinophilUnit.E9_PER_L,
        "×10⁹/l": EosinophilUnit.E9_PER_L,
        "g/l": EosinophilUnit.E9_PER_L,
    }
    try:
        return aliases[text]
    except KeyError:
        raise ValueError(f"{value!r} is not an eosinophil unit (per_ul or 1e9_per_l)") from None


def _parse_sex(value: Any) -> Sex | None:
    if value is None or isinstance(value, Sex):
        return value
    text = str(value).strip().lower()
    if text == "":
        return None
    if text in ("f", "female", "w", "woman"):
        return Sex.FEMALE
    if text in ("m", "male", "man"):
        return Sex.MALE
    raise ValueError(f"{value!r} is not female or male")


def _eosinophil_messages(value: float, unit: EosinophilUnit) -> list[FieldMessage]:
    out: list[FieldMessage] = []
    f = "eosinophils"
    if value < 0:
        out.append(
            FieldMessage(
                f,
                "negative",
                Severity.ERROR,
                f"An eosinophil count cannot be negative ({_fmt(value)} {unit.label}).",
            )
        )
        return out
    per_ul = unit.to_per_ul(value)
    if unit is EosinophilUnit.PER_UL:
        if 0 < value < EOSINOPHILS_SUSPECT_LOW_PER_UL:
            out.append(
                FieldMessage(
                    f,
                    "unit_mixup",
                    Severity.WARNING,
                    f"{_fmt(value)} cells/µL is implausibly low — did you mean "
                    f"{_fmt(value)} ×10⁹/L (= {_fmt(value * 1000)} cells/µL)?",
                    suggestion=str(EosinophilUnit.E9_PER_L),
                )
            )
    elif per_ul > EOSINOPHILS_MAX_PER_UL or value >= 100:
        out.append(
            FieldMessage(
                f,
                "unit_mixup",
                Severity.ERROR,
                f"{_fmt(value)} ×10⁹/L (= {_fmt(per_ul)} cells/µL) is impossible — "
                f"did you mean {_fmt(value)} cells/µL?",
                suggestion=str(EosinophilUnit.PER_UL),
            )
        )
        return out
    if per_ul > EOSINOPHILS_MAX_PER_UL:
        out.append(
            FieldMessage(
                f,
                "out_of_range",
                Severity.ERROR,
                f"{_fmt(per_ul)} cells/µL is outside the plausible range "
                f"(0–{_fmt(EOSINOPHILS_MAX_PER_UL)} cells/µL).",
            )
        )
    elif per_ul > EOSINOPHILS_HIGH_PER_UL:
        out.append(
            FieldMessage(
                f,
                "high",
                Severity.WARNING,
                f"{_fmt(per_ul)} cells/µL is very high (hypereosinophilia); please check "
                "the value and its unit.",
                suggestion=(
                    str(EosinophilUnit.PER_UL) if unit is EosinophilUnit.E9_PER_L else None
                ),
            )
        )
    return out


_THOUSANDS = re.compile(r"^[1-9]\d{0,2},\d{3}$")


def _thousands_ambiguity(value: Any) -> FieldMessage | None:
    """``"1,500"`` is 1.5 with a decimal comma and 1500 with a thousands separator: ask."""
    if not isinstance(value, str):
        return None
    text = value.strip().replace("\u2009", "").replace(" ", "")
    if not _THOUSANDS.match(text):
        return None
    as_thousands = text.replace(",", "")
    as_decimal = text.replace(",", ".")
    return FieldMessage(
        "eosinophils",
        "ambiguous_separator",
        Severity.ERROR,
        f"{value.strip()!r} is ambiguous: {as_thousands} (comma as thousands separator) or "
        f"{as_decimal} (decimal comma)? Type the number without a thousands separator, or "
        "choose:",
        choices=(as_thousands, as_decimal),
    )


def normalise_raw(data: Mapping[str, Any]) -> dict[str, Any]:
    """Map the spellings other parts use onto the form's fields (:data:`FIELDS`).

    ``clinical.csv`` / ``clinical.json`` / ``result.json`` write ``eosinophils_per_ul``,
    ``age`` and ``sex`` as ``F``/``M``; the form keeps ``eosinophils`` + ``eosinophil_unit``,
    ``age_years`` and ``female``/``male``. Unknown keys are dropped; values are not validated.
    """
    out: dict[str, Any] = {k: data[k] for k in FIELDS if k in data}
    if out.get("eosinophils") in (None, "") and data.get("eosinophils_per_ul") not in (None, ""):
        out["eosinophils"] = data["eosinophils_per_ul"]
        out["eosinophil_unit"] = str(EosinophilUnit.PER_UL)
    if out.get("age_years") in (None, "") and data.get("age") not in (None, ""):
        out["age_years"] = data["age"]
    try:
        sex = _parse_sex(out.get("sex"))
    except ValueError:
        pass  # left as typed: validation reports it
    else:
        out["sex"] = None if sex is None else str(sex)
    return out


def validate_clinical(raw: Mapping[str, Any]) -> list[FieldMessage]:
    """Check a form's raw values; return every problem, one message per field at most.

    Parameters
    ----------
    raw:
        Field name → value as typed (see :data:`FIELDS`); missing keys count as empty.
        ``eosinophils`` is read in ``eosinophil_unit`` (default cells/µL).

    Returns
    -------
    list[FieldMessage]
        Empty when everything is valid and unsuspicious. Errors block the analysis.
    """
    out: list[FieldMessage] = []
    for name in ("asthma", "allergic_rhinitis"):
        try:
            answer = parse_yes_no(raw.get(name))
        except ValueError as exc:
            out.append(FieldMessage(name, "invalid_choice", Severity.ERROR, f"{exc}."))
            continue
        if answer is None:
            out.append(
                FieldMessage(
                    name,
                    "missing",
                    Severity.ERROR,
                    f"{_FIELD_LABELS[name]}: answer yes or no (the nomogram needs it).",
                )
            )
    try:
        unit = _parse_unit(raw.get("eosinophil_unit"))
    except ValueError as exc:
        out.append(FieldMessage("eosinophil_unit", "invalid_choice", Severity.ERROR, f"{exc}."))
        unit = None
    ambiguous = _thousands_ambiguity(raw.get("eosinophils"))
    try:
        eos = parse_number(raw.get("eosinophils"))
    except ValueError as exc:
        out.append(FieldMessage("eosinophils", "not_a_number", Severity.ERROR, f"{exc}."))
    else:
        if ambiguous is not None:
            out.append(ambiguous)
        elif eos is None:
            out.append(
                FieldMessage(
                    "eosinophils",
                    "missing",
                    Severity.ERROR,
                    "Enter the blood eosinophil count (the nomogram needs it).",
                )
            )
        elif unit is not None:
            out.extend(_eosinophil_messages(eos, unit))
    try:
        age = parse_number(raw.get("age_years"))
    except ValueError as exc:
        out.append(FieldMessage("age_years", "not_a_number", Severity.ERROR, f"{exc}."))
    else:
        if age is not None:
            if age < 0:
                out.append(
                    FieldMessage(
                        "age_years",
                        "negative",
                        Severity.ERROR,
                        f"Age cannot be negative ({_fmt(age)} years).",
                    )
                )
            elif age > AGE_MAX_YEARS:
                out.append(
                    FieldMessage(
                        "age_years",
                        "out_of_range",
                        Severity.ERROR,
                        f"Age {_fmt(age)} years is outside 0–{AGE_MAX_YEARS} years.",
                    )
                )
            elif age < AGE_ADULT_YEARS:
                out.append(
                    FieldMessage(
                        "age_years",
                        "not_adult",
                        Severity.WARNING,
                        f"Age {_fmt(age)} years: the nomogram was developed in adults only.",
                    )
                )
    try:
        _parse_sex(raw.get("sex"))
    except ValueError as exc:
        out.append(FieldMessage("sex", "invalid_choice", Severity.ERROR, f"{exc}."))
    for name in _RECORD_FLAGS:
        try:
            parse_yes_no(raw.get(name))
        except ValueError as exc:
            out.append(FieldMessage(name, "invalid_choice", Severity.ERROR, f"{exc}."))
    return out


@dataclass(frozen=True, slots=True)
class ClinicalInputs:
    """Validated clinical inputs of one patient.

    Build it with :meth:`from_dict` (or the constructor, keyword-only); both validate and raise
    :class:`~sinusapp.errors.ClinicalInputError` on an error.

    Attributes
    ----------
    asthma, allergic_rhinitis:
        Nomogram factors (yes / no).
    eosinophils:
        Blood eosinophil count as entered, in ``eosinophil_unit``.
    eosinophil_unit:
        :class:`EosinophilUnit` of ``eosinophils``.
    age_years, sex, hypertension, diabetes, smoking, drinking:
        Record-only factors of Table 1; ``None`` when not recorded.
    warnings:
        Non-blocking :class:`FieldMessage` s found at validation (e.g. a suspected unit
        mix-up the user confirmed).
    """

    asthma: bool
    allergic_rhinitis: bool
    eosinophils: float
    eosinophil_unit: EosinophilUnit = EosinophilUnit.PER_UL
    age_years: float | None = None
    sex: Sex | None = None
    hypertension: bool | None = None
    diabetes: bool | None = None
    smoking: bool | None = None
    drinking: bool | None = None
    warnings: tuple[FieldMessage, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "eosinophil_unit", EosinophilUnit(self.eosinophil_unit))
        if self.sex is not None:
            object.__setattr__(self, "sex", Sex(self.sex))
        messages = validate_clinical(self._raw())
        errors = [m for m in messages if m.severity is Severity.ERROR]
        if errors:
            raise ClinicalInputError(
                "; ".join(m.message for m in errors),
                hint="correct the clinical values and try again",
            )
        object.__setattr__(
            self, "warnings", tuple(m for m in messages if m.severity is not Severity.ERROR)
        )

    def _raw(self) -> dict[str, Any]:
        return {
            "asthma": self.asthma,
            "allergic_rhinitis": self.allergic_rhinitis,
            "eosinophils": self.eosinophils,
            "eosinophil_unit": self.eosinophil_unit,
            "age_years": self.age_years,
            "sex": self.sex,
            "hypertension": self.hypertension,
            "diabetes": self.diabetes,
            "smoking": self.smoking,
            "drinking": self.drinking,
        }

    @property
    def eosinophils_per_ul(self) -> float:
        """The eosinophil count in cells/µL (the nomogram's unit)."""
        return self.eosinophil_unit.to_per_ul(float(self.eosinophils))

    def nomogram_factors(self) -> dict[str, Any]:
        """The clinical factors as :meth:`sinusapp.nomogram.Nomogram.predict` takes them."""
        return {
            "asthma": bool(self.asthma),
            "allergic_rhinitis": bool(self.allergic_rhinitis),
            "eosinophils_per_ul": self.eosinophils_per_ul,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClinicalInputs:
        """Build from a mapping of raw or typed values (form state, JSON, CLI).

        Accepts either ``eosinophils`` + ``eosinophil_unit`` or ``eosinophils_per_ul``.

        Raises
        ------
        ClinicalInputError
            Listing every error, each naming its field and value.
        """
        raw = normalise_raw(data)
        messages = validate_clinical(raw)
        errors = [m for m in messages if m.severity is Severity.ERROR]
        if errors:
            raise ClinicalInputError(
                "; ".join(m.message for m in errors),
                hint="correct the clinical values and try again",
            )
        return cls(
            asthma=bool(parse_yes_no(raw.get("asthma"))),
            allergic_rhinitis=bool(parse_yes_no(raw.get("allergic_rhinitis"))),
            eosinophils=float(parse_number(raw.get("eosinophils")) or 0.0),
            eosinophil_unit=_parse_unit(raw.get("eosinophil_unit")),
            age_years=parse_number(raw.get("age_years")),
            sex=_parse_sex(raw.get("sex")),
            hypertension=parse_yes_no(raw.get("hypertension")),
            diabetes=parse_yes_no(raw.get("diabetes")),
            smoking=parse_yes_no(raw.get("smoking")),
            drinking=parse_yes_no(raw.get("drinking")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict; includes ``eosinophils_per_ul`` for the pipeline."""
        return {
            "asthma": self.asthma,
            "allergic_rhinitis": self.allergic_rhinitis,
            "eosinophils": float(self.eosinophils),
            "eosinophil_unit": str(self.eosinophil_unit),
            "eosinophils_per_ul": self.eosinophils_per_ul,
            "age_years": self.age_years,
            "sex": str(self.sex) if self.sex is not None else None,
            "hypertension": self.hypertension,
            "diabetes": self.diabetes,
            "smoking": self.smoking,
            "drinking": self.drinking,
        }


def field_label(name: str) -> str:
    """Human label of a field."""
    return _FIELD_LABELS.get(name, name)
