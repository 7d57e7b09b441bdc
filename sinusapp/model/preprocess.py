"""From a CT :class:`~sinusapp.imaging.volume.Volume` to the network's input block, and back.

numpy / scipy only (no torch), so it can be tested and used anywhere.

1. :func:`locate_sinus_region` finds the nasal cavity and paranasal sinuses on any head CT
   (whole head in a large field of view with couch and holders, sinus-protocol coverage, a
   crop, a tilted stack, an uncalibrated scanner): air and soft-tissue levels from the CT's
   own histogram, the head as the largest body component, air enclosed by it next to bone,
   the head's midline by mirror symmetry, and the sinonasal complex as the densest laterally
   spread air near the midline (the maxillary sinuses either side of the nasal cavity; not
   the narrow pharynx, not the far-lateral mastoids). A CT without such air — chest,
   brain-only slab, a single slice, a bare skull phantom — is refused with
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
from sinusapp.imaging.volume import Volume, sub_grid_affine
from sinusapp.model.config import PreprocessConfig

__all__ = [
    "PreparedBlock",
    "SinusRegion",
    "locate_sinus_region",
    "make_block_affine",
    "map_back",
    "map_back_box",
    "normalise_hu",
    "prepare_block",
    "resample_mask_to_block",
    "resample_to_block",
]

log = logging.getLogger(__name__)

_COARSE_MM = 2.0
_MIN_EXTENT_MM = 30.0
_MIN_AIR_ML = 1.5
_MAX_COMPONENT_ML = 400.0
_MAX_MIDLINE_MM = 45.0
_MAX_HEAD_WIDTH_MM = 300.0
_BONE_NEAR_FRACTION = 0.25
_BONE_NEAR_MM = 6.0
_BONE_ABOVE_SOFT_HU = 300.0
_OPEN_MM = 4.0
# (x, y, z) mm: the box in which laterally spread air is summed, and the half-size of the
# neighbourhood whose air extent gives the centre
_DENSE_BOX_MM = (72.0, 48.0, 48.0)
_EXTENT_HALF_MM = (50.0, 40.0, 40.0)
_MAXILLARY_MIN_LATERAL_MM = 14.0
_CUT_FACE_FRACTION = 0.3
_NASAL_AHEAD_MM = 20.0
_NASAL_BEHIND_MM = 8.0
_LOCAL_BONE_HALF_MM = (35.0, 30.0, 30.0)
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
        Volume of the enclosed air next to bone found around the centre (nasal cavity and
        sinuses; the air whose extent placed the centre).
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
    """Block mean (float32) and block maximum of the CT at ~target_mm, and their affine.

    The mean tames the noise of thin slices; the maximum keeps thin bone (lamina papyracea,
    septa) that a mean would wash out.
    """
    arr = volume.array
    steps = [
        min(max(1, round(target_mm / s)), n)
        for s, n in zip(volume.spacing_mm, arr.shape, strict=True)
    ]
    n = [arr.shape[a] // steps[a] for a in range(3)]
    trimmed = arr[: n[0] * steps[0], : n[1] * steps[1], : n[2] * steps[2]]
    # Reduce one axis at a time with strided element-wise operations (numpy's reductions
    # over a short inner axis are slow); each pass shrinks what the next one reads.
    mx: np.ndarray = trimmed
    sm: np.ndarray = trimmed.astype(np.int32) if all(st == 1 for st in steps) else trimmed
    for axis, step in enumerate(steps):
        if step == 1:
            continue
        take = [slice(None)] * 3
        take[axis] = slice(0, None, step)
        acc_max = mx[tuple(take)].copy()
        acc_sum = sm[tuple(take)].astype(np.int32)
        for offset in range(1, step):
            take[axis] = slice(offset, None, step)
            np.maximum(acc_max, mx[tuple(take)], out=acc_max)
            acc_sum += sm[tuple(take)]
        mx, sm = acc_max, acc_sum
    block_max = mx
    mean = sm.astype(np.float32) / float(np.prod(steps))
    aff = volume.affine.copy()
    aff[:3, :3] = volume.affine[:3, :3] * np.asarray(steps, float)
    aff[:3, 3] = volume.affine[:3, 3] + volume.affine[:3, :3] @ ((np.asarray(steps) - 1) / 2.0)
    return mean, block_max, aff


@dataclass(frozen=True, slots=True)
class _Levels:
    """CT numbers of air and soft tissue read from the scan's own histogram."""

    air_hu: float
    soft_hu: float
    padding_hu: float | None  # value of the outside-the-reconstruction fill, if any

    @property
    def air_threshold(self) -> float:
        """Halfway between air and soft tissue: the air / body boundary of this scan."""
        return 0.5 * (self.air_hu + self.soft_hu)

    @property
    def bone_threshold(self) -> float:
        """Bone: clearly above soft tissue."""
        return self.soft_hu + _BONE_ABOVE_SOFT_HU


