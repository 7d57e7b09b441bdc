"""Shared fixtures: the two public datasets in ../shared/data/stats (skip when absent)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "stats"


def _read(name: str) -> list[dict[str, str]]:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (shared test data not mounted)")
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def asah() -> dict[str, np.ndarray]:
    """pROC's aSAH: outcome Poor = case (1), Good = control (0); markers s100b, ndka, wfns."""
    rows = _read("aSAH.csv")
    return {
        "y": np.array([r["outcome"] == "Poor" for r in rows]),
        "s100b": np.array([float(r["s100b"]) for r in rows]),
        "ndka": np.array([float(r["ndka"]) for r in rows]),
        "wfns": np.array([float(r["wfns"]) for r in rows]),
        "age": np.array([float(r["age"]) for r in rows]),
        "gender": np.array([r["gender"] for r in rows], dtype=object),
    }


@pytest.fixture(scope="session")
def dcurves_binary() -> dict[str, np.ndarray]:
    """dcurves' df_binary: cancer (0/1), cancerpredmarker (risk), famhistory (0/1)."""
    rows = _read("dcurves_df_binary.csv")
    return {
        "cancer": np.array([int(r["cancer"]) for r in rows]),
        "risk": np.array([float(r["cancerpredmarker"]) for r in rows]),
        "famhistory": np.array([int(r["famhistory"]) for r in rows]),
        "marker": np.array([float(r["marker"]) for r in rows]),
        "age": np.array([float(r["age"]) for r in rows]),
    }
