"""Read a training dataset folder (DESIGN §3; docs/dataset_format.md).

A dataset is ``DIR/clinical.csv`` plus one folder per case holding the CT series (DICOM, in
``ct/`` or anywhere below the case folder) and a reference lesion mask (DICOM SEG, NRRD or
NIfTI), optionally a sinus label map ``sinus_labels.nii.gz``. ``sinusapp synth`` writes
exactly this; a hospital can arrange its own data the same way.

>>> ds = Dataset.open("cohort/")                       # doctest: +SKIP
>>> volume, lesion, labels = load_case(ds.cases[0])    # doctest: +SKIP
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinusapp.errors import InputError
from sinusapp.imaging.volume import Volume

__all__ = ["REQUIRED_COLUMNS", "Case", "Dataset", "DatasetError", "load_case"]

log = logging.getLogger(__name__)

#: Columns clinical.csv must have.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "case_id",
    "recurrence",
    "asthma",
    "allergic_rhinitis",
    "eosinophils_per_ul",
    "cohort",
)
#: Reference mask file names looked for in a case folder, in order of preference.
MASK_NAMES: tuple[str, ...] = (
    "lesion_seg.dcm",
    "lesion.seg.nrrd",
    "lesion.nrrd",
    "lesion.nii.gz",
    "lesion.nii",
    "Segmentation.seg.nrrd",
)
LABELS_NAME = "sinus_labels.nii.gz"
_INT_COLUMNS = (
    "recurrence",
    "asthma",
    "allergic_rhinitis",
    "hypertension",
    "diabetes",
    "smoking",
    "drinking",
    "age",
    "nasal_polyps",
    "lund_mackay",
    "seed",
)
_FLOAT_COLUMNS = (
    "eosinophils_per_ul",
    "true_probability",
    "probability_clinical_only",
    "probability_imaging_only",
    "ethmoid_predominance",
    "disease_extent",
)


class DatasetError(InputError):
    """The dataset folder is not in the training-dataset format."""


@dataclass(frozen=True, slots=True)
class Case:
    """One case of a dataset: its id, clinical row (typed) and file locations."""

    case_id: str
    folder: Path
    clinical: dict[str, Any]
    ct_path: Path
    mask_path: Path | None
    labels_path: Path | None
    series_uid: str | None = None

    @property
    def recurrence(self) -> int:
        """0 / 1 outcome."""
        return int(self.clinical["recurrence"])

    @property
    def cohort(self) -> str:
        """``train`` or ``test``."""
        return str(self.clinical["cohort"])


@dataclass(frozen=True, slots=True)
class Dataset:
    """A training dataset: its folder and cases (in clinical.csv order)."""

    root: Path
    cases: tuple[Case, ...]
    columns: tuple[str, ...] = field(default=())

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Dataset:
        """Read ``path/clinical.csv`` and locate every case's files.

        Raises
        ------
        DatasetError
            No such folder, no clinical.csv, missing columns, a bad value, a duplicate case id,
            or a case folder that is missing or holds no reference mask.
        """
        root = Path(path)
        if not root.is_dir():
            raise DatasetError(
                "the dataset folder does not exist",
                path=root,
                hint="give the folder that holds clinical.csv",
            )
        csv_path = root / "clinical.csv"
        if not csv_path.is_file():
            raise DatasetError(
                "the dataset folder has no clinical.csv",
                path=root,
                hint="see docs/dataset_format.md",
            )
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = tuple(reader.fieldnames or ())
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise DatasetError(
                    f"clinical.csv lacks the column(s) {', '.join(missing)}",
                    path=csv_path,
                    hint=f"required: {', '.join(REQUIRED_COLUMNS)}",
                )
            rows = list(reader)
        if not rows:
            raise DatasetError("clinical.csv has no cases", path=csv_path)
        cases = []
        seen: set[str] = set()
        for line, row in enumerate(rows, start=2):
            cid = (row.get("case_id") or "").strip()
            if not cid:
                raise DatasetError(f"clinical.csv line {line}: empty case_id", path=csv_path)
            if cid in seen:
                raise DatasetError(
                    f"clinical.csv line {line}: duplicate case_id {cid!r}", path=csv_path
                )
            seen.add(cid)
            clinical = _typed(row, line=line, csv_path=csv_path)
            folder = root / cid
            if not folder.is_dir():
                raise DatasetError(
                    f"the folder of case {cid!r} is missing",
                    path=folder,
                    hint="each case_id in clinical.csv needs a folder of that name",
                )
            ct = folder / "ct"
            mask = next((folder / n for n in MASK_NAMES if (folder / n).is_file()), None)
            if mask is None:
                raise DatasetError(
                    f"case {cid!r} has no reference mask ({', '.join(MASK_NAMES)})", path=folder
                )
            labels = folder / LABELS_NAME
            cases.append(
                Case(
                    case_id=cid,
                    folder=folder,
                    clinical=clinical,
                    ct_path=ct if ct.is_dir() else folder,
                    mask_path=mask,
                    labels_path=labels if labels.is_file() else None,
                    series_uid=(row.get("series_uid") or "").strip() or None,
                )
            )
        log.info("dataset %s: %d cases", root, len(cases))
        return cls(root=root, cases=tuple(cases), columns=columns)

    def by_cohort(self, cohort: str) -> tuple[Case, ...]:
        """The cases of ``cohort`` (``train`` / ``test``)."""
        return tuple(c for c in self.cases if c.cohort == cohort)

    def __len__(self) -> int:
        return len(self.cases)


def _typed(row: dict[str, str], *, line: int, csv_path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in row.items():
        if key is None:
            continue
        value = (raw or "").strip()
        try:
            if key in _INT_COLUMNS and value != "":
                out[key] = int(float(value))
            elif key in _FLOAT_COLUMNS and value != "":
                out[key] = float(value)
            else:
                out[key] = value
        except ValueError as exc:
            raise DatasetError(
                f"clinical.csv line {line}: column {key!r} has the non-numeric value {value!r}",
                path=csv_path,
            ) from exc
    if out.get("recurrence") not in (0, 1):
        raise DatasetError(
            f"clinical.csv line {line}: recurrence must be 0 or 1, got {row.get('recurrence')!r}",
            path=csv_path,
        )
    if out.get("cohort") not in ("train", "test"):
        raise DatasetError(
            f"clinical.csv line {line}: cohort must be train or test, got {row.get('cohort')!r}",
            path=csv_path,
        )
    return out


def load_case(case: Case) -> tuple[Volume, np.ndarray, np.ndarray | None]:
    """Load a case: the CT as a :class:`Volume`, the lesion mask and the sinus labels on its grid.

    Returns
    -------
    (Volume, numpy.ndarray, numpy.ndarray | None)
        The volume, the uint8 lesion mask (0 / 1) and the uint8 sinus labels (or None when the
        case has no label map), both ``volume.shape``.
    """
    from sinusapp.dicom import load_volume
    from sinusapp.imaging.masks import load_reference_mask

    volume = load_volume(case.ct_path, series_uid=case.series_uid)
    lesion = (
        (load_reference_mask(case.mask_path, volume=volume) > 0).astype(np.uint8)
        if case.mask_path
        else np.zeros(volume.shape, np.uint8)
    )
    labels = load_reference_mask(case.labels_path, volume=volume) if case.labels_path else None
    return volume, lesion, labels
