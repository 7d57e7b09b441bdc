"""DICOM layer on generated series: ordering, rescale, geometry findings and bad input."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from sinusapp.dicom import load_volume, scan
from sinusapp.errors import GeometryError, InputError, SeriesSelectionError


def load_only_series(folder: Path, **kw):
    """Load the folder's one series by its UID: these tiny test series (a few slices) are too
    short to be proposed as a sinus CT, which is not what these tests are about."""
    (entry,) = scan(folder).series
    return load_volume(folder, series_uid=entry.series_uid, **kw)


def codes(volume_or_entry) -> set[str]:
    return {f.code for f in volume_or_entry.findings}


def test_regular_series_loads_in_position_order_with_affine(tmp_path: Path, series_writer) -> None:
    _, hu = series_writer(
        tmp_path / "s", n=10, spacing=1.25, names=lambda k: f"{(7 * k) % 10:02d}_x"
    )
    v = load_only_series(tmp_path / "s")
    assert v.shape == hu.shape
    np.testing.assert_array_equal(v.array, hu)  # sorted by position, not by file name
    assert v.spacing_mm == pytest.approx((1.25, 0.5, 0.6))
    # voxel (k, j, i) → LPS: x grows with column (row cosines), y with row, z with slice
    assert v.index_to_lps(np.array([2, 3, 4])) == pytest.approx(
        [-10 + 4 * 0.6, -20 + 3 * 0.5, 10 + 2 * 1.25]
    )
    assert not v.resampled and codes(v) == {"too_few_slices"}


def test_shuffled_instance_numbers_and_reverse_positions(tmp_path: Path, series_writer) -> None:
    zs = [50.0 - 2.0 * k for k in range(8)]  # written top-down
    _, hu = series_writer(tmp_path / "s", positions=zs)
    v = load_only_series(tmp_path / "s")
    np.testing.assert_array_equal(v.array, hu[::-1])  # ascending along the normal (+z)
    assert v.affine[2, 3] == pytest.approx(36.0)


def test_rescale_and_unsigned_storage(tmp_path: Path, series_writer) -> None:
    _, hu = series_writer(tmp_path / "s", n=4, signed=False, intercept=-1024.0)
    v = load_only_series(tmp_path / "s")
    np.testing.assert_array_equal(v.array, hu)
    assert v.array.dtype == np.int16


def test_missing_slice_is_found_and_interpolated(tmp_path: Path, series_writer) -> None:
    zs = [float(k) for k in range(30) if k != 12]
    series_writer(tmp_path / "s", positions=zs)
    entry = scan(tmp_path / "s").series[0]
    assert "missing_slices" in codes(entry)
    v = load_volume(tmp_path / "s")
    assert v.shape[0] == 30 and v.resampled
    f = next(f for f in v.findings if f.code == "missing_slices")
    assert f.value == 1 and "missing" in f.message


def test_duplicate_slice_is_reported_and_dropped(tmp_path: Path, series_writer) -> None:
    series_writer(tmp_path / "s", positions=[0.0, 1.0, 2.0, 2.0, 3.0, 4.0])
    v = load_only_series(tmp_path / "s")
    assert v.shape[0] == 5
    assert "duplicate_positions" in codes(v)


def test_tilted_series_is_resampled_to_orthogonal_grid(tmp_path: Path, series_writer) -> None:
    # IPP moves in y as z increases: a sheared stack (gantry tilt of atan(0.5) ≈ 26.6°)
    series_writer(tmp_path / "s", n=10, spacing=1.0, tilt_shift_mm=0.5)
    v = load_only_series(tmp_path / "s")
    tilt = next(f for f in v.findings if f.code == "gantry_tilt")
    assert tilt.value == pytest.approx(26.57, abs=0.1)
    assert v.resampled
    # the output grid is orthogonal and covers the sheared extent (extra rows)
    a = v.affine[:3, :3] / np.array(v.spacing_mm)
    assert a.T @ a == pytest.approx(np.eye(3), abs=1e-9)
    assert v.shape[1] > 32


def test_random_bytes_and_truncated_file_are_skipped_not_fatal(
    tmp_path: Path, series_writer
) -> None:
    series_writer(tmp_path / "s", n=5)
    (tmp_path / "s" / "random.bin").write_bytes(os.urandom(4096))
    first = sorted((tmp_path / "s").glob("IM*.dcm"))[0]
    (tmp_path / "s" / "truncated.dcm").write_bytes(first.read_bytes()[:300])
    result = scan(tmp_path / "s")
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert "not a DICOM file" in reasons["random.bin"]
    assert "truncated" in reasons["truncated.dcm"] or "malformed" in reasons["truncated.dcm"]
    assert len(result.series) == 1 and result.series[0].n_frames == 5


def test_folder_of_random_files_gives_clear_error(tmp_path: Path) -> None:
    rnd = random.Random(1)
    for i in range(5):
        (tmp_path / f"f{i}").write_bytes(bytes(rnd.randrange(256) for _ in range(500)))
    with pytest.raises(SeriesSelectionError, match="no DICOM image series found"):
        load_volume(tmp_path)


def test_non_ct_modality_is_not_proposed(tmp_path: Path, series_writer) -> None:
    series_writer(tmp_path / "s", n=5, modality="MR")
    result = scan(tmp_path / "s")
    assert result.proposed is None
    assert "not CT" in result.series[0].candidate.reasons[0]
    with pytest.raises(SeriesSelectionError, match="modality MR, not CT"):
        load_volume(tmp_path / "s")


def test_single_slice_gives_clear_error(tmp_path: Path, series_writer) -> None:
    uid, _ = series_writer(tmp_path / "s", n=1)
    with pytest.raises(SeriesSelectionError, match="single image"):
        load_volume(tmp_path / "s")
    with pytest.raises(GeometryError, match="single slice"):
        load_volume(tmp_path / "s", series_uid=uid)


def test_unknown_series_uid_lists_the_available_ones(tmp_path: Path, series_writer) -> None:
    uid, _ = series_writer(tmp_path / "s", n=3)
    with pytest.raises(SeriesSelectionError) as exc:
        load_volume(tmp_path / "s", series_uid="1.2.3")
    assert uid in str(exc.value)


def test_missing_path_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        scan(tmp_path / "nope")


def test_thin_bone_series_is_proposed_over_thick_soft_one(tmp_path: Path, series_writer) -> None:
    series_writer(tmp_path / "a", n=25, spacing=1.0, seed=1)
    import pydicom

    series_writer(tmp_path / "b", n=25, spacing=5.0, seed=2)
    for f in (tmp_path / "b").iterdir():
        ds = pydicom.dcmread(f)
        ds.ConvolutionKernel = "STANDARD"
        ds.SeriesDescription = "SOFT 5MM"
        ds.SliceThickness = 5.0
        ds.save_as(f)
    result = scan(tmp_path)
    assert result.proposed is not None and result.proposed.description == "TEST BONE"
    soft = next(s for s in result.series if s.description == "SOFT 5MM")
    # above 2.5 mm a series is no sinus-capable CT: never proposed, only chosen (issue 12)
    assert not soft.candidate.eligible and "too thick" in soft.candidate.reasons[0]


def test_truncated_pixel_data_gives_clear_error_on_load(tmp_path: Path, series_writer) -> None:
    series_writer(tmp_path / "s", n=4)
    victim = sorted((tmp_path / "s").glob("IM*.dcm"))[2]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 700])
    from sinusapp.errors import DicomReadError

    with pytest.raises(DicomReadError) as exc:
        load_only_series(tmp_path / "s")
    assert victim.name in str(exc.value)


def test_tilted_series_voxels_land_at_their_patient_position(tmp_path: Path, series_writer) -> None:
    """Each source voxel, resampled, sits at its own LPS position in the output grid."""
    # a shift of exactly one row per slice (45° tilt) puts every source voxel on an output
    # grid point, so its value must come through unchanged
    _, hu = series_writer(
        tmp_path / "s",
        n=10,
        rows=32,
        cols=28,
        spacing=1.0,
        pixel_spacing=(1.0, 1.0),
        tilt_shift_mm=1.0,
    )
    hu = hu.astype(np.int16)
    v = load_only_series(tmp_path / "s")
    assert v.resampled
    rng = np.random.default_rng(0)
    for _ in range(60):
        k, r, c = int(rng.integers(10)), int(rng.integers(32)), int(rng.integers(28))
        # generator geometry: IPP = (-10, -20 + k, 10 + k), rows along +y, columns along +x
        lps = np.array([-10.0 + c, -20.0 + k + r, 10.0 + k])
        idx = np.rint(v.lps_to_index(lps)).astype(int)
        assert np.allclose(v.lps_to_index(lps), idx, atol=1e-6)  # lands on a grid point
        assert v.array[tuple(idx)] == hu[k, r, c]


def test_loading_can_be_cancelled(tmp_path: Path, series_writer) -> None:
    from sinusapp.errors import Cancelled

    series_writer(tmp_path / "s", n=12)
    calls: list[int] = []

    def cancel_after_three() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        load_only_series(tmp_path / "s", should_cancel=cancel_after_three)
