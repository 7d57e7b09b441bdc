"""Locate the files that ship with SinusApp: ``assets/`` (demo study, icons) and ``models/``.

In a source checkout they are the repository's top-level ``assets/`` and ``models/``
folders; in an installed wheel or a PyInstaller build they are installed as the packages
``sinusapp_assets`` / ``sinusapp_models`` next to ``sinusapp``. Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["assets_dir", "models_dir"]

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _find(folder: str, package: str) -> Path:
    candidate = _REPO_ROOT / folder
    if candidate.is_dir():
        return candidate
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    raise FileNotFoundError(
        f"SinusApp's '{folder}' folder was not found next to the package ({candidate}) nor "
        f"installed as '{package}'; reinstall SinusApp."
    )


def assets_dir() -> Path:
    """The folder holding the demo study, icons and fonts."""
    return _find("assets", "sinusapp_assets")


def models_dir() -> Path:
    """The folder holding the bundled model bundle(s) and nomogram coefficients."""
    return _find("models", "sinusapp_models")
