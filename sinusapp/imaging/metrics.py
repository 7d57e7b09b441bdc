"""Segmentation agreement metrics."""

from __future__ import annotations

import numpy as np

__all__ = ["dice"]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice similarity coefficient 2|A∩B| / (|A|+|B|) of two masks of the same shape.

    Nonzero voxels are foreground. Two empty masks agree perfectly (1.0).

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    if a.shape != b.shape:
        raise ValueError(f"dice: masks have different shapes {a.shape} and {b.shape}")
    fa, fb = a != 0, b != 0
    total = int(fa.sum()) + int(fb.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(fa, fb).sum()) / total
