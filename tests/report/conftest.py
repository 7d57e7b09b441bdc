"""Fixtures for the report and DICOM export tests: a small synthetic analysis, and its CT
written as a real DICOM series (so the exports have source instances to reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian

from sinusapp.nomogram import Nomogram
from sinusapp.pipeline import AnalysisResult
from sinusapp.report._sample import sample_nomogram, sample_result


def write_ct_series(result: AnalysisResult, folder: Path) -> list[Path]:
    """Write ``result.volume`` as a conformant single-frame CT series; return the files."""
    vol = result.volume
    info = vol.info
    aff = vol.affine
    sp = vol.spacing_mm
    row_cos = aff[:3, 2] / sp[2]
    col_cos = aff[:3, 1] / sp[1]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, uid in enumerate(info.sop_instance_uids):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = FileDataset(str(folder / f"ct{k:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = uid
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.Modality = "CT"
        ds.PatientName = info.patient_name
        ds.PatientID = info.patient_id
        ds.PatientBirthDate = info.patient_birth_date
        ds.PatientSex = info.patient_sex
        ds.StudyInstanceUID = info.study_uid
        ds.SeriesInstanceUID = info.series_uid
        ds.FrameOfReferenceUID = info.frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
        ds.StudyDate = info.study_date
        ds.StudyTime = info.study_time
        ds.StudyID = "1"
        ds.AccessionNumber = info.accession_number
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = info.study_description
        ds.SeriesDescription = info.series_description
        ds.SeriesNumber = info.series_number
        ds.InstanceNumber = k + 1
        ds.Manufacturer = info.manufacturer
        ds.ManufacturerModelName = info.manufacturer_model
        ds.ConvolutionKernel = info.convolution_kernel
        ds.KVP = 120
        ds.SliceThickness = sp[0]
        ds.ImagePositionPatient = [float(v) for v in aff[:3, :3] @ [k, 0, 0] + aff[:3, 3]]
        ds.ImageOrientationPatient = [float(v) for v in (*row_cos, *col_cos)]
        ds.PixelSpacing = [sp[1], sp[2]]
        ds.Rows, ds.Columns = vol.shape[1], vol.shape[2]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.PixelData = np.ascontiguousarray(vol.array[k]).tobytes()
        ds.save_as(ds.filename, enforce_file_format=True)
        paths.append(Path(ds.filename))
    return paths


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
