"""Turn a training dataset folder (:mod:`sinusapp.dataset`) into :class:`TrainingCase` objects.

Kept apart from :mod:`sinusapp.model.train` so it imports no torch, and so training can be fed
from anything else (tests feed phantoms directly).
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from sinusapp.imaging.volume import Volume

__all__ = [
    "ORACLE_COLUMNS",
    "UNLABELLED_NAMES",
    "cases_from_dataset",
    "load_ct_series",
    "seg_only_cases_from_folder",
]

log = logging.getLogger(__name__)

#: clinical.csv columns that, when present (synthetic cohorts), give an oracle AUC to report.
ORACLE_COLUMNS: tuple[str, ...] = (
    "true_probability",
    "probability_imaging_only",
    "probability_clinical_only",
)

#: A segmentation-only case's region of unknown reference, on its CT (non-zero; first found).
UNLABELLED_NAMES: tuple[str, ...] = ("unlabelled.nii.gz", "unlabelled.nrrd")
#: A segmentation-only case's sinus label map (SINUS_LABELS values: e.g. the ethmoid /
#: frontal / sphenoid cells of a head, ``benchmarks/make_head_disease.py``).
CELLS_NAMES: tuple[str, ...] = ("cells.nii.gz", "cells.nrrd")


def _load(case: Any) -> tuple[Volume, np.ndarray, np.ndarray | None]:
    """Load a :class:`sinusapp.dataset.Case` (top-level: picklable for worker processes):
    the CT, the lesion mask and the sinus label map (None when the case has none)."""
    from sinusapp.dataset import load_case

    return load_case(case)


def _reference_centre(folder: Path) -> tuple[float, float, float] | None:
    """``sinus_centre_lps_mm`` from a generated case's ``case.json`` / ``phantom.json``."""
    for name in ("case.json", "phantom.json"):
        path = folder / name
        if path.is_file():
            try:
                value = json.loads(path.read_text(encoding="utf-8")).get("sinus_centre_lps_mm")
            except (OSError, ValueError) as exc:
                log.warning("%s: unreadable (%s); the block is centred by the locator", path, exc)
                return None
            if isinstance(value, list) and len(value) == 3:
                return (float(value[0]), float(value[1]), float(value[2]))
    return None


def cases_from_dataset(path: str | Path, *, max_cases: int | None = None) -> tuple[list[Any], str]:
    """Read a dataset folder; returns the training cases and a one-line description of the data.

    Parameters
    ----------
    path:
        Folder with ``clinical.csv`` and one sub-folder per case.
    max_cases:
        Keep only the first ``max_cases`` cases of each cohort (smoke tests).

    A training-cohort case whose ``background_split`` column is ``val`` (the validation
    backgrounds of a generated real-anatomy cohort) becomes a ``holdout`` case: no model
    trains on it, the final model scores it. A case folder with ``case.json`` /
    ``phantom.json`` giving ``sinus_centre_lps_mm`` is centred there in training.

    Raises
    ------
    sinusapp.dataset.DatasetError
        The folder is not a valid training dataset.
    """
    from sinusapp.dataset import Dataset
    from sinusapp.model.train import TrainingCase

    ds = Dataset.open(path)
    out = []
    counts: dict[str, int] = {}
    for case in ds.cases:
        if max_cases is not None and counts.get(case.cohort, 0) >= max_cases:
            continue
        counts[case.cohort] = counts.get(case.cohort, 0) + 1
        extra = {
            k: float(case.clinical[k])
            for k in ORACLE_COLUMNS
            if isinstance(case.clinical.get(k), int | float)
        }
        cohort = case.cohort
        if cohort == "train" and str(case.clinical.get("background_split", "")) == "val":
            cohort = "holdout"
        out.append(
            TrainingCase(
                case_id=case.case_id,
                cohort=cohort,
                recurrence=case.recurrence,
                load=functools.partial(_load, case),
                extra=extra,
                center_lps=_reference_centre(case.folder),
                sources=(str(case.folder),),
            )
        )
    centers = sorted({str(c.clinical.get("center", "")) for c in ds.cases} - {""})
    synthetic = "true_probability" in ds.columns
    parts = []
    for cohort in ("train", "holdout", "test"):
        cs = [c for c in out if c.cohort == cohort]
        if cs:
            parts.append(f"{cohort}: {len(cs)} cases, {sum(c.recurrence for c in cs)} recurrences")
    if synthetic and "background" in ds.columns:
        kind = (
            "Synthetic cohort: synthetic CRS disease placed on real CT anatomy (NasalSeg "
            "crops as backgrounds, sinusapp synth --real-anatomy)"
        )
    elif synthetic:
        kind = "Synthetic cohort (sinusapp synth phantoms)"
    else:
        kind = "Dataset"
    description = (
        f"{kind} "
        f"'{Path(path).name}'; {'; '.join(parts)}"
        + (f"; centres {', '.join(centers)}" if centers else "")
        + "."
    )
    return out, description


def load_ct_series(folder: Path, *, series_uid: str | None = None) -> Volume:
    """The named series under ``folder``; else the proposed one; else the CT image series
    with the most slices (a whole-head brain series is never proposed, but it may be a
    head's only series).

    Raises
    ------
    sinusapp.errors.InputError
        ``folder`` holds no CT image series.
    """
    from sinusapp.dicom import load_volume, scan
    from sinusapp.errors import InputError

    result = scan(folder)
    if series_uid is None:
        cts = [e for e in result.series if e.kind == "image" and e.modality == "CT"]
        entry = result.proposed or (max(cts, key=lambda e: e.n_frames) if cts else None)
        if entry is None:
            raise InputError(
                "the segmentation-only case's ct/ holds no CT image series",
                path=folder,
                hint="put the background's CT series (DICOM) in the case's ct/ folder",
            )
        series_uid = entry.series_uid
    return load_volume(folder, series_uid=series_uid, scan_result=result)


