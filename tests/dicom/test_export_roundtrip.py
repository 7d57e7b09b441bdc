"""DICOM SEG export → re-import lands on the same voxels (single-frame, slightly sheared,
tilted-and-resampled, and Enhanced multi-frame CT)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sinusapp.dicom import load_volume, scan
from sinusapp.dicom.export import export_seg
from sinusapp.imaging.masks import load_reference_mask
from sinusapp.model import FakePredictor
from sinusapp.pipeline import analyse

CLINICAL = {"asthma": True, "allergic_rhinitis": False, "eosinophils_per_ul": 300.0}


def _load(ct: Path):
    """The folder's one CT series by UID (the 2-frame Enhanced CT sample is too short to be
    proposed as a sinus CT)."""
    (entry,) = [s for s in scan(ct).series if s.modality == "CT"]
    return load_volume(ct, series_uid=entry.series_uid)


def _roundtrip(ct: Path, tmp_path: Path, nomogram, mask: np.ndarray | None = None) -> tuple:
    v = _load(ct)
    r = analyse(v, CLINICAL, predictor=FakePredictor(locate=False), nomogram=nomogram)
    if mask is not None:
        r = dataclasses.replace(r, mask=mask)
    export_seg(r, out_path=tmp_path / "seg.dcm", source_dir=ct)
    return load_reference_mask(tmp_path / "seg.dcm", volume=v) > 0, r.mask > 0


@pytest.mark.parametrize(("shift_mm", "resampled"), [(0.0, False), (0.004, False), (0.5, True)])
def test_seg_roundtrip_on_generated_series(
    tmp_path: Path, series_writer, fitted_nomogram, shift_mm: float, resampled: bool
) -> None:
    # 0.004 mm/mm is a 0.23° shear: below the resampling limit, so the grid stays sheared
    series_writer(
        tmp_path / "ct", n=20, rows=40, cols=40, pixel_spacing=(1.0, 1.0), tilt_shift_mm=shift_mm
    )
    assert load_volume(tmp_path / "ct").resampled is resampled
    got, expected = _roundtrip(tmp_path / "ct", tmp_path, fitted_nomogram)
    assert expected.sum() > 50
    np.testing.assert_array_equal(got, expected)


@pytest.mark.realdata
def test_seg_roundtrip_on_enhanced_multiframe_ct(
    realct: Path, tmp_path: Path, fitted_nomogram
) -> None:
    ct = realct / "enhanced_ct_multiframe" / "uncompressed"
    v = _load(ct)
    mask = np.zeros(v.shape, np.uint8)
    mask[0, 100:200, 100:200] = 1  # different squares on the two frames: order matters
    mask[1, 150:250, 150:260] = 1
    got, expected = _roundtrip(ct, tmp_path, fitted_nomogram, mask=mask)
    np.testing.assert_array_equal(got, expected)
