"""Lesion refinement on the CT's own grid (the bundle's ``postprocessing.grow_mm``).

The network sees the CT at the bundle's ``spacing_mm`` (1.25 mm); mapped back by trilinear
interpolation, its lesion edge can sit a CT voxel or so short of where the CT shows it. On the
real-anatomy validation crops the missed voxels were the reference lesion's outermost CT voxel
(median 0.6-0.8 mm inside its edge) and the extra ones the first voxel outside it.
:func:`grow_into_cavities` moves the edge onto the CT's own grid: the lesion grows, by at most
a few millimetres and only through connected voxels, into soft-tissue density inside the
model's sinus cavities. It never enters air (the lesion stops at the air-mucosa surface the CT
shows) and never leaves the cavities (bone, muscle and the turbinates stay out).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from sinusapp.imaging.volume import Volume
from sinusapp.model.config import Postprocessing

__all__ = ["grow_into_cavities", "lesion_mask"]


def grow_into_cavities(
    mask: np.ndarray,
    *,
    volume: Volume,
    cavities: np.ndarray,
    max_mm: float,
    min_hu: float,
) -> np.ndarray:
    """The lesion ``mask`` grown into the soft tissue of the ``cavities`` it touches.

    Parameters
    ----------
    mask:
        The lesion on the CT grid (bool or 0/1, the CT's shape).
    volume:
        The CT (its HU and voxel spacing).
    cavities:
        Where the sinus cavities are on the CT grid (non-zero: inside; the sinus head's
        labels).
    max_mm:
        The farthest a grown voxel may lie from the original lesion, in mm along each axis.
    min_hu:
        The least HU a voxel needs to be grown into.

    Returns
    -------
    numpy.ndarray
        uint8 mask (the CT's shape): the lesion and the voxels it grew into. Only the box
        around the lesion (plus ``max_mm``) is computed.
    """
    if mask.shape != volume.shape or cavities.shape != volume.shape:
        raise ValueError(
            f"mask {mask.shape} and cavities {cavities.shape} must have the CT's shape "
            f"{volume.shape}"
        )
    found = _bounding_box(mask)
    if max_mm <= 0 or found is None:
        return np.asarray(mask, dtype=np.uint8).copy()
    spacing = np.asarray(volume.spacing_mm, float)
    reach = np.ceil(max_mm / spacing - 1e-6).astype(int)
    lo = np.maximum(found[0] - reach - 1, 0)
    hi = np.minimum(found[1] + reach + 2, np.asarray(volume.shape))
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    base = np.asarray(mask[box]).astype(bool)
    # within max_mm of the lesion along each axis: a box neighbourhood, separable and so
    # ~20x cheaper than a Euclidean distance map of the box (0.03 s vs 0.75 s on a 4.7 M-voxel
    # crop); the grown voxels must also connect to the lesion through allowed voxels
    near = ndimage.maximum_filter(base, size=tuple(int(2 * r + 1) for r in reach))
    allow = near & ~base & (cavities[box] != 0) & (volume.array[box] >= min_hu)
    del near
    # the mask is all zero outside the box: a fresh zero array (its pages are only touched
    # inside the box) instead of a copy of the CT-sized mask
    out = np.zeros(volume.shape, np.uint8)
    out[box] = ndimage.binary_propagation(base, mask=base | allow) if allow.any() else base
    return out


def _bounding_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(first, last) index of the non-zero voxels per axis, or None: from the projections,
    which read the mask twice instead of listing every voxel as ``np.argwhere`` does (0.34 s
    for a 277 k-voxel lesion on a 300×512×512 CT)."""
    plane = np.asarray(mask).any(axis=0)
    if not plane.any():
        return None
    first: list[int] = []
    last: list[int] = []
    for profile in (np.asarray(mask).any(axis=(1, 2)), plane.any(axis=1), plane.any(axis=0)):
        idx = np.flatnonzero(profile)
        first.append(int(idx[0]))
        last.append(int(idx[-1]))
    return np.asarray(first), np.asarray(last)


def lesion_mask(
    probability: np.ndarray,
    *,
    block_affine: np.ndarray,
    volume: Volume,
    postprocessing: Postprocessing,
    cavities: np.ndarray | None,
) -> np.ndarray:
    """The lesion probability on the block → the uint8 lesion mask on the CT grid.

    The bundle's post-processing in order: its component filter / opening on the block
    (:meth:`Postprocessing.apply`), the trilinear map back at ``lesion_threshold``
    (:func:`~sinusapp.model.preprocess.map_back`), then the growth into the ``cavities`` (the
    sinus head's labels on the CT grid) when ``grow_mm`` is set and there are cavities. The
    Predictor and the benchmark that chooses the post-processing both call this, so what is
    chosen is what runs. (``mirror_average`` acts before: on ``probability``.)
    """
    from sinusapp.model.preprocess import map_back

    post = postprocessing
    mask = map_back(
        post.apply(probability),
        block_affine=block_affine,
        volume=volume,
        threshold=post.lesion_threshold,
    )
    if post.grow_mm > 0 and cavities is not None:
        mask = grow_into_cavities(
            mask, volume=volume, cavities=cavities, max_mm=post.grow_mm, min_hu=post.grow_min_hu
        )
    return mask
