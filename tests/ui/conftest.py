"""pytest-qt fixtures for the GUI tests: offscreen Qt, isolated app home, small DICOM series,
a fitted test nomogram and the fake predictor."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import datetime as _dt
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

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
    assert not leaked, f"test left windows open: {[type(w).__name__ for w in leaked]}"


def write_ct_series(
    folder: Path, volume, *, series_number: int = 3, description: str | None = None
) -> list[Path]:
    """Write ``volume`` (axial, LPS) as a CT Image Storage series, one file per slice."""
    folder.mkdir(parents=True, exist_ok=True)
    info = volume.info
    series_uid = generate_uid()
    study_uid = info.study_uid or generate_uid()
    for_uid = generate_uid()
    sp = volume.spacing_mm
    paths = []
    for k in range(volume.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"im{k:04d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.PatientName = info.patient_name
        ds.PatientID = info.patient_id
        ds.PatientBirthDate = info.patient_birth_date
        ds.PatientSex = info.patient_sex
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = for_uid
        ds.StudyDate = info.study_date
        ds.StudyTime = "101500"
        ds.StudyDescription = "CT paranasal sinuses"
        ds.AccessionNumber = "ACC1"
        ds.StudyID = "1"
        ds.ReferringPhysicianName = ""
        ds.Manufacturer = "SinusApp test"
        ds.SeriesDescription = description or info.series_description
        ds.SeriesNumber = series_number
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ConvolutionKernel = info.convolution_kernel
        ds.BodyPartExamined = "HEAD"
        ds.SliceThickness = sp[0]
        pos = volume.index_to_lps(np.array([k, 0, 0], float))
        ds.ImagePositionPatient = [f"{v:.4f}" for v in pos]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [sp[1], sp[2]]
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.KVP = 120
        ds.Manufacturer = "SinusApp test"
        ds.ContentDate = _dt.date.today().strftime("%Y%m%d")
        ds.PixelData = np.ascontiguousarray(volume.array[k]).tobytes()
        p = folder / f"im{k:04d}.dcm"
        pydicom.dcmwrite(p, ds, enforce_file_format=True)
        paths.append(p)
    return paths


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
