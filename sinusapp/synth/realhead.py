"""Whole real heads as backgrounds: CRS disease in their ethmoid, frontal and sphenoid cells.

NasalSeg (:mod:`sinusapp.synth.realanat`) labels only the maxillary sinuses and the nasal
cavity, so a cohort on its crops never shows the network a diseased ethmoid, frontal or
sphenoid sinus on real anatomy, and ethmoid disease is the pattern the paper ties to
recurrence. Here a real head CT is the background: its upper-sinus cells are the ones the app
itself derives (the model's maxillary / nasal labels anchor
:func:`sinusapp.imaging.upper_sinuses.label_upper_sinuses`; looked at by eye on the three real
heads of ``../shared/data/realct``), and the upper-sinus disease of a sampled
:class:`~sinusapp.synth.cohort.CaseSpec` is placed in them by the real-anatomy renderer
(:func:`~sinusapp.synth.realanat.place_disease`: mucosal thickening, polyps, cysts, air-fluid
levels, complete opacification; lesion HU and noise of the scan), after mirroring, elastic
deformation and resampling (:func:`~sinusapp.synth.realanat.augment_background`) of a crop
around the sinonasal box.

Nobody labelled the maxillary sinuses and nasal cavity of these heads (and the Visible Human
cadaver's nasal airway is filled with tissue), so the sinonasal box outside the upper cells
is returned as *unlabelled*: a training loss must not count it (``sinusapp train
--seg-only``). The cells themselves are labelled (the placed lesion, the rest clear), as is
everything outside the box (no lesion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from sinusapp.imaging.quantify import SINUS_LABELS
from sinusapp.imaging.volume import Volume, sub_grid_affine
from sinusapp.synth.cohort import CaseSpec
from sinusapp.synth.realanat import (
    Background,
    augment_background,
    kernel_and_noise,
    place_disease,
    plan_entry,
)

__all__ = [
    "UPPER_REGIONS",
    "HeadCase",
    "box_mask",
    "head_background",
    "head_sinus_labels",
    "render_head_case",
    "widened_box",
]

#: SINUS_LABELS value → CaseSpec region of the upper sinuses (ethmoids, frontal, sphenoid)
UPPER_REGIONS: dict[int, str] = {
    value: name
    for value, name in SINUS_LABELS.items()
    if name.startswith(("ethmoid", "frontal", "sphenoid"))
}
#: label value of the unlabelled region while rendering (carried through the augmentation)
_UNLABELLED = 200
#: crop around the sinonasal box (mm each side): holds the model's 80 x 100 x 120 mm block
CROP_MARGIN_MM = 28.0
#: the unlabelled region: the sinonasal box widened by this (and more towards the nostrils)
BOX_MARGIN_MM = 5.0
ANTERIOR_MARGIN_MM = 10.0
#: cells farther than this outside the box are the model's stray labels, not sinus cells
CELL_REACH_MM = 25.0


def box_mask(volume: Volume, *, box_lps_mm: np.ndarray) -> np.ndarray:
    """Voxels of ``volume`` whose centre lies in the LPS box (3 × [lo, hi] mm), slice by
    slice (a whole head has ~10⁸ voxels)."""
    box = np.asarray(box_lps_mm, float)
    shape = volume.shape
    j, i = np.meshgrid(np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
    ji = np.stack([np.zeros(j.size), j.ravel(), i.ravel()], axis=1).astype(float)
    out = np.zeros(shape, bool)
    for k in range(shape[0]):
        ji[:, 0] = k
        pts = volume.index_to_lps(ji)
        out[k] = np.all((pts >= box[:, 0]) & (pts <= box[:, 1]), axis=1).reshape(shape[1:])
    return out


def widened_box(
    box_lps_mm: np.ndarray,
    *,
    margin_mm: float = BOX_MARGIN_MM,
    anterior_mm: float = ANTERIOR_MARGIN_MM,
) -> np.ndarray:
    """The sinonasal box widened into the unlabelled region: ``margin_mm`` on every side and
    ``anterior_mm`` more towards the nostrils (the nasal vestibule, -y in LPS)."""
    wide = np.asarray(box_lps_mm, float) + np.array([[-margin_mm, margin_mm]] * 3)
    wide[1, 0] -= anterior_mm
    return wide


def head_sinus_labels(volume: Volume, *, predictor: Any) -> np.ndarray:
    """The head's SINUS_LABELS as the app finds them: the model's cavities + upper sinuses.

    Raises
    ------
    ValueError
        The model found no maxillary sinus / nasal cavity to anchor the upper sinuses on.
    """
    from sinusapp.imaging.upper_sinuses import label_upper_sinuses

    labels = np.asarray(predictor.predict(volume).sinus_labels, np.uint8).copy()
    found = label_upper_sinuses(hu=volume.array, affine=volume.affine, model_labels=labels)
    if found is None:
        raise ValueError("no upper sinuses: the model found no maxillary / nasal anchor")
    upper, box = found
    sub = labels[box]
    sub[upper > 0] = upper[upper > 0]
    return labels


def head_background(
    volume: Volume, *, labels: np.ndarray, box_lps_mm: np.ndarray, name: str
) -> tuple[Background, dict[str, Any]]:
    """A crop of the head around its sinonasal box, labelled for rendering.

    ``labels``: :func:`head_sinus_labels`; ``box_lps_mm``: the hand-marked sinonasal box
    (3 × [lo, hi] LPS mm). The background's labels are the upper cells (3-8), an internal
    value for the unlabelled region, 0 elsewhere. Returns it with a description (crop, cell
    volumes in mL).
    """
    box = np.asarray(box_lps_mm, float)
    reach = box + np.array([[-CELL_REACH_MM, CELL_REACH_MM]] * 3)
    upper = np.isin(labels, list(UPPER_REGIONS)) & box_mask(volume, box_lps_mm=reach)
    unknown = box_mask(volume, box_lps_mm=widened_box(box)) & ~ndimage.binary_dilation(
        upper, iterations=1
    )
    lab = np.where(upper, labels, np.where(unknown, _UNLABELLED, 0)).astype(np.uint8)
    inside = np.argwhere(
        box_mask(volume, box_lps_mm=box + np.array([[-CROP_MARGIN_MM, CROP_MARGIN_MM]] * 3))
    )
    lo, hi = inside.min(0), inside.max(0) + 1
    sl = tuple(slice(int(a), int(c)) for a, c in zip(lo, hi, strict=True))
    aff = sub_grid_affine(volume.affine, start=lo)
    info = {
        "head": name,
        "crop_index_lo": lo.tolist(),
        "crop_shape": [int(v) for v in hi - lo],
        "upper_cells_ml": {
            region: round(float((lab == v).sum()) * volume.voxel_volume_ml, 2)
            for v, region in UPPER_REGIONS.items()
        },
    }
    bg = Background(
        patient=name,
        hu=volume.array[sl].astype(np.float32),
        labels=np.ascontiguousarray(lab[sl]),
        affine=aff,
    )
    return bg, info


@dataclass(frozen=True, slots=True)
class HeadCase:
    """A rendered head case: int16 HU, uint8 lesion and unlabelled masks, LPS affine, meta.

    ``cells``: the upper-sinus cells (SINUS_LABELS values 3-8) of the healthy head, carried
    through the same augmentation: the reference cavity of each ethmoid / frontal / sphenoid
    sinus, whatever the placed disease made of its air (a per-sinus labelling's reference).
    """

    hu: np.ndarray
    lesion: np.ndarray
    unlabelled: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any]
    cells: np.ndarray


def _plan(spec: CaseSpec, *, healthy: bool) -> dict[int, dict[str, Any]]:
    return {
        value: plan_entry(region, spec.disease.get(region), healthy=healthy)
        for value, region in UPPER_REGIONS.items()
    }


def render_head_case(bg: Background, *, spec: CaseSpec, healthy: bool) -> HeadCase:
    """Augment the crop and place ``spec``'s upper-sinus disease (deterministic in its seed).

    Pixels are drawn from 0.6-1.0 mm (a head crop is several NasalSeg crops in size).
    """
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x4EAD]))
    hu, lab, aff, aug = augment_background(bg, rng=rng, pixel_range_mm=(0.6, 1.0))
    lesion_hu = float(np.clip(spec.disease.lesion_hu + rng.normal(0, 5), 10.0, 60.0))
    cells = np.where(lab == _UNLABELLED, 0, lab).astype(np.uint8)
    out, lesion, info = place_disease(
        hu=hu,
        labels=cells,
        affine=aff,
        plan=_plan(spec, healthy=healthy),
        lesion_hu=lesion_hu,
        rng=rng,
    )
    out, kern = kernel_and_noise(out, rng=rng)
    vox_ml = float(abs(np.linalg.det(aff[:3, :3]))) / 1000.0
    return HeadCase(
        hu=np.clip(np.rint(out), -1024, 3071).astype(np.int16),
        lesion=lesion,
        unlabelled=(lab == _UNLABELLED).astype(np.uint8),
        affine=aff,
        meta={
            "augmentation": {**aug, **kern},
            "healthy_case": healthy,
            "lesion_hu": round(lesion_hu, 2),
            "disease": info,
            "lesion_volume_ml": round(float(lesion.sum()) * vox_ml, 3),
        },
        cells=cells,
    )