def _load_seg_only(
    ct: Path,
    lesion: Path | None,
    unlabelled: Path | None,
    series_uid: str | None,
    cells: Path | None = None,
) -> tuple[Volume, np.ndarray, np.ndarray, np.ndarray | None]:
    """A segmentation-only case: its CT, its lesion mask (empty without one), its sinus map
    (``cells``; all background without one) and the unknown-reference region (top-level:
    picklable)."""
    from sinusapp.imaging.masks import load_reference_mask

    volume = load_ct_series(ct, series_uid=series_uid)
    mask = (
        (load_reference_mask(lesion, volume=volume) > 0).astype(np.uint8)
        if lesion is not None
        else np.zeros(volume.shape, np.uint8)
    )
    unknown = (
        (load_reference_mask(unlabelled, volume=volume) > 0).astype(np.uint8)
        if unlabelled is not None
        else None
    )
    labels = (
        load_reference_mask(cells, volume=volume).astype(np.uint8)
        if cells is not None
        else np.zeros(volume.shape, np.uint8)
    )
    return volume, mask, labels, unknown


def seg_only_cases_from_folder(path: str | Path) -> list[Any]:
    """Read a folder of segmentation-only cases (``sinusapp train --seg-only``).

    A segmentation-only case is a real background without an outcome: a whole head with no
    disease (a *negative*: its brain, temporal muscle and orbits the segmentation heads must
    leave alone) or with disease placed in cavities the dataset's crops lack (ethmoid,
    frontal, sphenoid). Each sub-folder holds ``ct/`` (the CT series; a symbolic link to it
    is fine), optionally a lesion mask (the dataset's names, e.g. ``lesion.nrrd``; none: no
    lesion), ``unlabelled.nii.gz`` / ``unlabelled.nrrd`` (non-zero: the reference is
    unknown there, e.g. the sinonasal box of a head whose sinuses nobody labelled) and
    ``case.json`` with ``sinus_centre_lps_mm`` (where to centre the block; else the
    locator, as at inference) and ``series_uid``; optionally ``cells.nii.gz`` /
    ``cells.nrrd``, the sinus label map (:data:`~sinusapp.imaging.quantify.SINUS_LABELS`
    values: the ethmoid / frontal / sphenoid cells of a head, air and disease), which a
    sinus head with every class (``--sinus-upper``) learns. Everywhere outside
    ``unlabelled`` the case holds its lesion mask and its cells, and no other cavity; inside
    it, a cavity of ``cells`` (e.g. a model's maxillary / nasal labels of a head) is known to
    the sinus head, its lesion is not.

    Returns
    -------
    list[sinusapp.model.train.TrainingCase]
        Cohort ``seg_only``, recurrence :data:`~sinusapp.model.train.NO_OUTCOME`.

    Raises
    ------
    sinusapp.errors.InputError
        The folder does not exist, holds no case, or a case lacks ``ct/``.
    """
    from sinusapp.dataset import MASK_NAMES
    from sinusapp.errors import InputError
    from sinusapp.model.train import NO_OUTCOME, TrainingCase

    root = Path(path)
    if not root.is_dir():
        raise InputError(
            "the segmentation-only folder does not exist",
            path=root,
            hint="give a folder with one sub-folder (ct/, unlabelled.nii.gz) per case",
        )
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        ct = folder / "ct"
        if not ct.is_dir():
            raise InputError(
                f"segmentation-only case {folder.name!r} has no ct/ folder",
                path=folder,
                hint="put the background's CT series in ct/ (a symbolic link is fine)",
            )
        lesion = next((folder / n for n in MASK_NAMES if (folder / n).is_file()), None)
        unlabelled = next((folder / n for n in UNLABELLED_NAMES if (folder / n).is_file()), None)
        cells = next((folder / n for n in CELLS_NAMES if (folder / n).is_file()), None)
        if unlabelled is None:
            log.warning(
                "segmentation-only case %s has no %s: the whole CT is taken to hold no "
                "maxillary sinus or nasal cavity%s",
                folder.name,
                " / ".join(UNLABELLED_NAMES),
                "" if lesion is not None else " and no lesion",
            )
        series_uid = None
        meta = folder / "case.json"
        if meta.is_file():
            try:
                doc = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InputError(
                    f"segmentation-only case {folder.name!r}: case.json is unreadable ({exc})",
                    path=meta,
                    hint="write it as a JSON object, e.g. "
                    '{"sinus_centre_lps_mm": [x, y, z], "series_uid": "..."}, or delete it',
                ) from exc
            if not isinstance(doc, dict):
                raise InputError(
                    f"segmentation-only case {folder.name!r}: case.json holds a "
                    f"{type(doc).__name__}, expected a JSON object",
                    path=meta,
                    hint='e.g. {"sinus_centre_lps_mm": [x, y, z]}',
                )
            value = doc.get("series_uid")
            series_uid = str(value) if value else None
        out.append(
            TrainingCase(
                case_id=folder.name,
                cohort="seg_only",
                recurrence=NO_OUTCOME,
                load=functools.partial(_load_seg_only, ct, lesion, unlabelled, series_uid, cells),
                center_lps=_reference_centre(folder),
                sources=(str(folder),),
            )
        )
    if not out:
        raise InputError(
            "the segmentation-only folder holds no case folder",
            path=root,
            hint="one sub-folder per case, each with a ct/ folder",
        )
    log.info("segmentation-only cases %s: %d", root, len(out))
    return out
