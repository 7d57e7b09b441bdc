"""The report's content as pure data: :class:`ReportContext`.

Everything the preoperative risk report shows is decided here, from one
:class:`~sinusapp.pipeline.AnalysisResult` (plus the nomogram and an optional reference mask),
and nothing here knows about reportlab or Qt. The renderer (:mod:`sinusapp.report.render`)
only lays this data out, so tests can check the content without a PDF, and the PDF, the
printed page and the screen show the same numbers.

Image conventions of the key slices (the same as the slice viewer's): radiological display —
the patient's right on the image's left; coronal images with superior at the top, axial
images with anterior at the top. Image arrays are ``uint8`` ``[row, column]`` in a bone
window, and contours are polylines in *image pixel coordinates* ``(x = column, y = row)``,
where pixel ``(r, c)`` covers ``[c, c + 1] × [r, r + 1]`` (so a pixel's centre is at
``c + 0.5, r + 0.5``). One image pixel is ``pixel_spacing_mm = (row_mm, column_mm)``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from sinusapp.findings import Finding, Severity
from sinusapp.imaging.metrics import dice as dice_coefficient
from sinusapp.imaging.quantify import not_assessed, sinuses_found
from sinusapp.nomogram.layout import NomogramLayout, build_layout

__all__ = [
    "BONE_WINDOW_HU",
    "ClinicalRow",
    "KeySlice",
    "LabelValue",
    "PageSize",
    "ReportContext",
    "SinusRow",
    "choose_key_slices",
    "nomogram_layout_for",
]

log = logging.getLogger(__name__)

PageSize = Literal["A4", "Letter"]

#: Bone / sinus window of the key slices: (level, width) in HU (DESIGN §5: W 2000–2500,
#: L 300–500).
BONE_WINDOW_HU: tuple[float, float] = (400.0, 2000.0)

PRODUCT_NAME = "SinusApp"
REPORT_TITLE = "Preoperative risk of chronic rhinosinusitis recurrence"

INTENDED_USE = (
    "SinusApp estimates, before endoscopic sinus surgery, the probability that chronic "
    "rhinosinusitis (CRS) recurs, from a preoperative paranasal-sinus CT and three clinical "
    "factors (asthma, allergic rhinitis, blood eosinophil count), following the nomogram of "
    "He et al., iScience 26, 106527 (2023). It is meant to support, not replace, the "
    "surgeon's judgement, for adult patients with CRS scheduled for surgery. The estimate "
    "is a population-level probability, not a diagnosis."
)

_LIMITATIONS_ALWAYS: tuple[str, ...] = (
    "The lesion contour and the DLR-score come from a neural network; check the red contour "
    "against the images before relying on the lesion volume or the per-sinus figures.",
    "The nomogram was fitted on one cohort; outside that population (other scanners, "
    "protocols, case mix, children) its calibration is unknown.",
    "Input quality problems listed in this report (gantry tilt, missing slices, incomplete "
    "coverage) can change the result.",
)

_LIMITATION_SYNTHETIC = (
    "The model was trained on synthetic (computer-generated) disease, clinical factors and "
    "outcomes, not on patients' disease or follow-up (the bundled model places the disease "
    "on real sinus CT anatomy; it finds too little of the disease placed in the ethmoid, "
    "frontal and sphenoid sinuses of a real head it was not trained on, so it does not "
    "assess their opacification). It is NOT validated for clinical use: this report must not "
    "be used to make treatment decisions."
)
_LIMITATION_UNKNOWN_MODEL = (
    "No model provenance was recorded for this analysis; the model's training data and "
    "validation status are unknown."
)

# Labels and units of the clinical inputs SinusApp knows (others are shown with their key).
_CLINICAL_LABELS: dict[str, tuple[str, str]] = {
    "asthma": ("Asthma", ""),
    "allergic_rhinitis": ("Allergic rhinitis", ""),
    "eosinophils_per_ul": ("Blood eosinophils", "cells/µL"),
    "eosinophils_1e9_per_l": ("Blood eosinophils", "×10⁹/L"),
    "age": ("Age", "years"),
    "age_years": ("Age", "years"),
    "sex": ("Sex", ""),
    "smoking": ("Smoking", ""),
    "nasal_polyps": ("Nasal polyps", ""),
    "previous_surgery": ("Previous sinus surgery", ""),
    "aspirin_intolerance": ("Aspirin intolerance", ""),
    "total_ige_iu_per_ml": ("Total IgE", "IU/mL"),
    "lund_mackay": ("Lund–Mackay score (entered)", ""),
    "snot22": ("SNOT-22", ""),
}
_UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_per_ul", "cells/µL"),
    ("_1e9_per_l", "×10⁹/L"),
    ("_years", "years"),
    ("_ml", "mL"),
    ("_mm", "mm"),
    ("_pct", "%"),
    ("_kg", "kg"),
)

_SINUS_LABELS: dict[str, str] = {
    "maxillary": "Maxillary",
    "frontal": "Frontal",
    "sphenoid": "Sphenoid",
    "ethmoid": "Ethmoid",
    "anterior_ethmoid": "Anterior ethmoid",
    "posterior_ethmoid": "Posterior ethmoid",
    "ethmoid_ant": "Anterior ethmoid",
    "ethmoid_post": "Posterior ethmoid",
    "nasal_cavity": "Nasal cavity",
    "omc": "Ostiomeatal complex",
}


# --------------------------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelValue:
    """One row of an identification table."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class ClinicalRow:
    """One clinical input as entered, with its unit and (if it is a nomogram factor) points."""

    key: str
    label: str
    value: str
    unit: str
    points: float | None = None


