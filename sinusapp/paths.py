"""Where SinusApp keeps its files on the workstation.

Everything lives under one per-user folder (platformdirs' user data dir), which the
``SINUSAPP_HOME`` environment variable overrides (tests, portable installs, IT policies):

- ``catalogue.sqlite`` — the local DICOM catalogue
- ``records.sqlite`` — case records (clinical inputs and results, see :mod:`sinusapp.records`)
- ``store/`` — DICOM files copied from removable media
- ``logs/sinusapp.log`` — the log file
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["app_home", "catalogue_path", "log_path", "store_dir"]

_APP = "SinusApp"


def _make_dir(d: Path) -> Path:
    """Create ``d``; an unusable folder is an :class:`~sinusapp.errors.InputError`."""
    from sinusapp.errors import InputError

    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"the SinusApp folder {str(d)!r} cannot be created: {exc.strerror or exc}",
            path=d,
            hint="set SINUSAPP_HOME to a folder you can write to (or unset it)",
        ) from exc
    if not d.is_dir():
        raise InputError(
            f"the SinusApp folder {str(d)!r} is not a folder",
            path=d,
            hint="set SINUSAPP_HOME to a folder you can write to (or unset it)",
        )
    return d


def app_home() -> Path:
    """Return (and create) the per-user SinusApp folder.

    Raises :class:`~sinusapp.errors.InputError` when it (``SINUSAPP_HOME``) is a file or
    cannot be created.
    """
    env = os.environ.get("SINUSAPP_HOME")
    home = Path(env) if env else Path(platformdirs.user_data_dir(_APP, appauthor=False))
    return _make_dir(home)


def catalogue_path() -> Path:
    """Path of the SQLite catalogue database."""
    return app_home() / "catalogue.sqlite"


def store_dir() -> Path:
    """Folder into which DICOM from removable media is copied."""
    return _make_dir(app_home() / "store")


def log_path() -> Path:
    """Path of the application log file."""
    return _make_dir(app_home() / "logs") / "sinusapp.log"
