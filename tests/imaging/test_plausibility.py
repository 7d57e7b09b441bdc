"""Input plausibility gate: each check fires on an input that should trigger it, and stays
silent on the demo study and a real NasalSeg crop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from sinusapp.errors import InputQualityError, NotSinusCTError
from sinusapp.findings import Finding, Severity
from sinusapp.imaging import plausibility as pl
from sinusapp.imaging.volume import Volume

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
DEMO_CT = REPO / "assets" / "demo" / "ct"
NASALSEG = SHARED / "nasalseg" / "P002"
HARVARD = SHARED / "realct" / "harvard02_cadaver_head_sinus_coverage"
CHEST = SHARED / "realct" / "ge_hispeedcti_chest_transfer_syntax_zoo" / "original_implicit_LE"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"data not found at {path} (shared data next to the repo / demo assets)")
    return path


def _load(path: Path) -> Volume:
    from sinusapp.dicom import load_volume, scan

    (entry,) = [s for s in scan(path).series if s.modality == "CT"]
    return load_volume(path, series_uid=entry.series_uid)


def _centre(volume: Volume) -> np.ndarray:
    from sinusapp.model.preprocess import locate_sinus_region

    return locate_sinus_region(volume).center_lps


def _problems(findings: tuple[Finding, ...]) -> list[tuple[str, str, float | None]]:
    return [(f.code, str(f.severity), f.value) for f in findings if f.severity != Severity.INFO]


@pytest.fixture(scope="module")
def demo() -> Volume:
    return _load(_need(DEMO_CT))


@pytest.fixture(scope="module")
def nasalseg() -> Volume:
    return _load(_need(NASALSEG / "ct"))


# -- silent on good input -------------------------------------------------------------------


@pytest.mark.parametrize("which", ["demo", "nasalseg"])
def test_no_finding_on_the_demo_and_a_real_sinus_crop(which: str, request) -> None:
    volume = request.getfixturevalue(which)
    found = pl.check_acquisition(volume) + pl.check_region(
        volume, region_center_lps=_centre(volume)
    )
    assert _problems(found) == []
    air = pl.measure_air_hu(volume)
    assert air is not None and abs(air + 1000) < 30


# -- calibration ----------------------------------------------------------------------------


def test_uncalibrated_real_head_is_stopped_with_the_measured_air_hu() -> None:
    volume = _load(_need(HARVARD))
    found = pl.check_acquisition(volume)
    cal = next(f for f in found if f.code == "air_calibration")
    assert cal.severity == Severity.ERROR and cal.unit == "HU"
    assert cal.value is not None and -600 < cal.value < -400  # air reads about -500 HU
    assert f"{cal.value:.0f} HU" in cal.message
    with pytest.raises(InputQualityError, match=r"Air reads -\d+ HU") as info:
        pl.raise_if_severe(found)
    assert any(f.code == "air_calibration" for f in info.value.findings)


def test_air_offset_on_the_demo_is_found(demo: Volume) -> None:
    a = demo.array.copy()
    a[a < -800] += 450  # air now reads about -550 HU
    cal = next(f for f in pl.check_acquisition(replace(demo, array=a)) if f.code.startswith("air"))
    assert cal.severity == Severity.ERROR and cal.value == pytest.approx(-555, abs=40)


def test_random_values_have_no_air_peak_to_measure() -> None:
    rng = np.random.default_rng(0)
    v = Volume(array=rng.integers(-1000, 1500, (12, 40, 40)).astype(np.int16), affine=np.eye(4))
    assert pl.measure_air_hu(v) is None
    cal = next(f for f in pl.check_acquisition(v) if f.code == "air_calibration")
    assert cal.severity == Severity.INFO


# -- not a sinus CT -------------------------------------------------------------------------


def test_chest_ct_has_no_sinus_cavity() -> None:
    """A real chest slice stacked into a 40 mm slab: the locator refuses it, as an error."""
    import pydicom

    from sinusapp.model.preprocess import locate_sinus_region

    ds = pydicom.dcmread(next(p for p in _need(CHEST).iterdir() if p.is_file()))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    row_mm, col_mm = (float(x) for x in ds.PixelSpacing)
    aff = np.eye(4)
    aff[:3, 0], aff[:3, 1], aff[:3, 2] = [0, 0, 1.0], [0, row_mm, 0], [col_mm, 0, 0]
    chest = Volume(array=np.repeat(hu.astype(np.int16)[None], 40, axis=0), affine=aff)
    assert _problems(pl.check_acquisition(chest)) == []  # a calibrated CT...
    with pytest.raises(NotSinusCTError) as info:
        locate_sinus_region(chest)
    finding = pl.not_sinus_finding(info.value)
    assert finding.code == "no_sinus_cavity" and finding.severity == Severity.ERROR
    assert "sinus" in finding.message and "Choose" in finding.message


def test_non_ct_modality_is_an_error(demo: Volume) -> None:
    mr = replace(demo, info=replace(demo.info, modality="MR"))
    assert ("not_ct", "error", None) in _problems(pl.check_acquisition(mr))


def test_body_far_wider_than_a_head_is_flagged() -> None:
    from sinusapp.model.testing import make_sinus_phantom

    head, _ = make_sinus_phantom()  # a 150 mm wide head, wholly inside the field of view
    centre = head.index_to_lps((np.asarray(head.shape, float) - 1) / 2)
    assert _problems(pl.check_region(head, region_center_lps=centre)) == []
    wide = replace(head, affine=head.affine @ np.diag([1.0, 2.0, 2.0, 1.0]))  # 2× pixel size
    centre = wide.index_to_lps((np.asarray(wide.shape, float) - 1) / 2)
    found = pl.check_region(wide, region_center_lps=centre)
    width = next(f for f in found if f.code == "not_head_sized")
    assert width.value == pytest.approx(300, abs=15) and width.unit == "mm"


# -- coverage -------------------------------------------------------------------------------


def test_ct_that_stops_above_the_maxillary_sinuses(demo: Volume) -> None:
    """Cut the demo 5 mm above its region centre (a brain protocol's lower end)."""
    k = round(float(demo.lps_to_index(_centre(demo))[0])) + 5
    aff = demo.affine.copy()
    aff[:3, 3] = demo.index_to_lps(np.array([k, 0, 0]))
    cut = Volume(array=np.ascontiguousarray(demo.array[k:]), affine=aff, info=demo.info)
    cov = [f for f in pl.check_region(cut, region_center_lps=_centre(cut)) if f.code == "coverage"]
    assert cov and cov[0].severity == Severity.WARNING
    assert cov[0].value is not None and cov[0].value < pl.COVERAGE_BELOW_MM
    assert "maxillary" in cov[0].message


# -- slices and kernel ----------------------------------------------------------------------


def test_five_mm_slices_are_thick() -> None:
    from sinusapp.model.testing import make_sinus_phantom

    volume, _ = make_sinus_phantom(shape=(24, 112, 112), spacing_mm=(5.0, 1.8, 1.8))
    thick = next(f for f in pl.check_acquisition(volume) if f.code == "thick_slices")
    assert thick.severity == Severity.WARNING and thick.value == pytest.approx(5.0)


def test_header_thickness_counts_even_on_a_fine_grid(demo: Volume) -> None:
    thick = replace(demo, info=replace(demo.info, slice_thickness_mm=3.0))
    assert ("thick_slices", "warning", 3.0) in _problems(pl.check_acquisition(thick))


@pytest.mark.parametrize("kernel", ["STANDARD", "SOFT", "B30f", "H31s", "UB", "FC21", "Hr32"])
def test_soft_kernel_header_is_a_warning(demo: Volume, kernel: str) -> None:
    soft = replace(demo, info=replace(demo.info, convolution_kernel=kernel))
    assert pl.classify_kernel(kernel) == "soft"
    assert [c for c, _, _ in _problems(pl.check_acquisition(soft))] == ["soft_kernel"]


@pytest.mark.parametrize(
    ("kernel", "kind"),
    [("BONE", "sharp"), ("BONEPLUS", "sharp"), ("H70h", "sharp"), ("Br64", "sharp"),
     ("D", "sharp"), ("YC", "sharp"), ("FC30", "sharp"), ("1", ""), ("", ""), ("B45f", "")],
)  # fmt: skip
def test_kernel_names(kernel: str, kind: str) -> None:
    assert pl.classify_kernel(kernel) == kind


def test_image_sharpness_when_the_header_is_silent(demo: Volume, nasalseg: Volume) -> None:
    silent = replace(demo, info=replace(demo.info, convolution_kernel=""))
    sharp = pl.measure_edge_width_mm(silent)
    blurred = ndimage.gaussian_filter(demo.array.astype(np.float32), (0, 3, 3))
    smooth = replace(silent, array=blurred.astype(np.int16))
    soft = pl.measure_edge_width_mm(smooth)
    assert sharp is not None and soft is not None and soft > sharp + 0.8
    found = next(f for f in pl.check_acquisition(smooth) if f.code == "edge_width")
    assert found.severity == Severity.WARNING and found.value == pytest.approx(soft, abs=0.01)
    # the real training backgrounds stay below the warning (an info line with the value)
    real = next(f for f in pl.check_acquisition(nasalseg) if f.code == "edge_width")
    assert real.severity == Severity.INFO and real.value < pl.EDGE_WIDTH_WARN_MM


# -- unlike the training data ---------------------------------------------------------------


def test_image_unlike_training_data(demo: Volume) -> None:
    a = demo.array.copy()
    soft = (a > -400) & (a < 300)
    a[soft] += 150  # e.g. a contrast-enhanced or mis-scaled image: soft tissue at ~180 HU
    found = pl.check_region(replace(demo, array=a), region_center_lps=_centre(demo))
    unlike = [f for f in found if f.code == "unlike_training"]
    assert unlike and unlike[0].unit == "HU"
    assert unlike[0].value is not None and unlike[0].value > pl.TRAINING_RANGES["soft_median_hu"][1]


# -- lesion location ------------------------------------------------------------------------


def test_lesion_in_the_sinuses_passes_and_outside_is_flagged(nasalseg: Volume) -> None:
    from sinusapp.imaging.masks import load_reference_mask

    labels = np.asarray(load_reference_mask(NASALSEG / "labels.nrrd", volume=nasalseg))
    centre = _centre(nasalseg)
    maxillary = np.isin(labels, (1, 2))  # the air spaces of both maxillary sinuses
    assert pl.check_lesion(nasalseg, maxillary, region_center_lps=centre) == ()
    # soft tissue > 15 voxels away from every labelled cavity: cheek, orbit, palate
    far = ~ndimage.binary_dilation(labels > 0, iterations=15)
    tissue = far & (nasalseg.array > -100) & (nasalseg.array < 100)
    found = pl.check_lesion(nasalseg, tissue, region_center_lps=centre)
    out = next(f for f in found if f.code == "lesion_outside_cavities")
    assert out.severity == Severity.WARNING and out.value is not None and out.value > 0.5
    # the same lesion seen from a region centre 100 mm away: outside the sinonasal region
    moved = pl.check_lesion(nasalseg, maxillary, region_center_lps=centre + np.array([100.0, 0, 0]))
    assert [f.code for f in moved][:1] == ["lesion_outside_region"]
    assert pl.check_lesion(nasalseg, np.zeros_like(maxillary), region_center_lps=centre) == ()


def test_raise_if_severe_keeps_all_findings() -> None:
    warn = Finding("thick_slices", Severity.WARNING, "thick", 5.0, "mm")
    pl.raise_if_severe([warn])  # warnings never stop
    err = Finding("air_calibration", Severity.ERROR, "Air reads -500 HU", -500.0, "HU")
    with pytest.raises(InputQualityError, match="Air reads -500 HU") as info:
        pl.raise_if_severe([warn, err])
    assert info.value.findings == (warn, err) and info.value.exit_code == 2
