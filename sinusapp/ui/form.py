"""The clinical form: nomogram factors and Table-1 record-only factors, validated as typed.

The form holds the user's *raw* entries (what was typed, even when invalid, so nothing is
lost) and shows :func:`sinusapp.clinical.validate_clinical`'s message under each field. It
emits :attr:`ClinicalForm.changed` with the raw dict on every user edit; :meth:`set_raw`
writes values back without re-emitting (used for what-if and reopening a case).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from PySide6 import QtCore, QtWidgets

from sinusapp.clinical import (
    ClinicalInputs,
    EosinophilUnit,
    FieldMessage,
    normalise_raw,
    parse_number,
    parse_yes_no,
    validate_clinical,
)
from sinusapp.errors import ClinicalInputError
from sinusapp.findings import Severity

__all__ = ["ClinicalForm"]

log = logging.getLogger(__name__)

_SEVERITY_STYLE = {
    Severity.ERROR: "color: #e5534b;",
    Severity.WARNING: "color: #d29922;",
    Severity.INFO: "color: #8b949e;",
}
_FLAG_ITEMS = (("—", None), ("No", False), ("Yes", True))


class _YesNo(QtWidgets.QWidget):
    """Two exclusive buttons, No / Yes; neither pressed = not answered."""

    changed = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.no = QtWidgets.QPushButton("No", self)
        self.yes = QtWidgets.QPushButton("Yes", self)
        for b in (self.no, self.yes):
            b.setCheckable(True)
            b.setMinimumWidth(56)
            b.setStyleSheet(
                "QPushButton:checked { background: #2f6eba; color: white; font-weight: bold; }"
            )
            b.clicked.connect(self._on_clicked)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.no)
        lay.addWidget(self.yes)
        lay.addStretch(1)

    def _on_clicked(self) -> None:
        clicked, other = (self.no, self.yes) if self.sender() is self.no else (self.yes, self.no)
        if clicked.isChecked():
            other.setChecked(False)
        self.changed.emit()

    def value(self) -> bool | None:
        if self.yes.isChecked():
            return True
        if self.no.isChecked():
            return False
        return None

    def set_value(self, value: bool | None) -> None:
        self.yes.setChecked(value is True)
        self.no.setChecked(value is False)


class ClinicalForm(QtWidgets.QWidget):
    """Form bound to :class:`~sinusapp.clinical.ClinicalInputs` with per-field messages."""

    changed = QtCore.Signal(dict)
    validity_changed = QtCore.Signal(bool)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._valid = False
        self.messages: list[FieldMessage] = []
        self._extra_check: Callable[[dict[str, Any]], list[FieldMessage]] | None = None

        self.asthma = _YesNo(self)
        self.allergic_rhinitis = _YesNo(self)
        self.eosinophils = QtWidgets.QLineEdit(self)
        self.eosinophils.setPlaceholderText("e.g. 450")
        self.eosinophils.setToolTip("Blood eosinophil count (absolute)")
        self.eosinophil_unit = QtWidgets.QComboBox(self)
        for unit in EosinophilUnit:
            self.eosinophil_unit.addItem(unit.label, str(unit))
        eos_row = QtWidgets.QWidget(self)
        eos_lay = QtWidgets.QHBoxLayout(eos_row)
        eos_lay.setContentsMargins(0, 0, 0, 0)
        eos_lay.addWidget(self.eosinophils, 1)
        eos_lay.addWidget(self.eosinophil_unit)

        self.age_years = QtWidgets.QLineEdit(self)
        self.age_years.setPlaceholderText("years")
        self.sex = QtWidgets.QComboBox(self)
        for text, value in (("—", None), ("Female", "female"), ("Male", "male")):
            self.sex.addItem(text, value)
        self.flags: dict[str, QtWidgets.QComboBox] = {}
        for name in ("hypertension", "diabetes", "smoking", "drinking"):
            combo = QtWidgets.QComboBox(self)
            for flag_text, flag_value in _FLAG_ITEMS:
                combo.addItem(flag_text, flag_value)
            self.flags[name] = combo

        self.msg: dict[str, QtWidgets.QLabel] = {}
        for name in (
            "asthma",
            "allergic_rhinitis",
            "eosinophils",
            "age_years",
            "sex",
            "hypertension",
            "diabetes",
            "smoking",
            "drinking",
        ):
            lab = QtWidgets.QLabel(self)
            lab.setWordWrap(True)
            lab.setVisible(False)
            lab.setTextFormat(QtCore.Qt.TextFormat.RichText)
            lab.linkActivated.connect(self._on_message_link)
            self.msg[name] = lab

        form = QtWidgets.QFormLayout()
        form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setVerticalSpacing(4)
        head = QtWidgets.QLabel("<b>Nomogram factors</b>", self)
        form.addRow(head)
        form.addRow("Asthma", self.asthma)
        form.addRow("", self.msg["asthma"])
        form.addRow("Allergic rhinitis", self.allergic_rhinitis)
        form.addRow("", self.msg["allergic_rhinitis"])
        form.addRow("Eosinophils", eos_row)
        form.addRow("", self.msg["eosinophils"])
        rec = QtWidgets.QLabel(
            "<b>For the record</b> <span style='color:#8b949e'>(not used by the nomogram)</span>",
            self,
        )
        form.addRow(rec)
        form.addRow("Age", self.age_years)
        form.addRow("", self.msg["age_years"])
        form.addRow("Sex", self.sex)
        form.addRow("", self.msg["sex"])
        for name, combo in self.flags.items():
            form.addRow(name.capitalize(), combo)
            form.addRow("", self.msg[name])
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addLayout(form)
        outer.addStretch(1)

        self.asthma.changed.connect(self._on_user_edit)
        self.allergic_rhinitis.changed.connect(self._on_user_edit)
        self.eosinophils.textEdited.connect(self._on_user_edit)
        self.eosinophil_unit.currentIndexChanged.connect(self._on_user_edit)
        self.age_years.textEdited.connect(self._on_user_edit)
        self.sex.currentIndexChanged.connect(self._on_user_edit)
        for combo in self.flags.values():
            combo.currentIndexChanged.connect(self._on_user_edit)
        self._revalidate()

    # -- state ---------------------------------------------------------------------------
    def raw(self) -> dict[str, Any]:
        """What the user entered, as typed (JSON-serialisable)."""
        d: dict[str, Any] = {
            "asthma": self.asthma.value(),
            "allergic_rhinitis": self.allergic_rhinitis.value(),
            "eosinophils": self.eosinophils.text(),
            "eosinophil_unit": self.eosinophil_unit.currentData(),
            "age_years": self.age_years.text(),
            "sex": self.sex.currentData(),
        }
        for name, combo in self.flags.items():
            d[name] = combo.currentData()
        return d

    def set_raw(self, raw: Mapping[str, Any]) -> None:
        """Show ``raw`` (from a record, a what-if or a ``clinical.json``) without emitting
        :attr:`changed`. Other spellings (``eosinophils_per_ul``, ``age``, ``F``/``M``) are
        accepted."""
        raw = normalise_raw(raw)
        blockers = [
            QtCore.QSignalBlocker(w)
            for w in (
                self.asthma,
                self.allergic_rhinitis,
                self.eosinophils,
                self.eosinophil_unit,
                self.age_years,
                self.sex,
                *self.flags.values(),
            )
        ]
        try:
            self.asthma.set_value(_safe_yes_no(raw.get("asthma")))
            self.allergic_rhinitis.set_value(_safe_yes_no(raw.get("allergic_rhinitis")))
            eos = raw.get("eosinophils")
            self.eosinophils.setText("" if eos is None else _number_text(eos))
            unit_index = self.eosinophil_unit.findData(str(raw.get("eosinophil_unit") or "per_ul"))
            self.eosinophil_unit.setCurrentIndex(max(unit_index, 0))
            age = raw.get("age_years")
            self.age_years.setText("" if age is None else _number_text(age))
            self.sex.setCurrentIndex(max(self.sex.findData(raw.get("sex")), 0))
            for name, combo in self.flags.items():
                value = _safe_yes_no(raw.get(name))
                combo.setCurrentIndex({None: 0, False: 1, True: 2}[value])
        finally:
            del blockers
        self._revalidate()

    def inputs(self) -> ClinicalInputs | None:
        """The validated inputs, or ``None`` while any field has an error."""
        try:
            return ClinicalInputs.from_dict(self.raw())
        except ClinicalInputError:
            return None

    def set_extra_check(self, check: Callable[[dict[str, Any]], list[FieldMessage]] | None) -> None:
        """Add ``check(raw)``'s messages (e.g. a value beyond the nomogram's axis) to the
        live validation; they are shown like the form's own."""
        self._extra_check = check
        self._revalidate()

    def is_valid(self) -> bool:
        """Whether the nomogram can be computed from the current entries."""
        return self._valid

    # -- handlers ------------------------------------------------------------------------
    def _on_user_edit(self, *_args: Any) -> None:
        self._revalidate()
        self.changed.emit(self.raw())

    def _on_message_link(self, link: str) -> None:
        if link.startswith("eos:"):
            # the user said which number an ambiguous "1,500" meant
            self.eosinophils.setText(link.removeprefix("eos:"))
            self._on_user_edit()
            return
        if link.startswith("unit:"):
            index = self.eosinophil_unit.findData(link.removeprefix("unit:"))
            if index >= 0:
                self.eosinophil_unit.setCurrentIndex(index)  # emits → _on_user_edit

    def _revalidate(self) -> None:
        raw = self.raw()
        self.messages = validate_clinical(raw)
        if self._extra_check is not None:
            self.messages += self._extra_check(raw)
        by_field: dict[str, FieldMessage] = {}
        for m in self.messages:
            if m.field == "eosinophil_unit":
                by_field.setdefault("eosinophils", m)
            else:
                by_field.setdefault(m.field, m)
        for name, lab in self.msg.items():
            shown = by_field.get(name)
            # "missing" is not shown under each untouched field: the Analyse hint says it once
            if shown is None or shown.code == "missing":
                lab.setVisible(False)
                lab.setText("")
                continue
            style = _SEVERITY_STYLE[shown.severity]
            text = _escape(shown.message)
            if shown.suggestion:
                label = EosinophilUnit(shown.suggestion).label
                text += f" <a href='unit:{shown.suggestion}' style='color:#58a6ff'>Use {label}</a>"
            for choice in shown.choices:
                text += f" <a href='eos:{choice}' style='color:#58a6ff'>{_escape(choice)}</a>"
            lab.setText(f"<span style='{style}'>{text}</span>")
            lab.setVisible(True)
        editors = {"eosinophils": self.eosinophils, "age_years": self.age_years}
        for name, editor in editors.items():
            msg = by_field.get(name)
            bad = msg is not None and msg.severity is Severity.ERROR and msg.code != "missing"
            editor.setStyleSheet("border: 1px solid #e5534b;" if bad else "")
        valid = not any(m.severity is Severity.ERROR for m in self.messages)
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _safe_yes_no(value: Any) -> bool | None:
    try:
        return parse_yes_no(value)
    except ValueError:
        return None


def _number_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        number = parse_number(value)
    except ValueError:
        return str(value)
    return "" if number is None else f"{number:g}"
