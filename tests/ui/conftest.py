"""pytest-qt fixtures for the GUI tests: offscreen Qt, isolated app home, small DICOM series,
a fitted test nomogram and the fake predictor."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import numpy as np
import pytest

# under pytest tests/ is on sys.path; `python -m tests.ui.make_screenshots` runs from the root
try:
    from _dicomgen import write_volume_series
except ModuleNotFoundError:
    from tests._dicomgen import write_volume_series

from tests.ui.phantom import phantom_volume


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own SINUSAPP_HOME (catalogue, records, settings, logs)."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("SINUSAPP_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _no_leaked_windows(qapp):
    """Fail a test that leaves a visible top-level window behind (napari's leak check)."""
    before = {id(w) for w in qapp.topLevelWidgets() if w.isVisible()}
    yield
    qapp.processEvents()
    leaked = [w for w in qapp.topLevelWidgets() if w.isVisible() and id(w) not in before]
    for w in leaked:
        w.close()
    # delete the test's closed (deleteLater'd) windows now, between tests, instead of inside
    # a later test's event loop while that test builds its own scenes (cyclic garbage is
    # collected on the GUI thread by sinusapp.ui.worker.GuiThreadGarbageCollector)
    from PySide6 import QtCore

    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    assert not leaked, f"test left windows open: {[type(w).__name__ for w in leaked]}"


def write_ct_series(
    folder: Path, volume, *, series_number: int = 3, description: str | None = None
) -> list[Path]:
    """Write ``volume`` as a CT Image Storage series (fresh UIDs), one file per slice."""
    return write_volume_series(folder, volume, series_number=series_number, description=description)


@pytest.fixture(scope="session")
def phantom():
    """(volume, lesion mask, reference mask) of a small sinus-like phantom."""
    return phantom_volume(shape=(24, 64, 64), spacing_mm=(1.5, 0.8, 0.8))


@pytest.fixture
def dicom_folder(tmp_path, phantom):
    """A folder with one CT series of the phantom."""
    folder = tmp_path / "study"
    write_ct_series(folder, phantom[0])
    return folder


@pytest.fixture(scope="session")
def nomogram():
    """A nomogram fitted on a small seeded synthetic cohort (no bundled file needed)."""
    from sinusapp.nomogram.model import Nomogram

    rng = np.random.default_rng(7)
    n = 300
    asthma = rng.random(n) < 0.2
    ar = rng.random(n) < 0.25
    eos = np.clip(rng.gamma(2.0, 150.0, n), 0, 2500)
    dlr = rng.random(n)
    lp = -3.0 + 1.3 * asthma + 1.0 * ar + 0.003 * eos + 2.5 * dlr
    y = rng.random(n) < 1 / (1 + np.exp(-lp))
    table = {
        "recurrence": y.astype(int),
        "dlr_score": dlr,
        "asthma": asthma.astype(int),
        "allergic_rhinitis": ar.astype(int),
        "eosinophils_per_ul": eos,
    }
    return Nomogram.fit(table)


@pytest.fixture
def fake_predictor_factory():
    from sinusapp.model import FakePredictor

    return lambda: FakePredictor(dlr_score=0.55, locate=False)


@pytest.fixture
def make_window(qtbot, nomogram, fake_predictor_factory):
    """Factory for a MainWindow on an isolated catalogue with the fake predictor."""
    from sinusapp.dicom.catalogue import Catalogue
    from sinusapp.records import CaseRecords
    from sinusapp.ui.app import ensure_app, settings
    from sinusapp.ui.main_window import MainWindow

    ensure_app()

    def make(**kw):
        kw.setdefault("catalogue", Catalogue())
        kw.setdefault("records", CaseRecords())
        kw.setdefault("nomogram", nomogram)
        kw.setdefault("predictor_factory", fake_predictor_factory)
        kw.setdefault("settings", settings())
        w = MainWindow(**kw)
        qtbot.addWidget(w)
        w.resize(1500, 950)
        w.show()
        return w

    return make
