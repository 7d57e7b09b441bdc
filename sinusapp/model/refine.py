"""Lesion refinement on the CT's own grid (the bundle's ``postprocessing.grow_mm``).

The network sees the CT at the bundle's ``spacing_mm`` (1.25 mm); mapped back by trilinear
interpolation, its lesion edge can sit a CT voxel or so short of where the CT shows it. On the
real-anatomy validation crops the missed voxels were the reference lesion's outermost CT voxel
(median 0.6-0.8 mm inside its edge) and the extra ones the first voxel outside it.
:func:`grow_into_cavities` moves the edge onto the CT's own grid: the lesion grows, by at most
a few millimetres and only through connected voxels, into soft-tissue density inside the
model's sinus cavities. It never enters air (the lesion stops at the air-mucosa surface the CT
shows) and never leaves the cavities (bone, muscle and the turbinates stay out), except, with
``grow_min_probability``, into soft tissue where the network itself gives the lesion at least
that probability (hysteresis: a confident lesion extends into its less confident rim, which
the sinus head misses where disease fills a cavity to its wall), and, with
``grow_cavity_probability``, into the voxels where the sinus head's own probability of a cavity
reaches that floor (the same rim, bounded by what the sinus head learned of real cavities).

Then an anatomical clean-up: each of the sinus head's classes is one cavity, so with
``sinus_component_mm`` :func:`keep_main_cavities` keeps its largest connected piece and what
lies next to it (on the real GE head 2.1.0's "maxillary sinuses" had pieces in the temporal
fossa and the middle cranial fossa, 20-35 mm lateral of the sinus, with its false lesion
on them). With ``drop_stray_lesion`` :func:`drop_stray_lesion` drops the lesion on the lateral
cut pieces; with ``lesion_within_mm`` :func:`drop_far_lesion` every lesion no label comes near
(for a head that labels every sinus; 2.1.0's labels only the maxillary sinuses and the nasal
cavity).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from sinusapp.imaging.quantify import LABEL_IDS
from sinusapp.imaging.volume import Volume
from sinusapp.model.config import Postprocessing

log = logging.getLogger(__name__)

__all__ = [
    "Cavities",
    "cavity_labels",
    "cut_cavities",
    "drop_far_lesion",
    "drop_stray_lesion",
    "grow_into_cavities",
    "keep_main_cavities",
    "lesion_mask",
    "refine_on_ct_grid",
]


def grow_into_cavities(
    mask: np.ndarray,
    *,
    volume: Volume,
    cavities: np.ndarray,
    max_mm: float,
    min_hu: float,
    also: Sequence[tuple[np.ndarray, tuple[slice, slice, slice]]] = (),
    in_place: bool = False,
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
        The farthest a grown voxel may lie from the original lesion along each axis, in mm,
        rounded up to whole CT voxels per axis (3 mm: 7 voxels of 0.45 mm = 3.15 mm in-plane,
        3 slices of 1.25 mm = 3.75 mm).
    min_hu:
        The least HU a voxel needs to be grown into.
    also:
        ``(bool array, box)`` pairs: more voxels that may be grown into as if they were cavity
        (each array covers ``volume.array[box]``; :func:`~sinusapp.model.preprocess.
        map_back_box`'s output for the lesion probability at ``grow_min_probability`` or for
        the sinus head's cavity probability at ``grow_cavity_probability``).
    in_place:
        Grow ``mask`` itself (a uint8 array) and return it: no second CT-sized array (79 MB
        for a 300×512×512 CT).

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
        if in_place and mask.dtype == np.uint8:
            return mask
        return np.asarray(mask, dtype=np.uint8).copy()
    reach = _reach(max_mm, volume)
    lo = np.maximum(found[0] - reach - 1, 0)
    hi = np.minimum(found[1] + reach + 2, np.asarray(volume.shape))
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    base = np.asarray(mask[box]).astype(bool)
    # within max_mm of the lesion along each axis: a box neighbourhood, ~20x cheaper than a
    # Euclidean distance map of the box (0.03 s vs 0.75 s on a 4.7 M-voxel crop); the grown
    # voxels must also connect to the lesion through allowed voxels
    near = _near(base, reach)
    region = cavities[box] != 0
    for extra in also:
        _paste(region, extra, origin=lo)
    allow = near & ~base & region & (volume.array[box] >= min_hu)
    del near, region
    grown = ndimage.binary_propagation(base, mask=base | allow) if allow.any() else base
    if in_place and mask.dtype == np.uint8:
        mask[box] = grown
        return mask
    # the mask is all zero outside the box: a fresh zero array (its pages are only touched
    # inside the box) instead of a copy of the CT-sized mask
    out = np.zeros(volume.shape, np.uint8)
    out[box] = grown
    return out


def _reach(mm: float, volume: Volume) -> np.ndarray:
    """``mm`` as whole CT voxels per axis, rounded up (3 mm: 7 voxels of 0.45 mm)."""
    return np.ceil(mm / np.asarray(volume.spacing_mm, float) - 1e-6).astype(int)


def _near(mask: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Voxels within ``reach`` voxels of ``mask`` along each axis: a box neighbourhood,
    separable and so much cheaper than a Euclidean distance map."""
    return ndimage.maximum_filter(mask, size=tuple(int(2 * r + 1) for r in reach))


