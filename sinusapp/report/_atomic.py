"""Atomic file writes shared by the report and the DICOM export (no reportlab here)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sinusapp.errors import OutputError

__all__ = ["write_bytes_atomic"]


def write_bytes_atomic(
    data: bytes, target: str | os.PathLike[str], *, what: str = "the file"
) -> Path:
    """Write ``data`` to ``target`` through a temporary file + :func:`os.replace`.

    Raises :class:`~sinusapp.errors.OutputError` naming the path; the temporary file is
    removed on failure, and an existing ``target`` is left as it was.
    """
    target = Path(target)
    if target.is_dir():
        raise OutputError(
            f"cannot save {what} as {target.name!r}: it is a folder",
            path=target,
            hint="choose a file name",
        )
    if not target.parent.is_dir():
        raise OutputError(
            f"cannot save {what}: folder {str(target.parent)!r} does not exist",
            path=target,
            hint="choose an existing folder",
        )
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(
            f"cannot save {what} as {target.name!r}: {exc.strerror or exc}",
            path=target,
            hint="choose a folder you can write to",
        ) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(
            f"cannot save {what} as {target.name!r}: {exc.strerror or exc}",
            path=target,
            hint="check the free disk space and the folder's permissions",
        ) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
