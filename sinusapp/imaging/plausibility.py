"""Input plausibility gate: is this CT one the analysis can give a trustworthy number for?

Every check returns :class:`~sinusapp.findings.Finding` objects with the measured value, so
the pipeline, the GUI, the report and ``result.json`` show the same thing. ``error`` findings
stop the analysis (:func:`raise_if_severe` → :class:`~sinusapp.errors.InputQualityError`);
``warning`` findings are shown prominently next to the result; ``info`` findings record a
measurement that passed or could not be made.

The checks, in the order :func:`sinusapp.pipeline.analyse` runs them:

Before the model (:func:`check_acquisition`, header + image only, no region needed)
    * ``not_ct`` — the series' modality is not CT (error).
    * ``air_calibration`` — the mode of the air voxels (fill values of the reconstruction
      circle excluded) is not near −1000 HU (warning beyond ±60 HU, error beyond ±150 HU):
      the HU thresholds of the locator, the model's HU window and the sinus labelling all
      assume a calibrated scanner.
    * ``thick_slices`` — slice thickness (or slice spacing, when larger) above 2.5 mm
      (warning): thin mucosa and ostia are lost; the paper used 1 mm.
    * ``soft_kernel`` — ConvolutionKernel names a soft-tissue reconstruction (warning). When
      the header is silent, the image's edge width at strong bone/air edges is measured
      (``edge_width``, reported as info); a warning only above 2.6 mm. The measure is weak:
      the real training backgrounds (NasalSeg crops) measure 1.9–2.1 mm, while the
      soft-kernel series GE STD+ and Philips UB measure 1.5 and 1.7 mm (their pixels are
      finer), and the demo (bone kernel) 0.9 mm; it only catches a strongly smoothed image
      (a Gaussian blur of σ = 3 pixels on the demo gives 2.8 mm). The header is the
      reliable signal.

After the model located the sinus region (``region_center_lps`` of the prediction)
    * ``coverage`` — the CT ends less than 20 mm below or 15 mm above the region centre
      (warning): the maxillary floors or the frontal sinuses are cut off (e.g. a brain
      protocol that stops above the maxillary sinuses).
    * ``not_head_sized`` — the body outline at the region's level lies wholly inside the
      field of view and is narrower than 100 mm or wider than 230 mm (warning).
    * ``unlike_training`` — the intensity statistics of the model's input region (a
      96 × 128 × 128 mm box, S-I × A-P × L-R, on the region centre) are outside the range
      measured on the training backgrounds (see :data:`TRAINING_RANGES`) (warning).
    * ``lesion_outside_region`` / ``lesion_outside_cavities`` — more than 25 % of the
      predicted lesion lies outside the sinonasal box, or outside the cavities (holes of the
      bone in a coronal or axial plane, or within 3 mm of enclosed air) (warning).

In the browser, before a series is loaded (:func:`check_series_header`)
    * ``not_ct``, ``thick_slices``, ``soft_kernel`` from the catalogue's header summary.

A CT in which no sinus cavity is found at all (chest, abdomen, brain-only slab) is refused
by the locator with :class:`~sinusapp.errors.NotSinusCTError`; :func:`not_sinus_finding`
turns that into the ``no_sinus_cavity`` error finding.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage

from sinusapp.errors import InputQualityError, NotSinusCTError
from sinusapp.findings import Finding, Severity
from sinusapp.imaging.volume import Volume

__all__ = [
    "TRAINING_RANGES",
    "check_acquisition",
    "check_lesion",
    "check_region",
    "check_series_header",
    "classify_kernel",
    "measure_air_hu",
    "measure_edge_width_mm",
    "not_sinus_finding",
    "raise_if_severe",
]

log = logging.getLogger(__name__)

AIR_EXPECTED_HU = -1000.0
AIR_WARN_HU = 60.0
AIR_ERROR_HU = 150.0
#: Share of the air-range voxels that must lie within ±50 HU of their mode (a real air peak).
AIR_PEAK_SHARE = 0.3
THICK_SLICE_MM = 2.5
EDGE_WIDTH_WARN_MM = 2.6
COVERAGE_BELOW_MM = 20.0
COVERAGE_ABOVE_MM = 15.0
HEAD_WIDTH_MM = (100.0, 230.0)
LESION_OUTSIDE_FRACTION = 0.25
#: Half-size (S-I, A-P, L-R) in mm of the sinonasal box around the region centre.
SINONASAL_HALF_MM = (50.0, 60.0, 50.0)
#: Half-size (S-I, A-P, L-R) in mm of the box whose statistics are compared with training.
MODEL_INPUT_HALF_MM = (48.0, 64.0, 64.0)
_COARSE_MM = 2.0
_EDGE_PX = 8
_CAVITY_NEAR_AIR_MM = 3.0

#: Ranges of the model-input box statistics accepted as "like the training data".
#: Measured with :func:`_box_statistics` on 20 NasalSeg crops (every 4th of P002-P111, the
#: real backgrounds of the training cohort): air 0.21-0.39, soft tissue 0.49-0.66, bone
#: 0.11-0.22, soft-tissue median 29-46 HU; the demo study (a procedural phantom) 0.30 / 0.58 /
#: 0.12 / 27 HU, the Visible Human head 0.24 / 0.66 / 0.10 / 41 HU. These backgrounds are
#: healthy: disease replaces air by soft tissue (a completely opacified pansinusitis leaves
#: little air), so the air / soft-tissue bounds are widened far on that side. Keys: fraction
#: of the box's in-field voxels that are air (< −400 HU), soft tissue (−400…300 HU) and bone
#: (> 300 HU), and the median HU of the soft-tissue voxels.
TRAINING_RANGES: dict[str, tuple[float, float]] = {
    "air_fraction": (0.03, 0.55),
    "soft_fraction": (0.35, 0.90),
    "bone_fraction": (0.04, 0.30),
    "soft_median_hu": (10.0, 70.0),
}

_WHAT_TO_DO_CT = (
    "Choose the patient's thin-slice (≤ 1.25 mm) axial sinus CT in a bone kernel, covering "
    "the palate to the top of the frontal sinus."
)


# --------------------------------------------------------------------------------------------
# Before the model


def measure_air_hu(volume: Volume) -> float | None:
    """The HU of air in this CT: the mode of the voxels between −2500 and −200 HU.

    The value outside the reconstruction circle (a fill value well below −1000 HU that is the
    array's minimum, e.g. −1200, −1500, −2048, −3024) is excluded first. Returns ``None``
    when fewer than 0.2 % of the voxels are in that range, or when they form no distinct peak
    (less than :data:`AIR_PEAK_SHARE` of them within ±50 HU of the mode; air in a CT is
    always such a peak, noise or random test data are not).
    """
    a = _subsample(volume.array, 4_000_000)
    amin = int(a.min())
    keep = (a > -2500) & (a < -200)
    if amin < AIR_EXPECTED_HU - 50 and np.count_nonzero(a == amin) > 0.005 * a.size:
        keep &= a != amin
    vals = a[keep]
    if vals.size < 0.002 * a.size or vals.size < 100:
        return None
    hist, edges = np.histogram(vals, bins=np.arange(-2500, -190, 10))
    smooth = np.convolve(hist, np.ones(5) / 5.0, mode="same")
    i = int(np.argmax(smooth))
    mode = float(0.5 * (edges[i] + edges[i + 1]))
    share = np.count_nonzero(np.abs(vals - mode) <= 50) / vals.size
    if share < AIR_PEAK_SHARE:
        log.debug(
            "no distinct air peak (%.0f %% of the air-range voxels at %.0f HU)", 100 * share, mode
        )
        return None
    return mode


def classify_kernel(kernel: str) -> str:
    """``"sharp"``, ``"soft"`` or ``""`` (unknown) for a DICOM ConvolutionKernel value.

    Vendor conventions: GE STANDARD / SOFT / STD+ (soft) vs BONE / BONEPLUS / EDGE / LUNG /
    DETAIL (sharp); Siemens B/H/J/Br/Hr/Qr/Ur + number (< 40 soft, 40–59 medium: unknown,
    ≥ 60 sharp); Philips A, B, C, UA, UB, UC (soft) vs D, E, L, YA, YB, YC, Y-Sharp (sharp);
    Canon/Toshiba FC01–FC29 (soft) vs FC30–FC39, FC50–FC59, FC80–FC89 (sharp). Unlisted names
    give ``""``. (FilterType, 0018,1160, names the X-ray beam filter, not the reconstruction,
    so it is not used.)
    """
    k = kernel.upper().replace(" ", "").replace("\\", "")
    if not k:
        return ""
    if any(w in k for w in ("BONE", "EDGE", "LUNG", "DETAIL", "SHARP", "ULTRA")):
        return "sharp"
    if any(k.startswith(w) for w in ("STANDARD", "STD", "SOFT", "SMOOTH", "BRAIN")):
        return "soft"
    m = re.fullmatch(r"(?:[BHJUQ]R?|[BHJ])(\d{2})[A-Z0-9]*", k)
    if m:
        n = int(m.group(1))
        return "soft" if n < 40 else ("sharp" if n >= 60 else "")
    m = re.fullmatch(r"FC(\d{2})", k)
    if m:
        n = int(m.group(1))
        if n < 30:
            return "soft"
        if 30 <= n < 40 or 50 <= n < 60 or 80 <= n < 90:
            return "sharp"
        return ""
    if k in ("A", "B", "C", "UA", "UB", "UC", "CB"):
        return "soft"
    if k in ("D", "E", "L", "YA", "YB", "YC", "YD", "YE", "YF"):
        return "sharp"
    return ""


def measure_edge_width_mm(volume: Volume) -> float | None:
    """Effective width (mm) of strong edges (> 800 HU steps over 8 pixels) along rows.

    Step height divided by the steepest one-pixel gradient across it, times the pixel size:
    one pixel for an ideally sharp edge, more for a smoothing (soft-tissue) kernel. Measured
    on up to 8 axial slices in the middle 60 % of the series; ``None`` when no strong edges.
    """
    a = volume.array
    n = a.shape[0]
    idx = np.unique(np.linspace(0.2 * (n - 1), 0.8 * (n - 1), min(8, n)).round().astype(int))
    widths = []
    for k in idx:
        s = a[k].astype(np.float32)
        if s.shape[1] < 2 * _EDGE_PX:
            continue
        grad = np.abs(np.diff(s, axis=1))
        step = np.abs(s[:, _EDGE_PX:] - s[:, :-_EDGE_PX])
        # steepest one-pixel gradient within each window of _EDGE_PX pixels
        steepest = ndimage.maximum_filter1d(grad, _EDGE_PX, origin=-(_EDGE_PX // 2), axis=1)
        steepest = steepest[:, : step.shape[1]]
        strong = step > 800
        if np.count_nonzero(strong) < 200:
            continue
        ratio = step[strong] / np.maximum(steepest[strong], 1.0)
        widths.append(float(np.median(ratio)) * volume.spacing_mm[2])
    return float(np.median(widths)) if widths else None


def check_acquisition(volume: Volume) -> tuple[Finding, ...]:
    """Checks that need neither the model nor the sinus region (module doc, first group).

    Parameters
    ----------
    volume:
        The CT as loaded.

    Returns
    -------
    tuple of Finding
        ``error`` for a non-CT modality or air far from −1000 HU; ``warning`` for thick
        slices, a soft-tissue kernel or a slightly-off calibration; ``info`` for
        measurements that could not be made.
    """
    out: list[Finding] = []
    info = volume.info
    if info.modality and info.modality.upper() != "CT":
        out.append(_not_ct_finding(info.modality))
    air = measure_air_hu(volume)
    if air is None:
        out.append(
            Finding(
                "air_calibration",
                Severity.INFO,
                "No air was found in the image, so the HU calibration could not be checked.",
            )
        )
    else:
        off = air - AIR_EXPECTED_HU
        if abs(off) > AIR_ERROR_HU:
            out.append(
                Finding(
                    "air_calibration",
                    Severity.ERROR,
                    f"Air reads {air:.0f} HU in this CT (expected about −1000 HU): the "
                    "scanner's HU calibration is off, so the lesion, bone and air thresholds "
                    "do not apply and no number would be trustworthy. Use a CT from a "
                    "calibrated scanner (check RescaleSlope / RescaleIntercept of the export, "
                    "or ask the CT physicist).",
                    round(air, 1),
                    "HU",
                )
            )
        elif abs(off) > AIR_WARN_HU:
            out.append(
                Finding(
                    "air_calibration",
                    Severity.WARNING,
                    f"Air reads {air:.0f} HU (expected about −1000 HU): the HU calibration "
                    "is slightly off; lesion volumes may be biased.",
                    round(air, 1),
                    "HU",
                )
            )
    thickness = max(float(info.slice_thickness_mm or 0.0), volume.spacing_mm[0])
    if thickness > THICK_SLICE_MM + 0.01:
        out.append(_thick_slices_finding(thickness))
    kernel = (info.convolution_kernel or "").strip()
    kind = classify_kernel(kernel)
    if kind == "soft":
        out.append(_soft_kernel_finding(kernel))
    elif kind == "":
        width = measure_edge_width_mm(volume)
        what = f"ConvolutionKernel {kernel!r}" if kernel else "no ConvolutionKernel"
        if width is None:
            out.append(
                Finding(
                    "edge_width",
                    Severity.INFO,
                    f"The header gives {what} and no strong edges were found to measure the "
                    "image sharpness.",
                )
            )
        else:
            severe = width > EDGE_WIDTH_WARN_MM
            out.append(
                Finding(
                    "edge_width",
                    Severity.WARNING if severe else Severity.INFO,
                    f"The header gives {what}; the measured width of bone edges is "
                    f"{width:.1f} mm"
                    + (
                        f" (above {EDGE_WIDTH_WARN_MM:g} mm: a strongly smoothed, soft-tissue "
                        "reconstruction; use the bone-kernel series if there is one)."
                        if severe
                        else "."
                    ),
                    round(width, 2),
                    "mm",
                )
            )
    return tuple(out)


def _not_ct_finding(modality: str) -> Finding:
    return Finding(
        "not_ct",
        Severity.ERROR,
        f"The series is {modality}, not CT: the analysis needs CT in Hounsfield units. "
        f"{_WHAT_TO_DO_CT}",
    )


def _thick_slices_finding(thickness: float) -> Finding:
    return Finding(
        "thick_slices",
        Severity.WARNING,
        f"Slices are {thickness:.1f} mm thick (thin-slice sinus CT: ≤ 1.25 mm; this "
        f"analysis is not reliable above {THICK_SLICE_MM:g} mm): thin mucosal "
        "thickening and small polyps are averaged away, so the lesion volume and the "
        "risk may be underestimated. Use a thin-slice reconstruction if there is one.",
        round(thickness, 2),
        "mm",
    )


def _soft_kernel_finding(kernel: str) -> Finding:
    return Finding(
        "soft_kernel",
        Severity.WARNING,
        f"The images are reconstructed with a soft-tissue kernel ({kernel}); the model "
        "expects a bone (sharp) kernel, in which thin bony walls and mucosa are "
        "sharper. Use the bone-kernel reconstruction of the same scan if there is one.",
    )


def check_series_header(
    *,
    modality: str,
    slice_thickness_mm: float | None,
    spacing_mm: float | None,
    convolution_kernel: str,
) -> tuple[Finding, ...]:
    """The gate's checks that the catalogue's header summary of a series can answer
    (modality, slice thickness, kernel), before anything is loaded.

    The browser shows them on each series (the surgeon sees "5 mm, soft kernel" before
    opening it); they are the same findings, with the same codes and messages, that
    :func:`check_acquisition` gives once the series is loaded. A series with ``not_ct`` or
    ``thick_slices`` is not a sinus-capable CT: the scan never proposes it (see
    ``sinusapp.dicom.scan.MAX_PROPOSABLE_THICKNESS_MM``), though it can still be opened.
    """
    out: list[Finding] = []
    if modality and modality.upper() != "CT":
        out.append(_not_ct_finding(modality))
    thickness = max(float(slice_thickness_mm or 0.0), float(spacing_mm or 0.0))
    if thickness > THICK_SLICE_MM + 0.01:
        out.append(_thick_slices_finding(thickness))
    kernel = (convolution_kernel or "").strip()
    if classify_kernel(kernel) == "soft":
        out.append(_soft_kernel_finding(kernel))
    return tuple(out)


def not_sinus_finding(exc: NotSinusCTError) -> Finding:
    """The ``no_sinus_cavity`` error finding for a CT the sinus locator refused."""
    return Finding(
        "no_sinus_cavity",
        Severity.ERROR,
        f"No nasal cavity / paranasal sinus region was found: {exc.message} {_WHAT_TO_DO_CT}",
    )


def raise_if_severe(findings: Iterable[Finding], *, what: str = "this CT") -> None:
    """Raise :class:`~sinusapp.errors.InputQualityError` when any finding is an ``error``.

    The message lists the error findings (each with its measured value and what to do); the
    error carries all ``findings`` so a caller can still show the warnings.
    """
    all_findings = tuple(findings)
    severe = [f for f in all_findings if f.severity == Severity.ERROR]
    if not severe:
        return
    raise InputQualityError(
        f"{what} failed the input plausibility check, so no result is given: "
        + " ".join(f"[{f.code}] {f.message}" for f in severe),
        findings=all_findings,
        hint="the analysis was stopped before any number was computed from this input",
    )


# --------------------------------------------------------------------------------------------
# After the region is known


def check_region(volume: Volume, *, region_center_lps: Sequence[float]) -> tuple[Finding, ...]:
    """Coverage, head size and likeness to the training data around the located region.

    Parameters
    ----------
    volume:
        The CT.
    region_center_lps:
        Centre of the located sinus region (LPS mm), as the predictor used it.
    """
    centre = np.asarray(region_center_lps, float).reshape(3)
    out: list[Finding] = []
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float) * (
        np.asarray(volume.shape, float) - 1
    )
    z = volume.index_to_lps(corners)[:, 2]
    below, above = float(centre[2] - z.min()), float(z.max() - centre[2])
    if below < COVERAGE_BELOW_MM:
        out.append(
            Finding(
                "coverage",
                Severity.WARNING,
                f"The CT ends {below:.0f} mm below the centre of the sinus region (a sinus CT "
                f"reaches ≥ {COVERAGE_BELOW_MM:.0f} mm below it, to the hard palate): the "
                "maxillary sinuses are probably cut off (a brain protocol?), so their disease "
                "is missing from the lesion volume and the risk. Use a CT that covers the "
                "palate to the frontal sinus.",
                round(below, 1),
                "mm",
            )
        )
    if above < COVERAGE_ABOVE_MM:
        out.append(
            Finding(
                "coverage",
                Severity.WARNING,
                f"The CT ends {above:.0f} mm above the centre of the sinus region (a sinus CT "
                f"reaches ≥ {COVERAGE_ABOVE_MM:.0f} mm above it): the upper ethmoid and "
                "frontal sinuses are probably cut off. Use a CT that covers the palate to the "
                "frontal sinus.",
                round(above, 1),
                "mm",
            )
        )
    width = _head_width_mm(volume, centre)
    if width is not None and not HEAD_WIDTH_MM[0] <= width <= HEAD_WIDTH_MM[1]:
        out.append(
            Finding(
                "not_head_sized",
                Severity.WARNING,
                f"The body is {width:.0f} mm wide at the level of the sinus region (an adult "
                f"head is {HEAD_WIDTH_MM[0]:.0f}–{HEAD_WIDTH_MM[1]:.0f} mm): this may not be a "
                f"head CT. {_WHAT_TO_DO_CT}",
                round(width, 1),
                "mm",
            )
        )
    stats = _box_statistics(volume, centre, MODEL_INPUT_HALF_MM)
    if stats is None:
        out.append(
            Finding(
                "unlike_training",
                Severity.WARNING,
                "The model's input region lies almost entirely outside the CT's field of view.",
            )
        )
    else:
        off = [
            (k, v, TRAINING_RANGES[k])
            for k, v in stats.items()
            if k in TRAINING_RANGES and not TRAINING_RANGES[k][0] <= v <= TRAINING_RANGES[k][1]
        ]
        for k, v, (lo, hi) in off:
            label = _STAT_LABELS[k]
            shown = f"{v:.0%}" if k.endswith("fraction") else f"{v:.0f} HU"
            rng = f"{lo:.0%}–{hi:.0%}" if k.endswith("fraction") else f"{lo:.0f}–{hi:.0f} HU"
            out.append(
                Finding(
                    "unlike_training",
                    Severity.WARNING,
                    f"The image is unlike the model's training data: {label} in the model's "
                    f"input region is {shown} (training: {rng}). The lesion contour and the "
                    "risk may be wrong; check the contour on every slice.",
                    round(v, 3),
                    "" if k.endswith("fraction") else "HU",
                )
            )
    return tuple(out)


_STAT_LABELS = {
    "air_fraction": "the fraction of air",
    "soft_fraction": "the fraction of soft tissue",
    "bone_fraction": "the fraction of bone",
    "soft_median_hu": "the median soft-tissue HU",
}


def check_lesion(
    volume: Volume, mask: np.ndarray, *, region_center_lps: Sequence[float]
) -> tuple[Finding, ...]:
    """Does the predicted lesion stay in the sinonasal region and its cavities?

    Parameters
    ----------
    volume:
        The CT.
    mask:
        The predicted lesion mask on the CT grid (non-zero = lesion).
    region_center_lps:
        Centre of the located sinus region (LPS mm).

    Returns
    -------
    tuple of Finding
        ``lesion_outside_region`` / ``lesion_outside_cavities`` warnings with the fraction of
        the lesion outside, when above 25 %; nothing for an empty mask.
    """
    m = np.asarray(mask)
    if m.shape != volume.shape:
        raise ValueError(f"lesion mask of shape {m.shape} does not match the CT {volume.shape}")
    lesion_idx = np.argwhere(m)
    if lesion_idx.size == 0:
        return ()
    centre = np.asarray(region_center_lps, float).reshape(3)
    ml_total = lesion_idx.shape[0] * volume.voxel_volume_ml
    # outside the sinonasal box (LPS z, y, x half-sizes)
    lps = volume.index_to_lps(lesion_idx)
    half = np.asarray(SINONASAL_HALF_MM)[::-1]  # x, y, z
    inside_box = np.all(np.abs(lps - centre) <= half, axis=1)
    out: list[Finding] = []
    frac_box = 1.0 - float(inside_box.mean())
    if frac_box > LESION_OUTSIDE_FRACTION:
        out.append(
            Finding(
                "lesion_outside_region",
                Severity.WARNING,
                f"{frac_box:.0%} of the predicted lesion ({ml_total:.1f} mL in all) lies "
                "outside the sinonasal region: the contour has left the sinuses (skull edge, "
                "soft tissue of the face or neck?). Do not rely on the lesion volume or the "
                "risk; check the contour on every slice.",
                round(frac_box, 3),
                "",
            )
        )
    allowed, lo, steps = _cavities(volume, centre)
    if allowed is not None:
        cell = (lesion_idx - lo) // steps
        ok = np.all((cell >= 0) & (cell < np.asarray(allowed.shape)), axis=1)
        in_cav = np.zeros(lesion_idx.shape[0], bool)
        c = cell[ok]
        in_cav[ok] = allowed[c[:, 0], c[:, 1], c[:, 2]]
        frac_cav = 1.0 - float(in_cav.mean())
        if frac_cav > LESION_OUTSIDE_FRACTION:
            out.append(
                Finding(
                    "lesion_outside_cavities",
                    Severity.WARNING,
                    f"{frac_cav:.0%} of the predicted lesion lies outside the air spaces and "
                    "the bone-walled cavities of the nose and sinuses (e.g. in muscle or fat of "
                    "the face): the lesion volume is probably overestimated. Check the contour "
                    "on every slice.",
                    round(frac_cav, 3),
                    "",
                )
            )
    return tuple(out)


# --------------------------------------------------------------------------------------------
# helpers


def _subsample(a: np.ndarray, max_voxels: int) -> np.ndarray:
    """A strided view of ``a`` with at most about ``max_voxels`` voxels."""
    step = max(1, int(np.ceil((a.size / max_voxels) ** (1 / 3))))
    return a[::step, ::step, ::step]


def _index_box(
    volume: Volume, centre: np.ndarray, half_mm_zyx: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Index bounds (lo, hi) and coarse steps of an LPS box around ``centre``; None if empty."""
    half_xyz = np.asarray(half_mm_zyx, float)[::-1]
    corners = (
        np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float) * half_xyz
        + centre
    )
    idx = volume.lps_to_index(corners)
    lo = np.clip(np.floor(idx.min(axis=0)).astype(int), 0, None)
    hi = np.minimum(np.ceil(idx.max(axis=0)).astype(int) + 1, volume.shape)
    steps = np.array([max(1, round(_COARSE_MM / s)) for s in volume.spacing_mm])
    if np.any(hi - lo < 2 * steps):
        return None
    return lo, hi, steps


