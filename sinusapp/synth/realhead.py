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
cadaver's nasal airway is filled with tissue), so the tissue inside the model's maxillary and
nasal-cavity labels is returned as *unlabelled*: the lesion loss must not count it
(``sinusapp train --seg-only``); their air is known to hold no lesion. The model's
maxillary / nasal labels are returned as cavities (``HeadCase.cavities``), which the sinus
labelling learns, so that a sinus head trained on these cases keeps telling the maxillary
sinus and the nasal cavity of a whole head (without them, nothing on a whole head said where
they are: session 27, benchmarks/RESULTS.md). The upper cells are labelled (the placed
lesion, the rest clear), as is the rest of the box (the cavities' walls, the turbinates, the
orbits, septum, palate, the air no label holds: no lesion, no cavity) and everything outside
it. Until session 32 a 3 mm rim around every cavity and the air reaching it were unlabelled
for both heads too, and a model trained so grew its labels and its false lesion into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sinusapp.imaging.quantify import SINUS_LABELS
from sinusapp.imaging.volume import Volume, sub_grid_affine
from sinusapp.model.refine import keep_main_cavities
from sinusapp.synth.cohort import CaseSpec
from sinusapp.synth.realanat import (
    CAVITY_BASE,
    HIDDEN_BASE,
    MAX_L,
    MAX_R,
    NASAL,
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
#: label value of the unlabelled region while rendering (carried through the augmentation);
#: ``_UNLABELLED + v``: the tissue of the model's cavity ``v`` (maxillary, nasal), unlabelled
#: for the lesion; ``CAVITY_BASE + v``: its air, known (no lesion)
_UNLABELLED = HIDDEN_BASE
#: the model's cavities whose labels the sinus labelling learns on a head
MODEL_CAVITIES = (MAX_L, MAX_R, NASAL)
#: pieces of a model cavity within this of its main piece belong to it (a septated sinus)
CAVITY_REACH_MM = 3.0
#: crop around the sinonasal box (mm each side): holds the model's 80 x 100 x 120 mm block
CROP_MARGIN_MM = 28.0
#: the model's cavities are taken in the sinonasal box widened by this (and more towards the
#: nostrils)
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
    (3 × [lo, hi] LPS mm). The background's labels are the upper cells (3-8), internal values
    for the model's cavities ``v`` of :data:`MODEL_CAVITIES` in the widened box
    (``_UNLABELLED + v`` for their tissue, whose lesion reference is unknown;
    ``CAVITY_BASE + v`` for their air), 0 elsewhere. Returns it with a description (crop,
    cell and cavity volumes, the unlabelled tissue and the cavities' air in mL).
    """
    box = np.asarray(box_lps_mm, float)
    inside = np.argwhere(
        box_mask(volume, box_lps_mm=box + np.array([[-CROP_MARGIN_MM, CROP_MARGIN_MM]] * 3))
    )
    lo, hi = inside.min(0), inside.max(0) + 1
    sl = tuple(slice(int(a), int(c)) for a, c in zip(lo, hi, strict=True))
    aff = sub_grid_affine(volume.affine, start=lo)
    crop = Volume(array=volume.array[sl], affine=aff)
    labels = np.asarray(labels)[sl]
    reach = box + np.array([[-CELL_REACH_MM, CELL_REACH_MM]] * 3)
    upper = np.isin(labels, list(UPPER_REGIONS)) & box_mask(crop, box_lps_mm=reach)
    in_box = box_mask(crop, box_lps_mm=widened_box(box))
    # each cavity's main piece (+ the pieces within a few mm: a septated sinus), as the
    # Predictor cuts them: the box's edge may leave a sliver of a cavity outside it apart
    cavities = keep_main_cavities(
        np.where(np.isin(labels, MODEL_CAVITIES) & in_box & ~upper, labels, 0).astype(np.uint8),
        volume=crop,
        within_mm=CAVITY_REACH_MM,
        in_place=True,
    ).labels
    cavity = cavities > 0
    # the scan's own air level (an uncalibrated scanner's air reads -500 HU), half-way to water
    air_level = float(np.percentile(crop.array[in_box], 2)) if in_box.any() else -1000.0
    air = crop.array < 0.5 * air_level
    # the lesion's reference is unknown only in the tissue inside the model's cavities
    # (disease nobody labelled may fill a real sinus; the Visible Human's nasal airway is
    # tissue). Their air holds no lesion, and the rim around them is known too: session 31
    # left a 3 mm rim and the open air next to it unknown to both heads, and a model trained
    # so grew its nasal label (VHF 25.9 -> 38.9 mL) and its false lesion into them
    # (benchmarks/RESULTS.md). The rim and that air are "no lesion, no cavity" now, as
    # everywhere else outside the cells: the cavities' edges are the model's own.
    lab = np.where(
        upper,
        labels,
        np.where(
            cavity & ~air,
            _UNLABELLED + cavities,
            np.where(cavity, CAVITY_BASE + cavities, 0),
        ),
    ).astype(np.uint8)
    info = {
        "head": name,
        "crop_index_lo": lo.tolist(),
        "crop_shape": [int(v) for v in hi - lo],
        "upper_cells_ml": {
            region: round(float((lab == v).sum()) * volume.voxel_volume_ml, 2)
            for v, region in UPPER_REGIONS.items()
        },
        "model_cavities_ml": {
            SINUS_LABELS[v]: round(
                float(np.isin(lab, (_UNLABELLED + v, CAVITY_BASE + v)).sum())
                * volume.voxel_volume_ml,
                2,
            )
            for v in MODEL_CAVITIES
        },
        "unlabelled_ml": round(float(_hidden(lab).sum()) * volume.voxel_volume_ml, 2),
        "cavity_air_ml": round(float((lab > CAVITY_BASE).sum()) * volume.voxel_volume_ml, 2),
        "air_level_hu": round(air_level, 1),
    }
    bg = Background(
        patient=name,
        hu=crop.array.astype(np.float32),
        labels=np.ascontiguousarray(lab),
        affine=aff,
    )
    return bg, info


@dataclass(frozen=True, slots=True)
class HeadCase:
    """A rendered head case: int16 HU, uint8 lesion and unlabelled masks, LPS affine, meta.

    ``cells``: the upper-sinus cells (SINUS_LABELS values 3-8) of the healthy head, carried
    through the same augmentation: the reference cavity of each ethmoid / frontal / sphenoid
    sinus, whatever the placed disease made of its air (a per-sinus labelling's reference).
    ``cavities``: the model's maxillary / nasal labels (values 1, 2, 9) inside
    ``unlabelled``, through the same augmentation: known to the sinus labelling, not to the
    lesion (all 0 for a background packed before they were kept).
    """

    hu: np.ndarray
    lesion: np.ndarray
    unlabelled: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any]
    cells: np.ndarray
    cavities: np.ndarray


def _plan(spec: CaseSpec, *, healthy: bool) -> dict[int, dict[str, Any]]:
    return {
        value: plan_entry(region, spec.disease.get(region), healthy=healthy)
        for value, region in UPPER_REGIONS.items()
    }


def _hidden(labels: np.ndarray) -> np.ndarray:
    """The voxels of a background's labels whose lesion reference is unknown
    (``_UNLABELLED`` and ``_UNLABELLED + v``; a pack written before session 32 also marks
    the rim and the open air ``_UNLABELLED``)."""
    return (labels >= _UNLABELLED) & (labels < CAVITY_BASE)


def render_head_case(bg: Background, *, spec: CaseSpec, healthy: bool) -> HeadCase:
    """Augment the crop and place ``spec``'s upper-sinus disease (deterministic in its seed).

    Pixels are drawn from 0.6-1.0 mm (a head crop is several NasalSeg crops in size).
    """
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x4EAD]))
    hu, lab, aff, aug = augment_background(bg, rng=rng, pixel_range_mm=(0.6, 1.0))
    lesion_hu = float(np.clip(spec.disease.lesion_hu + rng.normal(0, 5), 10.0, 60.0))
    hidden = _hidden(lab)
    cells = np.where(lab >= _UNLABELLED, 0, lab).astype(np.uint8)
    cavities = np.where(
        lab > CAVITY_BASE,
        lab - CAVITY_BASE,
        np.where(hidden & (lab > _UNLABELLED), lab - _UNLABELLED, 0),
    ).astype(np.uint8)
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
        unlabelled=hidden.astype(np.uint8),
        affine=aff,
        meta={
            "augmentation": {**aug, **kern},
            "healthy_case": healthy,
            "lesion_hu": round(lesion_hu, 2),
            "disease": info,
            "lesion_volume_ml": round(float(lesion.sum()) * vox_ml, 3),
        },
        cells=cells,
        cavities=cavities,
    )
