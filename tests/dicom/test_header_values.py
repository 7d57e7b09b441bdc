"""The fast header values (issue 15: a scan no longer converts every value through pydicom)
equal pydicom's conversion: on every real file in ../shared/data/realct, on the generated
test series, and on files with deliberately odd values (padding, several values, empty
values, non-ASCII names in three character sets, malformed numbers, implicit VR, big
endian)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from _dicomgen import ct_slice_dataset
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from sinusapp.dicom import headers as headers_mod
from sinusapp.dicom.headers import read_header


def both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    fast = read_header(path)
    with monkeypatch.context() as m:
        m.setattr(headers_mod, "FAST_VALUES", False)
        slow = read_header(path)
    return fast, slow


def _base(tsyntax=ExplicitVRLittleEndian) -> Dataset:  # type: ignore[no-untyped-def]
    ds = ct_slice_dataset(
        study=generate_uid(),
        series=generate_uid(),
        frame=generate_uid(),
        instance=1,
        position=(0.0, 0.0, 1.0),
        rows=4,
        cols=4,
        patient=("ODD^VALUES", "ODD1"),
        series_number=4,
        bits_stored=12,
        transfer_syntax=tsyntax,
    )
    ds.PixelRepresentation = 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = b"\0" * 32
    return ds


def _raw(ds: Dataset, keyword: str, vr: str, value: bytes) -> None:
    """Set an element's value bytes exactly (pydicom would otherwise tidy them)."""
    from pydicom.datadict import tag_for_keyword
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    tag = tag_for_keyword(keyword)
    assert tag is not None
    if len(value) % 2:
        value += b" "
    ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


ODD: dict[str, dict[str, object]] = {
    "padded and spaced": {
        "PatientName": "  Doe^John  ",
        "SeriesDescription": " SINUS  BONE ",
        "ConvolutionKernel": ["FC30 ", " B"],
        "SliceThickness": " 0.625 ",
        "KVP": "120.",
        "SeriesNumber": " 7 ",
        "ImagePositionPatient": [" -10.5", "2e1 ", "+3.25"],
    },
    "several values and empties": {
        "ImageType": "ORIGINAL\\\\AXIAL",
        "SeriesDescription": "A\\B",
        "PatientID": "",
        "AccessionNumber": "",
        "StudyDate": "",
        "PatientSex": "",
        "ConvolutionKernel": "",
        "BodyPartExamined": "head",
    },
    "malformed numbers": {  # bytes: written as they are
        "SliceThickness": b"abc ",
        "KVP": b"1,5 ",
        "InstanceNumber": b"12.0",
        "AcquisitionNumber": b"x ",
        "GantryDetectorTilt": b"nan ",
        "PixelSpacing": b"0.5 ",
        "ImageOrientationPatient": b"1\\0\\0\\0\\1 ",
        "SeriesNumber": b"",
    },
    "latin-1 name": {"SpecificCharacterSet": "ISO_IR 100", "PatientName": "Müller^Jürgen"},
    "utf-8 name": {"SpecificCharacterSet": "ISO_IR 192", "PatientName": "Ωμέγα^Ελένη"},
    "iso 2022 japanese": {
        "SpecificCharacterSet": ["", "ISO 2022 IR 87"],
        "PatientName": "Yamada^Tarou=山田^太郎",
        "SeriesDescription": "頭部",
    },
}


