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


def app_home() -> Path:
    """Return (and create) the per-user SinusApp folder."""
    env = os.environ.get("SINUSAPP_HOME")
    home = Path(env) if env else Path(platformdirs.user_data_dir(_APP, appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
    return home


def catalogue_path() -> Path:
    """Path of the SQLite catalogue database."""
    return app_home() / "catalogue.sqlite"


def store_dir() -> Path:
    """Folder into which DICOM from removable media is copied."""
    d = app_home() / "store"
    d.mkdir(parents=True, exist_ok=True)
    return d


def log_path() -> Path:
    """Path of the application log file."""
    d = app_home() / "logs"
    d.mkdir(parents=True, exist_ok=True)
    return d / "sinusapp.log"