@dataclass(frozen=True, slots=True)
class SinusRow:
    """Per-sinus quantification.

    ``lund_mackay`` is the grade 0 (clear) / 1 (partial) / 2 (complete opacification), either
    provided by the quantification or derived here from ``opacification_pct``
    (``lund_mackay_derived`` says which).
    """

    name: str
    label: str
    volume_ml: float | None
    opacified_ml: float | None
    opacification_pct: float | None
    lund_mackay: int | None
    lund_mackay_derived: bool


@dataclass(frozen=True, slots=True, eq=False)
class KeySlice:
    """One key slice: a bone-window image with contours, ready to be drawn.

    Attributes
    ----------
    plane:
        ``"coronal"`` or ``"axial"``.
    volume_axis, index:
        The volume axis (0 slice, 1 row, 2 column) that was cut and the index along it.
    position_label:
        Where the slice is, for a clinician (``"coronal slice 57 / 128, y = −12.0 mm"``).
    image:
        ``uint8`` ``[row, column]``, bone window, display orientation (see module docstring).
    pixel_spacing_mm:
        ``(row_mm, column_mm)`` of one image pixel; the image must be drawn with this aspect.
    model_contours, reference_contours:
        Polylines ``(N, 2)`` of ``(x, y)`` image pixel coordinates (model = red,
        reference = blue).
    lesion_area_mm2:
        Area of the model mask in this slice.
    scale_bar_mm:
        A round length for the scale bar (about a fifth of the image width).
    orientation:
        Letters at the image's ``top``, ``bottom``, ``left`` and ``right`` edges.
    window_hu:
        ``(level, width)`` used for the image.
    """

    plane: Literal["coronal", "axial"]
    volume_axis: int
    index: int
    position_label: str
    image: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    model_contours: tuple[np.ndarray, ...]
    reference_contours: tuple[np.ndarray, ...]
    lesion_area_mm2: float
    scale_bar_mm: float
    orientation: Mapping[str, str]
    window_hu: tuple[float, float]

    @property
    def size_mm(self) -> tuple[float, float]:
        """Physical ``(width, height)`` of the image in mm."""
        h, w = self.image.shape
        return (w * self.pixel_spacing_mm[1], h * self.pixel_spacing_mm[0])


