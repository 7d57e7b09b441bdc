"""The fast pixel paths (issue 15) give exactly what pydicom's ``pixel_array`` gives.

- 12 of 16 bits stored, uncompressed: read straight from the file, the unused high bits
  cleared (unsigned) or sign-extended (signed) as pydicom does;
- JPEG-LS and JPEG 2000: decoded by imagecodecs in the loading threads, with pydicom's sign
  correction; pinned on the real CTs in ../shared/data/realct (the VHF head is JPEG-LS, the
  Harvard head 12-bit JPEG-LS, the Toshiba / vendor-quirk files JPEG 2000 lossless and lossy,
  a pixel-representation mismatch) and on the synthetic-cohort writer's compressed series.

Each test also checks that the fast path was taken (pydicom never reads the pixel data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from _dicomgen import ct_slice_dataset
from pydicom.uid import generate_uid

from sinusapp.dicom import load_volume, scan
from sinusapp.dicom import series as series_mod
from sinusapp.dicom.headers import InstanceHeader, read_header


def reference_hu(files: list[Path]) -> np.ndarray:
    """HU stack by pydicom alone: ``pixel_array`` × slope + intercept, in slice order."""
    dss = [pydicom.dcmread(f) for f in files]
    dss.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    out = [
        np.clip(
            d.pixel_array.astype(np.float64) * float(d.get("RescaleSlope", 1))
            + float(d.get("RescaleIntercept", 0)),
            -32768,
            32767,
        )
        for d in dss
    ]
    return np.rint(np.stack(out)).astype(np.int16)


@pytest.fixture
def no_pydicom_pixels(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every decode through pydicom (the loader's slow path)."""
    calls: list[str] = []

    def refuse(ds: object, *, path: str) -> None:
        calls.append(path)
        raise AssertionError(f"pydicom slow path used for {path}")

    monkeypatch.setattr(series_mod, "_decode", refuse)
    return calls


