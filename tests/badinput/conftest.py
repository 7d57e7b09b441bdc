"""The bad-input corpus: each bad input is made at test time from one small synthetic CT.

The master series is a sinus phantom (:func:`sinusapp.model.testing.make_sinus_phantom`,
40 slices of 64 × 64, 2.5 × 3.2 × 3.2 mm) written once per session with
:func:`_dicomgen.write_volume_series`; each test copies it and breaks one thing (a header, a
file, an output path). Commands run in-process through :func:`sinusapp.cli.main` with the
model replaced by :class:`~sinusapp.model.FakePredictor` where the model is not the point, so
the whole corpus stays fast.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _dicomgen import write_volume_series

from sinusapp.cli import main


@pytest.fixture(scope="session")
def master_ct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The good series every bad input is derived from (never modified)."""
    from sinusapp.model.testing import make_sinus_phantom

    volume, _ = make_sinus_phantom(shape=(40, 64, 64), spacing_mm=(2.5, 3.2, 3.2), seed=3)
    folder = tmp_path_factory.mktemp("master") / "ct"
    write_volume_series(folder, volume, description="CT sinus bone")
    return folder


@pytest.fixture
def ct(tmp_path: Path, master_ct: Path) -> Path:
    """A private copy of the good series (im0000.dcm ... im0039.dcm, in slice order)."""
    dst = tmp_path / "ct"
    shutil.copytree(master_ct, dst)
    return dst


@pytest.fixture(scope="session")
def nomogram_file(tmp_path_factory: pytest.TempPathFactory, fitted_nomogram) -> Path:
    p = tmp_path_factory.mktemp("nomogram") / "nomogram.json"
    fitted_nomogram.save(p)
    return p


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """``sinusapp predict`` uses the FakePredictor instead of the bundled model."""
    from sinusapp.model import FakePredictor

    monkeypatch.setattr(
        "sinusapp.model.Predictor", lambda *a, **k: FakePredictor(dlr_score=0.5, locate=True)
    )


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """``cli(*args) -> (exit status, stdout, stderr)``; argparse errors give status 2 too."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            rc = main(list(args))
        except SystemExit as exc:  # argparse rejects the command line
            rc = int(exc.code or 0)
        out, err = capsys.readouterr()
        return rc, out, err

    return run


@pytest.fixture
def predict_args(nomogram_file: Path):
    """``predict_args(ct, *extra)``: a valid ``sinusapp predict`` command line."""

    def make(ct_path: Path, *extra: str, eosinophils: str = "450") -> list[str]:
        return [
            "predict",
            str(ct_path),
            "--asthma",
            "yes",
            "--allergic-rhinitis",
            "no",
            "--eosinophils",
            eosinophils,
            "--nomogram",
            str(nomogram_file),
            "--device",
            "cpu",
            *extra,
        ]

    return make


@pytest.fixture
def scan_json(cli):
    """``scan_json(path) -> dict``: the ``sinusapp scan --json`` output."""

    def run(path: Path) -> dict:
        rc, out, err = cli("scan", "--json", str(path))
        assert rc == 0, err
        return json.loads(out)

    return run