@dataclass(frozen=True, slots=True, eq=False)
class ReportContext:
    """Everything the preoperative risk report shows, as plain data (no reportlab, no Qt).

    Build it with :meth:`from_result`. Texts are final, formatted strings; numbers that a
    test or another renderer may want are kept as numbers too.
    """

    # header
    product: str
    title: str
    software_version: str
    model_name: str
    model_version: str
    model_sha256: str
    model_trained_on_synthetic: bool | None
    analysed_at: str
    analysed_at_display: str
    page_size: PageSize
    institution: str
    # identification
    patient: tuple[LabelValue, ...]
    study: tuple[LabelValue, ...]
    patient_name: str
    patient_id: str
    # input quality
    findings: tuple[Finding, ...]
    # clinical
    clinical: tuple[ClinicalRow, ...]
    # imaging
    key_slices: tuple[KeySlice, ...]
    lesion_volume_ml: float
    sinuses: tuple[SinusRow, ...]
    lund_mackay_total: int | None
    lund_mackay_max: int | None
    lund_mackay_note: str
    dice_vs_reference: float | None
    # risk
    dlr_score: float
    probability: float
    probability_ci95: tuple[float, float]
    risk_group: str
    cutoff: float
    total_points: float
    points: Mapping[str, float]
    nomogram_layout: NomogramLayout | None
    nomogram_version: str
    # texts
    intended_use: str
    limitations: tuple[str, ...]
    model_card: tuple[LabelValue, ...]
    not_for_clinical_use: bool
    signature_lines: tuple[str, ...] = ("Surgeon", "Signature", "Date")
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: True only when the input plausibility gate ran on this result (see
    #: :mod:`sinusapp.imaging.plausibility`); the report never says "no problems" otherwise.
    quality_checked: bool = False

    # ---------------------------------------------------------------- formatted summaries
    @property
    def has_quality_problem(self) -> bool:
        """Any warning or error among the findings."""
        return any(f.severity in (Severity.WARNING, Severity.ERROR) for f in self.findings)

    @property
    def quality_summary(self) -> str:
        """The sentence under the "Input quality" heading (never "no problems" unless the
        plausibility gate ran and found no warning or error)."""
        if not self.quality_checked:
            return (
                "The input plausibility checks (HU calibration, sinus coverage, slice "
                "thickness, kernel, lesion location, likeness to the training data) were not "
                "run for this result: check the CT yourself before relying on any number."
            )
        if any(f.severity == Severity.ERROR for f in self.findings):
            return (
                "At least one input error was found: interpret the result with particular caution."
            )
        if self.has_quality_problem:
            return (
                "Input quality warnings were found (listed above): the numbers in this report "
                "may be unreliable for this CT."
            )
        return (
            "No input quality problems were found (HU calibration, sinus coverage, slice "
            "thickness, kernel, lesion location, likeness to the training data, geometry)."
        )

    @property
    def model_sha256_short(self) -> str:
        """First 12 hex digits of the weights checksum (``"—"`` when unknown)."""
        return self.model_sha256[:12] if self.model_sha256 else "—"

    @property
    def probability_text(self) -> str:
        """``"34 % (95 % CI 21 % to 49 %)"``, ``"97 % (95 % CI 59 % to >99 %)"``: the
        GUI's formatters (:func:`sinusapp.case.format_probability`, :func:`~sinusapp.case.
        format_ci95`), so screen and report read the same."""
        from sinusapp.case import format_ci95, format_probability

        lo, hi = self.probability_ci95
        return f"{format_probability(self.probability)} (95 % CI {format_ci95(lo, hi)})"

    @property
    def risk_text(self) -> str:
        """``"High risk: at or above the 30 % cutoff"`` (:func:`sinusapp.case.format_risk_group`,
        the GUI's wording)."""
        from sinusapp.case import format_risk_group

        return format_risk_group(risk_group=self.risk_group, cutoff=self.cutoff)

    @property
    def header_model_text(self) -> str:
        """Model name, version and short checksum for the page header."""
        if not self.model_name:
            return "model: not recorded"
        return f"{self.model_name} {self.model_version} (sha256 {self.model_sha256_short})"

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_result(
        cls,
        result: Any,
        *,
        nomogram: Any | None = None,
        reference_mask: np.ndarray | None = None,
        page_size: PageSize = "A4",
        institution: str = "",
        model_card_summary: Sequence[tuple[str, str]] | None = None,
    ) -> ReportContext:
        """Build the context from one analysis.

        Parameters
        ----------
        result:
            The :class:`~sinusapp.pipeline.AnalysisResult`.
        nomogram:
            The :class:`~sinusapp.nomogram.Nomogram` used for the analysis, or the
            :class:`~sinusapp.nomogram.NomogramLayout` shown on screen; its layout is drawn
            with the patient's values marked (see :func:`nomogram_layout_for`). ``None``: the
            report lists the points per factor without the nomogram figure.
        reference_mask:
            Optional reference segmentation on the CT grid (drawn in blue; the Dice
            coefficient against the model mask is reported).
        page_size:
            ``"A4"`` or ``"Letter"``.
        institution:
            Printed under the title when given.
        model_card_summary:
            ``(label, text)`` rows from the model bundle's card (training data, metrics);
            when ``None`` a summary is made from the result's model provenance.

        Raises
        ------
        ValueError
            ``page_size`` is not A4 / Letter, ``reference_mask`` is not on the CT grid, or
            ``nomogram`` is not the one that produced ``result``.
        """
        if page_size not in ("A4", "Letter"):
            raise ValueError(f"page_size must be 'A4' or 'Letter', got {page_size!r}")
        volume = result.volume
        mask = np.asarray(result.mask)
        if reference_mask is not None:
            reference_mask = np.asarray(reference_mask)
            if reference_mask.shape != mask.shape:
                raise ValueError(
                    f"reference_mask has shape {reference_mask.shape}, the CT grid is "
                    f"{mask.shape}; resample the reference onto the CT first"
                )
        info = volume.info
        model = result.model
        synthetic = None if model is None else bool(model.trained_on_synthetic)

        patient = (
            LabelValue("Name", _person_name(info.patient_name)),
            LabelValue("Patient ID", info.patient_id or "—"),
            LabelValue("Birth date", _dicom_date(info.patient_birth_date)),
            LabelValue("Sex", _sex(info.patient_sex)),
        )
        sp = volume.spacing_mm
        study = (
            LabelValue("Accession", info.accession_number or "—"),
            LabelValue("Study date", _dicom_date(info.study_date)),
            LabelValue("Study", info.study_description or "—"),
            LabelValue(
                "Series",
                f"{info.series_number if info.series_number is not None else '—'}: "
                f"{info.series_description or '(no description)'}",
            ),
            LabelValue("Series UID", info.series_uid or "—"),
            LabelValue(
                "Slices",
                f"{volume.shape[0]} × {volume.shape[1]} × {volume.shape[2]}"
                + (" (resampled onto a regular grid)" if volume.resampled else ""),
            ),
            LabelValue(
                "Spacing",
                f"{sp[0]:.2f} mm between slices, pixels {sp[1]:.2f} × {sp[2]:.2f} mm"
                + (
                    f", thickness {info.slice_thickness_mm:.2f} mm"
                    if info.slice_thickness_mm
                    else ""
                ),
            ),
            LabelValue("Kernel", info.convolution_kernel or "—"),
            LabelValue(
                "Scanner",
                " ".join(p for p in (info.manufacturer, info.manufacturer_model) if p) or "—",
            ),
        )

        clinical = _clinical_rows(result.clinical_inputs, result.points, result.dlr_score)
        key_slices = choose_key_slices(volume, mask, reference_mask=reference_mask)
        # a region outlined with < 0.5 mL was not found: not listed, not graded (sinuses_found)
        found, missing_names = sinuses_found(result.per_sinus or {})
        sinuses = _sinus_rows(found)
        missing = tuple(_sinus_label(n) for n in missing_names)
        lm_total, lm_max, lm_note = _lund_mackay_total(sinuses)
        source = str(getattr(result, "sinus_labels_source", "") or "")
        if lm_note and source in _LABEL_SOURCE_NOTES:
            lm_note += " " + _LABEL_SOURCE_NOTES[source]
        unassessed = tuple(_sinus_label(n) for n in not_assessed(found))
        if unassessed:
            lm_note += (
                " Opacification not assessed (the model did not learn disease there; read "
                f"these sinuses on the images), so not graded: {', '.join(unassessed)}."
            )
        if missing:
            lm_note += (
                f" Not outlined (no cavity found), so not listed and not graded: "
                f"{', '.join(missing)}."
            ).rstrip()
        dice = (
            None
            if reference_mask is None or not (np.any(mask) or np.any(reference_mask))
            else dice_coefficient(np.asarray(mask), np.asarray(reference_mask))
        )

        limitations = list(_LIMITATIONS_ALWAYS)
        if synthetic is None:
            limitations.insert(0, _LIMITATION_UNKNOWN_MODEL)
        elif synthetic:
            limitations.insert(0, _LIMITATION_SYNTHETIC)
        if volume.resampled:
            limitations.append(
                "The series was resampled onto a regular grid before analysis (tilted or "
                "irregularly spaced slices); the images shown are the resampled ones."
            )

        if model_card_summary is not None:
            card = tuple(LabelValue(str(k), str(v)) for k, v in model_card_summary)
        else:
            card = _default_model_card(model, result.nomogram_version)

        layout = nomogram_layout_for(nomogram, result) if nomogram is not None else None

        return cls(
            product=PRODUCT_NAME,
            title=REPORT_TITLE,
            software_version=str(result.software_version),
            model_name=model.name if model else "",
            model_version=model.version if model else "",
            model_sha256=model.sha256 if model else "",
            model_trained_on_synthetic=synthetic,
            analysed_at=str(result.analysed_at),
            analysed_at_display=_display_datetime(str(result.analysed_at)),
            page_size=page_size,
            institution=institution,
            patient=patient,
            study=study,
            patient_name=_person_name(info.patient_name),
            patient_id=info.patient_id or "—",
            findings=tuple(result.warnings)
            + tuple(
                f for f in getattr(result, "quality", ()) or () if f not in tuple(result.warnings)
            ),
            quality_checked=bool(getattr(result, "quality_checked", False)),
            clinical=clinical,
            key_slices=key_slices,
            lesion_volume_ml=float(result.lesion_volume_ml),
            sinuses=sinuses,
            lund_mackay_total=lm_total,
            lund_mackay_max=lm_max,
            lund_mackay_note=lm_note,
            dice_vs_reference=dice,
            dlr_score=float(result.dlr_score),
            probability=float(result.probability),
            probability_ci95=(float(result.probability_ci95[0]), float(result.probability_ci95[1])),
            risk_group=str(result.risk_group),
            cutoff=float(result.cutoff),
            total_points=float(result.total_points),
            points={k: float(v) for k, v in result.points.items()},
            nomogram_layout=layout,
            nomogram_version=str(result.nomogram_version or ""),
            intended_use=INTENDED_USE,
            limitations=tuple(limitations),
            model_card=card,
            not_for_clinical_use=synthetic is not False,
        )

    # ---------------------------------------------------------------- text for tests / preview
    def text_items(self) -> list[str]:
        """The report's key strings, in reading order (used by the preview and by tests)."""
        items = [
            self.product,
            self.title,
            f"Software {self.software_version}",
            self.header_model_text,
            self.analysed_at_display,
        ]
        items += [f"{lv.label}: {lv.value}" for lv in (*self.patient, *self.study)]
        items += [f.message for f in self.findings]
        items.append(self.quality_summary)
        items += [f"{c.label}: {c.value} {c.unit}".rstrip() for c in self.clinical]
        items += [
            f"Lesion volume: {self.lesion_volume_ml:.1f} mL",
            f"Probability of recurrence: {self.probability_text}",
            self.risk_text,
            self.intended_use,
            *self.limitations,
        ]
        return items


# --------------------------------------------------------------------------------------------
# Key slices
# --------------------------------------------------------------------------------------------

_LPS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))  # (negative, positive) per LPS axis


