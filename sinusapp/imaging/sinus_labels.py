"""Automatic sinus-cavity labelling of a head CT (a documented heuristic, not a model).

The network predicts the lesion mask only; per-sinus quantification also needs to know which
voxels belong to which sinus. :func:`label_sinuses` gives a label map (values of
:data:`sinusapp.imaging.quantify.SINUS_LABELS`) from the CT alone:

1. **Where**: the sinus region centre and the head's midline come from
   :func:`sinusapp.model.preprocess.locate_sinus_region` (or ``region_center_lps``).
2. **Cavities**: bone is ``HU > 300``; a cavity voxel is a non-bone voxel that is a hole of the
   bone in an axial, coronal or sagittal plane (2-D hole filling in each of the three array
   planes, united). This keeps air *and* opacified (soft-tissue) sinus content, since both lie
   inside the bony walls, while facial soft tissue outside the walls is not enclosed.
3. **Which sinus**: each cavity voxel gets a zone from its position relative to the centre
   (``u`` = mm to the patient's left of the midline, ``v`` = mm posterior, ``w`` = mm
   superior), with the average adult's layout (the synthetic phantom's head frame):

   ============== ===========================================================
   frontal        superior-anterior: ``w > 17`` and ``v < −27``
   sphenoid       posterior-midline: ``v > 23``, ``w > −11``, ``|u| < 17``
   ethmoid        between the orbits: ``4 ≤ |u| < 17``, ``−7 < w ≤ 20``,
                  ``−28 < v ≤ 23``; anterior / posterior split at 55 % of that
                  side's antero-posterior ethmoid extent (from the front; the
                  basal lamella lies a little behind the middle)
   maxillary      inferior-lateral: ``|u| ≥ 13.5``, ``−50 < w ≤ −4``,
                  ``−26 < v ≤ 22``
   nasal cavity   midline, inferior: ``|u| < 13.5``, ``w ≤ −7`` (or ``|u| < 4``
                  below the frontal zone), ``−45 < v ≤ 45``
   ============== ===========================================================

   The midline is then refined as the middle of the left-right extent of the cavities
   between the orbits (both ethmoid labyrinths and the upper nasal cavity), and the zones
   are recomputed.

4. **Clean-up by connected component** (6-connected cavity components): a component whose
   voxels mostly fall outside every zone (orbit, brain, mastoid) or that is mostly fat
   (the orbits are bone-enclosed too) is dropped; a component that is at least 75 % one
   sinus (an ethmoid cell, a sinus separated by its bony wall) is given that label entirely.
5. **Partial-volume rim**: wall voxels above the bone threshold but below 600 HU (about the
   mean of mucosa and thin bone: mostly cavity content, often thickened mucosa) join their
   labelled neighbour, so that a completely opacified sinus measures close to 100 %.

It degrades to ``None`` (with the reason logged at WARNING) rather than guessing: when the
region cannot be located, when the cavities found are implausibly small or large, or when
neither maxillary sinus is found. It is tuned on the synthetic phantoms (see the tests for
its per-label Dice there); on real CTs, whose anatomy varies far more (pneumatisation,
agger nasi, Haller and Onodi cells, septal deviations), treat its output as a rough
estimate and prefer an explicit label map (``--sinus-labels``).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from sinusapp.imaging.quantify import LABEL_IDS
from sinusapp.imaging.volume import Volume

__all__ = ["label_sinuses", "label_sinuses_box"]

log = logging.getLogger(__name__)

_BONE_HU = 300.0
_FAT_LO_HU, _FAT_HI_HU = -200.0, -40.0
_MAX_FAT_FRACTION = 0.35
_FAT_SMOOTH_MM = 1.0
_CROP_HALF_MM = (62.0, 62.0, 62.0)  # x, y, z around the region centre
# The zones below are laid out around the centre the locator gave before it learned real
# heads: that centre took the extent of all the air (frontal sinus included) and sat about
# 14 mm higher and 8 mm further back than today's centre of the maxillary - nasal - ethmoid
# box (median over synthetic cases). Shifting the anchor keeps the layout.
_ZONES_FROM_REGION_MM = (0.0, 8.0, 14.0)
_MIN_CAVITY_ML = 5.0
_MAX_CAVITY_ML = 250.0
_MIN_MAXILLARY_ML = 1.0
_PURE_FRACTION = 0.75
_ETHMOID_SPLIT = 0.55
_RIM_MAX_HU = 600.0
_MAX_MIDLINE_SHIFT_MM = 6.0
_INSIDE_ZONES_FRACTION = 0.5


def _zones(u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Zone label (``SINUS_LABELS`` values, ethmoid as anterior for now) per point; 0 = none."""
    au = np.abs(u)
    left = u >= 0
    z = np.zeros(u.shape, np.uint8)
    nasal = (v > -45) & (v <= 45) & (((au < 13.5) & (w <= -7)) | ((au < 4) & (w <= 17)))
    z[nasal] = LABEL_IDS["nasal_cavity"]
    maxillary = (au >= 13.5) & (au < 50) & (w > -50) & (w <= -4) & (v > -26) & (v <= 22)
    z[maxillary & left] = LABEL_IDS["maxillary_L"]
    z[maxillary & ~left] = LABEL_IDS["maxillary_R"]
    ethmoid = (au >= 4) & (au < 17) & (w > -7) & (w <= 20) & (v > -28) & (v <= 23)
    z[ethmoid & left] = LABEL_IDS["ethmoid_ant_L"]
    z[ethmoid & ~left] = LABEL_IDS["ethmoid_ant_R"]
    sphenoid = (v > 23) & (v <= 55) & (w > -11) & (w <= 25) & (au < 17)
    z[sphenoid] = LABEL_IDS["sphenoid"]
    frontal = (w > 17) & (w <= 60) & (v < -27) & (v > -65) & (au < 40)
    z[frontal] = LABEL_IDS["frontal"]
    return z


