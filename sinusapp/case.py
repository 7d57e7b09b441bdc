"""The open case, without Qt: which series, the clinical inputs as entered, the analysed
result, the what-if overlay and the saved record.

:class:`CaseModel` is the one place that decides what the surgeon sees as *the patient's*
risk. The GUI binds its widgets to it (``sinusapp.ui.session.CaseSession`` relays its events
as Qt signals); tests drive it headless (3D Slicer's Logic, napari's model / view split).

The rules it enforces:

- The **analysed result** is the only result. It is always the nomogram of the clinical
  inputs *as entered* and the model's DLR-score. When the entered inputs change after the
  analysis (and are valid), the nomogram part is recomputed at once (the DLR-score is the
  model's and does not change), so the screen, the record and the report never disagree.
- A **what-if** is an overlay of factor values (and optionally a DLR-score) on top of the
  analysed result. It changes only :attr:`CaseModel.prediction` (the nomogram's marks), is
  flagged by :attr:`CaseModel.is_what_if`, never reaches the entered inputs, the record or
  the report, and is dropped when the case changes.
- The **record** holds the entered inputs and the analysed result, nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import logging
import math
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sinusapp.clinical import (
    ClinicalInputs,
    EosinophilUnit,
    FieldMessage,
    field_label,
    normalise_raw,
    parse_number,
    validate_clinical,
)
from sinusapp.errors import Cancelled, ClinicalInputError, InputQualityError
from sinusapp.findings import Finding, Severity

__all__ = [
    "UNSUITABLE_SERIES",
    "WHAT_IF_FACTORS",
    "CaseEvent",
    "CaseModel",
    "analyse_case",
    "export_paths",
    "format_ci95",
    "format_probability",
    "interrupt_torch_on_cancel",
    "nomogram_range_messages",
    "result_from_json",
    "unsuitable_series_finding",
]

log = logging.getLogger(__name__)

#: The factors a what-if may change.
WHAT_IF_FACTORS: tuple[str, ...] = (
    "dlr_score",
    "asthma",
    "allergic_rhinitis",
    "eosinophils_per_ul",
)


class CaseEvent:
    """Names of the events :class:`CaseModel` emits to its listeners."""

    VOLUME = "volume"  #: another series (or none) is open
    CLINICAL = "clinical"  #: the entered clinical inputs changed
    RESULT = "result"  #: the analysed result changed (new, recomputed, restored, none)
    PREDICTION = "prediction"  #: the shown prediction changed (analysed or what-if)


#: code of the finding a series carries when the surgeon opened it although the ranking
#: (:func:`sinusapp.dicom.scan.rank_series`) found it no sinus-capable CT
UNSUITABLE_SERIES = "unsuitable_series"


def unsuitable_series_finding(*, description: str, reasons: tuple[str, ...] | list[str]) -> Finding:
    """The warning a series opened "anyway" carries above its result and in its report.

    ``reasons`` are the series ranking's (e.g. ``"only 5 slices: cannot cover the sinuses
    ..."``). The model and the nomogram were made for thin-slice CT of the paranasal
    sinuses; on anything else they still give a number, so the number must say so.
    """
    why = "; ".join(r.lstrip("+−- ").strip() for r in reasons if r.strip()) or "see the browser"
    name = f"'{description}'" if description else "This series"
    return Finding(
        UNSUITABLE_SERIES,
        Severity.WARNING,
        f"{name} is not a sinus-capable CT ({why}) and was opened at the user's request: "
        "the model and the nomogram were made for thin-slice CT covering the paranasal "
        "sinuses, so any number on this series may be meaningless.",
    )


def format_probability(probability: float) -> str:
    """A probability as a surgeon should read it: ``">99 %"`` / ``"<1 %"`` at the ends
    (a logistic model never gives certainty; "100 %" would claim it), else ``"37 %"``."""
    if not math.isfinite(probability):
        return "—"
    if probability > 0.995:
        return ">99 %"
    if probability < 0.005:
        return "<1 %"
    return f"{probability * 100:.0f} %"


def format_ci95(low: float, high: float) -> str:
    """A 95 % confidence interval of a probability as it reads on screen and in the report:
    ``"21 % to 49 %"``, ``"59 % to >99 %"``, ``"<1 % to 4 %"``.

    Each end is :func:`format_probability`'s; the ends are joined by the word "to", because
    a dash runs into the ``>`` / ``<`` of an end beyond the nomogram ("59 %–>99 %" reads as a
    formula). The one formatter of the GUI and the PDF report, so they never differ.
    """
    return f"{format_probability(low)} to {format_probability(high)}"


def format_case_risk(*, probability: float | None, risk_group: str) -> str:
    """A saved case's risk in the cases list: ``"37 % (high risk)"``, ``"not analysed"``.

    Short for a table column but in the same words as the results badge and the report
    (:func:`format_risk_group`): it said "37 % HIGH". A group other than high / low (old
    records) is shown as it is; none recorded: the probability alone.
    """
    if probability is None:
        return "not analysed"
    group = str(risk_group or "").strip()
    text = format_probability(float(probability))
    if group.lower() in ("high", "low"):
        return f"{text} ({group.lower()} risk)"
    return f"{text} ({group})" if group else text


def format_risk_group(*, risk_group: str, cutoff: float) -> str:
    """The risk group as the GUI, the nomogram caption and the report say it:
    ``"High risk: at or above the 76 % cutoff"``, ``"Low risk: below the 76 % cutoff"``.

    It says how the probability relates to the cutoff, because "66 %" next to
    "LOW RISK (cutoff 76 %)" read as a contradiction (looked at on VHF, session 31); one
    wording for all three places so they never drift apart. ``risk_group`` is the result's
    ``"high"`` / ``"low"`` (the nomogram's rule: probability ≥ cutoff is high); any other
    text is shown as it is, and a cutoff that is not a number is said to be missing.
    """
    group = risk_group.strip().lower()
    if group not in ("high", "low"):
        label = risk_group.strip() or "Risk group not recorded"
        return label if math.isfinite(cutoff) else f"{label} (cutoff not recorded)"
    if not math.isfinite(cutoff):
        return f"{group.capitalize()} risk (cutoff not recorded)"
    where = "at or above" if group == "high" else "below"
    return f"{group.capitalize()} risk: {where} the {format_probability(cutoff)} cutoff"


def opening_region(volume: Any) -> Any | None:
    """The sinus region the viewer opens a series at, located when the series is opened.

    A whole head or a sinus-protocol scan opened at the middle of its field of view shows
    the brain stem or the temporal bone in coronal (harvard02 opened 85 mm behind its
    sinuses), and the surgeon had to scroll to the sinuses first. The region comes from
    :func:`~sinusapp.model.preprocess.locate_sinus_region` (no model: ~0.1-1.5 s on the real
    heads of ``../shared/data``; run it off the GUI thread) and is kept with the open case
    (:attr:`CaseModel.sinus_region`) so that the analysis does not locate it again.
    ``None`` when the locator finds no sinus region (a chest CT, a phantom without air): the
    viewer then opens at the middle, and the analysis locates again (and stops at the gate).
    """
    from sinusapp.errors import SinusAppError
    from sinusapp.model.preprocess import locate_sinus_region

    try:
        return locate_sinus_region(volume)
    except (SinusAppError, ValueError) as exc:
        log.info("no sinus region to open at (%s); opening at the middle", exc)
        return None
    except Exception:
        log.warning("the sinus locator failed; opening at the middle", exc_info=True)
        return None


def opening_voxel(volume: Any, *, region: Any | None) -> tuple[int, int, int] | None:
    """The voxel (k, j, i) of ``region``'s centre (:func:`opening_region`) on ``volume``;
    ``None`` without a region or when its centre lies outside the volume."""
    if region is None:
        return None
    index = np.rint(volume.lps_to_index(region.center_lps)).astype(int)
    shape = np.asarray(volume.shape)
    if not np.all((index >= 0) & (index < shape)):
        return None
    return (int(index[0]), int(index[1]), int(index[2]))


def analysis_failure_status(exc: BaseException) -> str:
    """The status-bar line for an analysis that did not finish.

    A CT stopped by the input gate (:class:`~sinusapp.errors.InputQualityError`, e.g.
    harvard02's air at −495 HU) says which check stopped it and the measured value, so the
    status bar does not read "Analysis failed" as if the program had broken; the dialog
    beside it holds the whole message. Anything else stays "Analysis failed".
    """
    if not isinstance(exc, InputQualityError):
        return "Analysis failed"
    parts = []
    for f in exc.findings:
        if getattr(f, "severity", None) != Severity.ERROR:
            continue
        what = str(getattr(f, "code", "")).replace("_", " ")
        value = getattr(f, "value", None)
        if isinstance(value, int | float) and math.isfinite(value):
            unit = str(getattr(f, "unit", "") or "")
            what += f" {value:.4g}" + (f" {unit}" if unit else "")
        parts.append(what)
    if not parts:
        return "Analysis stopped by the input check"
    return "Analysis stopped by the input check: " + "; ".join(parts)


def nomogram_range_messages(raw: Mapping[str, Any], nomogram: Any | None) -> list[FieldMessage]:
    """Warnings for entered values beyond the nomogram's drawn axis (e.g. 4500 cells/µL on
    an axis that ends at 2500): the points then leave the scale and the estimate is an
    extrapolation. Returns nothing when the value cannot be read or no nomogram is loaded."""
    if nomogram is None:
        return []
    factor = next(
        (f for f in getattr(nomogram, "factors", ()) if f.name == "eosinophils_per_ul"), None
    )
    axis = getattr(factor, "axis_range", None) if factor is not None else None
    if axis is None:
        return []
    raw = normalise_raw(raw)
    try:
        value = parse_number(raw.get("eosinophils"))
        unit = EosinophilUnit(raw.get("eosinophil_unit") or EosinophilUnit.PER_UL)
    except ValueError:
        return []
    if value is None:
        return []
    per_ul = unit.to_per_ul(value)
    lo, hi = float(axis[0]), float(axis[1])
    if lo <= per_ul <= hi:
        return []
    return [
        FieldMessage(
            "eosinophils",
            "beyond_nomogram",
            Severity.WARNING,
            f"{per_ul:g} cells/µL is beyond the nomogram's eosinophil axis ({lo:g}–{hi:g} "
            "cells/µL): the points leave the scale and the risk is an extrapolation. "
            "Please check the value and its unit.",
        )
    ]


Listener = Callable[[str], None]


class CaseModel:
    """State and rules of the case on screen (Qt-free).

    Parameters
    ----------
    nomogram:
        A :class:`sinusapp.nomogram.Nomogram` (``None`` when it could not be loaded;
        ``nomogram_error`` then says why).
    nomogram_error:
        Why there is no nomogram (shown instead of a risk).
    records:
        A :class:`sinusapp.records.CaseRecords` to save to, or ``None`` to keep nothing.
    """

    def __init__(
        self,
        *,
        nomogram: Any | None = None,
        nomogram_error: str = "",
        records: Any | None = None,
    ) -> None:
        self.nomogram = nomogram
        self.nomogram_error = nomogram_error
        self.records = records
        self.volume: Any | None = None
        #: the volume's sinus region, located when it was opened (None: not located)
        self.sinus_region: Any | None = None
        self.series_uid: str = ""
        #: the clinical inputs as entered (raw form state, possibly invalid)
        self.clinical_raw: dict[str, Any] = {}
        #: the analysed result (sinusapp.pipeline.AnalysisResult) of the entered inputs
        self.result: Any | None = None
        #: what-if overrides of nomogram factors; never saved
        self.what_if: dict[str, float | bool] = {}
        #: the prediction on screen: the analysed result's, or the what-if's
        self.prediction: Any | None = None
        self.prediction_error: str = ""
        #: a result the record does not hold yet (saved by :meth:`save`)
        self.result_unsaved = False
        #: the patient whose inputs :attr:`clinical_raw` holds (None: typed before any series)
        self._patient: str | None = None
        self._listeners: list[Listener] = []
        self._recompute()

    # -- events ------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` (a :class:`CaseEvent` name) after every change."""
        self._listeners.append(listener)

    def _emit(self, event: str) -> None:
        for listener in list(self._listeners):
            listener(event)

    # -- the case ------------------------------------------------------------------------
    def open_case(
        self,
        *,
        volume: Any | None,
        series_uid: str = "",
        clinical_raw: Mapping[str, Any] | None = None,
        result: Any | None = None,
        sinus_region: Any | None = None,
    ) -> None:
        """Show another series (or none) with its saved entries and result; drops any
        what-if. Without saved entries (``clinical_raw`` empty or ``None``), the entries held
        are kept when they belong to the same patient (typed before the series was open) and
        cleared for another patient. ``sinus_region``: located on opening
        (:func:`opening_region`), handed to the analysis so it is not located twice."""
        self.volume = volume
        self.sinus_region = sinus_region if volume is not None else None
        self.series_uid = series_uid or (volume.info.series_uid if volume is not None else "")
        self.what_if = {}
        self.result = None
        self.result_unsaved = False
        patient = _patient_key(volume)
        if clinical_raw:
            self.clinical_raw = dict(clinical_raw)
        elif volume is not None and self._patient is not None and patient != self._patient:
            # never carry one patient's clinical values over to another patient
            self.clinical_raw = {}
        if volume is not None:
            self._patient = patient
        if result is not None:
            self.result = self._reconciled_restored(result)
        self._emit(CaseEvent.VOLUME)
        self._emit(CaseEvent.CLINICAL)
        self._emit(CaseEvent.RESULT)
        self._recompute()

    def _reconciled_restored(self, result: Any) -> Any:
        """A saved result whose inputs differ from the saved entries (records written by
        versions that let a what-if reach the form) is the analysed truth: the entries are
        put back to the inputs it was analysed with, and the difference is logged."""
        inputs = self.clinical_inputs()
        analysed = dict(result.clinical_inputs or {})
        if inputs is not None and _same_inputs(inputs.to_dict(), analysed):
            return result
        if analysed:
            log.warning(
                "case %s: saved entries %s differ from the analysed inputs %s; showing the "
                "analysed inputs",
                self.series_uid,
                self.clinical_raw,
                analysed,
            )
            self.clinical_raw = _raw_from_inputs(analysed, previous=self.clinical_raw)
        return result

    def set_clinical(self, raw: Mapping[str, Any]) -> bool:
        """New entered inputs (the form). Drops the what-if. When a result exists and the
        inputs are valid, its nomogram part is recomputed for them (the DLR-score stays the
        model's). Returns whether anything changed."""
        raw = dict(raw)
        if raw == self.clinical_raw:
            return False
        self.clinical_raw = raw
        self.what_if = {}
        self._emit(CaseEvent.CLINICAL)
        if self.result is not None:
            inputs = self.clinical_inputs()
            if inputs is not None and not _same_inputs(
                inputs.to_dict(), dict(self.result.clinical_inputs)
            ):
                self.result = renomogram(self.result, inputs=inputs, nomogram=self.nomogram)
                self.result_unsaved = True
                self._emit(CaseEvent.RESULT)
        self._recompute()
        return True

    def accept_result(self, result: Any | None) -> Any | None:
        """A finished analysis. When the entries changed while it ran (and are valid), its
        nomogram part is recomputed for the entries now held. Returns the result kept."""
        self.what_if = {}
        if result is not None:
            inputs = self.clinical_inputs()
            if inputs is not None and not _same_inputs(
                inputs.to_dict(), dict(result.clinical_inputs)
            ):
                result = renomogram(result, inputs=inputs, nomogram=self.nomogram)
        self.result = result
        self.result_unsaved = result is not None
        self._emit(CaseEvent.RESULT)
        self._recompute()
        return result

    # -- what-if -----------------------------------------------------------------------------
    def set_what_if(self, name: str, value: float | bool) -> None:
        """Overlay one factor (:data:`WHAT_IF_FACTORS`) on the analysed result. Nothing but
        :attr:`prediction` changes; no-op without a result."""
        if name not in WHAT_IF_FACTORS:
            raise ValueError(
                f"unknown what-if factor {name!r}; expected one of {', '.join(WHAT_IF_FACTORS)}"
            )
        if self.result is None:
            return
        value = bool(value) if name in ("asthma", "allergic_rhinitis") else float(value)
        if self._analysed_factors().get(name) == value:
            self.what_if.pop(name, None)
        else:
            self.what_if[name] = value
        self._recompute()

    def reset_what_if(self) -> None:
        """Back to the analysed patient."""
        self.what_if = {}
        self._recompute()

    @property
    def is_what_if(self) -> bool:
        """Whether the shown prediction is a what-if (not the patient's analysed risk)."""
        return self.result is not None and bool(self.what_if)

    @property
    def dlr_score(self) -> float | None:
        """The DLR-score of the shown prediction (what-if override, else the model's)."""
        if "dlr_score" in self.what_if:
            return float(self.what_if["dlr_score"])
        if self.result is not None:
            return float(self.result.dlr_score)
        return None

    # -- derived -------------------------------------------------------------------------
    def clinical_inputs(self) -> ClinicalInputs | None:
        """The validated entered inputs, or ``None`` while a field has an error."""
        try:
            return ClinicalInputs.from_dict(self.clinical_raw)
        except ClinicalInputError:
            return None

    def field_messages(self) -> list[FieldMessage]:
        """Every message about the entered inputs, the nomogram's range included."""
        return validate_clinical(self.clinical_raw) + nomogram_range_messages(
            self.clinical_raw, self.nomogram
        )

    def analyse_blockers(self) -> list[str]:
        """Why the analysis cannot run now, naming the fields to correct (empty: it can)."""
        if self.volume is None:
            return ["Open a series to analyse it."]
        out: list[str] = []
        errors = [m for m in validate_clinical(self.clinical_raw) if m.severity is Severity.ERROR]
        missing = [field_label(m.field) for m in errors if m.code == "missing"]
        wrong = [m for m in errors if m.code != "missing"]
        if missing:
            out.append("Complete: " + ", ".join(missing) + ".")
        for m in wrong:
            out.append(f"Correct {field_label(m.field)}: {m.message}")
        if self.nomogram is None:
            out.append(f"Nomogram unavailable: {self.nomogram_error or 'not loaded'}")
        return out

    def _analysed_factors(self) -> dict[str, Any]:
        r = self.result
        if r is None:
            return {}
        ci = dict(r.clinical_inputs)
        out: dict[str, Any] = {"dlr_score": float(r.dlr_score)}
        for name in ("asthma", "allergic_rhinitis"):
            if name in ci:
                out[name] = bool(ci[name])
        if ci.get("eosinophils_per_ul") is not None:
            out["eosinophils_per_ul"] = float(ci["eosinophils_per_ul"])
        return out

    def _recompute(self) -> None:
        self.prediction = None
        self.prediction_error = ""
        if self.nomogram is None:
            self.prediction_error = self.nomogram_error or "no nomogram loaded"
        elif self.result is None:
            self.prediction_error = "run the analysis to get the DLR-score"
        else:
            factors = {**self._analysed_factors(), **self.what_if}
            names = tuple(getattr(self.nomogram, "factor_names", factors))
            try:
                self.prediction = self.nomogram.predict(
                    **{k: v for k, v in factors.items() if k in names}
                )
            except ClinicalInputError as exc:
                self.prediction_error = str(exc)
        self._emit(CaseEvent.PREDICTION)

    # -- the record ----------------------------------------------------------------------
    def save_clinical(self) -> None:
        """Save the entered inputs (and a result the record does not hold yet)."""
        if self.records is None or not self.series_uid:
            return
        if self.result is not None and self.result_unsaved:
            self.save_result(mask_npz=None)
            return
        info = self.volume.info if self.volume is not None else None
        self.records.save_clinical(
            series_uid=self.series_uid,
            clinical=dict(self.clinical_raw),
            study_uid=info.study_uid if info else "",
            patient_id=info.patient_id if info else "",
        )

    def save_result(self, *, mask_npz: bytes | None) -> None:
        """Save the analysed result with the entered inputs (``mask_npz``: the packed lesion
        mask; ``None`` packs :attr:`result`'s mask here)."""
        if self.records is None or not self.series_uid or self.result is None:
            return
        info = self.result.volume.info
        self.records.save_result(
            series_uid=self.series_uid,
            result=self.result.to_json_dict(),
            clinical=dict(self.clinical_raw),
            mask=self.result.mask if mask_npz is None else None,
            mask_npz=mask_npz,
            study_uid=info.study_uid,
            patient_id=info.patient_id,
        )
        self.result_unsaved = False


def result_from_json(data: Mapping[str, Any], *, volume: Any, mask: Any | None) -> Any:
    """Rebuild an :class:`~sinusapp.pipeline.AnalysisResult` from a saved ``result.json``
    (the case record's) on the reopened ``volume``; ``mask`` is the saved lesion mask
    (``None`` or another shape: an empty mask).

    Everything the screen and the report show comes back, the plausibility gate's findings
    included: without them a reopened case would read "quality checks not run" although
    they ran. Records written before the gate existed have no ``quality`` and say so.

    Raises
    ------
    KeyError, TypeError, ValueError
        ``data`` lacks a required field or holds a value of the wrong type.
    """
    import numpy as np

    from sinusapp.pipeline import AnalysisResult, ModelInfo

    m = data.get("model") or None
    model = None
    if m:
        model = ModelInfo(
            name=str(m.get("name", "")),
            version=str(m.get("version", "")),
            sha256=str(m.get("sha256", "")),
            trained_on_synthetic=bool(m.get("trained_on_synthetic", True)),
        )
    if mask is None or tuple(mask.shape) != tuple(volume.shape):
        mask = np.zeros(volume.shape, np.uint8)
    pts = data.get("points") or {}
    quality = data.get("quality") or {}
    result = AnalysisResult(
        volume=volume,
        clinical_inputs=dict(data.get("clinical_inputs", {})),
        dlr_score=float(data["dlr_score"]),
        probability=float(data["probability"]),
        probability_ci95=(float(data["probability_ci95"][0]), float(data["probability_ci95"][1])),
        risk_group=str(data["risk_group"]),
        cutoff=float(data["cutoff"]),
        points=dict(pts.get("per_factor", {})),
        total_points=float(pts.get("total", 0.0)),
        lesion_volume_ml=float(data.get("lesion_volume_ml", 0.0)),
        mask=mask,
        per_sinus=data.get("per_sinus") or None,
        sinus_labels_source=str(data.get("sinus_labels_source", "") or ""),
        model=model,
        nomogram_version=str(data.get("nomogram_version", "")),
        warnings=tuple(Finding.from_dict(w) for w in data.get("warnings", [])),
        quality=tuple(Finding.from_dict(f) for f in quality.get("findings", [])),
        quality_checked=bool(quality.get("checked", False)),
    )
    return dataclasses.replace(result, analysed_at=str(data.get("analysed_at", result.analysed_at)))


#: codes of the findings :meth:`sinusapp.nomogram.Nomogram.predict` produces
_NOMOGRAM_CODES = frozenset({"outside_training_range"})


def renomogram(result: Any, *, inputs: ClinicalInputs, nomogram: Any) -> Any:
    """``result`` with its nomogram part (clinical inputs, points, probability, CI, risk
    group, nomogram warnings) recomputed for ``inputs`` and the result's own DLR-score."""
    if nomogram is None:
        return result
    nom = nomogram.predict(dlr_score=float(result.dlr_score), **inputs.nomogram_factors())
    # the nomogram's own findings are replaced; every other warning (the CT's) is kept
    kept = tuple(w for w in result.warnings if w.code not in _NOMOGRAM_CODES)
    fresh = tuple(w for w in (getattr(nom, "warnings", ()) or ()) if isinstance(w, Finding))
    from sinusapp.headless import with_input_findings

    changed = dataclasses.replace(
        result,
        clinical_inputs=inputs.to_dict(),
        probability=float(nom.probability),
        probability_ci95=(float(nom.ci95[0]), float(nom.ci95[1])),
        risk_group=str(nom.risk_group),
        points={k: float(v) for k, v in nom.points.items()},
        total_points=float(nom.total_points),
        warnings=kept + fresh,
    )
    return with_input_findings(changed, inputs=inputs)  # clinical + borderline, refreshed


def _patient_key(volume: Any | None) -> str | None:
    if volume is None:
        return None
    info = volume.info
    return str(info.patient_id or info.patient_name or "")


def _same_inputs(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = set(a) | set(b)
    for k in keys:
        x, y = a.get(k), b.get(k)
        if isinstance(x, float) and isinstance(y, int | float) and not isinstance(y, bool):
            if not math.isclose(x, float(y), rel_tol=1e-9, abs_tol=1e-9):
                return False
        elif x != y:
            return False
    return True


def _raw_from_inputs(inputs: Mapping[str, Any], *, previous: Mapping[str, Any]) -> dict[str, Any]:
    """Form entries for analysed ``inputs`` (the unit as entered when it is known)."""
    raw = dict(previous)
    for k in ("asthma", "allergic_rhinitis", "age_years", "sex"):
        if k in inputs:
            raw[k] = inputs[k]
    for k in ("hypertension", "diabetes", "smoking", "drinking"):
        if k in inputs:
            raw[k] = inputs[k]
    unit = str(inputs.get("eosinophil_unit") or EosinophilUnit.PER_UL)
    eos = inputs.get("eosinophils", inputs.get("eosinophils_per_ul"))
    if eos is not None:
        raw["eosinophils"] = f"{float(eos):g}"
        raw["eosinophil_unit"] = unit
    if raw.get("age_years") is not None and not isinstance(raw["age_years"], str):
        raw["age_years"] = f"{float(raw['age_years']):g}"
    return raw


# -- analysis with a cancel that really stops -----------------------------------------------
_cancel_state = threading.local()
_hook_lock = threading.Lock()
_hook_handle: Any | None = None


def _torch_cancel_hook(module: Any, args: Any) -> None:
    """Global forward pre-hook: stop the network pass of this thread when cancel was asked."""
    should_cancel = getattr(_cancel_state, "should_cancel", None)
    if should_cancel is not None and should_cancel():
        raise Cancelled(f"analysis cancelled during the network pass (at {type(module).__name__})")


def _ensure_torch_hook() -> bool:
    global _hook_handle
    torch = sys.modules.get("torch")
    if torch is None:
        return False  # nothing runs a network in this process (a fake predictor)
    with _hook_lock:
        if _hook_handle is None:
            _hook_handle = torch.nn.modules.module.register_module_forward_pre_hook(
                _torch_cancel_hook
            )
    return True


@contextlib.contextmanager
def interrupt_torch_on_cancel(should_cancel: Callable[[], bool] | None) -> Iterator[None]:
    """Within the block, every torch module call on this thread first polls
    ``should_cancel`` and raises :class:`~sinusapp.errors.Cancelled` when it is True.

    The predictor checks cancel only between its stages; the network pass is one stage of
    several seconds on a CPU, so without this a Cancel would wait for it (the job "ends as
    late as a full run"). Only the calling thread is affected; a module call costs one
    thread-local lookup more.
    """
    if should_cancel is None:
        yield
        return
    _ensure_torch_hook()
    previous = getattr(_cancel_state, "should_cancel", None)
    _cancel_state.should_cancel = should_cancel
    try:
        yield
    finally:
        _cancel_state.should_cancel = previous


def analyse_case(
    *,
    volume: Any,
    clinical: Mapping[str, Any],
    get_predictor: Callable[[], Any],
    nomogram: Any,
    progress: Callable[[float, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    sinus_region: Any | None = None,
) -> Any:
    """One analysis of the case (worker thread): the predictor (created on first use), the
    pipeline, provenance from the predictor. Cancel is polled after loading the model, and
    during the network pass (:func:`interrupt_torch_on_cancel`). ``sinus_region``: the one
    located on opening (:attr:`CaseModel.sinus_region`), not located again.

    Raises
    ------
    sinusapp.errors.Cancelled
        ``should_cancel()`` turned True.
    """
    from sinusapp.pipeline import analyse

    if progress is not None:
        progress(0.0, "loading the model")
    predictor = get_predictor()
    if should_cancel is not None and should_cancel():
        raise Cancelled("analysis cancelled after loading the model")
    with interrupt_torch_on_cancel(should_cancel):
        result = analyse(
            volume,
            clinical,
            predictor=predictor,
            nomogram=nomogram,
            progress=progress,
            should_cancel=should_cancel,
            sinus_region=sinus_region,
        )
    if should_cancel is not None and should_cancel():
        raise Cancelled("analysis cancelled")
    from sinusapp.headless import with_input_findings

    # the same warnings as `sinusapp predict`: the clinical validator's, a borderline risk,
    # and a nomogram fitted on another model's DLR-scores (headless refuses that one)
    pairing = getattr(nomogram, "model_pairing", None)
    finding = pairing(getattr(predictor, "model_info", None)) if pairing else None
    return with_input_findings(
        _with_model_info(result, predictor),
        inputs=ClinicalInputs.from_dict(clinical),
        extra=(finding,) if isinstance(finding, Finding) else (),
    )


def _with_model_info(result: Any, predictor: Any) -> Any:
    """Fill ``result.model`` from the predictor's ``model_info`` dict when the pipeline left
    it empty (provenance must never be blank on screen or in the record)."""
    info = getattr(predictor, "model_info", None)
    if getattr(result, "model", None) is not None or not isinstance(info, dict):
        return result
    from sinusapp.pipeline import ModelInfo

    model = ModelInfo(
        name=str(info.get("name", "")),
        version=str(info.get("version", "")),
        sha256=str(info.get("sha256", "")),
        trained_on_synthetic=bool(info.get("trained_on_synthetic", True)),
    )
    return dataclasses.replace(result, model=model)


# -- export file names -----------------------------------------------------------------------
def _safe(text: str, *, limit: int = 40) -> str:
    out = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(text).strip())
    return out.strip("_")[:limit]


def export_paths(
    folder: str | Path,
    *,
    patient_id: str,
    series_number: int | None,
    series_uid: str,
    when: _dt.datetime | None = None,
    kinds: tuple[str, ...] = ("report.pdf", "report.dcm", "lesion_seg.dcm"),
) -> dict[str, Path]:
    """File names for one export, by patient, series and time, that replace nothing.

    ``patient-<ID>_series-<number>-<uid tail>_<YYYYmmdd-HHMMSS>_<kind>``: two patients (or two
    series, or two exports) in the same folder never share a name. When any of the names is
    taken already (two exports in the same second), ``-2``, ``-3``... is added to all of them,
    so the files of one export keep one stem.

    Returns
    -------
    dict[str, Path]
        ``kind`` (e.g. ``"report.dcm"``) → the path to write.
    """
    folder = Path(folder)
    when = when or _dt.datetime.now()
    patient = _safe(patient_id) or "unknown"
    uid_tail = _safe(series_uid.rsplit(".", 1)[-1], limit=12) if series_uid else ""
    series = "-".join(p for p in (str(series_number or ""), uid_tail) if p) or "unknown"
    stem = f"patient-{patient}_series-{series}_{when.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        suffix = "" if n == 1 else f"-{n}"
        paths = {k: folder / f"{stem}{suffix}_{k}" for k in kinds}
        if not any(p.exists() for p in paths.values()):
            return paths
    raise FileExistsError(
        f"export folder {folder}: 999 exports named {stem}* exist already; choose another folder"
    )
