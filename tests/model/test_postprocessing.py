"""The bundle's lesion post-processing: threshold, opening, small components."""

from __future__ import annotations

import numpy as np
import pytest

from sinusapp.model.config import Postprocessing


def _prob() -> np.ndarray:
    p = np.zeros((20, 20, 20), np.float32)
    p[2:10, 2:10, 2:10] = 0.9  # a thick lesion
    p[15, 2:18, 2:18] = 0.9  # a rim one voxel thin
    p[12, 15, 15] = 0.9  # a speck
    p[4:6, 14:16, 14:16] = 0.55  # weak
    return p


def test_defaults_change_nothing() -> None:
    p = _prob()
    assert np.array_equal(Postprocessing().apply(p), p)
    assert Postprocessing.from_dict(None) == Postprocessing()


def test_opening_drops_thin_rims_and_keeps_thick_lesions() -> None:
    out = Postprocessing(opening=True).apply(_prob())
    assert (out[15] == 0).all() and out[12, 15, 15] == 0
    assert (out[3:9, 3:9, 3:9] > 0.5).all()


def test_small_components_and_the_threshold() -> None:
    out = Postprocessing(lesion_threshold=0.6, min_component_vox=30).apply(_prob())
    assert out[12, 15, 15] == 0  # 1 voxel < 30
    assert out[15, 5, 5] > 0  # the rim has 256 voxels
    # Below the threshold: not lesion, and its probability is left as it is.
    assert np.allclose(out[4:6, 14:16, 14:16], 0.55)


def test_kept_lesions_keep_their_soft_edges() -> None:
    """Only removed voxels are zeroed, so interpolating the output does not shrink a kept lesion.

    Zeroing the sub-threshold rim as well moved every interpolated edge inwards (real-anatomy
    validation Dice 0.73 -> 0.67).
    """
    from scipy import ndimage

    p = np.zeros((24, 24, 24), np.float32)
    p[4:20, 4:20, 4:20] = 0.6  # the soft edge of a lesion
    p[5:19, 5:19, 5:19] = 0.9  # its core
    post = Postprocessing(lesion_threshold=0.7, min_component_vox=30)
    out = post.apply(p)
    assert np.array_equal(out, p)  # nothing removed: nothing changed
    fine = ndimage.zoom(out, 3, order=1) >= post.lesion_threshold
    assert np.array_equal(fine, ndimage.zoom(p, 3, order=1) >= post.lesion_threshold)


@pytest.mark.parametrize(
    "bad", [{"lesion_threshold": 1.0}, {"opening": "yes"}, {"min_component_vox": -1}, {"x": 1}]
)
def test_invalid_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Postprocessing.from_dict(bad)
