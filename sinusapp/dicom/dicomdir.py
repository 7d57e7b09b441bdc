"""Read a DICOMDIR (DICOM media directory), including the nested DICOMDIR → DIRFILE layout of
Philips CD exports, into the list of image files it references.

References are resolved relative to the media root (the DICOMDIR's folder), case-insensitively
because ISO 9660 CDs upper-case names. A reference to a file that is not there (a partially
copied CD) is reported as a :class:`~sinusapp.dicom.headers.SkippedFile`, never fatal.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from sinusapp.dicom.headers import MEDIA_STORAGE_DIRECTORY, SkippedFile
from sinusapp.errors import DicomReadError

log = logging.getLogger(__name__)

__all__ = ["DicomdirContents", "is_dicomdir", "read_dicomdir"]

_MAX_DEPTH = 8


@dataclass
class DicomdirContents:
    """Files referenced by a DICOMDIR tree, and the references that could not be followed."""

    root: Path
    files: list[Path] = field(default_factory=list)
    directory_files: list[Path] = field(default_factory=list)
    missing: list[SkippedFile] = field(default_factory=list)


def is_dicomdir(path: Path) -> bool:
    """True when ``path`` is a DICOM media directory file (DICOMDIR or a Philips DIRFILE)."""
    if not path.is_file():
        return False
    from sinusapp.dicom._pydicom import InvalidDicomError, pydicom

    try:
        ds = pydicom.dcmread(
            path, stop_before_pixels=True, specific_tags=["DirectoryRecordSequence"]
        )
    except (InvalidDicomError, OSError, EOFError, ValueError):
        return False
    meta = getattr(ds, "file_meta", None)
    msc = str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
    return msc == MEDIA_STORAGE_DIRECTORY


def _resolve(root: Path, parts: list[str]) -> Path | None:
    """Resolve a ReferencedFileID under ``root``, tolerating case differences."""
    candidate = root.joinpath(*parts)
    if candidate.exists():
        return candidate
    current = root
    for part in parts:
        try:
            names = {p.name.upper(): p for p in current.iterdir()}
        except OSError:
            return None
        nxt = names.get(part.upper()) or names.get(part.upper().rstrip("."))
        if nxt is None:
            return None
        current = nxt
    return current


def read_dicomdir(path: str | os.PathLike[str]) -> DicomdirContents:
    """Follow every record of a DICOMDIR (and nested DIRFILEs) to the files it references.

    Raises
    ------
    DicomReadError
        If ``path`` itself is not a readable DICOMDIR.
    """
    top = Path(path)
    from sinusapp.dicom._pydicom import InvalidDicomError, pydicom

    try:
        pydicom.dcmread(top, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError) as exc:
        raise DicomReadError(
            f"cannot read the DICOMDIR ({exc})",
            path=top,
            hint="check that the CD or folder was copied completely, or scan the folder instead",
        ) from exc
    out = DicomdirContents(root=top.parent)
    seen: set[Path] = set()
    _walk(top, out, seen, depth=0)
    return out


def _walk(dirfile: Path, out: DicomdirContents, seen: set[Path], *, depth: int) -> None:
    key = dirfile.resolve()
    if key in seen or depth > _MAX_DEPTH:
        return
    seen.add(key)
    out.directory_files.append(dirfile)
    from sinusapp.dicom._pydicom import InvalidDicomError, pydicom

    try:
        ds = pydicom.dcmread(dirfile, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError) as exc:
        out.missing.append(
            SkippedFile(str(dirfile), f"unreadable directory file ({exc})", "truncated")
        )
        return
    for record in ds.get("DirectoryRecordSequence", []):
        ref = record.get("ReferencedFileID")
        if not ref:
            continue
        parts = [str(ref)] if isinstance(ref, str) else [str(p) for p in ref]
        target = _resolve(out.root, parts) or _resolve(dirfile.parent, parts)
        rtype = str(record.get("DirectoryRecordType", "")).upper()
        if target is None:
            out.missing.append(
                SkippedFile(
                    str(out.root.joinpath(*parts)),
                    f"referenced by {dirfile.name} ({rtype} record) but missing on the media",
                    "dicomdir_missing_file",
                )
            )
            continue
        if rtype in (
            "IMAGE",
            "PRIVATE",
            "RT DOSE",
            "RT STRUCTURE SET",
            "PRESENTATION",
            "SR DOCUMENT",
            "KEY OBJECT DOC",
            "ENCAP DOC",
            "REGISTRATION",
            "RAW DATA",
            "SPECTROSCOPY",
            "HANGING PROTOCOL",
            "MEASUREMENT",
            "SURFACE",
            "WAVEFORM",
        ):
            out.files.append(target)
        elif target.name.upper() in ("DIRFILE", "DICOMDIR") or rtype in (
            "PATIENT",
            "STUDY",
            "SERIES",
        ):
            _walk(target, out, seen, depth=depth + 1)
        else:
            out.files.append(target)
