"""Qt face of the open case: :class:`sinusapp.case.CaseModel`'s events as signals.

All state and rules live in the Qt-free :class:`~sinusapp.case.CaseModel` (tested headless);
:class:`CaseSession` only relays its events so the form, the results panel and the nomogram
widget can follow it. A what-if (a factor dragged on the nomogram) changes only the shown
prediction: it never reaches the form, the record or the report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from PySide6 import QtCore

from sinusapp.case import CaseEvent, CaseModel
from sinusapp.clinical import ClinicalInputs

__all__ = ["CaseSession"]

log = logging.getLogger(__name__)


class CaseSession(QtCore.QObject):
    """Signals of the case on screen, following a :class:`~sinusapp.case.CaseModel`.

    Signals
    -------
    clinical_changed(dict):
        The entered clinical inputs changed (from the form or a record; never a what-if).
    result_changed():
        The analysed result changed (new, recomputed for new entries, restored, or none).
    prediction_changed():
        The shown prediction (the analysed patient's, or a what-if) changed.
    volume_changed():
        Another series (or none) is open.
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
        records: Any | None = None,
        model: CaseModel | None = None,
        parent: QtCore.QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model or CaseModel(
            nomogram=nomogram, nomogram_error=nomogram_error, records=records
        )
        self.model.add_listener(self._on_model_event)

    def _on_model_event(self, event: str) -> None:
        if event == CaseEvent.CLINICAL:
            self.clinical_changed.emit(dict(self.model.clinical_raw))
        elif event == CaseEvent.RESULT:
            self.result_changed.emit()
        elif event == CaseEvent.PREDICTION:
            self.prediction_changed.emit()
        elif event == CaseEvent.VOLUME:
            self.volume_changed.emit()

    # -- read-through ------------------------------------------------------------------
    @property
    def nomogram(self) -> Any | None:
        """The nomogram in use."""
        return self.model.nomogram

    @property
    def nomogram_error(self) -> str:
        """Why there is no nomogram."""
        return self.model.nomogram_error

    @property
    def volume(self) -> Any | None:
        """The open CT."""
        return self.model.volume

    @property
    def result(self) -> Any | None:
        """The analysed result (never a what-if)."""
        return self.model.result

    @property
    def prediction(self) -> Any | None:
        """The shown prediction (analysed, or what-if when :attr:`is_what_if`)."""
        return self.model.prediction

    @property
    def prediction_error(self) -> str:
        """Why there is no prediction."""
        return self.model.prediction_error

    @property
    def raw_clinical(self) -> dict[str, Any]:
        """The clinical inputs as entered."""
        return dict(self.model.clinical_raw)

    @property
    def dlr_score(self) -> float | None:
        """DLR-score of the shown prediction."""
        return self.model.dlr_score

    @property
    def dlr_override(self) -> float | None:
        """The what-if DLR-score, or ``None``."""
        v = self.model.what_if.get("dlr_score")
        return None if v is None else float(v)

    @property
    def is_what_if(self) -> bool:
        """Whether the shown prediction is a what-if."""
        return self.model.is_what_if

    def clinical_inputs(self) -> ClinicalInputs | None:
        """Validated entered inputs, or ``None`` while the form has an error."""
        return self.model.clinical_inputs()

    # -- write-through -------------------------------------------------------------------
    def set_volume(self, volume: Any | None) -> None:
        """Open ``volume`` without a saved record (keeps same-patient entries)."""
        self.model.open_case(volume=volume)

    def set_clinical(self, raw: Mapping[str, Any]) -> None:
        """New entered inputs (the form)."""
        self.model.set_clinical(raw)

    def set_result(self, result: Any | None) -> None:
        """A finished analysis (see :meth:`sinusapp.case.CaseModel.accept_result`)."""
        self.model.accept_result(result)

    def set_factor(self, name: str, value: float | bool) -> None:
        """What-if on one nomogram factor (the form and the record are not touched)."""
        self.model.set_what_if(name, value)

    def reset_to_patient(self) -> None:
        """Undo every what-if."""
        self.model.reset_what_if()