def _enclosed(bone: np.ndarray) -> np.ndarray:
    """Non-bone voxels that are holes of ``bone`` in a plane of any of the three array axes.

    The same set as uniting ``ndimage.binary_fill_holes`` with each in-plane structure (and
    removing the bone), computed as connected components instead of the iterated dilation:
    a non-bone voxel is a hole of its plane unless its 4-connected non-bone component in that
    plane reaches the plane's edge. One labelling pass per axis, about 10x faster.
    """
    out = np.zeros(bone.shape, bool)
    free = ~bone
    plane = ndimage.generate_binary_structure(2, 1)
    for axis in range(3):
        st = np.zeros((3, 3, 3), bool)
        idx: list[slice | int] = [slice(None)] * 3
        idx[axis] = 1
        st[tuple(idx)] = plane
        comp, n = ndimage.label(free, structure=st)
        hole = np.ones(n + 1, bool)
        hole[0] = False
        for edge_axis in range(3):
            if edge_axis != axis:
                hole[np.take(comp, 0, axis=edge_axis)] = False
                hole[np.take(comp, -1, axis=edge_axis)] = False
        out |= hole[comp]
        del comp
    return out


def _region_centre(volume: Volume, region_center_lps: np.ndarray | None) -> np.ndarray | None:
    """The zones' anchor (LPS mm): the located region (or the given centre) plus the shift."""
    from sinusapp.errors import NotSinusCTError
    from sinusapp.model.preprocess import locate_sinus_region

    if region_center_lps is None:
        try:
            region = locate_sinus_region(volume)
        except NotSinusCTError as exc:
            log.warning("no automatic sinus labels: %s", exc)
            return None
        centre = np.array(region.center_lps, float)
        centre[0] = region.midline_x_mm
    else:
        centre = np.asarray(region_center_lps, float).reshape(3).copy()
    return centre + np.asarray(_ZONES_FROM_REGION_MM)


