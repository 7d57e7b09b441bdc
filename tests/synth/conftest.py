"""Fixtures for the synthetic cohort: a coarse scanner and one small written dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from synth_helpers import coarse_scanner

from sinusapp.synth.cohort import CaseSpec, sample_cohort
from sinusapp.synth.write import WriteOptions, write_cohort


@pytest.fixture(scope="session")
def small_cases() -> list[CaseSpec]:
    return sample_cohort(n_cases=3, seed=11, center="A")


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory, small_cases: list[CaseSpec]) -> Path:
    """Three coarse cases of centre A written in the dataset format."""
    out = tmp_path_factory.mktemp("synth_ds")
    write_cohort(small_cases, out_dir=out, options=WriteOptions(scanner=coarse_scanner()), seed=11)
    return out
