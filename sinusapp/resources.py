"""Locate the files that ship with SinusApp: ``assets/`` (demo study, icons) and ``models/``.

In a source checkout they are the repository's top-level ``assets/`` and ``models/``
folders; in an installed wheel or a PyInstaller build they are installed as the packages
``sinusapp_assets`` / ``sinusapp_models`` next to ``sinusapp``. Nothing is ever downloaded.

A hospital that trained its own model points SinusApp at it with the ``SINUSAPP_MODELS``
environment variable: a folder laid out like ``models/`` (``sinus_unet/`` with the bundle,
``nomogram.json``). The GUI, ``predict`` and ``demo`` then use it instead of the bundled one.
"""

from __future__ import annotations

import importlib.util
import os
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
    """The folder holding the model bundle(s) and nomogram coefficients in use:
    ``$SINUSAPP_MODELS`` when set, else the bundled ``models/``."""
    override = os.environ.get("SINUSAPP_MODELS")
    if override:
        path = Path(override)
        if not path.is_dir():
            from sinusapp.errors import BundleError

            raise BundleError(
                "the SINUSAPP_MODELS environment variable points to a folder that does not exist",
                path=path,
                hint="set it to the folder holding your model bundle (sinus_unet/) and "
                "nomogram.json, or unset it to use the bundled model",
            )
        return path
    return _find("models", "sinusapp_models")
