"""Shared fixtures: where the shared real data lives, and an isolated SinusApp home per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _cohortgen import synthetic_cohort
from _dicomgen import write_series

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
REALCT = SHARED_DATA / "realct"
STATS_DATA = SHARED_DATA / "stats"


def require(path: Path) -> Path:
    """Skip the calling test (with the reason) when a shared data path is absent."""
    if not path.exists():
        pytest.skip(
            f"shared test data not found at {path} (expected ../shared/data next to the repo)"
        )
    return path


@pytest.fixture
def realct() -> Path:
    return require(REALCT)


@pytest.fixture(scope="session")
def realct_files() -> list[Path]:
    """Every DICOM file under ../shared/data/realct (SOURCE.txt files left out), sorted."""
    realct = require(REALCT)
    files = [f for f in sorted(realct.rglob("*")) if f.is_file() and f.suffix != ".txt"]
    assert len(files) > 400, f"expected the real-CT collection under {realct}"
    return files


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own SINUSAPP_HOME so nothing touches the user's catalogue."""
    home = tmp_path_factory.mktemp("sinusapp_home")
    monkeypatch.setenv("SINUSAPP_HOME", str(home))
    return home


@pytest.fixture
def series_writer():
    """``write_series(folder, *, n=..., ...)``: write a small conformant CT series."""
    return write_series


@pytest.fixture(scope="session")
def fitted_nomogram():
    """A nomogram fitted on a synthetic cohort (independent of the bundled one)."""
    from sinusapp.nomogram import Nomogram

    return Nomogram.fit(synthetic_cohort(), description="synthetic test cohort")
