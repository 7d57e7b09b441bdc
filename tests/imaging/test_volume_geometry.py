"""Volume.index_box and sub_grid_affine: a crop keeps its place in the patient."""

from __future__ import annotations

import numpy as np

from sinusapp.imaging.volume import Volume, sub_grid_affine


def _oblique_volume() -> Volume:
    """A 40 × 50 × 60 grid, 2.5 / 0.8 / 0.7 mm, rotated 20° about the slice axis, offset."""
    a = np.deg2rad(20.0)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    axes = np.column_stack([[0, 0, 1], [0, 1, 0], [1, 0, 0]]).astype(float)  # k→z, j→y, i→x
    aff = np.eye(4)
    aff[:3, :3] = rot @ axes @ np.diag([2.5, 0.8, 0.7])
    aff[:3, 3] = [-20.0, 15.0, -60.0]
    return Volume(array=np.zeros((40, 50, 60), np.int16), affine=aff)


def test_sub_grid_affine_maps_a_cropped_index_to_the_same_point() -> None:
    vol = _oblique_volume()
    start = np.array([7, 11, 13])
    sub = sub_grid_affine(vol.affine, start=start)
    idx = np.array([[0, 0, 0], [3, 5, 8], [20, 30, 40]], float)
    np.testing.assert_allclose(
        idx @ sub[:3, :3].T + sub[:3, 3], vol.index_to_lps(idx + start), atol=1e-9
    )
    assert np.array_equal(sub[:3, :3], vol.affine[:3, :3])
    assert vol.affine[0, 3] == -20.0  # the input is not changed


def test_index_box_holds_every_voxel_of_the_lps_box_and_little_more() -> None:
    vol = _oblique_volume()
    lo, hi = np.array([-5.0, 20.0, -40.0]), np.array([10.0, 35.0, -20.0])
    box = vol.index_box(lo, hi)
    k, j, i = np.indices(vol.shape).reshape(3, -1)
    lps = vol.index_to_lps(np.column_stack([k, j, i]))
    inside = np.all((lps >= lo) & (lps <= hi), axis=1)
    assert inside.sum() > 100
    for axis, idx in enumerate((k, j, i)):
        held = idx[inside]
        assert box[axis].start <= held.min() and held.max() < box[axis].stop
    # tight for a box that the oblique grid's corners bound: within a voxel or so per side
    corners_idx = vol.lps_to_index(
        np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
    )
    assert all(box[a].stop - box[a].start <= np.ptp(corners_idx[:, a]) + 3 for a in range(3))


def test_index_box_is_clipped_to_the_grid_and_empty_when_missed() -> None:
    vol = _oblique_volume()
    whole = vol.index_box(np.full(3, -1e4), np.full(3, 1e4))
    assert whole == tuple(slice(0, n) for n in vol.shape)
    missed = vol.index_box(np.full(3, 5e3), np.full(3, 6e3))
    assert any(b.stop == b.start for b in missed)
    assert all(0 <= b.start <= b.stop <= n for b, n in zip(missed, vol.shape, strict=True))
    assert vol.array[missed].size == 0
