"""The sinus-labelling head's classes ↔ the sinus label map, on the block and the CT grid.

The network's optional second segmentation head labels the cavities that real labelled CT
covers (:data:`~sinusapp.model.config.SINUS_HEAD_REGIONS`: maxillary sinus left / right, the
nasal cavity). Training needs the label maps of a dataset as head classes on the block;
inference needs the head's probabilities back on the CT grid as
:data:`~sinusapp.imaging.quantify.SINUS_LABELS` values. numpy / scipy only (no torch).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from sinusapp.imaging.quantify import LABEL_IDS
from sinusapp.imaging.volume import Volume
from sinusapp.model.config import SINUS_HEAD_REGIONS, PreprocessConfig
from sinusapp.model.preprocess import map_back_box

__all__ = [
    "SINUS_IGNORE",
    "head_probabilities_to_labels",
    "resample_labels_to_block",
    "sinus_head_target",
]

#: Head-target value meaning "unknown" (a case without a label map): ignored by the loss.
SINUS_IGNORE = 255


def _lut() -> np.ndarray:
    lut = np.zeros(256, np.uint8)
    for cls, region in enumerate(SINUS_HEAD_REGIONS):
        if cls:
            lut[LABEL_IDS[region]] = cls
    return lut


def sinus_head_target(labels: np.ndarray | None, *, shape: tuple[int, ...]) -> np.ndarray:
    """A SINUS_LABELS map → sinus-head classes (uint8; :data:`SINUS_IGNORE` when ``None``).

    Cavities outside the head's classes (ethmoid, frontal, sphenoid) become background, as
    in the real labelled data (NasalSeg labels none of them).
    """
    if labels is None:
        return np.full(shape, SINUS_IGNORE, np.uint8)
    return _lut()[np.asarray(labels, np.uint8)]


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
    for cls, region in enumerate(SINUS_HEAD_REGIONS):
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