def _lesion_box(
    mask: np.ndarray, *, reach: np.ndarray, volume: Volume
) -> tuple[np.ndarray, tuple[slice, slice, slice]] | None:
    """(first index, box) of the lesion's bounding box widened by ``reach`` voxels per axis
    (clipped to the CT), or None without lesion: where the clean-ups look."""
    found = _bounding_box(mask)
    if found is None:
        return None
    lo = np.maximum(found[0] - reach, 0)
    hi = np.minimum(found[1] + reach + 1, np.asarray(volume.shape))
    return lo, tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]


Pieces = list[tuple[np.ndarray, tuple[slice, slice, slice]]]
"""``(bool array, box)`` pairs: each array covers ``volume.array[box]``."""


class Cavities(NamedTuple):
    """The sinus head's labels on the CT grid (:func:`cavity_labels`)."""

    labels: np.ndarray
    """SINUS_LABELS values (uint8, the CT's shape): what the per-sinus table reads."""
    dropped: Pieces
    """The stray pieces :func:`keep_main_cavities` took out of them (empty when not cut)."""


def keep_main_cavities(
    labels: np.ndarray, *, volume: Volume, within_mm: float, in_place: bool = False
) -> Cavities:
    """The sinus head's ``labels`` with each class cut to its largest connected component
    and the components within ``within_mm`` of it (a box neighbourhood, whole CT voxels per
    axis), and the pieces it cut.

    A maxillary sinus (or the nasal cavity) is one cavity; a septated sinus's chambers lie a
    septum apart, well inside a few millimetres. What else the head gives a class is a stray
    piece elsewhere (on the real heads: the temporal fossa, the cheek, the middle cranial
    fossa), where the network's lesion then sits too (:func:`drop_stray_lesion`). Each class
    is handled in its own bounding box (``ndimage.find_objects``), so the cost follows the
    labels, not the CT (but one ``find_objects`` pass over the map). The labels are a new
    uint8 array, or ``labels`` itself with ``in_place`` (a uint8 array: no second CT-sized
    map, 79 MB for a 300×512×512 CT).
    """
    if labels.shape != volume.shape:
        raise ValueError(f"labels {labels.shape} must have the CT's shape {volume.shape}")
    out = labels if in_place and labels.dtype == np.uint8 else np.asarray(labels, np.uint8).copy()
    reach = _reach(within_mm, volume)
    dropped: Pieces = []
    for value, box in enumerate(ndimage.find_objects(out), start=1):
        if box is None:
            continue
        here = out[box] == value
        comps, n = ndimage.label(here)
        if n < 2:
            continue
        sizes = np.bincount(comps.ravel())
        sizes[0] = 0
        main = comps == int(np.argmax(sizes))
        touched = np.unique(comps[_near(main, reach) & here])
        drop = here & ~np.isin(comps, touched)
        if drop.any():
            out[box][drop] = 0
            dropped.append((drop, box))
    return Cavities(labels=out, dropped=dropped)


