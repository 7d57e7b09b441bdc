"""DICOM export: the SEG and the Encapsulated PDF re-read, reference the source series,
carry provenance and deterministic identifiers, and the SEG mask round-trips to the CT grid."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from sinusapp.dicom.export import (
    PDF_SERIES_NUMBER,
    SEG_SERIES_NUMBER,
    export_encapsulated_pdf,
    export_seg,
)
from sinusapp.errors import InputError, OutputError
from sinusapp.pipeline import AnalysisResult
from sinusapp.report import ReportContext, render_pdf


@pytest.fixture(scope="module")
def report_pdf(result: AnalysisResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_pdf(
        ReportContext.from_result(result), tmp_path_factory.mktemp("pdf") / "report.pdf"
    )


def _assert_same_patient_and_study(ds: pydicom.Dataset, src: pydicom.Dataset) -> None:
    for kw in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "AccessionNumber",
        "StudyDate",
    ):
        assert str(getattr(ds, kw)) == str(getattr(src, kw)), kw


def test_seg_references_the_source_and_round_trips(
    result: AnalysisResult, ct_dir: Path, ct_datasets, tmp_path: Path
) -> None:
    out = export_seg(result, source_dir=ct_dir, out_path=tmp_path / "seg.dcm")
    seg = hd.seg.segread(out)
    src = ct_datasets[0]
    _assert_same_patient_and_study(seg, src)
    assert seg.Modality == "SEG" and seg.SeriesNumber == SEG_SERIES_NUMBER
    assert seg.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    referenced = {
        i.ReferencedSOPInstanceUID
        for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == {ds.SOPInstanceUID for ds in ct_datasets}
    # provenance
    assert seg.Manufacturer == "SinusApp"
    assert "SinusApp 0.1.0" in seg.SoftwareVersions
    assert "AI-generated, not for diagnostic use" in seg.SeriesDescription
    assert seg.ContentDescription == "AI-generated, not for diagnostic use"
    desc = seg.SegmentSequence[0]
    assert desc.SegmentLabel == "CRS lesion"
    algo = desc.SegmentationAlgorithmIdentificationSequence[0]
    assert algo.AlgorithmName == result.model.name
    assert algo.AlgorithmVersion == result.model.version
    assert algo.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
    # the mask, per source instance, is the CT-grid mask
    uids = list(result.volume.info.sop_instance_uids)
    arr = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1])
    np.testing.assert_array_equal(arr[..., 0] > 0, result.mask > 0)


def test_seg_uids_are_deterministic(result: AnalysisResult, ct_datasets, tmp_path: Path) -> None:
    a = pydicom.dcmread(
        export_seg(result, source_datasets=ct_datasets, out_path=tmp_path / "a.dcm")
    )
    b = pydicom.dcmread(
        export_seg(result, source_datasets=ct_datasets, out_path=tmp_path / "b.dcm")
    )
    assert a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.SOPInstanceUID == b.SOPInstanceUID
    changed = dataclasses.replace(result, mask=np.roll(result.mask, 1, axis=2))
    c = pydicom.dcmread(
        export_seg(changed, source_datasets=ct_datasets, out_path=tmp_path / "c.dcm")
    )
    assert c.SeriesInstanceUID == a.SeriesInstanceUID  # same series
    assert c.SOPInstanceUID != a.SOPInstanceUID  # other content, other instance


def test_encapsulated_pdf_references_the_source(
    result: AnalysisResult, report_pdf: Path, ct_datasets, tmp_path: Path
) -> None:
    out = export_encapsulated_pdf(
        report_pdf, result=result, out_path=tmp_path / "doc.dcm", source_datasets=ct_datasets
    )
    ds = pydicom.dcmread(out)
    _assert_same_patient_and_study(ds, ct_datasets[0])
    assert ds.SOPClassUID == pydicom.uid.EncapsulatedPDFStorage
    assert ds.Modality == "DOC" and ds.SeriesNumber == PDF_SERIES_NUMBER
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    pdf = report_pdf.read_bytes()
    assert ds.EncapsulatedDocumentLength == len(pdf)
    assert bytes(ds.EncapsulatedDocument)[: len(pdf)] == pdf
    assert {i.ReferencedSOPInstanceUID for i in ds.SourceInstanceSequence} == {
        d.SOPInstanceUID for d in ct_datasets
    }
    assert ds.Manufacturer == "SinusApp" and ds.ManufacturerModelName
    assert "AI-generated, not for diagnostic use" in ds.SeriesDescription
    assert ds.SeriesInstanceUID != ct_datasets[0].SeriesInstanceUID
    # without source datasets the identifiers come from the volume's SeriesInfo: same UIDs
    again = pydicom.dcmread(
        export_encapsulated_pdf(report_pdf, result=result, out_path=tmp_path / "doc2.dcm")
    )
    assert again.SOPInstanceUID == ds.SOPInstanceUID
    _assert_same_patient_and_study(again, ct_datasets[0])


def test_export_errors_are_clear(
    result: AnalysisResult, report_pdf: Path, ct_datasets, tmp_path: Path
) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        export_seg(result, source_datasets=ct_datasets, out_path=tmp_path / "no" / "seg.dcm")
    with pytest.raises(InputError, match="no image of the analysed series"):
        export_seg(result, source_dir=tmp_path, out_path=tmp_path / "seg.dcm")
    not_pdf = tmp_path / "x.pdf"
    not_pdf.write_bytes(b"hello")
    with pytest.raises(InputError, match="not a PDF"):
        export_encapsulated_pdf(not_pdf, result=result, out_path=tmp_path / "doc.dcm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pdf"]


def test_seg_of_a_volume_loaded_by_sinusapp(
    result: AnalysisResult, ct_dir: Path, tmp_path: Path
) -> None:
    """End to end with the DICOM loader: files → Volume → SEG → mask per source instance."""
    from sinusapp.dicom import load_volume

    volume = load_volume(ct_dir)
    loaded = dataclasses.replace(result, volume=volume)
    seg = hd.seg.segread(export_seg(loaded, source_dir=ct_dir, out_path=tmp_path / "s.dcm"))
    arr = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=list(volume.info.sop_instance_uids), segment_numbers=[1]
    )
    np.testing.assert_array_equal(arr[..., 0] > 0, result.mask > 0)


def test_seg_on_a_resampled_grid(result: AnalysisResult, ct_datasets, tmp_path: Path) -> None:
    """A volume resampled onto its own regular grid exports with that grid's geometry."""
    aff = result.volume.affine.copy()
    aff[2, 3] += 1.1  # planes between the source slices
    moved = dataclasses.replace(
        result, volume=dataclasses.replace(result.volume, affine=aff, resampled=True)
    )
    seg = hd.seg.segread(
        export_seg(moved, source_datasets=ct_datasets, out_path=tmp_path / "s.dcm")
    )
    positions = sorted(
        float(f.PlanePositionSequence[0].ImagePositionPatient[2])
        for f in seg.PerFrameFunctionalGroupsSequence
    )
    lesion_slices = np.flatnonzero(result.mask.any(axis=(1, 2)))
    expected = sorted(float((aff[:3, :3] @ [k, 0, 0] + aff[:3, 3])[2]) for k in lesion_slices)
    np.testing.assert_allclose(positions, expected, atol=1e-3)
    sheared = aff.copy()
    sheared[1, 0] = 0.4
    bad = dataclasses.replace(result, volume=dataclasses.replace(result.volume, affine=sheared))
    with pytest.raises(InputError, match="sheared"):
        export_seg(bad, source_datasets=ct_datasets, out_path=tmp_path / "bad.dcm")
