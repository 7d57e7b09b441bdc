"""Special files are skipped with a reason; geometry, pixel values and series identity are
validated: each bad header is refused with a structured finding that ``scan`` shows on the
series and ``predict`` reports (exit 2), never analysed into a wrong result (exit 0)."""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from _badinput import edit_slices, series_findings, slices

from sinusapp.dicom import load_volume, scan
from sinusapp.errors import GeometryError, SeriesSelectionError

pytestmark = pytest.mark.usefixtures("fake_model")


@pytest.mark.timeout(60)
def test_a_fifo_in_the_ct_folder_is_skipped_with_its_reason(ct, cli, predict_args) -> None:
    fifo = ct / "zz_pipe.dcm"
    os.mkfifo(fifo)
    # should anything open the FIFO, this writer unblocks it after 10 s (the test then
    # fails on the reason instead of hanging)
    rescue = threading.Timer(10.0, lambda: os.close(os.open(fifo, os.O_WRONLY)))
    rescue.daemon = True
    rescue.start()
    try:
        result = scan(ct)
        skipped = {Path(s.path).name: s for s in result.skipped}
        assert skipped["zz_pipe.dcm"].code == "not_regular"
        assert "not a regular file" in skipped["zz_pipe.dcm"].reason
        rc, out, err = cli(*predict_args(ct))
        assert rc == 0, err
        assert "DLR-score" in out
    finally:
        rescue.cancel()


def test_a_fifo_given_as_the_path_is_skipped(tmp_path, cli) -> None:
    fifo = tmp_path / "one.dcm"
    os.mkfifo(fifo)
    result = scan(fifo)
    assert [s.code for s in result.skipped] == ["not_regular"]


def _set(keyword: str, value):
    def edit(k: int, ds: pydicom.Dataset) -> None:
        setattr(ds, keyword, value(k, ds) if callable(value) else value)

    return edit


def _shift_z(mm_per_slice: float):
    def edit(k: int, ds: pydicom.Dataset) -> None:
        x, y, _ = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, round(k * mm_per_slice, 3)]

    return edit


def _tilt_columns(deg: float):
    def edit(k: int, ds: pydicom.Dataset) -> None:
        a = math.radians(deg)
        ds.ImageOrientationPatient = [1, 0, 0, round(math.sin(a), 6), round(math.cos(a), 6), 0]

    return edit


# each case: edit(k, ds), only these slices, finding code, words in the message
BAD_HEADERS = [
    pytest.param(
        _set("PixelSpacing", [-3.2, 3.2]),
        None,
        "invalid_pixel_spacing",
        "negative",
        id="negative-pixel-spacing",
    ),
    pytest.param(
        _set("PixelSpacing", [0, 0]),
        None,
        "invalid_pixel_spacing",
        "PixelSpacing",
        id="zero-pixel-spacing",
    ),
    pytest.param(
        _set("ImageOrientationPatient", [0, 0, 0, 0, 0, 0]),
        None,
        "invalid_orientation",
        "unit vectors",
        id="iop-all-zero",
    ),
    pytest.param(
        _set("ImageOrientationPatient", [1, 0, 0, 1, 0, 0]),
        None,
        "nonorthogonal_orientation",
        "perpendicular",
        id="iop-row-equals-column",
    ),
    pytest.param(
        _tilt_columns(10.0),
        None,
        "nonorthogonal_orientation",
        "perpendicular",
        id="iop-not-orthogonal",
    ),
    pytest.param(
        _shift_z(100.0), None, "slice_spacing_too_large", "100.0 mm apart", id="slices-100mm-apart"
    ),
    pytest.param(
        _set("PixelSpacing", [1.6, 1.6]),
        range(0, 40, 2),
        "mixed_pixel_spacing",
        "PixelSpacing",
        id="half-other-pixel-spacing",
    ),
    pytest.param(
        _set("RescaleSlope", "1e30"),
        None,
        "invalid_rescale_slope",
        "1e+30",
        id="rescale-slope-1e30",
    ),
    pytest.param(
        _set("RescaleSlope", "NaN"),
        range(7, 8),
        "invalid_rescale_slope",
        "im0007.dcm",
        id="rescale-slope-nan-one-slice",
    ),
    pytest.param(
        _set("RescaleSlope", "0"),
        None,
        "invalid_rescale_slope",
        "RescaleSlope 0",
        id="rescale-slope-zero",
    ),
    pytest.param(
        _set("RescaleIntercept", "inf"),
        None,
        "invalid_rescale_intercept",
        "RescaleIntercept inf",
        id="rescale-intercept-inf",
    ),
    pytest.param(
        _set("PatientID", lambda k, ds: "P1" if k < 20 else "P2"),
        None,
        "mixed_patients",
        "PatientID",
        id="two-patients-one-series",
    ),
    pytest.param(
        _set("StudyInstanceUID", lambda k, ds: "1.2.3.4" if k < 20 else "1.2.3.5"),
        None,
        "mixed_studies",
        "StudyInstanceUID",
        id="two-studies-one-series",
    ),
    pytest.param(
        _set("FrameOfReferenceUID", lambda k, ds: "1.2.3.4" if k < 20 else "1.2.3.5"),
        None,
        "mixed_frame_of_reference",
        "frames of reference",
        id="two-frames-of-reference",
    ),
]


