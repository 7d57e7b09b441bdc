"""Plane geometry (no Qt): radiological orientation of the reformats, contours, DSC."""

from __future__ import annotations

import numpy as np
import pytest

from sinusapp.imaging.metrics import dice
from sinusapp.imaging.planes import Plane, body_bbox, contour_polyline, plane_geometry
from sinusapp.imaging.volume import Volume, affine_from_geometry


def _volume(*, slice_dir=(0, 0, 1), row_cos=(1, 0, 0), col_cos=(0, 1, 0), shape=(5, 6, 7)):
    arr = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    aff = affine_from_geometry(
        origin_lps=np.zeros(3),
        row_cosines=np.array(row_cos, float),
        column_cosines=np.array(col_cos, float),
        slice_direction=np.array(slice_dir, float),
        spacing_mm=(2.0, 0.5, 0.7),
    )
    return Volume(array=arr, affine=aff)


def _lps_of_pixel(vol, g, r, c, idx):
    return vol.index_to_lps(np.array(g.voxel_of_pixel(r, c, idx), float))


@pytest.mark.parametrize("slice_dir", [(0, 0, 1), (0, 0, -1)])
@pytest.mark.parametrize("row_cos", [(1, 0, 0), (-1, 0, 0)])
def test_radiological_orientation_for_any_axial_ordering(slice_dir, row_cos):
    vol = _volume(slice_dir=slice_dir, row_cos=row_cos)
    for plane, (right_axis, down_axis, down_sign) in {
        Plane.AXIAL: (0, 1, +1),  # screen right = +L, down = +P
        Plane.CORONAL: (0, 2, -1),  # screen right = +L, down = −S (inferior)
        Plane.SAGITTAL: (1, 2, -1),  # screen right = +P, down = −S
    }.items():
        g = plane_geometry(plane=plane, shape=vol.shape, affine=vol.affine)
        a = _lps_of_pixel(vol, g, 0, 0, 0)
        right = _lps_of_pixel(vol, g, 0, g.width - 1, 0)
        down = _lps_of_pixel(vol, g, g.height - 1, 0, 0)
        assert right[right_axis] > a[right_axis], plane
        assert np.sign(down[down_axis] - a[down_axis]) == down_sign, plane
        img = g.extract(vol.array, 0)
        assert img.shape == (g.height, g.width)
        # the pixel shows the voxel voxel_of_pixel says
        assert img[1, 2] == vol.array[g.voxel_of_pixel(1, 2, 0)]


def test_coronal_of_axial_series_has_superior_up_and_patient_right_left():
    vol = _volume()
    g = plane_geometry(plane=Plane.CORONAL, shape=vol.shape, affine=vol.affine)
    assert g.labels == ("R", "L", "S", "I")
    assert (g.through_axis, g.x_axis, g.y_axis) == (1, 2, 0)
    assert g.flip_y and not g.flip_x  # last slice (most superior) at the top
    assert (g.spacing_x_mm, g.spacing_y_mm) == pytest.approx((0.7, 2.0))
    assert g.extent_mm == pytest.approx((7 * 0.7, 5 * 2.0))
    assert g.n_slices == 6
    img = g.extract(vol.array, 3)
    assert np.array_equal(img, vol.array[::-1, 3, :])


def test_pixel_voxel_round_trip_and_mm_lookup():
    vol = _volume(slice_dir=(0, 0, -1), row_cos=(-1, 0, 0))
    for plane in Plane:
        g = plane_geometry(plane=plane, shape=vol.shape, affine=vol.affine)
        voxel = g.voxel_of_pixel(2, 3, 1)
        assert g.pixel_of_voxel(voxel) == (2, 3)
        x, y = g.pixel_centre_mm(2, 3)
        assert g.mm_to_pixel(x, y) == (2, 3)
        assert g.mm_to_pixel(-1.0, y) is None


def _head_in_a_big_field_of_view(*, air_hu: float) -> tuple[np.ndarray, tuple[slice, ...]]:
    """A 160 mm "head" in a 400 mm field of view with a couch below it (air between) and
    noisy air (an uncalibrated scanner reads it near −500 HU)."""
    rng = np.random.default_rng(0)
    shape = (60, 200, 200)  # 2 mm voxels
    a = (air_hu + rng.normal(0.0, 120.0, shape)).astype(np.float32)
    _, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    head = ((j - 90) / 40.0) ** 2 + ((i - 100) / 35.0) ** 2 <= 1.0
    a[:, head[0]] = 40.0
    a[:, 150:156, 30:170] = 200.0  # the couch, 10 mm below the head
    return a, (slice(0, 60), slice(50, 131), slice(65, 136))