def drop_stray_lesion(
    mask: np.ndarray, *, volume: Volume, cavities: Cavities, within_mm: float
) -> np.ndarray:
    """``mask`` (uint8, changed in place and returned) without the lesion components that
    come within ``within_mm`` of a piece :func:`keep_main_cavities` dropped, not within
    ``within_mm`` of a kept label (box neighbourhoods, 6-connected components), and lie wholly
    lateral of the kept labels (left of their leftmost voxel or right of their rightmost,
    that span mirrored about the nasal cavity when the head labels one maxillary sinus only).

    Such a lesion is one the network placed where its sinus head also saw a sinus that is
    not there: on the real GE head, in the temporal fossa and the middle cranial fossa, 20-35 mm
    lateral of the maxillary sinus. A stray piece medial of the sinuses may be a
    real sinus under the wrong class (on placed disease, the head reads a diseased sphenoid
    as "maxillary"), so its lesion stays. A lesion that touches no label at all is kept:
    2.1.0's head does not label the ethmoid, frontal and sphenoid sinuses, and what the
    lesion head finds there (little) must stay on screen (:func:`drop_far_lesion` is the
    rule for a head that labels every sinus). The filters run on the lesion's bounding box
    (plus the reach); the kept labels' left-right span is read inside their own bounding box.
    """
    if mask.shape != volume.shape or cavities.labels.shape != volume.shape:
        raise ValueError(
            f"mask {mask.shape} and labels {cavities.labels.shape} must have the CT's shape "
            f"{volume.shape}"
        )
    if not cavities.dropped:
        return mask
    reach = _reach(within_mm, volume)
    around = _lesion_box(mask, reach=reach, volume=volume)
    if around is None:
        return mask
    lo, box = around
    stray = np.zeros(mask[box].shape, bool)
    for piece in cavities.dropped:
        _paste(stray, piece, origin=lo)
    if not stray.any():
        return mask
    lesion = mask[box] != 0
    comps, n = ndimage.label(lesion)
    on_stray = np.unique(comps[_near(stray, reach) & lesion])
    on_kept = np.unique(comps[_near(cavities.labels[box] != 0, reach) & lesion])
    gone = np.setdiff1d(on_stray, on_kept)
    if gone.size:
        # and lateral of every kept label: no sinus lies lateral of the maxillary sinuses,
        # while the head's stray pieces medial of them may be a real sinus under the wrong
        # class (a diseased sphenoid read as "maxillary")
        span = _label_span(cavities.labels, volume=volume)
        if span is not None:
            lateral = []
            boxes = ndimage.find_objects(comps)
            for comp in gone:
                where = boxes[int(comp) - 1]
                start = lo + np.asarray([b.start for b in where])
                lo_x, hi_x = _left_span(
                    np.nonzero(comps[where] == comp), volume=volume, origin=start
                )
                if hi_x < span[0] or lo_x > span[1]:
                    lateral.append(comp)
            gone = np.asarray(lateral, int)
    if gone.size:
        drop = np.isin(comps, gone)
        log.info(
            "dropped %d of %d lesion components (%d voxels) lying on stray pieces of the "
            "sinus head's labels, away from the sinuses",
            gone.size,
            n,
            int(drop.sum()),
        )
        mask[box][drop] = 0
    return mask


def _label_span(labels: np.ndarray, *, volume: Volume) -> tuple[float, float] | None:
    """:func:`_left_span` of the non-zero voxels of ``labels``, listed inside their bounding
    box only (not the whole CT). When the labels hold one maxillary sinus and not the other
    (the head did not label one, e.g. a fully opacified sinus) and a nasal cavity, the span
    is made symmetric about the nasal cavity's median left-right position: the missing
    sinus must not narrow the span on its side, where its lesion would then be taken for
    stray. With both (or neither) the span is the labels' own: mirroring it there let the
    false lesion lateral of the smaller sinus back in (harvard02: 3.7 → 4.6 mL)."""
    found = _bounding_box(labels)
    if found is None:
        return None
    box = tuple(slice(int(a), int(b) + 1) for a, b in zip(found[0], found[1], strict=True))
    sub = labels[box]
    span = _left_span(np.nonzero(sub), volume=volume, origin=found[0])
    one_sided = bool((sub == LABEL_IDS["maxillary_L"]).any()) != bool(
        (sub == LABEL_IDS["maxillary_R"]).any()
    )
    nasal = np.nonzero(sub == LABEL_IDS["nasal_cavity"]) if one_sided else ()
    if span is None or not one_sided or not nasal[0].size:
        return span
    x = volume.index_to_lps(np.stack(nasal, axis=1) + found[0])[:, 0]
    mid = float(np.median(x))
    half = max(mid - span[0], span[1] - mid)
    return mid - half, mid + half


