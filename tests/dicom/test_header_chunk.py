"""A header parsed from the first bytes in memory (issue 15: a quarter less CPU than from
the file object) is the header pydicom reads from the file, whatever the size of that
first read: a whole file, the Pixel Data tag inside it, a header that runs past it, a
truncated or non-DICOM file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest

from sinusapp.dicom import headers as headers_mod
from sinusapp.dicom.headers import InstanceHeader, read_header

#: the sizes of the first read tried: past the pixel tag of small files, cutting headers
#: short, and the default
CHUNKS = (16, 200, 700, 1024, 4096, headers_mod._HEAD_CHUNK)


def _from_file(fh: Any, p: str, pyd: Any) -> tuple[Any, int]:
    """The read before issue 15's change: pydicom reads from the file object."""
    ds = pyd.dcmread(fh, stop_before_pixels=True)
    return ds, fh.tell()


def _all_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(headers_mod, "_parse_header", _from_file)
        want = repr(read_header(path))
    for chunk in CHUNKS:
        with monkeypatch.context() as m:
            m.setattr(headers_mod, "_HEAD_CHUNK", chunk)
            assert repr(read_header(path)) == want, (path, chunk)


def test_generated_and_damaged_files_read_alike(
    tmp_path: Path, series_writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    series_writer(tmp_path / "s", n=2, intercept=-1024.0, signed=True)
    files = sorted((tmp_path / "s").iterdir())
    data = files[0].read_bytes()
    ds = pydicom.dcmread(files[0])
    assert len(data) > 1024  # the small chunks cut this file short
    for n in (100, 400, 900, len(data) - 20):  # truncated: in the meta, the header, pixels
        (tmp_path / f"cut{n}.dcm").write_bytes(data[:n])
    (tmp_path / "text.dcm").write_bytes(b"not a DICOM file at all\n" * 100)
    # a private value holding the Pixel Data tag's bytes before the real header ends
    ds.add_new(0x00091010, "LO", "PRIVATE")
    ds.add_new(0x00091011, "OB", b"\xe0\x7f\x10\x00" * 64)
    ds.save_as(tmp_path / "false_tag.dcm", enforce_file_format=True)
    for f in [*files, *sorted(tmp_path.glob("*.dcm"))]:
        _all_ways(f, monkeypatch)
    h = read_header(tmp_path / "false_tag.dcm")
    assert isinstance(h, InstanceHeader) and h.pixel_offset > 0


@pytest.mark.realdata
def test_every_real_file_reads_alike(
    realct_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for f in realct_files:
        _all_ways(f, monkeypatch)
