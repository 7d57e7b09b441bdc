"""The paths a scan records are what ``Path(p).resolve()`` gives, although the scan resolves
each folder once instead of every file (issue 15): through symbolic links to folders and to
files, ``..`` after a link, and relative paths. The catalogue and the header cache key on
these paths, so they must not change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sinusapp.dicom.headers import InstanceHeader, read_header
from sinusapp.dicom.scan import read_headers, scan


@pytest.mark.skipif(os.name == "nt", reason="symbolic links need privileges on Windows")
def test_scan_paths_equal_resolve(
    tmp_path: Path, series_writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real"
    series_writer(real / "s", n=3)
    files = sorted((real / "s").iterdir())
    (tmp_path / "dirlink").symlink_to(real)  # a link to a folder
    (tmp_path / "sublink").symlink_to(real / "s")
    (tmp_path / "filelink.dcm").symlink_to(files[0])  # a link to a file
    (real / "s" / "rel_link.dcm").symlink_to(Path("..") / "s" / files[1].name)  # relative
    monkeypatch.chdir(tmp_path)
    paths = [
        *files,
        tmp_path / "dirlink" / "s" / files[1].name,
        tmp_path / "filelink.dcm",
        real / "s" / "rel_link.dcm",
        # ``..`` after a link: resolve follows the link first (not the lexical parent)
        Path(f"{tmp_path}/sublink/../s/{files[2].name}"),
        Path("dirlink") / "s" / files[0].name,  # relative to the working folder
        Path("real/s") / files[2].name,
    ]
    got = list(read_headers(paths, workers=1))
    assert len(got) == len(paths)
    for p, h in zip(paths, got, strict=True):
        assert isinstance(h, InstanceHeader), (p, h)
        assert h.path == str(Path(p).resolve()), p
        single = read_header(p)
        assert isinstance(single, InstanceHeader) and single.path == h.path
    # the whole scan through the linked folder names the real files
    result = scan(tmp_path / "dirlink", workers=1)
    assert sorted(h.path for h in result.headers) == sorted(
        str(f.resolve()) for f in (real / "s").iterdir()
    )


def test_dangling_link_is_skipped_as_before(tmp_path: Path) -> None:
    if os.name == "nt":
        pytest.skip("symbolic links need privileges on Windows")
    (tmp_path / "gone.dcm").symlink_to(tmp_path / "nowhere.dcm")
    got = read_header(tmp_path / "gone.dcm")
    assert not isinstance(got, InstanceHeader)
    assert got.code == "missing" and "cannot open file" in got.reason
