"""Locating the sinus region, refusing other CTs, resampling in LPS space and mapping back."""

from __future__ import annotations

import numpy as np
import pytest

from sinusapp.errors import NotSinusCTError
from sinusapp.imaging.volume import Volume
from sinusapp.model.config import PreprocessConfig
from sinusapp.model.preprocess import (
    locate_sinus_region,
    make_block_affine,
    map_back,
    normalise_hu,
    prepare_block,
    resample_mask_to_block,
)
from sinusapp.model.testing import (
    make_brain_slab,
    make_chest_phantom,
    make_sinus_phantom,
    rotation_matrix,
)

# In the phantom's head frame the sinus complex spans x ±43, y −96…−16, z −52…+20 mm.
SINUS_CENTRE_HEAD = np.array([0.0, -55.0, -16.0])


def _dsc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2 * (a & b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize(
    ("rotation", "shift"),
    [
        (None, (0.0, 0.0, 0.0)),
        (rotation_matrix(degrees_about_x=18.0, degrees_about_z=8.0), (12.0, -6.0, 9.0)),
    ],
)
def test_locates_the_sinus_region(rotation: np.ndarray | None, shift: tuple) -> None:
    vol, _ = make_sinus_phantom(rotation=rotation, shift_mm=shift, seed=3)
    region = locate_sinus_region(vol)
    truth = SINUS_CENTRE_HEAD - np.asarray(shift)  # head frame → LPS of this phantom
    assert np.linalg.norm(region.center_lps - truth) < 15.0, (region.center_lps, truth)
    assert 5.0 < region.air_volume_ml < 200.0


def test_partial_head_coverage_is_located() -> None:
    # only the sinus region scanned (the head is cut by the field of view on every side)
    vol, _ = make_sinus_phantom(
        shape=(40, 64, 64), spacing_mm=(2.0, 2.0, 2.0), shift_mm=(0.0, -55.0, -16.0)
    )
    region = locate_sinus_region(vol)
    assert np.linalg.norm(region.center_lps - (SINUS_CENTRE_HEAD - (0.0, -55.0, -16.0))) < 15.0


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (make_chest_phantom, "chest"),
        (make_brain_slab, "brain-only"),
    ],
)
def test_other_cts_are_refused_with_a_message(make, words: str) -> None:
    with pytest.raises(NotSinusCTError) as info:
        locate_sinus_region(make())
    msg = str(info.value)
    assert "nasal cavity and paranasal sinuses" in msg
    assert words in msg
    assert "sinus CT" in msg  # the hint says what to choose instead


def test_single_slice_is_refused() -> None:
    vol, _ = make_sinus_phantom()
    one = Volume(array=vol.array[40:41].copy(), affine=vol.affine)
    with pytest.raises(NotSinusCTError, match="single slice"):
        locate_sinus_region(one)


def test_block_geometry_and_normalisation() -> None:
    cfg = PreprocessConfig(spacing_mm=2.0, block_shape=(16, 24, 32))
    aff = make_block_affine(np.array([1.0, 2.0, 3.0]), cfg)
    centre_idx = (np.asarray(cfg.block_shape) - 1) / 2
    assert np.allclose(aff[:3, :3] @ centre_idx + aff[:3, 3], [1, 2, 3])
    # axis 0 → +z (superior), axis 1 → +y (posterior), axis 2 → +x (left)
    assert np.allclose(aff[:3, 0], [0, 0, 2]) and np.allclose(aff[:3, 2], [2, 0, 0])
    x = normalise_hu(np.array([-3000.0, -1000.0, 0.0, 1000.0, 3000.0]), config=cfg)
    assert np.allclose(x, [-1, -1, 0, 1, 1]) and x.dtype == np.float32


@pytest.mark.parametrize("oblique", [False, True])
def test_resample_and_map_back_round_trip(oblique: bool) -> None:
    rot = rotation_matrix(degrees_about_x=20.0, degrees_about_z=-10.0) if oblique else None
    vol, truth = make_sinus_phantom(rotation=rot, seed=1)
    cfg = PreprocessConfig(spacing_mm=2.0, block_shape=(48, 64, 64))
    block = prepare_block(vol, config=cfg)
    assert block.image.shape == (48, 64, 64) and block.image.dtype == np.float32
    bmask = resample_mask_to_block(truth, volume=vol, block_affine=block.affine, config=cfg)
    # the lesion is in the block, and resampled lesion voxels have soft-tissue intensity
    assert bmask.sum() * 8 / 1000 == pytest.approx(truth.sum() * vol.voxel_volume_ml, rel=0.2)
    soft = block.image[bmask > 0]
    assert np.median(soft) == pytest.approx(0.03, abs=0.05)  # ~30 HU
    back = map_back(bmask.astype(np.float32), block_affine=block.affine, volume=vol)
    assert back.shape == vol.shape and back.dtype == np.uint8
    assert _dsc(back, truth) > 0.8


def test_map_back_of_an_empty_prediction_is_empty() -> None:
    vol, _ = make_sinus_phantom()
    cfg = PreprocessConfig(spacing_mm=4.0, block_shape=(16, 16, 16))
    aff = make_block_affine(np.zeros(3), cfg)
    out = map_back(np.zeros(cfg.block_shape, np.float32), block_affine=aff, volume=vol)
    assert out.shape == vol.shape and not out.any()


def test_reversed_slice_and_column_order_give_the_same_mask() -> None:
    """Slices stored superior→inferior and columns left→right: same anatomy, same result."""
    vol, truth = make_sinus_phantom(seed=5)
    arr = vol.array[::-1, :, ::-1].copy()
    aff = vol.affine.copy()
    k, i = vol.shape[0] - 1, vol.shape[2] - 1
    aff[:3, 3] = vol.affine[:3, :3] @ np.array([k, 0, i]) + vol.affine[:3, 3]
    aff[:3, 0] *= -1
    aff[:3, 2] *= -1
    flipped = Volume(array=arr, affine=aff)
    cfg = PreprocessConfig(spacing_mm=2.0, block_shape=(48, 64, 64))
    a = prepare_block(vol, config=cfg)
    b = prepare_block(flipped, config=cfg)
    assert np.allclose(a.region.center_lps, b.region.center_lps, atol=3.0)
    bm = resample_mask_to_block(truth, volume=vol, block_affine=a.affine, config=cfg)
    back = map_back(bm.astype(np.float32), block_affine=a.affine, volume=flipped)
    assert _dsc(back, truth[::-1, :, ::-1]) > 0.8
