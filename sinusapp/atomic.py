"""Atomic file writes: a failed or interrupted save never leaves a half file over an old one.

Used for everything SinusApp writes for the user (result JSON, PDF report, DICOM exports,
nomogram files). The file gets the permissions a plain ``open()`` would give (umask), not
the private 0600 of a temporary file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sinusapp.errors import OutputError

__all__ = ["write_bytes_atomic", "write_text_atomic"]


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
            os.chmod(tmp, 0o666 & ~_umask())
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


def write_text_atomic(text: str, target: str | os.PathLike[str], *, what: str = "the file") -> Path:
    """UTF-8 text version of :func:`write_bytes_atomic`."""
    return write_bytes_atomic(text.encode("utf-8"), target, what=what)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