def _left_span(
    index: tuple[np.ndarray, ...], *, volume: Volume, origin: np.ndarray
) -> tuple[float, float] | None:
    """The least and greatest patient-left coordinate (LPS x, mm) of the voxels at ``index``
    (``np.nonzero`` output of a box that starts at CT index ``origin``), from the CT's
    affine: right and left whatever the scan's orientation or tilt."""
    if not index[0].size:
        return None
    x = volume.index_to_lps(np.stack(index, axis=1) + np.asarray(origin))[:, 0]
    return float(x.min()), float(x.max())


def drop_far_lesion(
    mask: np.ndarray, *, volume: Volume, cavities: np.ndarray, within_mm: float
) -> np.ndarray:
    """``mask`` (uint8, changed in place and returned) without the lesion components that
    have no voxel within ``within_mm`` of the ``cavities`` (non-zero; a box neighbourhood,
    whole CT voxels per axis, 6-connected components).

    With no cavity at all the lesion is left as it is: there is nothing to judge it by (the
    input gate reports a CT without sinus cavities). Only the lesion's bounding box (plus the
    reach) is computed.
    """
    if mask.shape != volume.shape or cavities.shape != volume.shape:
        raise ValueError(
            f"mask {mask.shape} and cavities {cavities.shape} must have the CT's shape "
            f"{volume.shape}"
        )
    if not np.any(cavities):
        return mask
    reach = _reach(within_mm, volume)
    around = _lesion_box(mask, reach=reach, volume=volume)
    if around is None:
        return mask
    box = around[1]
    lesion = mask[box] != 0
    comps, n = ndimage.label(lesion)
    near = _near(cavities[box] != 0, reach)
    kept = np.unique(comps[near & lesion])
    far = lesion & ~np.isin(comps, kept)
    if far.any():
        log.info(
            "dropped %d of %d lesion components farther than %.1f mm from any sinus cavity "
            "(%d voxels)",
            n - int(np.count_nonzero(kept)),
            n,
            within_mm,
            int(far.sum()),
        )
        mask[box][far] = 0
    return mask


def _paste(
    region: np.ndarray, also: tuple[np.ndarray, tuple[slice, slice, slice]], *, origin: np.ndarray
) -> None:
    """OR ``also`` (an array on ``volume.array[box]``) into ``region`` (which starts at CT
    index ``origin``), where the two boxes overlap."""
    sub, box = also
    starts = np.asarray([b.start for b in box])
    lo = np.maximum(starts, origin)
    hi = np.minimum(starts + np.asarray(sub.shape), origin + np.asarray(region.shape))
    if np.any(hi <= lo):
        return
    dst = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(lo, hi, origin, strict=True))
    src = tuple(slice(int(a - t), int(b - t)) for a, b, t in zip(lo, hi, starts, strict=True))
    region[dst] |= sub[src].astype(bool)


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


def cavity_labels(
    sinus_probabilities: np.ndarray,
    *,
    block_affine: np.ndarray,
    volume: Volume,
    postprocessing: Postprocessing,
) -> Cavities:
    """The sinus head's softmax on the block ``(C, z, y, x)`` → its labels on the CT grid
    (:func:`~sinusapp.model.sinus_head.head_probabilities_to_labels`), each class cut to its
    main cavity when the bundle's ``sinus_component_mm`` is set (:func:`keep_main_cavities`).
    The Predictor and the benchmark that chooses the post-processing both call this."""
    from sinusapp.model.sinus_head import head_probabilities_to_labels

    labels = head_probabilities_to_labels(
        sinus_probabilities, block_affine=block_affine, volume=volume
    )
    # the labels are this function's own: cut in place
    return cut_cavities(labels, volume=volume, postprocessing=postprocessing, in_place=True)


def cut_cavities(
    labels: np.ndarray, *, volume: Volume, postprocessing: Postprocessing, in_place: bool = False
) -> Cavities:
    """The sinus head's ``labels`` on the CT grid as :class:`Cavities`: cut to their main
    cavities by :func:`keep_main_cavities` when the bundle's ``sinus_component_mm`` is set,
    else as they are (nothing dropped)."""
    if postprocessing.sinus_component_mm is None:
        return Cavities(labels=labels, dropped=[])
    return keep_main_cavities(
        labels, volume=volume, within_mm=postprocessing.sinus_component_mm, in_place=in_place
    )


