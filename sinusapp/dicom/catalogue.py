"""The local DICOM catalogue: a small SQLite index of patients → studies → series → instances.

Like 3D Slicer's DICOM database it stores headers only (paths to the files), carries a schema
version row that is checked (and migrated) on open, and re-scanning a folder only reads files
that are new or whose size / modification time changed. Importing from removable media (a CD,
a USB stick) copies the files into the app's store so the study stays available after the
media is ejected; a local folder is indexed in place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sinusapp.dicom.headers import HEADER_FORMAT, FrameGeometry, InstanceHeader, SkippedFile
from sinusapp.dicom.scan import PatientEntry, ScanResult, build_tree, collect_files, read_headers
from sinusapp.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "SCHEMA_VERSION",
    "Catalogue",
    "ImportReport",
    "is_removable_media",
    "open_header_cache",
]

#: The schema version row. The ``header_cache`` table (issue 15) is an addition that older
#: versions ignore, so it did not need a new version.
SCHEMA_VERSION = 1
#: Most rows kept in ``header_cache`` (the oldest written go first); ~1 kB each.
HEADER_CACHE_MAX_ROWS = 200_000
#: Skip codes that come from ``stat`` / the folder walk, not from reading the file: never cached.
_UNCACHED_SKIP_CODES = {"missing", "not_regular"}
_SQL_CHUNK = 500
ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patients (
    patient_key TEXT PRIMARY KEY, patient_id TEXT, patient_name TEXT, birth_date TEXT, sex TEXT);
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY, patient_key TEXT NOT NULL REFERENCES patients(patient_key)
    ON DELETE CASCADE, study_date TEXT, study_time TEXT, description TEXT, accession_number TEXT);
CREATE TABLE IF NOT EXISTS series (
    series_uid TEXT PRIMARY KEY, study_uid TEXT NOT NULL REFERENCES studies(study_uid)
    ON DELETE CASCADE, series_number INTEGER, description TEXT, modality TEXT, kind TEXT,
    n_instances INTEGER, n_frames INTEGER, slice_thickness_mm REAL, convolution_kernel TEXT,
    image_type TEXT, body_part TEXT, manufacturer TEXT, candidate_json TEXT,
    findings_json TEXT, proposed INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS instances (
    path TEXT PRIMARY KEY, series_uid TEXT NOT NULL REFERENCES series(series_uid)
    ON DELETE CASCADE, sop_instance_uid TEXT, size INTEGER, mtime REAL, header_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS skipped (
    path TEXT PRIMARY KEY, reason TEXT, code TEXT, size INTEGER, mtime REAL);
CREATE TABLE IF NOT EXISTS header_cache (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime REAL NOT NULL, format INTEGER NOT NULL,
    header_json TEXT, skip_reason TEXT, skip_code TEXT, written REAL NOT NULL);
CREATE INDEX IF NOT EXISTS instances_series ON instances(series_uid);
CREATE INDEX IF NOT EXISTS series_study ON series(study_uid);
"""


def is_removable_media(path: Path) -> bool:
    """Best-effort: is ``path`` on a CD / DVD / USB stick (to be copied, not linked)?"""
    p = str(path.resolve())
    if os.name == "nt":
        import ctypes

        drive = os.path.splitdrive(p)[0] + "\\"
        try:
            kind = ctypes.windll.kernel32.GetDriveTypeW(drive)  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            return False
        return kind in (2, 5)  # DRIVE_REMOVABLE, DRIVE_CDROM
    return p.startswith(("/media/", "/run/media/", "/mnt/cdrom", "/Volumes/", "/cdrom"))


@dataclass
class ImportReport:
    """What one import did."""

    root: str
    source: str
    copied: bool
    new_files: int = 0
    unchanged_files: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    series_uids: list[str] = field(default_factory=list)
    #: every series with a file under the imported path, new or catalogued before (a folder
    #: dropped a second time has no new series, but its series are still the ones it holds)
    found_series_uids: list[str] = field(default_factory=list)
    cancelled: bool = False


def _header_to_json(h: InstanceHeader) -> str:
    d = asdict(h)
    return json.dumps(d)