def write_12bit(
    folder: Path, *, n: int = 20, signed: bool, junk_high_bits: bool, seed: int = 0
) -> list[Path]:
    """12 of 16 bits stored; ``junk_high_bits`` sets bits 12-15 (overlay / noise bits that
    real files carry) which the reader must ignore."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for k in range(n):
        if signed:
            stored = rng.integers(-2048, 2048, size=(24, 20)).astype(np.int16)
            raw = stored.view(np.uint16) & 0x0FFF
        else:
            raw = rng.integers(0, 4096, size=(24, 20)).astype(np.uint16)
        if junk_high_bits:
            raw = raw | (rng.integers(0, 16, size=raw.shape).astype(np.uint16) << 12)
        ds = ct_slice_dataset(
            study=study,
            series=series,
            frame=frame,
            instance=k + 1,
            position=(0.0, 0.0, 1.0 * k),
            rows=raw.shape[0],
            cols=raw.shape[1],
            patient=("TEST^TWELVE", "T12"),
            description="TWELVE BIT",
            bits_stored=12,
        )
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, (0 if signed else -1024)
        ds.PixelData = raw.tobytes()
        p = folder / f"im{(k * 7) % n:03d}.dcm"
        pydicom.dcmwrite(p, ds, enforce_file_format=True)
        paths.append(p)
    return paths


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("junk", [False, True])
def test_12bit_uncompressed_fast_path_equals_pydicom(
    tmp_path: Path, signed: bool, junk: bool, no_pydicom_pixels: list[str]
) -> None:
    files = write_12bit(tmp_path / "ct", signed=signed, junk_high_bits=junk)
    expected = reference_hu(files)
    v = load_volume(tmp_path / "ct")
    assert no_pydicom_pixels == []
    np.testing.assert_array_equal(v.array, expected)
    if junk:  # the junk bits would have moved values far out of the 12-bit range
        lo, hi = (-2048, 2047) if signed else (-1024, 3071)
        assert v.array.min() >= lo and v.array.max() <= hi


def test_high_bit_not_bits_stored_minus_one_goes_to_pydicom(tmp_path: Path) -> None:
    files = write_12bit(tmp_path / "ct", n=3, signed=False, junk_high_bits=False)
    ds = pydicom.dcmread(files[0])
    ds.HighBit = 15  # unusual layout: not what the fast path assumes
    ds.save_as(files[0])
    h = read_header(files[0])
    assert isinstance(h, InstanceHeader) and h.high_bit == 15
    assert series_mod._read_native(h) is None
    h_ok = read_header(files[1])
    assert isinstance(h_ok, InstanceHeader) and series_mod._read_native(h_ok) is not None


def _real_compressed_files(realct: Path) -> list[Path]:
    out = []
    for f in sorted(realct.rglob("*")):
        if not f.is_file() or f.name in ("DICOMDIR", "SOURCE.txt"):
            continue
        h = read_header(f)
        if isinstance(h, InstanceHeader) and h.transfer_syntax_uid in (
            *series_mod._JPEG_LS,
            *series_mod._JPEG_2000,
        ):
            out.append(f)
    return out


@pytest.mark.realdata
def test_compressed_fast_path_equals_pixel_array_on_real_files(realct: Path) -> None:
    """Every JPEG-LS / JPEG 2000 file of the real-CT collection (lossless, near-lossless,
    lossy, JP2 wrapped, pixel-representation mismatch): the fast decode equals pydicom."""
    files = _real_compressed_files(realct)
    # every head slice would make this slow; all single files plus a sample of the heads
    heads = [f for f in files if "vhf_" in str(f) or "harvard02" in str(f)]
    files = [f for f in files if f not in heads] + heads[::25]
    kinds = set()
    for f in files:
        h = read_header(f)
        assert isinstance(h, InstanceHeader)
        fast = series_mod._read_compressed(h)
        assert fast is not None, f"fast path refused {f}"
        ref = pydicom.dcmread(f).pixel_array
        assert fast.dtype == ref.dtype, f
        np.testing.assert_array_equal(fast[0], ref, err_msg=str(f))
        kinds.add((h.transfer_syntax_uid, h.bits_stored, h.pixel_representation))
    # the collection covers both codecs, 12- and 16-bit, signed and unsigned
    assert {k[0] for k in kinds} >= {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90"}
    assert {k[1] for k in kinds} >= {12, 16} and {k[2] for k in kinds} == {0, 1}


@pytest.mark.realdata
def test_vhf_head_jpegls_volume_equals_pydicom(realct: Path, no_pydicom_pixels: list[str]) -> None:
    folder = realct / "vhf_visible_human_female_head" / "dicom"
    files = sorted(folder.glob("*.dcm"))
    result = scan(folder)
    v = load_volume(folder, scan_result=result)
    assert no_pydicom_pixels == []
    assert v.shape == (len(files), 512, 512)
    np.testing.assert_array_equal(v.array, reference_hu(files))


@pytest.mark.realdata
def test_harvard_12bit_jpegls_volume_equals_pydicom(
    realct: Path, no_pydicom_pixels: list[str]
) -> None:
    folder = realct / "harvard02_cadaver_head_sinus_coverage" / "dicom"
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    result = scan(folder)
    entry = max(result.series, key=lambda s: s.n_frames)
    v = load_volume(folder, series_uid=entry.series_uid, scan_result=result)
    assert no_pydicom_pixels == []
    ours = {h.path for h in result.headers_of(entry.series_uid)}
    files = [f for f in files if str(f.resolve()) in ours]
    np.testing.assert_array_equal(v.array, reference_hu(files))


@pytest.mark.parametrize("compress", ["jpegls", "j2k", "none"])
def test_synth_writer_series_fast_path_equals_pydicom(
    tmp_path: Path, compress: str, no_pydicom_pixels: list[str]
) -> None:
    """The synthetic-cohort writer (12 bits stored, intercept -1024) in each compression."""
    from sinusapp.model.testing import make_sinus_phantom
    from sinusapp.synth.dicomio import CaseDicomInfo, CtSeriesOptions, write_ct_series

    vol, _ = make_sinus_phantom(shape=(20, 64, 64), spacing_mm=(1.0, 1.0, 1.0), seed=2)
    out = tmp_path / compress
    write_ct_series(
        hu=vol.array,
        affine=vol.affine,
        out_dir=out,
        case=CaseDicomInfo(case_id="F0001", seed=4),
        options=CtSeriesOptions(compress=compress, shuffle_names=True),
    )
    files = sorted(out.iterdir())
    v = load_volume(out, series_uid=scan(out).series[0].series_uid)
    assert no_pydicom_pixels == []
    np.testing.assert_array_equal(v.array, reference_hu(files))
    # and the stored 12-bit values come back as the phantom's HU (clipped to -1024..3071)
    np.testing.assert_array_equal(v.array, np.clip(vol.array, -1024, 3071))


def test_damaged_compressed_frame_falls_back_to_pydicom_error(tmp_path: Path) -> None:
    """A truncated JPEG-LS frame: the fast path refuses, pydicom reports it as before."""
    from sinusapp.errors import SinusAppError
    from sinusapp.model.testing import make_sinus_phantom
    from sinusapp.synth.dicomio import CaseDicomInfo, CtSeriesOptions, write_ct_series

    vol, _ = make_sinus_phantom(shape=(20, 48, 48), spacing_mm=(1.0, 1.0, 1.0), seed=1)
    out = tmp_path / "jls"
    write_ct_series(
        hu=vol.array,
        affine=vol.affine,
        out_dir=out,
        case=CaseDicomInfo(case_id="F0002", seed=5),
        options=CtSeriesOptions(compress="jpegls"),
    )
    victim = sorted(out.iterdir())[5]
    ds = pydicom.dcmread(victim)
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = pydicom.encaps.encapsulate([frame[: len(frame) // 3]])
    ds.save_as(victim)
    h = read_header(victim)
    assert isinstance(h, InstanceHeader) and series_mod._read_compressed(h) is None
    with pytest.raises(SinusAppError):
        load_volume(out)
