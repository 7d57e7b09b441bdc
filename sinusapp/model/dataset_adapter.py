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

__all__ = ["ORACLE_COLUMNS", "cases_from_dataset"]

log = logging.getLogger(__name__)

#: clinical.csv columns that, when present (synthetic cohorts), give an oracle AUC to report.
ORACLE_COLUMNS: tuple[str, ...] = (
    "true_probability",
    "probability_imaging_only",
    "probability_clinical_only",
)


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
