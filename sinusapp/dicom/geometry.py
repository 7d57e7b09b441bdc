"""Geometry assessment of a series: can its frames be stacked into a correct 3-D volume?

Slices are ordered by their position along the slice normal (never by InstanceNumber or file
name). Problems are returned as structured :class:`~sinusapp.findings.Finding` objects with the
measured value. As in 3D Slicer's DICOM scalar volume plugin, spacing irregularities are judged
with two tolerances: below ``EPSILON_MM`` they are numerical noise; between that and
``SIGNIFICANT_FRACTION`` of the spacing they are noted (info); above, the slices are irregular
and the volume is resampled onto a regular grid (warning).

Headers are validated, not trusted: a series whose slices belong to more than one patient,
study or frame of reference, whose ImageOrientationPatient is zero, degenerate or not
orthogonal, whose PixelSpacing is missing, non-positive or differs between slices, whose
RescaleSlope / RescaleIntercept is not a plausible CT value, whose slices are more than
``MAX_SLICE_SPACING_MM`` apart or have a gap longer than ``MAX_GAP_MM`` is refused with an
error finding that names the value (``scan`` lists it; ``load_volume`` raises it).

Orientation trap: ImageOrientationPatient is (row cosines, column cosines) = (direction in
which the column index grows, direction in which the row index grows); PixelSpacing is
(row spacing, column spacing) = (distance between rows, distance between columns).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from sinusapp.dicom.headers import FrameGeometry, InstanceHeader
from sinusapp.findings import Finding, Severity

__all__ = [
    "EPSILON_MM",
    "SIGNIFICANT_FRACTION",
    "FrameRef",
    "GeometryAssessment",
    "assess_geometry",
    "frames_of",
]

EPSILON_MM = 1e-2
SIGNIFICANT_FRACTION = 0.05
ORIENTATION_TOL = 1e-3
TILT_TOL_DEG = 0.5
MIN_SLICES_FOR_SINUS = 20
#: Slices further apart than this cannot show the sinuses (thin CT is 0.5-3 mm).
MAX_SLICE_SPACING_MM = 10.0
#: A run of missing slices longer than this (and than ``MAX_GAP_SPACINGS`` × the spacing) is
#: not interpolated: it would invent anatomy.
MAX_GAP_MM = 5.0
MAX_GAP_SPACINGS = 2.5
#: Cosines whose norm is off by more than this are not unit vectors (a damaged header).
UNIT_TOL = 0.02
#: |row · column| above this: the axes are not orthogonal.
ORTHOGONAL_TOL = 0.01
#: Plausible CT RescaleSlope magnitudes and |RescaleIntercept| (HU).
RESCALE_SLOPE_RANGE = (1e-3, 1e3)
MAX_ABS_INTERCEPT = 1e5
#: PixelSpacing values closer than this (relative) are the same spacing written differently.
PIXEL_SPACING_REL_TOL = 1e-3


@dataclass(frozen=True, slots=True)
class FrameRef:
    """One 2-D frame of a series: which file, which frame in it, and its geometry."""

    header: InstanceHeader
    frame_index: int
    geometry: FrameGeometry


def frames_of(headers: list[InstanceHeader]) -> list[FrameRef]:
    """Expand instances into frames (a multi-frame file contributes one ref per frame)."""
    out: list[FrameRef] = []
    for h in headers:
        for k, g in enumerate(h.frames or ()):
            out.append(FrameRef(h, k, g))
    return out


@dataclass
class GeometryAssessment:
    """Result of :func:`assess_geometry`.

    ``frames`` are in volume order (along the slice normal), duplicates removed.
    ``positions_mm`` are the frames' distances along ``normal`` (ascending). ``usable`` is False
    (with the reason in ``error``) when no volume can be built.
    """

    frames: list[FrameRef] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    usable: bool = True
    error: str = ""
    row_cosines: np.ndarray | None = None
    column_cosines: np.ndarray | None = None
    normal: np.ndarray | None = None
    pixel_spacing: tuple[float, float] | None = None
    positions_mm: np.ndarray | None = None
    spacing_mm: float | None = None
    tilt_deg: float = 0.0
    regular: bool = True

    def fail(self, code: str, message: str, value: float | None = None, unit: str = "") -> None:
        self.usable = False
        self.error = message
        self.findings.append(Finding(code, Severity.ERROR, message, value, unit))

    def note(
        self,
        code: str,
        severity: Severity,
        message: str,
        value: float | None = None,
        unit: str = "",
    ) -> None:
        self.findings.append(Finding(code, severity, message, value, unit))


def _orientation_key(o: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(v, 3) for v in o)


def _identity_ok(a: GeometryAssessment, frames: list[FrameRef]) -> bool:
    """One series is one patient, one study, one frame of reference."""
    for attr, code, what in (
        ("patient_id", "mixed_patients", "patients (PatientID)"),
        ("study_uid", "mixed_studies", "studies (StudyInstanceUID)"),
        ("frame_of_reference_uid", "mixed_frame_of_reference", "frames of reference"),
    ):
        values = Counter(getattr(f.header, attr) for f in frames)
        if len(values) > 1:
            desc = ", ".join(f"{v or '(empty)'} ({n} slices)" for v, n in values.most_common(4))
            a.fail(
                code,
                f"the series mixes {len(values)} {what}: {desc}; one series must be one "
                "patient's acquisition",
                float(len(values)),
                "",
            )
            return False
    return True


def _values_ok(a: GeometryAssessment, frames: list[FrameRef]) -> bool:
    """Orientation, PixelSpacing and rescale values are plausible on every frame."""
    for f in frames:
        g = f.geometry
        name = os.path.basename(f.header.path)
        o = np.asarray(g.orientation, float)
        row, col = o[:3], o[3:]
        nr, nc = float(np.linalg.norm(row)), float(np.linalg.norm(col))
        if not np.all(np.isfinite(o)) or abs(nr - 1) > UNIT_TOL or abs(nc - 1) > UNIT_TOL:
            a.fail(
                "invalid_orientation",
                f"ImageOrientationPatient {list(g.orientation or ())} of {name} is not two unit "
                f"vectors (lengths {nr:.3g} and {nc:.3g})",
            )
            return False
        dot = float(row @ col) / (nr * nc)
        if abs(dot) > ORTHOGONAL_TOL:
            a.fail(
                "nonorthogonal_orientation",
                f"ImageOrientationPatient of {name} has row and column directions that are not "
                f"perpendicular (angle {np.degrees(np.arccos(np.clip(dot, -1, 1))):.1f}°)",
                float(np.degrees(np.arccos(np.clip(dot, -1, 1)))),
                "deg",
            )
            return False
        ps = g.pixel_spacing
        if ps is not None and not all(math.isfinite(v) and v > 0 for v in ps):
            a.fail(
                "invalid_pixel_spacing",
                f"PixelSpacing {list(ps)} of {name} is not two positive distances (mm); a "
                "negative value would mirror the image",
                float(min(ps)),
                "mm",
            )
            return False
        slope, icpt = g.rescale_slope, g.rescale_intercept
        lo, hi = RESCALE_SLOPE_RANGE
        if not (math.isfinite(slope) and lo <= slope <= hi):
            a.fail(
                "invalid_rescale_slope",
                f"RescaleSlope {slope!r} of {name} is not a CT value (expected {lo:g} to {hi:g}, "
                "usually 1)",
                slope if math.isfinite(slope) else None,
                "",
            )
            return False
        if not (math.isfinite(icpt) and abs(icpt) <= MAX_ABS_INTERCEPT):
            a.fail(
                "invalid_rescale_intercept",
                f"RescaleIntercept {icpt!r} of {name} is not a CT value (usually 0 or -1024)",
                icpt if math.isfinite(icpt) else None,
                "HU",
            )
            return False
    return True


def assess_geometry(frames: list[FrameRef]) -> GeometryAssessment:
    """Check the frames of one series and order them along the slice normal."""
    a = GeometryAssessment()
    if not frames:
        a.fail("no_slices", "the series has no image frames")
        return a
    # Matrix size
    sizes = Counter((f.header.rows, f.header.columns) for f in frames)
    if len(sizes) > 1:
        desc = ", ".join(f"{r}×{c} ({n})" for (r, c), n in sizes.most_common())
        a.fail("mixed_matrix_size", f"images of different matrix sizes in one series: {desc}")
        return a
    # Colour / non-greyscale images
    if any(f.header.samples_per_pixel != 1 for f in frames):
        a.fail("not_greyscale", "colour images (e.g. report pages or screenshots), not CT slices")
        return a
    missing_geo = [
        f for f in frames if f.geometry.position is None or f.geometry.orientation is None
    ]
    if missing_geo:
        a.fail(
            "no_geometry",
            f"{len(missing_geo)} of {len(frames)} frames lack ImagePositionPatient / "
            "ImageOrientationPatient, so they cannot be placed in 3-D",
        )
        return a
    if not _identity_ok(a, frames) or not _values_ok(a, frames):
        return a
    # Orientation
    orients = Counter(_orientation_key(f.geometry.orientation) for f in frames)  # type: ignore[arg-type]
    if len(orients) > 1:
        ref = np.array(orients.most_common(1)[0][0])
        worst = max(float(np.max(np.abs(np.array(o) - ref))) for o in orients)
        if worst > 0.01:
            a.fail(
                "mixed_orientation",
                f"slices with {len(orients)} different orientations in one series "
                f"(largest cosine difference {worst:.3f})",
                worst,
                "",
            )
            return a
    o = np.array(frames[0].geometry.orientation, float)
    row_c, col_c = o[:3], o[3:]
    row_c = row_c / np.linalg.norm(row_c)
    col_c = col_c / np.linalg.norm(col_c)
    normal = np.cross(row_c, col_c)
    normal /= np.linalg.norm(normal)
    a.row_cosines, a.column_cosines, a.normal = row_c, col_c, normal
    spacings = Counter(f.geometry.pixel_spacing for f in frames)
    ps = spacings.most_common(1)[0][0]
    if ps is None or any(v is None for v in spacings):
        n_none = sum(n for v, n in spacings.items() if v is None)
        a.fail(
            "no_pixel_spacing",
            f"PixelSpacing is missing on {n_none} of {len(frames)} slices, so distances "
            "cannot be measured",
            float(n_none),
            "slices",
        )
        return a
    if len(spacings) > 1:
        worst = max(
            max(abs(v[0] - ps[0]) / ps[0], abs(v[1] - ps[1]) / ps[1])
            for v in spacings  # type: ignore[index]
        )
        desc = ", ".join(
            f"{v[0]:.4g} × {v[1]:.4g} mm ({n} slices)"  # type: ignore[index]
            for v, n in spacings.most_common(4)
        )
        if worst > PIXEL_SPACING_REL_TOL:
            a.fail(
                "mixed_pixel_spacing",
                f"slices with {len(spacings)} different PixelSpacing values in one series "
                f"({desc}): they cannot be stacked into one volume",
                worst,
                "",
            )
            return a
        a.note(
            "pixel_spacing_rounding",
            Severity.INFO,
            f"PixelSpacing written with {len(spacings)} roundings ({desc}); "
            f"using {ps[0]:.6g} × {ps[1]:.6g} mm",
        )
    a.pixel_spacing = (float(ps[0]), float(ps[1]))
    # Order along the normal
    pos = np.array([f.geometry.position for f in frames], float)
    d = pos @ normal
    order = np.argsort(d, kind="stable")
    frames_sorted = [frames[i] for i in order]
    d = d[order]
    pos = pos[order]
    # Duplicates (same position)
    keep = [0]
    dup = 0
    for i in range(1, len(d)):
        if abs(d[i] - d[keep[-1]]) < EPSILON_MM:
            dup += 1
            # keep the earlier acquisition / lower instance number
            cur, prev = frames_sorted[i].header, frames_sorted[keep[-1]].header
            if (cur.acquisition_number or 0, cur.instance_number or 0) < (
                prev.acquisition_number or 0,
                prev.instance_number or 0,
            ):
                keep[-1] = i
        else:
            keep.append(i)
    acquisitions = {
        f.header.acquisition_number for f in frames if f.header.acquisition_number is not None
    }
    if dup:
        a.note(
            "duplicate_positions",
            Severity.WARNING,
            f"{dup} slice(s) share a position with another slice; one per position is kept",
            float(dup),
            "slices",
        )
    if len(acquisitions) > 1 and dup:
        a.note(
            "multiple_acquisitions",
            Severity.WARNING,
            f"the series mixes {len(acquisitions)} acquisitions (AcquisitionNumber "
            f"{', '.join(str(x) for x in sorted(acquisitions))}); "
            "check that the right one is analysed",
            float(len(acquisitions)),
            "acquisitions",
        )
    frames_sorted = [frames_sorted[i] for i in keep]
    d = d[keep]
    pos = pos[keep]
    a.frames = frames_sorted
    a.positions_mm = d
    n = len(frames_sorted)
    if n == 1:
        a.fail(
            "single_slice",
            "the series has a single slice; a 3-D CT of the sinuses is needed",
            1.0,
            "slices",
        )
        return a
    if n < MIN_SLICES_FOR_SINUS:
        a.note(
            "too_few_slices",
            Severity.WARNING,
            f"only {n} slices: the sinuses are probably not fully covered",
            float(n),
            "slices",
        )
    # Tilt: direction from slice to slice vs. the normal
    step = pos[-1] - pos[0]
    step_dir = step / np.linalg.norm(step)
    cosang = float(np.clip(abs(step_dir @ normal), -1.0, 1.0))
    tilt = math.degrees(math.acos(cosang))
    a.tilt_deg = tilt
    tag_tilts = {f.header.gantry_tilt_deg for f in frames if f.header.gantry_tilt_deg}
    if tilt > TILT_TOL_DEG:
        tag = (
            f" (GantryDetectorTilt tag: {', '.join(f'{t:g}' for t in sorted(tag_tilts))}°)"
            if tag_tilts
            else ""
        )
        a.note(
            "gantry_tilt",
            Severity.WARNING,
            f"gantry tilt of {tilt:.1f}° measured from slice positions{tag}; "
            "the volume is resampled onto an orthogonal grid",
            tilt,
            "deg",
        )
        a.regular = False
    elif tag_tilts and max(abs(t) for t in tag_tilts) > TILT_TOL_DEG:
        a.note(
            "gantry_tilt_tag",
            Severity.INFO,
            f"GantryDetectorTilt is {max(tag_tilts, key=abs):g}° but the slice positions show no "
            "shear (already corrected by the scanner)",
            max(tag_tilts, key=abs),
            "deg",
        )
    # Spacing along the normal
    gaps = np.diff(d)
    med = float(np.median(gaps))
    a.spacing_mm = med
    if med > MAX_SLICE_SPACING_MM:
        a.fail(
            "slice_spacing_too_large",
            f"the slices are {med:.1f} mm apart (median); a sinus CT needs slices at most "
            f"{MAX_SLICE_SPACING_MM:g} mm apart",
            med,
            "mm",
        )
        return a
    widest = int(np.argmax(gaps))
    max_gap = float(gaps[widest])
    if max_gap > max(MAX_GAP_MM, MAX_GAP_SPACINGS * med):
        a.fail(
            "gap_too_long",
            f"a run of missing slices leaves a gap of {max_gap:.1f} mm (at "
            f"{d[widest]:.1f}–{d[widest + 1]:.1f} mm, slice spacing {med:.2f} mm): too long to "
            f"interpolate (at most {max(MAX_GAP_MM, MAX_GAP_SPACINGS * med):.1f} mm)",
            max_gap,
            "mm",
        )
        return a
    dev = np.abs(gaps - med)
    worst = float(dev.max())
    if worst > max(EPSILON_MM, SIGNIFICANT_FRACTION * med):
        ratio = gaps / med
        multiples = np.round(ratio)
        missing_like = (multiples >= 2) & (np.abs(ratio - multiples) < 0.1)
        irregular = (~missing_like) & (dev > max(EPSILON_MM, SIGNIFICANT_FRACTION * med))
        if missing_like.any():
            n_missing = int(np.sum(multiples[missing_like] - 1))
            where = ", ".join(
                f"{d[i]:.1f}–{d[i + 1]:.1f} mm" for i in np.flatnonzero(missing_like)[:5]
            )
            a.note(
                "missing_slices",
                Severity.WARNING,
                f"{n_missing} slice(s) missing (gap at {where}, spacing {med:.2f} mm); the gap "
                "is interpolated",
                float(n_missing),
                "slices",
            )
        if irregular.any():
            a.note(
                "nonuniform_spacing",
                Severity.WARNING,
                f"slice spacing varies from {gaps.min():.3f} to {gaps.max():.3f} mm "
                f"(largest deviation {worst:.3f} mm from the median {med:.3f} mm); "
                "the volume is resampled onto a regular grid",
                worst,
                "mm",
            )
        a.regular = False
    elif worst > EPSILON_MM:
        a.note(
            "spacing_jitter",
            Severity.INFO,
            f"slice spacing deviates by up to {worst:.3f} mm (below {SIGNIFICANT_FRACTION:.0%} of "
            f"{med:.3f} mm): treated as regular",
            worst,
            "mm",
        )
    thick = {
        round(f.geometry.slice_thickness, 3) for f in frames_sorted if f.geometry.slice_thickness
    }
    if len(thick) > 1:
        a.note(
            "mixed_slice_thickness",
            Severity.INFO,
            "slice thickness varies within the series: "
            f"{', '.join(f'{t:g}' for t in sorted(thick))} mm",
        )
    return a
