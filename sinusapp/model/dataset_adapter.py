"""Turn a training dataset folder (:mod:`sinusapp.dataset`) into :class:`TrainingCase` objects.

Kept apart from :mod:`sinusapp.model.train` so it imports no torch, and so training can be fed
from anything else (tests feed phantoms directly).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from sinusapp.imaging.volume import Volume

__all__ = ["ORACLE_COLUMNS", "cases_from_dataset"]

#: clinical.csv columns that, when present (synthetic cohorts), give an oracle AUC to report.
ORACLE_COLUMNS: tuple[str, ...] = (
    "true_probability",
    "probability_imaging_only",
    "probability_clinical_only",
)


def _load(case: Any) -> tuple[Volume, np.ndarray]:
    """Load a :class:`sinusapp.dataset.Case` (top-level: picklable for worker processes)."""
    from sinusapp.dataset import load_case

    volume, lesion, _ = load_case(case)
    return volume, lesion


def cases_from_dataset(path: str | Path, *, max_cases: int | None = None) -> tuple[list[Any], str]:
    """Read a dataset folder; returns the training cases and a one-line description of the data.

    Parameters
    ----------
    path:
        Folder with ``clinical.csv`` and one sub-folder per case.
    max_cases:
        Keep only the first ``max_cases`` cases of each cohort (smoke tests).

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
        out.append(
            TrainingCase(
                case_id=case.case_id,
                cohort=case.cohort,
                recurrence=case.recurrence,
                load=functools.partial(_load, case),
                extra=extra,
            )
        )
    centers = sorted({str(c.clinical.get("center", "")) for c in ds.cases} - {""})
    synthetic = "true_probability" in ds.columns
    parts = []
    for cohort in ("train", "test"):
        cs = [c for c in out if c.cohort == cohort]
        if cs:
            parts.append(f"{cohort}: {len(cs)} cases, {sum(c.recurrence for c in cs)} recurrences")
    description = (
        f"{'Synthetic cohort (sinusapp synth phantoms)' if synthetic else 'Dataset'} "
        f"'{Path(path).name}'; {'; '.join(parts)}"
        + (f"; centres {', '.join(centers)}" if centers else "")
        + "."
    )
    return out, description