def _header_from_json(text: str) -> InstanceHeader:
    d = json.loads(text)
    d["image_type"] = tuple(d["image_type"])
    d["frames"] = tuple(
        FrameGeometry(
            position=tuple(g["position"]) if g["position"] else None,
            orientation=tuple(g["orientation"]) if g["orientation"] else None,
            pixel_spacing=tuple(g["pixel_spacing"]) if g["pixel_spacing"] else None,
            slice_thickness=g["slice_thickness"],
            rescale_slope=g["rescale_slope"],
            rescale_intercept=g["rescale_intercept"],
        )
        for g in d["frames"]
    )
    return InstanceHeader(**d)


class Catalogue:
    """The workstation's DICOM catalogue (one SQLite file).

    Parameters
    ----------
    path:
        Database file; default :func:`sinusapp.paths.catalogue_path`.
    store:
        Folder into which removable-media imports are copied; default
        :func:`sinusapp.paths.store_dir`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        store: str | os.PathLike[str] | None = None,
    ) -> None:
        from sinusapp import paths

        self.path = Path(path) if path is not None else paths.catalogue_path()
        self.store = Path(store) if store is not None else None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open_and_migrate()

    # -- schema --------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA journal_mode = WAL")
        return con

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            with con:
                yield con
        finally:
            con.close()

    def _open_and_migrate(self) -> None:
        with self._tx() as con:
            con.executescript(_SCHEMA)
            row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                return
            version = int(row[0])
            if version > SCHEMA_VERSION:
                raise InputError(
                    f"the catalogue was written by a newer SinusApp (schema {version}, this "
                    f"version reads up to {SCHEMA_VERSION})",
                    path=self.path,
                    hint="update SinusApp, or set SINUSAPP_HOME to use a separate catalogue",
                )
            # Future migrations go here: `if version < 2: ...; version = 2`.
            con.execute(
                "UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),)
            )

    @property
    def schema_version(self) -> int:
        with self._tx() as con:
            return int(
                con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
            )

    # -- import --------------------------------------------------------------------------
    def _store_dir(self) -> Path:
        if self.store is None:
            from sinusapp import paths

            self.store = paths.store_dir()
        self.store.mkdir(parents=True, exist_ok=True)
        return self.store

    def import_path(
        self,
        path: str | os.PathLike[str],
        *,
        copy: bool | None = None,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> ImportReport:
        """Index (and, from removable media, copy) everything under ``path``.

        Only new or changed files (by size and modification time) have their headers read.
        ``copy=None`` copies from removable media and indexes local folders in place.
        """
        root = Path(path)
        source, files, skipped = collect_files(root)
        do_copy = is_removable_media(root) if copy is None else copy
        report = ImportReport(root=str(root), source=source, copied=do_copy, skipped=list(skipped))
        known = self._known_files()
        todo: list[Path] = []
        unchanged: list[str] = []
        for f in files:
            try:
                st = f.stat()
            except OSError:
                report.skipped.append(
                    SkippedFile(str(f), "file disappeared during import", "missing")
                )
                continue
            key = str(f.resolve())
            if known.get(key) == (st.st_size, st.st_mtime) and not do_copy:
                report.unchanged_files += 1
                unchanged.append(key)
            else:
                todo.append(f)
        headers: list[InstanceHeader] = []
        for i, item in enumerate(read_headers(todo, progress=progress)):
            if should_cancel is not None and i % 32 == 0 and should_cancel():
                report.cancelled = True
                return report
            if isinstance(item, SkippedFile):
                report.skipped.append(item)
            else:
                headers.append(item)
        if do_copy and headers:
            headers = self._copy_into_store(headers, progress=progress, should_cancel=should_cancel)
            if should_cancel is not None and should_cancel():
                report.cancelled = True
                return report
        self._add(headers, report.skipped)
        report.new_files = len(headers)
        report.series_uids = sorted({h.series_uid for h in headers})
        report.found_series_uids = sorted(
            set(report.series_uids) | self._series_of_paths(unchanged)
        )
        self._refresh_series({h.series_uid for h in headers})
        return report

    def _series_of_paths(self, paths: list[str]) -> set[str]:
        """The series that the catalogued files ``paths`` (resolved) belong to."""
        out: set[str] = set()
        with self._tx() as con:
            for i in range(0, len(paths), _SQL_CHUNK):
                chunk = paths[i : i + _SQL_CHUNK]
                rows = con.execute(
                    "SELECT DISTINCT series_uid FROM instances WHERE path IN "
                    f"({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                out.update(r[0] for r in rows)
        return out

    def _copy_into_store(
        self,
        headers: list[InstanceHeader],
        *,
        progress: ProgressFn | None,
        should_cancel: CancelFn | None,
    ) -> list[InstanceHeader]:
        from dataclasses import replace

        store = self._store_dir()
        out = []
        for i, h in enumerate(headers):
            if should_cancel is not None and should_cancel():
                break
            sub = (
                store
                / hashlib.sha1(h.study_uid.encode()).hexdigest()[:12]
                / hashlib.sha1(h.series_uid.encode()).hexdigest()[:12]
            )
            sub.mkdir(parents=True, exist_ok=True)
            dest = sub / (hashlib.sha1(h.sop_instance_uid.encode()).hexdigest()[:20] + ".dcm")
            if not dest.exists():
                tmp = dest.with_suffix(".part")
                shutil.copyfile(h.path, tmp)
                os.replace(tmp, dest)
            st = dest.stat()
            out.append(replace(h, path=str(dest.resolve()), size=st.st_size, mtime=st.st_mtime))
            if progress is not None and i % 16 == 0:
                progress((i + 1) / len(headers), "copying into the local store")
        return out

    def _known_files(self) -> dict[str, tuple[int, float]]:
        with self._tx() as con:
            rows = con.execute(
                "SELECT path, size, mtime FROM instances UNION ALL "
                "SELECT path, size, mtime FROM skipped"
            ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def _add(self, headers: list[InstanceHeader], skipped: list[SkippedFile]) -> None:
        with self._tx() as con:
            for h in headers:
                pkey = f"{h.patient_id}\x1f{h.patient_name}"
                # Upserts, never INSERT OR REPLACE: a REPLACE deletes the row first, and the
                # ON DELETE CASCADE would then drop every study / series / instance under it.
                con.execute(
                    "INSERT INTO patients VALUES (?,?,?,?,?) ON CONFLICT(patient_key) DO "
                    "UPDATE SET birth_date=excluded.birth_date, sex=excluded.sex",
                    (pkey, h.patient_id, h.patient_name, h.patient_birth_date, h.patient_sex),
                )
                con.execute(
                    "INSERT OR IGNORE INTO studies VALUES (?,?,?,?,?,?)",
                    (
                        h.study_uid,
                        pkey,
                        h.study_date,
                        h.study_time,
                        h.study_description,
                        h.accession_number,
                    ),
                )
                con.execute(
                    "INSERT OR IGNORE INTO series (series_uid, study_uid, series_number,"
                    " description,"
                    " modality) VALUES (?,?,?,?,?)",
                    (h.series_uid, h.study_uid, h.series_number, h.series_description, h.modality),
                )
                con.execute(
                    "INSERT INTO instances VALUES (?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET "
                    "series_uid=excluded.series_uid, sop_instance_uid=excluded.sop_instance_uid,"
                    " size=excluded.size, mtime=excluded.mtime, header_json=excluded.header_json",
                    (h.path, h.series_uid, h.sop_instance_uid, h.size, h.mtime, _header_to_json(h)),
                )
            for s in skipped:
                try:
                    st = os.stat(s.path)
                    size, mtime = st.st_size, st.st_mtime
                except OSError:
                    size, mtime = -1, -1.0
                con.execute(
                    "INSERT OR REPLACE INTO skipped VALUES (?,?,?,?,?)",
                    (s.path, s.reason, s.code, size, mtime),
                )

    def _refresh_series(self, series_uids: set[str]) -> None:
        """Recompute the summary columns, candidate and findings of the given series."""
        if not series_uids:
            return
        for uid in series_uids:
            headers = self.headers(uid)
            if not headers:
                continue
            tree = build_tree(headers)
            entry = tree[0].studies[0].series[0]
            with self._tx() as con:
                con.execute(
                    "UPDATE series SET series_number=?, description=?, modality=?, kind=?,"
                    " n_instances=?, n_frames=?, slice_thickness_mm=?, convolution_kernel=?,"
                    " image_type=?, body_part=?, manufacturer=?, candidate_json=?, findings_json=?"
                    " WHERE series_uid=?",
                    (
                        entry.series_number,
                        entry.description,
                        entry.modality,
                        entry.kind,
                        entry.n_instances,
                        entry.n_frames,
                        entry.slice_thickness_mm,
                        entry.convolution_kernel,
                        "\\".join(entry.image_type),
                        entry.body_part,
                        entry.manufacturer,
                        json.dumps(entry.candidate.to_dict()),
                        json.dumps([f.to_dict() for f in entry.findings]),
                        uid,
                    ),
                )

    # -- header cache (scan / predict) ---------------------------------------------------
    def cached_headers(
        self, stats: dict[str, tuple[int, float]]
    ) -> dict[str, InstanceHeader | SkippedFile]:
        """Headers read earlier of the files in ``stats`` (path → (size, mtime)) that are
        unchanged: same size, same modification time, same header format. A file whose
        entry is missing or stale is simply absent from the answer (read it again)."""
        out: dict[str, InstanceHeader | SkippedFile] = {}
        paths = list(stats)
        with self._tx() as con:
            for i in range(0, len(paths), _SQL_CHUNK):
                chunk = paths[i : i + _SQL_CHUNK]
                rows = con.execute(
                    "SELECT path, size, mtime, header_json, skip_reason, skip_code FROM "
                    f"header_cache WHERE format=? AND path IN ({','.join('?' * len(chunk))})",
                    (HEADER_FORMAT, *chunk),
                ).fetchall()
                for path, size, mtime, header_json, reason, code in rows:
                    if stats[path] != (size, mtime):
                        continue
                    if header_json is not None:
                        out[path] = _header_from_json(header_json)
                    else:
                        out[path] = SkippedFile(path, reason or "", code or "unreadable")
        return out

    def remember_headers(
        self, items: list[tuple[str, int, float, InstanceHeader | SkippedFile]]
    ) -> None:
        """Store freshly read headers (path, size, mtime, header or skipped file) for the next
        scan of the same files; keeps at most :data:`HEADER_CACHE_MAX_ROWS` rows."""
        import time

        rows = [
            (
                path,
                size,
                mtime,
                HEADER_FORMAT,
                _header_to_json(item) if isinstance(item, InstanceHeader) else None,
                item.reason if isinstance(item, SkippedFile) else None,
                item.code if isinstance(item, SkippedFile) else None,
                time.time(),
            )
            for path, size, mtime, item in items
            if not (isinstance(item, SkippedFile) and item.code in _UNCACHED_SKIP_CODES)
        ]
        if not rows:
            return
        with self._tx() as con:
            con.executemany("INSERT OR REPLACE INTO header_cache VALUES (?,?,?,?,?,?,?,?)", rows)
            (n,) = con.execute("SELECT count(*) FROM header_cache").fetchone()
            if n > HEADER_CACHE_MAX_ROWS:
                con.execute(
                    "DELETE FROM header_cache WHERE path IN (SELECT path FROM header_cache "
                    "ORDER BY written LIMIT ?)",
                    (n - HEADER_CACHE_MAX_ROWS,),
                )

    # -- queries -------------------------------------------------------------------------
    def headers(self, series_uid: str) -> list[InstanceHeader]:
        """Headers of every instance of a series (for :func:`volume_from_headers`)."""
        with self._tx() as con:
            rows = con.execute(
                "SELECT header_json FROM instances WHERE series_uid=? ORDER BY path", (series_uid,)
            ).fetchall()
        return [_header_from_json(r[0]) for r in rows]

    def tree(self) -> list[PatientEntry]:
        """The whole catalogue as patients → studies → series (ranked, one proposal per study)."""
        with self._tx() as con:
            rows = con.execute("SELECT header_json FROM instances").fetchall()
        headers = [_header_from_json(r[0]) for r in rows]
        patients = build_tree(headers)
        # In a catalogue, propose the best series of every study (not one overall).
        for p in patients:
            for st in p.studies:
                for s in st.series:
                    s.proposed = False
                eligible = [s for s in st.series if s.candidate.eligible]
                if eligible:
                    max(eligible, key=lambda s: s.candidate.score).proposed = True
        return patients

    def as_scan_result(self) -> ScanResult:
        """The catalogue in the same shape as :func:`sinusapp.dicom.scan` returns."""
        with self._tx() as con:
            rows = con.execute("SELECT header_json FROM instances").fetchall()
            sk = con.execute("SELECT path, reason, code FROM skipped").fetchall()
        headers = [_header_from_json(r[0]) for r in rows]
        return ScanResult(
            root=str(self.path),
            source="catalogue",
            patients=build_tree(headers),
            skipped=[SkippedFile(*r) for r in sk],
            headers=headers,
        )

    def series_rows(self, *, search: str = "") -> list[dict[str, Any]]:
        """Flat rows for a table view, filtered by a case-insensitive search over the
        patient name / ID, study description / accession and series description."""
        q = (
            "SELECT p.patient_name, p.patient_id, p.birth_date, st.study_date, st.description,"
            " st.accession_number, se.series_uid, se.series_number, se.description, se.modality,"
            " se.n_frames, se.slice_thickness_mm, se.convolution_kernel, se.kind, se.candidate_json"
            " FROM series se JOIN studies st USING(study_uid) JOIN patients p USING(patient_key)"
        )
        args: list[str] = []
        if search:
            like = f"%{search.lower()}%"
            q += (
                " WHERE lower(p.patient_name) LIKE ? OR lower(p.patient_id) LIKE ? OR"
                " lower(st.description) LIKE ? OR lower(st.accession_number) LIKE ? OR"
                " lower(se.description) LIKE ?"
            )
            args = [like] * 5
        q += " ORDER BY p.patient_name, st.study_date, se.series_number"
        keys = [
            "patient_name",
            "patient_id",
            "birth_date",
            "study_date",
            "study_description",
            "accession_number",
            "series_uid",
            "series_number",
            "series_description",
            "modality",
            "n_frames",
            "slice_thickness_mm",
            "convolution_kernel",
            "kind",
            "candidate",
        ]
        with self._tx() as con:
            rows = con.execute(q, args).fetchall()
        out = []
        for r in rows:
            d = dict(zip(keys, r, strict=True))
            d["candidate"] = json.loads(d["candidate"]) if d["candidate"] else None
            out.append(d)
        return out

    def skipped(self) -> list[SkippedFile]:
        with self._tx() as con:
            return [SkippedFile(*r) for r in con.execute("SELECT path, reason, code FROM skipped")]

    def delete_series(self, series_uid: str, *, delete_files: bool = False) -> int:
        """Remove a series from the catalogue (and its copied files from the store when asked).

        Files outside the app's store are never deleted. Returns the number of instances removed.
        """
        headers = self.headers(series_uid)
        with self._tx() as con:
            con.execute("DELETE FROM instances WHERE series_uid=?", (series_uid,))
            con.execute("DELETE FROM series WHERE series_uid=?", (series_uid,))
            con.execute("DELETE FROM studies WHERE study_uid NOT IN (SELECT study_uid FROM series)")
            con.execute(
                "DELETE FROM patients WHERE patient_key NOT IN (SELECT patient_key FROM studies)"
            )
        if delete_files and self.store is not None:
            store = self.store.resolve()
            for h in headers:
                p = Path(h.path)
                if store in p.resolve().parents:
                    p.unlink(missing_ok=True)
        return len(headers)

    def delete_study(self, study_uid: str, *, delete_files: bool = False) -> int:
        with self._tx() as con:
            uids = [
                r[0]
                for r in con.execute(
                    "SELECT series_uid FROM series WHERE study_uid=?", (study_uid,)
                )
            ]
        return sum(self.delete_series(u, delete_files=delete_files) for u in uids)


def open_header_cache() -> Catalogue | None:
    """The workstation catalogue as a header cache for ``scan`` / ``predict``, or None (with a
    logged warning: the scan then reads every header, as before) when it cannot be opened,
    e.g. a read-only ``SINUSAPP_HOME`` or a catalogue written by a newer SinusApp."""
    try:
        return Catalogue()
    except (sqlite3.Error, OSError, InputError) as exc:
        log.warning("header cache unavailable (%s); reading every header", exc)
        return None
