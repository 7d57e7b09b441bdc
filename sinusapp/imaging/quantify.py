"""Per-sinus quantification: cavity volume, opacified volume, % opacification, Lund–Mackay.

Headless, numpy only. Inputs are arrays on the CT grid: the lesion mask (the model's, or a
reference) and a sinus label map (:data:`SINUS_LABELS`, from
:func:`sinusapp.imaging.sinus_labels.label_sinuses`, a file, or the synthetic generator).

The label table lives here (not in :mod:`sinusapp.synth`) because it is data the core needs:
the synthetic generator, the dataset reader and the quantification all use this one mapping.

Lund–Mackay (Lund & Mackay 1993) grades each sinus 0 (clear), 1 (partial) or 2 (complete
opacification). Here the grade is derived from the measured % opacification with tolerances
for partial-volume voxels at the cavity edge and for small segmentation errors:
``< 5 %`` → 0, ``≥ 95 %`` → 2, otherwise 1, on the percentage rounded to a whole number as it
is displayed (the same thresholds the report uses when a grade is missing). The ostiomeatal
complexes are not assessed, and the nasal cavity is not a Lund–Mackay item (it is quantified,
but has no grade). Bone voxels (> :data:`BONE_HU`) inside a label are not sinus content.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from sinusapp.imaging.volume import Volume

__all__ = [
    "BONE_HU",
    "LABEL_IDS",
    "LM_COMPLETE_PCT",
    "LM_PARTIAL_PCT",
    "MIN_FOUND_ML",
    "NOT_GRADED",
    "OPACIFICATION_KEYS",
    "REGIONS",
    "SINUS_LABELS",
    "lund_mackay_grade",
    "lund_mackay_score",
    "lund_mackay_total",
    "nonzero_box",
    "not_assessed",
    "opacification_assessed",
    "per_sinus_opacification",
    "sinuses_found",
    "with_unfound_regions",
    "without_unassessed_opacification",
]

log = logging.getLogger(__name__)

#: Sinus label map values (0 = background). ``_L`` / ``_R`` are the patient's left / right.
#: The frontal and sphenoid sinuses are single labels spanning the midline (both sides).
SINUS_LABELS: dict[int, str] = {
    1: "maxillary_L",
    2: "maxillary_R",
    3: "ethmoid_ant_L",
    4: "ethmoid_ant_R",
    5: "ethmoid_post_L",
    6: "ethmoid_post_R",
    7: "frontal",
    8: "sphenoid",
    9: "nasal_cavity",
}
#: Region name → label value.
LABEL_IDS: dict[str, int] = {name: value for value, name in SINUS_LABELS.items()}
#: Region names in label order.
REGIONS: tuple[str, ...] = tuple(SINUS_LABELS.values())
#: Regions that are quantified but are not Lund–Mackay items.
NOT_GRADED: frozenset[str] = frozenset({"nasal_cavity"})

#: Voxels above this HU are bone, not sinus content (see :func:`per_sinus_opacification`).
BONE_HU = 300.0
#: Below this % opacification a sinus is graded 0 (clear): edge voxels and thin mucosa.
LM_PARTIAL_PCT = 5.0
#: At or above this % opacification a sinus is graded 2 (complete).
LM_COMPLETE_PCT = 95.0


def lund_mackay_grade(opacification_pct: float) -> int:
    """Lund–Mackay grade of one sinus from its % opacification (0 / 1 / 2, see module doc).

    The percentage is rounded to a whole number first, as the report and the GUI show it, so
    that a sinus shown as "95 %" is never graded partial.
    """
    pct = round(float(opacification_pct))
    if pct < LM_PARTIAL_PCT:
        return 0
    if pct >= LM_COMPLETE_PCT:
        return 2
    return 1


def per_sinus_opacification(
    *,
    lesion_mask: np.ndarray,
    sinus_labels: np.ndarray,
    volume: Volume,
    label_names: Mapping[int, str] | None = None,
    bone_hu: float = BONE_HU,
    labels_box: tuple[slice, slice, slice] | None = None,
) -> dict[str, dict[str, float]]:
    """Volume and opacification of each labelled sinus.

    Parameters
    ----------
    lesion_mask:
        Lesion (opacification) mask on the CT grid, non-zero = lesion.
    sinus_labels:
        Integer label map on the CT grid (:data:`SINUS_LABELS` by default; 0 = background).
    volume:
        The CT (grid shape and voxel size).
    label_names:
        Label value → name; default :data:`SINUS_LABELS`. Values not in it are ignored.
    bone_hu:
        Voxels above this HU are bone (the ethmoid septa, the partial-volume rim of the
        walls) and are counted neither as cavity nor as opacified: opacification is the
        fraction of the sinus's air / soft-tissue content that is lesion. This makes it
        independent of whether a label map includes the septa (hand-drawn maps often do,
        the synthetic ones do not), so a completely opacified ethmoid measures ~100 %.
    labels_box:
        When given, ``sinus_labels`` is the label map of ``volume.array[labels_box]`` only
        (zero elsewhere; what :func:`~sinusapp.imaging.sinus_labels.label_sinuses_box`
        gives), so that no CT-sized label map is needed. The result is the same.

    Returns
    -------
    dict
        ``name → {"volume_ml", "opacified_ml", "opacification_pct", "lund_mackay"}`` for every
        label present in ``sinus_labels`` (in label order). ``opacified_ml`` is the lesion
        inside that sinus's cavity; lesion outside all cavities is not counted anywhere.
        ``lund_mackay`` (0 / 1 / 2, a float like the other values) is absent for the nasal
        cavity, which is not a Lund–Mackay item. The frontal and sphenoid sinuses are single
        midline labels, graded once each from their combined opacification (the standard
        score grades left and right separately).

    Raises
    ------
    ValueError
        The arrays do not have the CT's shape.
    """
    shape = tuple(volume.shape)
    if labels_box is None:
        labels_shape = shape
    else:
        labels_box = tuple(slice(*b.indices(n)[:2]) for b, n in zip(labels_box, shape, strict=True))
        labels_shape = tuple(b.stop - b.start for b in labels_box)
    if lesion_mask.shape != shape or sinus_labels.shape != labels_shape:
        raise ValueError(
            f"lesion mask {lesion_mask.shape} and sinus labels {sinus_labels.shape} must have "
            f"the CT's shape {shape}"
            + ("" if labels_box is None else f" (the labels: that of their box, {labels_shape})")
        )
    names = SINUS_LABELS if label_names is None else dict(label_names)
    voxel_ml = float(volume.voxel_volume_ml)
    labels_all = np.asarray(sinus_labels)
    if labels_all.dtype.kind not in "iu":
        # float or bool maps (some NIfTI readers give float64): integers as before, the
        # rare slow path (a CT-sized int64 copy)
        labels_all = labels_all.astype(np.int64)
    if labels_all.dtype.kind == "i" and labels_all.min(initial=0) < 0:
        raise ValueError("sinus labels must be non-negative")
    cavity_voxels, lesion_voxels = _label_counts(
        labels_all,
        lesion_mask=np.asarray(lesion_mask),
        hu=np.asarray(volume.array),
        bone_hu=bone_hu,
        min_length=max(names, default=0) + 1,
        labels_box=labels_box,
    )
    n = len(cavity_voxels)
    out: dict[str, dict[str, float]] = {}
    for value in sorted(names):
        if value <= 0 or value >= n or cavity_voxels[value] == 0:
            continue
        name = names[value]
        vol_ml = float(cavity_voxels[value]) * voxel_ml
        opac_ml = float(lesion_voxels[value]) * voxel_ml
        pct = 100.0 * float(lesion_voxels[value]) / float(cavity_voxels[value])
        row = {
            "volume_ml": round(vol_ml, 3),
            "opacified_ml": round(opac_ml, 3),
            "opacification_pct": round(pct, 2),
        }
        if name not in NOT_GRADED:
            row["lund_mackay"] = float(lund_mackay_grade(pct))
        out[name] = row
    log.debug("per-sinus opacification: %s", {k: v["opacification_pct"] for k, v in out.items()})
    return out


def nonzero_box(array: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of the non-zero voxels of a 3-D array (``None`` when there are none).

    Reads the array once (``any`` over the columns), then only the rows and slices found.
    """
    rows_any = array.any(axis=2)  # (slices, rows)
    k = np.flatnonzero(rows_any.any(axis=1))
    if k.size == 0:
        return None
    j = np.flatnonzero(rows_any.any(axis=0))
    ks, js = slice(int(k[0]), int(k[-1]) + 1), slice(int(j[0]), int(j[-1]) + 1)
    i = np.flatnonzero(array[ks, js].any(axis=(0, 1)))
    return ks, js, slice(int(i[0]), int(i[-1]) + 1)


