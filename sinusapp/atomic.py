"""Atomic file writes: a failed or interrupted save never leaves a half file over an old one.

Used for everything SinusApp writes for the user (result JSON, PDF report, DICOM exports,
nomogram files). The file gets the permissions a plain ``open()`` would give (umask), not
the private 0600 of a temporary file.

Nothing is ever destroyed by a write: a target that exists and is not a regular file
(``/dev/null``, a FIFO, a device, a folder) is refused, because :func:`os.replace` would put a
regular file in its place. :func:`check_output_paths` checks a set of outputs *before* the
work that produces them (so a bad ``--report`` does not fail after the analysis, with the
other outputs already written): no two outputs on one path, none on an input, none over an
existing file unless the caller allows it, and each one creatable (the temporary file is
created and removed again, which catches read-only folders, ``/proc`` and names too long).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from sinusapp.errors import OutputError

__all__ = [
    "check_output_paths",
    "check_target",
    "write_bytes_atomic",
    "write_text_atomic",
]

_TMP_SUFFIX = ".tmp"


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}."


def check_target(target: str | os.PathLike[str], *, what: str = "the file") -> Path:
    """Refuse a target that cannot be replaced safely; return it as a :class:`Path`.

    Raises :class:`~sinusapp.errors.OutputError` when ``target`` is empty, is an existing
    folder or any other non-regular file (device, FIFO, socket), or its folder does not exist.
    """
    if str(target).strip() == "":
        raise OutputError(
            f"no file name given for {what}", hint="give a file name, or leave the option out"
        )
    target = Path(target)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(
            f"cannot save {what} as {target.name!r}: {exc.strerror or exc}",
            path=target,
            hint="choose another file name",
        ) from exc
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(
            f"cannot save {what} as {target.name!r}: it is a folder",
            path=target,
            hint="choose a file name",
        )
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(
            f"cannot save {what} as {target.name!r}: it exists and is not a regular file "
            "(a device, pipe or socket), which saving would replace",
            path=target,
            hint="choose the name of a regular file",
        )
    if not target.parent.is_dir():
        raise OutputError(
            f"cannot save {what}: folder {str(target.parent)!r} does not exist",
            path=target,
            hint="choose an existing folder",
        )
    return target


def write_bytes_atomic(
    data: bytes, target: str | os.PathLike[str], *, what: str = "the file"
) -> Path:
    """Write ``data`` to ``target`` through a temporary file + :func:`os.replace`.

    Raises :class:`~sinusapp.errors.OutputError` naming the path; the temporary file is
    removed on failure (and on any interruption that reaches Python: Ctrl-C, or SIGTERM
    once the CLI has turned it into an exception), and an existing ``target`` is left as it
    was. A target that exists and is not a regular file is refused (see :func:`check_target`).
    """
    target = check_target(target, what=what)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=_tmp_prefix(target), suffix=_TMP_SUFFIX, dir=target.parent
        )
    except OSError as exc:
        raise OutputError(
            f"cannot save {what} as {target.name!r}: {exc.strerror or exc}",
            path=target,
            hint="choose a folder you can write to (and a shorter file name)",
        ) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
        check_target(target, what=what)  # it may have become a device / folder meanwhile
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


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def check_output_paths(
    outputs: Mapping[str, str | os.PathLike[str] | None],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    overwrite: bool = False,
    create_folders: bool = True,
) -> dict[str, Path]:
    """Check every output before the work that produces it; return ``{what: Path}``.

    Parameters
    ----------
    outputs:
        ``{what: path}`` (e.g. ``{"--json": "result.json"}``); ``None`` means "not
        requested" and is left out, an empty string is an error.
    inputs:
        Files and folders the run reads: an output may not be one of them, nor be an existing
        DICOM file inside an input folder (one of the CT slices), even with ``overwrite``.
    overwrite:
        Allow replacing an existing regular file that is not an input.
    create_folders:
        Create a missing parent folder (as the writers do) instead of refusing it.

    Raises
    ------
    OutputError
        Naming the option, the path and what to do.
    """
    checked: dict[str, Path] = {}
    input_paths = [Path(p) for p in inputs if p is not None and str(p) != ""]
    for what, raw in outputs.items():
        if raw is None:
            continue
        if str(raw).strip() == "":
            raise OutputError(
                f"{what} was given an empty file name",
                hint=f"give {what} a file name, or leave {what} out",
            )
        target = Path(raw)
        for other_what, other in checked.items():
            if _same_file(target, other):
                raise OutputError(
                    f"{what} and {other_what} name the same file, so one would replace the other",
                    path=target,
                    hint="give each output its own file name",
                )
        exists = os.path.lexists(target)
        for src in input_paths:
            if (src.exists() and _same_file(target, src)) or (
                exists and src.is_dir() and _is_under(target, src) and _is_dicom(target)
            ):
                raise OutputError(
                    f"{what} names an input of this run; writing it would destroy the input",
                    path=target,
                    hint="write the outputs to another file name or folder",
                )
        if target.parent != Path("") and not target.parent.exists() and create_folders:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(
                    f"cannot create the folder for {what}: {exc.strerror or exc}",
                    path=target.parent,
                    hint="choose a folder you can write to",
                ) from exc
        check_target(target, what=what)
        if exists and not overwrite:
            raise OutputError(
                f"{what}: the file already exists",
                path=target,
                hint="choose another name, delete the file, or pass --overwrite to replace it",
            )
        _probe_writable(target, what=what)
        checked[what] = target
    return checked


def _is_dicom(path: Path) -> bool:
    """True for a file with the DICOM preamble (``DICM`` at byte 128)."""
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return True  # unreadable: treat it as an input, never replace it
    return head[128:132] == b"DICM"


def _probe_writable(target: Path, *, what: str) -> None:
    """Create (and remove) the temporary file the writer will create, to fail early."""
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=_tmp_prefix(target), suffix=_TMP_SUFFIX, dir=target.parent
        )
    except OSError as exc:
        raise OutputError(
            f"cannot save {what} as {target.name!r}: {exc.strerror or exc}",
            path=target,
            hint="choose a folder you can write to (and a shorter file name)",
        ) from exc
    os.close(fd)
    Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
