"""The SQLite catalogue: import, incremental re-scan, copy into the store, search, delete."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from sinusapp.dicom import volume_from_headers
from sinusapp.dicom.catalogue import SCHEMA_VERSION, Catalogue
from sinusapp.errors import InputError


def test_import_rescan_only_reads_changed_files(tmp_path: Path, series_writer) -> None:
    uid, _ = series_writer(tmp_path / "in", n=6)
    cat = Catalogue(tmp_path / "c.sqlite", store=tmp_path / "store")
    first = cat.import_path(tmp_path / "in")
    assert (first.new_files, first.unchanged_files) == (6, 0)
    assert first.series_uids == first.found_series_uids == [uid]
    again = cat.import_path(tmp_path / "in")
    assert (again.new_files, again.unchanged_files) == (0, 6)
    # nothing new, but the folder still holds its series (the GUI opens only those)
    assert again.series_uids == [] and again.found_series_uids == [uid]
    uid2, _ = series_writer(tmp_path / "in" / "more", n=3, seed=5)
    third = cat.import_path(tmp_path / "in")
    assert (third.new_files, third.unchanged_files) == (3, 6)
    assert third.series_uids == [uid2] and third.found_series_uids == sorted({uid, uid2})
    assert cat.import_path(tmp_path / "in" / "more").found_series_uids == [uid2]
    assert len(cat.series_rows()) == 2


def test_copy_into_store_survives_removal_of_the_source(tmp_path: Path, series_writer) -> None:
    uid, hu = series_writer(tmp_path / "cd", n=5)
    cat = Catalogue(tmp_path / "c.sqlite", store=tmp_path / "store")
    report = cat.import_path(tmp_path / "cd", copy=True)
    assert report.copied and report.series_uids == [uid]
    for f in (tmp_path / "cd").iterdir():
        f.unlink()  # the CD is ejected
    v = volume_from_headers(cat.headers(uid))
    np.testing.assert_array_equal(v.array, hu)
    assert cat.delete_series(uid, delete_files=True) == 5
    assert not list((tmp_path / "store").rglob("*.dcm"))
    assert cat.series_rows() == []


def test_tree_search_and_candidate_columns(tmp_path: Path, series_writer) -> None:
    series_writer(tmp_path / "a", n=25)
    cat = Catalogue(tmp_path / "c.sqlite", store=tmp_path / "store")
    cat.import_path(tmp_path / "a")
    (tmp_path / "a" / "junk.txt").write_text("not dicom")
    cat.import_path(tmp_path / "a")
    rows = cat.series_rows(search="test bone")
    assert len(rows) == 1 and rows[0]["n_frames"] == 25 and rows[0]["candidate"]["eligible"]
    assert cat.series_rows(search="nothing like this") == []
    tree = cat.tree()
    assert tree[0].studies[0].series[0].proposed
    assert any("not a DICOM file" in s.reason for s in cat.skipped())


def test_schema_version_row_and_newer_schema_refused(tmp_path: Path) -> None:
    cat = Catalogue(tmp_path / "c.sqlite", store=tmp_path / "store")
    assert cat.schema_version == SCHEMA_VERSION
    con = sqlite3.connect(tmp_path / "c.sqlite")
    with con:
        con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.close()
    with pytest.raises(InputError, match="newer SinusApp"):
        Catalogue(tmp_path / "c.sqlite")