def _estimate_levels(mean: np.ndarray, vmin: float) -> _Levels:
    """Air and soft-tissue levels from the histogram (uncalibrated scanners read air at −500).

    Soft tissue is the histogram's mode between −250 and +250 HU. Air is the mode below
    soft tissue − 250 HU. A spike at the CT's minimum lying well below that air mode is the
    fill outside the reconstruction circle (or outside a resampled, tilted stack), not air.
    """
    values = mean.ravel()
    edges = np.arange(-1600.0, 1001.0, 10.0)
    hist, _ = np.histogram(values, bins=len(edges) - 1, range=(edges[0], edges[-1]))
    hist = ndimage.uniform_filter1d(hist.astype(float), 5)
    centres = 0.5 * (edges[:-1] + edges[1:])
    soft_sel = (centres >= -250) & (centres <= 250)
    soft = float(centres[soft_sel][np.argmax(hist[soft_sel])])
    at_min = values <= vmin + 0.5
    rest = values[~at_min] if at_min.mean() < 0.999 else values
    hist_rest, _ = np.histogram(rest, bins=len(edges) - 1, range=(edges[0], edges[-1]))
    hist_rest = ndimage.uniform_filter1d(hist_rest.astype(float), 5)
    air_sel = centres <= soft - 250
    if hist_rest[air_sel].sum() <= 0:
        air = -1000.0
    else:
        air = float(centres[air_sel][np.argmax(hist_rest[air_sel])])
    # The minimum is a fill value only when it lies clearly below the air the scan shows
    # (harvard-like −1200 fill with −500 air, −1500 fill of a resampled tilted stack); a CT
    # that clips its air at the minimum (−1024) keeps that air.
    padding = vmin if (at_min.any() and vmin < air - 100.0) else None
    if padding is None and at_min.mean() > 0.02 and vmin < air + 60.0:
        air = min(air, vmin)
    return _Levels(air_hu=air, soft_hu=soft, padding_hu=padding)


def _planar_structure(aff: np.ndarray, connectivity: int = 1) -> tuple[np.ndarray, int]:
    """3×3×3 structure connecting only within the plane closest to axial, and that axis."""
    axial_axis = int(np.argmax(np.abs(aff[2, :3]) / np.linalg.norm(aff[:3, :3], axis=0)))
    planar = np.zeros((3, 3, 3), bool)
    index: list[int | slice] = [slice(None)] * 3
    index[axial_axis] = 1
    planar[tuple(index)] = ndimage.generate_binary_structure(2, connectivity)
    return planar, axial_axis


def _head_mask(body: np.ndarray, voxel_mm: np.ndarray) -> np.ndarray:
    """The largest body component after an opening that cuts the couch and head holders off."""
    size = tuple(int(2 * max(1, round(_OPEN_MM / v)) + 1) for v in voxel_mm)
    # grey min / max filters over a box are separable: far faster than a ball's erosion
    opened = ndimage.maximum_filter(ndimage.minimum_filter(body.view(np.uint8), size), size) > 0
    labels, n = ndimage.label(opened)
    if n == 0:
        return opened
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    head = labels == int(np.argmax(sizes))
    # give back what the opening shaved off the head's surface (not the detached couch)
    return (ndimage.maximum_filter(head.view(np.uint8), size) > 0) & body


def _fill_axial_holes(head: np.ndarray, aff: np.ndarray) -> np.ndarray:
    """Fill the head's holes plane by plane in the planes closest to axial.

    The nasal cavity and sinuses are holes of the body in axial planes even though they open
    to the outside (nostrils, pharynx leaving the field of view), which defeats a 3-D fill.
    Where the head is cut by the field of view (a crop, sinus-protocol coverage), the cut
    faces count as body: the nasal cavity reaching the crop's edge is still inside the head.
    """
    planar, axial_axis = _planar_structure(aff)
    pad = [(0, 0)] * 3
    for axis in range(3):
        if axis != axial_axis:
            pad[axis] = (1, 1)
    padded = np.pad(head, pad)
    for axis in range(3):
        if axis == axial_axis:
            continue
        for end in (0, -1):
            face = np.take(head, end, axis=axis)
            if face.mean() >= _CUT_FACE_FRACTION:
                index: list[int | slice] = [slice(None)] * 3
                index[axis] = end
                padded[tuple(index)] = True
    filled = ndimage.binary_fill_holes(padded, structure=planar)
    crop = tuple(slice(1, -1) if axis != axial_axis else slice(None) for axis in range(3))
    filled = filled[crop]
    # A nasal cavity open to the front (nostrils; a crop that cuts through the nose) is no
    # hole; it lies, though, between the head's tissue along both in-plane directions.
    span = np.ones(head.shape, bool)
    for axis in range(3):
        if axis == axial_axis:
            continue
        ahead = np.logical_or.accumulate(head, axis=axis)
        behind = np.flip(np.logical_or.accumulate(np.flip(head, axis=axis), axis=axis), axis=axis)
        span &= ahead & behind
    return filled | span


