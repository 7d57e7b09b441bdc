"""A synthetic training cohort with a known signal (no bundled model needed)."""

from __future__ import annotations

import numpy as np
import pytest
from _cohortgen import synthetic_cohort

from sinusapp.nomogram import Nomogram


@pytest.fixture(scope="session")
def cohort() -> dict[str, np.ndarray]:
    return synthetic_cohort()


@pytest.fixture(scope="session")
def nomogram(cohort) -> Nomogram:
    return Nomogram.fit(cohort, description="synthetic test cohort")
