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
    assert (out[4:6, 14:16, 14:16] == 0).all()  # below the threshold


@pytest.mark.parametrize(
    "bad", [{"lesion_threshold": 1.0}, {"opening": "yes"}, {"min_component_vox": -1}, {"x": 1}]
)
def test_invalid_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Postprocessing.from_dict(bad)
