"""The sinus-labelling head's classes ↔ the sinus label map, on the block and the CT grid.

The network's optional second segmentation head labels the cavities that real labelled CT
covers (:data:`~sinusapp.model.config.SINUS_HEAD_REGIONS`: maxillary sinus left / right, the
nasal cavity) or every sinus (10 classes, :data:`~sinusapp.model.config.SINUS_HEAD_REGIONS_ALL`).
Training needs the label maps of a dataset as head classes on the block; inference needs the
head's probabilities back on the CT grid as :data:`~sinusapp.imaging.quantify.SINUS_LABELS`
values. numpy / scipy only (no torch).

Partial labels. A dataset's label map need not hold every class: NasalSeg labels the
maxillary sinuses and the nasal cavity only, so in a NasalSeg case "0" means "background or
an ethmoid / frontal / sphenoid cell". :func:`sinus_covered` says which classes a case's
labels hold, and :func:`partial_targets` turns such background voxels into
:data:`SINUS_OTHER` with the set of classes they may be, which the loss
(:func:`sinusapp.model.losses.sinus_label_loss`) scores as one merged class.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from sinusapp.imaging.quantify import LABEL_IDS
from sinusapp.imaging.volume import Volume
from sinusapp.model.config import SINUS_HEAD_REGIONS_ALL, PreprocessConfig
from sinusapp.model.preprocess import map_back_box

__all__ = [
    "SINUS_IGNORE",
    "SINUS_OTHER",
    "head_probabilities_to_labels",
    "mirror_class_lut",
    "partial_targets",
    "resample_labels_to_block",
    "sinus_covered",
    "sinus_head_target",
]

#: Head-target value meaning "unknown" (a case without a label map): ignored by the loss.
SINUS_IGNORE = 255
#: Head-target value meaning "background or one of the classes this case does not label"
#: (:func:`partial_targets`).
SINUS_OTHER = 254


def _lut() -> np.ndarray:
    lut = np.zeros(256, np.uint8)
    for cls, region in enumerate(SINUS_HEAD_REGIONS_ALL):
        if cls:
            lut[LABEL_IDS[region]] = cls
    return lut


def sinus_head_target(labels: np.ndarray | None, *, shape: tuple[int, ...]) -> np.ndarray:
    """A SINUS_LABELS map → classes of :data:`SINUS_HEAD_REGIONS_ALL` (uint8).

    :data:`SINUS_IGNORE` everywhere when ``labels`` is ``None``. A head with fewer classes
    reads the classes past its own as background (:func:`partial_targets`).
    """
    if labels is None:
        return np.full(shape, SINUS_IGNORE, np.uint8)
    return _lut()[np.asarray(labels, np.uint8)]


def _mirror() -> np.ndarray:
    lut = np.arange(256, dtype=np.uint8)
    names = list(SINUS_HEAD_REGIONS_ALL)
    for cls, region in enumerate(names):
        if region.endswith("_L") and region[:-2] + "_R" in names:
            other = names.index(region[:-2] + "_R")
            lut[cls], lut[other] = other, cls
    return lut


_MIRROR = _mirror()


def mirror_class_lut() -> np.ndarray:
    """uint8 look-up table (256) swapping left / right classes (a left-right flip)."""
    return _MIRROR.copy()


def sinus_covered(labels: np.ndarray | None, *, complete: bool = False) -> np.ndarray:
    """Which classes of :data:`SINUS_HEAD_REGIONS_ALL` a case's label map holds (bool).

    A class counts as covered when the map holds any voxel of it; left and right go
    together (a mirrored case covers what the original did). ``complete``: the map is the
    whole truth wherever it is known (a segmentation-only case: a negative, or the cells of
    a head, with ``unlabelled`` where nobody labelled), so every class is covered.
    Background (class 0) is always covered.
    """
    n = len(SINUS_HEAD_REGIONS_ALL)
    if complete:
        return np.ones(n, bool)
    present = np.zeros(256, bool)
    if labels is not None:
        present = np.bincount(np.asarray(labels, np.uint8).ravel(), minlength=256) > 0
    out = np.array(
        [cls == 0 or bool(present[LABEL_IDS[r]]) for cls, r in enumerate(SINUS_HEAD_REGIONS_ALL)]
    )
    return out | out[_MIRROR[:n]]


def partial_targets(
    target: np.ndarray, *, covered: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Targets of a head with ``n_classes`` classes, and the classes a :data:`SINUS_OTHER`
    voxel may be.

    ``target``: classes of :data:`SINUS_HEAD_REGIONS_ALL` (:func:`sinus_head_target`, any
    shape); ``covered``: :func:`sinus_covered` of the case. Classes past the head's become
    background; a background voxel of a case that does not cover every class of the head
    becomes :data:`SINUS_OTHER`, which may be background or any uncovered class. Returns
    ``(target, allowed)``: uint8 of ``target``'s shape and a bool ``(n_classes,)``.
    """
    t = np.asarray(target, np.uint8)
    t = np.where((t >= n_classes) & (t < SINUS_OTHER), np.uint8(0), t).astype(np.uint8)
    cov = np.asarray(covered, bool)[:n_classes]
    allowed = ~cov
    allowed[0] = True
    if allowed[1:].any():
        t = np.where(t == 0, np.uint8(SINUS_OTHER), t).astype(np.uint8)
    return t, allowed


def resample_labels_to_block(
    labels: np.ndarray, *, volume: Volume, block_affine: np.ndarray, config: PreprocessConfig
) -> np.ndarray:
    """Integer labels on the CT grid → the block (nearest neighbour; 0 outside the CT)."""
    if labels.shape != volume.shape:
        raise ValueError(f"label map shape {labels.shape} differs from the CT's {volume.shape}")
    m = np.linalg.inv(volume.affine) @ block_affine
    return ndimage.affine_transform(
        np.asarray(labels, np.uint8),
        m[:3, :3],
        offset=m[:3, 3],
        output_shape=tuple(config.block_shape),
        order=0,
        cval=0,
        output=np.uint8,
        prefilter=False,
    )


def head_probabilities_to_labels(
    probabilities: np.ndarray, *, block_affine: np.ndarray, volume: Volume
) -> np.ndarray:
    """Softmax of the sinus head on the block ``(C, z, y, x)`` → SINUS_LABELS map on the CT.

    A CT voxel gets a cavity's label where that class's interpolated probability is ≥ 0.5
    (softmax classes are exclusive at that level, so labels never overlap).
    """
    out = np.zeros(volume.shape, np.uint8)
    for cls, region in enumerate(SINUS_HEAD_REGIONS_ALL):
        if cls == 0 or cls >= probabilities.shape[0]:
            continue
        found = map_back_box(
            np.ascontiguousarray(probabilities[cls], np.float32),
            block_affine=block_affine,
            volume=volume,
        )
        if found is not None:  # written on the class's box only: no CT-sized temporaries
            hit, box = found
            out[box][hit] = LABEL_IDS[region]
    return out