def _crop_box(volume: Volume, centre: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Index box of the CT holding the cube of ``_CROP_HALF_MM`` around ``centre``."""
    half = np.asarray(_CROP_HALF_MM, float)
    box = volume.index_box(centre - half, centre + half)
    if any(b.stop - b.start < 3 for b in box):
        return None
    return box


def label_sinuses_box(
    volume: Volume, *, region_center_lps: np.ndarray | None = None
) -> tuple[np.ndarray, tuple[slice, slice, slice]] | None:
    """:func:`label_sinuses` on the sinus region's box only: ``(labels, box)`` or ``None``.

    ``labels`` (uint8) is the label map of ``volume.array[box]``; the full-grid map is zero
    outside ``box``. Callers that only need the labelled voxels (the per-sinus count, the
    pipeline's merge with the model's labels) use this to skip a CT-sized array.

    How it stays lean (the results equal the plain full-crop formulation, pinned by the
    tests): the HU are read from the CT's own array (no float copy; the smoothing writes
    float32), every per-voxel quantity after the cavity search (zones, LPS offsets, the
    component statistics) is computed on the cavity voxels only, counted with
    ``np.bincount``, and the partial-volume rim is grown on the labels' bounding box.
    """
    centre = _region_centre(volume, region_center_lps)
    if centre is None:
        return None
    box = _crop_box(volume, centre)
    if box is None:
        log.warning("no automatic sinus labels: the sinus region lies outside the CT")
        return None
    # A contiguous copy of the crop in the CT's own dtype (int16: a fraction of the float32
    # the filters would otherwise copy; every threshold below is exact on integers).
    hu = np.ascontiguousarray(volume.array[box])
    shape = hu.shape

    bone = hu > _BONE_HU
    cavity = _enclosed(bone)
    comp, n_comp = ndimage.label(cavity)
    if n_comp == 0:
        log.warning("no automatic sinus labels: no bone-enclosed cavity near the sinus region")
        return None
    # Everything below looks at cavity voxels only (flat indices into the crop, C order).
    where = np.flatnonzero(cavity)
    del cavity
    comp_c = comp.ravel()[where]
    del comp
    ids = np.arange(1, n_comp + 1)
    size = np.bincount(comp_c, minlength=n_comp + 1)[1:]
    # Fat test on lightly smoothed HU: thin-pixel CTs are noisy enough (σ ≈ 80 HU) to put
    # much of an opacified sinus (~30 HU) into the fat range voxel by voxel.
    sigma = [_FAT_SMOOTH_MM / s for s in volume.spacing_mm]
    hu_s = ndimage.gaussian_filter(hu, sigma=sigma, truncate=2.0, output=np.float32)
    hu_c = hu_s.ravel()[where]
    del hu_s
    fat_c = (hu_c > _FAT_LO_HU) & (hu_c < _FAT_HI_HU)
    del hu_c
    fat = np.bincount(comp_c[fat_c], minlength=n_comp + 1)[1:]
    del fat_c

    # LPS offsets from the centre of every cavity voxel (float32, same arithmetic as a
    # broadcast over the whole crop).
    kji = np.unravel_index(where, shape)
    a = volume.affine.astype(np.float32)
    kf, jf, if_ = (
        (ix + np.intp(s.start)).astype(np.float32) for ix, s in zip(kji, box, strict=True)
    )
    del kji
    rel = [
        a[c, 0] * kf + a[c, 1] * jf + a[c, 2] * if_ + (a[c, 3] - np.float32(centre[c]))
        for c in range(3)
    ]
    del kf, jf, if_
    zones = _zones(rel[0], rel[1], rel[2])

    def kept(zones: np.ndarray) -> np.ndarray:
        in_zone = np.bincount(comp_c[zones > 0], minlength=n_comp + 1)[1:]
        keep = (in_zone >= _INSIDE_ZONES_FRACTION * size) & (fat <= _MAX_FAT_FRACTION * size)
        return np.asarray(keep, bool)

    # Refine the midline: the ethmoid labyrinths and the upper nasal cavity between the
    # orbits are nearly symmetric, so the middle of their left-right extent is the midline
    # (the locator's midline comes from the skull's outline and can be off by millimetres).
    keep = kept(zones)
    u, v, w = rel
    band = np.concatenate([[False], keep])[comp_c] & (np.abs(u) < 17) & (w > -7) & (w <= 20)
    band &= (v > -28) & (v <= 23)
    if band.sum() > 100:
        u_lo, u_hi = np.percentile(u[band], [2, 98])
        shift = float(np.clip(0.5 * (u_lo + u_hi), -_MAX_MIDLINE_SHIFT_MM, _MAX_MIDLINE_SHIFT_MM))
        if abs(shift) > 0.25:
            rel[0] = u - np.float32(shift)
            zones = _zones(rel[0], rel[1], rel[2])
            keep = kept(zones)
            log.debug("sinus labels: midline moved by %.1f mm", shift)
    del band, u, w
    keep_lut = np.concatenate([[False], keep])
    labels_c = np.where(keep_lut[comp_c], zones, 0).astype(np.uint8)
    del zones

    # Ethmoid: split each side at the middle of its antero-posterior extent.
    for ant, post in (("ethmoid_ant_L", "ethmoid_post_L"), ("ethmoid_ant_R", "ethmoid_post_R")):
        sel = labels_c == LABEL_IDS[ant]
        if sel.sum() < 10:
            continue
        v_lo, v_hi = np.percentile(rel[1][sel], [2, 98])
        labels_c[sel & (rel[1] > v_lo + _ETHMOID_SPLIT * (v_hi - v_lo))] = LABEL_IDS[post]
    del rel, v

    # Components that are mostly one sinus take that label entirely (bony walls are the
    # true borders; the zones are only a prior).
    kept_ids = ids[keep]
    if kept_ids.size:
        n_lab = max(LABEL_IDS.values()) + 1
        on = labels_c > 0
        flat = comp_c[on].astype(np.int64) * n_lab + labels_c[on]
        counts = np.bincount(flat, minlength=(n_comp + 1) * n_lab).reshape(n_comp + 1, n_lab)
        best = counts.argmax(axis=1)
        best_n = counts.max(axis=1)
        pure = np.zeros(n_comp + 1, bool)
        pure[1:] = keep & (best_n[1:] >= _PURE_FRACTION * size)
        sel = pure[comp_c]
        labels_c[sel] = best[comp_c[sel]].astype(np.uint8)

    n_lab = max(LABEL_IDS.values()) + 1
    counts_lab = np.bincount(labels_c, minlength=n_lab)
    on = labels_c > 0
    labels = np.zeros(shape, np.uint8)
    if on.any():
        # Partial-volume rim: a wall voxel whose HU is below the mean of soft tissue and
        # thin bone is mostly cavity content (mucosa lies on the wall), though above
        # _BONE_HU; it joins its labelled neighbour (after the component analysis, so that
        # rims do not merge neighbouring cavities). Only the labels' bounding box (plus one
        # voxel) can gain rim voxels; at the sub-box faces the dilation's reflected
        # neighbour is the voxel itself, so the result is the same as on the whole crop.
        labels.ravel()[where] = labels_c
        lab_idx = np.unravel_index(where[on], shape)
        sub = tuple(
            slice(max(int(ix.min()) - 1, 0), min(int(ix.max()) + 2, n))
            for ix, n in zip(lab_idx, shape, strict=True)
        )
        del lab_idx
        sub_labels = labels[sub]
        grown = ndimage.grey_dilation(sub_labels, footprint=ndimage.generate_binary_structure(3, 1))
        rim = bone[sub] & (hu[sub] < _RIM_MAX_HU) & (grown > 0)
        rim_labels = grown[rim]
        sub_labels[rim] = rim_labels
        # rim voxels are bone, never cavity voxels: their counts add to the cavities'
        counts_lab = counts_lab + np.bincount(rim_labels, minlength=n_lab)
        del grown, rim, rim_labels
    del bone, where, labels_c

    voxel_ml = float(volume.voxel_volume_ml)
    total_ml = float(counts_lab[1:].sum()) * voxel_ml
    if not (_MIN_CAVITY_ML <= total_ml <= _MAX_CAVITY_ML):
        log.warning(
            "no automatic sinus labels: %.1f mL of sinus cavity found (plausible: %.0f–%.0f mL)",
            total_ml,
            _MIN_CAVITY_ML,
            _MAX_CAVITY_ML,
        )
        return None
    max_ml = [float(counts_lab[LABEL_IDS[n]]) * voxel_ml for n in ("maxillary_L", "maxillary_R")]
    if max(max_ml) < _MIN_MAXILLARY_ML:
        log.warning("no automatic sinus labels: no maxillary sinus found")
        return None
    log.info(
        "automatic sinus labels: %.1f mL of cavity in %d regions",
        total_ml,
        int(np.count_nonzero(counts_lab[1:])),
    )
    return labels, box


def label_sinuses(
    volume: Volume, *, region_center_lps: np.ndarray | None = None
) -> np.ndarray | None:
    """Label the nasal cavity and paranasal sinuses of a head CT (heuristic; module doc).

    Parameters
    ----------
    volume:
        The CT, in HU.
    region_center_lps:
        Centre of the sinus region (LPS mm) as a previous
        :func:`~sinusapp.model.preprocess.locate_sinus_region` call gives it, with its x
        the region's midline (``SinusRegion.center_lps`` is); default: locate it. Pass the
        Predictor's located region to skip a second locate.

    Returns
    -------
    numpy.ndarray or None
        uint8 label map of ``volume.shape`` (``SINUS_LABELS`` values, 0 = none), or ``None``
        when no trustworthy labelling was found (the reason is logged). See
        :func:`label_sinuses_box` for the same labels without the CT-sized array.
    """
    found = label_sinuses_box(volume, region_center_lps=region_center_lps)
    if found is None:
        return None
    labels, box = found
    out = np.zeros(volume.shape, np.uint8)
    out[box] = labels
    return out