def _nice_length(target_mm: float) -> float:
    """A round scale-bar length (1, 2, 5 × 10^k mm) not above ``target_mm``."""
    if target_mm <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(target_mm))
    for m in (5.0, 2.0, 1.0):
        if m * mag <= target_mm:
            return m * mag
    return mag


def _window_uint8(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    lo = level - width / 2.0
    scaled = (hu.astype(np.float32) - lo) * (255.0 / width)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _contours(mask2d: np.ndarray) -> tuple[np.ndarray, ...]:
    """Outline polylines of a 2-D binary mask in ``(x, y)`` image pixel coordinates."""
    from skimage import measure

    if not mask2d.any():
        return ()
    padded = np.pad(mask2d.astype(np.float32), 1)
    out = []
    for c in measure.find_contours(padded, 0.5):
        c = measure.approximate_polygon(c, tolerance=0.25)
        if len(c) < 3:
            continue
        # (row, col) in the padded array → (x, y) with pixel (r, c) covering [c, c+1]
        xy = np.column_stack([c[:, 1] - 1 + 0.5, c[:, 0] - 1 + 0.5])
        out.append(xy.astype(np.float32))
    return tuple(out)


def _crop_box(
    image_hu: np.ndarray,
    pixel_mm: tuple[float, float],
    *masks: np.ndarray,
    margin_mm: float = 25.0,
) -> tuple[slice, slice]:
    """The region worth showing: the lesion (all masks) with ``margin_mm`` around it, within
    the body (HU > −400); the whole body when there is no lesion in the slice."""
    body = image_hu > -400
    lesion = np.zeros_like(body)
    for m in masks:
        lesion |= m > 0
    if not body.any() and not lesion.any():
        return slice(0, image_hu.shape[0]), slice(0, image_hu.shape[1])

    def box(b: np.ndarray) -> tuple[int, int, int, int]:
        rows = np.flatnonzero(b.any(axis=1))
        cols = np.flatnonzero(b.any(axis=0))
        return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1

    r0, r1, c0, c1 = box(body | lesion)
    if lesion.any():
        lr0, lr1, lc0, lc1 = box(lesion)
        mr = round(margin_mm / pixel_mm[0])
        mc = round(margin_mm / pixel_mm[1])
        r0, r1 = max(r0, lr0 - mr), min(r1, lr1 + mr)
        c0, c1 = max(c0, lc0 - mc), min(c1, lc1 + mc)
    pad_r = max(round(3.0 / pixel_mm[0]), 1)
    pad_c = max(round(3.0 / pixel_mm[1]), 1)
    return (
        slice(max(r0 - pad_r, 0), min(r1 + pad_r, image_hu.shape[0])),
        slice(max(c0 - pad_c, 0), min(c1 + pad_c, image_hu.shape[1])),
    )


def choose_key_slices(
    volume: Any,
    mask: np.ndarray,
    *,
    reference_mask: np.ndarray | None = None,
    window_hu: tuple[float, float] = BONE_WINDOW_HU,
) -> tuple[KeySlice, ...]:
    """The coronal and the axial slice with the largest lesion area, ready to draw.

    The planes are cut along the volume axis closest to the patient's y (coronal) and z
    (axial) axes; for an oblique or tilted acquisition that is an approximation, and the
    orientation letters are computed from the real directions. With an empty mask the middle
    slice is shown.
    """
    from sinusapp.imaging.planes import Plane, plane_geometry

    mask = np.asarray(mask) > 0
    ref = None if reference_mask is None else np.asarray(reference_mask) > 0
    out: list[KeySlice] = []
    for plane, cut_lps in ((Plane.CORONAL, "y"), (Plane.AXIAL, "z")):
        # the same reformatting as the viewer's (radiological: patient's right on the left)
        g = plane_geometry(plane=plane, shape=volume.shape, affine=volume.affine)
        cut_axis = g.through_axis
        other = tuple(a for a in range(3) if a != cut_axis)
        pixel_area = g.spacing_x_mm * g.spacing_y_mm
        areas = mask.sum(axis=other)
        if areas.max() > 0:
            # ties broken physically (the lowest patient coordinate), not by storage order
            tied = np.flatnonzero(areas == areas.max())
            coord = volume.affine["xyz".index(cut_lps), cut_axis] * tied
            index = int(tied[int(np.argmin(coord))])
        else:
            index = volume.shape[cut_axis] // 2
        hu = np.ascontiguousarray(g.extract(volume.array, index))
        m2 = np.ascontiguousarray(g.extract(mask, index))
        r2 = np.ascontiguousarray(g.extract(ref, index)) if ref is not None else None
        pix = (g.spacing_y_mm, g.spacing_x_mm)
        rs, cs = _crop_box(hu, pix, m2, *(() if r2 is None else (r2,)))
        hu, m2 = hu[rs, cs], m2[rs, cs]
        if r2 is not None:
            r2 = r2[rs, cs]
        left, right, top, bottom = g.labels
        orientation = {"top": top, "bottom": bottom, "left": left, "right": right}
        centre_idx = np.array([0.0, 0.0, 0.0])
        centre_idx[cut_axis] = index
        pos = float(volume.index_to_lps(centre_idx)["xyz".index(cut_lps)])
        width_mm = hu.shape[1] * pix[1]
        out.append(
            KeySlice(
                plane=str(plane),  # type: ignore[arg-type]
                volume_axis=cut_axis,
                index=index,
                position_label=(
                    f"{plane} slice {index + 1} / {volume.shape[cut_axis]} "
                    f"({cut_lps} = {pos:.1f} mm)".replace("-", "−")
                ),
                image=_window_uint8(hu, *window_hu),
                pixel_spacing_mm=(float(pix[0]), float(pix[1])),
                model_contours=_contours(m2),
                reference_contours=() if r2 is None else _contours(r2),
                lesion_area_mm2=float(m2.sum() * pixel_area),
                scale_bar_mm=_nice_length(width_mm / 4.0),
                orientation=orientation,
                window_hu=window_hu,
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Nomogram
# --------------------------------------------------------------------------------------------


def nomogram_layout_for(nomogram: Any, result: Any) -> NomogramLayout:
    """The nomogram's layout with the patient of ``result`` marked.

    ``nomogram`` is the :class:`~sinusapp.nomogram.Nomogram` that scored ``result`` (the
    patient's values are re-scored to place the marks) or a ready
    :class:`~sinusapp.nomogram.NomogramLayout` (e.g. the one on screen). Both are checked
    against the result, so the printed nomogram cannot disagree with the printed numbers.

    Raises
    ------
    ValueError
        The nomogram (or layout) does not give the result's probability: it is not the one
        that produced this analysis.
    """
    if isinstance(nomogram, NomogramLayout):
        layout = nomogram
        prob = layout.probability
    else:
        values: dict[str, Any] = {}
        for name in nomogram.factor_names:
            if name == "dlr_score":
                values[name] = float(result.dlr_score)
            elif name in result.clinical_inputs:
                values[name] = result.clinical_inputs[name]
            else:
                raise ValueError(
                    f"the nomogram needs factor {name!r}, which this analysis does not have"
                )
        prediction = nomogram.predict(**values)
        layout = build_layout(nomogram, prediction=prediction)
        prob = prediction.probability
    if prob is None or not math.isclose(float(prob), float(result.probability), abs_tol=1e-6):
        raise ValueError(
            f"the nomogram gives a probability of {prob} for this patient, the analysis "
            f"{result.probability}: pass the nomogram that produced the result"
        )
    return layout


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def _pct(p: float, *, unit: bool = True) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    v = 100.0 * p
    if v >= 99.5:  # a logistic model never gives certainty: "100 %" would claim it
        text = ">99"
    elif 0 < v < 0.05:
        text = "<0.1"
    else:
        text = f"{v:.0f}" if v >= 10 or v == 0 else f"{v:.1f}"
    return f"{text} %" if unit else text


def _person_name(pn: str) -> str:
    """DICOM PN ``Family^Given^Middle^Prefix^Suffix`` → ``"FAMILY, Given Middle"``."""
    if not pn:
        return "—"
    parts = [p.strip() for p in str(pn).split("=")[0].split("^")]
    family = parts[0] if parts else ""
    given = " ".join(p for p in parts[1:3] if p)
    if family and given:
        return f"{family.upper()}, {given}"
    return (family or given).strip() or "—"


def _dicom_date(value: str) -> str:
    """``YYYYMMDD`` → ``YYYY-MM-DD`` (anything else is shown as it is)."""
    v = (value or "").strip()
    if len(v) == 8 and v.isdigit():
        return f"{v[:4]}-{v[4:6]}-{v[6:]}"
    return v or "—"


def _sex(value: str) -> str:
    return {"M": "male", "F": "female", "O": "other"}.get((value or "").upper(), value or "—")


def _display_datetime(iso: str) -> str:
    """``2026-11-27T09:12:03+01:00`` → ``2026-11-27 09:12 (UTC+01:00)``."""
    try:
        t = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso or "—"
    text = t.strftime("%Y-%m-%d %H:%M")
    if t.tzinfo is not None:
        off = t.strftime("%z")
        text += f" (UTC{off[:3]}:{off[3:]})"
    return text


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "—"
        if v == round(v) and abs(v) < 1e6:
            return str(round(v))
        return f"{v:.4g}"
    if value is None or value == "":
        return "—"
    return str(value)


def _clinical_rows(
    inputs: Mapping[str, Any], points: Mapping[str, float], dlr_score: float
) -> tuple[ClinicalRow, ...]:
    rows: list[ClinicalRow] = []
    if "dlr_score" in points:
        rows.append(
            ClinicalRow(
                "dlr_score",
                "DLR-score (from CT)",
                f"{dlr_score:.3f}",
                "",
                float(points["dlr_score"]),
            )
        )
    entered_unit = str(inputs.get("eosinophil_unit", "") or "")
    for key, value in inputs.items():
        if key == "dlr_score":
            continue
        if "eosinophils_per_ul" in inputs and key in ("eosinophils", "eosinophil_unit"):
            continue  # shown once, in cells/µL, with the value as entered (below)
        label, unit = _CLINICAL_LABELS.get(key, ("", ""))
        if not label:
            label = key.replace("_", " ").capitalize()
            for suffix, u in _UNIT_SUFFIXES:
                if key.endswith(suffix):
                    label = key[: -len(suffix)].replace("_", " ").capitalize()
                    unit = u
                    break
        if key in ("asthma", "allergic_rhinitis") and isinstance(value, (int, float)):
            value = bool(value)
        pts = points.get(key)
        text = _format_value(value)
        if key == "eosinophils_per_ul" and entered_unit == "1e9_per_l" and "eosinophils" in inputs:
            text += f" (entered as {_format_value(inputs['eosinophils'])} ×10⁹/L)"
        rows.append(ClinicalRow(key, label, text, unit, None if pts is None else float(pts)))
    return tuple(rows)


def _sinus_label(name: str) -> str:
    key = name.lower()
    side = ""
    for suffix, s in (("_left", "left"), ("_right", "right"), ("_l", "left"), ("_r", "right")):
        if key.endswith(suffix):
            key, side = key[: -len(suffix)], s
            break
    for prefix, s in (("left_", "left"), ("right_", "right")):
        if key.startswith(prefix):
            key, side = key[len(prefix) :], s
            break
    base = _SINUS_LABELS.get(key, key.replace("_", " ").capitalize())
    return f"{base}, {side}" if side else base


def _lm_grade(pct: float | None) -> int | None:
    """Lund–Mackay grade from % opacification: 0 clear (< 5 %), 2 complete (≥ 95 %), else 1."""
    if pct is None or not math.isfinite(pct):
        return None
    if pct < 5.0:
        return 0
    if pct >= 95.0:
        return 2
    return 1


def _opt_float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


#: How the sinus regions behind the per-sinus figures were obtained (AnalysisResult field).
_LABEL_SOURCE_NOTES = {
    "automatic": "Sinus regions were outlined automatically (approximate: check them against "
    "the images; a fully opacified ethmoid may read 85–95 %).",
    "given": "Sinus regions from a supplied label map.",
    "predictor": "Sinus regions from the model.",
    "model": "Maxillary sinuses and nasal cavity outlined by the model's sinus head (trained "
    "on real labelled CT); the other sinuses could not be outlined.",
    "model, every sinus": "Every sinus outlined by the model's sinus head (maxillary "
    "sinuses and nasal cavity learned from real labelled CT; ethmoid, frontal and sphenoid "
    "cells from the head cases named in its model card: check them against the images).",
    "model + automatic": "Maxillary sinuses and nasal cavity outlined by the model's sinus "
    "head (trained on real labelled CT); ethmoid, frontal and sphenoid sinuses by a rule-based "
    "outline (approximate: check them against the images).",
    "model + anchored": "Maxillary sinuses and nasal cavity outlined by the model's sinus "
    "head (trained on real labelled CT); ethmoid, frontal and sphenoid sinuses as the aerated "
    "cells above and behind them (a rule-based outline placed by the model's; a cell "
    "opacified throughout is not found: check them against the images).",
}


def _sinus_rows(per_sinus: Mapping[str, Mapping[str, float]] | None) -> tuple[SinusRow, ...]:
    rows = []
    for name, vals in (per_sinus or {}).items():
        pct = _opt_float(vals.get("opacification_pct"))
        given = vals.get("lund_mackay")
        lm = int(given) if given is not None else _lm_grade(pct)
        rows.append(
            SinusRow(
                name=name,
                label=_sinus_label(name),
                volume_ml=_opt_float(vals.get("volume_ml")),
                opacified_ml=_opt_float(vals.get("opacified_ml")),
                opacification_pct=pct,
                lund_mackay=lm,
                lund_mackay_derived=given is None,
            )
        )
    return tuple(rows)


def _lund_mackay_total(rows: Sequence[SinusRow]) -> tuple[int | None, int | None, str]:
    graded = [r for r in rows if r.lund_mackay is not None]
    if not graded:
        return None, None, ""
    total = sum(int(r.lund_mackay or 0) for r in graded)
    derived = any(r.lund_mackay_derived for r in graded)
    has_omc = any("omc" in r.name.lower() or "ostiomeatal" in r.name.lower() for r in graded)
    note = (
        f"Sum over the {len(graded)} regions graded"
        + ("" if has_omc else "; ostiomeatal complexes not assessed")
        + (
            "; grades derived from % opacification (< 5 % → 0, ≥ 95 % → 2, else 1)"
            if derived
            else ""
        )
        + "."
    )
    return total, 2 * len(graded), note


def _default_model_card(model: Any, nomogram_version: str) -> tuple[LabelValue, ...]:
    if model is None:
        return (LabelValue("Model", "not recorded"),)
    rows = [
        LabelValue("Model", f"{model.name} {model.version}"),
        LabelValue("Weights sha256", model.sha256 or "—"),
        LabelValue(
            "Method",
            "Multi-task 3D U-Net: lesion segmentation and deep-learning radiomic score "
            "(DLR-score), combined with asthma, allergic rhinitis and blood eosinophils in a "
            "logistic-regression nomogram (He et al., iScience 2023).",
        ),
        LabelValue(
            "Training data",
            "Synthetic disease, clinical factors and outcomes (bundled model: placed on real "
            "sinus CT anatomy, NasalSeg crops and two whole heads; no patient outcomes)"
            if model.trained_on_synthetic
            else "Clinical data (see the model bundle's MODEL_CARD.md)",
        ),
        LabelValue(
            "Validation status",
            "Not validated for clinical use"
            if model.trained_on_synthetic
            else "See the model bundle's MODEL_CARD.md",
        ),
    ]
    if nomogram_version:
        rows.append(LabelValue("Nomogram", nomogram_version))
    return tuple(rows)


def severity_rank(f: Finding) -> int:
    """Sort key: errors first, then warnings, then info."""
    return {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}.get(f.severity, 3)