def _box_statistics(
    volume: Volume, centre: np.ndarray, half_mm_zyx: Sequence[float]
) -> dict[str, float] | None:
    """Fractions of air / soft tissue / bone and the soft-tissue median in a box (in-field)."""
    box = _index_box(volume, centre, half_mm_zyx)
    if box is None:
        return None
    lo, hi, steps = box
    a = volume.array[lo[0] : hi[0] : steps[0], lo[1] : hi[1] : steps[1], lo[2] : hi[2] : steps[2]]
    amin = int(volume.array.min())
    field = a != amin if amin < AIR_EXPECTED_HU - 50 else np.ones(a.shape, bool)
    v = a[field].astype(np.float32)
    if v.size < 1000:
        return None
    air = v < -400
    bone = v > 300
    soft = ~air & ~bone
    return {
        "air_fraction": float(air.mean()),
        "soft_fraction": float(soft.mean()),
        "bone_fraction": float(bone.mean()),
        "soft_median_hu": float(np.median(v[soft])) if soft.any() else float("nan"),
    }


def _head_width_mm(volume: Volume, centre: np.ndarray) -> float | None:
    """Left-right width of the body at the region's level; None when it touches the edge."""
    k = int(np.clip(round(float(volume.lps_to_index(centre)[0])), 0, volume.shape[0] - 1))
    s = volume.array[k]
    body = ndimage.binary_opening(s > -400, iterations=2)
    labels, n = ndimage.label(body)
    if n == 0:
        return None
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, np.arange(1, n + 1))
    big = labels == (int(np.argmax(sizes)) + 1)
    if big[0].any() or big[-1].any() or big[:, 0].any() or big[:, -1].any():
        return None  # cut by the field of view (a crop): the width cannot be measured
    cols = np.flatnonzero(big.any(axis=0))
    rows = np.flatnonzero(big.any(axis=1))
    # the row direction of an axial slice may be L-R or A-P: take the extent along LPS x
    pts = np.array(
        [[k, rows.min(), cols.min()], [k, rows.min(), cols.max()], [k, rows.max(), cols.min()]],
        float,
    )
    lps = volume.index_to_lps(pts)
    return float(max(abs(lps[1, 0] - lps[0, 0]), abs(lps[2, 0] - lps[0, 0])))


