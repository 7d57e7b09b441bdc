"""Case records: what the user entered and what the analysis found, saved as they work.

One row per analysed series (keyed by SeriesInstanceUID) in its own SQLite file in the app
home (``records.sqlite``), so nothing typed is lost when the app is closed or crashes, and
reopening a study brings the clinical inputs and the last result back, with the model version
that produced it. No Qt here.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import logging
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinusapp._version import __version__

__all__ = ["SCHEMA_VERSION", "CaseRecord", "CaseRecords", "pack_mask", "records_path"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS case_record (
    series_uid       TEXT PRIMARY KEY,
    study_uid        TEXT NOT NULL DEFAULT '',
    patient_id       TEXT NOT NULL DEFAULT '',
    clinical_json    TEXT NOT NULL DEFAULT '{}',
    result_json      TEXT,
    mask_npz         BLOB,
    reference_json   TEXT,
    model_name       TEXT NOT NULL DEFAULT '',
    model_version    TEXT NOT NULL DEFAULT '',
    model_sha256     TEXT NOT NULL DEFAULT '',
    software_version TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
"""


def pack_mask(mask: np.ndarray | None) -> bytes | None:
    """Compress a mask for :meth:`CaseRecords.save_result` (slow for big masks: do it off the
    GUI thread)."""
    if mask is None:
        return None
    buf = io.BytesIO()
    np.savez_compressed(buf, mask=np.asarray(mask, dtype=np.uint8))
    return buf.getvalue()


def records_path() -> Path:
    """Path of the case-record database in the app home."""
    from sinusapp.paths import app_home

    return app_home() / "records.sqlite"


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """One saved case.

    Attributes
    ----------
    series_uid, study_uid, patient_id:
        What the record belongs to.
    clinical:
        The clinical form's raw entries (as typed; may be incomplete).
    result:
        The last analysis' ``result.json`` content, or ``None`` if not analysed yet.
    model_name, model_version, model_sha256:
        The model that produced ``result`` (empty without a result).
    software_version, created_at, updated_at:
        Provenance.
    """

    series_uid: str
    study_uid: str
    patient_id: str
    clinical: Mapping[str, Any]
    result: Mapping[str, Any] | None
    model_name: str
    model_version: str
    model_sha256: str
    software_version: str
    created_at: str
    updated_at: str
    #: the reference segmentation shown as the blue contour (``{"source": "catalogue",
    #: "series_uid": ...}`` or ``{"source": "file", "path": ...}``), or ``None``
    reference: Mapping[str, Any] | None = None


