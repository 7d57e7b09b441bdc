"""Results panel: probability with CI, risk group, DLR-score, lesion volume, per-sinus table.

Follows the :class:`~sinusapp.ui.session.CaseSession`: every number is the analysed result's
(the same the record and the report hold); a what-if on the nomogram adds one labelled line
and never replaces the patient's risk.
"""

from __future__ import annotations

from typing import Any

from PySide6 import QtCore, QtWidgets

from sinusapp.case import UNSUITABLE_SERIES, format_ci95, format_probability, format_risk_group
from sinusapp.ui.model_statement import SYNTHETIC_SHORT
from sinusapp.ui.session import CaseSession

__all__ = ["ResultsPanel"]


def _row(form: QtWidgets.QFormLayout, label: str, parent: QtWidgets.QWidget) -> QtWidgets.QLabel:
    value = QtWidgets.QLabel("—", parent)
    value.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
    # wrapped: a long value ("2 / 4 …; not found: ethmoid ant L, …") widened the right
    # column to 620 px at 1280 × 800 and squeezed the image
    value.setWordWrap(True)
    form.addRow(label, value)
    return value


class ResultsPanel(QtWidgets.QWidget):
    """Numbers of the analysis, following the session."""

    def __init__(self, session: CaseSession, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        # the input plausibility gate's warnings, above the numbers they qualify
        self.quality_banner = QtWidgets.QLabel(self)
        self.quality_banner.setWordWrap(True)
        self.quality_banner.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.quality_banner.setVisible(False)
        self.headline = QtWidgets.QLabel(self)
        self.headline.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.headline.setWordWrap(True)
        self.headline.setStyleSheet("font-size: 15px;")
        self.risk = QtWidgets.QLabel(self)
        self.risk.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.risk.setMinimumHeight(28)
        form = QtWidgets.QFormLayout()
        form.setVerticalSpacing(3)
        self.dlr = _row(form, "DLR-score", self)
        self.points = _row(form, "Total points", self)
        self.lesion = _row(form, "Lesion volume", self)
        self.lund_mackay = _row(form, "Lund-Mackay", self)
        self.model = _row(form, "Model", self)
        self.table = QtWidgets.QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["Sinus", "Volume (mL)", "Opacified", "LM"])
        self.table.verticalHeader().setVisible(False)
        # the columns share the panel's width (fixed widths needed a scroll bar at 1280 px)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        # every region visible (9 rows): the panel is a tab of its own, not squeezed
        self.table.setSizeAdjustPolicy(
            QtWidgets.QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents
        )
        self.table.setVisible(False)
        self.no_sinus = QtWidgets.QLabel("Per-sinus opacification: not available", self)
        self.no_sinus.setStyleSheet("color: #8b949e;")
        self.no_sinus.setVisible(False)
        self.warnings = QtWidgets.QLabel(self)
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("color: #d29922;")
        self.reset_button = QtWidgets.QPushButton("Reset to patient", self)
        self.reset_button.clicked.connect(session.reset_to_patient)
        self.disclaimer = QtWidgets.QLabel(SYNTHETIC_SHORT, self)
        self.disclaimer.setWordWrap(True)
        self.disclaimer.setStyleSheet("color: #8b949e; font-size: 11px;")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.quality_banner)
        lay.addWidget(self.headline)
        lay.addWidget(self.risk)
        lay.addLayout(form)
        lay.addWidget(self.table)
        lay.addWidget(self.no_sinus)
        lay.addWidget(self.warnings)
        lay.addWidget(self.reset_button)
        lay.addStretch(1)
        lay.addWidget(self.disclaimer)
        session.prediction_changed.connect(self._on_prediction_changed)
        session.result_changed.connect(self._on_result_changed)
        self._on_result_changed()

    def set_model_statement(self, text: str) -> None:
        """The line under the results saying which model is in use and how far to trust it
        (see :class:`~sinusapp.ui.model_statement.ModelStatement`)."""
        self.disclaimer.setText(text)

    def _on_result_changed(self) -> None:
        r = self.session.result
        if r is None:
            self.lesion.setText("—")
            self.lund_mackay.setText("—")
            self.model.setText("—")
            self.table.setVisible(False)
            self.no_sinus.setVisible(False)
            self.warnings.setText("")
            self.quality_banner.setVisible(False)
        else:
            self._show_quality(r)
            self.lesion.setText(f"{r.lesion_volume_ml:.1f} mL")
            m = r.model
            self.model.setText(
                f"{m.name} {m.version}"
                + (" (synthetic training data)" if m.trained_on_synthetic else "")
                if m is not None
                else "unknown"
            )
            self._fill_table(r.per_sinus)
            self.lund_mackay.setText(_lund_mackay_text(r.per_sinus))
            # a series opened anyway says so in the banner above the numbers, not here
            ws = [w.message for w in r.warnings if w.code != UNSUITABLE_SERIES]
            self.warnings.setText("\n".join(f"⚠ {w}" for w in ws))
        self._on_prediction_changed()

    def _show_quality(self, r: Any) -> None:
        """Banner: the series is no sinus-capable CT (opened anyway), the plausibility
        gate's warnings, or that the gate was not run."""
        unsuitable = [w for w in getattr(r, "warnings", ()) if w.code == UNSUITABLE_SERIES]
        problems = [f for f in getattr(r, "quality", ()) if str(f.severity) in ("warning", "error")]
        lines = [f"⚠ {f.message}" for f in unsuitable]
        if not getattr(r, "quality_checked", False):
            lines.append(
                "⚠ Input plausibility checks were not run for this result: check the CT "
                "(calibration, coverage, slice thickness, kernel) before relying on it."
            )
        elif problems:
            lines.append(
                "⚠ Input quality — the numbers below may be unreliable:\n"
                + "\n".join(f"• {f.message}" for f in problems)
            )
        if not lines:
            self.quality_banner.setVisible(False)
            return
        text = "\n".join(lines)
        self.quality_banner.setText(text)
        self.quality_banner.setStyleSheet(
            "background: #5c3d00; color: #ffe08a; border: 1px solid #d29922; "
            "border-radius: 4px; padding: 4px; font-weight: bold;"
        )
        self.quality_banner.setVisible(True)

    def _fill_table(self, per_sinus: Any) -> None:
        from sinusapp.imaging.quantify import (
            not_assessed,
            opacification_assessed,
            sinuses_found,
        )

        found, missing = sinuses_found(per_sinus or {})
        rows = list(found.items())
        self.table.setRowCount(len(rows))
        for i, (name, values) in enumerate(rows):
            vals = dict(values) if isinstance(values, dict) else {}
            vol = vals.get("volume_ml")
            pct = vals.get("opacification_pct")
            lm = vals.get("lund_mackay")
            items = (
                name.replace("_", " "),
                "—" if vol is None else f"{float(vol):.1f}",
                f"{float(pct):.0f} %" if opacification_assessed(vals) else "not assessed",
                "—" if lm is None else f"{int(lm)}",
            )
            for c, text in enumerate(items):
                self.table.setItem(i, c, QtWidgets.QTableWidgetItem(text))
        self.table.setVisible(bool(rows))
        self.no_sinus.setVisible(not rows)
        tips = []
        unassessed = not_assessed(found)
        if unassessed:
            tips.append(
                "Opacification not assessed (the model did not learn disease there; read these "
                "sinuses on the images), so not graded: "
                + ", ".join(m.replace("_", " ") for m in unassessed)
            )
        if missing:
            tips.append(
                "Not outlined (no cavity found), so not listed and not graded: "
                + ", ".join(m.replace("_", " ") for m in missing)
            )
        self.table.setToolTip("\n".join(tips))

    def _on_prediction_changed(self) -> None:
        # the numbers are always the analysed result's (what the record and the report
        # hold); a what-if on the nomogram is one extra, labelled line
        s = self.session
        r = s.result
        self.reset_button.setVisible(s.is_what_if)
        if r is None:
            self.dlr.setText("—")
            why = s.prediction_error or "—"
            self.headline.setText(f"<span style='color:#8b949e'>Risk of recurrence: {why}</span>")
            self.risk.setText("")
            self.risk.setStyleSheet("")
            self.points.setText("—")
            return
        self.dlr.setText(f"{float(r.dlr_score):.3f}")
        lo, hi = r.probability_ci95
        text = (
            f"Risk of recurrence <b style='font-size:22px'>{format_probability(r.probability)}"
            f"</b><br>95 % CI {format_ci95(lo, hi)}"
        )
        p = s.prediction
        if s.is_what_if and p is not None:
            text += (
                "<br><span style='color:#d29922'>What-if: "
                f"<b>{format_probability(p.probability)}</b> (not saved)</span>"
            )
        self.headline.setText(text)
        high = r.risk_group == "high"
        self.risk.setText(format_risk_group(risk_group=r.risk_group, cutoff=r.cutoff))
        self.risk.setStyleSheet(
            "border-radius: 4px; font-weight: bold; color: white; background: "
            + ("#c62828;" if high else "#2e7d32;")
        )
        self.points.setText(f"{r.total_points:.0f}")


def _lund_mackay_text(per_sinus: Any) -> str:
    """Total Lund-Mackay grade of the graded regions, with the maximum it can reach here."""
    from sinusapp.imaging.quantify import lund_mackay_score, not_assessed, sinuses_found

    found, missing = sinuses_found(per_sinus or {})
    if not found:
        return "—"
    total, maximum = lund_mackay_score(per_sinus or {})
    unassessed = not_assessed(found)
    graded = maximum // 2
    text = "—" if total is None else f"{total} / {maximum} ({graded} regions graded, 0–2 each)"
    if unassessed:
        text += f"; not assessed: {', '.join(m.replace('_', ' ') for m in unassessed)}"
    if missing:
        text += f"; not found: {', '.join(m.replace('_', ' ') for m in missing)}"
    return text
