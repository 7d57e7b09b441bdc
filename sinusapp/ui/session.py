"""The open case: series, clinical entries, analysis result and the what-if prediction.

:class:`CaseSession` is the model the form, the results panel and the nomogram widget follow.
The analysis (segmentation + DLR-score) runs once per series; what-if changes (a factor
dragged on the nomogram, a value edited in the form) only re-run the nomogram, which takes
microseconds. "Reset to patient" restores the clinical entries and the DLR-score the
analysis was run with.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from PySide6 import QtCore

from sinusapp.clinical import ClinicalInputs
from sinusapp.errors import ClinicalInputError
from sinusapp.imaging.volume import Volume

__all__ = ["CaseSession"]

log = logging.getLogger(__name__)


class CaseSession(QtCore.QObject):
    """State of the case on screen.

    Signals
    -------
    clinical_changed(dict):
        The raw clinical entries changed (from the form, a what-if or a record).
    result_changed():
        A new analysis result (or none) is available.
    prediction_changed():
        The nomogram prediction (patient or what-if) changed.
    """

    clinical_changed = QtCore.Signal(dict)
    result_changed = QtCore.Signal()
    prediction_changed = QtCore.Signal()
    volume_changed = QtCore.Signal()

    def __init__(
        self,
        *,
        nomogram: Any | None = None,
        nomogram_error: str = "",
        parent: QtCore.QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.nomogram = nomogram
        self.nomogram_error = nomogram_error
        self.volume: Volume | None = None
        self.raw_clinical: dict[str, Any] = {}
        self.result: Any | None = None  # sinusapp.pipeline.AnalysisResult
        self.patient_clinical: dict[str, Any] | None = None
        self.dlr_override: float | None = None
        self.prediction: Any | None = None  # NomogramPrediction
        self.prediction_error: str = ""

    # -- setters ----------------------------------------------------------------------
    def set_volume(self, volume: Volume | None) -> None:
        """A new series is open: forget the result (the form keeps its entries)."""
        self.volume = volume
        self.result = None
        self.patient_clinical = None
        self.dlr_override = None
        self.volume_changed.emit()
        self.result_changed.emit()
        self._recompute()

    def set_clinical(self, raw: Mapping[str, Any]) -> None:
        """New raw clinical entries (from the form or a record)."""
        raw = dict(raw)
        if raw == self.raw_clinical:
            return
        self.raw_clinical = raw
        self.clinical_changed.emit(dict(raw))
        self._recompute()

    def set_result(self, result: Any | None) -> None:
        """A finished analysis: the patient's values become the what-if reference."""
        self.result = result
        self.dlr_override = None
        self.patient_clinical = dict(self.raw_clinical) if result is not None else None
        self.result_changed.emit()
        self._recompute()

    def set_factor(self, name: str, value: float | bool) -> None:
        """What-if: set one nomogram factor (``dlr_score``, ``asthma``, ``allergic_rhinitis``,
        ``eosinophils_per_ul``); clinical factors go through the form's raw entries."""
        if name == "dlr_score":
            self.dlr_override = float(value)
            self._recompute()
            return
        raw = dict(self.raw_clinical)
        if name in ("asthma", "allergic_rhinitis"):
            raw[name] = bool(value)
        elif name == "eosinophils_per_ul":
            from sinusapp.clinical import EosinophilUnit

            unit = EosinophilUnit(raw.get("eosinophil_unit") or EosinophilUnit.PER_UL)
            shown = unit.from_per_ul(float(value))
            raw["eosinophils"] = (
                f"{round(shown, 3):g}" if unit is EosinophilUnit.E9_PER_L else (f"{round(shown):d}")
            )
        else:
            raise ValueError(f"unknown nomogram factor {name!r}")
        self.set_clinical(raw)

    def reset_to_patient(self) -> None:
        """Undo every what-if: the analysed patient's entries and DLR-score."""
        self.dlr_override = None
        if self.patient_clinical is not None:
            if self.patient_clinical == self.raw_clinical:
                self._recompute()
            else:
                self.set_clinical(self.patient_clinical)

    # -- derived ----------------------------------------------------------------------
    @property
    def dlr_score(self) -> float | None:
        """DLR-score in use: the what-if override, else the analysis result's."""
        if self.dlr_override is not None:
            return self.dlr_override
        if self.result is not None and self.result.dlr_score is not None:
            return float(self.result.dlr_score)
        return None

    @property
    def is_what_if(self) -> bool:
        """Whether the prediction differs from the analysed patient's inputs."""
        return self.result is not None and (
            self.dlr_override is not None or self.patient_clinical != self.raw_clinical
        )

    def clinical_inputs(self) -> ClinicalInputs | None:
        """Validated clinical inputs, or ``None`` when the form has an error."""
        try:
            return ClinicalInputs.from_dict(self.raw_clinical)
        except ClinicalInputError:
            return None

    def _recompute(self) -> None:
        self.prediction = None
        self.prediction_error = ""
        dlr = self.dlr_score
        if self.nomogram is None:
            self.prediction_error = self.nomogram_error or "no nomogram loaded"
        elif dlr is None:
            self.prediction_error = "run the analysis to get the DLR-score"
        else:
            inputs = self.clinical_inputs()
            if inputs is None:
                self.prediction_error = "complete the clinical form"
            else:
                try:
                    self.prediction = self.nomogram.predict(
                        dlr_score=dlr, **inputs.nomogram_factors()
                    )
                except ClinicalInputError as exc:
                    self.prediction_error = str(exc)
        self.prediction_changed.emit()