@pytest.mark.parametrize("air_hu", [-1000.0, -500.0])
def test_body_box_is_the_head_not_the_couch_or_the_noise(air_hu):
    """ "Fit" showed a whole head in its 500 mm field of view at a third of the view (VHF);
    it now fits the body, the largest piece of tissue, and not the couch or noisy air."""
    a, (_, js, is_) = _head_in_a_big_field_of_view(air_hu=air_hu)
    box = body_bbox(a, spacing_mm=(2.0, 2.0, 2.0), margin_mm=10.0)
    assert box is not None
    assert box[0] == slice(0, 60)
    # the head's rows 50-130 and columns 65-135 with 5 voxels (10 mm) of margin, give or take
    # the 4 mm grid; not the couch (rows 150-155) nor the whole 200-voxel field of view
    assert js.start - 10 <= box[1].start <= js.start - 3 and js.stop + 3 <= box[1].stop <= 148
    assert is_.start - 10 <= box[2].start <= is_.start - 3
    assert is_.stop + 3 <= box[2].stop <= is_.stop + 10
    assert body_bbox(np.full((8, 8, 8), -1000.0), spacing_mm=(1.0, 1.0, 1.0)) is None


def test_body_box_on_a_coarse_grid_samples_no_more_than_its_bound(monkeypatch):
    """Coarse voxels (3 mm) gave a sampling step of 1, i.e. the whole volume filtered on the
    GUI thread; the step now grows until the samples fit the bound, and the box stays right."""
    from sinusapp.imaging import planes

    monkeypatch.setattr(planes, "_BODY_MAX_SAMPLES", 50_000)
    a = np.full((60, 80, 80), -1000, np.int16)
    a[10:50, 20:60, 30:70] = 40
    box = body_bbox(a, spacing_mm=(3.0, 3.0, 3.0), margin_mm=6.0)
    assert box is not None
    for sl, (lo, hi) in zip(box, ((10, 50), (20, 60), (30, 70)), strict=True):
        assert lo - 8 <= sl.start <= lo - 1 and hi + 1 <= sl.stop <= hi + 8, (sl, lo, hi)


def test_a_voxel_box_is_the_same_rectangle_on_screen_for_flipped_axes():
    vol = _volume(slice_dir=(0, 0, -1), row_cos=(-1, 0, 0), shape=(10, 12, 14))
    box = (slice(2, 5), slice(3, 9), slice(4, 11))
    for plane in Plane:
        g = plane_geometry(plane=plane, shape=vol.shape, affine=vol.affine)
        x, y, w, h = g.box_rect_mm(box)
        corners = [
            g.pixel_of_voxel((k, j, i))
            for k in (box[0].start, box[0].stop - 1)
            for j in (box[1].start, box[1].stop - 1)
            for i in (box[2].start, box[2].stop - 1)
        ]
        rows, cols = [r for r, _ in corners], [c for _, c in corners]
        assert x == pytest.approx(min(cols) * g.spacing_x_mm), plane
        assert y == pytest.approx(min(rows) * g.spacing_y_mm), plane
        assert w == pytest.approx((max(cols) - min(cols) + 1) * g.spacing_x_mm), plane
        assert h == pytest.approx((max(rows) - min(rows) + 1) * g.spacing_y_mm), plane


def test_contour_polyline_is_nan_separated_in_mm():
    m = np.zeros((20, 30), np.uint8)
    m[2:6, 3:8] = 1
    m[10:15, 20:25] = 1
    xs, ys = contour_polyline(m, spacing_x_mm=0.5, spacing_y_mm=2.0)
    assert np.isnan(xs).sum() == 2  # two closed pieces, each followed by a NaN
    finite = ~np.isnan(xs)
    assert xs[finite].min() == pytest.approx((3 - 0.5 + 0.5) * 0.5, abs=0.3)
    assert ys[finite].max() == pytest.approx((14 + 0.5 + 0.5) * 2.0, abs=1.1)
    assert contour_polyline(np.zeros((4, 4)), spacing_x_mm=1, spacing_y_mm=1)[0].size == 0


def test_dice():
    a = np.zeros((4, 4, 4), np.uint8)
    b = a.copy()
    a[0, :2] = 1
    b[0, :1] = 1
    assert dice(a, b) == pytest.approx(2 * 4 / (8 + 4))
    assert dice(np.zeros(3), np.zeros(3)) == 1.0
    with pytest.raises(ValueError, match="shape"):
        dice(a, a[:2])
