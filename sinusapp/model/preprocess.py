"""From a CT :class:`~sinusapp.imaging.volume.Volume` to the network's input block, and back.

numpy / scipy only (no torch), so it can be tested and used anywhere.

1. :func:`locate_sinus_region` finds the nasal cavity and paranasal sinuses on any head CT
   (whole head or part of it): on a ~3 mm grid, air (< −400 HU) enclosed by the body in the
   (near-)axial planes, within ~6 mm of bone (> 300 HU), in components that are neither huge
   (lungs) nor far from the head's midline (mastoids, ear canals). A CT without such air —
   chest, brain-only slab, a single slice — is refused with
   :class:`~sinusapp.errors.NotSinusCTError`.
2. :func:`make_block_affine` places an LPS-aligned block of ``block_shape`` voxels of
   ``spacing_mm`` (axes superior, posterior, left) on the region's centre.
3. :func:`resample_to_block` crops the CT to the block's footprint, block-averages it to about
   the target resolution (anti-aliasing; makes the input independent of the scanner's pixel
   size) and interpolates trilinearly — any affine, oblique or tilted, is handled because the
   mapping is done in physical LPS space.
4. :func:`normalise_hu` clips to the HU window and maps it onto [−1, 1].
5. :func:`map_back` interpolates the block's lesion probability onto the original CT grid and
   thresholds it (uint8 mask of the CT's shape).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from sinusapp.errors import NotSinusCTError
from sinusapp.imaging.volume import Volume
from sinusapp.model.config import PreprocessConfig

__all__ = [
    "PreparedBlock",
    "SinusRegion",
    "locate_sinus_region",
    "make_block_affine",
    "map_back",
    "normalise_hu",
    "prepare_block",
    "resample_mask_to_block",
    "resample_to_block",
]

log = logging.getLogger(__name__)

_AIR_HU = -400
_BODY_HU = -400
_BONE_HU = 300
_COARSE_MM = 3.0
_MIN_EXTENT_MM = 30.0
_MIN_AIR_ML = 1.5
_MAX_COMPONENT_ML = 400.0
_MAX_MIDLINE_MM = 45.0
_MAX_HEAD_WIDTH_MM = 300.0
_BONE_NEAR_FRACTION = 0.25
_HINT = (
    "Choose the patient's paranasal-sinus CT (axial, covering the nasal cavity and the "
    "maxillary, ethmoid, frontal and sphenoid sinuses)."
)


@dataclass(frozen=True, slots=True)
class SinusRegion:
    """Where the sinus region is on a CT.

    Attributes
    ----------
    center_lps:
        Centre of the block to crop, LPS mm.
    air_volume_ml:
        Volume of the enclosed, bone-bounded air that was found (nasal cavity + sinuses).
    midline_x_mm:
        LPS x of the head's midline at that level.
    n_components:
        Number of air components kept.
    """

    center_lps: np.ndarray
    air_volume_ml: float
    midline_x_mm: float
    n_components: int


@dataclass(frozen=True, slots=True)
class PreparedBlock:
    """The network's input and where it came from.

    Attributes
    ----------
    image:
        float32 ``block_shape`` array, normalised HU in [−1, 1].
    affine:
        4×4 block index → LPS mm.
    region:
        The located :class:`SinusRegion`.
    """

    image: np.ndarray
    affine: np.ndarray
    region: SinusRegion


def _coarse_view(volume: Volume, target_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strided sample (air/body) and block maximum (bone) at ~target_mm, and their affine."""
    arr = volume.array
    steps = [max(1, round(target_mm / s)) for s in volume.spacing_mm]
    n = [max(1, arr.shape[a] // steps[a]) for a in range(3)]
    # A 6-D strided view [block, offset] per axis: no copy of the (possibly huge) CT.
    st = arr.strides
    blocks = np.lib.stride_tricks.as_strided(
        arr,
        shape=(n[0], steps[0], n[1], steps[1], n[2], steps[2]),
        strides=(st[0] * steps[0], st[0], st[1] * steps[1], st[1], st[2] * steps[2], st[2]),
        writeable=False,
    )
    sample = blocks[:, steps[0] // 2, :, steps[1] // 2, :, steps[2] // 2]
    block_max = blocks.max(axis=(1, 3, 5))
    aff = volume.affine.copy()
    aff[:3, :3] = volume.affine[:3, :3] * np.asarray(steps, float)
    aff[:3, 3] = volume.affine[:3, 3] + volume.affine[:3, :3] @ (np.asarray(steps) // 2)
    return np.ascontiguousarray(sample), block_max, aff


def locate_sinus_region(volume: Volume) -> SinusRegion:
    """Find the nasal cavity / paranasal sinus region of a head CT.

    Parameters
    ----------
    volume:
        The CT (any orientation; whole head or part of it).

    Returns
    -------
    SinusRegion

    Raises
    ------
    NotSinusCTError
        The CT covers too little (a single slice or a thin slab) or contains no air-filled
        cavity enclosed by bone near the midline (a chest CT, a brain-only slab, ...).
    """
    extent = np.asarray(volume.extent_mm)
    if min(volume.shape) < 3 or extent.min() < _MIN_EXTENT_MM:
        raise NotSinusCTError(
            f"The CT covers only {extent[0]:.0f} × {extent[1]:.0f} × {extent[2]:.0f} mm "
            f"({volume.shape[0]} slices); the sinus region needs at least "
            f"{_MIN_EXTENT_MM:.0f} mm in every direction, so this cannot be a sinus CT "
            "(a single slice, localizer or thin slab?).",
            hint=_HINT,
        )
    sample, block_max, aff = _coarse_view(volume, _COARSE_MM)
    voxel_ml = abs(np.linalg.det(aff[:3, :3])) / 1000.0
    body = sample > _BODY_HU
    air = sample < _AIR_HU
    bone = block_max > _BONE_HU
    # Fill holes plane by plane in the planes closest to axial: the nasal cavity and sinuses
    # are holes of the body in axial planes even though they open to the outside (nostrils,
    # pharynx leaving the field of view), which defeats a 3-D fill.
    axial_axis = int(np.argmax(np.abs(aff[2, :3]) / np.linalg.norm(aff[:3, :3], axis=0)))
    planar = np.zeros((3, 3, 3), bool)
    index = [slice(None)] * 3
    index[axial_axis] = 1  # type: ignore[call-overload]
    planar[tuple(index)] = ndimage.generate_binary_structure(2, 1)
    filled = ndimage.binary_fill_holes(body, structure=planar)
    enclosed_air = air & filled
    bone_near = ndimage.binary_dilation(bone, iterations=2)
    labels, n_comp = ndimage.label(enclosed_air)
    if n_comp == 0:
        raise NotSinusCTError(
            "No air-filled cavity enclosed by the body was found in this CT, so it does not "
            "contain the nasal cavity and paranasal sinuses (a brain-only or limb CT?).",
            hint=_HINT,
        )
    idx = np.arange(1, n_comp + 1)
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, idx)
    near = ndimage.sum_labels(bone_near, labels, idx)
    vol_ml = sizes * voxel_ml
    frac = near / np.maximum(sizes, 1)
    keep = (vol_ml >= 0.05) & (vol_ml <= _MAX_COMPONENT_ML) & (frac >= _BONE_NEAR_FRACTION)
    if not keep.any():
        largest = float(vol_ml.max())
        raise NotSinusCTError(
            "No air-filled cavity enclosed by bone was found in this CT "
            f"(largest enclosed air: {largest:.0f} mL, {frac[np.argmax(vol_ml)]:.0%} of it near "
            "bone), so it does not contain the nasal cavity and paranasal sinuses (a chest or "
            "abdominal CT?).",
            hint=_HINT,
        )
    # Midline: centre of the bone (skull, facial bones) in the planes holding candidate air.
    cand = np.isin(labels, idx[keep]) & bone_near
    cand_idx = np.argwhere(cand)
    cand_lps = cand_idx @ aff[:3, :3].T + aff[:3, 3]
    bone_idx = np.argwhere(bone)
    if bone_idx.size == 0:  # pragma: no cover - bone_near implies bone
        raise NotSinusCTError("No bone was found in this CT.", hint=_HINT)
    bone_lps = bone_idx @ aff[:3, :3].T + aff[:3, 3]
    z_lo, z_hi = np.percentile(cand_lps[:, 2], [5, 95])
    in_band = (bone_lps[:, 2] >= z_lo - 10) & (bone_lps[:, 2] <= z_hi + 10)
    band = bone_lps[in_band] if in_band.sum() > 10 else bone_lps
    x_lo, x_hi = np.percentile(band[:, 0], [1, 99])
    midline = 0.5 * (x_lo + x_hi)
    width = x_hi - x_lo
    if width > _MAX_HEAD_WIDTH_MM:
        raise NotSinusCTError(
            f"The body is {width:.0f} mm wide at the level of its enclosed air; a head is "
            f"narrower than {_MAX_HEAD_WIDTH_MM:.0f} mm, so this is not a sinus CT "
            "(a chest or abdominal CT?).",
            hint=_HINT,
        )
    central = np.abs(cand_lps[:, 0] - midline) <= _MAX_MIDLINE_MM
    air_ml = float(central.sum() * voxel_ml)
    if air_ml < _MIN_AIR_ML:
        raise NotSinusCTError(
            f"Only {air_ml:.1f} mL of air enclosed by bone was found near the midline of this "
            f"CT (the nasal cavity and sinuses hold more than {_MIN_AIR_ML:.1f} mL even when "
            "diseased), so it does not seem to contain the nasal cavity and paranasal sinuses "
            "(a brain-only slab, or a CT that stops above the skull base?).",
            hint=_HINT,
        )
    pts = cand_lps[central]
    # Centre of the air's robust extent (not its median: the large nasal cavity and
    # maxillary sinuses would pull it below the ethmoid / frontal sinuses).
    lo_yz = np.percentile(pts[:, 1:], 2, axis=0)
    hi_yz = np.percentile(pts[:, 1:], 98, axis=0)
    mid_yz = 0.5 * (lo_yz + hi_yz)
    center = np.array([midline, mid_yz[0], mid_yz[1]])
    n_kept = len(np.unique(labels[tuple(cand_idx[central].T)]))
    log.debug(
        "sinus region at %s LPS mm: %.1f mL enclosed air in %d components, midline x=%.1f",
        np.round(center, 1),
        air_ml,
        n_kept,
        midline,
    )
    return SinusRegion(
        center_lps=center, air_volume_ml=air_ml, midline_x_mm=float(midline), n_components=n_kept
    )


def make_block_affine(center_lps: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Index → LPS affine of the block centred on ``center_lps``.

    Block axes: 0 = superior (+z), 1 = posterior (+y), 2 = left (+x), isotropic spacing.
    """
    s = config.spacing_mm
    a = np.eye(4)
    a[:3, :3] = np.array([[0.0, 0.0, s], [0.0, s, 0.0], [s, 0.0, 0.0]])
    half = (np.asarray(config.block_shape, float) - 1) / 2
    a[:3, 3] = np.asarray(center_lps, float) - a[:3, :3] @ half
    return a


def _footprint(
    src_affine: np.ndarray,
    dst_affine: np.ndarray,
    dst_shape: tuple[int, ...],
    src_shape: tuple[int, ...],
    margin: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Index bounding box [lo, hi) in the source grid of the destination grid's corners."""
    corners = np.array(
        [
            [i, j, k]
            for i in (0, dst_shape[0] - 1)
            for j in (0, dst_shape[1] - 1)
            for k in (0, dst_shape[2] - 1)
        ],
        float,
    )
    m = np.linalg.inv(src_affine) @ dst_affine
    src = corners @ m[:3, :3].T + m[:3, 3]
    lo = np.floor(src.min(0)).astype(int) - margin
    hi = np.ceil(src.max(0)).astype(int) + margin + 1
    lo = np.clip(lo, 0, np.asarray(src_shape))
    hi = np.clip(hi, 0, np.asarray(src_shape))
    if np.any(hi <= lo):
        return None
    return lo, hi


def _block_mean(
    array: np.ndarray, affine: np.ndarray, factors: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Average non-overlapping blocks of ``factors`` voxels (float32) and adjust the affine."""
    f = np.asarray(factors)
    if np.all(f == 1):
        return array.astype(np.float32, copy=False), affine
    n = np.maximum(np.asarray(array.shape) // f, 1)
    f = np.minimum(f, np.asarray(array.shape))
    t = array[: n[0] * f[0], : n[1] * f[1], : n[2] * f[2]]
    out = t.reshape(n[0], f[0], n[1], f[1], n[2], f[2]).mean(axis=(1, 3, 5), dtype=np.float32)
    aff = affine.copy()
    aff[:3, :3] = affine[:3, :3] * f.astype(float)
    aff[:3, 3] = affine[:3, 3] + affine[:3, :3] @ ((f - 1) / 2.0)
    return out, aff


def _resample(
    array: np.ndarray,
    affine: np.ndarray,
    dst_affine: np.ndarray,
    dst_shape: tuple[int, int, int],
    *,
    target_mm: float,
    cval: float,
) -> np.ndarray:
    """Resample ``array`` (index→LPS ``affine``) onto the destination grid (float32)."""
    box = _footprint(affine, dst_affine, dst_shape, array.shape, margin=2)
    if box is None:
        return np.full(dst_shape, cval, np.float32)
    lo, hi = box
    sub = array[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    sub_aff = affine.copy()
    sub_aff[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    factors = tuple(max(1, int(target_mm / s + 1e-6)) for s in spacing)
    sub_f, sub_aff = _block_mean(sub, sub_aff, factors)
    m = np.linalg.inv(sub_aff) @ dst_affine
    return ndimage.affine_transform(
        sub_f,
        m[:3, :3],
        offset=m[:3, 3],
        output_shape=dst_shape,
        order=1,
        cval=cval,
        output=np.float32,
        prefilter=False,
    )


def resample_to_block(
    volume: Volume, *, block_affine: np.ndarray, config: PreprocessConfig
) -> np.ndarray:
    """The CT's HU resampled onto the block (float32, ``config.block_shape``)."""
    return _resample(
        volume.array,
        volume.affine,
        block_affine,
        config.block_shape,
        target_mm=config.spacing_mm,
        cval=config.outside_hu,
    )


def resample_mask_to_block(
    mask: np.ndarray,
    *,
    volume: Volume,
    block_affine: np.ndarray,
    config: PreprocessConfig,
    soft: bool = False,
) -> np.ndarray:
    """A binary mask on the CT grid resampled onto the block.

    Returns the uint8 mask (partial volume ≥ 0.5) or, with ``soft=True``, the float32
    partial-volume fraction in [0, 1] (training targets: thin mucosal thickening survives
    the coarser grid as fractions instead of vanishing below the 0.5 threshold).
    """
    if mask.shape != volume.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the CT's {volume.shape}")
    frac = _resample(
        (mask > 0).astype(np.uint8),
        volume.affine,
        block_affine,
        config.block_shape,
        target_mm=config.spacing_mm,
        cval=0.0,
    )
    if soft:
        return np.clip(frac, 0.0, 1.0)
    return (frac >= 0.5).astype(np.uint8)


def normalise_hu(hu: np.ndarray, *, config: PreprocessConfig) -> np.ndarray:
    """Clip to ``config.hu_window`` and map linearly onto [−1, 1] (float32)."""
    lo, hi = config.hu_window
    out = np.clip(np.asarray(hu, np.float32), lo, hi)
    out -= (lo + hi) / 2
    out *= 2.0 / (hi - lo)
    return out


def prepare_block(
    volume: Volume, *, config: PreprocessConfig, region: SinusRegion | None = None
) -> PreparedBlock:
    """Locate (unless ``region`` is given), resample and normalise: the network's input."""
    if region is None:
        region = locate_sinus_region(volume)
    aff = make_block_affine(region.center_lps, config)
    hu = resample_to_block(volume, block_affine=aff, config=config)
    return PreparedBlock(image=normalise_hu(hu, config=config), affine=aff, region=region)


def map_back(
    probability: np.ndarray,
    *,
    block_affine: np.ndarray,
    volume: Volume,
    threshold: float = 0.5,
) -> np.ndarray:
    """Lesion probability on the block → uint8 mask on the CT grid (the CT's shape).

    Only the part of the CT covered by the block's above-threshold region (plus a margin) is
    interpolated, so this costs little even for a 512×512×300 CT.
    """
    mask = np.zeros(volume.shape, np.uint8)
    hot = probability >= threshold
    if not hot.any():
        return mask
    nz = np.argwhere(hot)
    blo = np.maximum(nz.min(0) - 1, 0)
    bhi = np.minimum(nz.max(0) + 2, np.asarray(probability.shape))
    sub_prob = np.ascontiguousarray(
        probability[blo[0] : bhi[0], blo[1] : bhi[1], blo[2] : bhi[2]], np.float32
    )
    sub_baff = block_affine.copy()
    sub_baff[:3, 3] = block_affine[:3, :3] @ blo + block_affine[:3, 3]
    box = _footprint(volume.affine, sub_baff, sub_prob.shape, volume.shape, margin=1)
    if box is None:
        return mask
    lo, hi = box
    ct_sub_aff = volume.affine.copy()
    ct_sub_aff[:3, 3] = volume.affine[:3, :3] @ lo + volume.affine[:3, 3]
    m = np.linalg.inv(sub_baff) @ ct_sub_aff
    out_shape = tuple(int(v) for v in hi - lo)
    prob_ct = ndimage.affine_transform(
        sub_prob,
        m[:3, :3],
        offset=m[:3, 3],
        output_shape=out_shape,
        order=1,
        cval=0.0,
        output=np.float32,
        prefilter=False,
    )
    mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = prob_ct >= threshold
    return mask
