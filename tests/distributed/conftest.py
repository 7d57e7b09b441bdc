"""Fixtures of the distributed tests (torchrun training, Dask batch scoring): one tiny
synthetic cohort (3 train + 3 test low-resolution phantoms), written once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `sinusapp synth --cases 3 --preset paper --low-res` cohort (dataset format)."""
    from sinusapp.cli import main

    home = tmp_path_factory.mktemp("synth_home")
    old = os.environ.get("SINUSAPP_HOME")
    os.environ["SINUSAPP_HOME"] = str(home)
    try:
        data = tmp_path_factory.mktemp("cohort") / "cohort"
        args = ["synth", "--out", str(data), "--cases", "3", "--preset", "paper", "--low-res"]
        assert main(args) == 0
    finally:
        if old is None:
            os.environ.pop("SINUSAPP_HOME", None)
        else:
            os.environ["SINUSAPP_HOME"] = old
    return data