def _symmetry_midline(x_mm: np.ndarray, weights: np.ndarray, lo: float, hi: float) -> float:
    """x about which the weighted points are most mirror-symmetric (1-D autocorrelation).

    The skull and facial bones are paired about the midsagittal plane, while a couch, a head
    holder or a marker is not (and the bounds of an asymmetric crop are irrelevant).
    """
    step = 2.0
    origin = np.floor(x_mm.min() / step) * step
    idx = np.round((x_mm - origin) / step).astype(int)
    profile = np.bincount(idx, weights=weights).astype(float)
    profile = ndimage.gaussian_filter1d(profile, 1.0)
    corr = np.convolve(profile, profile)  # corr[n] = Σ p[i] p[n − i]: symmetric about n / 2
    centres = origin + step * np.arange(corr.size) / 2.0
    ok = (centres >= lo) & (centres <= hi)
    if not ok.any():
        return 0.5 * (lo + hi)
    return float(centres[ok][np.argmax(corr[ok])])


def _presence_midline(x_mm: np.ndarray, lo: float, hi: float) -> float:
    """Mirror-symmetry centre of points, counting each 2 mm column by the root of its count."""
    origin = np.floor(x_mm.min() / 2.0) * 2.0
    counts = np.bincount(np.round((x_mm - origin) / 2.0).astype(int))
    cols = origin + 2.0 * np.arange(len(counts))
    return _symmetry_midline(cols, np.sqrt(counts), lo, hi)


