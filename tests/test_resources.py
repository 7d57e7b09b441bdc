"""Locating the shipped files, and a hospital's own models through SINUSAPP_MODELS."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sinusapp.errors import BundleError
from sinusapp.resources import assets_dir, models_dir


def test_bundled_files_are_found() -> None:
    assert (assets_dir() / "demo" / "clinical.json").is_file()
    assert (models_dir() / "sinus_unet" / "manifest.json").is_file()
    assert (models_dir() / "nomogram.json").is_file()


def test_hospital_models_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sinusapp.model import bundled_model_dir
    from sinusapp.nomogram import Nomogram

    own = tmp_path / "hospital_models"
    shutil.copytree(models_dir(), own)
    data = (
        (own / "nomogram.json").read_text().replace('"title": "Nomogram"', '"title": "Hospital X"')
    )
    (own / "nomogram.json").write_text(data)
    monkeypatch.setenv("SINUSAPP_MODELS", str(own))
    assert models_dir() == own
    assert bundled_model_dir() == own / "sinus_unet"
    assert Nomogram.load().title == "Hospital X"


def test_missing_override_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SINUSAPP_MODELS", str(tmp_path / "nowhere"))
    with pytest.raises(BundleError, match="SINUSAPP_MODELS"):
        models_dir()