def lesion_mask(
    probability: np.ndarray,
    *,
    block_affine: np.ndarray,
    volume: Volume,
    postprocessing: Postprocessing,
    cavities: np.ndarray | Cavities | None,
    sinus_probabilities: np.ndarray | None = None,
) -> np.ndarray:
    """The lesion probability on the block → the uint8 lesion mask on the CT grid.

    The bundle's post-processing in order: its component filter / opening on the block
    (:meth:`Postprocessing.apply`), the trilinear map back at ``lesion_threshold``
    (:func:`~sinusapp.model.preprocess.map_back`), then the growth into the ``cavities`` (the
    sinus head's labels on the CT grid, with the pieces a ``sinus_component_mm`` cut took
    out of them) when ``grow_mm`` is set and there are cavities (and, with
    ``grow_min_probability``, into the voxels where the interpolated probability reaches
    it; with ``grow_cavity_probability``, into those where the sinus head's probability of
    any cavity, one minus the background's of ``sinus_probabilities`` (its softmax on the
    block, ``(C, z, y, x)``), reaches that floor). Last, with ``drop_stray_lesion`` and
    ``cavities`` a :class:`Cavities` cut by ``sinus_component_mm``, the components on its
    lateral cut pieces go (:func:`drop_stray_lesion`), and with ``lesion_within_mm`` those
    no cavity comes near
    (:func:`drop_far_lesion`). The
    Predictor and the benchmark that chooses the post-processing both call this, so what is
    chosen is what runs. (``mirror_average`` acts before: on ``probability``.)
    """
    from sinusapp.model.preprocess import map_back, map_back_box

    post = postprocessing
    kept = post.apply(probability)
    mask = map_back(
        kept,
        block_affine=block_affine,
        volume=volume,
        threshold=post.lesion_threshold,
    )
    also = []
    if post.grow_mm > 0 and cavities is not None:
        floors = []
        if post.grow_min_probability is not None:
            floors.append((kept, post.grow_min_probability))
        if post.grow_cavity_probability is not None and sinus_probabilities is not None:
            any_cavity = np.float32(1.0) - np.asarray(sinus_probabilities[0], np.float32)
            floors.append((any_cavity, post.grow_cavity_probability))
        for prob, floor in floors:
            found = map_back_box(prob, block_affine=block_affine, volume=volume, threshold=floor)
            if found is not None:
                also.append(found)
    # map_back's mask is this function's own: refined in place
    return refine_on_ct_grid(mask, volume=volume, postprocessing=post, cavities=cavities, also=also)


def refine_on_ct_grid(
    mask: np.ndarray,
    *,
    volume: Volume,
    postprocessing: Postprocessing,
    cavities: np.ndarray | Cavities | None,
    also: Sequence[tuple[np.ndarray, tuple[slice, slice, slice]]] = (),
) -> np.ndarray:
    """What :func:`lesion_mask` does after the map back, on ``mask`` (uint8, the CT's shape;
    changed in place and returned): the growth into the ``cavities`` (and ``also``, as in
    :func:`grow_into_cavities`) when ``grow_mm`` is set, then the clean-ups
    (``drop_stray_lesion``, ``lesion_within_mm``). The benchmark that chooses the
    post-processing calls it on a shared map back, so its candidates run this code too."""
    post = postprocessing
    cut = cavities if isinstance(cavities, Cavities) else None
    labels = cut.labels if cut is not None else cavities
    if post.grow_mm > 0 and labels is not None:
        # the pieces the cut took from the labels stay cavity for the growth: the cut
        # decides which sinus a voxel counts for, not whether the head saw a cavity there
        # (on placed disease the head reads a diseased sphenoid as stray "maxillary" pieces,
        # and growth into them is most of what 2.1.0 finds of the sphenoid's lesion)
        mask = grow_into_cavities(
            mask,
            volume=volume,
            cavities=labels,
            max_mm=post.grow_mm,
            min_hu=post.grow_min_hu,
            also=([] if cut is None else list(cut.dropped)) + list(also),
            in_place=True,
        )
    if cut is not None and post.drop_stray_lesion:
        mask = drop_stray_lesion(
            mask, volume=volume, cavities=cut, within_mm=post.sinus_component_mm
        )
    if post.lesion_within_mm is not None and labels is not None:
        mask = drop_far_lesion(
            mask, volume=volume, cavities=labels, within_mm=post.lesion_within_mm
        )
    return mask