class CaseRecords:
    """The case-record store.

    Parameters
    ----------
    path:
        SQLite file; default :func:`records_path`.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else records_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            row = db.execute("SELECT version FROM schema_version").fetchone()
            # an additive column: records written before it have none (older versions of
            # the app ignore it), so the schema version stays
            cols = {r[1] for r in db.execute("PRAGMA table_info(case_record)")}
            if "reference_json" not in cols:
                db.execute("ALTER TABLE case_record ADD COLUMN reference_json TEXT")
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                log.warning(
                    "case records %s have schema %s, this version expects %s",
                    self.path,
                    row[0],
                    SCHEMA_VERSION,
                )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=5.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:  # commit on success, roll back on error
                yield db
        finally:
            db.close()

    def save_clinical(
        self,
        *,
        series_uid: str,
        clinical: Mapping[str, Any],
        study_uid: str = "",
        patient_id: str = "",
    ) -> None:
        """Save the form's raw entries for ``series_uid`` (insert or update)."""
        if not series_uid:
            raise ValueError("series_uid must not be empty")
        now = _now()
        text = json.dumps(dict(clinical), ensure_ascii=False, default=str)
        with self._connect() as db:
            db.execute(
                """INSERT INTO case_record
                   (series_uid, study_uid, patient_id, clinical_json, software_version,
                    created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(series_uid) DO UPDATE SET
                     clinical_json = excluded.clinical_json,
                     study_uid = CASE WHEN excluded.study_uid != '' THEN excluded.study_uid
                                 ELSE case_record.study_uid END,
                     patient_id = CASE WHEN excluded.patient_id != '' THEN excluded.patient_id
                                  ELSE case_record.patient_id END,
                     updated_at = excluded.updated_at""",
                (series_uid, study_uid, patient_id, text, __version__, now, now),
            )

    def save_result(
        self,
        *,
        series_uid: str,
        result: Mapping[str, Any],
        clinical: Mapping[str, Any] | None = None,
        mask: np.ndarray | None = None,
        mask_npz: bytes | None = None,
        study_uid: str = "",
        patient_id: str = "",
    ) -> None:
        """Save an analysis result (``AnalysisResult.to_json_dict()``) for ``series_uid``,
        with the lesion ``mask`` (or ``mask_npz`` = :func:`pack_mask` of it, compressed
        beforehand) so the contour comes back when the case is reopened."""
        if clinical is not None:
            self.save_clinical(
                series_uid=series_uid,
                clinical=clinical,
                study_uid=study_uid,
                patient_id=patient_id,
            )
        elif self.load(series_uid=series_uid) is None:
            self.save_clinical(
                series_uid=series_uid, clinical={}, study_uid=study_uid, patient_id=patient_id
            )
        model = result.get("model") or {}
        with self._connect() as db:
            db.execute(
                """UPDATE case_record SET result_json = ?, mask_npz = ?, model_name = ?,
                   model_version = ?, model_sha256 = ?, software_version = ?, updated_at = ?
                   WHERE series_uid = ?""",
                (
                    json.dumps(dict(result), ensure_ascii=False, default=str),
                    mask_npz if mask_npz is not None else pack_mask(mask),
                    str(model.get("name", "")),
                    str(model.get("version", "")),
                    str(model.get("sha256", "")),
                    str(result.get("software_version", __version__)),
                    _now(),
                    series_uid,
                ),
            )

    def save_reference(
        self,
        *,
        series_uid: str,
        reference: Mapping[str, Any] | None,
        study_uid: str = "",
        patient_id: str = "",
    ) -> None:
        """Remember which reference segmentation (blue contour) belongs to the case of
        ``series_uid`` (``None`` forgets it); the record is made when there is none yet."""
        if self.load(series_uid=series_uid) is None:
            self.save_clinical(
                series_uid=series_uid, clinical={}, study_uid=study_uid, patient_id=patient_id
            )
        text = None if reference is None else json.dumps(dict(reference), ensure_ascii=False)
        with self._connect() as db:
            db.execute(
                "UPDATE case_record SET reference_json = ?, updated_at = ? WHERE series_uid = ?",
                (text, _now(), series_uid),
            )

    def load(self, *, series_uid: str) -> CaseRecord | None:
        """The record of ``series_uid``, or ``None``."""
        with self._connect() as db:
            row = db.execute(
                """SELECT series_uid, study_uid, patient_id, clinical_json, result_json,
                   model_name, model_version, model_sha256, software_version, created_at,
                   updated_at, reference_json FROM case_record WHERE series_uid = ?""",
                (series_uid,),
            ).fetchone()
        if row is None:
            return None
        return CaseRecord(
            series_uid=row[0],
            study_uid=row[1],
            patient_id=row[2],
            clinical=json.loads(row[3] or "{}"),
            result=json.loads(row[4]) if row[4] else None,
            model_name=row[5],
            model_version=row[6],
            model_sha256=row[7],
            software_version=row[8],
            created_at=row[9],
            updated_at=row[10],
            reference=json.loads(row[11]) if row[11] else None,
        )

    def list_cases(self, *, limit: int = 500) -> list[CaseRecord]:
        """Saved cases, most recently changed first (for the "Saved cases" list)."""
        if limit < 1:
            raise ValueError(f"limit must be ≥ 1, got {limit}")
        with self._connect() as db:
            uids = [
                r[0]
                for r in db.execute(
                    "SELECT series_uid FROM case_record ORDER BY updated_at DESC LIMIT ?",
                    (limit,),
                ).fetchall()
            ]
        return [rec for uid in uids if (rec := self.load(series_uid=uid)) is not None]

    def load_mask(self, *, series_uid: str) -> np.ndarray | None:
        """The lesion mask saved with the last result of ``series_uid``, or ``None``."""
        with self._connect() as db:
            row = db.execute(
                "SELECT mask_npz FROM case_record WHERE series_uid = ?", (series_uid,)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        with np.load(io.BytesIO(row[0])) as data:
            return np.asarray(data["mask"], dtype=np.uint8)

    def delete(self, *, series_uid: str) -> None:
        """Forget the record of ``series_uid``."""
        with self._connect() as db:
            db.execute("DELETE FROM case_record WHERE series_uid = ?", (series_uid,))