def _label_counts(
    labels: np.ndarray,
    *,
    lesion_mask: np.ndarray,
    hu: np.ndarray,
    bone_hu: float,
    min_length: int,
    labels_box: tuple[slice, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Non-bone voxels per label value and lesion voxels among them (int64 counts).

    Works on the bounding box of the labelled voxels and counts with ``np.bincount`` on
    the labelled non-bone voxels only: no CT-sized int64 or float64 copy (a 1024² × 600 CT
    has 600 M voxels). Length: ``max(largest label among non-bone voxels + 1, min_length)``.
    ``labels`` covers ``labels_box`` of the CT grid (default: all of it).
    """
    box = nonzero_box(labels)
    if box is None:
        return np.zeros(max(min_length, 1), np.int64), np.zeros(max(min_length, 1), np.int64)
    lab = labels[box]
    if labels_box is not None:  # the labelled box on the CT grid
        box = tuple(
            slice(o.start + b.start, o.start + b.stop) for o, b in zip(labels_box, box, strict=True)
        )
    inside = (lab != 0) & ~(hu[box] > bone_hu)
    values = lab[inside].astype(np.intp, copy=False)
    lesion = lesion_mask[box][inside] != 0
    n = max(int(values.max(initial=0)) + 1, min_length, 1)
    cavity_voxels = np.bincount(values, minlength=n)
    lesion_voxels = np.bincount(values[lesion], minlength=n)
    return cavity_voxels, lesion_voxels


def lund_mackay_total(per_sinus: Mapping[str, Mapping[str, float]]) -> int | None:
    """Sum of the Lund–Mackay grades in ``per_sinus`` (``None`` when no sinus is graded).

    Regions without a ``lund_mackay`` value (the nasal cavity, a sinus not assessed) are
    skipped. With the label table above the maximum is at most 14 (7 items × 2), not the
    standard 24: the ostiomeatal complexes are not assessed and frontal / sphenoid count once
    each; fewer where sinuses are not found or not assessed (:func:`lund_mackay_score`).
    """
    grades = [v["lund_mackay"] for v in per_sinus.values() if v.get("lund_mackay") is not None]
    if not grades:
        return None
    return int(sum(int(g) for g in grades))


def lund_mackay_score(
    per_sinus: Mapping[str, Mapping[str, float]],
) -> tuple[int | None, int]:
    """``(total, maximum)`` of the Lund–Mackay grades of the *found* regions, as screen,
    report and ``result.json`` give it: regions outlined with under :data:`MIN_FOUND_ML`
    (:func:`sinuses_found`) and regions without a grade are left out of both; the maximum is
    2 per graded region (``total`` ``None`` and maximum 0 when none is graded)."""
    found, _ = sinuses_found(per_sinus)
    graded = [v for v in found.values() if v.get("lund_mackay") is not None]
    return lund_mackay_total(found), 2 * len(graded)


#: Smallest outlined volume (mL) that counts as a found sinus (:func:`sinuses_found`).
MIN_FOUND_ML = 0.5


def sinuses_found(
    per_sinus: Mapping[str, Mapping[str, float]],
) -> tuple[dict[str, Mapping[str, float]], list[str]]:
    """``(regions with a cavity, names of regions outlined with under 0.5 mL)``.

    A region the labelling did not find (a few voxels or none; e.g. the rule-based ethmoid
    outline on a real head, 0.0–0.2 mL) must not be shown as a clear sinus: a grade 0 there,
    and a 0 in the Lund–Mackay sum, would say "no disease" about a sinus nobody measured.
    Screen and report list only the found regions and name the others. The bar,
    :data:`MIN_FOUND_ML`, lies far below any real sinus (an anterior ethmoid complex holds
    several mL). Regions without a volume are kept.
    """
    found: dict[str, Mapping[str, float]] = {}
    missing: list[str] = []
    for name, vals in per_sinus.items():
        vol = vals.get("volume_ml")
        if vol is not None and float(vol) < MIN_FOUND_ML:
            missing.append(name)
        else:
            found[name] = vals
    return found, missing


#: The opacification figures of a per-sinus row; a row without them has its cavity volume only.
OPACIFICATION_KEYS: tuple[str, ...] = ("opacified_ml", "opacification_pct", "lund_mackay")


def without_unassessed_opacification(
    per_sinus: Mapping[str, Mapping[str, float]], *, assessed: frozenset[str] | None
) -> dict[str, dict[str, float]]:
    """``per_sinus`` with the opacification figures removed where the lesion is not assessed.

    A model's lesion head measures disease only where it learned it (the bundled model:
    real-anatomy disease in the maxillary sinuses and the nasal cavity; on ethmoid, frontal
    and sphenoid disease placed on held-out real heads it marked almost none, see
    ``benchmarks/RESULTS.md``). There its 0 % is no evidence of a clear sinus, so a row of a
    region outside ``assessed`` keeps its cavity volume and loses ``opacified_ml``,
    ``opacification_pct`` and ``lund_mackay``: screen, report and ``result.json`` show the
    region as *not assessed* and the Lund–Mackay sum leaves it out. ``assessed=None``: every
    region is assessed (the rows are returned unchanged, as copies).
    """
    out: dict[str, dict[str, float]] = {}
    for name, row in per_sinus.items():
        if assessed is None or name in assessed:
            out[name] = dict(row)
        else:
            out[name] = {k: v for k, v in row.items() if k not in OPACIFICATION_KEYS}
    return out


def opacification_assessed(row: Mapping[str, float]) -> bool:
    """Whether a per-sinus row carries a measured opacification (a finite
    ``opacification_pct``; see :func:`without_unassessed_opacification`)."""
    pct = row.get("opacification_pct")
    return pct is not None and math.isfinite(float(pct))


def not_assessed(per_sinus: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Names of the rows whose opacification was not assessed (no finite
    ``opacification_pct``: :func:`opacification_assessed`)."""
    return [name for name, row in per_sinus.items() if not opacification_assessed(row)]


def with_unfound_regions(
    per_sinus: Mapping[str, Mapping[str, float]],
) -> dict[str, dict[str, float]]:
    """``per_sinus`` with a ``{"volume_ml": 0.0}`` row for every Lund–Mackay item of
    :data:`SINUS_LABELS` that the labels do not hold at all, in label order.

    :func:`per_sinus_opacification` returns rows only for labels present, so a sinus the
    labelling found nothing of (e.g. a right ethmoid outside a crop) would vanish from screen
    and report without a word; as a row under :data:`MIN_FOUND_ML` it is named "not outlined"
    (:func:`sinuses_found`), and it carries no opacification (not assessed).
    """
    out: dict[str, dict[str, float]] = {}
    for name in REGIONS:
        if name in per_sinus:
            out[name] = dict(per_sinus[name])
        elif name not in NOT_GRADED:
            out[name] = {"volume_ml": 0.0}
    out.update({k: dict(v) for k, v in per_sinus.items() if k not in out})
    return out
