"""Input checks shared by the statistics functions.

The statistics are called by code (the nomogram fit, the evaluation), not typed in by a user,
so a wrong input is a programming error and raises :class:`ValueError` naming the argument.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["as_outcome", "as_scores", "split_by_outcome"]


def as_outcome(y_true: ArrayLike, *, name: str = "y_true") -> NDArray[np.bool_]:
    """Return ``y_true`` as a 1-D boolean array (True = case / event).

    Accepts booleans or the numbers 0 and 1 (any numeric dtype); anything else (NaN, 2, -1,
    strings) raises :class:`ValueError`.
    """
    arr = np.asarray(y_true)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr.copy()
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be booleans or 0/1 numbers, got dtype {arr.dtype}")
    bad = ~np.isin(arr, (0, 1))
    if np.any(bad):
        raise ValueError(
            f"{name} must contain only 0/1 (or booleans); found {arr[bad][:5].tolist()}"
        )
    return arr.astype(bool)


def as_scores(y_score: ArrayLike, *, n: int, name: str = "y_score") -> NDArray[np.float64]:
    """Return ``y_score`` as a finite 1-D float array of length ``n``."""
    arr = np.asarray(y_score, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} values but y_true has {n}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def split_by_outcome(
    y_true: ArrayLike, y_score: ArrayLike, *, name: str = "y_score"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return ``(case_scores, control_scores)``; both groups must be non-empty."""
    y = as_outcome(y_true)
    s = as_scores(y_score, n=y.shape[0], name=name)
    cases, controls = s[y], s[~y]
    if cases.size == 0 or controls.size == 0:
        raise ValueError(
            f"need at least one case and one control, got {cases.size} cases and "
            f"{controls.size} controls"
        )
    return cases, controls
