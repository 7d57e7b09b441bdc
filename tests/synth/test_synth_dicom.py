"""Written cases: conformant CT through SinusApp's DICOM layer, SEG / NIfTI masks, options,
byte-identical output for a seed, the dataset reader and the ``synth`` command."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from synth_helpers import coarse_scanner

from sinusapp.cli import main
from sinusapp.dataset import Dataset, DatasetError, load_case
from sinusapp.dicom import load_volume, scan
from sinusapp.imaging.masks import load_reference_mask
from sinusapp.synth.cohort import sample_cohort
from sinusapp.synth.write import WriteOptions, render_case, write_case


def _codes(volume) -> set[str]:
    return {f.code for f in volume.findings}


def test_case_loads_without_geometry_warnings(small_dataset: Path, small_cases) -> None:
    case = small_cases[0]
    v = load_volume(small_dataset / case.case_id / "ct")
    assert _codes(v) == set()
    ph, _ = render_case(case, scanner=coarse_scanner())
    assert np.array_equal(v.array, ph.hu)
    assert np.allclose(v.affine, ph.affine, atol=1e-3)
    assert v.info.manufacturer == "SinusApp Synthetic"
    assert v.info.patient_name.startswith("SYNTHETIC^")
    assert v.info.convolution_kernel == "BONE"
    lesion = load_reference_mask(small_dataset / case.case_id / "lesion_seg.dcm", volume=v)
    assert np.array_equal(lesion > 0, ph.lesion > 0)
    labels = load_reference_mask(small_dataset / case.case_id / "sinus_labels.nii.gz", volume=v)
    assert np.array_equal(labels, ph.labels)


def test_ct_headers_are_conformant(small_dataset: Path, small_cases) -> None:
    files = sorted((small_dataset / small_cases[0].case_id / "ct").iterdir())
    ds = pydicom.dcmread(files[0])
    assert ds.SOPClassUID == pydicom.uid.CTImageStorage
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert ds.Modality == "CT" and ds.RescaleSlope == 1 and ds.RescaleIntercept == -1024
    assert len(ds.WindowCenter) == 2 and ds.PatientName == f"SYNTHETIC^CASE{small_cases[0].case_id}"
    seg = pydicom.dcmread(small_dataset / small_cases[0].case_id / "lesion_seg.dcm")
    assert seg.Modality == "SEG" and seg.FrameOfReferenceUID == ds.FrameOfReferenceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ds.SeriesInstanceUID


def test_dataset_reader(small_dataset: Path, small_cases) -> None:
    data = Dataset.open(small_dataset)
    assert [c.case_id for c in data.cases] == [c.case_id for c in small_cases]
    case = data.cases[1]
    assert case.clinical["recurrence"] == small_cases[1].recurrence
    assert isinstance(case.clinical["eosinophils_per_ul"], float)
    volume, lesion, labels = load_case(case)
    assert lesion.shape == volume.shape and labels is not None and labels.max() == 9
    assert set(np.unique(lesion)) <= {0, 1}


def test_dataset_errors(tmp_path: Path, small_dataset: Path) -> None:
    with pytest.raises(DatasetError, match=r"clinical\.csv"):
        Dataset.open(tmp_path)
    (tmp_path / "clinical.csv").write_text("case_id,recurrence\nX1,1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="lacks the column"):
        Dataset.open(tmp_path)
    rows = (small_dataset / "clinical.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "clinical.csv").write_text("\n".join(rows[:2]) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="folder of case"):
        Dataset.open(tmp_path)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (WriteOptions(tilt_deg=12.0), {"gantry_tilt"}),
        (WriteOptions(missing_slice=True, shuffle_names=True, compress="rle"), {"missing_slices"}),
    ],
)
def test_hard_case_options_give_the_intended_warning(
    tmp_path: Path, small_cases, options, expected
) -> None:
    opts = WriteOptions(
        **{**{k: getattr(options, k) for k in WriteOptions.__slots__}, "scanner": coarse_scanner()}
    )
    case = small_cases[0]
    write_case(case, out_dir=tmp_path, options=opts)
    v = load_volume(tmp_path / case.case_id / "ct")
    assert expected <= _codes(v)
    lesion = load_reference_mask(tmp_path / case.case_id / "lesion_seg.dcm", volume=v)
    labels = load_reference_mask(tmp_path / case.case_id / "sinus_labels.nii.gz", volume=v)
    assert lesion.any() and np.all(labels[lesion > 0] > 0)
    assert np.median(v.array[(labels > 0) & (lesion == 0)]) < -700


def test_extra_series_and_compression(tmp_path: Path, small_cases) -> None:
    case = small_cases[2]
    opts = WriteOptions(extra_series=True, compress="jpegls", scanner=coarse_scanner())
    write_case(case, out_dir=tmp_path, options=opts)
    result = scan(tmp_path / case.case_id / "ct")
    kernels = {s.series_number: s.convolution_kernel for s in result.series}
    assert kernels == {1: "STANDARD", 2: "BONE", 3: "SOFT"}
    assert result.proposed is not None and result.proposed.series_number == 2
    v = load_volume(tmp_path / case.case_id / "ct")
    assert v.info.convolution_kernel == "BONE" and v.info.series_number == 2
    ph, _ = render_case(case, scanner=coarse_scanner())
    assert np.array_equal(v.array, ph.hu)  # lossless
    ts = pydicom.dcmread(
        next((tmp_path / case.case_id / "ct").iterdir())
    ).file_meta.TransferSyntaxUID
    assert ts == pydicom.uid.JPEGLSLossless
    assert len(list((tmp_path / case.case_id / "ct").iterdir())) == 2 * ph.hu.shape[0] + 1


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert (
            main(
                [
                    "synth",
                    "--out",
                    str(tmp_path / name),
                    "--cases",
                    "2",
                    "--seed",
                    "4",
                    "--low-res",
                    "--shuffle-names",
                    "--compress",
                    "rle",
                ]
            )
            == 0
        )
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert da == db and len(da) > 50
    with (tmp_path / "a" / "clinical.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {"true_probability", "cohort", "center"} <= set(rows[0])
    other = sample_cohort(n_cases=2, seed=5, center="A")
    assert other[0].row() != sample_cohort(n_cases=2, seed=4, center="A")[0].row()


def test_synth_command_refuses_an_existing_dataset(small_dataset: Path, capsys) -> None:
    assert main(["synth", "--out", str(small_dataset), "--cases", "1"]) == 2
    assert "already holds a dataset" in capsys.readouterr().err


def test_accession_number_fits_its_vr_for_long_case_ids() -> None:
    """AccessionNumber is SH (≤ 16 characters): long ids (the head cases') are hashed, and
    two ids that share their first 13 characters still get different numbers."""
    from sinusapp.synth.dicomio import _accession

    assert _accession("A0001") == "SYNA0001"
    long_a, long_b = _accession("HEAD_harvard02_5_000"), _accession("HEAD_harvard02_5_001")
    assert len(long_a) == len(long_b) == 16 and long_a != long_b
    assert long_a.startswith("SYN") and long_a == _accession("HEAD_harvard02_5_000")


def test_a_long_case_id_writes_a_conformant_accession_number(tmp_path: Path) -> None:
    from sinusapp.synth.dicomio import CaseDicomInfo, CtSeriesOptions, write_ct_series

    affine = np.array([[0, 0, 1.0, 0], [0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 0, 0, 1]])
    write_ct_series(
        hu=np.zeros((3, 8, 8), np.int16),
        affine=affine,
        out_dir=tmp_path / "ct",
        case=CaseDicomInfo(case_id="HEAD_harvard02_5_000", seed=1, sex="female", age_years=50),
        options=CtSeriesOptions(series_number=2, series_description="AX"),
    )
    files = sorted((tmp_path / "ct").glob("*.dcm"))
    assert len(files) == 3
    acc = pydicom.dcmread(files[0], stop_before_pixels=True).AccessionNumber
    assert 0 < len(acc) <= 16 and acc.startswith("SYN")
