"""Start-up imports only what the start needs (issue 15): ``sinusapp --help`` none of the
heavy libraries; importing the DICOM catalogue (the GUI's start) not pydicom; the desktop
window shown without torch, highdicom, reportlab, scipy.stats, pydicom or the generator.
Times are measured by ``benchmarks/startup.py``, never asserted here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NEVER_AT_START = (
    "torch",
    "highdicom",
    "reportlab",
    "scipy.stats",
    "sinusapp.synth",
    "pydicom",
    "SimpleITK",
)


def _imported_by(args: list[str], tmp_path: Path, **env: str) -> set[str]:
    """Modules ``python -X importtime ARGS`` imported (parsed from its stderr)."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, SINUSAPP_HOME=str(tmp_path), **env),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    mods = set()
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", line)
        if m:
            mods.add(m.group(1))
    assert "sinusapp.cli" in mods or "sinusapp" in mods, "importtime output not parsed"
    return mods


def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    mods = _imported_by(["-m", "sinusapp.cli", "--help"], tmp_path)
    heavy = {"numpy", "scipy", "PySide6", "sinusapp.model", *NEVER_AT_START}
    assert not (mods & heavy), f"`sinusapp --help` imported {sorted(mods & heavy)}"


def test_each_command_help_imports_no_heavy_library(tmp_path: Path) -> None:
    for command in ("scan", "predict", "synth", "train", "evaluate", "gui", "demo"):
        mods = _imported_by(["-m", "sinusapp.cli", command, "--help"], tmp_path)
        bad = mods & {"numpy", "PySide6", "sinusapp.model", *NEVER_AT_START}
        assert not bad, f"`sinusapp {command} --help` imported {sorted(bad)}"


def test_catalogue_import_does_not_import_pydicom() -> None:
    code = (
        "import sys\n"
        "import sinusapp.dicom, sinusapp.dicom.catalogue, sinusapp.dicom.scan\n"
        "print(','.join(m for m in ('pydicom', 'highdicom', 'sinusapp.dicom.series') "
        "if m in sys.modules))\n"
        "from sinusapp.dicom import load_volume, scan\n"  # still importable by name
        "import pydicom\n"
        "assert pydicom.config.settings.reading_validation_mode == pydicom.config.IGNORE\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert r.stdout.strip() == ""


def test_window_start_imports_nothing_it_does_not_show(tmp_path: Path) -> None:
    pytest.importorskip("PySide6")
    code = (
        "import sys\n"
        "from sinusapp.ui.app import create_main_window, ensure_app\n"
        "app = ensure_app(); w = create_main_window(); w.show(); app.processEvents()\n"
        "assert w.isVisible()\n"
        f"print(','.join(m for m in {NEVER_AT_START!r} if m in sys.modules))\n"
        "w.close()\n"
    )
    env = dict(os.environ, SINUSAPP_HOME=str(tmp_path), QT_QPA_PLATFORM="offscreen")
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=True,
    )
    assert r.stdout.strip().splitlines()[-1:] in ([], [""]), (
        f"imported at window start: {r.stdout.strip()}"
    )