@pytest.mark.parametrize("case", sorted(ODD))
@pytest.mark.parametrize(
    "tsyntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]
)
def test_odd_values_read_as_pydicom_reads_them(
    tmp_path: Path, case: str, tsyntax: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = _base(tsyntax)
    with monkeypatch.context() as m:
        m.setattr(pydicom.config.settings, "writing_validation_mode", pydicom.config.IGNORE)
        for k, v in ODD[case].items():
            if isinstance(v, bytes):
                from pydicom.datadict import dictionary_VR

                _raw(ds, k, dictionary_VR(k), v)
            else:
                setattr(ds, k, v)
        p = tmp_path / "odd.dcm"
        ds.save_as(p, enforce_file_format=True)
    fast, slow = both_ways(p, monkeypatch)
    assert repr(fast) == repr(slow)  # repr: a NaN value equals itself


def test_raw_padding_and_nulls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = _base()
    _raw(ds, "SeriesInstanceUID", "UI", b"1.2.3.4\x00")
    _raw(ds, "Modality", "CS", b"CT  ")
    _raw(ds, "StudyTime", "TM", b"101500.5 ")
    _raw(ds, "PatientName", "PN", b"Doe^Jane\x00")
    _raw(ds, "ConvolutionKernel", "SH", b"B\x0045")  # a null inside: pydicom decides
    _raw(ds, "ImageType", "CS", b"derived\\secondary ")
    p = tmp_path / "raw.dcm"
    ds.save_as(p, enforce_file_format=True)
    fast, slow = both_ways(p, monkeypatch)
    assert repr(fast) == repr(slow)  # repr: a NaN value equals itself
    assert fast.series_uid == "1.2.3.4" and fast.image_type == ("DERIVED", "SECONDARY")


def test_generated_series_read_alike(
    tmp_path: Path, series_writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    series_writer(tmp_path / "s", n=4, intercept=-1024.0, signed=False)
    for f in sorted((tmp_path / "s").iterdir()):
        fast, slow = both_ways(f, monkeypatch)
        assert repr(fast) == repr(slow)  # repr: a NaN value equals itself


@pytest.mark.realdata
def test_every_real_file_reads_alike(
    realct_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for f in realct_files:
        fast, slow = both_ways(f, monkeypatch)
        assert repr(fast) == repr(slow), f


def _save_with_nuls(ds: Dataset, path: Path, n: int) -> None:
    """Save ``ds`` with each ``~`` of its values made a NUL (pydicom's writer turns a NUL
    padding into a space); ``n``: how many there are (so that no other byte changes)."""
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    assert data.count(b"~") == n
    path.write_bytes(data.replace(b"~", b"\x00"))


def test_nul_padded_numbers_fast_and_as_pydicom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Numbers padded with NULs (as GDCM writes them) are read the fast way (issue 15) and
    equal pydicom's conversion; a NUL inside a value still goes to pydicom."""
    ds = _base()
    _raw(ds, "SeriesNumber", "IS", b"1~")
    _raw(ds, "InstanceNumber", "IS", b" 12 ~ ")
    _raw(ds, "RescaleSlope", "DS", b"1~")
    _raw(ds, "RescaleIntercept", "DS", b"-1024~")
    _raw(ds, "SliceThickness", "DS", b" 0.625~")
    _raw(ds, "PixelSpacing", "DS", b"0.5\\0.25 ~")
    _raw(ds, "ImageOrientationPatient", "DS", b"1.000000\\0\\0\\0\\1.000000\\0.000000~")
    p = tmp_path / "nul.dcm"
    _save_with_nuls(ds, p, 7)
    slow_calls: list[str] = []
    for name in ("_i_pydicom", "_f_pydicom"):
        orig = getattr(headers_mod, name)

        def spy(d, kw, _orig=orig):  # type: ignore[no-untyped-def]
            slow_calls.append(kw)
            return _orig(d, kw)

        monkeypatch.setattr(headers_mod, name, spy)
    monkeypatch.setattr(  # the one-pass table holds the conversions themselves
        headers_mod,
        "_ONE_PASS",
        tuple((*row[:5], getattr(headers_mod, row[5].__name__)) for row in headers_mod._ONE_PASS),
    )
    fast, slow = both_ways(p, monkeypatch)
    assert repr(fast) == repr(slow)
    assert isinstance(fast, headers_mod.InstanceHeader)
    assert fast.series_number == 1 and fast.instance_number == 12
    g = fast.frames[0]
    assert (g.rescale_slope, g.rescale_intercept, g.slice_thickness) == (1.0, -1024.0, 0.625)
    assert g.pixel_spacing == (0.5, 0.25) and g.orientation == (1.0, 0, 0, 0, 1.0, 0)
    # the NUL-padded values took the fast way (the spies saw only the slow read above)
    slow_calls.clear()
    headers_mod.read_header(p)
    assert slow_calls == []
    # a NUL inside a number: pydicom decides (and both ways agree)
    _raw(ds, "InstanceNumber", "IS", b"1~2 ")
    _raw(ds, "SliceThickness", "DS", b"0.6~25")
    _save_with_nuls(ds, p, 7)
    fast, slow = both_ways(p, monkeypatch)
    assert repr(fast) == repr(slow)
    slow_calls.clear()
    headers_mod.read_header(p)
    assert sorted(slow_calls) == ["InstanceNumber", "SliceThickness"]