@pytest.mark.parametrize(("edit", "only", "code", "words"), BAD_HEADERS)
def test_a_bad_header_is_refused_with_a_finding(
    ct, cli, predict_args, scan_json, edit, only, code, words
) -> None:
    edit_slices(ct, edit, only=only)
    found = [f for f in series_findings(scan_json(ct)) if f["code"] == code]
    assert found, f"scan shows no {code} finding"
    assert found[0]["severity"] == "error" and words in found[0]["message"]
    rc, out, err = cli(*predict_args(ct))
    assert rc == 2, f"analysed anyway: {out}"
    assert words in err and "DLR-score" not in out
    uid = str(pydicom.dcmread(slices(ct)[-1], stop_before_pixels=True).SeriesInstanceUID)
    with pytest.raises(GeometryError, match="cannot be made into a 3-D volume"):
        load_volume(ct, series_uid=uid)  # forcing the series gives the same reason


def test_a_long_run_of_missing_slices_is_refused_not_interpolated(ct, cli, predict_args) -> None:
    for f in slices(ct)[15:23]:  # 8 slices of 2.5 mm: a 22.5 mm gap
        f.unlink()
    rc, _out, err = cli(*predict_args(ct))
    assert rc == 2 and "gap of 22.5 mm" in err and "too long to interpolate" in err


def test_one_missing_slice_is_still_interpolated_with_a_finding(ct, cli, predict_args) -> None:
    slices(ct)[20].unlink()
    rc, _out, err = cli(*predict_args(ct, "--json", str(ct.parent / "r.json")))
    assert rc == 0, err
    codes = [w["code"] for w in json.loads((ct.parent / "r.json").read_text())["warnings"]]
    assert "missing_slices" in codes


def test_a_truncated_slice_is_named_with_its_reason(ct, cli, predict_args) -> None:
    victim = slices(ct)[20]
    victim.write_bytes(victim.read_bytes()[:200])
    rc, out, err = cli(*predict_args(ct, "--json", str(ct.parent / "r.json")))
    assert rc == 0, err
    warnings = json.loads((ct.parent / "r.json").read_text())["warnings"]
    lost = next(w for w in warnings if w["code"] == "unreadable_files")
    assert "im0020.dcm" in lost["message"] and "truncated" in lost["message"]
    assert "im0020.dcm" in out


def _second_patient(ct: Path, tmp: Path, *, pid: str, name: str) -> Path:
    other = tmp / "other"
    other.mkdir()
    study, series, frame = (pydicom.uid.generate_uid() for _ in range(3))
    for f in slices(ct):
        ds = pydicom.dcmread(f)
        ds.PatientID, ds.PatientName = pid, name
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(other / f.name)
    return other


def test_a_tie_across_patients_requires_series(ct, tmp_path, cli, predict_args) -> None:
    folder = tmp_path / "cd"
    folder.mkdir()
    ct.rename(folder / "a")
    _second_patient(folder / "a", folder, pid="OTHER-2", name="Other^Patient")
    rc, _, err = cli(*predict_args(folder))
    assert rc == 2 and "different patients" in err and "--series" in err
    assert "OTHER-2" in err
    uid = str(pydicom.dcmread(slices(folder / "other")[0]).SeriesInstanceUID)
    rc, _out, err = cli(*predict_args(folder, "--series", uid))
    assert rc == 0, err


def _write_nifti(path: Path, labels: np.ndarray, volume) -> Path:
    import nibabel as nib

    # NIfTI index order (i, j, k) = (column, row, slice); RAS = diag(-1, -1, 1) · LPS
    ijk_to_lps = volume.affine[:, [2, 1, 0, 3]]
    data = np.transpose(labels, (2, 1, 0)).astype(np.uint8)
    nib.save(nib.Nifti1Image(data, np.diag([-1.0, -1.0, 1.0, 1.0]) @ ijk_to_lps), str(path))
    return path


@pytest.mark.parametrize(
    ("values", "words"),
    [((1,), "looks like a lesion mask"), ((1, 42), "not sinus labels"), ((), "empty")],
    ids=["lesion-mask-as-labels", "unknown-label-value", "empty"],
)
def test_sinus_labels_are_checked(ct, cli, predict_args, values, words) -> None:
    volume = load_volume(ct)
    labels = np.zeros(volume.shape, np.uint8)
    for i, v in enumerate(values):
        labels[10 + 5 * i : 14 + 5 * i, 20:40, 20:40] = v
    path = _write_nifti(ct.parent / "labels.nii.gz", labels, volume)
    rc, _out, err = cli(*predict_args(ct, "--sinus-labels", str(path)))
    assert rc == 2 and words in err, err


def test_scan_refuses_a_series_mixing_two_patients_not_merging_them(ct, tmp_path) -> None:
    other = _second_patient(ct, tmp_path, pid="P2", name="Second^Patient")
    uid = str(pydicom.dcmread(slices(ct)[0]).SeriesInstanceUID)
    for k, f in enumerate(slices(other)):  # same SeriesInstanceUID, slices after the first's
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = uid
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 100.0]
        ds.save_as(ct / f"p2_{k:04d}.dcm")
    result = scan(ct)
    entry = result.find_series(uid)
    assert entry is not None and not entry.candidate.eligible
    assert any(f.code == "mixed_patients" for f in entry.findings)
    with pytest.raises(SeriesSelectionError):
        load_volume(ct)


def test_the_lesion_seg_is_refused_as_sinus_labels(ct, tmp_path, cli, predict_args) -> None:
    seg = tmp_path / "lesion.dcm"
    rc, _, err = cli(*predict_args(ct, "--seg", str(seg)))
    assert rc == 0, err
    rc, out, err = cli(*predict_args(ct, "--sinus-labels", str(seg)))
    assert rc == 2 and "looks like a lesion mask" in err and "DLR-score" not in out
