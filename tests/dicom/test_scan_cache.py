"""``scan`` / ``sinusapp scan`` / ``predict`` keep headers in the catalogue (issue 15): a second
run on an unchanged folder reads no header again; a changed, new or replaced file is re-read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sinusapp.dicom.catalogue import Catalogue
from sinusapp.dicom.scan import scan


@pytest.fixture
def header_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every header read (``dcmread`` in :func:`read_header`), by path."""
    import pydicom

    reads: list[str] = []
    real = pydicom.dcmread

    def counting(fp: object, *a: object, **k: object) -> object:
        reads.append(str(getattr(fp, "name", fp)))
        return real(fp, *a, **k)

    monkeypatch.setattr(pydicom, "dcmread", counting)
    return reads


def _summary(result) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [
        (s.series_uid, s.n_frames, s.candidate.score, s.proposed, [f.code for f in s.findings])
        for s in result.series
    ] + [(k.path, k.code) for k in result.skipped]


def test_second_scan_of_unchanged_folder_reads_no_header(
    tmp_path: Path, series_writer, header_reads: list[str]
) -> None:
    folder = tmp_path / "cd"
    series_writer(folder / "a", n=20)
    series_writer(folder / "b", n=18, seed=3)
    (folder / "notes.txt").write_text("not DICOM")
    cat = Catalogue(tmp_path / "cat.sqlite")
    first = scan(folder, cache=cat, workers=1)
    n_files = 20 + 18 + 1
    assert len(header_reads) == n_files
    header_reads.clear()
    second = scan(folder, cache=Catalogue(tmp_path / "cat.sqlite"), workers=1)
    assert header_reads == []
    assert _summary(second) == _summary(first)
    assert [h.path for h in second.headers] == [h.path for h in first.headers]
    assert second.headers == first.headers
    # without the cache the same scan reads everything again, and agrees
    uncached = scan(folder, workers=1)
    assert len(header_reads) == n_files and _summary(uncached) == _summary(first)


def test_changed_and_new_files_are_read_again(
    tmp_path: Path, series_writer, header_reads: list[str]
) -> None:
    import pydicom

    folder = tmp_path / "cd"
    series_writer(folder, n=20)
    cat = Catalogue(tmp_path / "cat.sqlite")
    scan(folder, cache=cat, workers=1)
    files = sorted(folder.glob("*.dcm"))
    # a file rewritten with a new description (size and mtime change)
    ds = pydicom.dcmread(files[3])
    ds.SeriesDescription = "CHANGED DESCRIPTION, LONGER"
    ds.save_as(files[3])
    st = files[3].stat()
    os.utime(files[3], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    # a file whose size stays but whose modification time changes
    os.utime(files[7], ns=(st.st_atime_ns, st.st_mtime_ns + 9_000_000_000))
    # a new file
    series_writer(folder / "new", n=2, seed=9)
    header_reads.clear()
    result = scan(folder, cache=cat, workers=1)
    read = sorted(Path(p).name for p in header_reads)
    assert read == sorted([files[3].name, files[7].name, "IM0000.dcm", "IM0001.dcm"])
    by_path = {Path(h.path).name: h for h in result.headers if Path(h.path).parent == folder}
    assert by_path[files[3].name].series_description == "CHANGED DESCRIPTION, LONGER"
    # a deleted file is simply gone from the result
    files[5].unlink()
    header_reads.clear()
    result = scan(folder, cache=cat, workers=1)
    assert header_reads == []
    assert files[5].name not in {Path(h.path).name for h in result.headers}


def test_old_header_format_is_read_again(
    tmp_path: Path, series_writer, header_reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sinusapp.dicom import catalogue as cat_mod

    series_writer(tmp_path / "cd", n=16)
    cat = Catalogue(tmp_path / "cat.sqlite")
    with monkeypatch.context() as m:
        m.setattr(cat_mod, "HEADER_FORMAT", 1)  # rows written by an older version
        scan(tmp_path / "cd", cache=cat, workers=1)
    header_reads.clear()
    scan(tmp_path / "cd", cache=cat, workers=1)
    assert len(header_reads) == 16
    header_reads.clear()
    scan(tmp_path / "cd", cache=cat, workers=1)  # now in the current format
    assert header_reads == []


def test_broken_cache_is_bypassed(tmp_path: Path, series_writer) -> None:
    import sqlite3

    class Broken:
        def cached_headers(self, stats):  # type: ignore[no-untyped-def]
            raise sqlite3.OperationalError("database is locked")

        def remember_headers(self, items):  # type: ignore[no-untyped-def]
            raise sqlite3.OperationalError("database is locked")

    series_writer(tmp_path / "cd", n=16)
    result = scan(tmp_path / "cd", cache=Broken(), workers=1)
    assert sum(s.n_instances for s in result.series) == 16


def test_sinusapp_scan_twice_reads_no_header_the_second_time(
    tmp_path: Path, series_writer, header_reads: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from sinusapp.cli import main

    series_writer(tmp_path / "cd", n=20)
    assert main(["scan", str(tmp_path / "cd")]) == 0
    first = capsys.readouterr().out
    assert len(header_reads) == 20
    header_reads.clear()
    assert main(["scan", str(tmp_path / "cd")]) == 0
    assert header_reads == []
    assert capsys.readouterr().out == first
    assert main(["scan", "--reread", str(tmp_path / "cd")]) == 0
    assert len(header_reads) == 20


def test_predict_scans_through_the_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_headless hands the workstation catalogue to scan (so a second predict on the same
    disc reads no header); checked at the call, the analysis itself is tested elsewhere."""
    import sinusapp.dicom
    from sinusapp.headless import run_headless

    seen: list[object] = []

    class StopScanError(Exception):
        pass

    def fake_scan(path: object, **kw: object) -> None:
        seen.append(kw.get("cache"))
        raise StopScanError

    monkeypatch.setattr(sinusapp.dicom, "scan", fake_scan)

    class NoPredictor:
        model_info = None

    with pytest.raises(StopScanError):
        run_headless(
            tmp_path,
            {"asthma": "no", "allergic_rhinitis": "no", "eosinophils": "100"},
            predictor=NoPredictor(),  # type: ignore[arg-type]
        )
    assert len(seen) == 1 and isinstance(seen[0], Catalogue)
