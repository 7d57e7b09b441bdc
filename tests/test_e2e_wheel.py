"""End to end as a new user: build the wheel, install it into a fresh venv, run the headless
demo from outside the source tree, and check result.json and report.pdf.

The fresh venv gets SinusApp only from the wheel (so the demo study, the model bundle and the
nomogram must be inside it); its third-party dependencies are borrowed from the test
environment through a .pth file, so the test needs no network and no second torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(cmd)}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def test_wheel_installs_and_runs_the_headless_demo(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(REPO),
        ]
    )
    (wheel,) = wheels.glob("sinusapp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "sinusapp_models/sinus_unet/weights.safetensors",
        "sinusapp_models/sinus_unet/manifest.json",
        "sinusapp_models/nomogram.json",
        "sinusapp_assets/demo/clinical.json",
        "sinusapp/cli/__init__.py",
    ):
        assert required in names, f"{required} missing from {wheel.name}"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)]
    )
    # third-party packages from this environment (plain paths: its .pth hooks, such as the
    # editable install of the checkout, are not run)
    site = Path(
        _run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    (site / "_borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    probe = (
        "import sinusapp, sinusapp.resources as r; print(sinusapp.__file__); print(r.models_dir())"
    )
    where = _run(
        [str(py), "-c", probe],
        cwd=tmp_path,
    ).stdout.splitlines()
    assert str(REPO) not in where[0] and str(venv) in where[0], where
    assert str(venv) in where[1], where

    out = tmp_path / "demo"
    env = {**os.environ, "SINUSAPP_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}
    exe = venv / ("Scripts/sinusapp.exe" if os.name == "nt" else "bin/sinusapp")
    r = _run(
        [str(exe), "demo", "--headless", "--out", str(out), "--device", "cpu"],
        cwd=tmp_path,
        env=env,
    )
    assert "Probability of recurrence" in r.stdout

    result = json.loads((out / "result.json").read_text())
    manifest = json.loads((REPO / "models" / "sinus_unet" / "manifest.json").read_text())
    assert result["model"]["sha256"] == manifest["weights"]["sha256"]
    assert result["model"]["trained_on_synthetic"] is True
    assert (
        0.0
        <= result["probability_ci95"][0]
        <= result["probability"]
        <= result["probability_ci95"][1]
        <= 1.0
    )
    assert result["lesion_volume_ml"] > 1.0
    assert result["series"]["slices"] > 50
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and len(pdf) > 20_000

    r = subprocess.run(
        [
            str(exe),
            "predict",
            str(tmp_path / "nothing-here"),
            "--asthma",
            "yes",
            "--allergic-rhinitis",
            "no",
            "--eosinophils",
            "300",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2 and "does not exist" in r.stderr