def _cavities(
    volume: Volume, centre: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Coarse map of where sinus lesions can be, in the sinonasal box (see check_lesion).

    Holes of the bone (> 300 HU) in a plane of any array axis, plus soft tissue within 3 mm of
    air (< −400 HU) that is itself enclosed by bone or body in a plane. Returns the map, the
    index of its first voxel and its step per axis (``None`` map when the box is empty).
    """
    box = _index_box(volume, centre, SINONASAL_HALF_MM)
    zero = np.zeros(3, int)
    if box is None:
        return None, zero, np.ones(3, int)
    lo, hi, steps = box
    full = volume.array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    n = [(hi[a] - lo[a]) // steps[a] for a in range(3)]
    trimmed = full[: n[0] * steps[0], : n[1] * steps[1], : n[2] * steps[2]]
    blocks = trimmed.reshape(n[0], steps[0], n[1], steps[1], n[2], steps[2])
    bone = blocks.max(axis=(1, 3, 5)) > 300
    sample = blocks[:, steps[0] // 2, :, steps[1] // 2, :, steps[2] // 2]
    air = sample < -400
    body = sample > -400
    holes = np.zeros(bone.shape, bool)
    enclosed = np.zeros(bone.shape, bool)
    plane = ndimage.generate_binary_structure(2, 1)
    for axis in range(3):
        st = np.zeros((3, 3, 3), bool)
        idx: list[slice | int] = [slice(None)] * 3
        idx[axis] = 1  # type: ignore[call-overload]
        st[tuple(idx)] = plane
        holes |= ndimage.binary_fill_holes(bone, structure=st)
        enclosed |= ndimage.binary_fill_holes(body, structure=st)
    inner_air = air & enclosed
    coarse = _COARSE_MM
    near = ndimage.binary_dilation(
        inner_air, iterations=max(1, round(_CAVITY_NEAR_AIR_MM / coarse))
    )
    # one coarse cell of margin takes in the bony walls, along which mucosa thickens
    allowed = ndimage.binary_dilation((holes & ~bone) | near)
    return allowed, lo, steps
