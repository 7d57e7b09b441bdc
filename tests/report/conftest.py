"""Fixtures for the report and DICOM export tests: a small synthetic analysis, and its CT
written as a real DICOM series (so the exports have source instances to reference)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from _dicomgen import write_volume_series

from sinusapp.nomogram import Nomogram
from sinusapp.pipeline import AnalysisResult
from sinusapp.report._sample import sample_nomogram, sample_result


def write_ct_series(result: AnalysisResult, folder: Path) -> list[Path]:
    """Write ``result.volume`` as a single-frame CT series with the volume's own UIDs (so the
    exports reference these files); return the files."""
    return write_volume_series(folder, result.volume, keep_uids=True)


@pytest.fixture(scope="session")
def nomogram() -> Nomogram:
    return sample_nomogram()


@pytest.fixture(scope="session")
def result(nomogram: Nomogram) -> AnalysisResult:
    return sample_result((24, 96, 96), nomogram=nomogram)


@pytest.fixture(scope="session")
def ct_dir(result: AnalysisResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ct")
    write_ct_series(result, folder)
    return folder


@pytest.fixture(scope="session")
def ct_datasets(ct_dir: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(ct_dir.glob("*.dcm"))]