def locate_sinus_region(volume: Volume) -> SinusRegion:
    """Find the nasal cavity / paranasal sinus region of a head CT.

    Works on whole heads in a large field of view (couch, head holders, neck), on
    sinus-protocol coverage, on crops, on tilted stacks and on uncalibrated scanners:

    1. a ~2 mm block mean (and block maximum for bone) of the CT;
    2. air and soft-tissue levels from its histogram (air may read −500 HU), the fill outside
       the reconstruction recognised as such;
    3. the head: the largest body component after a 4 mm opening (detaches the couch and
       holders), holes filled plane by plane in the near-axial planes;
    4. candidate air: air enclosed by the head, within ~6 mm of bone, in components smaller
       than lungs; a first midline where that air is most mirror-symmetric (air is blind to
       a couch, a support or a marker touching the head);
    5. the sinonasal complex is the place where the candidate air within 45 mm of the
       midline, weighted by its distance from the midline, is densest in a box of its size
       (≈ 70 × 50 × 50 mm): the maxillary sinuses are the large paired air spaces that
       spread laterally, the pharynx is narrow, the mastoids and ear canals are too lateral;
    6. the midline refined there, on the air around the place and then on the bone around
       it (septum, medial maxillary and ethmoid walls: a turned head, one-sided disease);
    7. the centre: on that midline, the robust height of the candidate air around the place
       (maxillary floor to ethmoid roof) and, front to back, the maxillary sinuses' depth
       widened to the nasal cavity's (about 20 mm further forward, 8 mm further back).

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
        cavity enclosed by bone near the midline (a chest CT, a brain-only slab, a bare skull
        phantom, ...).
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
    mean, block_max, aff = _coarse_view(volume, _COARSE_MM)
    voxel_mm = np.linalg.norm(aff[:3, :3], axis=0)
    voxel_ml = abs(np.linalg.det(aff[:3, :3])) / 1000.0
    levels = _estimate_levels(mean, float(volume.array.min()))
    valid = (
        mean > levels.padding_hu + 0.5
        if levels.padding_hu is not None
        else np.ones(mean.shape, bool)
    )
    body = (mean > levels.air_threshold) & valid
    if body.any():
        # Work on the body's bounding box only: a head fills a fraction of a 500 mm field.
        nz = [np.flatnonzero(body.any(axis=tuple(b for b in range(3) if b != a))) for a in range(3)]
        lo = np.array([max(int(v[0]) - 2, 0) for v in nz])
        hi = np.array([min(int(v[-1]) + 3, body.shape[a]) for a, v in enumerate(nz)])
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        mean, block_max, body, valid = mean[box], block_max[box], body[box], valid[box]
        aff = aff.copy()
        aff[:3, 3] = aff[:3, 3] + aff[:3, :3] @ lo
    air = (mean < levels.air_threshold) & valid
    bone = block_max > levels.bone_threshold
    head = _head_mask(body, voxel_mm)
    filled = _fill_axial_holes(head, aff)
    enclosed_air = air & filled
    near_size = tuple(int(2 * max(1, round(_BONE_NEAR_MM / v)) + 1) for v in voxel_mm)
    bone_near = ndimage.maximum_filter(bone.view(np.uint8), near_size) > 0
    labels, n_comp = ndimage.label(enclosed_air)
    if n_comp == 0:
        raise NotSinusCTError(
            "No air-filled cavity enclosed by the body was found in this CT, so it does not "
            "contain the nasal cavity and paranasal sinuses (a brain-only or limb CT?).",
            hint=_HINT,
        )
    sizes = np.bincount(labels.ravel(), minlength=n_comp + 1)[1:]
    near = np.bincount(labels[bone_near], minlength=n_comp + 1)[1:]
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
    keep_lut = np.zeros(n_comp + 1, bool)
    keep_lut[1:] = keep
    cand = keep_lut[labels] & bone_near
    cand_idx = np.argwhere(cand)
    cand_lps = cand_idx @ aff[:3, :3].T + aff[:3, 3]
    bone_idx = np.argwhere(bone & head) if (bone & head).any() else np.argwhere(bone)
    if bone_idx.size == 0:  # pragma: no cover - bone_near implies bone
        raise NotSinusCTError("No bone was found in this CT.", hint=_HINT)
    bone_lps = bone_idx @ aff[:3, :3].T + aff[:3, 3]
    z_lo, z_hi = np.percentile(cand_lps[:, 2], [5, 95])
    in_band = (bone_lps[:, 2] >= z_lo - 10) & (bone_lps[:, 2] <= z_hi + 10)
    band = bone_lps[in_band] if in_band.sum() > 10 else bone_lps
    x_lo, x_hi = np.percentile(band[:, 0], [1, 99])
    width = x_hi - x_lo
    if width > _MAX_HEAD_WIDTH_MM:
        raise NotSinusCTError(
            f"The body is {width:.0f} mm wide at the level of its enclosed air; a head is "
            f"narrower than {_MAX_HEAD_WIDTH_MM:.0f} mm, so this is not a sinus CT "
            "(a chest or abdominal CT?).",
            hint=_HINT,
        )
    # First midline: where the enclosed air (sinuses, nasal cavity, mastoids: all paired)
    # is most mirror-symmetric, searched in the central half of the bone's extent. Which x
    # columns hold air counts more than how much (a one-sided opacification thins the air
    # on one side), and air is blind to a couch, a head support or a marker touching the head.
    quarter = 0.25 * width
    midline = _presence_midline(cand_lps[:, 0], x_lo + quarter, x_hi - quarter)
    lateral = np.abs(cand_lps[:, 0] - midline)
    central = lateral <= _MAX_MIDLINE_MM
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
    # The densest place of laterally spread air: weight = distance from the midline
    # (+ a floor so that a narrow nasal cavity on a crop still counts), summed in a box of
    # the sinonasal complex's size, on the LPS-aligned coarse grid of the candidates.
    w = 5.0 + lateral[central]
    step = 4.0
    origin = pts.min(0)
    cell = np.floor((pts - origin) / step).astype(int)
    dims = cell.max(0) + 1
    grid = np.zeros(dims, np.float64)
    np.add.at(grid, tuple(cell.T), w)
    size = np.maximum(np.round(np.asarray(_DENSE_BOX_MM) / step).astype(int), 1)
    dense = ndimage.uniform_filter(grid, size=size, mode="constant")
    # on the midline only: the box's centre column
    mid_cell = int(np.clip(np.floor((midline - origin[0]) / step), 0, dims[0] - 1))
    lo_c = max(0, mid_cell - 1)
    hi_c = min(dims[0], mid_cell + 2)
    sub = dense[lo_c:hi_c]
    best = np.unravel_index(int(np.argmax(sub)), sub.shape)
    peak = origin + step * (np.array(best, float) + 0.5)
    # Refine the midline on the sinonasal air itself: the skull at large is off-centre when
    # the head is turned. Which x columns hold air matters, not how much (a one-sided
    # opacification thins the air on one side but rarely moves its lateral wall).
    local = np.all(np.abs(cand_lps - (midline, peak[1], peak[2])) <= _EXTENT_HALF_MM, axis=1)
    if local.sum() >= 50:
        midline = _presence_midline(cand_lps[local, 0], midline - 20.0, midline + 20.0)
    # ... and finally on the bone right around it (septum, medial maxillary and ethmoid
    # walls), which disease does not move; twice, so that the window is centred.
    for _ in range(2):
        local = np.all(
            np.abs(bone_lps - (midline, peak[1], peak[2])) <= _LOCAL_BONE_HALF_MM, axis=1
        )
        if local.sum() < 50:
            break
        midline = _symmetry_midline(
            bone_lps[local, 0], np.ones(int(local.sum())), midline - 10.0, midline + 10.0
        )
    peak[0] = midline
    # Robust extent of the candidate air around the peak: the region's centre.
    near_peak = np.all(np.abs(cand_lps - peak) <= np.asarray(_EXTENT_HALF_MM), axis=1)
    if near_peak.sum() < 10:
        near_peak = np.abs(cand_lps[:, 0] - midline) <= _MAX_MIDLINE_MM
    sel = cand_lps[near_peak]
    lo_yz = np.percentile(sel[:, 1:], 2, axis=0)
    hi_yz = np.percentile(sel[:, 1:], 98, axis=0)
    mid_yz = 0.5 * (lo_yz + hi_yz)
    # Front to back, the air next to bone is lopsided: the nasal vestibule is framed by
    # cartilage (no bone near it, often cut off by a crop) while the nasopharynx and sphenoid
    # sit on the skull base. The maxillary sinuses (the lateral air) are the reference: the
    # nasal cavity reaches about 20 mm in front of them and about 8 mm behind them.
    lat_sel = np.abs(sel[:, 0] - midline) >= _MAXILLARY_MIN_LATERAL_MM
    if lat_sel.sum() >= 10:
        y_front, y_back = np.percentile(sel[lat_sel, 1], [1, 99])
        mid_yz[0] = 0.5 * (y_front - _NASAL_AHEAD_MM + y_back + _NASAL_BEHIND_MM)
    center = np.array([midline, mid_yz[0], mid_yz[1]])
    region_ml = float(len(sel) * voxel_ml)
    n_kept = len(np.unique(labels[tuple(cand_idx[near_peak].T)]))
    log.debug(
        "sinus region at %s LPS mm: %.1f mL enclosed air near it in %d components, midline "
        "x=%.1f; levels air %.0f / soft %.0f HU",
        np.round(center, 1),
        region_ml,
        n_kept,
        midline,
        levels.air_hu,
        levels.soft_hu,
    )
    return SinusRegion(
        center_lps=center,
        air_volume_ml=region_ml,
        midline_x_mm=float(midline),
        n_components=n_kept,
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
    sub_aff = sub_grid_affine(affine, start=lo)
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
    found = map_back_box(probability, block_affine=block_affine, volume=volume, threshold=threshold)
    if found is not None:
        sub, box = found
        mask[box] = sub
    return mask


def map_back_box(
    probability: np.ndarray,
    *,
    block_affine: np.ndarray,
    volume: Volume,
    threshold: float = 0.5,
) -> tuple[np.ndarray, tuple[slice, slice, slice]] | None:
    """:func:`map_back` without the CT-sized array: ``(bool mask of volume.array[box], box)``.

    ``None`` when nothing is above ``threshold`` on the CT grid's part of the block; the
    mask is False outside ``box``. For callers that combine several maps (the sinus head's
    classes) without a CT-sized temporary each.
    """
    hot = probability >= threshold
    if not hot.any():
        return None
    nz = np.argwhere(hot)
    blo = np.maximum(nz.min(0) - 1, 0)
    bhi = np.minimum(nz.max(0) + 2, np.asarray(probability.shape))
    sub_prob = np.ascontiguousarray(
        probability[blo[0] : bhi[0], blo[1] : bhi[1], blo[2] : bhi[2]], np.float32
    )
    sub_baff = sub_grid_affine(block_affine, start=blo)
    found = _footprint(volume.affine, sub_baff, sub_prob.shape, volume.shape, margin=1)
    if found is None:
        return None
    lo, hi = found
    ct_sub_aff = sub_grid_affine(volume.affine, start=lo)
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
    box = (
        slice(int(lo[0]), int(hi[0])),
        slice(int(lo[1]), int(hi[1])),
        slice(int(lo[2]), int(hi[2])),
    )
    return prob_ct >= threshold, box
