"""Reference masks onto the CT grid: DICOM SEG (real and synthetic), NRRD (LPS / RAS), NIfTI."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

from sinusapp.errors import InputError
from sinusapp.imaging.masks import load_reference_mask, resample_nearest
from sinusapp.imaging.volume import SeriesInfo, Volume, affine_from_geometry
from sinusapp.synth.dicomio import lps_to_ras_affine

REALCT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "realct"


def _volume(shape=(20, 30, 40), *, for_uid: str = "1.2.3") -> Volume:
    affine = affine_from_geometry(
        origin_lps=np.array([-20.0, -10.0, 5.0]),
        row_cosines=np.array([1.0, 0.0, 0.0]),
        column_cosines=np.array([0.0, 1.0, 0.0]),
        slice_direction=np.array([0.0, 0.0, 1.0]),
        spacing_mm=(2.0, 0.8, 0.7),
    )
    return Volume(
        array=np.zeros(shape, np.int16),
        affine=affine,
        info=SeriesInfo(frame_of_reference_uid=for_uid),
    )


def _blob(shape) -> np.ndarray:
    k, j, i = np.indices(shape)
    m = ((k - 8) / 5.0) ** 2 + ((j - 12) / 7.0) ** 2 + ((i - 25) / 9.0) ** 2 < 1
    out = m.astype(np.uint8)
    out[2, 3, 4] = 3  # an asymmetric marker to catch flipped axes
    return out


def _write_nrrd(path: Path, mask: np.ndarray, affine: np.ndarray, *, ras: bool) -> None:
    """Write like 3D Slicer: axes (i, j, k), 'space directions' rows, 'space origin'."""
    data = mask.transpose(2, 1, 0)
    dirs = np.stack([affine[:3, 2], affine[:3, 1], affine[:3, 0]])
    origin = affine[:3, 3].copy()
    if ras:
        dirs = dirs * np.array([-1.0, -1.0, 1.0])
        origin = origin * np.array([-1.0, -1.0, 1.0])
    header = {
        "space": "right-anterior-superior" if ras else "left-posterior-superior",
        "space directions": dirs,
        "space origin": origin,
        "kinds": ["domain", "domain", "domain"],
    }
    nrrd.write(str(path), data, header)


@pytest.mark.parametrize("ras", [False, True])
def test_nrrd_in_lps_or_ras_lands_on_the_grid(tmp_path: Path, ras: bool) -> None:
    vol = _volume()
    mask = _blob(vol.shape)
    _write_nrrd(tmp_path / "m.seg.nrrd", mask, vol.affine, ras=ras)
    out = load_reference_mask(tmp_path / "m.seg.nrrd", volume=vol)
    assert out.dtype == np.uint8 and np.array_equal(out, mask)


def test_nifti_ras_affine_and_a_cropped_mask(tmp_path: Path) -> None:
    vol = _volume()
    mask = _blob(vol.shape)
    nib.save(
        nib.Nifti1Image(mask.transpose(2, 1, 0), lps_to_ras_affine(vol.affine)),
        str(tmp_path / "m.nii.gz"),
    )
    assert np.array_equal(load_reference_mask(tmp_path / "m.nii.gz", volume=vol), mask)
    # a mask saved on a crop of the grid goes back to its place
    crop = mask[3:15, 4:25, 10:38]
    aff = vol.affine.copy()
    aff[:3, 3] = vol.index_to_lps(np.array([3, 4, 10]))
    nib.save(
        nib.Nifti1Image(crop.transpose(2, 1, 0), lps_to_ras_affine(aff)), str(tmp_path / "c.nii")
    )
    out = load_reference_mask(tmp_path / "c.nii", volume=vol)
    expected = np.zeros_like(mask)
    expected[3:15, 4:25, 10:38] = crop
    assert np.array_equal(out, expected)


def test_finer_mask_is_resampled_by_nearest_neighbour() -> None:
    vol = _volume()
    mask = _blob(vol.shape)
    fine_aff = vol.affine.copy()
    fine_aff[:3, :3] = vol.affine[:3, :3] / 2.0
    fine = mask.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    # the fine voxel (2k, 2j, 2i) has its centre half a coarse voxel off; shift the origin back
    fine_aff[:3, 3] = (
        vol.affine[:3, 3] - (vol.affine[:3, 0] + vol.affine[:3, 1] + vol.affine[:3, 2]) / 4.0
    )
    out = resample_nearest(fine, fine_aff, shape=vol.shape, target_affine=vol.affine)
    assert out is not None and (out == mask).mean() > 0.99


def test_mismatched_masks_are_refused(tmp_path: Path) -> None:
    vol = _volume()
    mask = _blob(vol.shape)
    far = vol.affine.copy()
    far[:3, 3] += 1000.0
    nib.save(
        nib.Nifti1Image(mask.transpose(2, 1, 0), lps_to_ras_affine(far)),
        str(tmp_path / "far.nii.gz"),
    )
    with pytest.raises(InputError, match="does not overlap"):
        load_reference_mask(tmp_path / "far.nii.gz", volume=vol)
    with pytest.raises(InputError, match="does not exist"):
        load_reference_mask(tmp_path / "none.nii.gz", volume=vol)
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    with pytest.raises(InputError):
        load_reference_mask(tmp_path / "junk.dcm", volume=vol)


def _load_abdomen_ct(case: Path) -> Volume:
    """The 3-slice abdomen CT by its UID (too short to be proposed as a sinus CT)."""
    from sinusapp.dicom import load_volume, scan

    (entry,) = scan(case / "CT").series
    return load_volume(case / "CT", series_uid=entry.series_uid)


def test_real_ct_with_dicom_seg() -> None:
    case = REALCT / "ge_abdomen_ct3slice_with_dicom_seg"
    if not case.exists():
        pytest.skip(f"shared real CT not found at {case}")
    vol = _load_abdomen_ct(case)
    mask = load_reference_mask(case / "SEG" / "liver.dcm", volume=vol)
    assert mask.shape == vol.shape == (3, 512, 512)
    for k in range(3):
        assert mask[k].sum() > 10000  # liver on every slice
    assert 0 < np.median(vol.array[mask > 0]) < 150  # soft tissue HU
    # a series of another frame of reference refuses the same SEG
    other = Volume(
        array=vol.array, affine=vol.affine, info=SeriesInfo(frame_of_reference_uid="1.2.3.4")
    )
    with pytest.raises(InputError, match="frame of reference"):
        load_reference_mask(case / "SEG" / "liver.dcm", volume=other)


def test_real_seg_placed_by_position_when_volume_is_resampled() -> None:
    case = REALCT / "ge_abdomen_ct3slice_with_dicom_seg"
    if not case.exists():
        pytest.skip(f"shared real CT not found at {case}")
    from dataclasses import replace

    vol = _load_abdomen_ct(case)
    by_ref = load_reference_mask(case / "SEG" / "liver.dcm", volume=vol)
    by_pos = load_reference_mask(case / "SEG" / "liver.dcm", volume=replace(vol, resampled=True))
    assert np.array_equal(by_ref, by_pos)
