"""Upper sinuses anchored on the model's labels: zones, the ostium cut, outside air refused."""

from __future__ import annotations

import numpy as np
import pytest

from sinusapp.imaging.quantify import LABEL_IDS
from sinusapp.imaging.upper_sinuses import label_upper_sinuses


def _head() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1 mm grid [z, y, x] (LPS: x = column, y = row, z = slice): bone with air cells."""
    hu = np.full((90, 110, 100), 700.0, np.float32)  # all bone
    labels = np.zeros(hu.shape, np.uint8)
    # maxillary sinuses (z 20-44, y 40-74) either side of a nasal cavity at x 50
    for value, xs in (
        (LABEL_IDS["maxillary_R"], slice(22, 40)),
        (LABEL_IDS["maxillary_L"], slice(60, 78)),
    ):
        labels[20:45, 40:75, xs] = value
    labels[10:50, 30:80, 46:55] = LABEL_IDS["nasal_cavity"]
    hu[labels > 0] = -1000.0
    affine = np.eye(4)
    affine[:3, :3] = [[0, 0, 1], [0, 1, 0], [1, 0, 0]]  # index (slice, row, col) -> (z, y, x)
    return hu, labels, affine


def _cell(hu: np.ndarray, z: slice, y: slice, x: slice) -> None:
    hu[z, y, x] = -950.0


def test_cells_get_the_zone_of_their_place_and_outside_air_none() -> None:
    hu, labels, affine = _head()
    _cell(hu, slice(48, 56), slice(45, 55), slice(56, 62))  # above, in front, left: ethmoid L
    _cell(hu, slice(48, 56), slice(62, 70), slice(38, 44))  # above, behind: posterior ethmoid R
    _cell(hu, slice(45, 60), slice(80, 95), slice(44, 56))  # behind the maxillary: sphenoid
    _cell(hu, slice(70, 80), slice(30, 40), slice(40, 60))  # high and in front: frontal
    _cell(hu, slice(48, 56), slice(0, 12), slice(45, 55))  # air reaching the face: outside
    found = label_upper_sinuses(hu=hu, affine=affine, model_labels=labels)
    assert found is not None
    zone, box = found
    full = np.zeros(hu.shape, np.uint8)
    full[box] = zone

    def at(z: int, y: int, x: int) -> int:
        return int(full[z, y, x])

    assert at(52, 46, 59) == LABEL_IDS["ethmoid_ant_L"]  # front of the left labyrinth
    assert at(52, 54, 59) == LABEL_IDS["ethmoid_post_L"]
    assert at(52, 66, 41) == LABEL_IDS["ethmoid_post_R"]
    assert at(52, 88, 50) == LABEL_IDS["sphenoid"]
    assert at(75, 35, 50) == LABEL_IDS["frontal"]
    assert at(52, 5, 50) == 0
    # the model's own cavities are never relabelled
    assert not full[labels > 0].any()


def test_an_ostium_to_the_nasal_cavity_does_not_merge_a_cell_into_the_airway() -> None:
    from scipy import ndimage

    hu, labels, affine = _head()
    nasal = labels == LABEL_IDS["nasal_cavity"]
    # the label stops a voxel short of the airway's wall, and the airway opens to the face
    rim = ndimage.binary_dilation(nasal) & ~nasal
    hu[rim] = -950.0
    hu[20:30, 0:31, 48:53] = -950.0
    _cell(hu, slice(48, 56), slice(45, 55), slice(58, 62))
    hu[48:52, 48:50, 55:58] = -950.0  # the ostium, from the rim into the cell
    zone, box = label_upper_sinuses(hu=hu, affine=affine, model_labels=labels)
    full = np.zeros(hu.shape, np.uint8)
    full[box] = zone
    assert full[52, 46, 59] == LABEL_IDS["ethmoid_ant_L"]
    assert not full[rim].any()


def test_no_frame_without_the_model_cavities() -> None:
    hu, labels, affine = _head()
    labels[labels == LABEL_IDS["nasal_cavity"]] = 0
    assert label_upper_sinuses(hu=hu, affine=affine, model_labels=labels) is None
    with pytest.raises(ValueError, match="differ in shape"):
        label_upper_sinuses(hu=hu[1:], affine=affine, model_labels=labels)
